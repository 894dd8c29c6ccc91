//! The services whose only implemented method so far is Healthcheck.

use ephysd_proto::allego::{kpi1_server::Kpi1, neurons1_server::Neurons1, pcache1_server::Pcache1};
use ephysd_proto::allego::{StandardReply, StandardRequest};
use tonic::{Request, Response, Status};

/// The reply every healthy service gives: no error message.
pub fn healthy() -> Result<Response<StandardReply>, Status> {
    Ok(Response::new(StandardReply { err_msg: None, reg_str: Vec::new() }))
}

pub struct Pcache;
pub struct Kpi;
pub struct Neurons;

#[tonic::async_trait]
impl Pcache1 for Pcache {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Result<Response<StandardReply>, Status> {
        healthy()
    }
}

#[tonic::async_trait]
impl Kpi1 for Kpi {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Result<Response<StandardReply>, Status> {
        healthy()
    }
}

#[tonic::async_trait]
impl Neurons1 for Neurons {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Result<Response<StandardReply>, Status> {
        healthy()
    }
}

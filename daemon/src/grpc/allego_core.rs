//! AllegoCore: status, streaming and recording control, and the recording config.

use std::sync::Arc;

use ephysd_proto::allego::allego_core_server::AllegoCore;
use ephysd_proto::allego::{
    BackboneStatus, ConfigCore, ConfigRecording, RecordMode, SetRecordRequest, SetStreamRequest, StandardReply,
    StandardRequest, StreamMode,
};
use tonic::{Request, Response, Status};

use super::convert;
use crate::engine::{Engine, EngineError};

pub struct CoreService {
    engine: Arc<Engine>,
    core_address: String,
}

impl CoreService {
    pub fn new(engine: Arc<Engine>, core_address: String) -> Self {
        CoreService { engine, core_address }
    }

    /// Runs an engine transition off the async workers (it may join threads or touch disk).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, Status> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("engine task failed: {e}")))?
            .map_err(engine_status)
    }
}

/// Maps an engine refusal to the gRPC code a client expects.
fn engine_status(e: EngineError) -> Status {
    match e {
        EngineError::RecordingOn(_) => Status::failed_precondition(e.to_string()),
        EngineError::InvalidField { .. } => Status::invalid_argument(e.to_string()),
        EngineError::Source(_) | EngineError::Recording(_) => Status::failed_precondition(e.to_string()),
    }
}

fn ok_reply() -> Response<StandardReply> {
    Response::new(StandardReply { err_msg: None, reg_str: Vec::new() })
}

#[tonic::async_trait]
impl AllegoCore for CoreService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Result<Response<StandardReply>, Status> {
        super::health::healthy()
    }

    async fn get_status(&self, _: Request<StandardRequest>) -> Result<Response<BackboneStatus>, Status> {
        Ok(Response::new(convert::backbone_status(&self.engine.status())))
    }

    async fn set_stream_state(&self, request: Request<SetStreamRequest>) -> Result<Response<StandardReply>, Status> {
        match convert::stream_mode(request.get_ref().mode)? {
            StreamMode::SOn => self.blocking(|e| e.start_streaming()).await?,
            StreamMode::SOff => self.blocking(|e| e.stop_streaming()).await?,
        }
        Ok(ok_reply())
    }

    async fn set_record_state(&self, request: Request<SetRecordRequest>) -> Result<Response<StandardReply>, Status> {
        let req = request.get_ref();
        let mode = convert::record_mode(req.mode)?;
        if let Some(p) = req.port {
            let port = convert::port(p)?;
            return Err(Status::invalid_argument(format!(
                "port = {}: per-port recording is not supported; this rig records all ports into one file (omit port)",
                port.as_str_name()
            )));
        }
        match mode {
            RecordMode::ROn => {
                self.blocking(|e| e.start_recording()).await?;
            }
            RecordMode::ROff => {
                self.blocking(|e| e.stop_recording()).await?;
            }
        }
        Ok(ok_reply())
    }

    async fn get_config(&self, _: Request<StandardRequest>) -> Result<Response<ConfigCore>, Status> {
        let device = self.engine.device();
        let status = self.engine.status();
        Ok(Response::new(convert::config_core(&status, device.sim_mode(), self.core_address.clone(), device.frames_per_block)))
    }

    async fn get_config_recording(&self, _: Request<StandardRequest>) -> Result<Response<ConfigRecording>, Status> {
        Ok(Response::new(convert::config_recording(&self.engine.recording_config())))
    }

    async fn set_config_recording(&self, request: Request<ConfigRecording>) -> Result<Response<StandardReply>, Status> {
        let cfg = convert::recording_config_from(request.get_ref(), &self.engine.recording_config())?;
        self.blocking(move |e| e.set_recording_config(cfg)).await?;
        Ok(ok_reply())
    }
}

//! AllegoLifecycle: liveness, version and the server identity clients authenticate with.

use ephysd_proto::allego::allego_lifecycle_server::AllegoLifecycle;
use ephysd_proto::allego::{OfflineLicenseStatus, ServerVersion, StandardReply, StandardRequest};
use tonic::{Request, Response, Status};

pub struct LifecycleService;

#[tonic::async_trait]
impl AllegoLifecycle for LifecycleService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Result<Response<StandardReply>, Status> {
        super::health::healthy()
    }

    /// The Allego API level implemented (semver); radiens-core gates features on it.
    async fn get_version(&self, _: Request<StandardRequest>) -> Result<Response<ServerVersion>, Status> {
        Ok(Response::new(ServerVersion { version: crate::ALLEGO_API_VERSION.to_string() }))
    }

    /// ephysd needs no licence; the hardware UUID is stable per machine.
    async fn get_offline_license_status(&self, _: Request<StandardRequest>) -> Result<Response<OfflineLicenseStatus>, Status> {
        Ok(Response::new(OfflineLicenseStatus { is_verified: true, hardware_uuid: crate::hardware_id::hardware_uuid() }))
    }
}

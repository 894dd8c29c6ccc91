//! The Allego calls the command line makes, each with the token attached, under the time
//! limit, and with its failure told apart: the daemon's answer, or no answer at all.

use std::future::Future;
use std::time::Duration;

use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::allego_lifecycle_client::AllegoLifecycleClient;
use ephysd_proto::allego::{
    BackboneStatus, ConfigCore, ConfigRecording, RestartRequest, ServerVersion, SetConfigCoreRequest, SetRecordRequest,
    SetStreamRequest, StandardRequest,
};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::connect::Token;
use super::RemoteError;

/// A connection to the daemon's core port (which serves every service).
#[derive(Clone)]
pub struct Remote {
    core: AllegoCoreClient<Channel>,
    lifecycle: AllegoLifecycleClient<Channel>,
    address: String,
    token: Option<Token>,
    timeout: Duration,
}

impl Remote {
    pub fn new(channel: Channel, address: String, token: Option<Token>, timeout: Duration) -> Remote {
        Remote {
            core: AllegoCoreClient::new(channel.clone()),
            lifecycle: AllegoLifecycleClient::new(channel),
            address,
            token,
            timeout,
        }
    }

    /// `host:port` of the daemon, as messages name it.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub async fn get_status(&self) -> Result<BackboneStatus, RemoteError> {
        let mut core = self.core.clone();
        self.answer("GetStatus", core.get_status(self.request(StandardRequest::default()))).await
    }

    pub async fn get_config(&self) -> Result<ConfigCore, RemoteError> {
        let mut core = self.core.clone();
        self.answer("GetConfig", core.get_config(self.request(StandardRequest::default()))).await
    }

    pub async fn get_config_recording(&self) -> Result<ConfigRecording, RemoteError> {
        let mut core = self.core.clone();
        self.answer("GetConfigRecording", core.get_config_recording(self.request(StandardRequest::default()))).await
    }

    /// Replaces the whole recording configuration.
    pub async fn set_config_recording(&self, config: ConfigRecording) -> Result<(), RemoteError> {
        let mut core = self.core.clone();
        self.answer("SetConfigRecording", core.set_config_recording(self.request(config))).await.map(drop)
    }

    pub async fn set_config_core(&self, request: SetConfigCoreRequest) -> Result<(), RemoteError> {
        let mut core = self.core.clone();
        self.answer("SetConfigCore", core.set_config_core(self.request(request))).await.map(drop)
    }

    pub async fn restart(&self, request: RestartRequest) -> Result<(), RemoteError> {
        let mut core = self.core.clone();
        self.answer("Restart", core.restart(self.request(request))).await.map(drop)
    }

    pub async fn set_stream_state(&self, request: SetStreamRequest) -> Result<(), RemoteError> {
        let mut core = self.core.clone();
        self.answer("SetStreamState", core.set_stream_state(self.request(request))).await.map(drop)
    }

    pub async fn set_record_state(&self, request: SetRecordRequest) -> Result<(), RemoteError> {
        let mut core = self.core.clone();
        self.answer("SetRecordState", core.set_record_state(self.request(request))).await.map(drop)
    }

    pub async fn get_version(&self) -> Result<ServerVersion, RemoteError> {
        let mut lifecycle = self.lifecycle.clone();
        self.answer("GetVersion", lifecycle.get_version(self.request(StandardRequest::default()))).await
    }

    /// A request carrying the token, if there is one.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("authorization", token.header().clone());
        }
        request
    }

    /// Waits for `call` at most the time limit and names `method` in any failure.
    async fn answer<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, RemoteError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(RemoteError::from_status(method, &self.address, status)),
            Err(_) => Err(RemoteError::Timeout { address: self.address.clone(), during: method, after: self.timeout }),
        }
    }
}

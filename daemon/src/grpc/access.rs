//! Who may call, and a record of who changed what.
//!
//! The outermost layer of every server. On a port that requires a token it answers
//! UNAUTHENTICATED before any service sees the request unless the request carries
//! `authorization: Bearer <token>`. On every port it logs each request that changes state
//! (anything but a `Get…` or a health check) with the peer's address, so the journal says
//! which machine started a recording or restarted the device.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use super::security::BearerToken;

/// The tower layer that installs [`AccessGuard`].
#[derive(Debug, Clone, Default)]
pub struct AccessLayer {
    /// The token requests must carry; `None` admits every request.
    pub token: Option<BearerToken>,
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessGuard { inner, token: self.token.clone() }
    }
}

/// Checks the token and logs state changes; see the module documentation.
#[derive(Debug, Clone)]
pub struct AccessGuard<S> {
    inner: S,
    token: Option<BearerToken>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for AccessGuard<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let peer = peer_of(&request);
        if let Some(token) = &self.token {
            let presented = request.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            if !token.admits(presented) {
                tracing::warn!(peer = %peer_name(peer), method, "request refused: missing or wrong bearer token");
                let refusal = Status::unauthenticated(
                    "this ephysd requires a bearer token: send the metadata `authorization: Bearer <token>` \
                     with the token from the daemon's server.token_file",
                );
                return Box::pin(async move { Ok(refusal.into_http()) });
            }
        }
        if changes_state(&method) {
            tracing::info!(peer = %peer_name(peer), method, "state-changing request");
        }
        Box::pin(self.inner.call(request))
    }
}

/// Whether a method ("package.Service/Method") can change the daemon's state: everything
/// except reads (`Get…`) and health checks.
pub fn changes_state(method: &str) -> bool {
    let name = method.rsplit('/').next().unwrap_or(method);
    !(name.starts_with("Get") || name == "Healthcheck")
}

/// The address of the client that sent a request, over plain TCP or TLS.
fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.get_ref().remote_addr()))
}

fn peer_name(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_health_checks_are_not_state_changes() {
        for read in ["allego.AllegoCore/GetStatus", "allego.Pcache1/GetHDSnapshot2", "allego.Kpi1/Healthcheck"] {
            assert!(!changes_state(read), "{read}");
        }
        for change in [
            "allego.AllegoCore/SetRecordState",
            "allego.AllegoCore/SetStreamState",
            "allego.AllegoCore/Restart",
            "allego.AllegoCore/SetConfigCore",
            "allego.AllegoCore/UpdateSignalGroup",
            "allego.AllegoCore/ScanPorts",
        ] {
            assert!(changes_state(change), "{change}");
        }
    }
}

//! Answers every Allego method this version does not implement with UNIMPLEMENTED, naming it.
//!
//! The generated service traits give unimplemented methods a generic default; a tower layer in
//! front of them turns that into a message a client's user can act on ("allego.AllegoCore/
//! GetSignals is not implemented by ephysd 0.1.0"). [`IMPLEMENTED`] is the single list of what
//! is served; docs/API.md is checked against it by a test.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::Status;

/// Every (service, method) this version implements.
pub const IMPLEMENTED: &[(&str, &str)] = &[
    ("allego.AllegoLifecycle", "Healthcheck"),
    ("allego.AllegoLifecycle", "GetVersion"),
    ("allego.AllegoLifecycle", "GetOfflineLicenseStatus"),
    ("allego.AllegoCore", "Healthcheck"),
    ("allego.AllegoCore", "GetStatus"),
    ("allego.AllegoCore", "SetStreamState"),
    ("allego.AllegoCore", "SetRecordState"),
    ("allego.AllegoCore", "GetConfig"),
    ("allego.AllegoCore", "GetConfigRecording"),
    ("allego.AllegoCore", "SetConfigRecording"),
    ("allego.Pcache1", "Healthcheck"),
    ("allego.Kpi1", "Healthcheck"),
    ("allego.Neurons1", "Healthcheck"),
];

/// `"service/method"` for a request path of one of the five services whose method is not
/// implemented; `None` for implemented methods and for paths outside the five services.
pub fn unimplemented_method(path: &str) -> Option<&str> {
    let full = path.strip_prefix('/')?;
    let (service, method) = full.split_once('/')?;
    if !ephysd_proto::SERVICES.contains(&service) {
        return None;
    }
    (!IMPLEMENTED.contains(&(service, method))).then_some(full)
}

/// The tower layer that installs [`UnimplementedGuard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnimplementedLayer;

impl<S> tower::Layer<S> for UnimplementedLayer {
    type Service = UnimplementedGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnimplementedGuard { inner }
    }
}

#[derive(Debug, Clone)]
pub struct UnimplementedGuard<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for UnimplementedGuard<S>
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
        if let Some(method) = unimplemented_method(request.uri().path()) {
            let status = Status::unimplemented(format!("{method} is not implemented by ephysd {}", crate::VERSION));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unimplemented_methods_of_the_five_services_are_caught() {
        assert_eq!(unimplemented_method("/allego.AllegoCore/GetSignals"), Some("allego.AllegoCore/GetSignals"));
        assert_eq!(unimplemented_method("/allego.AllegoCore/GetStatus"), None);
        assert_eq!(unimplemented_method("/allego.RadiensCore/GetStatus"), None);
        assert_eq!(unimplemented_method("garbage"), None);
    }
}

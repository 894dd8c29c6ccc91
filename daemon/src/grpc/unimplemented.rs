//! Names the method in every UNIMPLEMENTED answer.
//!
//! A method a service does not implement keeps the generated trait's default, which answers
//! UNIMPLEMENTED with tonic's generic "Not yet implemented". This layer looks at each answer
//! and, when it is exactly that, replaces the message with one a client's user can act on
//! ("allego.AllegoCore/GetSignals is not implemented by ephysd 0.1.0"). Because it judges the
//! answer and not a list, a method that is implemented can never answer UNIMPLEMENTED by
//! mistake, and there is no list to keep in step: docs/API.md is checked by asking a running
//! daemon (daemon/tests/api_doc.rs).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::{Code, Status};

/// The message tonic's generated defaults answer unimplemented methods with.
const TONIC_DEFAULT: &str = "Not yet implemented";

/// The tower layer that installs [`UnimplementedGuard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnimplementedLayer;

impl<S> tower::Layer<S> for UnimplementedLayer {
    type Service = UnimplementedGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnimplementedGuard { inner }
    }
}

/// Rewrites tonic's generic UNIMPLEMENTED answers into ones naming the method.
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
        let method = request.uri().path().trim_start_matches('/').to_string();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(match Status::from_header_map(response.headers()) {
                Some(status) if is_default_unimplemented(&status) => named(&method).into_http(),
                _ => response,
            })
        })
    }
}

/// Whether `status` is the generic answer of a method nobody implemented (or of a path no
/// service routes).
fn is_default_unimplemented(status: &Status) -> bool {
    status.code() == Code::Unimplemented && (status.message() == TONIC_DEFAULT || status.message().is_empty())
}

/// The UNIMPLEMENTED status for `method` ("package.Service/Method").
pub fn named(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not implemented by ephysd {}", crate::VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_generic_answer_is_rewritten() {
        assert!(is_default_unimplemented(&Status::unimplemented(TONIC_DEFAULT)));
        assert!(is_default_unimplemented(&Status::unimplemented("")));
        assert!(!is_default_unimplemented(&Status::unimplemented("apply_dsp needs the DSP stages")));
        assert!(!is_default_unimplemented(&Status::invalid_argument(TONIC_DEFAULT)));
        assert!(named("allego.AllegoCore/GetSignals")
            .message()
            .starts_with("allego.AllegoCore/GetSignals is not implemented by ephysd"));
    }
}

//! Streaming: `SetStreamState`.

use std::sync::Arc;

use ephysd_proto::allego::{SetStreamRequest, StandardReply, StreamMode};
use tonic::Status;

use super::{enum_names, off_workers, status::healthy};
use crate::engine::Engine;

/// `SetStreamState`: starts or stops the stream.
pub async fn set_stream_state(engine: &Arc<Engine>, request: &SetStreamRequest) -> Result<StandardReply, Status> {
    match stream_mode(request.mode)? {
        StreamMode::SOn => off_workers(engine, |e| e.start_streaming()).await?,
        StreamMode::SOff => off_workers(engine, |e| e.stop_streaming()).await?,
    }
    Ok(healthy())
}

/// Decodes a stream mode field.
fn stream_mode(value: i32) -> Result<StreamMode, Status> {
    StreamMode::try_from(value).map_err(|_| {
        let allowed = enum_names(&[StreamMode::SOff, StreamMode::SOn], |m| m.as_str_name());
        Status::invalid_argument(format!("mode = {value}: allowed {allowed}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_mode_names_the_field_and_the_allowed_values() {
        let e = stream_mode(7).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("mode = 7") && e.message().contains("S_ON"), "{}", e.message());
    }
}

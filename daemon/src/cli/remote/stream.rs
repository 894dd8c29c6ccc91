//! `ephysd stream start|stop`: `SetStreamState`.

use std::process::ExitCode;

use ephysd_proto::allego::{SetStreamRequest, StreamMode};
use serde_json::json;

use super::{execute, Output, Remote, RemoteError, RemoteOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum StreamAction {
    /// Start streaming from the device into the primary cache.
    Start,
    /// Stop streaming (the daemon refuses while it records).
    Stop,
}

pub fn run(options: &RemoteOptions, action: StreamAction) -> ExitCode {
    execute(options, move |remote| set(remote, action))
}

async fn set(remote: Remote, action: StreamAction) -> Result<Output, RemoteError> {
    let on = action == StreamAction::Start;
    let mode = if on { StreamMode::SOn } else { StreamMode::SOff };
    remote.set_stream_state(SetStreamRequest { mode: mode as i32 }).await?;
    Ok(Output { text: format!("streaming {}\n", if on { "on" } else { "off" }), json: json!({ "streaming": on }) })
}

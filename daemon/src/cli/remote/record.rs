//! `ephysd record start|stop [--port P]`: `SetRecordState`, with the file it opened or closed
//! read from `GetStatus`, so the operator learns where the data is.

use std::process::ExitCode;

use ephysd_proto::allego::{Port, RecordMode, SetRecordRequest};
use serde_json::json;

use super::keys::port_named;
use super::{execute, Output, Remote, RemoteError, RemoteOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum RecordAction {
    /// Start recording (the daemon must be streaming); prints the file being written.
    Start {
        /// Only this headstage port.
        #[arg(long, value_name = "A..H", value_parser = parse_port)]
        port: Option<Port>,
    },
    /// Stop recording and close its files; prints the file closed.
    Stop {
        /// Only this headstage port.
        #[arg(long, value_name = "A..H", value_parser = parse_port)]
        port: Option<Port>,
    },
}

/// `--port`: a letter A..H.
fn parse_port(text: &str) -> Result<Port, String> {
    port_named(text).ok_or_else(|| format!("{text:?}: allowed a port letter A..H"))
}

pub fn run(options: &RemoteOptions, action: RecordAction) -> ExitCode {
    execute(options, move |remote| async move {
        match action {
            RecordAction::Start { port } => start(remote, port).await,
            RecordAction::Stop { port } => stop(remote, port).await,
        }
    })
}

fn request(mode: RecordMode, port: Option<Port>) -> SetRecordRequest {
    SetRecordRequest { mode: mode as i32, port: port.map(|p| p as i32) }
}

async fn start(remote: Remote, port: Option<Port>) -> Result<Output, RemoteError> {
    remote.set_record_state(request(RecordMode::ROn, port)).await?;
    let status = remote.get_status().await?.recording;
    let file = (!status.active_file_name.is_empty()).then_some(status.active_file_name);
    let text = match &file {
        Some(file) => format!("recording to {file}\n"),
        None => "recording started; no file is open yet (a triggered recording opens one per trigger)\n".to_string(),
    };
    let on = status.record_mode == RecordMode::ROn as i32;
    Ok(Output { text, json: json!({ "recording": on, "active_file": file }) })
}

async fn stop(remote: Remote, port: Option<Port>) -> Result<Output, RemoteError> {
    let before = remote.get_status().await?.recording;
    remote.set_record_state(request(RecordMode::ROff, port)).await?;
    let file = (!before.active_file_name.is_empty()).then_some(before.active_file_name);
    let text = match &file {
        Some(file) => format!("recording stopped; closed {file} ({:.1} s)\n", before.duration),
        None => "recording stopped (no file was open)\n".to_string(),
    };
    Ok(Output { text, json: json!({ "recording": false, "closed_file": file, "duration_s": before.duration }) })
}

//! `ephysd config get [KEY]` and `ephysd config set KEY VALUE`: the running daemon's
//! recording and core settings, read and changed through Allego calls (see [`super::keys`]).
//!
//! A change is checked before anything is sent, made with one call, then read back, so what
//! is printed as the new value is what the daemon holds, not what was asked for.

use std::process::ExitCode;

use serde_json::json;

use super::keys::{CoreCall, CoreEdit, Edit, Key, RecordingEdit, Value};
use super::{execute, report, Output, Remote, RemoteError, RemoteOptions};

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ConfigAction {
    /// Print every key with its value (`key = value`), or only KEY's value.
    Get {
        /// recording.base_name, recording.base_path, recording.timestamp,
        /// recording.split_files_by_port, recording.recording_type,
        /// recording.force_start_at_zero, core.sample_rate_hz, core.cable_delay.<A..H>,
        /// core.backbone.
        key: Option<String>,
    },
    /// Change one key and print what changed.
    Set {
        /// The key to change (the keys are listed by `ephysd config get --help`).
        key: String,
        /// The new value; a value the key does not allow is refused before anything is sent.
        #[arg(allow_negative_numbers = true)]
        value: String,
    },
}

pub fn run(options: &RemoteOptions, action: ConfigAction) -> ExitCode {
    match action {
        ConfigAction::Get { key: None } => execute(options, get_all),
        ConfigAction::Get { key: Some(key) } => match Key::parse(&key) {
            Ok(key) => execute(options, move |remote| get_one(remote, key)),
            Err(e) => report(options.json, Err(e.into())),
        },
        ConfigAction::Set { key, value } => match Key::parse(&key).and_then(|k| k.edit(&value)) {
            Ok(edit) => execute(options, move |remote| set(remote, edit)),
            Err(e) => report(options.json, Err(e.into())),
        },
    }
}

async fn get_all(remote: Remote) -> Result<Output, RemoteError> {
    let (recording, core) = tokio::try_join!(remote.get_config_recording(), remote.get_config())?;
    let mut text = String::new();
    let mut json = serde_json::Map::new();
    for key in Key::all(&core) {
        let value = match key {
            Key::Recording(k) => Some(k.read(&recording)),
            Key::Core(k) => k.read(&core),
        };
        text.push_str(&format!("{} = {}\n", key.name(), shown(&value)));
        json.insert(key.name(), value.as_ref().map_or(serde_json::Value::Null, Value::to_json));
    }
    Ok(Output { text, json: serde_json::Value::Object(json) })
}

async fn get_one(remote: Remote, key: Key) -> Result<Output, RemoteError> {
    let value = match key {
        Key::Recording(k) => Some(k.read(&remote.get_config_recording().await?)),
        Key::Core(k) => k.read(&remote.get_config().await?),
    };
    let text = match &value {
        Some(v) => format!("{}\n", v.raw()),
        None => format!("{}\n", shown(&None)),
    };
    let json = json!({ key.name(): value.as_ref().map_or(serde_json::Value::Null, Value::to_json) });
    Ok(Output { text, json })
}

async fn set(remote: Remote, edit: Edit) -> Result<Output, RemoteError> {
    let key = edit.key();
    let (was, now) = match edit {
        Edit::Recording(edit) => set_recording(&remote, &edit).await?,
        Edit::Core(edit) => set_core(&remote, &edit).await?,
    };
    let change = if was == now { "unchanged".to_string() } else { format!("was {}", shown(&was)) };
    Ok(Output {
        text: format!("{} = {} ({change})\n", key.name(), shown(&now)),
        json: json!({
            "key": key.name(),
            "value": now.as_ref().map(Value::to_json),
            "was": was.as_ref().map(Value::to_json),
        }),
    })
}

/// Reads the recording configuration, changes one field, sends it whole (`SetConfigRecording`
/// replaces it), and reads it back.
async fn set_recording(remote: &Remote, edit: &RecordingEdit) -> Result<(Option<Value>, Option<Value>), RemoteError> {
    let current = remote.get_config_recording().await?;
    let was = edit.key().read(&current);
    let mut next = current;
    edit.apply(&mut next);
    next.data_source_idx = Some(0);
    remote.set_config_recording(next).await?;
    let now = edit.key().read(&remote.get_config_recording().await?);
    Ok((Some(was), Some(now)))
}

/// `SetConfigCore` with the one field, or `Restart` into another device; read back with
/// `GetConfig`.
async fn set_core(remote: &Remote, edit: &CoreEdit) -> Result<(Option<Value>, Option<Value>), RemoteError> {
    let was = edit.key().read(&remote.get_config().await?);
    match edit.call() {
        CoreCall::SetConfigCore(request) => remote.set_config_core(request).await?,
        CoreCall::Restart(request) => remote.restart(request).await?,
    }
    let now = edit.key().read(&remote.get_config().await?);
    Ok((was, now))
}

/// A value as `key = value` lines show it; a value the daemon does not report says so.
fn shown(value: &Option<Value>) -> String {
    value.as_ref().map_or_else(|| "unknown (not reported by the daemon)".to_string(), Value::shown)
}

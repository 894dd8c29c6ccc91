//! Recording: `SetRecordState`, `GetConfigRecording`, `SetConfigRecording`.

use std::path::PathBuf;
use std::sync::Arc;

use ephysd_proto::allego::{ConfigRecording, DataRecordingType, Port, RecordMode, SetRecordRequest, StandardReply};
use tonic::Status;

use super::{enum_names, off_workers, status::healthy};
use ephysd_hdf5::RecordingType;

use crate::engine::{Engine, RecordingConfig};

/// `SetRecordState`: starts or stops recording (all ports into one file).
pub async fn set_record_state(engine: &Arc<Engine>, request: &SetRecordRequest) -> Result<StandardReply, Status> {
    let mode = record_mode(request.mode)?;
    if let Some(p) = request.port {
        let port = port(p)?;
        return Err(Status::invalid_argument(format!(
            "port = {}: per-port recording is not supported; this rig records all ports into one file (omit port)",
            port.as_str_name()
        )));
    }
    match mode {
        RecordMode::ROn => off_workers(engine, |e| e.start_recording().map(drop)).await?,
        RecordMode::ROff => off_workers(engine, |e| e.stop_recording().map(drop)).await?,
    }
    Ok(healthy())
}

/// `GetConfigRecording`.
pub fn config_recording(engine: &Engine) -> ConfigRecording {
    let c = engine.recording_config();
    ConfigRecording {
        base_file_name: c.base_name.clone(),
        base_file_path: c.base_path.display().to_string(),
        data_source_idx: Some(c.datasource_idx),
        time_stamp: Some(c.timestamp),
        split_files_by_port: Some(c.split_by_port),
        force_start_at_t_stamp0: Some(false),
        recording_type: match c.recording_type {
            RecordingType::Continuous => DataRecordingType::Continuous,
            RecordingType::Spikes => DataRecordingType::Spikes,
            RecordingType::ContinuousAndSpikes => DataRecordingType::ContinuousAndSpikes,
        } as i32,
    }
}

/// `SetConfigRecording`: validates every field, then replaces the config.
pub async fn set_config_recording(engine: &Arc<Engine>, request: &ConfigRecording) -> Result<StandardReply, Status> {
    let cfg = recording_config_from(request, &engine.recording_config())?;
    off_workers(engine, move |e| e.set_recording_config(cfg)).await?;
    Ok(healthy())
}

fn record_mode(value: i32) -> Result<RecordMode, Status> {
    RecordMode::try_from(value).map_err(|_| {
        let allowed = enum_names(&[RecordMode::ROff, RecordMode::ROn], |m| m.as_str_name());
        Status::invalid_argument(format!("mode = {value}: allowed {allowed}"))
    })
}

fn port(value: i32) -> Result<Port, Status> {
    Port::try_from(value).map_err(|_| Status::invalid_argument(format!("port = {value}: allowed 0..=7 (A..H)")))
}

/// Applies a client's recording config over the current one, validating every field.
fn recording_config_from(msg: &ConfigRecording, current: &RecordingConfig) -> Result<RecordingConfig, Status> {
    let recording_type = match DataRecordingType::try_from(msg.recording_type) {
        Ok(DataRecordingType::Continuous) => RecordingType::Continuous,
        Ok(DataRecordingType::Spikes) => RecordingType::Spikes,
        Ok(DataRecordingType::ContinuousAndSpikes) => RecordingType::ContinuousAndSpikes,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "recordingType = {}: allowed continuous (0), spikes (1), continuousAndSpikes (2)",
                msg.recording_type
            )))
        }
    };
    if msg.force_start_at_t_stamp0 == Some(true) {
        return Err(Status::invalid_argument("forceStartAtTStamp0 = true: not supported; allowed: false"));
    }
    if msg.base_file_path.is_empty() {
        return Err(Status::invalid_argument("baseFilePath is empty: allowed: an existing directory"));
    }
    Ok(RecordingConfig {
        base_path: PathBuf::from(&msg.base_file_path),
        base_name: msg.base_file_name.clone(),
        timestamp: msg.time_stamp.unwrap_or(current.timestamp),
        split_by_port: msg.split_files_by_port.unwrap_or(current.split_by_port),
        recording_type,
        datasource_idx: msg.data_source_idx.unwrap_or(current.datasource_idx),
        ..current.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named_with_what_is_allowed() {
        assert!(port(9).unwrap_err().message().contains("0..=7"));
        assert!(record_mode(3).unwrap_err().message().contains("R_ON"));
        let current = RecordingConfig::from(&crate::config::Settings::defaults().recording);
        let msg = ConfigRecording { base_file_path: "/r".into(), recording_type: 9, ..Default::default() };
        let e = recording_config_from(&msg, &current).unwrap_err();
        assert!(e.message().contains("recordingType = 9"), "{}", e.message());
        let msg = ConfigRecording { base_file_path: String::new(), ..Default::default() };
        assert!(recording_config_from(&msg, &current).unwrap_err().message().contains("baseFilePath"));
    }
}

//! Conversions between the engine's types and Allego messages, with request validation.
//!
//! Every field a client sends is checked here before it reaches the engine: an invalid value
//! is an INVALID_ARGUMENT naming the field and what is allowed, never a panic or a clamp.

use std::collections::HashMap;
use std::path::PathBuf;

use ephysd_proto::allego::{
    BackboneMode, BackboneStatus, CableDelays, ConfigCore, ConfigRecording, DataRecordingType, GpioChannelCount,
    Port, PortChannelCount, RecordMode, RecordingStatus, StreamMode, StreamingStatus,
};
use ephysd_drivers::sim::SimMode;
use tonic::Status;

use crate::engine::{EngineStatus, RecordingConfig};

/// Channels per headstage port, as on Intan's 1024-channel controllers (8 ports × 128).
const CHANNELS_PER_PORT: usize = 128;

fn enum_names<E: Copy>(values: &[E], name: impl Fn(E) -> &'static str) -> String {
    values.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")
}

/// Decodes a stream mode field.
pub fn stream_mode(value: i32) -> Result<StreamMode, Status> {
    StreamMode::try_from(value).map_err(|_| {
        let allowed = enum_names(&[StreamMode::SOff, StreamMode::SOn], |m| m.as_str_name());
        Status::invalid_argument(format!("mode = {value}: allowed {allowed}"))
    })
}

/// Decodes a record mode field.
pub fn record_mode(value: i32) -> Result<RecordMode, Status> {
    RecordMode::try_from(value).map_err(|_| {
        let allowed = enum_names(&[RecordMode::ROff, RecordMode::ROn], |m| m.as_str_name());
        Status::invalid_argument(format!("mode = {value}: allowed {allowed}"))
    })
}

/// Decodes a port field.
pub fn port(value: i32) -> Result<Port, Status> {
    Port::try_from(value).map_err(|_| Status::invalid_argument(format!("port = {value}: allowed 0..=7 (A..H)")))
}

pub fn backbone_mode(mode: SimMode) -> BackboneMode {
    match mode {
        SimMode::Spikes => BackboneMode::SmartboxSimGenSpikes,
        SimMode::Sine => BackboneMode::SmartboxSimGenSine,
        SimMode::Lfp => BackboneMode::SmartboxSimGenLfp,
        SimMode::Broadband => BackboneMode::SmartboxSimGenBroadband,
    }
}

/// The channels of each headstage port, filled port A first.
pub fn ports(channels: usize) -> Vec<PortChannelCount> {
    (0..8)
        .map(|p| (p, channels.saturating_sub(p * CHANNELS_PER_PORT).min(CHANNELS_PER_PORT)))
        .filter(|(_, n)| *n > 0)
        .map(|(p, n)| PortChannelCount { port: p as i32, channel_count: n as i32 })
        .collect()
}

pub fn backbone_status(s: &EngineStatus) -> BackboneStatus {
    let on_off = |on: bool| if on { RecordMode::ROn } else { RecordMode::ROff } as i32;
    BackboneStatus {
        streaming: StreamingStatus {
            stream_mode: if s.streaming { StreamMode::SOn } else { StreamMode::SOff } as i32,
            primary_cache_t_range: s.cache_time_range.map_or_else(Vec::new, |(a, b)| vec![a, b]),
            hardware_memory_level: s.cache_fill,
        },
        recording: RecordingStatus {
            record_mode: on_off(s.recording),
            active_file_name: s.active_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            duration: s.recording_seconds,
            error: s.last_error.clone().unwrap_or_default(),
            ..Default::default()
        },
        ports: ports(s.channels),
        is_connected: true,
        gpio_channel_count: GpioChannelCount {
            n_aux: s.aux_channels as i32,
            n_din: s.digital_in_channels as i32,
            n_dout: s.digital_out_channels as i32,
        },
    }
}

pub fn config_core(s: &EngineStatus, mode: SimMode, core_address: String, frames_per_block: u32) -> ConfigCore {
    let loop_ms = (f64::from(frames_per_block) / s.sample_rate_hz * 1000.0).round().max(1.0) as i32;
    ConfigCore {
        allego_core_server_port: core_address,
        base_samp_freq: s.sample_rate_hz,
        stream_loop_dur_ms: loop_ms,
        cable_delays: CableDelays { cable_delays: HashMap::new() },
        backbone_mode: backbone_mode(mode) as i32,
        has_xdaqgpio_expander: false,
    }
}

pub fn config_recording(c: &RecordingConfig) -> ConfigRecording {
    ConfigRecording {
        base_file_name: c.base_name.clone(),
        base_file_path: c.base_path.display().to_string(),
        data_source_idx: Some(c.datasource_idx),
        time_stamp: Some(c.timestamp),
        split_files_by_port: Some(false),
        force_start_at_t_stamp0: Some(false),
        recording_type: DataRecordingType::Continuous as i32,
    }
}

/// Applies a client's recording config over the current one, validating every field.
pub fn recording_config_from(msg: &ConfigRecording, current: &RecordingConfig) -> Result<RecordingConfig, Status> {
    match DataRecordingType::try_from(msg.recording_type) {
        Ok(DataRecordingType::Continuous) => {}
        Ok(other) => {
            return Err(Status::invalid_argument(format!(
                "recordingType = {}: this version records continuous signals only; allowed: continuous",
                other.as_str_name()
            )))
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "recordingType = {}: allowed continuous (0), spikes (1), continuousAndSpikes (2)",
                msg.recording_type
            )))
        }
    }
    if msg.split_files_by_port == Some(true) {
        return Err(Status::invalid_argument("splitFilesByPort = true: not supported; allowed: false"));
    }
    if msg.force_start_at_t_stamp0 == Some(true) {
        return Err(Status::invalid_argument("forceStartAtTStamp0 = true: not supported; allowed: false"));
    }
    if msg.base_file_path.is_empty() {
        return Err(Status::invalid_argument("baseFilePath is empty: allowed: an existing directory"));
    }
    Ok(RecordingConfig {
        base_path: PathBuf::from(&msg.base_file_path),
        base_name: msg.base_file_name.clone(),
        index: current.index,
        timestamp: msg.time_stamp.unwrap_or(current.timestamp),
        datasource_idx: msg.data_source_idx.unwrap_or(current.datasource_idx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_fill_ports_in_order() {
        let p = ports(300);
        assert_eq!(p.iter().map(|p| (p.port, p.channel_count)).collect::<Vec<_>>(), vec![(0, 128), (1, 128), (2, 44)]);
        assert_eq!(ports(1024).len(), 8);
    }

    #[test]
    fn bad_enum_values_name_the_field_and_the_allowed_values() {
        let e = stream_mode(7).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("mode = 7") && e.message().contains("S_ON"), "{}", e.message());
        assert!(port(9).unwrap_err().message().contains("0..=7"));
    }
}

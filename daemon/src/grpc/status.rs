//! Status and lifecycle: health checks, version, licence, `GetStatus` and `GetConfig`.
//!
//! Everything here answers from the engine's published status and the device description: it
//! never waits for a transition and never changes state.

use std::collections::HashMap;

use ephysd_proto::allego::{
    BackboneStatus, CableDelays, ConfigCore, GpioChannelCount, OfflineLicenseStatus, PortChannelCount, RecordMode,
    RecordingStatus, ServerVersion, StandardReply, StreamMode, StreamingStatus,
};

use tonic::Status;

use super::backbone;
use crate::engine::{Engine, EngineStatus};

/// The reply every healthy service gives: no error message.
pub fn healthy() -> StandardReply {
    StandardReply { err_msg: None, reg_str: Vec::new() }
}

/// The Allego API level implemented (semver); radiens-core gates features on it.
pub fn version() -> ServerVersion {
    ServerVersion { version: crate::ALLEGO_API_VERSION.to_string() }
}

/// ephysd needs no licence; the hardware UUID is stable per machine.
pub fn offline_license() -> OfflineLicenseStatus {
    OfflineLicenseStatus { is_verified: true, hardware_uuid: crate::hardware_id::hardware_uuid() }
}

/// `GetStatus`.
pub fn backbone_status(engine: &Engine) -> BackboneStatus {
    status_message(&engine.status())
}

fn status_message(s: &EngineStatus) -> BackboneStatus {
    let on_off = |on: bool| if on { RecordMode::ROn } else { RecordMode::ROff } as i32;
    let d = &s.device;
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
        ports: d
            .ports
            .iter()
            .map(|p| PortChannelCount { port: p.port as i32, channel_count: p.channels as i32 })
            .collect(),
        is_connected: true,
        gpio_channel_count: GpioChannelCount {
            n_aux: d.layout.aux_channels as i32,
            n_din: d.digital_in_channels as i32,
            n_dout: d.digital_out_channels as i32,
        },
    }
}

/// `GetConfig`: the core configuration, from the device description.
pub fn config_core(engine: &Engine, core_address: &str) -> Result<ConfigCore, Status> {
    let d = engine.description();
    let block_ms = d.layout.frames_per_block as f64 / d.sample_rate_hz * 1000.0;
    let mode = backbone::mode_of(d.backbone)
        .ok_or_else(|| Status::internal(format!("device.backbone {:?} has no Allego BackboneMode", d.backbone)))?;
    Ok(ConfigCore {
        allego_core_server_port: core_address.to_string(),
        base_samp_freq: d.sample_rate_hz,
        stream_loop_dur_ms: block_ms.round().max(1.0) as i32,
        cable_delays: CableDelays { cable_delays: HashMap::new() },
        backbone_mode: mode as i32,
        has_xdaqgpio_expander: false,
    })
}

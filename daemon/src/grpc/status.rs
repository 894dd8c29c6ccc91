//! Status and lifecycle: health checks, version, licence and `GetStatus`.
//!
//! Everything here answers from the engine's published status and the device description: it
//! never waits for a transition and never changes state.

use ephysd_proto::allego::{
    BackboneStatus, GpioChannelCount, OfflineLicenseStatus, PortChannelCount, RecordMode, RecordingStatus,
    ServerVersion, StandardReply, StreamMode, StreamingStatus,
};

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
        recording: recording_status(s, on_off(s.recording)),
        ports: d
            .ports
            .iter()
            .map(|p| PortChannelCount { port: p.port as i32, channel_count: p.channels as i32 })
            .collect(),
        is_connected: true,
        gpio_channel_count: GpioChannelCount {
            n_aux: d.layout.analog_in_channels as i32,
            n_din: d.digital_in_channels as i32,
            n_dout: d.digital_out_channels as i32,
        },
    }
}

/// The recording part of status. Every port of the device records into the running
/// recording (one file, or one per port), so each existing port reports the overall mode;
/// ports the device does not have are left out (the client reads them as `None`).
fn recording_status(s: &EngineStatus, mode: i32) -> RecordingStatus {
    let mut status = RecordingStatus {
        record_mode: mode,
        active_file_name: s.active_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        duration: s.recording_seconds,
        error: s.last_error.clone().unwrap_or_default(),
        ..Default::default()
    };
    for port in &s.device.ports {
        let slot = match port.port {
            0 => &mut status.record_mode_port_a,
            1 => &mut status.record_mode_port_b,
            2 => &mut status.record_mode_port_c,
            3 => &mut status.record_mode_port_d,
            4 => &mut status.record_mode_port_e,
            5 => &mut status.record_mode_port_f,
            6 => &mut status.record_mode_port_g,
            7 => &mut status.record_mode_port_h,
            _ => continue,
        };
        *slot = Some(mode);
    }
    status
}

//! `ephysd status`: what the daemon is doing, in a few aligned lines or one JSON object.
//!
//! Four reads (`GetStatus`, `GetConfig`, `GetConfigRecording`, `GetVersion`), none of which
//! changes anything or waits for a transition, so it is safe to run at any moment.

use std::process::ExitCode;

use ephysd_drivers::rates;
use ephysd_proto::allego::{
    BackboneMode, BackboneStatus, ConfigCore, ConfigRecording, DataRecordingType, Port, RecordMode, ServerVersion,
    StreamMode,
};
use serde_json::json;

use super::keys::recording_type_name;
use super::{execute, Output, Remote, RemoteError, RemoteOptions};
use crate::grpc::backbone;

/// Width of the label column of the human output.
const LABEL_WIDTH: usize = 13;

pub fn run(options: &RemoteOptions) -> ExitCode {
    execute(options, status)
}

async fn status(remote: Remote) -> Result<Output, RemoteError> {
    let (status, core, recording, version) = tokio::try_join!(
        remote.get_status(),
        remote.get_config(),
        remote.get_config_recording(),
        remote.get_version()
    )?;
    let report = Report::new(remote.address(), &status, &core, &recording, &version);
    Ok(Output { text: report.text(), json: report.json() })
}

/// What status says, decoded from the four answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub address: String,
    pub api_version: String,
    /// Allego's name of the device (`SMARTBOX_SIM_GEN_SPIKES`), or the number the daemon sent.
    pub device_mode: String,
    /// The `device.backbone` name, when the mode has one.
    pub backbone: Option<&'static str>,
    pub connected: bool,
    pub sample_rate_hz: f64,
    pub streaming: bool,
    /// Seconds since the stream started of the oldest and newest frame the primary cache holds.
    pub cache_range_s: Option<(f64, f64)>,
    pub recording: bool,
    pub active_file: Option<String>,
    pub recording_s: f64,
    pub error: Option<String>,
    /// Port letter and channel count, in the daemon's order.
    pub ports: Vec<(String, i32)>,
    pub gpio: Gpio,
    pub next_recording: NextRecording,
}

/// Auxiliary and digital channels besides the ports'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpio {
    pub aux: i32,
    pub digital_in: i32,
    pub digital_out: i32,
}

/// Where and how the next recording goes.
#[derive(Debug, Clone, PartialEq)]
pub struct NextRecording {
    pub base_path: String,
    pub base_name: String,
    pub recording_type: String,
    pub timestamp: bool,
    pub split_files_by_port: bool,
}

impl Report {
    pub fn new(
        address: &str,
        status: &BackboneStatus,
        core: &ConfigCore,
        recording: &ConfigRecording,
        version: &ServerVersion,
    ) -> Report {
        let mode = BackboneMode::try_from(core.backbone_mode).ok();
        let range = &status.streaming.primary_cache_t_range;
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Report {
            address: address.to_string(),
            api_version: version.version.clone(),
            device_mode: mode.map_or_else(|| core.backbone_mode.to_string(), |m| m.as_str_name().to_string()),
            backbone: mode.and_then(backbone::name_of),
            connected: status.is_connected,
            sample_rate_hz: core.base_samp_freq,
            streaming: status.streaming.stream_mode == StreamMode::SOn as i32,
            cache_range_s: (range.len() == 2).then(|| (range[0], range[1])),
            recording: status.recording.record_mode == RecordMode::ROn as i32,
            active_file: text(&status.recording.active_file_name),
            recording_s: status.recording.duration,
            error: text(&status.recording.error),
            ports: status
                .ports
                .iter()
                .map(|p| {
                    let name = Port::try_from(p.port).map_or_else(|_| p.port.to_string(), |p| p.as_str_name().into());
                    (name, p.channel_count)
                })
                .collect(),
            gpio: Gpio {
                aux: status.gpio_channel_count.n_aux,
                digital_in: status.gpio_channel_count.n_din,
                digital_out: status.gpio_channel_count.n_dout,
            },
            next_recording: NextRecording {
                base_path: recording.base_file_path.clone(),
                base_name: recording.base_file_name.clone(),
                recording_type: DataRecordingType::try_from(recording.recording_type)
                    .map_or_else(|_| recording.recording_type.to_string(), |k| recording_type_name(k).to_string()),
                timestamp: recording.time_stamp.unwrap_or_default(),
                split_files_by_port: recording.split_files_by_port.unwrap_or_default(),
            },
        }
    }

    pub fn channels_total(&self) -> i64 {
        self.ports.iter().map(|(_, n)| i64::from(*n)).sum()
    }

    /// Aligned `label  value` lines.
    pub fn text(&self) -> String {
        let mut lines: Vec<(&str, String)> =
            vec![("daemon", format!("{} (Allego API {})", self.address, self.api_version))];
        let device = match self.backbone {
            Some(name) => format!("{name} ({})", self.device_mode),
            None => self.device_mode.clone(),
        };
        lines.push(("device", if self.connected { device } else { format!("{device}, NOT connected") }));
        lines.push(("sample rate", format!("{} Hz", rates::format_rate(self.sample_rate_hz))));
        lines.push((
            "streaming",
            match (self.streaming, self.cache_range_s) {
                (false, _) => "off".to_string(),
                (true, Some((from, to))) => format!("on, cache {from:.2}..{to:.2} s"),
                (true, None) => "on, cache empty".to_string(),
            },
        ));
        lines.push((
            "recording",
            match (&self.active_file, self.recording) {
                (Some(file), _) => format!("{}, {:.1} s in {file}", on_off(self.recording), self.recording_s),
                (None, on) => on_off(on).to_string(),
            },
        ));
        if let Some(error) = &self.error {
            lines.push(("last error", error.clone()));
        }
        let ports: Vec<String> = self.ports.iter().map(|(port, n)| format!("{port}: {n} ch")).collect();
        lines.push((
            "ports",
            if ports.is_empty() {
                "none".to_string()
            } else {
                format!("{} ({} channels)", ports.join(", "), self.channels_total())
            },
        ));
        let g = self.gpio;
        lines.push(("gpio", format!("{} aux, {} digital in, {} digital out", g.aux, g.digital_in, g.digital_out)));
        let n = &self.next_recording;
        let mut how = vec![format!("name {:?}", n.base_name), n.recording_type.clone()];
        if n.timestamp {
            how.push("timestamped".into());
        }
        if n.split_files_by_port {
            how.push("a file per port".into());
        }
        lines.push(("record to", format!("{} ({})", n.base_path, how.join(", "))));
        lines.iter().map(|(label, value)| format!("{label:<LABEL_WIDTH$}{value}\n")).collect()
    }

    /// One object with stable snake_case keys.
    pub fn json(&self) -> serde_json::Value {
        let n = &self.next_recording;
        json!({
            "address": self.address,
            "api_version": self.api_version,
            "device_mode": self.device_mode,
            "backbone": self.backbone,
            "connected": self.connected,
            "sample_rate_hz": self.sample_rate_hz,
            "streaming": {
                "on": self.streaming,
                "cache_range_s": self.cache_range_s.map(|(from, to)| [from, to]),
            },
            "recording": {
                "on": self.recording,
                "active_file": self.active_file,
                "duration_s": self.recording_s,
                "error": self.error,
            },
            "ports": self.ports.iter().map(|(port, n)| json!({"port": port, "channels": n})).collect::<Vec<_>>(),
            "channels_total": self.channels_total(),
            "gpio": {"aux": self.gpio.aux, "digital_in": self.gpio.digital_in, "digital_out": self.gpio.digital_out},
            "recording_config": {
                "base_path": n.base_path,
                "base_name": n.base_name,
                "recording_type": n.recording_type,
                "timestamp": n.timestamp,
                "split_files_by_port": n.split_files_by_port,
            },
        })
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_proto::allego::{GpioChannelCount, PortChannelCount, RecordingStatus, StreamingStatus};

    fn answers(recording: bool) -> (BackboneStatus, ConfigCore, ConfigRecording, ServerVersion) {
        let status = BackboneStatus {
            streaming: StreamingStatus {
                stream_mode: StreamMode::SOn as i32,
                primary_cache_t_range: vec![1.5, 6.5],
                hardware_memory_level: 1.0,
            },
            recording: RecordingStatus {
                record_mode: if recording { RecordMode::ROn } else { RecordMode::ROff } as i32,
                active_file_name: if recording { "/data/m_0001.h5".into() } else { String::new() },
                duration: if recording { 2.25 } else { 0.0 },
                error: if recording { String::new() } else { "disk full".into() },
                ..Default::default()
            },
            ports: vec![
                PortChannelCount { port: Port::A as i32, channel_count: 64 },
                PortChannelCount { port: Port::B as i32, channel_count: 32 },
            ],
            is_connected: true,
            gpio_channel_count: GpioChannelCount { n_aux: 6, n_din: 16, n_dout: 16 },
        };
        let core = ConfigCore {
            base_samp_freq: 30000.0,
            backbone_mode: BackboneMode::SmartboxSimGenSpikes as i32,
            ..Default::default()
        };
        let rec = ConfigRecording {
            base_file_name: "m".into(),
            base_file_path: "/data".into(),
            time_stamp: Some(true),
            split_files_by_port: Some(false),
            ..Default::default()
        };
        (status, core, rec, ServerVersion { version: "5.7.0".into() })
    }

    #[test]
    fn people_get_aligned_lines_with_every_fact() {
        let (s, c, r, v) = answers(true);
        let text = Report::new("127.0.0.1:50051", &s, &c, &r, &v).text();
        let expected = "\
daemon       127.0.0.1:50051 (Allego API 5.7.0)
device       sim-spikes (SMARTBOX_SIM_GEN_SPIKES)
sample rate  30000 Hz
streaming    on, cache 1.50..6.50 s
recording    on, 2.2 s in /data/m_0001.h5
ports        A: 64 ch, B: 32 ch (96 channels)
gpio         6 aux, 16 digital in, 16 digital out
record to    /data (name \"m\", continuous, timestamped)
";
        assert_eq!(text, expected);
        let (s, c, r, v) = answers(false);
        let text = Report::new("127.0.0.1:50051", &s, &c, &r, &v).text();
        assert!(text.contains("\nrecording    off\nlast error   disk full\n"), "{text}");
    }

    #[test]
    fn scripts_get_stable_keys() {
        let (s, c, r, v) = answers(true);
        let json = Report::new("rig:50051", &s, &c, &r, &v).json();
        assert_eq!(json["device_mode"], "SMARTBOX_SIM_GEN_SPIKES");
        assert_eq!(json["backbone"], "sim-spikes");
        assert_eq!(json["sample_rate_hz"], 30000.0);
        assert_eq!(json["streaming"], json!({"on": true, "cache_range_s": [1.5, 6.5]}));
        assert_eq!(
            json["recording"],
            json!({"on": true, "active_file": "/data/m_0001.h5", "duration_s": 2.25, "error": null})
        );
        assert_eq!(json["ports"], json!([{"port": "A", "channels": 64}, {"port": "B", "channels": 32}]));
        assert_eq!(json["channels_total"], 96);
        assert_eq!(json["gpio"], json!({"aux": 6, "digital_in": 16, "digital_out": 16}));
        assert_eq!(json["api_version"], "5.7.0");
        assert_eq!(json["recording_config"]["recording_type"], "continuous");
    }
}

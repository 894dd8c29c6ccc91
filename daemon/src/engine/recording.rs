//! Recording: the recording config, starting, stopping and finalizing recordings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ephysd_drivers::{DeviceDescription, Impedance, AMPLIFIER_UV_PER_UNIT};
use ephysd_hdf5::{free_space, ChannelRow, Compression, RecordingMeta, RecordingSummary, RecordingType};

use super::{Blocked, Engine, EngineError, State};
use crate::config::{validate_base_name, RecordingSettings};
use crate::recorder::{ActiveRecording, FilePlan, OutputPlan, RecordingPlan, Rollover, SpikeFeed, StopAt};

/// The recording settings in force: what clients read and change (Allego's "recording
/// config") and the `recording.*` keys that shape files.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// Directory recordings are written to.
    pub base_path: PathBuf,
    /// File name stem.
    pub base_name: String,
    /// Append a running index to each name.
    pub index: bool,
    /// Append the UTC start time to each name.
    pub timestamp: bool,
    /// What a recording keeps.
    pub recording_type: RecordingType,
    /// One file per headstage port.
    pub split_by_port: bool,
    /// Allego's data-source index; kept and reported back, not used for naming.
    pub datasource_idx: i32,
    /// How often files are flushed.
    pub flush_interval: Duration,
    /// Start the next file once a file reaches this many bytes.
    pub rollover_bytes: Option<u64>,
    /// Start the next file once a file covers this much signal.
    pub rollover_duration: Option<Duration>,
    /// Free space a recording needs to start, bytes.
    pub min_free_bytes: u64,
    /// How `/samples` is stored.
    pub compression: Compression,
}

impl From<&RecordingSettings> for RecordingConfig {
    fn from(r: &RecordingSettings) -> Self {
        RecordingConfig {
            base_path: r.base_path.clone(),
            base_name: r.base_name.clone(),
            index: r.index,
            timestamp: r.timestamp,
            recording_type: r.recording_type(),
            split_by_port: r.split_files_by_port,
            datasource_idx: 0,
            flush_interval: Duration::from_secs_f64(r.flush_interval_s),
            rollover_bytes: (r.rollover_mb > 0).then_some(r.rollover_mb << 20),
            rollover_duration: (r.rollover_minutes > 0.0).then(|| Duration::from_secs_f64(r.rollover_minutes * 60.0)),
            min_free_bytes: r.min_free_mb << 20,
            compression: r.compression(),
        }
    }
}

impl RecordingConfig {
    /// The rollover policy for a device running at `rate` frames per second.
    fn rollover_at(&self, rate: f64) -> Rollover {
        Rollover {
            max_bytes: self.rollover_bytes,
            max_frames: self.rollover_duration.map(|d| (d.as_secs_f64() * rate).round() as u64),
        }
    }
}

impl Engine {
    /// Starts a recording of the stream (starting the stream first if it is off). Returns the
    /// recording's first file (for a triggered recording, the directory and stem its files
    /// will have); a recording already running is kept.
    pub fn start_recording(&self) -> Result<PathBuf, EngineError> {
        let mut st = self.lock();
        if let Some(r) = &st.recording {
            return Ok(r.path().to_path_buf());
        }
        self.start_stream_locked(&mut st)?;
        if let Some(r) = &st.recording {
            return Ok(r.path().to_path_buf());
        }
        let result = self.start_recording_locked(&mut st);
        self.publish(&st);
        result
    }

    pub(super) fn start_recording_locked(&self, st: &mut State) -> Result<PathBuf, EngineError> {
        self.start_recording_following(st, None)
    }

    /// Starts a recording; `follows` is the last frame of the recording it continues (the
    /// device went away and came back), whose jump to this one's first frame its files record.
    pub(super) fn start_recording_following(
        &self,
        st: &mut State,
        follows: Option<u64>,
    ) -> Result<PathBuf, EngineError> {
        let cache = Arc::clone(&st.stream.as_ref().expect("the stream is running").cache);
        let cfg = st.recording_config.clone();
        std::fs::create_dir_all(&cfg.base_path)
            .map_err(|source| EngineError::RecordingDirectory { path: cfg.base_path.clone(), source })?;
        let free = free_space(&cfg.base_path)
            .map_err(|source| EngineError::RecordingDirectory { path: cfg.base_path.clone(), source })?;
        if free < cfg.min_free_bytes {
            return Err(EngineError::LowDiskSpace {
                path: cfg.base_path.clone(),
                free_mb: free >> 20,
                min_free_mb: cfg.min_free_bytes >> 20,
            });
        }
        let d = Arc::clone(&st.description);
        let meta = RecordingMeta {
            software_version: format!("ephysd {}", crate::VERSION),
            device: d.name.clone(),
            device_serial: d.serial.clone().unwrap_or_default(),
            chips_json: chips_json(&d),
            config_json: self.config_json.clone(),
            recording_type: cfg.recording_type,
            channels: channel_rows(&d, st.impedance.as_deref()),
            analog_in_channels: d.layout.analog_in_channels,
            digital: d.digital_in_channels + d.digital_out_channels > 0,
            ground_truth: st.device.ground_truth().is_some(),
            compression: cfg.compression,
            ..RecordingMeta::new(d.sample_rate_hz, d.amplifier_channels(), AMPLIFIER_UV_PER_UNIT)
        };
        let outputs = if cfg.split_by_port {
            d.ports
                .iter()
                .map(|p| OutputPlan { port: Some(p.letter()), columns: p.first_channel..p.first_channel + p.channels })
                .collect()
        } else {
            vec![OutputPlan { port: None, columns: 0..d.amplifier_channels() }]
        };
        let files = FilePlan {
            directory: cfg.base_path.clone(),
            base_name: cfg.base_name.clone(),
            index: cfg.index,
            timestamp: cfg.timestamp,
            next_index: Arc::clone(&st.next_index),
            meta,
            outputs,
        };
        let recording = ActiveRecording::start(RecordingPlan {
            cache,
            files,
            triggers: st.triggers.iter().copied().collect(),
            rollover: cfg.rollover_at(d.sample_rate_hz),
            flush_interval: cfg.flush_interval,
            ground_truth: st.device.ground_truth(),
            spikes: st.processing.outputs().map(|o| SpikeFeed {
                ring: o.spikes,
                // The snippet reaches 2 ms past the crossing; the detector pushes the spike
                // with the block that completes it.
                settle_frames: (0.002 * d.sample_rate_hz).ceil() as u64 + 2 * d.layout.frames_per_block as u64,
            }),
            pace_acquisition: d.free_running,
            counters: Arc::clone(&self.counters),
            events: self.recorder_events.0.clone(),
            follows,
        })?;
        let path = recording.path().to_path_buf();
        st.recording = Some(recording);
        st.last_error = None;
        if st.triggers.is_empty() {
            tracing::info!(path = %path.display(), "recording started");
            self.notifier.status(&format!("recording: {}", path.display()));
        } else {
            let lines: Vec<String> = st.triggers.iter().map(|t| t.line.to_string()).collect();
            tracing::info!(triggers = %lines.join(", "), "recording armed: files open while a trigger line is high");
            self.notifier.status(&format!("recording armed: waiting for {}", lines.join(", ")));
        }
        Ok(path)
    }

    /// Stops the recording (if any) and closes its files.
    pub fn stop_recording(&self) -> Result<Vec<RecordingSummary>, EngineError> {
        let mut st = self.lock();
        let head = st.stream.as_ref().map_or(0, |s| s.cache.head());
        let result = self.finish_recording_locked(&mut st, StopAt::Frame(head));
        self.publish(&st);
        result
    }

    /// Closes the running recording's files (if any) at `at`. Holds the state lock, so no
    /// other transition interleaves; status keeps answering from the published view meanwhile.
    pub(super) fn finish_recording_locked(
        &self,
        st: &mut State,
        at: StopAt,
    ) -> Result<Vec<RecordingSummary>, EngineError> {
        let Some(recording) = st.recording.take() else { return Ok(Vec::new()) };
        match recording.stop(at) {
            Ok(summaries) => {
                for s in &summaries {
                    tracing::info!(path = %s.path.display(), frames = s.frames_written, gaps = s.gap_count, "recording file closed");
                }
                self.notifier.status("streaming: recording stopped");
                Ok(summaries)
            }
            Err(failure) => {
                self.set_error(st, failure.summary_line());
                Err(EngineError::RecordingEnded(failure))
            }
        }
    }

    /// The current recording config.
    pub fn recording_config(&self) -> RecordingConfig {
        self.view().recording_config.clone()
    }

    /// Replaces the recording config; refused while recording or for a path that is missing.
    pub fn set_recording_config(&self, cfg: RecordingConfig) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() {
            return Err(EngineError::RecordingOn(Blocked::ChangeRecordingConfig));
        }
        validate_base_name(&cfg.base_name).map_err(|e| EngineError::InvalidArgument {
            field: "baseFileName".into(),
            value: format!("{:?}", cfg.base_name),
            allowed: e.to_string(),
        })?;
        if !cfg.base_path.is_dir() {
            return Err(EngineError::InvalidArgument {
                field: "baseFilePath".into(),
                value: format!("{:?}", cfg.base_path.display().to_string()),
                allowed: "an existing directory".into(),
            });
        }
        st.recording_config = cfg;
        self.publish(&st);
        Ok(())
    }

    /// Applies the `recording.*` keys (all safe to change live: they shape the next
    /// recording); returns what changed.
    pub fn reload_recording(&self, r: &RecordingSettings, previous: &RecordingSettings) -> Vec<String> {
        let mut st = self.lock();
        let mut next = RecordingConfig::from(r);
        next.datasource_idx = st.recording_config.datasource_idx;
        let before = serde_json::to_value(previous).unwrap_or_default();
        let after = serde_json::to_value(r).unwrap_or_default();
        let mut applied: Vec<String> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| before.get(k.as_str()) != Some(v))
            .map(|(k, v)| format!("recording.{k} = {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        st.recording_config = next;
        if !applied.is_empty() && st.recording.is_some() {
            applied.push("(the running recording keeps its files; the change applies to the next one)".into());
        }
        self.publish(&st);
        applied
    }
}

/// The headstage on each port, as JSON for the `chips` attribute.
fn chips_json(d: &DeviceDescription) -> String {
    let ports: Vec<serde_json::Value> = d
        .ports
        .iter()
        .map(
            |p| serde_json::json!({ "port": p.letter().to_string(), "channels": p.channels, "headstage": p.headstage }),
        )
        .collect();
    serde_json::Value::Array(ports).to_string()
}

/// One `/channels` row per amplifier channel, with the last impedance measured.
fn channel_rows(d: &DeviceDescription, impedance: Option<&[Impedance]>) -> Vec<ChannelRow> {
    let mut rows = Vec::with_capacity(d.amplifier_channels());
    for p in &d.ports {
        for i in 0..p.channels {
            let native = p.first_channel + i;
            let mut row = ChannelRow::new(native as u32, &format!("{}-{i:03}", p.letter()), &p.letter().to_string(), 0);
            if let Some(z) = impedance.and_then(|z| z.iter().find(|z| z.channel == native)) {
                row.impedance_ohms = z.magnitude_ohms as f32;
                row.impedance_phase_deg = z.phase_degrees as f32;
            }
            rows.push(row);
        }
    }
    rows
}

impl Engine {
    /// Acts on what the recorder reports (on the supervisor thread).
    pub(super) fn recorder_event(&self, event: crate::recorder::RecorderEvent) {
        use crate::recorder::RecorderEvent;
        match event {
            RecorderEvent::FileOpened { path } => self.notifier.status(&format!("recording: {}", path.display())),
            RecorderEvent::FileClosed { summary, reason } => {
                tracing::info!(path = %summary.path.display(), frames = summary.frames_written, ?reason, "recording file closed; the recording goes on");
            }
            RecorderEvent::Gap { path, overrun_frames } => {
                let message = if overrun_frames > 0 {
                    format!(
                        "gap in {}: the recorder fell behind and lost {overrun_frames} frames (see /gaps)",
                        path.display()
                    )
                } else {
                    format!("gap in {}: the device dropped frames (see /gaps)", path.display())
                };
                tracing::warn!("{message}");
                let mut st = self.lock();
                self.set_error(&mut st, message);
                self.publish(&st);
            }
            RecorderEvent::Ended { path } => {
                let mut st = self.lock();
                if st.recording.as_ref().map(|r| r.path()) == Some(path.as_path()) {
                    // The recorder has closed every file already; this collects how it ended.
                    let _ = self.finish_recording_locked(&mut st, StopAt::Now);
                }
                self.publish(&st);
            }
        }
    }
}

//! The control plane's model of the rig: streaming and recording state, and the transitions
//! between them.
//!
//! gRPC handlers, signals and shutdown all go through [`Engine`], so every rule (recording
//! implies streaming, the recording config cannot change mid-recording, ...) lives in one place.
//! Nothing here runs on the real-time path; it only starts and stops the threads that do.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ephysd_drivers::sim::{SimConfig, SimulatedRig};
use ephysd_drivers::{Source, AMPLIFIER_UV_PER_UNIT};
use ephysd_hdf5::{recording_file_name, RecordingMeta, RecordingSummary};

use crate::acquisition::{Acquisition, StreamEnd, StreamPlan};
use crate::config::{validate_base_name, DeviceSettings, RecordingSettings, Settings};
use crate::core::{CounterSnapshot, PipelineCounters, PrimaryCache};
use crate::notify::Notifier;
use crate::recorder::ActiveRecording;

/// A request the engine refused, with the reason a client sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("recording is on: {0}")]
    RecordingOn(&'static str),
    #[error("{field} = {value:?}: {reason}")]
    InvalidField { field: &'static str, value: String, reason: String },
    #[error("cannot start the source: {0}")]
    Source(String),
    #[error("cannot start recording: {0}")]
    Recording(String),
}

/// The recording settings clients can read and change (Allego's "recording config").
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    pub base_path: PathBuf,
    pub base_name: String,
    pub index: bool,
    pub timestamp: bool,
    /// Allego's data-source index; kept and reported back, not used for naming.
    pub datasource_idx: i32,
}

impl From<&RecordingSettings> for RecordingConfig {
    fn from(r: &RecordingSettings) -> Self {
        RecordingConfig { base_path: r.base_path.clone(), base_name: r.base_name.clone(), index: r.index, timestamp: r.timestamp, datasource_idx: 0 }
    }
}

/// What the engine reports about itself.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    pub streaming: bool,
    pub recording: bool,
    pub source_name: Option<String>,
    pub sample_rate_hz: f64,
    pub channels: usize,
    pub aux_channels: usize,
    pub digital_in_channels: usize,
    pub digital_out_channels: usize,
    /// Oldest and newest frame held in the primary cache, as seconds since the stream started.
    pub cache_time_range: Option<(f64, f64)>,
    pub cache_fill: f64,
    pub active_file: Option<PathBuf>,
    pub recording_seconds: f64,
    pub last_error: Option<String>,
    pub counters: CounterSnapshot,
}

struct Stream {
    cache: Arc<PrimaryCache>,
    source_name: String,
    aux_channels: usize,
    digital_in: usize,
    digital_out: usize,
}

struct State {
    device: DeviceSettings,
    cache_seconds: u32,
    recording_config: RecordingConfig,
    next_index: u32,
    stream: Option<Stream>,
    recording: Option<ActiveRecording>,
    last_error: Option<String>,
}

/// The rig as the control plane sees it. Cheap to share (`Arc<Engine>`).
pub struct Engine {
    state: Mutex<State>,
    acquisition: Acquisition,
    counters: Arc<PipelineCounters>,
    notifier: Notifier,
}

impl Engine {
    pub fn new(settings: &Settings, acquisition: Acquisition, notifier: Notifier) -> Self {
        let counters = Arc::clone(acquisition.counters());
        Engine {
            state: Mutex::new(State {
                device: settings.device.clone(),
                cache_seconds: settings.cache.seconds,
                recording_config: RecordingConfig::from(&settings.recording),
                next_index: 1,
                stream: None,
                recording: None,
                last_error: None,
            }),
            acquisition,
            counters,
            notifier,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// The primary cache of the running stream.
    pub fn cache(&self) -> Option<Arc<PrimaryCache>> {
        self.lock().stream.as_ref().map(|s| Arc::clone(&s.cache))
    }

    /// Starts streaming; does nothing if already streaming. A new stream starts a new cache.
    pub fn start_streaming(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        self.reap_ended_stream(&mut st);
        if st.stream.is_some() {
            return Ok(());
        }
        let d = &st.device;
        let sim = SimConfig {
            mode: d.sim_mode(),
            amplifier_channels: d.channels as usize,
            sample_rate_hz: d.sample_rate_hz,
            seed: d.seed,
            accelerated: d.accelerated,
            frames_per_block: d.frames_per_block as usize,
            ..SimConfig::default()
        };
        let rig = SimulatedRig::new(sim).map_err(|e| EngineError::Source(e.to_string()))?;
        let info = rig.info().clone();
        let capacity = (f64::from(st.cache_seconds) * info.sample_rate_hz).ceil() as usize;
        let cache = Arc::new(PrimaryCache::new(info.layout, capacity, info.sample_rate_hz));
        self.acquisition.start(StreamPlan { source: Box::new(rig), cache: Arc::clone(&cache), accelerated: d.accelerated });
        tracing::info!(source = %info.name, "streaming started");
        self.notifier.status(&format!("streaming: {}", info.name));
        st.stream = Some(Stream {
            cache,
            source_name: info.name,
            aux_channels: info.layout.aux_channels,
            digital_in: info.digital_in_channels,
            digital_out: info.digital_out_channels,
        });
        Ok(())
    }

    /// Stops streaming; refused while recording (stop the recording first).
    pub fn stop_streaming(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() {
            return Err(EngineError::RecordingOn("stop recording before stopping the stream"));
        }
        if st.stream.take().is_some() {
            self.acquisition.stop();
            tracing::info!("streaming stopped");
            self.notifier.status("idle: streaming off");
        }
        Ok(())
    }

    /// Starts a recording of the stream (starting the stream first if it is off).
    pub fn start_recording(&self) -> Result<PathBuf, EngineError> {
        self.start_streaming()?;
        let mut st = self.lock();
        if let Some(r) = &st.recording {
            return Ok(r.path().to_path_buf());
        }
        let stream = st.stream.as_ref().ok_or_else(|| EngineError::Source("the stream ended".into()))?;
        let cache = Arc::clone(&stream.cache);
        let source_name = stream.source_name.clone();
        let cfg = st.recording_config.clone();
        crate::config::prepare_recording_dir(&cfg.base_path).map_err(|e| EngineError::Recording(e.to_string()))?;
        let (path, index) = next_free_path(&cfg, st.next_index)?;
        let meta = RecordingMeta {
            frames_per_second: cache.sample_rate_hz(),
            channel_count: cache.layout().amplifier_channels,
            uv_per_sample_unit: AMPLIFIER_UV_PER_UNIT,
            application: format!("ephysd {}", crate::VERSION),
            source_name,
        };
        let recording = ActiveRecording::start(cache, &path, meta, Arc::clone(&self.counters), st.device.accelerated)
            .map_err(|e| EngineError::Recording(e.to_string()))?;
        st.next_index = index + 1;
        st.recording = Some(recording);
        st.last_error = None;
        tracing::info!(path = %path.display(), "recording started");
        self.notifier.status(&format!("recording: {}", path.display()));
        Ok(path)
    }

    /// Stops the recording (if any) and finalizes its file.
    pub fn stop_recording(&self) -> Result<Option<RecordingSummary>, EngineError> {
        let mut st = self.lock();
        let Some(recording) = st.recording.take() else { return Ok(None) };
        let head = st.stream.as_ref().map_or(0, |s| s.cache.head());
        let path = recording.path().to_path_buf();
        // Finalizing may take a moment (draining and closing the file); the lock keeps other
        // transitions out meanwhile, which is what a client expects.
        match recording.stop(head) {
            Ok(summary) => {
                tracing::info!(path = %path.display(), frames = summary.duration_frames, "recording finalized");
                self.notifier.status(&format!("streaming: recording finalized {}", path.display()));
                Ok(Some(summary))
            }
            Err(e) => {
                let msg = format!("recording {} failed: {e}", path.display());
                st.last_error = Some(msg.clone());
                Err(EngineError::Recording(msg))
            }
        }
    }

    /// Stops everything cleanly: recording finalized, stream stopped.
    pub fn shutdown(&self) {
        if let Err(e) = self.stop_recording() {
            tracing::error!("{e}");
        }
        let mut st = self.lock();
        if st.stream.take().is_some() {
            self.acquisition.stop();
        }
    }

    /// The device settings streams are started with.
    pub fn device(&self) -> DeviceSettings {
        self.lock().device.clone()
    }

    pub fn recording_config(&self) -> RecordingConfig {
        self.lock().recording_config.clone()
    }

    /// Replaces the recording config; refused while recording or for a path that is missing.
    pub fn set_recording_config(&self, cfg: RecordingConfig) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() {
            return Err(EngineError::RecordingOn("the recording config cannot change during a recording"));
        }
        validate_base_name(&cfg.base_name).map_err(|e| EngineError::InvalidField {
            field: "baseFileName",
            value: cfg.base_name.clone(),
            reason: e.to_string(),
        })?;
        if !cfg.base_path.is_dir() {
            return Err(EngineError::InvalidField {
                field: "baseFilePath",
                value: cfg.base_path.display().to_string(),
                reason: "the directory does not exist".into(),
            });
        }
        st.recording_config = cfg;
        Ok(())
    }

    /// Applies the recording keys that are safe to change live; returns what changed.
    pub fn reload_recording(&self, r: &RecordingSettings) -> Vec<String> {
        let mut st = self.lock();
        let mut applied = Vec::new();
        let c = &mut st.recording_config;
        if c.base_path != r.base_path {
            applied.push(format!("recording.base_path = {}", r.base_path.display()));
            c.base_path = r.base_path.clone();
        }
        if c.base_name != r.base_name {
            applied.push(format!("recording.base_name = {}", r.base_name));
            c.base_name = r.base_name.clone();
        }
        if c.index != r.index {
            applied.push(format!("recording.index = {}", r.index));
            c.index = r.index;
        }
        if c.timestamp != r.timestamp {
            applied.push(format!("recording.timestamp = {}", r.timestamp));
            c.timestamp = r.timestamp;
        }
        if !applied.is_empty() && st.recording.is_some() {
            applied.push("(the running recording keeps its file; the change applies to the next one)".into());
        }
        applied
    }

    pub fn status(&self) -> EngineStatus {
        let mut st = self.lock();
        self.reap_ended_stream(&mut st);
        self.reap_failed_recording(&mut st);
        let d = &st.device;
        let (cache_time_range, cache_fill) = match &st.stream {
            Some(s) => {
                let rate = s.cache.sample_rate_hz();
                let (oldest, head) = (s.cache.oldest(), s.cache.head());
                let range = (head > 0).then(|| (oldest as f64 / rate, head as f64 / rate));
                (range, (head - oldest) as f64 / s.cache.capacity_frames() as f64)
            }
            None => (None, 0.0),
        };
        EngineStatus {
            streaming: st.stream.is_some(),
            recording: st.recording.is_some(),
            source_name: st.stream.as_ref().map(|s| s.source_name.clone()),
            sample_rate_hz: d.sample_rate_hz,
            channels: d.channels as usize,
            aux_channels: st.stream.as_ref().map_or(3, |s| s.aux_channels),
            digital_in_channels: st.stream.as_ref().map_or(16, |s| s.digital_in),
            digital_out_channels: st.stream.as_ref().map_or(16, |s| s.digital_out),
            cache_time_range,
            cache_fill,
            active_file: st.recording.as_ref().map(|r| r.path().to_path_buf()),
            recording_seconds: st.recording.as_ref().map_or(0.0, |r| r.duration_seconds()),
            last_error: st.last_error.clone(),
            counters: self.counters.snapshot(),
        }
    }

    fn reap_ended_stream(&self, st: &mut State) {
        if let Some(end) = self.acquisition.take_ended() {
            if let StreamEnd::SourceFailed(reason) = end {
                tracing::error!("stream ended: {reason}");
                st.last_error = Some(format!("stream ended: {reason}"));
                st.stream = None;
                self.notifier.status(&format!("error: stream ended: {reason}"));
            }
        }
    }

    fn reap_failed_recording(&self, st: &mut State) {
        if st.recording.as_ref().is_some_and(|r| r.has_ended()) {
            let recording = st.recording.take().expect("checked");
            let path = recording.path().display().to_string();
            let reason = recording.error().unwrap_or_else(|| "recorder ended".into());
            let _ = recording.stop(0);
            st.last_error = Some(format!("recording {path} failed: {reason}"));
            self.notifier.status(&format!("error: recording failed: {reason}"));
        }
    }
}

/// The first file name from `start_index` on that does not exist yet: recordings are never
/// overwritten. Without an index, an existing name is an error the client sees.
fn next_free_path(cfg: &RecordingConfig, start_index: u32) -> Result<(PathBuf, u32), EngineError> {
    let stamp = cfg.timestamp.then(chrono::Utc::now);
    let name_for = |index: Option<u32>| {
        recording_file_name(&cfg.base_name, index, stamp).map_err(|e| EngineError::InvalidField {
            field: "baseFileName",
            value: cfg.base_name.clone(),
            reason: e.to_string(),
        })
    };
    if !cfg.index {
        let path = cfg.base_path.join(name_for(None)?);
        if path.exists() {
            return Err(EngineError::Recording(format!(
                "{} already exists and recordings are never overwritten; enable the index or timestamp, or change the base name",
                path.display()
            )));
        }
        return Ok((path, start_index));
    }
    for index in start_index..=start_index.saturating_add(100_000) {
        let path = cfg.base_path.join(name_for(Some(index))?);
        if !Path::new(&path).exists() {
            return Ok((path, index));
        }
    }
    Err(EngineError::Recording(format!("no free recording index in {}", cfg.base_path.display())))
}

//! What the engine reports about itself, without ever waiting for a transition.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use ephysd_drivers::DeviceDescription;
use ephysd_pipeline::{CounterSnapshot, PrimaryCache};

use super::{CableDelay, ChannelTable, Engine, RecordingConfig, State};
use crate::probe_map::ProbeMap;
use crate::processing::ProcessingOutputs;
use crate::recorder::{RecordingProgress, Trigger};

/// The state a transition leaves behind, published for status to read. Immutable: the next
/// transition publishes a new one. The live parts (the cache's head, the recording's progress)
/// are shared handles read when status is asked.
#[derive(Debug)]
pub struct StatusView {
    /// The device.
    pub device: Arc<DeviceDescription>,
    /// The running stream's primary cache, if streaming.
    pub cache: Option<Arc<PrimaryCache>>,
    /// Wall-clock time of the running stream's first frame.
    pub stream_started_at: Option<SystemTime>,
    /// The running recording's first file and progress, if recording.
    pub recording: Option<(PathBuf, Arc<RecordingProgress>)>,
    /// Triggers enabled.
    pub triggers: Vec<Trigger>,
    /// The last error, until the next recording starts.
    pub last_error: Option<String>,
    /// The recording config in force.
    pub recording_config: RecordingConfig,
    /// Channel selection and colour groups.
    pub channels: Arc<ChannelTable>,
    /// Probe map per port.
    pub probes: Arc<Vec<Option<ProbeMap>>>,
    /// Identifies the open device's channel set.
    pub dataset_uid: String,
    /// Cable delay per port.
    pub cable_delays: Vec<CableDelay>,
    /// The running stream's spike ring, filtered cache and detector read-outs.
    pub processing: Option<ProcessingOutputs>,
    /// A board's link figures (none for the simulated device).
    pub link: Option<Arc<ephysd_drivers::rhythm::board::BoardHealth>>,
}

impl StatusView {
    pub(super) fn of(st: &State) -> Self {
        StatusView {
            device: Arc::clone(&st.description),
            cache: st.stream.as_ref().map(|s| Arc::clone(&s.cache)),
            stream_started_at: st.stream.as_ref().map(|s| s.started_at),
            recording: st.recording.as_ref().map(|r| (r.path().to_path_buf(), Arc::clone(r.progress()))),
            triggers: st.triggers.iter().copied().collect(),
            last_error: st.last_error.clone(),
            recording_config: st.recording_config.clone(),
            channels: Arc::clone(&st.channels),
            probes: Arc::clone(&st.probes),
            dataset_uid: st.dataset_uid.clone(),
            cable_delays: st.cable_delays.clone(),
            processing: st.processing.outputs(),
            link: st.device.health(),
        }
    }
}

/// A status report, as `GetStatus` and `ephysd status` show it.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    /// What the device is and can do.
    pub device: Arc<DeviceDescription>,
    /// Whether a stream is running.
    pub streaming: bool,
    /// Whether a file is being recorded (a triggered recording waiting for its trigger is
    /// armed, not recording).
    pub recording: bool,
    /// Whether a triggered recording is armed.
    pub armed: bool,
    /// The files being recorded.
    pub files: Vec<PathBuf>,
    /// Oldest and newest frame held in the primary cache, as seconds since the stream started.
    pub cache_time_range: Option<(f64, f64)>,
    /// How full the primary cache is, 0..=1.
    pub cache_fill: f64,
    /// The running recording's file.
    pub active_file: Option<PathBuf>,
    /// Seconds of signal the running recording holds.
    pub recording_seconds: f64,
    /// The last error, until the next recording starts.
    pub last_error: Option<String>,
    /// The pipeline's counters.
    pub counters: CounterSnapshot,
}

impl Engine {
    /// The status now. Never waits for a transition and never changes state: it reads the
    /// last published view and live counters.
    pub fn status(&self) -> EngineStatus {
        let view = self.view();
        let files: Vec<PathBuf> = view.recording.as_ref().map(|(_, p)| p.files().to_vec()).unwrap_or_default();
        let (cache_time_range, cache_fill) = match &view.cache {
            Some(cache) => {
                let rate = cache.sample_rate_hz();
                let (oldest, head) = (cache.oldest(), cache.head());
                let range = (head > 0).then(|| (oldest as f64 / rate, head as f64 / rate));
                (range, (head - oldest) as f64 / cache.capacity_frames() as f64)
            }
            None => (None, 0.0),
        };
        EngineStatus {
            device: Arc::clone(&view.device),
            streaming: view.cache.is_some(),
            recording: !files.is_empty(),
            armed: view.recording.is_some() && !view.triggers.is_empty(),
            cache_time_range,
            cache_fill,
            active_file: files.first().cloned(),
            files,
            recording_seconds: view.recording.as_ref().map_or(0.0, |(_, progress)| progress.seconds()),
            last_error: view.last_error.clone(),
            counters: self.counters.snapshot(),
        }
    }

    /// The last published view.
    pub(super) fn view(&self) -> Arc<StatusView> {
        Arc::clone(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }
}

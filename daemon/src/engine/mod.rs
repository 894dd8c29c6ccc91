//! The control plane's model of the rig: the device, streaming and recording state, and the
//! transitions between them, one file per domain (`streaming`, `recording`, `status`).
//!
//! gRPC handlers, signals and shutdown all go through [`Engine`], so every rule (recording
//! implies streaming, the recording config cannot change mid-recording, ...) lives in one
//! place. Nothing here runs on the real-time path; it only starts and stops the threads that
//! do.
//!
//! # Locks
//!
//! Transitions (start/stop streaming or recording, config changes) hold the state lock for
//! their whole length, so they happen one at a time; they may join threads and touch the disk,
//! so callers run them off the async workers. Status never takes that lock: every transition
//! publishes a [`StatusView`] (an `Arc` swapped under a lock held for a pointer copy), and
//! [`Engine::status`] reads that view plus live atomics. A recording being finalized therefore
//! never delays a status request.

mod channels;
mod core_config;
mod error;
mod hardware;
mod link_watch;
mod processing;
mod reconnect;
mod recording;
mod signals;
mod status;
mod streaming;
mod supervisor;
mod triggers;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use ephysd_drivers::{Device, DeviceDescription, DeviceSpec, Impedance};
use ephysd_pipeline::{Acquisition, BufferPool, PipelineCounters, PrimaryCache, StreamId};

use crate::config::{Autostart, ProbeKeys, Settings};
use crate::kpi::{KpiHandle, KpiSettings, KpiWorker};
use crate::notify::Notifier;
use crate::probe_map::ProbeMap;
use crate::processing::Processing;
use crate::recorder::{ActiveRecording, RecorderEvent, Trigger};

pub use channels::{ChannelTable, ChannelUpdate, SignalKind, NO_GROUP};
pub use core_config::{CableDelay, CoreUpdate, MAX_CABLE_DELAY};
pub use error::{Blocked, EngineError};
pub use processing::SorterView;
pub use recording::RecordingConfig;
pub use signals::{SignalRead, TimeSelection, MAX_REPLY_BYTES};
pub use status::{EngineStatus, StatusView};

/// A running stream, as the control plane keeps it.
struct Stream {
    id: StreamId,
    cache: Arc<PrimaryCache>,
    /// Wall-clock time of the stream's first frame (frame 0).
    started_at: SystemTime,
}

/// Everything transitions change, behind the state lock.
struct State {
    device: Device,
    /// What the open device is and can do; replaced when the device is reopened.
    description: Arc<DeviceDescription>,
    /// Identifies the open device's channel set to clients; new with every reopen.
    dataset_uid: String,
    /// Channel selection and colour groups.
    channels: Arc<ChannelTable>,
    /// Electrode geometry per port (`None`: nothing known about the port's probe).
    probes: Arc<Vec<Option<ProbeMap>>>,
    /// The `[probes]` keys, resolved again for each device opened.
    probe_keys: ProbeKeys,
    /// Cable delay per port, in port order.
    cable_delays: Vec<CableDelay>,
    cache_seconds: u32,
    recording_config: RecordingConfig,
    /// The next recording file index (shared with the running recording, which takes from it).
    next_index: Arc<AtomicU32>,
    next_stream: u64,
    stream: Option<Stream>,
    recording: Option<ActiveRecording>,
    /// Digital lines that gate recording.
    triggers: BTreeSet<Trigger>,
    /// The last impedance measurement, written into each recording's `/channels`.
    impedance: Option<Vec<Impedance>>,
    /// Filters, detection parameters and the sorter, and the running stream's handles.
    processing: Processing,
    last_error: Option<String>,
    /// The device went away mid-stream: what to resume once it opens again.
    reconnect: Option<reconnect::Reconnect>,
}

/// The rig as the control plane sees it. Shared as `Arc<Engine>`.
pub struct Engine {
    state: Mutex<State>,
    view: RwLock<Arc<StatusView>>,
    acquisition: Acquisition,
    counters: Arc<PipelineCounters>,
    notifier: Notifier,
    /// The effective configuration as JSON, written into every recording.
    config_json: String,
    recorder_events: (Sender<RecorderEvent>, Receiver<RecorderEvent>),
    /// Buffers of signal replies, reused once a reply is sent.
    snapshot_buffers: Arc<BufferPool>,
    /// The KPI worker, following the running stream's (filtered) cache and spikes.
    kpi: KpiHandle,
}

impl Engine {
    /// Opens the device `spec` names and builds the engine around it (idle: not streaming).
    pub fn new(
        settings: &Settings,
        spec: &DeviceSpec,
        acquisition: Acquisition,
        notifier: Notifier,
    ) -> Result<Arc<Self>, EngineError> {
        let mut device = crate::replay::open_device(spec)?;
        let description = Arc::new(device.description().clone());
        let impedance = measure_impedance(&mut device, &description);
        let probe_keys = settings.probes.clone();
        let probes = Arc::new(channels::resolve_probes(&probe_keys, &description).map_err(EngineError::Probes)?);
        let counters = Arc::clone(acquisition.counters());
        let recording_config = RecordingConfig::from(&settings.recording);
        let st = State {
            device,
            channels: Arc::new(ChannelTable::new(&description)),
            cable_delays: CableDelay::defaults(&description),
            dataset_uid: uuid::Uuid::new_v4().to_string(),
            probes,
            probe_keys,
            cache_seconds: settings.cache.seconds,
            processing: Processing::new(&settings.processing, settings.cache.seconds, &description),
            recording_config,
            next_index: Arc::new(AtomicU32::new(1)),
            next_stream: 1,
            stream: None,
            recording: None,
            triggers: BTreeSet::new(),
            impedance,
            last_error: None,
            reconnect: None,
            description,
        };
        let view = StatusView::of(&st);
        let kpi = KpiWorker::idle(KpiSettings::default())
            .map_err(|e| EngineError::Spawn { thread: "kpi", source: std::io::Error::other(e.to_string()) })?;
        let engine = Arc::new(Engine {
            state: Mutex::new(st),
            view: RwLock::new(Arc::new(view)),
            acquisition,
            counters,
            notifier,
            config_json: settings.to_json(),
            recorder_events: crossbeam_channel::unbounded(),
            snapshot_buffers: Arc::new(BufferPool::default()),
            kpi,
        });
        supervisor::spawn(&engine).map_err(|source| EngineError::Spawn { thread: "supervisor", source })?;
        Ok(engine)
    }

    /// The pipeline's counters.
    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// What the open device is and can do (it changes only when the device is reopened:
    /// a restart into another mode or a new sample rate).
    pub fn description(&self) -> Arc<DeviceDescription> {
        Arc::clone(&self.view().device)
    }

    /// Starts what `recording.autostart` asks for, as a client would.
    pub fn autostart(&self, what: Autostart) -> Result<(), EngineError> {
        match what {
            Autostart::Off => Ok(()),
            Autostart::Stream => self.start_streaming(),
            Autostart::Record => self.start_recording().map(drop),
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
            st.processing.stream_stopped();
            self.kpi.detach();
        }
        self.publish(&st);
    }

    /// The KPI worker.
    pub fn kpi(&self) -> &KpiHandle {
        &self.kpi
    }

    /// Takes the state lock for a transition.
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes what status reports from `st`. Call at the end of every transition.
    fn publish(&self, st: &State) {
        let view = Arc::new(StatusView::of(st));
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// Says `message` in status (as the last error) from outside a transition.
    fn note_status(&self, message: String) {
        let mut st = self.lock();
        self.set_error(&mut st, message);
        self.publish(&st);
    }

    /// Records an error for status and the journal's STATUS line.
    fn set_error(&self, st: &mut State, message: String) {
        self.notifier.status(&format!("error: {message}"));
        st.last_error = Some(message);
    }
}

/// The simulated device's electrode impedances, known when it is opened, so recordings can say
/// what each electrode was. A board measures on request (`GetIntanImpedance`: seconds of test
/// currents, which opening it, and reopening it after an outage, must not wait for); its
/// recordings carry the last measurement.
fn measure_impedance(device: &mut Device, description: &DeviceDescription) -> Option<Vec<Impedance>> {
    if !description.can_measure_impedance || !description.simulated {
        return None;
    }
    device.control().measure_impedance().map_err(|e| tracing::warn!("impedance not measured: {e}")).ok()
}

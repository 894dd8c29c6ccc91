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

mod error;
mod recording;
mod status;
mod streaming;
mod supervisor;
mod triggers;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crossbeam_channel::{Receiver, Sender};
use ephysd_drivers::{open, Device, DeviceDescription, DeviceSpec, Impedance};
use ephysd_pipeline::{Acquisition, PipelineCounters, PrimaryCache, StreamId};

use crate::config::{Autostart, Settings};
use crate::notify::Notifier;
use crate::recorder::{ActiveRecording, RecorderEvent, Trigger};

pub use error::{Blocked, EngineError};
pub use recording::RecordingConfig;
pub use status::{EngineStatus, StatusView};

/// A running stream, as the control plane keeps it.
struct Stream {
    id: StreamId,
    cache: Arc<PrimaryCache>,
}

/// Everything transitions change, behind the state lock.
struct State {
    device: Device,
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
    last_error: Option<String>,
}

/// The rig as the control plane sees it. Shared as `Arc<Engine>`.
pub struct Engine {
    state: Mutex<State>,
    view: RwLock<Arc<StatusView>>,
    description: Arc<DeviceDescription>,
    acquisition: Acquisition,
    counters: Arc<PipelineCounters>,
    notifier: Notifier,
    /// The effective configuration as JSON, written into every recording.
    config_json: String,
    recorder_events: (Sender<RecorderEvent>, Receiver<RecorderEvent>),
}

impl Engine {
    /// Opens the device `spec` names and builds the engine around it (idle: not streaming).
    pub fn new(
        settings: &Settings,
        spec: &DeviceSpec,
        acquisition: Acquisition,
        notifier: Notifier,
    ) -> Result<Arc<Self>, EngineError> {
        let mut device = open(spec)?;
        let description = Arc::new(device.description().clone());
        // Measured once with the device idle, so recordings can say what each electrode was.
        let impedance = if description.can_measure_impedance {
            device.control().measure_impedance().map_err(|e| tracing::warn!("impedance not measured: {e}")).ok()
        } else {
            None
        };
        let counters = Arc::clone(acquisition.counters());
        let recording_config = RecordingConfig::from(&settings.recording);
        let view = StatusView::idle(Arc::clone(&description), recording_config.clone());
        let engine = Arc::new(Engine {
            state: Mutex::new(State {
                device,
                cache_seconds: settings.cache.seconds,
                recording_config,
                next_index: Arc::new(AtomicU32::new(1)),
                next_stream: 1,
                stream: None,
                recording: None,
                triggers: BTreeSet::new(),
                impedance,
                last_error: None,
            }),
            view: RwLock::new(Arc::new(view)),
            description,
            acquisition,
            counters,
            notifier,
            config_json: settings.to_json(),
            recorder_events: crossbeam_channel::unbounded(),
        });
        supervisor::spawn(&engine).map_err(|source| EngineError::Spawn { thread: "supervisor", source })?;
        Ok(engine)
    }

    /// The pipeline's counters.
    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// What the device is and can do (fixed for the engine's life).
    pub fn description(&self) -> &Arc<DeviceDescription> {
        &self.description
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
        }
        self.publish(&st);
    }

    /// Takes the state lock for a transition.
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes what status reports from `st`. Call at the end of every transition.
    fn publish(&self, st: &State) {
        let view = Arc::new(StatusView::of(st, Arc::clone(&self.description)));
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// Records an error for status and the journal's STATUS line.
    fn set_error(&self, st: &mut State, message: String) {
        self.notifier.status(&format!("error: {message}"));
        st.last_error = Some(message);
    }
}

//! One device layer: [`open`] builds whatever a [`DeviceSpec`] names and hands back a
//! [`Device`], which describes itself once, starts streams (the read side, [`Source`]) and is
//! acted on through its [`Control`] side.
//!
//! Everything above the drivers holds a `Device` and never knows whether it is the simulated
//! device or a board.

use std::ops::Range;
use std::sync::Arc;

use crate::control::Control;
use crate::description::DeviceDescription;
use crate::rhythm::board::BoardHealth;
use crate::sim::{GroundTruthSpike, SimConfigError, SimulatedDevice};
use crate::source::Source;
use crate::spec::DeviceSpec;

/// Why a device could not be opened or failed while in use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A simulated device's configuration cannot describe a real board.
    #[error("simulated device: {0}")]
    Simulation(#[from] SimConfigError),
    /// The device was unplugged or stopped answering.
    #[error("{device} is gone: {reason}")]
    Gone {
        /// The device's name.
        device: String,
        /// What showed it (e.g. the USB error).
        reason: String,
    },
    /// The device is there but its data stopped arriving (a stalled USB pipe).
    #[error("{device} stopped delivering data: nothing for {waited_ms} ms while running")]
    Stalled {
        /// The device's name.
        device: String,
        /// How long nothing arrived.
        waited_ms: u64,
    },
    /// A board could not be brought up (clock, cables, headstages).
    #[error(transparent)]
    BringUp(Box<crate::rhythm::board::BringUpError>),
    /// A SmartBox Pro with a SiNAPS probe could not be brought up (FPGA design, clock, probe,
    /// pixels, bitfile).
    #[error("{device}: {reason}")]
    SinapsBringUp {
        /// The device's name.
        device: String,
        /// What went wrong.
        reason: String,
    },
    /// A recording to replay cannot be used.
    #[error("replay of {path}: {reason}")]
    Replay {
        /// The recording.
        path: String,
        /// Why.
        reason: String,
    },
    /// The FrontPanel library could not be loaded.
    #[error(transparent)]
    Library(#[from] crate::frontpanel::library::LibraryError),
    /// KonteX's XDAQ gen 2 device library cannot be used (`frontpanel = "xdaq"`).
    #[error(transparent)]
    XdaqLibrary(#[from] crate::frontpanel::xdaq::XdaqLibraryError),
    /// No board could be opened through the FrontPanel operations.
    #[error("{provider}: {source}")]
    Open {
        /// The library or emulator asked.
        provider: String,
        #[source]
        source: crate::frontpanel::FrontPanelError,
    },
    /// The operating system refused an operation on the device.
    #[error("{device}: {operation} failed: {source}")]
    Io {
        /// The device's name.
        device: String,
        /// What was being done.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl DeviceError {
    /// Whether the device itself has gone away (unplugged, powered off), as opposed to a
    /// request or configuration it refused.
    pub fn is_gone(&self) -> bool {
        matches!(self, DeviceError::Gone { .. })
    }
}

/// A device that knows the truth of its own signal: every spike it put into the stream, for
/// any range of frames. Only the simulated device does; recordings of it keep this in
/// `/ground_truth`, so detection and sorting can be scored against it. Shared across threads
/// (the recorder asks it as frames are written).
pub trait GroundTruth: Send + Sync {
    /// Every spike with a frame in `frames`, ordered by frame.
    fn spikes(&self, frames: Range<u64>) -> Vec<GroundTruthSpike>;
}

/// What each kind of device provides to [`Device`]. The drivers' own devices implement it;
/// so does a device whose data the drivers cannot read themselves (the replay of a
/// recording, whose file format they do not know), through [`Device::from_backend`].
/// Everything else above the drivers holds a [`Device`] and never sees this.
pub trait Backend: Send {
    /// Starts a stream from frame 0 and returns its read side.
    fn start_stream(&mut self) -> Result<Box<dyn Source>, DeviceError>;
    /// The control side.
    fn control(&mut self) -> &mut dyn Control;
    /// The ground truth of the stream started last, if the device knows it.
    fn ground_truth(&self) -> Option<Arc<dyn GroundTruth>> {
        None
    }
    /// Live figures of the device's data link, if it has one that can fail.
    fn health(&self) -> Option<Arc<BoardHealth>> {
        None
    }
}

/// An opened device.
pub struct Device {
    spec: DeviceSpec,
    description: DeviceDescription,
    backend: Box<dyn Backend>,
}

/// Opens the device `spec` names: the simulated device builds nothing until a stream starts;
/// hardware is found, configured and brought up here.
pub fn open(spec: &DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Simulated(config) => {
            let device = SimulatedDevice::new(config.clone())?;
            Ok(Device { spec: spec.clone(), description: device.description(), backend: Box::new(device) })
        }
        DeviceSpec::Rhythm(r) => {
            let board = crate::rhythm::board::open_board(r)?;
            let description = board.description(r);
            Ok(Device { spec: spec.clone(), description, backend: Box::new(board) })
        }
        DeviceSpec::Sinaps(s) => {
            let board = crate::sinaps::open_sinaps(s)?;
            let description = board.description();
            Ok(Device { spec: spec.clone(), description, backend: Box::new(board) })
        }
        DeviceSpec::XdaqLibrary(x) => Err(crate::frontpanel::xdaq::probe(&x.library).into()),
        DeviceSpec::Replay(r) => Err(DeviceError::Replay {
            path: r.path.display().to_string(),
            reason: "a recording is replayed by the daemon, which reads its file format".into(),
        }),
    }
}

impl Device {
    /// A device the drivers do not open themselves (the replay of a recording), from its
    /// parts.
    pub fn from_backend(spec: DeviceSpec, description: DeviceDescription, backend: Box<dyn Backend>) -> Device {
        Device { spec, description, backend }
    }

    /// What the device is and can do.
    pub fn description(&self) -> &DeviceDescription {
        &self.description
    }

    /// The spec it was opened from.
    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    /// Starts a stream (frame indices from 0) and returns the source the acquisition thread
    /// reads it from. Building it may take tens of milliseconds; do it off the real-time path.
    pub fn start_stream(&mut self) -> Result<Box<dyn Source>, DeviceError> {
        self.backend.start_stream()
    }

    /// The control side: outputs, stimulation, impedance.
    pub fn control(&mut self) -> &mut dyn Control {
        self.backend.control()
    }

    /// The ground truth of the stream started last: `Some` for the simulated device once a
    /// stream has started, `None` for hardware.
    pub fn ground_truth(&self) -> Option<Arc<dyn GroundTruth>> {
        self.backend.ground_truth()
    }

    /// Live figures of a board's data link (corrupt reads, frames lost, FIFO fill), shared
    /// with its streams: `None` for the simulated device, whose link cannot fail.
    pub fn health(&self) -> Option<Arc<BoardHealth>> {
        self.backend.health()
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("description", &self.description).finish_non_exhaustive()
    }
}

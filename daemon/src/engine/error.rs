//! Why the engine refused or failed a request, as types that keep their cause.
//!
//! Each variant says what a client did or what went wrong in a way that maps to one gRPC code
//! (see `grpc::errors`): a bad argument, a request the current state does not allow, a name
//! already taken, a full disk, a device that went away.

use std::path::PathBuf;

use ephysd_drivers::DeviceError;
use ephysd_hdf5::RecordingError;

/// What a refused request was trying to do while a recording ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Stopping the stream.
    StopStream,
    /// Changing the recording configuration.
    ChangeRecordingConfig,
    /// Changing the hardware or stage-1 filters (what a recording's spikes were detected
    /// through must not change under it; stage 2 may).
    ChangeFilters,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blocked::StopStream => "stop recording before stopping the stream",
            Blocked::ChangeRecordingConfig => "the recording config cannot change during a recording",
            Blocked::ChangeFilters => "the hardware and stage-1 filters cannot change during a recording (stage 2 can)",
        })
    }
}

/// A request the engine refused or could not carry out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request is not allowed while a recording runs.
    #[error("recording is on: {0}")]
    RecordingOn(Blocked),
    /// A field of the request is out of range.
    #[error("{field} = {value}: {allowed}")]
    InvalidArgument {
        /// The field, named as the client sent it.
        field: String,
        /// The value sent, as it reads in a message (text quoted, numbers bare).
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The request is not allowed while the stream runs.
    #[error("streaming is on: stop streaming before {action}")]
    StreamingOn {
        /// What was refused ("changing the sample rate").
        action: &'static str,
    },
    /// The request needs a running stream.
    #[error("streaming is off: {needed} needs a running stream; start streaming first")]
    NotStreaming {
        /// What needed it ("reading signals").
        needed: &'static str,
    },
    /// None of the time range asked for is in the primary cache.
    #[error("{asked} is not in the primary cache, which holds {held}")]
    TimeRangeNotHeld {
        /// The range asked for, in words.
        asked: String,
        /// What the cache holds, in words.
        held: String,
    },
    /// The answer would be larger than a reply may be.
    #[error("the reply would be {bytes} bytes, more than the {limit} a reply may hold; ask for fewer channels or a shorter time range")]
    ReplyTooLarge {
        /// Bytes the reply would hold.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A device mode that exists but cannot be opened here (no driver, no device attached).
    #[error("device mode {backbone} cannot be opened: {reason}; the device is left as it was")]
    DeviceUnavailable {
        /// The mode asked for, as `device.backbone` names it.
        backbone: String,
        /// Why.
        reason: String,
    },
    /// A probe map does not fit the device's ports.
    #[error(transparent)]
    Probes(#[from] super::channels::ProbeConfigError),
    /// The recording's file name is taken and there is no index to move on to.
    #[error("{} already exists and recordings are never overwritten; enable the index or timestamp, or change the base name", path.display())]
    FileExists {
        /// The taken name.
        path: PathBuf,
    },
    /// Every index from the next one on is taken.
    #[error("no free recording index in {}", dir.display())]
    NoFreeIndex {
        /// The recording directory.
        dir: PathBuf,
    },
    /// The recording directory cannot be created or written.
    #[error("recording directory {} is not usable: {source}", path.display())]
    RecordingDirectory {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Too little free space to start a recording.
    #[error("{} has {free_mb} MiB free, less than recording.min_free_mb = {min_free_mb} MiB; free some space or lower the key", path.display())]
    LowDiskSpace {
        /// The recording directory.
        path: PathBuf,
        /// Free space there, MiB.
        free_mb: u64,
        /// The configured minimum, MiB.
        min_free_mb: u64,
    },
    /// The recording ended on its own (a full disk, a failed write); its files are closed.
    #[error("{0}")]
    RecordingEnded(crate::recorder::RecordingFailure),
    /// The device could not start a stream, or failed.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// A thread the engine needs could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        /// Which thread.
        thread: &'static str,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The recording could not be created, written or finalized.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// A filter, detection parameter or sorter command that cannot be carried out.
    #[error(transparent)]
    Processing(#[from] crate::processing::ProcessingError),
    /// The request is for a kind of device other than the one open.
    #[error("{method} needs {needs}; the current device is {device} ({backbone})")]
    WrongDevice {
        /// The Allego method, as the wire names it.
        method: &'static str,
        /// What it needs.
        needs: &'static str,
        /// The open device's name.
        device: String,
        /// Its `device.backbone` name.
        backbone: &'static str,
    },
    /// The device refused or failed a control request (outputs, stimulation, impedance).
    #[error("device: {0}")]
    Control(#[from] ephysd_drivers::ControlError),
    /// A Sinaps probe method was refused (a bad register, wire-out address or bitfile) or
    /// failed on the device.
    #[error("{0}")]
    Sinaps(#[from] ephysd_drivers::SinapsError),
}

//! The FrontPanel operations: how a host talks to the FPGA of a Rhythm-family board.
//!
//! Intan's boards, the Open Ephys acquisition board and KonteX's XDAQ put an FPGA behind USB
//! and expose it through Opal Kelly's FrontPanel model: 32-bit *wire-ins* the host stages and
//! then latches all at once ([`FrontPanel::update_wire_ins`]), *wire-outs* it samples all at
//! once ([`FrontPanel::update_wire_outs`]), one-shot *trigger-ins* (a bit pulsed on an
//! endpoint), and *pipes* that move bulk data (the sample stream out, command lists in). The
//! board drivers ([`rhythm::board`](crate::rhythm::board)) speak only this trait, so the same
//! driver code runs against the vendor library ([`library`], loaded at run time) and against
//! the emulated board ([`crate::emulator`]), in process or through the emulator's own copy of
//! the vendor library's C entry points.
//!
//! Endpoint addresses follow FrontPanel's convention: wire-ins `0x00..=0x1f`, wire-outs
//! `0x20..=0x3f`, trigger-ins `0x40..=0x5f`, pipes in `0x80..=0x9f`, pipes out `0xa0..=0xbf`.

pub mod library;
pub mod xdaq;

use std::fmt;
use std::path::Path;

/// Wire-in endpoints: `0x00..=0x1f`.
pub const WIRE_IN_RANGE: std::ops::RangeInclusive<u8> = 0x00..=0x1f;
/// Wire-out endpoints: `0x20..=0x3f`.
pub const WIRE_OUT_RANGE: std::ops::RangeInclusive<u8> = 0x20..=0x3f;
/// Trigger-in endpoints: `0x40..=0x5f`.
pub const TRIGGER_IN_RANGE: std::ops::RangeInclusive<u8> = 0x40..=0x5f;
/// Pipe-in endpoints: `0x80..=0x9f`.
pub const PIPE_IN_RANGE: std::ops::RangeInclusive<u8> = 0x80..=0x9f;
/// Pipe-out endpoints: `0xa0..=0xbf`.
pub const PIPE_OUT_RANGE: std::ops::RangeInclusive<u8> = 0xa0..=0xbf;

/// FrontPanel's error codes (`ok_ErrorCode` in the vendor's `okFrontPanelDLL.h`), with the
/// values the C API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OkErrorCode {
    Failed,
    Timeout,
    DoneNotHigh,
    TransferError,
    CommunicationError,
    InvalidBitstream,
    FileError,
    DeviceNotOpen,
    InvalidEndpoint,
    InvalidBlockSize,
    UnsupportedFeature,
    FifoUnderflow,
    FifoOverflow,
    DataAlignmentError,
    InvalidParameter,
    /// A code this version does not name.
    Other(i32),
}

impl OkErrorCode {
    /// The code for a C return value (`0` is no error and has no code).
    pub fn from_raw(raw: i32) -> Option<OkErrorCode> {
        Some(match raw {
            0 => return None,
            -1 => OkErrorCode::Failed,
            -2 => OkErrorCode::Timeout,
            -3 => OkErrorCode::DoneNotHigh,
            -4 => OkErrorCode::TransferError,
            -5 => OkErrorCode::CommunicationError,
            -6 => OkErrorCode::InvalidBitstream,
            -7 => OkErrorCode::FileError,
            -8 => OkErrorCode::DeviceNotOpen,
            -9 => OkErrorCode::InvalidEndpoint,
            -10 => OkErrorCode::InvalidBlockSize,
            -15 => OkErrorCode::UnsupportedFeature,
            -16 => OkErrorCode::FifoUnderflow,
            -17 => OkErrorCode::FifoOverflow,
            -18 => OkErrorCode::DataAlignmentError,
            -20 => OkErrorCode::InvalidParameter,
            other => OkErrorCode::Other(other),
        })
    }

    /// The C return value of this code.
    pub fn raw(self) -> i32 {
        match self {
            OkErrorCode::Failed => -1,
            OkErrorCode::Timeout => -2,
            OkErrorCode::DoneNotHigh => -3,
            OkErrorCode::TransferError => -4,
            OkErrorCode::CommunicationError => -5,
            OkErrorCode::InvalidBitstream => -6,
            OkErrorCode::FileError => -7,
            OkErrorCode::DeviceNotOpen => -8,
            OkErrorCode::InvalidEndpoint => -9,
            OkErrorCode::InvalidBlockSize => -10,
            OkErrorCode::UnsupportedFeature => -15,
            OkErrorCode::FifoUnderflow => -16,
            OkErrorCode::FifoOverflow => -17,
            OkErrorCode::DataAlignmentError => -18,
            OkErrorCode::InvalidParameter => -20,
            OkErrorCode::Other(raw) => raw,
        }
    }

    /// Whether the code means the device itself is unreachable (unplugged, powered off), not
    /// that a request was wrong.
    pub fn is_gone(self) -> bool {
        matches!(self, OkErrorCode::DeviceNotOpen | OkErrorCode::TransferError | OkErrorCode::CommunicationError)
    }
}

impl fmt::Display for OkErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OkErrorCode::Other(raw) => write!(f, "error {raw}"),
            named => write!(f, "{named:?} ({})", named.raw()),
        }
    }
}

/// Why a FrontPanel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontPanelError {
    /// The library or device answered with an error code.
    #[error("{operation}: {code}")]
    Code {
        /// The FrontPanel operation (`ReadFromBlockPipeOut`, ...).
        operation: &'static str,
        /// What it answered.
        code: OkErrorCode,
    },
    /// An endpoint address outside the range of its kind.
    #[error("{operation}: endpoint 0x{endpoint:02x} is not a {kind} (allowed 0x{lo:02x}..=0x{hi:02x})")]
    Endpoint { operation: &'static str, endpoint: u8, kind: &'static str, lo: u8, hi: u8 },
    /// A pipe transfer moved fewer bytes than asked.
    #[error("{operation}: moved {moved} of {asked} bytes")]
    ShortTransfer { operation: &'static str, asked: usize, moved: usize },
    /// No device with this serial number is attached.
    #[error("no FrontPanel device with serial {serial:?} (attached: {attached})")]
    NotFound { serial: String, attached: String },
    /// The FPGA configuration file cannot be used.
    #[error("FPGA bitfile {path}: {reason}")]
    Bitfile { path: String, reason: String },
}

impl FrontPanelError {
    /// Whether the device itself went away (as opposed to a refused request).
    pub fn is_gone(&self) -> bool {
        matches!(self, FrontPanelError::Code { code, .. } if code.is_gone())
    }
}

/// Checks that `endpoint` lies in `range`, the endpoints of `kind`.
pub fn check_endpoint(
    operation: &'static str,
    endpoint: u8,
    kind: &'static str,
    range: std::ops::RangeInclusive<u8>,
) -> Result<(), FrontPanelError> {
    if range.contains(&endpoint) {
        Ok(())
    } else {
        Err(FrontPanelError::Endpoint { operation, endpoint, kind, lo: *range.start(), hi: *range.end() })
    }
}

/// What an opened FrontPanel device says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelInfo {
    /// The module's serial number (up to 10 characters).
    pub serial: String,
    /// The board model as the library names it (`XEM6310LX45`, ...).
    pub model: String,
    /// The user-settable device id string.
    pub device_id: String,
}

/// An opened FrontPanel device: the operations a Rhythm-family driver uses.
///
/// Implementations: the vendor library ([`library::LibraryPanel`]) and the emulated board
/// ([`crate::emulator::EmulatedPanel`]). Pipe reads and writes block until the transfer is
/// done; everything else is quick. Not shared: one owner at a time (the driver wraps it in a
/// mutex where the acquisition thread and the control plane both need it).
pub trait FrontPanel: Send {
    /// Serial, model and device id.
    fn info(&self) -> PanelInfo;
    /// Configures the FPGA from a bitfile on disk.
    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError>;
    /// Stages `value` into the bits of wire-in `endpoint` selected by `mask`; takes effect at
    /// the next [`FrontPanel::update_wire_ins`].
    fn set_wire_in(&mut self, endpoint: u8, value: u32, mask: u32) -> Result<(), FrontPanelError>;
    /// Sends every staged wire-in to the FPGA at once.
    fn update_wire_ins(&mut self) -> Result<(), FrontPanelError>;
    /// Samples every wire-out at once.
    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError>;
    /// A wire-out's value as of the last [`FrontPanel::update_wire_outs`].
    fn wire_out(&self, endpoint: u8) -> Result<u32, FrontPanelError>;
    /// Pulses one bit of trigger-in `endpoint`.
    fn activate_trigger_in(&mut self, endpoint: u8, bit: u8) -> Result<(), FrontPanelError>;
    /// Reads `buf.len()` bytes from pipe-out `endpoint`. `block_size` is the block-throttled
    /// pipe's block size in bytes (USB 3 boards), or `None` for a plain pipe (USB 2).
    /// Returns the bytes read, which is all of them or an error.
    fn read_pipe_out(
        &mut self,
        endpoint: u8,
        block_size: Option<usize>,
        buf: &mut [u8],
    ) -> Result<usize, FrontPanelError>;
    /// Writes `data` to pipe-in `endpoint`.
    fn write_pipe_in(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, FrontPanelError>;
}

/// A panel with several owners: each call takes the lock for its own duration. This lets a
/// test keep a handle on the emulated board, to look at its chips and sequencers, while the
/// driver runs it.
impl<P: FrontPanel> FrontPanel for std::sync::Arc<std::sync::Mutex<P>> {
    fn info(&self) -> PanelInfo {
        self.lock().unwrap_or_else(|p| p.into_inner()).info()
    }
    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).configure_fpga(bitfile)
    }
    fn set_wire_in(&mut self, endpoint: u8, value: u32, mask: u32) -> Result<(), FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).set_wire_in(endpoint, value, mask)
    }
    fn update_wire_ins(&mut self) -> Result<(), FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).update_wire_ins()
    }
    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).update_wire_outs()
    }
    fn wire_out(&self, endpoint: u8) -> Result<u32, FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).wire_out(endpoint)
    }
    fn activate_trigger_in(&mut self, endpoint: u8, bit: u8) -> Result<(), FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).activate_trigger_in(endpoint, bit)
    }
    fn read_pipe_out(
        &mut self,
        endpoint: u8,
        block_size: Option<usize>,
        buf: &mut [u8],
    ) -> Result<usize, FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).read_pipe_out(endpoint, block_size, buf)
    }
    fn write_pipe_in(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, FrontPanelError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).write_pipe_in(endpoint, data)
    }
}

/// One FrontPanel device attached to the host, as a library lists it before opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPanel {
    pub serial: String,
    pub model: String,
}

/// Where FrontPanel devices come from: the vendor library, or the emulator.
pub trait PanelProvider: Send + Sync {
    /// What this provider is (the library's path, or "emulated"), for messages.
    fn describe(&self) -> String;
    /// Every device attached now.
    fn list(&self) -> Result<Vec<ListedPanel>, FrontPanelError>;
    /// Opens the device with `serial`, or the first one attached when `serial` is `None`.
    fn open(&self, serial: Option<&str>) -> Result<Box<dyn FrontPanel>, FrontPanelError>;
}

//! The one interface between the pipeline and whatever produces frames.
//!
//! Modelled on the controller split of acquisition software for Rhythm boards: an abstract
//! source with the real device and its stand-ins side by side, so the pipeline never knows
//! which it has.

use crate::frame::{BlockLayout, FrameBlock};

/// What a source tells the pipeline about itself when a stream starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Human-readable name, shown in status and written into recordings.
    pub name: String,
    /// Frames per second of the device clock.
    pub sample_rate_hz: f64,
    /// Shape of every block the source fills.
    pub layout: BlockLayout,
    /// Digital input and output lines the board has.
    pub digital_in_channels: usize,
    pub digital_out_channels: usize,
}

/// Why a source could not deliver a block.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source has no more data (the end of a replayed file).
    #[error("the source has ended")]
    Ended,
    /// The device went away or failed; the stream must stop.
    #[error("device failure: {0}")]
    Device(String),
}

/// A producer of frame blocks. Implementations must not allocate in [`Source::read_block`]:
/// it runs on the real-time acquisition thread.
pub trait Source: Send {
    /// Describes the stream this source delivers.
    fn info(&self) -> &SourceInfo;

    /// Fills `block` with the next frames. Sources paced by hardware block until the frames
    /// exist; the simulated rig paces itself to a monotonic clock unless accelerated.
    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError>;
}

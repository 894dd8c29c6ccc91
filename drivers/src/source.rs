//! The read side of a device: what the acquisition thread pulls frames from.
//!
//! Modelled on the controller split of acquisition software for Rhythm boards: an abstract
//! source with the real device and its stand-ins side by side, so the pipeline never knows
//! which it has. Acting on the device (outputs, stimulation, impedance) is a separate trait,
//! [`Control`](crate::Control), held by the control plane.

use crate::device::DeviceError;
use crate::frame::{BlockLayout, FrameBlock};

/// Why a source could not deliver a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source has no more data (the end of a replayed file).
    #[error("the source has ended")]
    Ended,
    /// The block handed in was not shaped for this source (a bug in the caller).
    #[error("block layout {got:?} does not match the source's {expected:?}")]
    LayoutMismatch {
        /// The source's layout.
        expected: BlockLayout,
        /// The block's layout.
        got: BlockLayout,
    },
    /// The device went away or failed; the stream must stop.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A producer of frame blocks: the read side of a [`Device`](crate::Device).
/// Implementations must not allocate in [`Source::read_block`]: it runs on the real-time
/// acquisition thread.
pub trait Source: Send {
    /// Shape of every block this source fills; fixed for the life of the stream.
    fn layout(&self) -> BlockLayout;

    /// Fills `block` with the next frames. Sources paced by hardware block until the frames
    /// exist; the simulated device paces itself to a monotonic clock unless accelerated.
    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError>;
}

//! Acquisition sources for ephysd.
//!
//! Everything above this crate sees one interface, [`Source`], whatever is behind it: the
//! simulated rig today, the Rhythm/XDAQ boards, Sinaps probes and file replay later. A source
//! fills a preallocated [`FrameBlock`] in place, so the acquisition thread never allocates.

pub mod frame;
pub mod sim;
pub mod source;

pub use frame::{BlockLayout, FrameBlock, LayoutError, AMPLIFIER_UV_PER_UNIT, MAX_AMPLIFIER_CHANNELS};
pub use source::{Source, SourceError, SourceInfo};

//! The USB frames of the Rhythm-family boards: Intan's RHD USB interface board, RHD recording
//! controllers and RHS stim/record controller, the Open Ephys acquisition board and KonteX's
//! XDAQ (gen 1 and gen 2, with RHD or RHS headstages).
//!
//! A board streams frames back to back over USB: one frame per sample instant, holding every
//! enabled data stream's amplifier and aux words, the board's analog inputs and TTL words, a
//! 32-bit sample index, and an 8-byte magic number that starts every frame. [`FrameFormat`]
//! says where each field sits for a board and stream count; [`decode()`] turns whole frames into
//! a [`FrameBlock`](crate::FrameBlock) without allocating, checking every magic number and
//! sample index; [`encode()`] does the reverse (a board emulator's side).
//!
//! The layouts come from the boards' reference software: Intan-RHX
//! (`Engine/API/Hardware/rhxdatablock.cpp` and `.h`, `abstractrhxcontroller.cpp`,
//! `rhxdatareader.cpp`, `synthdatablockgenerator.cpp`, `usbdatathread.cpp`), the Open Ephys
//! GUI's Rhythm plugin (`rhythm-api/rhd2000datablock.cpp` and `.h`) and pyxdaq
//! (`pyxdaq/datablock.py`, `pyxdaq/xdaq.py`). The [`format`](mod@format) module's documentation has the
//! table.
//!
//! Corrupt data is never merged: a frame without the magic number fails the call
//! ([`DecodeError::BadMagic`]), and a driver counts the corrupt block, keeps the intact frames
//! before it, and finds whole frames again with [`resync`]; the frames lost show up as a gap
//! in the next call's [`DecodeReport`] (and in the block's `frame_index`).

pub mod board;
pub mod decode;
pub mod encode;
pub mod endpoints;
pub mod extras;
pub mod format;
pub mod rhd;
pub mod rhs;
mod transpose;

pub use decode::{decode, decode_with_extras, resync, DecodeError, DecodeReport, Gap};
pub use encode::{encode, encode_with_extras, EncodeError};
pub use extras::FrameExtras;
pub use format::{
    Board, ChipFamily, FormatError, FrameFormat, FrameOffsets, LayoutMismatch, XdaqGeneration, ANALOG_INPUTS,
    ANALOG_OUTPUTS, MAGIC_RHD_USB2, MAGIC_RHD_USB3, MAGIC_RHS, STIM_FLAG_WORDS,
};

/// A headstage chip on a Rhythm-family board: an RHD2000 recording chip or an RHS2116
/// stimulation/recording chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadstageChip {
    Rhd(rhd::RhdChip),
    Rhs(rhs::RhsChip),
}

impl HeadstageChip {
    /// The product name (`RHD2164`, `RHS2116`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            HeadstageChip::Rhd(c) => c.name(),
            HeadstageChip::Rhs(c) => c.name(),
        }
    }

    /// Amplifier channels.
    pub const fn amplifiers(self) -> usize {
        match self {
            HeadstageChip::Rhd(c) => c.amplifiers(),
            HeadstageChip::Rhs(c) => c.amplifiers(),
        }
    }

    /// Data streams the chip fills: two for an RHD2164, one otherwise.
    pub const fn streams(self) -> usize {
        match self {
            HeadstageChip::Rhd(c) => c.streams(),
            HeadstageChip::Rhs(_) => 1,
        }
    }

    /// The family of the chip, which a board's frames are laid out for.
    pub const fn family(self) -> ChipFamily {
        match self {
            HeadstageChip::Rhd(_) => ChipFamily::Rhd,
            HeadstageChip::Rhs(_) => ChipFamily::Rhs,
        }
    }
}

impl From<rhd::RhdChip> for HeadstageChip {
    fn from(c: rhd::RhdChip) -> HeadstageChip {
        HeadstageChip::Rhd(c)
    }
}

impl From<rhs::RhsChip> for HeadstageChip {
    fn from(c: rhs::RhsChip) -> HeadstageChip {
        HeadstageChip::Rhs(c)
    }
}

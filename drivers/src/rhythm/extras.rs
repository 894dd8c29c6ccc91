//! The fields of a frame that a [`FrameBlock`](crate::FrameBlock) has no lane for.

use super::format::{ChipFamily, FrameFormat, ANALOG_OUTPUTS};

/// Board-specific fields of each frame, preallocated for one format and block size like the
/// frame block they go with, all frame-major. A lane a format does not have is empty.
///
/// Decoding into them is optional ([`decode_with_extras`](super::decode_with_extras)); encoding
/// from them ([`encode_with_extras`](super::encode_with_extras)) reproduces a board's frames
/// byte for byte (filler words aside, which are always written as 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameExtras {
    frames_per_block: usize,
    /// RHS: the DC amplifier words (10-bit, RHX reads them as `-0.01923 V × (code − 512)`),
    /// in the amplifier lane's channel order (`stream × 16 + channel`).
    pub dc_amplifier: Vec<u16>,
    /// RHS: the high words of the 32-bit aux command results (all ones after a WRITE, zero
    /// after a READ), in the aux lane's order (`stream × 4 + slot`).
    pub aux_high: Vec<u16>,
    /// RHS: stimulation on, one word per stream (bit n = channel n).
    pub stim_on: Vec<u16>,
    /// RHS: stimulation polarity, one word per stream.
    pub stim_polarity: Vec<u16>,
    /// RHS: amplifier settle, one word per stream.
    pub amp_settle: Vec<u16>,
    /// RHS: charge recovery, one word per stream.
    pub charge_recovery: Vec<u16>,
    /// RHS: the 8 analog outputs as driven (offset binary, 0 V at 32768).
    pub analog_out: Vec<u16>,
    /// XDAQ: bits 16–31 of TTL in (the low half is the block's `digital_in`).
    pub digital_in_high: Vec<u16>,
    /// XDAQ: bits 16–31 of TTL out.
    pub digital_out_high: Vec<u16>,
    /// XDAQ gen 2: the device timestamp of each frame, in microseconds.
    pub device_timestamp_us: Vec<u64>,
}

impl FrameExtras {
    /// Zeroed lanes for `frames_per_block` frames of `format`. Done once per stream.
    pub fn new(format: &FrameFormat, frames_per_block: usize) -> FrameExtras {
        let f = frames_per_block;
        let rhs = format.chip() == ChipFamily::Rhs;
        let lane = |per_frame: usize, present: bool| vec![0u16; if present { f * per_frame } else { 0 }];
        let n = format.streams();
        let xdaq = format.board().digital_word_bytes() == 4;
        FrameExtras {
            frames_per_block: f,
            dc_amplifier: lane(format.amplifier_channels(), rhs),
            aux_high: lane(format.aux_channels(), rhs),
            stim_on: lane(n, rhs),
            stim_polarity: lane(n, rhs),
            amp_settle: lane(n, rhs),
            charge_recovery: lane(n, rhs),
            analog_out: lane(ANALOG_OUTPUTS, rhs),
            digital_in_high: lane(1, xdaq),
            digital_out_high: lane(1, xdaq),
            device_timestamp_us: vec![0; if format.board().has_device_timestamp() { f } else { 0 }],
        }
    }

    /// The number of frames the lanes hold.
    pub fn frames_per_block(&self) -> usize {
        self.frames_per_block
    }

    /// Whether these lanes were built for `format` and a block of at least `frames` frames.
    pub fn fits(&self, format: &FrameFormat, frames: usize) -> bool {
        let f = self.frames_per_block;
        let sized =
            |lane: &[u16], per_frame: usize, present: bool| lane.len() == if present { f * per_frame } else { 0 };
        let rhs = format.chip() == ChipFamily::Rhs;
        let xdaq = format.board().digital_word_bytes() == 4;
        let n = format.streams();
        frames <= f
            && sized(&self.dc_amplifier, format.amplifier_channels(), rhs)
            && sized(&self.aux_high, format.aux_channels(), rhs)
            && sized(&self.stim_on, n, rhs)
            && sized(&self.stim_polarity, n, rhs)
            && sized(&self.amp_settle, n, rhs)
            && sized(&self.charge_recovery, n, rhs)
            && sized(&self.analog_out, ANALOG_OUTPUTS, rhs)
            && sized(&self.digital_in_high, 1, xdaq)
            && sized(&self.digital_out_high, 1, xdaq)
            && self.device_timestamp_us.len() == if format.board().has_device_timestamp() { f } else { 0 }
    }
}

//! The frame block: the unit of data every source produces and every stage consumes.
//!
//! A frame is one sample instant of the whole board: every amplifier channel, every auxiliary
//! input, every analog input and the digital words. Blocks are frame-major (all channels of
//! frame 0, then frame 1, ...) because that is how Rhythm USB frames arrive and how the
//! recording's `/samples` dataset is laid out, so copies stay contiguous.

/// Largest amplifier channel count a board of the Rhythm family (or Sinaps) delivers.
pub const MAX_AMPLIFIER_CHANNELS: usize = 1024;

/// Microvolts per amplifier sample unit of the Intan RHD/RHS amplifiers (0.195 µV/bit).
pub const AMPLIFIER_UV_PER_UNIT: f64 = 0.195;

/// Volts per code of the Rhythm boards' analog inputs (±10.24 V over 16 bits).
pub const ANALOG_IN_VOLTS_PER_CODE: f64 = 312.5e-6;

/// The analog-input code that means 0 V (offset binary).
pub const ANALOG_IN_ZERO_CODE: u16 = 32768;

/// An analog-input code in volts.
#[inline]
pub fn analog_in_volts(code: u16) -> f64 {
    (f64::from(code) - f64::from(ANALOG_IN_ZERO_CODE)) * ANALOG_IN_VOLTS_PER_CODE
}

/// Shape of every block a source produces. Fixed for the life of a stream, so buffers are
/// allocated once at stream start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLayout {
    /// Amplifier (electrode) channels per frame.
    pub amplifier_channels: usize,
    /// Auxiliary inputs per frame (the RHD aux ADCs: accelerometer, temperature, supply).
    pub aux_channels: usize,
    /// Board analog inputs per frame (the BNC ADCs).
    pub analog_in_channels: usize,
    /// Frames per block: the granularity of USB transfers and of the pipeline's work.
    pub frames_per_block: usize,
}

/// A layout that cannot describe a real block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("amplifier_channels = {0} is out of range (allowed 1..={MAX_AMPLIFIER_CHANNELS})")]
    AmplifierChannels(usize),
    #[error("frames_per_block = {0} is out of range (allowed 1..=65536)")]
    FramesPerBlock(usize),
    #[error("aux_channels = {0} is out of range (allowed 0..=96: three per RHD data stream, 32 streams)")]
    AuxChannels(usize),
    #[error("analog_in_channels = {0} is out of range (allowed 0..=16)")]
    AnalogInChannels(usize),
}

impl BlockLayout {
    /// Checks every dimension against what real boards deliver.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if !(1..=MAX_AMPLIFIER_CHANNELS).contains(&self.amplifier_channels) {
            return Err(LayoutError::AmplifierChannels(self.amplifier_channels));
        }
        if !(1..=65536).contains(&self.frames_per_block) {
            return Err(LayoutError::FramesPerBlock(self.frames_per_block));
        }
        if self.aux_channels > 96 {
            return Err(LayoutError::AuxChannels(self.aux_channels));
        }
        if self.analog_in_channels > 16 {
            return Err(LayoutError::AnalogInChannels(self.analog_in_channels));
        }
        Ok(())
    }
}

/// One block of frames, preallocated to its layout and refilled in place by a source.
///
/// `frame_index[i]` is the device's own frame counter for frame `i`. It normally rises by one
/// per frame; a jump is a gap the device reported (dropped USB data, a restart), and is kept
/// visible rather than papered over.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameBlock {
    layout: BlockLayout,
    /// Frames actually filled, `<= layout.frames_per_block` (a source may deliver a short
    /// final block).
    pub frames: usize,
    /// Device frame index of each frame.
    pub frame_index: Vec<u64>,
    /// Amplifier samples, frame-major, signed, [`AMPLIFIER_UV_PER_UNIT`] µV per unit.
    pub amplifier: Vec<i16>,
    /// Auxiliary input samples, frame-major, raw 16-bit ADC codes.
    pub aux: Vec<u16>,
    /// Board analog inputs, frame-major, raw 16-bit ADC codes.
    pub analog_in: Vec<u16>,
    /// Digital inputs, one 16-bit word per frame (bit n = input n).
    pub digital_in: Vec<u16>,
    /// Digital outputs as driven by the board, one 16-bit word per frame.
    pub digital_out: Vec<u16>,
}

impl FrameBlock {
    /// Allocates a zeroed block for `layout`. Done once per stream, never on the hot path.
    pub fn new(layout: BlockLayout) -> Self {
        let n = layout.frames_per_block;
        FrameBlock {
            layout,
            frames: 0,
            frame_index: vec![0; n],
            amplifier: vec![0; n * layout.amplifier_channels],
            aux: vec![0; n * layout.aux_channels],
            analog_in: vec![0; n * layout.analog_in_channels],
            digital_in: vec![0; n],
            digital_out: vec![0; n],
        }
    }

    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// The amplifier samples of frame `i`.
    pub fn amplifier_frame(&self, i: usize) -> &[i16] {
        let c = self.layout.amplifier_channels;
        &self.amplifier[i * c..(i + 1) * c]
    }

    /// Amplifier samples of the filled frames only.
    pub fn amplifier_filled(&self) -> &[i16] {
        &self.amplifier[..self.frames * self.layout.amplifier_channels]
    }

    /// Counts frames whose index does not follow its predecessor by exactly one, starting
    /// from `previous` (the last frame index seen before this block, if any).
    pub fn count_gaps(&self, previous: Option<u64>) -> u64 {
        let mut gaps = 0;
        let mut prev = previous;
        for &idx in &self.frame_index[..self.frames] {
            if let Some(p) = prev {
                if idx != p.wrapping_add(1) {
                    gaps += 1;
                }
            }
            prev = Some(idx);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(ch: usize) -> BlockLayout {
        BlockLayout { amplifier_channels: ch, aux_channels: 3, analog_in_channels: 8, frames_per_block: 128 }
    }

    #[test]
    fn validate_names_the_offending_dimension() {
        assert_eq!(layout(0).validate(), Err(LayoutError::AmplifierChannels(0)));
        assert_eq!(layout(1025).validate(), Err(LayoutError::AmplifierChannels(1025)));
        assert!(layout(1024).validate().is_ok());
        let msg = LayoutError::AmplifierChannels(2000).to_string();
        assert!(msg.contains("2000") && msg.contains("1..=1024"), "{msg}");
    }

    #[test]
    fn new_block_is_sized_to_its_layout() {
        let b = FrameBlock::new(layout(64));
        assert_eq!(b.amplifier.len(), 128 * 64);
        assert_eq!(b.aux.len(), 128 * 3);
        assert_eq!(b.analog_in.len(), 128 * 8);
        assert_eq!(b.digital_in.len(), 128);
    }

    #[test]
    fn gaps_are_counted_across_block_boundaries() {
        let mut b = FrameBlock::new(layout(4));
        b.frames = 4;
        b.frame_index[..4].copy_from_slice(&[10, 11, 13, 14]);
        assert_eq!(b.count_gaps(Some(9)), 1);
        assert_eq!(b.count_gaps(Some(5)), 2);
        assert_eq!(b.count_gaps(None), 1);
    }
}

//! The frames of the data pipe ([`endpoints::frame`](super::endpoints::frame)): encoding (the
//! emulated FPGA's side) and decoding into the pipeline's [`FrameBlock`] (the driver's side).
//!
//! Every frame is checked: a frame without the magic word is counted as corrupt and skipped,
//! and whole frames are found again after it ([`resync`]); a jump in the frame counter is
//! counted as frames lost. Both show as a jump in `frame_index` (a gap), never as frames
//! merged from damaged data. Decoding allocates nothing.

use super::endpoints::frame as layout;
use crate::frame::FrameBlock;

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Status flags ([`layout::FLAG_CALIBRATING`], shank errors).
    pub flags: u16,
    /// Digital inputs.
    pub digital_in: u16,
    /// The FPGA's frame counter.
    pub counter: u64,
}

/// Bytes of one frame of `channels` pixels.
pub const fn bytes_per_frame(channels: usize) -> usize {
    layout::HEADER_BYTES + 2 * channels
}

/// Writes one frame of `samples` into `out` (exactly [`bytes_per_frame`] bytes).
pub fn encode_frame(out: &mut [u8], header: &FrameHeader, samples: &[i16]) {
    assert_eq!(out.len(), bytes_per_frame(samples.len()), "frame buffer size");
    out[layout::MAGIC_AT..layout::MAGIC_AT + 4].copy_from_slice(&layout::MAGIC.to_le_bytes());
    out[layout::FLAGS_AT..layout::FLAGS_AT + 2].copy_from_slice(&header.flags.to_le_bytes());
    out[layout::DIGITAL_IN_AT..layout::DIGITAL_IN_AT + 2].copy_from_slice(&header.digital_in.to_le_bytes());
    out[layout::COUNTER_AT..layout::COUNTER_AT + 8].copy_from_slice(&header.counter.to_le_bytes());
    for (o, s) in out[layout::HEADER_BYTES..].chunks_exact_mut(2).zip(samples) {
        o.copy_from_slice(&s.to_le_bytes());
    }
}

/// Whether a frame starts at `bytes[at..]`.
fn magic_at(bytes: &[u8], at: usize) -> bool {
    bytes.get(at..at + 4).is_some_and(|m| m == layout::MAGIC.to_le_bytes())
}

/// The header of the frame starting `frame`, or `None` if it does not start with the magic.
pub fn read_header(frame: &[u8]) -> Option<FrameHeader> {
    if !magic_at(frame, 0) || frame.len() < layout::HEADER_BYTES {
        return None;
    }
    let u16_at = |at: usize| u16::from_le_bytes([frame[at], frame[at + 1]]);
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&frame[layout::COUNTER_AT..layout::COUNTER_AT + 8]);
    Some(FrameHeader {
        flags: u16_at(layout::FLAGS_AT),
        digital_in: u16_at(layout::DIGITAL_IN_AT),
        counter: u64::from_le_bytes(counter),
    })
}

/// Where whole frames start again at or after `from`: the first offset with the magic whose
/// frame is followed by another magic (or runs to the end of `bytes`). `None`: nowhere.
pub fn resync(bytes: &[u8], from: usize, bytes_per_frame: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(3)).find(|&at| {
        magic_at(bytes, at) && (at + bytes_per_frame + 4 > bytes.len() || magic_at(bytes, at + bytes_per_frame))
    })
}

/// What one [`FrameDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOutcome {
    /// Bytes used up (decoded, or skipped as corrupt); the rest start a frame not yet whole.
    pub consumed: usize,
    /// Frames decoded into the block.
    pub frames: usize,
    /// Frames found without the magic word.
    pub corrupt: u64,
    /// Frames missing from the counter's sequence (dropped, overflowed or corrupt).
    pub missing: u64,
}

/// Decodes a stream's frames into blocks, numbering them from the stream's first frame.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    channels: usize,
    bytes_per_frame: usize,
    /// The counter of the stream's first frame.
    base: Option<u64>,
    /// The counter the next frame should carry.
    next: Option<u64>,
}

impl FrameDecoder {
    /// A decoder for frames of `channels` pixels.
    pub fn new(channels: usize) -> FrameDecoder {
        FrameDecoder { channels, bytes_per_frame: bytes_per_frame(channels), base: None, next: None }
    }

    pub fn bytes_per_frame(&self) -> usize {
        self.bytes_per_frame
    }

    /// Decodes whole frames of `bytes` into `block` from row `block.frames` on, until the
    /// block is full or no whole frame is left; `block.frames` grows by the frames decoded.
    pub fn decode(&mut self, bytes: &[u8], block: &mut FrameBlock) -> DecodeOutcome {
        let bpf = self.bytes_per_frame;
        let capacity = block.layout().frames_per_block;
        let ch = self.channels;
        debug_assert_eq!(block.layout().amplifier_channels, ch);
        let mut out = DecodeOutcome::default();
        let mut at = 0;
        while block.frames < capacity && at + bpf <= bytes.len() {
            let frame = &bytes[at..at + bpf];
            let Some(header) = read_header(frame) else {
                out.corrupt += 1;
                at = resync(bytes, at + 1, bpf).unwrap_or(bytes.len());
                continue;
            };
            let base = *self.base.get_or_insert(header.counter);
            if let Some(expected) = self.next {
                out.missing += header.counter.saturating_sub(expected);
            }
            self.next = Some(header.counter.wrapping_add(1));
            let row = block.frames;
            block.frame_index[row] = header.counter.wrapping_sub(base);
            block.digital_in[row] = header.digital_in;
            block.digital_out[row] = 0;
            let dst = &mut block.amplifier[row * ch..(row + 1) * ch];
            for (d, s) in dst.iter_mut().zip(frame[layout::HEADER_BYTES..].chunks_exact(2)) {
                *d = i16::from_le_bytes([s[0], s[1]]);
            }
            block.frames += 1;
            out.frames += 1;
            at += bpf;
        }
        out.consumed = at;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BlockLayout;

    const CH: usize = 4;

    fn frames(counters: &[u64]) -> Vec<u8> {
        let bpf = bytes_per_frame(CH);
        let mut out = vec![0u8; bpf * counters.len()];
        for (i, &c) in counters.iter().enumerate() {
            let samples: Vec<i16> = (0..CH as i16).map(|k| (c as i16) * 10 - k).collect();
            let header = FrameHeader { flags: 1, digital_in: c as u16, counter: c };
            encode_frame(&mut out[i * bpf..(i + 1) * bpf], &header, &samples);
        }
        out
    }

    fn block(frames: usize) -> FrameBlock {
        FrameBlock::new(BlockLayout {
            amplifier_channels: CH,
            aux_channels: 0,
            analog_in_channels: 0,
            frames_per_block: frames,
        })
    }

    #[test]
    fn frames_round_trip_and_are_numbered_from_the_first() {
        let bytes = frames(&[100, 101, 102]);
        let bpf = bytes_per_frame(CH);
        assert_eq!(read_header(&bytes[bpf..]).unwrap(), FrameHeader { flags: 1, digital_in: 101, counter: 101 });
        let mut d = FrameDecoder::new(CH);
        let mut b = block(8);
        let out = d.decode(&bytes, &mut b);
        assert_eq!(out, DecodeOutcome { consumed: 3 * bpf, frames: 3, corrupt: 0, missing: 0 });
        assert_eq!(&b.frame_index[..3], &[0, 1, 2]);
        assert_eq!(b.amplifier_frame(1), &[1010, 1009, 1008, 1007]);
        assert_eq!(&b.digital_in[..3], &[100, 101, 102]);
    }

    #[test]
    fn a_block_fills_up_and_a_partial_frame_waits_for_its_rest() {
        let bytes = frames(&[0, 1, 2, 3, 4]);
        let bpf = bytes_per_frame(CH);
        let mut d = FrameDecoder::new(CH);
        let mut b = block(2);
        let out = d.decode(&bytes[..4 * bpf + 5], &mut b);
        assert_eq!((out.frames, out.consumed), (2, 2 * bpf));
        let mut b = block(8);
        let out = d.decode(&bytes[2 * bpf..4 * bpf + 5], &mut b);
        assert_eq!((out.frames, out.consumed), (2, 2 * bpf), "the partial fifth frame is left");
        assert_eq!(&b.frame_index[..2], &[2, 3]);
    }

    #[test]
    fn a_corrupt_frame_is_counted_skipped_and_a_gap() {
        let mut bytes = frames(&[0, 1, 2, 3]);
        let bpf = bytes_per_frame(CH);
        bytes[bpf] ^= 0xff; // frame 1's magic
        let mut d = FrameDecoder::new(CH);
        let mut b = block(8);
        let out = d.decode(&bytes, &mut b);
        assert_eq!(out, DecodeOutcome { consumed: 4 * bpf, frames: 3, corrupt: 1, missing: 1 });
        assert_eq!(&b.frame_index[..3], &[0, 2, 3]);
        assert_eq!(b.count_gaps(None), 1);
    }

    #[test]
    fn lost_bytes_are_found_again_and_dropped_frames_counted() {
        let bytes = frames(&[0, 1, 5, 6, 7]);
        let bpf = bytes_per_frame(CH);
        // Seven bytes of frame 1 never arrive: the stream is out of step.
        let mut cut = bytes[..bpf + 3].to_vec();
        cut.extend_from_slice(&bytes[bpf + 10..]);
        let mut d = FrameDecoder::new(CH);
        let mut b = block(8);
        let out = d.decode(&cut, &mut b);
        assert_eq!((out.frames, out.corrupt, out.missing), (4, 1, 4));
        assert_eq!(&b.frame_index[..4], &[0, 5, 6, 7]);
        assert_eq!(resync(&bytes, 1, bpf), Some(bpf));
        assert_eq!(resync(&bytes[..bpf - 1], 1, bpf), None);
    }
}

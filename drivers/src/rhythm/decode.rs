//! USB bytes → frame block.

use super::extras::FrameExtras;
use super::format::{ChipFamily, FrameFormat, LayoutMismatch, ANALOG_INPUTS, ANALOG_OUTPUTS, STIM_FLAG_WORDS};
use super::transpose::{prefetch, rhd_amplifiers_from_usb};
use crate::frame::FrameBlock;

/// How far ahead of the frame being decoded its successors are fetched into the cache.
const PREFETCH_FRAMES: usize = 2;

/// A place where the sample index did not follow its predecessor by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Position of the frame in the decoded bytes (and in the block).
    pub frame: usize,
    /// The index the frame should have had.
    pub expected: u64,
    /// The index it had.
    pub found: u64,
}

impl Gap {
    /// Frames lost before this one (0 when the index went backwards).
    pub fn missing(&self) -> u64 {
        self.found.saturating_sub(self.expected)
    }

    /// The index went backwards: the board restarted its counter.
    pub fn is_backward(&self) -> bool {
        self.found < self.expected
    }
}

/// What one [`decode`] call found. Every gap is also visible in the block's `frame_index`
/// ([`FrameBlock::count_gaps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeReport {
    /// Frames decoded (now `block.frames`).
    pub frames: usize,
    /// Places where the sample index did not follow by one, `expected_next_index` included.
    pub gaps: usize,
    /// Frames missing across all forward gaps.
    pub missing: u64,
    /// The first gap, if any.
    pub first_gap: Option<Gap>,
    /// The index the next frame should have (pass it to the next call); `None` when nothing
    /// was decoded and nothing was expected.
    pub next_index: Option<u64>,
}

/// Why bytes could not be decoded. A failed call leaves `block.frames == 0`: none of its
/// lanes is to be read as frames (a bad magic number is found as frames are decoded, so the
/// lanes may hold the frames before it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a frame.
    #[error(
        "truncated USB data: got {got} bytes, expected {expected} ({bytes_per_frame} bytes per frame: \
         {} whole frames and {} bytes of the next)",
        got / bytes_per_frame,
        got % bytes_per_frame
    )]
    Truncated {
        /// Bytes handed in.
        got: usize,
        /// Bytes that would make the last frame whole.
        expected: usize,
        bytes_per_frame: usize,
    },
    /// A frame does not start with the board's magic number: the stream is out of step or
    /// corrupt. Frames before it are intact (decode `bytes[..offset]` again); [`resync`] finds
    /// where whole frames start again.
    #[error("frame {frame} (byte {offset}) starts with {found:#018x}, not the magic number {expected:#018x}")]
    BadMagic {
        /// Position of the bad frame.
        frame: usize,
        /// Its byte offset.
        offset: usize,
        /// What it starts with (little endian).
        found: u64,
        /// The format's magic number.
        expected: u64,
    },
    /// More frames than the block holds.
    #[error("{frames} frames do not fit a block of {capacity}")]
    TooManyFrames { frames: usize, capacity: usize },
    /// The block is not shaped for this format.
    #[error(transparent)]
    Layout(#[from] LayoutMismatch),
    /// The extras were built for another format or a smaller block.
    #[error("frame extras were built for another format or a smaller block")]
    Extras,
}

/// Decodes whole frames of `format` from `bytes` into `block` (which must be shaped by
/// [`FrameFormat::block_layout`], or the same with `aux_channels: 0` to drop the aux results).
///
/// - amplifiers: channel `stream × channels_per_stream + channel`, as signed samples
///   (`raw − 32768`, 0.195 µV per unit: RHX `rhxdatareader.cpp` reads `0.195 × (raw − 32768)`);
///   RHS: the AC (high-gain) word;
/// - aux: `stream × aux_per_stream + slot`, raw words (RHS: the low word of each 32-bit result;
///   slot 0 is the one sent after the amplifiers);
/// - analog inputs: raw codes (the RHD USB interface board's are 0–3.3 V at 50.354 µV per code
///   from 0, the controllers' ±10.24 V offset binary: RHX `readBoardAdcData`);
/// - digital in/out: the TTL words (XDAQ: bits 0–15);
/// - `frame_index`: the frame's 32-bit sample index extended to 64 bits, continuing from
///   `expected_next_index` (a jump of less than 2³¹ backwards is taken as the board restarting
///   its counter, anything else as frames lost, the counter wrapping as it goes).
///
/// Every frame's magic number and sample index are checked. A bad magic number fails the
/// whole call with [`DecodeError::BadMagic`] (and `block.frames == 0`), so corrupt data is
/// never merged; the caller counts it, decodes the intact frames before it again
/// (`bytes[..offset]`) and calls [`resync`].
/// A sample index that does not follow is reported as a gap, and the frames are kept. Never
/// allocates.
pub fn decode(
    format: &FrameFormat,
    bytes: &[u8],
    block: &mut FrameBlock,
    expected_next_index: Option<u64>,
) -> Result<DecodeReport, DecodeError> {
    decode_impl(format, bytes, block, None, expected_next_index)
}

/// [`decode`], also filling the lanes the block has no room for (RHS DC amplifiers,
/// stimulation flags and analog outputs; XDAQ's upper TTL bits and device timestamps).
pub fn decode_with_extras(
    format: &FrameFormat,
    bytes: &[u8],
    block: &mut FrameBlock,
    extras: &mut FrameExtras,
    expected_next_index: Option<u64>,
) -> Result<DecodeReport, DecodeError> {
    decode_impl(format, bytes, block, Some(extras), expected_next_index)
}

/// The first offset at or after `from` (rounded up to a whole 16-bit word: `bytes` starts on
/// one, as USB data does), in steps of one word, where a whole frame starts: the magic number
/// is there and again one frame later (or the bytes end exactly one frame later). This is how
/// RHX finds its footing again in corrupt data (`Engine/Threads/usbdatathread.cpp`: two headers
/// one frame apart, otherwise advance by a word).
pub fn resync(format: &FrameFormat, bytes: &[u8], from: usize) -> Option<usize> {
    let magic = format.magic().to_le_bytes();
    let bpf = format.bytes_per_frame();
    let mut at = from.checked_add(from & 1)?;
    while at + bpf <= bytes.len() {
        if bytes[at..at + 8] == magic && (at + bpf == bytes.len() || bytes[at + bpf..].starts_with(&magic)) {
            return Some(at);
        }
        at += 2;
    }
    None
}

fn decode_impl(
    format: &FrameFormat,
    bytes: &[u8],
    block: &mut FrameBlock,
    mut extras: Option<&mut FrameExtras>,
    expected_next_index: Option<u64>,
) -> Result<DecodeReport, DecodeError> {
    block.frames = 0;
    let layout = block.layout();
    format.check_layout(&layout)?;
    let bpf = format.bytes_per_frame();
    if !bytes.len().is_multiple_of(bpf) {
        return Err(DecodeError::Truncated {
            got: bytes.len(),
            expected: bytes.len().div_ceil(bpf) * bpf,
            bytes_per_frame: bpf,
        });
    }
    let frames = bytes.len() / bpf;
    if frames > layout.frames_per_block {
        return Err(DecodeError::TooManyFrames { frames, capacity: layout.frames_per_block });
    }
    if let Some(x) = extras.as_deref() {
        if !x.fits(format, layout.frames_per_block) {
            return Err(DecodeError::Extras);
        }
    }
    let magic = format.magic();
    let o = format.offsets();
    let n = format.streams();
    let amps = format.amplifier_channels();
    let aux_n = layout.aux_channels;
    let wide_ttl = format.board().digital_word_bytes() == 4;
    let mut gaps = GapTracker::new(expected_next_index);
    for (i, f) in bytes.chunks_exact(bpf).enumerate() {
        if let Some(ahead) = bytes.get((i + PREFETCH_FRAMES) * bpf..(i + PREFETCH_FRAMES + 1) * bpf) {
            prefetch(ahead);
        }
        let found = u64_at(f, 0);
        if found != magic {
            // Checked as each frame is decoded (a pass of its own over the bytes costs more
            // than it saves), so what was written before it stays unpublished: `frames` is 0.
            return Err(DecodeError::BadMagic { frame: i, offset: i * bpf, found, expected: magic });
        }
        block.frame_index[i] = gaps.next(i, u32_at(f, o.sample_index));
        let amp = &mut block.amplifier[i * amps..(i + 1) * amps];
        let aux = &mut block.aux[i * aux_n..(i + 1) * aux_n];
        match format.chip() {
            ChipFamily::Rhd => {
                rhd_amplifiers_from_usb(&f[o.amplifier..], n, amp);
                if aux_n != 0 {
                    let (r0, rest) = f[o.aux..o.aux + 6 * n].split_at(2 * n);
                    let (r1, r2) = rest.split_at(2 * n);
                    let rows = r0.chunks_exact(2).zip(r1.chunks_exact(2)).zip(r2.chunks_exact(2));
                    for (out, ((a, b), c)) in aux.chunks_exact_mut(3).zip(rows) {
                        out[0] = u16::from_le_bytes([a[0], a[1]]);
                        out[1] = u16::from_le_bytes([b[0], b[1]]);
                        out[2] = u16::from_le_bytes([c[0], c[1]]);
                    }
                }
            }
            ChipFamily::Rhs => {
                // (DC, AC) word pairs, channel-major; the AC word is the signal.
                let a = &f[o.amplifier..o.amplifier + 4 * 16 * n];
                for (c, row) in a.chunks_exact(4 * n).enumerate() {
                    for (s, w) in row.chunks_exact(4).enumerate() {
                        amp[s * 16 + c] = (u16::from_le_bytes([w[2], w[3]]) ^ 0x8000) as i16;
                    }
                }
                if aux_n != 0 {
                    let aux0 = o.aux0.expect("RHS frames have aux slot 0");
                    for s in 0..n {
                        aux[s * 4] = u16_at(f, aux0 + 4 * s);
                        for slot in 1..4 {
                            aux[s * 4 + slot] = u16_at(f, o.aux + 4 * ((slot - 1) * n + s));
                        }
                    }
                }
            }
        }
        let adc = &mut block.analog_in[i * ANALOG_INPUTS..(i + 1) * ANALOG_INPUTS];
        for (v, b) in adc.iter_mut().zip(f[o.analog_in..o.analog_in + 2 * ANALOG_INPUTS].chunks_exact(2)) {
            *v = u16::from_le_bytes([b[0], b[1]]);
        }
        block.digital_in[i] = u16_at(f, o.digital_in);
        block.digital_out[i] = u16_at(f, o.digital_out);
        if let Some(x) = extras.as_deref_mut() {
            decode_extras(format, f, i, x, wide_ttl);
        }
    }
    block.frames = frames;
    Ok(gaps.report(frames))
}

fn decode_extras(format: &FrameFormat, f: &[u8], i: usize, x: &mut FrameExtras, wide_ttl: bool) {
    let o = format.offsets();
    let n = format.streams();
    if format.chip() == ChipFamily::Rhs {
        let amps = format.amplifier_channels();
        let dc = &mut x.dc_amplifier[i * amps..(i + 1) * amps];
        let a = &f[o.amplifier..o.amplifier + 4 * amps];
        for (c, row) in a.chunks_exact(4 * n).enumerate() {
            for (s, w) in row.chunks_exact(4).enumerate() {
                dc[s * 16 + c] = u16::from_le_bytes([w[0], w[1]]);
            }
        }
        let aux0 = o.aux0.expect("RHS frames have aux slot 0");
        let high = &mut x.aux_high[i * 4 * n..(i + 1) * 4 * n];
        for s in 0..n {
            high[s * 4] = u16_at(f, aux0 + 4 * s + 2);
            for slot in 1..4 {
                high[s * 4 + slot] = u16_at(f, o.aux + 4 * ((slot - 1) * n + s) + 2);
            }
        }
        let stim = o.stim.expect("RHS frames have stimulation flags");
        let lanes = [&mut x.stim_on, &mut x.stim_polarity, &mut x.amp_settle, &mut x.charge_recovery];
        debug_assert_eq!(lanes.len(), STIM_FLAG_WORDS);
        for (k, lane) in lanes.into_iter().enumerate() {
            for s in 0..n {
                lane[i * n + s] = u16_at(f, stim + 2 * (k * n + s));
            }
        }
        let dac = o.analog_out.expect("RHS frames have analog outputs");
        for k in 0..ANALOG_OUTPUTS {
            x.analog_out[i * ANALOG_OUTPUTS + k] = u16_at(f, dac + 2 * k);
        }
    }
    if wide_ttl {
        x.digital_in_high[i] = u16_at(f, o.digital_in + 2);
        x.digital_out_high[i] = u16_at(f, o.digital_out + 2);
    }
    if let Some(t) = o.device_timestamp {
        x.device_timestamp_us[i] = u64_at(f, t);
    }
}

/// Extends 32-bit sample indices to 64 bits and counts the places they do not follow.
struct GapTracker {
    expected: Option<u64>,
    gaps: usize,
    missing: u64,
    first: Option<Gap>,
}

impl GapTracker {
    fn new(expected: Option<u64>) -> Self {
        GapTracker { expected, gaps: 0, missing: 0, first: None }
    }

    #[inline]
    fn next(&mut self, frame: usize, raw: u32) -> u64 {
        let index = match self.expected {
            None => u64::from(raw),
            Some(expected) => {
                let index = extend_index(expected, raw);
                if index != expected {
                    self.gaps += 1;
                    self.missing += index.saturating_sub(expected);
                    self.first.get_or_insert(Gap { frame, expected, found: index });
                }
                index
            }
        };
        self.expected = Some(index.wrapping_add(1));
        index
    }

    fn report(self, frames: usize) -> DecodeReport {
        DecodeReport {
            frames,
            gaps: self.gaps,
            missing: self.missing,
            first_gap: self.first,
            next_index: self.expected,
        }
    }
}

/// The 64-bit index with low 32 bits `raw` nearest after `expected`, or before it by less
/// than 2³¹ (a restarted counter).
#[inline]
fn extend_index(expected: u64, raw: u32) -> u64 {
    let ahead = raw.wrapping_sub(expected as u32);
    if ahead < 1 << 31 {
        return expected.wrapping_add(u64::from(ahead));
    }
    let behind = u64::from(ahead.wrapping_neg());
    if behind <= expected {
        expected - behind
    } else {
        expected.wrapping_add(u64::from(ahead))
    }
}

#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_extend_across_wraps_and_restarts() {
        assert_eq!(extend_index(5, 5), 5);
        assert_eq!(extend_index(5, 9), 9);
        // Wrapping forward past 2^32.
        assert_eq!(extend_index(u64::from(u32::MAX), 1), (1 << 32) + 1);
        assert_eq!(extend_index((3 << 32) + 10, 12), (3 << 32) + 12);
        // A restart: a little behind.
        assert_eq!(extend_index(1000, 0), 0);
        assert_eq!(extend_index((1 << 32) + 5, u32::MAX), u64::from(u32::MAX));
        // Behind by more than there is before it: taken as forward.
        assert_eq!(extend_index(5, u32::MAX), u64::from(u32::MAX));
    }
}

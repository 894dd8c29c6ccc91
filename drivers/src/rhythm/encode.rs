//! Frame block → USB bytes, exactly as the board sends them.

use super::extras::FrameExtras;
use super::format::{ChipFamily, FrameFormat, LayoutMismatch, ANALOG_INPUTS, ANALOG_OUTPUTS};
use super::transpose::rhd_amplifiers_to_usb;
use crate::frame::FrameBlock;

/// Why a block could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The block is not shaped for this format.
    #[error(transparent)]
    Layout(#[from] LayoutMismatch),
    /// The extras were built for another format or a smaller block.
    #[error("frame extras were built for another format or a smaller block")]
    Extras,
}

/// Appends the block's filled frames to `out` as `format`'s USB frames: the inverse of
/// [`decode`](fn@super::decode). The sample index is the low 32 bits of `frame_index`. Fields the
/// block has no lane for (RHS DC amplifiers, stimulation flags, analog outputs, the high
/// halves of 32-bit words, XDAQ's upper TTL bits and device timestamp) and filler words are 0;
/// so are the aux results when the block has no aux lane. Allocates only to grow `out`.
pub fn encode(format: &FrameFormat, block: &FrameBlock, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_impl(format, block, None, out)
}

/// [`encode`] with the board-specific fields taken from `extras`: decoding a board's frames
/// with [`decode_with_extras`](super::decode_with_extras) and encoding them again gives the
/// same bytes, filler words aside (0 here, as RHX's own emulator writes them).
pub fn encode_with_extras(
    format: &FrameFormat,
    block: &FrameBlock,
    extras: &FrameExtras,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_impl(format, block, Some(extras), out)
}

fn encode_impl(
    format: &FrameFormat,
    block: &FrameBlock,
    extras: Option<&FrameExtras>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let layout = block.layout();
    format.check_layout(&layout)?;
    if let Some(x) = extras {
        if !x.fits(format, layout.frames_per_block) {
            return Err(EncodeError::Extras);
        }
    }
    let bpf = format.bytes_per_frame();
    let start = out.len();
    out.resize(start + block.frames * bpf, 0);
    let o = format.offsets();
    let n = format.streams();
    let amps = format.amplifier_channels();
    let aux_n = layout.aux_channels;
    let magic = format.magic().to_le_bytes();
    let wide_ttl = format.board().digital_word_bytes() == 4;
    for (i, f) in out[start..].chunks_exact_mut(bpf).enumerate() {
        f[..8].copy_from_slice(&magic);
        put(f, o.sample_index, &(block.frame_index[i] as u32).to_le_bytes());
        let amp = &block.amplifier[i * amps..(i + 1) * amps];
        let aux = &block.aux[i * aux_n..(i + 1) * aux_n];
        match format.chip() {
            ChipFamily::Rhd => {
                rhd_amplifiers_to_usb(amp, n, &mut f[o.amplifier..]);
                if aux_n != 0 {
                    let (r0, rest) = f[o.aux..o.aux + 6 * n].split_at_mut(2 * n);
                    let (r1, r2) = rest.split_at_mut(2 * n);
                    let rows = r0.chunks_exact_mut(2).zip(r1.chunks_exact_mut(2)).zip(r2.chunks_exact_mut(2));
                    for (v, ((a, b), c)) in aux.chunks_exact(3).zip(rows) {
                        a.copy_from_slice(&v[0].to_le_bytes());
                        b.copy_from_slice(&v[1].to_le_bytes());
                        c.copy_from_slice(&v[2].to_le_bytes());
                    }
                }
            }
            ChipFamily::Rhs => {
                let a = &mut f[o.amplifier..o.amplifier + 4 * amps];
                for (c, row) in a.chunks_exact_mut(4 * n).enumerate() {
                    for (s, w) in row.chunks_exact_mut(4).enumerate() {
                        w[2..].copy_from_slice(&(amp[s * 16 + c] as u16 ^ 0x8000).to_le_bytes());
                    }
                }
                if aux_n != 0 {
                    let aux0 = o.aux0.expect("RHS frames have aux slot 0");
                    for s in 0..n {
                        put16(f, aux0 + 4 * s, aux[s * 4]);
                        for slot in 1..4 {
                            put16(f, o.aux + 4 * ((slot - 1) * n + s), aux[s * 4 + slot]);
                        }
                    }
                }
            }
        }
        for k in 0..ANALOG_INPUTS {
            put16(f, o.analog_in + 2 * k, block.analog_in[i * ANALOG_INPUTS + k]);
        }
        put16(f, o.digital_in, block.digital_in[i]);
        put16(f, o.digital_out, block.digital_out[i]);
        if let Some(x) = extras {
            encode_extras(format, f, i, x, wide_ttl);
        }
    }
    Ok(())
}

fn encode_extras(format: &FrameFormat, f: &mut [u8], i: usize, x: &FrameExtras, wide_ttl: bool) {
    let o = format.offsets();
    let n = format.streams();
    if format.chip() == ChipFamily::Rhs {
        let amps = format.amplifier_channels();
        let dc = &x.dc_amplifier[i * amps..(i + 1) * amps];
        let a = &mut f[o.amplifier..o.amplifier + 4 * amps];
        for (c, row) in a.chunks_exact_mut(4 * n).enumerate() {
            for (s, w) in row.chunks_exact_mut(4).enumerate() {
                w[..2].copy_from_slice(&dc[s * 16 + c].to_le_bytes());
            }
        }
        let aux0 = o.aux0.expect("RHS frames have aux slot 0");
        let high = &x.aux_high[i * 4 * n..(i + 1) * 4 * n];
        for s in 0..n {
            put16(f, aux0 + 4 * s + 2, high[s * 4]);
            for slot in 1..4 {
                put16(f, o.aux + 4 * ((slot - 1) * n + s) + 2, high[s * 4 + slot]);
            }
        }
        let stim = o.stim.expect("RHS frames have stimulation flags");
        let lanes = [&x.stim_on, &x.stim_polarity, &x.amp_settle, &x.charge_recovery];
        for (k, lane) in lanes.into_iter().enumerate() {
            for s in 0..n {
                put16(f, stim + 2 * (k * n + s), lane[i * n + s]);
            }
        }
        let dac = o.analog_out.expect("RHS frames have analog outputs");
        for k in 0..ANALOG_OUTPUTS {
            put16(f, dac + 2 * k, x.analog_out[i * ANALOG_OUTPUTS + k]);
        }
    }
    if wide_ttl {
        put16(f, o.digital_in + 2, x.digital_in_high[i]);
        put16(f, o.digital_out + 2, x.digital_out_high[i]);
    }
    if let Some(t) = o.device_timestamp {
        put(f, t, &x.device_timestamp_us[i].to_le_bytes());
    }
}

#[inline(always)]
fn put(f: &mut [u8], at: usize, bytes: &[u8]) {
    f[at..at + bytes.len()].copy_from_slice(bytes);
}

#[inline(always)]
fn put16(f: &mut [u8], at: usize, v: u16) {
    put(f, at, &v.to_le_bytes());
}

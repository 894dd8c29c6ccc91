//! The dense part of the amplifier signal: noise plus either the LFP or the test sines, for
//! every sample. This is the hot loop of the simulator.
//!
//! Work is frame by frame, and within a frame channel group by channel group, so every read
//! (a noise-table row, a sine-table row, the LFP state) and the write are contiguous slices of
//! equal length: the compiler vectorises the inner loop, and a sample costs four byte loads
//! (the noise tables), an integer add for the LFP ramp and a saturating narrow. Which rows
//! the groups read is stepped frame by frame ([`Phase::next`]), not divided out per group.

use super::lfp::{Lfp, Q};
use super::noise::{GroupRows, NoiseTables, Phase, MAX_WIDTH};
use super::sine::SineTable;

/// What is added to the noise on every sample.
#[derive(Debug, Clone)]
pub(crate) enum Background {
    Lfp(Box<Lfp>),
    Sine(SineTable),
}

#[inline(always)]
fn saturate(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// noise + LFP for one channel group of one frame; advances the LFP ramp by one frame.
///
/// A whole group (64 channels) goes through a copy of the loop whose length is a constant, so
/// it compiles to straight-line vector code; only a last, partial group takes the loop with a
/// variable length (which the compiler splits into length checks and spills registers for).
#[inline(always)]
fn mix_lfp(out: &mut [i16], rows: GroupRows, cur: &mut [i32], step: &[i32]) {
    if out.len() == MAX_WIDTH {
        mix_lfp_n(&mut out[..MAX_WIDTH], rows, &mut cur[..MAX_WIDTH], &step[..MAX_WIDTH]);
    } else {
        mix_lfp_n(out, rows, cur, step);
    }
}

#[inline(always)]
fn mix_lfp_n(out: &mut [i16], [a, b, c, d]: GroupRows, cur: &mut [i32], step: &[i32]) {
    let n = out.len();
    let (a, b, c, d, cur, step) = (&a[..n], &b[..n], &c[..n], &d[..n], &mut cur[..n], &step[..n]);
    for i in 0..n {
        let l = cur[i];
        cur[i] = l.wrapping_add(step[i]);
        let noise = a[i] as i16 + b[i] as i16 + c[i] as i16 + d[i] as i16;
        out[i] = saturate(noise as i32 + (l >> Q));
    }
}

/// noise + sine for one channel group of one frame (whole groups as in [`mix_lfp`]).
#[inline(always)]
fn mix_sine(out: &mut [i16], rows: GroupRows, s: &[i16]) {
    if out.len() == MAX_WIDTH {
        mix_sine_n(&mut out[..MAX_WIDTH], rows, &s[..MAX_WIDTH]);
    } else {
        mix_sine_n(out, rows, s);
    }
}

#[inline(always)]
fn mix_sine_n(out: &mut [i16], [a, b, c, d]: GroupRows, s: &[i16]) {
    let n = out.len();
    let (a, b, c, d, s) = (&a[..n], &b[..n], &c[..n], &d[..n], &s[..n]);
    for i in 0..n {
        let noise = a[i] as i16 + b[i] as i16 + c[i] as i16 + d[i] as i16;
        // The noise sum fits i16 (|sum| ≤ 4 × 127), so a saturating 16-bit add is exactly the
        // 32-bit sum clamped, in twice as many lanes.
        out[i] = noise.saturating_add(s[i]);
    }
}

/// Writes frames `[a, b)` into `out` (frame-major, `channels` wide, first frame `block_first`),
/// overwriting whatever was there. Frames must follow on from the previous call.
///
/// On x86-64 CPUs with AVX2 the same code is compiled a second time with AVX2 enabled and
/// picked at run time (8 × i32 lanes instead of SSE2's 4; ~20 % faster on the LFP modes at
/// 1024 ch), so the portable build stays portable. The kernel is integer-only, so both versions
/// produce identical samples.
pub(crate) fn render(
    noise: &NoiseTables,
    bg: &mut Background,
    a: u64,
    b: u64,
    block_first: u64,
    out: &mut [i16],
    channels: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { render_avx2(noise, bg, a, b, block_first, out, channels) };
            return;
        }
    }
    render_portable(noise, bg, a, b, block_first, out, channels);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn render_avx2(
    noise: &NoiseTables,
    bg: &mut Background,
    a: u64,
    b: u64,
    block_first: u64,
    out: &mut [i16],
    channels: usize,
) {
    render_portable(noise, bg, a, b, block_first, out, channels);
}

#[inline(always)]
fn render_portable(
    noise: &NoiseTables,
    bg: &mut Background,
    a: u64,
    b: u64,
    block_first: u64,
    out: &mut [i16],
    channels: usize,
) {
    let w = noise.width();
    match bg {
        Background::Lfp(lfp) => {
            let mut f = a;
            let mut phase = Phase::of(a);
            while f < b {
                if f == lfp.next_knot_frame() {
                    lfp.advance_knot();
                }
                let seg_end = b.min(lfp.next_knot_frame());
                for frame in f..seg_end {
                    let row = &mut out[(frame - block_first) as usize * channels..][..channels];
                    let lfp = &mut **lfp;
                    for (g, ((o, cur), step)) in
                        row.chunks_mut(w).zip(lfp.cur.chunks_mut(w)).zip(lfp.step.chunks(w)).enumerate()
                    {
                        mix_lfp(o, noise.rows(g, phase), cur, step);
                    }
                    phase = phase.next();
                }
                f = seg_end;
            }
        }
        Background::Sine(sine) => {
            let mut phase = Phase::of(a);
            for frame in a..b {
                let row = &mut out[(frame - block_first) as usize * channels..][..channels];
                for (g, o) in row.chunks_mut(w).enumerate() {
                    mix_sine(o, noise.rows(g, phase), sine.row(g, frame));
                }
                phase = phase.next();
            }
        }
    }
}

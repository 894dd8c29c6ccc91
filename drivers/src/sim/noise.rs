//! Band-limited background noise, precomputed so that reading it costs two byte loads per
//! sample.
//!
//! Generating Gaussian noise and filtering it per sample would cost far more than the
//! 1024 ch × 30 kHz × 20 budget allows, so the noise is built once at construction into two
//! tables and only read afterwards:
//!
//! * Each table is frame-major, `rows × width` (width = min(channels, 64)), each column an
//!   independent band-limited sequence, filtered circularly so it loops without a seam.
//!   Frame-major means one frame of a channel group is one contiguous slice, matching the
//!   frame-major block being written (no gathers).
//! * Channels are split into groups of `width`; each group reads the tables at its own
//!   pseudo-random row offset, so groups are decorrelated at zero lag.
//! * The two tables have coprime lengths (2^15 and 2^15 − 1 rows) and are summed, so the noise
//!   of a channel only repeats after ~1.07 × 10^9 frames (≈ 10 h at 30 kHz) while the tables
//!   stay small (2 × 2 MiB at 64 columns) — small enough to live in cache.
//! * Samples are stored as `i8` amplifier units: a few µV rms is ~16 units per table, so ±127
//!   is ~8 σ, and halving the bytes read per sample matters more than the clipped tails.

use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;

/// Rows of the first table (a power of two).
pub(crate) const ROWS_A: usize = 1 << 15;
/// Rows of the second table (coprime with `ROWS_A`, so the sum's period is the product).
pub(crate) const ROWS_B: usize = (1 << 15) - 1;
/// Widest channel group sharing one table row.
pub(crate) const MAX_WIDTH: usize = 64;

/// The two noise tables and each channel group's offsets into them.
#[derive(Debug, Clone)]
pub(crate) struct NoiseTables {
    width: usize,
    a: Vec<i8>,
    b: Vec<i8>,
    off_a: Vec<u64>,
    off_b: Vec<u64>,
}

/// Corner frequencies of the noise band for a sample rate: roughly the spike band
/// (300 Hz – 6 kHz), pulled in at low rates so the band stays below Nyquist.
pub(crate) fn noise_band_hz(rate: f64) -> (f64, f64) {
    (300f64.min(rate / 20.0), 6000f64.min(rate / 4.0))
}

impl NoiseTables {
    /// Builds tables whose sum has `rms_uv` µV rms on every channel.
    pub fn new(seed: u64, channels: usize, rate: f64, rms_uv: f64) -> Self {
        let width = channels.clamp(1, MAX_WIDTH);
        let groups = channels.div_ceil(width);
        // Each table carries half the variance.
        let per_table_units = rms_uv / std::f64::consts::SQRT_2 / AMPLIFIER_UV_PER_UNIT;
        let (hp, lp) = noise_band_hz(rate);
        let a = build_table(seed, 0, ROWS_A, width, rate, hp, lp, per_table_units);
        let b = build_table(seed, 1, ROWS_B, width, rate, hp, lp, per_table_units);
        let mut rng = Rng::from_key(&[seed, stream::NOISE, 2]);
        let off_a = (0..groups).map(|_| rng.below(ROWS_A as u64)).collect();
        let off_b = (0..groups).map(|_| rng.below(ROWS_B as u64)).collect();
        NoiseTables { width, a, b, off_a, off_b }
    }

    /// Channels per group (the tables' column count).
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// The rows of both tables that channel group `group` reads at `frame`.
    #[inline]
    pub fn rows(&self, group: usize, frame: u64) -> (&[i8], &[i8]) {
        let w = self.width;
        let ra = ((frame + self.off_a[group]) % ROWS_A as u64) as usize;
        let rb = ((frame + self.off_b[group]) % ROWS_B as u64) as usize;
        (&self.a[ra * w..ra * w + w], &self.b[rb * w..rb * w + w])
    }
}

/// One table: per column, white Gaussian noise band-passed by a first-order high-pass and a
/// second-order (two cascaded first-order) low-pass, run twice around the loop so the filter
/// state at the wrap is already steady (a seamless loop), then scaled to `rms_units` and
/// quantised.
#[allow(clippy::too_many_arguments)]
fn build_table(seed: u64, which: u64, rows: usize, width: usize, rate: f64, hp_hz: f64, lp_hz: f64, rms_units: f64) -> Vec<i8> {
    let mut out = vec![0i8; rows * width];
    let mut col = vec![0f64; rows];
    let dt = 1.0 / rate;
    // One-pole coefficients from the RC analogue.
    let rc_hp = 1.0 / (std::f64::consts::TAU * hp_hz);
    let a_hp = rc_hp / (rc_hp + dt);
    let rc_lp = 1.0 / (std::f64::consts::TAU * lp_hz);
    let a_lp = dt / (rc_lp + dt);
    for j in 0..width {
        let mut rng = Rng::from_key(&[seed, stream::NOISE, which, j as u64]);
        for v in col.iter_mut() {
            *v = rng.normal();
        }
        let (mut prev_x, mut hp, mut lp1, mut lp2) = (0.0, 0.0, 0.0, 0.0);
        for pass in 0..2 {
            for v in col.iter_mut() {
                let x = *v;
                hp = a_hp * (hp + x - prev_x);
                prev_x = x;
                lp1 += a_lp * (hp - lp1);
                lp2 += a_lp * (lp1 - lp2);
                if pass == 1 {
                    *v = lp2;
                }
            }
        }
        let mean = col.iter().sum::<f64>() / rows as f64;
        let rms = (col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / rows as f64).sqrt();
        let scale = if rms > 0.0 { rms_units / rms } else { 0.0 };
        for (r, v) in col.iter().enumerate() {
            out[r * width + j] = ((v - mean) * scale).round().clamp(-127.0, 127.0) as i8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_the_requested_rms() {
        let t = NoiseTables::new(3, 8, 30000.0, 4.5);
        let n = 20000u64;
        let mut s2 = 0.0;
        for f in 0..n {
            let (a, b) = t.rows(0, f);
            let v = (a[3] as f64 + b[3] as f64) * AMPLIFIER_UV_PER_UNIT;
            s2 += v * v;
        }
        let rms = (s2 / n as f64).sqrt();
        assert!((rms - 4.5).abs() < 0.4, "{rms}");
    }
}

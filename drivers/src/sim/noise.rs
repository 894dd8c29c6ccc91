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
///
/// Built once per stream start, so its cost is start-up latency: the columns are independent,
/// so all of them are filtered in lockstep, row by row (the inner loop over columns is
/// independent work the compiler vectorises, where one column at a time is a serial chain),
/// and the normals are drawn two per Box–Muller step.
#[allow(clippy::too_many_arguments)]
fn build_table(seed: u64, which: u64, rows: usize, width: usize, rate: f64, hp_hz: f64, lp_hz: f64, rms_units: f64) -> Vec<i8> {
    // Row-major like the table itself; each column draws from its own keyed stream.
    let mut white = vec![0f64; rows * width];
    for j in 0..width {
        let mut rng = Rng::from_key(&[seed, stream::NOISE, which, j as u64]);
        let mut r = 0;
        while r < rows {
            let (a, b) = rng.normal_pair();
            white[r * width + j] = a;
            if r + 1 < rows {
                white[(r + 1) * width + j] = b;
            }
            r += 2;
        }
    }

    let dt = 1.0 / rate;
    // One-pole coefficients from the RC analogue.
    let rc_hp = 1.0 / (std::f64::consts::TAU * hp_hz);
    let a_hp = rc_hp / (rc_hp + dt);
    let rc_lp = 1.0 / (std::f64::consts::TAU * lp_hz);
    let a_lp = dt / (rc_lp + dt);
    let filtered = band_pass_loop(&white, width, a_hp, a_lp);

    let mut mean = vec![0f64; width];
    for row in filtered.chunks_exact(width) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let mut power = vec![0f64; width];
    for row in filtered.chunks_exact(width) {
        for j in 0..width {
            let d = row[j] - mean[j];
            power[j] += d * d;
        }
    }
    let scale: Vec<f64> = power
        .iter()
        .map(|p| {
            let rms = (p / rows as f64).sqrt();
            if rms > 0.0 {
                rms_units / rms
            } else {
                0.0
            }
        })
        .collect();
    let mut out = vec![0i8; rows * width];
    for (row, quantised) in filtered.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        for j in 0..width {
            quantised[j] = ((row[j] - mean[j]) * scale[j]).round().clamp(-127.0, 127.0) as i8;
        }
    }
    out
}

/// Runs every column of the row-major `white` (`width` columns) through the band-pass twice
/// around the loop and returns the second pass, all columns in lockstep.
fn band_pass_loop(white: &[f64], width: usize, a_hp: f64, a_lp: f64) -> Vec<f64> {
    let mut prev_x = vec![0f64; width];
    let mut hp = vec![0f64; width];
    let mut lp1 = vec![0f64; width];
    let mut lp2 = vec![0f64; width];
    let mut filtered = vec![0f64; white.len()];
    for pass in 0..2 {
        for (input, output) in white.chunks_exact(width).zip(filtered.chunks_exact_mut(width)) {
            for j in 0..width {
                let x = input[j];
                hp[j] = a_hp * (hp[j] + x - prev_x[j]);
                prev_x[j] = x;
                lp1[j] += a_lp * (hp[j] - lp1[j]);
                lp2[j] += a_lp * (lp1[j] - lp2[j]);
            }
            if pass == 1 {
                output.copy_from_slice(&lp2);
            }
        }
    }
    filtered
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

    #[test]
    fn lockstep_filtering_equals_filtering_each_column_alone() {
        let (rows, width) = (500, 7);
        let mut rng = Rng::from_key(&[1]);
        let white: Vec<f64> = (0..rows * width).map(|_| rng.normal()).collect();
        let (a_hp, a_lp) = (0.94, 0.55);
        let lockstep = band_pass_loop(&white, width, a_hp, a_lp);
        for j in 0..width {
            let (mut prev_x, mut hp, mut lp1, mut lp2) = (0.0, 0.0, 0.0, 0.0);
            for pass in 0..2 {
                for r in 0..rows {
                    let x = white[r * width + j];
                    hp = a_hp * (hp + x - prev_x);
                    prev_x = x;
                    lp1 += a_lp * (hp - lp1);
                    lp2 += a_lp * (lp1 - lp2);
                    if pass == 1 {
                        assert_eq!(lockstep[r * width + j], lp2, "row {r} column {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn columns_are_band_limited_and_independent() {
        let t = NoiseTables::new(5, 64, 30000.0, 4.5);
        let n = ROWS_A as u64;
        let column = |c: usize| -> Vec<f64> { (0..n).map(|f| t.rows(0, f).0[c] as f64).collect() };
        let corr = |x: &[f64], y: &[f64]| {
            let (mx, my) = (x.iter().sum::<f64>() / x.len() as f64, y.iter().sum::<f64>() / y.len() as f64);
            let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
            let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
            let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
            cov / (vx * vy).sqrt()
        };
        let (a, b) = (column(3), column(40));
        // Low-passed: neighbouring samples are correlated; different columns are not.
        assert!(corr(&a[1..], &a[..a.len() - 1]) > 0.3, "lag-1 correlation {}", corr(&a[1..], &a[..a.len() - 1]));
        assert!(corr(&a, &b).abs() < 0.05, "cross-column correlation {}", corr(&a, &b));
    }
}

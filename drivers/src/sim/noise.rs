//! Band-limited background noise, precomputed so that reading it costs three byte loads per
//! sample.
//!
//! Generating Gaussian noise and filtering it per sample would cost far more than the
//! 1024 ch × 30 kHz × 20 budget allows, so the noise is built once at construction into three
//! tables and only read afterwards:
//!
//! * Each table is frame-major, `rows × width` (width = min(channels, 64)), each column an
//!   independent band-limited sequence, filtered circularly so it loops without a seam.
//!   Frame-major means one frame of a channel group is one contiguous slice, matching the
//!   frame-major block being written (no gathers).
//! * Channels are split into groups of `width`; each group reads the tables at its own
//!   pseudo-random row offsets, so groups are decorrelated at zero lag.
//! * The three tables have pairwise coprime lengths (4096, 4095 and 4097 rows) and are summed,
//!   so a channel's noise only repeats after ≈ 6.9 × 10^10 frames (26 days at 30 kHz).
//! * The tables are small on purpose (768 KiB in all at 64 columns): the simulator reads them
//!   for every sample while the pipeline streams hundreds of MB/s past the CPU's caches, and
//!   tables that fall out of cache made generation three times slower inside the pipeline
//!   than alone. Building them is also quick (stream start). The price: each table's spectrum
//!   is a line spectrum 7.3 Hz apart at 30 kHz (three interleaved combs in the sum), visible
//!   in a power spectrum at 1 Hz resolution, irrelevant at the millisecond scale of spikes.
//! * Samples are stored as `i8` amplifier units: a few µV rms is ~13 units per table, so ±127
//!   is ~10 σ, and halving the bytes read per sample matters more than the clipped tails.

use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;

/// Rows of the three tables: pairwise coprime, so the sum's period is their product
/// (≈ 6.9 × 10^10 frames, 26 days at 30 kHz), while all three together stay small enough
/// (768 KiB at 64 columns) to remain in the CPU's caches next to a streaming pipeline.
pub(crate) const ROWS: [usize; 3] = [1 << 12, (1 << 12) - 1, (1 << 12) + 1];
/// Widest channel group sharing one table row.
pub(crate) const MAX_WIDTH: usize = 64;

/// The noise tables and each channel group's offsets into them.
#[derive(Debug, Clone)]
pub(crate) struct NoiseTables {
    width: usize,
    tables: [Vec<i8>; 3],
    /// Per table, each group's row offset.
    offsets: [Vec<u64>; 3],
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
        // Each table carries a third of the variance.
        let per_table_units = rms_uv / 3f64.sqrt() / AMPLIFIER_UV_PER_UNIT;
        let (hp, lp) = noise_band_hz(rate);
        let tables =
            [0, 1, 2].map(|which| build_table(seed, which as u64, ROWS[which], width, rate, hp, lp, per_table_units));
        let mut rng = Rng::from_key(&[seed, stream::NOISE, 3]);
        let offsets = ROWS.map(|rows| (0..groups).map(|_| rng.below(rows as u64)).collect());
        NoiseTables { width, tables, offsets }
    }

    /// Channels per group (the tables' column count).
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// The rows of the three tables that channel group `group` reads at `frame`.
    #[inline]
    pub fn rows(&self, group: usize, frame: u64) -> [&[i8]; 3] {
        // Each `%` is by a constant, which compiles to a multiply and shift: this runs once
        // per channel group and frame, and a true division would cost more than the samples.
        const R0: u64 = ROWS[0] as u64;
        const R1: u64 = ROWS[1] as u64;
        const R2: u64 = ROWS[2] as u64;
        let row = |t: usize, r: u64| {
            let w = self.width;
            let r = r as usize;
            &self.tables[t][r * w..r * w + w]
        };
        [
            row(0, (frame + self.offsets[0][group]) % R0),
            row(1, (frame + self.offsets[1][group]) % R1),
            row(2, (frame + self.offsets[2][group]) % R2),
        ]
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
fn build_table(
    seed: u64,
    which: u64,
    rows: usize,
    width: usize,
    rate: f64,
    hp_hz: f64,
    lp_hz: f64,
    rms_units: f64,
) -> Vec<i8> {
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
            let [a, b, c] = t.rows(0, f);
            let v = (a[3] as f64 + b[3] as f64 + c[3] as f64) * AMPLIFIER_UV_PER_UNIT;
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
        let n = 30_000u64;
        let column =
            |c: usize| -> Vec<f64> { (0..n).map(|f| t.rows(0, f).iter().map(|row| row[c] as f64).sum()).collect() };
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

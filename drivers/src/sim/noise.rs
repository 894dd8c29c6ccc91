//! Band-limited background noise, precomputed so that reading it costs four byte loads per
//! sample.
//!
//! Generating Gaussian noise and filtering it per sample would cost far more than the
//! 1024 ch × 30 kHz × 20 budget allows, so the noise is built once at construction into four
//! tables and only read afterwards:
//!
//! * Each table is frame-major, `rows × 64` bytes, each row one aligned cache line, each of the
//!   first `width` columns (width = min(channels, 64)) an independent periodic band-limited
//!   Gaussian sequence, so it loops without a seam (see [`build_table`]). Frame-major means one
//!   frame of a channel group is one contiguous slice, matching the frame-major block being
//!   written (no gathers).
//! * The four tables have pairwise coprime lengths ([`ROWS`]: 512, 517, 523 and 535 rows) and
//!   are summed, so a channel's noise only repeats after their product, ≈ 7.4 × 10^10 frames
//!   (28.6 days at 30 kHz).
//! * The tables are tiny on purpose (130 KiB in all). In the paced daemon one block is generated
//!   every 4.27 ms and the pipeline streams hundreds of MB/s through the caches in between, so
//!   the tables are cold at every block and a block costs what fetching its distinct cache lines
//!   costs. A 128-frame block at 1024 channels reads 128 consecutive rows of every table in each
//!   of its 16 groups, which touches about all of these tables (2087 lines), where three tables
//!   of ~4096 rows (768 KiB) had it touch ~4900 rows (310 KiB), from further out in the
//!   hierarchy. 130 KiB also stays in a core's L2 when little else runs on it. A fourth table
//!   costs a load and an add per sample over three, and is what keeps the period long with
//!   tables this short. Building them is quick (stream start).
//! * The price of short tables: each table's spectrum is a line spectrum 56–59 Hz apart at
//!   30 kHz (four interleaved combs in the sum), visible in a power spectrum at 10 Hz
//!   resolution, and a channel's autocorrelation has peaks of 1/4 at multiples of each table's
//!   length (every ~17 ms). The lengths are far enough apart that no two tables come back
//!   within 3 rows of their relative position before 1.5 s, so the peaks stay at 1/4 (with
//!   lengths 4095/4096/4097 the autocorrelation was 0.8 at 136 ms). Irrelevant at the
//!   millisecond scale of spikes. And different columns, though independent draws, have sample
//!   cross-correlations that ripple more than long tables' would: up to about 0.05 at zero lag
//!   and 0.17 at some lag within ±90 ms (0.02 and 0.07 with 4096 rows).
//! * Channels are split into groups of `width`; group `g` starts table `t` at row
//!   `base[t] + g · GROUP_STEP[t]` (`base` drawn from the seed). Channel `j` of two groups reads
//!   the same four columns, so the groups' cross-correlation is the sum of the band's
//!   autocorrelation at the four row distances, /4: 1/4 at the lags where one table's rows
//!   coincide, about 0 elsewhere. The steps were chosen by a search over all of them, and the
//!   tests check what it found, for any two of the 16 groups: at zero lag no table's rows are
//!   less than 23 apart (|correlation| < 0.02); within ±2600 frames (87 ms) it stays below 0.3;
//!   two tables' rows coincide (0.5) only at lags ≥ 0.21 s, three at lags ≥ 75 s and all four at
//!   lags ≥ 15 h. Random offsets (as before) gave some pairs of groups, for some seeds, 0.26 at
//!   zero lag or 0.67 within ±83 ms.
//! * Samples are stored as `i8` amplifier units: a few µV rms is ~12 units per table, so ±127
//!   is ~10 σ, and halving the bytes read per sample matters more than the clipped tails.

use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;

/// Number of tables summed.
pub(crate) const TABLES: usize = 4;
/// Rows of the tables: pairwise coprime, so the sum's period is their product
/// (≈ 7.4 × 10^10 frames, 28.6 days at 30 kHz), while all of them together stay small enough
/// (130 KiB at 64 columns) that a block cold in cache costs little.
pub(crate) const ROWS: [usize; TABLES] = [512, 517, 523, 535];
/// Per table, how many rows further on each channel group starts than the previous group
/// (modulo the table's length). Found offline by a random search over the steps: among those
/// keeping every table's rows at least 20 apart at zero lag, three tables from coinciding within
/// a minute and all four within 8 hours, the one that keeps the correlation between any two of
/// 16 groups below 0.3 out to the longest lag (see the module documentation; the tests check it).
pub(crate) const GROUP_STEP: [usize; TABLES] = [451, 273, 214, 314];
/// Widest channel group sharing one table row.
pub(crate) const MAX_WIDTH: usize = 64;

/// One table row: one frame of a channel group, one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Row(pub [i8; MAX_WIDTH]);

/// The rows of all tables that one channel group adds at one frame.
pub(crate) type GroupRows<'a> = [&'a [i8; MAX_WIDTH]; TABLES];

/// Where a frame falls in each table's period (`frame % ROWS[t]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase([u32; TABLES]);

impl Phase {
    /// The phase of `frame`: four divisions by constants (multiplies), once per run of frames.
    #[inline]
    pub fn of(frame: u64) -> Phase {
        Phase(std::array::from_fn(|t| (frame % ROWS[t] as u64) as u32))
    }

    /// The phase of the next frame.
    #[inline]
    pub fn next(self) -> Phase {
        Phase(std::array::from_fn(|t| {
            let r = self.0[t] + 1;
            if r == ROWS[t] as u32 {
                0
            } else {
                r
            }
        }))
    }
}

/// The noise tables and each channel group's offsets into them.
#[derive(Debug, Clone)]
pub(crate) struct NoiseTables {
    width: usize,
    tables: [Vec<Row>; TABLES],
    /// Per group, per table: the row read at phase 0.
    starts: Vec<[u32; TABLES]>,
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
        // Each table carries a quarter of the variance.
        let per_table_units = rms_uv / (TABLES as f64).sqrt() / AMPLIFIER_UV_PER_UNIT;
        let (hp, lp) = noise_band_hz(rate);
        let tables =
            std::array::from_fn(|t| build_table(seed, t as u64, ROWS[t], width, rate, hp, lp, per_table_units));
        let mut rng = Rng::from_key(&[seed, stream::NOISE, TABLES as u64]);
        let base: [u64; TABLES] = std::array::from_fn(|t| rng.below(ROWS[t] as u64));
        let starts = (0..groups as u64)
            .map(|g| std::array::from_fn(|t| ((base[t] + g * GROUP_STEP[t] as u64) % ROWS[t] as u64) as u32))
            .collect();
        NoiseTables { width, tables, starts }
    }

    /// Channels per group (the tables' column count).
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// The table rows channel group `group` reads at `phase`.
    #[inline]
    pub fn rows(&self, group: usize, phase: Phase) -> GroupRows<'_> {
        let starts = &self.starts[group];
        std::array::from_fn(|t| {
            let mut r = phase.0[t] + starts[t];
            if r >= ROWS[t] as u32 {
                r -= ROWS[t] as u32;
            }
            &self.tables[t][r as usize].0
        })
    }
}

/// Gain of the noise band-pass at `w` radians per sample: a first-order high-pass
/// (`y[n] = a_hp (y[n-1] + x[n] - x[n-1])`) and two cascaded first-order low-passes
/// (`y[n] = y[n-1] + a_lp (x[n] - y[n-1])`), from their transfer functions.
fn band_pass_gain(w: f64, a_hp: f64, a_lp: f64) -> f64 {
    let c = w.cos();
    let hp2 = a_hp * a_hp * (2.0 - 2.0 * c) / (1.0 - 2.0 * a_hp * c + a_hp * a_hp);
    let b = 1.0 - a_lp;
    let lp2 = a_lp * a_lp / (1.0 - 2.0 * b * c + b * b);
    (hp2 * lp2 * lp2).sqrt()
}

/// One table: per column, a sum of sinusoids at every frequency the table's period allows
/// (`k · rate / rows`, DC and Nyquist left out), each with the band-pass's gain as its amplitude
/// and a random phase; then the column's values are replaced, rank for rank, by the normal
/// distribution's quantiles scaled to `rms_units`, and quantised.
///
/// The sinusoids give band-limited noise whose periodogram is exactly the band's shape rather
/// than a random draw around it. With tables this short it matters: a random periodogram (white
/// noise filtered around the loop, as before) gives a column a random autocorrelation of several
/// percent at every lag, which between channel groups reading the same column showed as
/// correlations of up to 0.1 at zero lag; with the exact shape the correlation between groups is
/// the band's autocorrelation at their row distance, which [`GROUP_STEP`] controls. The rank
/// mapping then gives every column exactly the same Gaussian set of values (a sum of hundreds
/// of random-phase sinusoids is already nearly Gaussian, so it barely moves the spectrum): every
/// channel has the requested rms and the same distribution over the period, normal out to 4 σ
/// (with 512 rows a column's own extremes would make one channel's 4 σ tail twice another's).
///
/// Built once per stream start, so its cost is start-up latency: the sum is evaluated row by
/// row for all columns in lockstep (the inner loop over columns is independent work the
/// compiler vectorises), in `f32`, ample for 8-bit samples.
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
) -> Vec<Row> {
    use std::f64::consts::TAU;
    let dt = 1.0 / rate;
    // One-pole coefficients from the RC analogue.
    let rc_hp = 1.0 / (TAU * hp_hz);
    let a_hp = rc_hp / (rc_hp + dt);
    let rc_lp = 1.0 / (TAU * lp_hz);
    let a_lp = dt / (rc_lp + dt);
    // Frequencies 1..=bins; a sinusoid of amplitude 2g has power 2g².
    let bins = (rows - 1) / 2;
    let gain: Vec<f64> = (1..=bins).map(|k| band_pass_gain(TAU * k as f64 / rows as f64, a_hp, a_lp)).collect();
    // Unit rms (only the order of the sums is used in the end).
    let unit = 1.0 / gain.iter().map(|g| 2.0 * g * g).sum::<f64>().sqrt();
    // Per frequency, per column: the cosine and sine coefficients.
    let mut cos_coef = vec![0f32; bins * width];
    let mut sin_coef = vec![0f32; bins * width];
    for j in 0..width {
        let mut rng = Rng::from_key(&[seed, stream::NOISE, which, j as u64]);
        for (k, g) in gain.iter().enumerate() {
            let phase = TAU * rng.unit();
            cos_coef[k * width + j] = (2.0 * g * unit * phase.cos()) as f32;
            sin_coef[k * width + j] = (-2.0 * g * unit * phase.sin()) as f32;
        }
    }
    let sums = sinusoid_sums(rows, width, &cos_coef, &sin_coef);
    // The normal quantiles at the mid-points of `rows` equal slices of probability, scaled to
    // exactly `rms_units`: every column takes these values, in the order of its sums.
    let quantiles: Vec<f64> = (0..rows).map(|i| normal_quantile((i as f64 + 0.5) / rows as f64)).collect();
    let scale = rms_units / (quantiles.iter().map(|q| q * q).sum::<f64>() / rows as f64).sqrt();
    let mut out = vec![Row([0; MAX_WIDTH]); rows];
    let mut order: Vec<usize> = (0..rows).collect();
    for j in 0..width {
        order.sort_unstable_by(|&a, &b| sums[a * width + j].total_cmp(&sums[b * width + j]));
        for (&r, q) in order.iter().zip(&quantiles) {
            out[r].0[j] = (q * scale).round().clamp(-127.0, 127.0) as i8;
        }
    }
    out
}

/// Row-major `rows × width`: per column `j`, the sum over frequencies `k` of
/// `cos_coef[k][j] · cos(2πkn/rows) + sin_coef[k][j] · sin(2πkn/rows)` at every row `n`.
///
/// Rows `n` and `rows − n` share their cosine and (negated) sine terms, so both come from one
/// pass. On x86-64 CPUs with AVX2 the same code is compiled a second time with AVX2 enabled and
/// picked at run time (8 lanes instead of 4); without fused multiply-adds both give identical
/// sums, so the tables do not depend on the CPU.
fn sinusoid_sums(rows: usize, width: usize, cos_coef: &[f32], sin_coef: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { sinusoid_sums_avx2(rows, width, cos_coef, sin_coef) };
        }
    }
    sinusoid_sums_portable(rows, width, cos_coef, sin_coef)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sinusoid_sums_avx2(rows: usize, width: usize, cos_coef: &[f32], sin_coef: &[f32]) -> Vec<f32> {
    sinusoid_sums_portable(rows, width, cos_coef, sin_coef)
}

#[inline(always)]
fn sinusoid_sums_portable(rows: usize, width: usize, cos_coef: &[f32], sin_coef: &[f32]) -> Vec<f32> {
    use std::f64::consts::TAU;
    let cos_table: Vec<f32> = (0..rows).map(|i| (TAU * i as f64 / rows as f64).cos() as f32).collect();
    let sin_table: Vec<f32> = (0..rows).map(|i| (TAU * i as f64 / rows as f64).sin() as f32).collect();
    let mut sums = vec![0f32; rows * width];
    let (mut even, mut odd) = (vec![0f32; width], vec![0f32; width]);
    for n in 0..=rows / 2 {
        even.fill(0.0);
        odd.fill(0.0);
        // (k · n) mod rows, stepped as k goes up.
        let mut at = 0;
        for (cc, sc) in cos_coef.chunks_exact(width).zip(sin_coef.chunks_exact(width)) {
            at += n;
            if at >= rows {
                at -= rows;
            }
            let (c, s) = (cos_table[at], sin_table[at]);
            for j in 0..width {
                even[j] += cc[j] * c;
                odd[j] += sc[j] * s;
            }
        }
        for j in 0..width {
            sums[n * width + j] = even[j] + odd[j];
        }
        if n != 0 && 2 * n != rows {
            for j in 0..width {
                sums[(rows - n) * width + j] = even[j] - odd[j];
            }
        }
    }
    sums
}

/// The standard normal distribution's quantile function (P. J. Acklam's rational
/// approximation, relative error below 1.2 × 10^-9), for `p` in (0, 1).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channel `c`'s noise at `frame`, amplifier units.
    fn sample(t: &NoiseTables, c: usize, frame: u64) -> f64 {
        let w = t.width();
        t.rows(c / w, Phase::of(frame)).iter().map(|row| row[c % w] as f64).sum()
    }

    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    /// The lag `τ` (centred, |τ| ≤ modulus / 2) with `τ ≡ residues[i] (mod moduli[i])` for all i.
    fn crt(residues: &[u128], moduli: &[u128]) -> i128 {
        let (mut x, mut m) = (0u128, 1u128);
        for (&r, &n) in residues.iter().zip(moduli) {
            // Step x by m until it also matches modulo n (n is small).
            while x % n != r % n {
                x += m;
            }
            m *= n;
        }
        if x > m / 2 {
            x as i128 - m as i128
        } else {
            x as i128
        }
    }

    #[test]
    fn tables_have_the_requested_rms_on_every_channel() {
        let t = NoiseTables::new(3, 200, 30000.0, 4.5);
        let n = 20000u64;
        for c in [0, 3, 63, 64, 100, 199] {
            let rms =
                ((0..n).map(|f| (sample(&t, c, f) * AMPLIFIER_UV_PER_UNIT).powi(2)).sum::<f64>() / n as f64).sqrt();
            assert!((rms - 4.5).abs() < 0.2, "channel {c}: {rms}");
        }
        // Little noise (sim-sine) is still the requested rms despite the coarse quantisation.
        let quiet = NoiseTables::new(3, 64, 30000.0, 1.0);
        let rms =
            ((0..n).map(|f| (sample(&quiet, 10, f) * AMPLIFIER_UV_PER_UNIT).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!((rms - 1.0).abs() < 0.06, "{rms}");
    }

    /// Over a whole period every combination of the tables' rows occurs once (the lengths are
    /// coprime), so a channel's distribution is exactly the convolution of its columns' value
    /// histograms. It must be Gaussian out to the tails a spike detector sees (3–4 σ).
    #[test]
    fn every_channel_is_gaussian_over_the_period() {
        let t = NoiseTables::new(4, 64, 30000.0, 4.5);
        let normal_below = |k: f64| 0.5 * erfc(k / std::f64::consts::SQRT_2);
        for c in 0..64 {
            // Probabilities of the sum's values, from the lowest possible (-127 per table).
            let mut dist = vec![1.0f64];
            for table in &t.tables {
                let mut histogram = [0.0f64; 255];
                for row in table {
                    histogram[(row.0[c] as i32 + 127) as usize] += 1.0 / table.len() as f64;
                }
                let mut next = vec![0.0; dist.len() + 254];
                for (i, &p) in dist.iter().enumerate().filter(|(_, &p)| p > 0.0) {
                    for (j, &q) in histogram.iter().enumerate() {
                        next[i + j] += p * q;
                    }
                }
                dist = next;
            }
            let value = |i: usize| i as f64 - 127.0 * TABLES as f64;
            let mean: f64 = dist.iter().enumerate().map(|(i, p)| value(i) * p).sum();
            let moment = |k: i32| dist.iter().enumerate().map(|(i, p)| (value(i) - mean).powi(k) * p).sum::<f64>();
            let sd = moment(2).sqrt();
            let kurtosis = moment(4) / moment(2).powi(2);
            let skew = moment(3) / sd.powi(3);
            assert!((kurtosis - 3.0).abs() < 0.15, "column {c}: kurtosis {kurtosis}");
            assert!(skew.abs() < 0.1, "column {c}: skew {skew}");
            for k in [1.0, 2.0, 3.0, 4.0] {
                // Both tails, compared with the normal distribution's.
                let below: f64 =
                    dist.iter().enumerate().filter(|(i, _)| value(*i) - mean < -k * sd).map(|(_, p)| p).sum();
                let above: f64 =
                    dist.iter().enumerate().filter(|(i, _)| value(*i) - mean > k * sd).map(|(_, p)| p).sum();
                let expect = normal_below(k);
                for (side, p) in [("below", below), ("above", above)] {
                    let ratio = p / expect;
                    let tolerance = if k < 4.0 { 0.1 } else { 0.25 };
                    assert!((ratio - 1.0).abs() < tolerance, "column {c}: {p:.2e} {side} {k} σ, normal {expect:.2e}");
                }
            }
        }
    }

    /// Complementary error function (Abramowitz & Stegun 7.1.26, error below 1.5e-7).
    fn erfc(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.3275911 * x);
        let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        poly * (-x * x).exp()
    }

    /// The sums use the symmetry between rows `n` and `rows − n`; they equal the sums
    /// evaluated directly, and the AVX2 build gives bit-identical ones (tables must not depend
    /// on the CPU).
    #[test]
    fn sinusoid_sums_are_exact_and_the_same_on_every_cpu() {
        let (width, bins) = (7, 40);
        for rows in [81usize, 82] {
            let mut rng = Rng::from_key(&[rows as u64]);
            let cos_coef: Vec<f32> = (0..bins * width).map(|_| rng.normal() as f32).collect();
            let sin_coef: Vec<f32> = (0..bins * width).map(|_| rng.normal() as f32).collect();
            let sums = sinusoid_sums_portable(rows, width, &cos_coef, &sin_coef);
            for n in 0..rows {
                for j in 0..width {
                    let direct: f64 = (0..bins)
                        .map(|k| {
                            let w = std::f64::consts::TAU * ((k + 1) * n) as f64 / rows as f64;
                            cos_coef[k * width + j] as f64 * w.cos() + sin_coef[k * width + j] as f64 * w.sin()
                        })
                        .sum();
                    let got = sums[n * width + j] as f64;
                    assert!((got - direct).abs() < 1e-3, "rows {rows}, row {n}, column {j}: {got} vs {direct}");
                }
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                let avx2 = unsafe { sinusoid_sums_avx2(rows, width, &cos_coef, &sin_coef) };
                assert!(avx2.iter().zip(&sums).all(|(a, b)| a.to_bits() == b.to_bits()), "rows {rows}");
            }
        }
    }

    /// The gain the tables are built with is the recursive band-pass's: a sinusoid run
    /// through the filter comes out scaled by it (this is what keeps the band as it was when
    /// the tables were filtered white noise).
    #[test]
    fn band_pass_gain_is_the_recursive_filters() {
        let rate = 30000.0;
        let (hp_hz, lp_hz) = noise_band_hz(rate);
        let dt = 1.0 / rate;
        let rc_hp = 1.0 / (std::f64::consts::TAU * hp_hz);
        let a_hp = rc_hp / (rc_hp + dt);
        let rc_lp = 1.0 / (std::f64::consts::TAU * lp_hz);
        let a_lp = dt / (rc_lp + dt);
        for f in [50.0, 300.0, 1000.0, 6000.0, 12000.0] {
            let w = std::f64::consts::TAU * f / rate;
            let (mut prev_x, mut hp, mut lp1, mut lp2, mut peak) = (0.0, 0.0, 0.0, 0.0, 0.0f64);
            for n in 0..300_000 {
                let x = (w * n as f64).sin();
                hp = a_hp * (hp + x - prev_x);
                prev_x = x;
                lp1 += a_lp * (hp - lp1);
                lp2 += a_lp * (lp1 - lp2);
                if n > 200_000 {
                    peak = peak.max(lp2.abs());
                }
            }
            let g = band_pass_gain(w, a_hp, a_lp);
            assert!((peak - g).abs() < 0.01 * g + 1e-3, "{f} Hz: filter {peak}, gain {g}");
        }
        // And it is a band-pass: half power near the corners, little far outside.
        let gain = |f: f64| band_pass_gain(std::f64::consts::TAU * f / rate, a_hp, a_lp);
        assert!(gain(30.0) < 0.15 && gain(1000.0) > 0.8 && gain(14000.0) < 0.2);
    }

    #[test]
    fn columns_are_band_limited_and_independent() {
        let t = NoiseTables::new(5, 64, 30000.0, 4.5);
        let n = 30_000u64;
        let column = |c: usize| -> Vec<f64> { (0..n).map(|f| sample(&t, c, f)).collect() };
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

    /// The spectrum over a whole period is the sum of the tables' own (line) spectra: most of
    /// the power lies in the band, little below the high-pass corner or far above the low-pass.
    #[test]
    fn power_lies_in_the_noise_band() {
        let rate = 30000.0;
        let t = NoiseTables::new(9, 64, rate, 4.5);
        let (hp, lp) = noise_band_hz(rate);
        let (mut below, mut inside, mut above, mut total) = (0.0, 0.0, 0.0, 0.0);
        for (table, &rows) in t.tables.iter().zip(&ROWS) {
            for c in [0, 17, 63] {
                let x: Vec<f64> = table.iter().map(|row| row.0[c] as f64).collect();
                for k in 1..rows / 2 {
                    let w = std::f64::consts::TAU * k as f64 / rows as f64;
                    let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, v)| {
                        (re + v * (w * i as f64).cos(), im + v * (w * i as f64).sin())
                    });
                    let (f, p) = (k as f64 * rate / rows as f64, re * re + im * im);
                    total += p;
                    if f < hp / 2.0 {
                        below += p;
                    } else if f > 2.0 * lp {
                        above += p;
                    } else if (hp..=lp).contains(&f) {
                        inside += p;
                    }
                }
            }
        }
        assert!(inside / total > 0.6, "{:.3} of the power in the band", inside / total);
        assert!(below / total < 0.05, "{:.3} of the power below {} Hz", below / total, hp / 2.0);
        assert!(above / total < 0.05, "{:.3} of the power above {} Hz", above / total, 2.0 * lp);
    }

    /// Stepping the phase frame by frame (the hot loop) agrees with computing it.
    #[test]
    fn phase_steps_through_every_wrap() {
        for start in [0u64, 511, 534, 1 << 40, u64::MAX - 3000] {
            let mut p = Phase::of(start);
            for f in start..start + 2000 {
                assert_eq!(p, Phase::of(f), "frame {f}");
                p = p.next();
            }
        }
    }

    /// The sum repeats only after the product of the table lengths, and that is weeks at
    /// 30 kHz: the lengths are pairwise coprime, the phases come back only at the product, and
    /// no table is itself periodic over a shorter length.
    #[test]
    fn noise_repeats_only_after_weeks() {
        let period: u128 = ROWS.iter().map(|&r| r as u128).product();
        for (i, &a) in ROWS.iter().enumerate() {
            for &b in &ROWS[i + 1..] {
                assert_eq!(gcd(a as u128, b as u128), 1, "{a} and {b}");
            }
        }
        assert!(period as f64 / 30000.0 > 28.0 * 86400.0, "period {period} frames");
        assert_eq!(Phase::of(period as u64), Phase::of(0));
        // The first frame after 0 with every table back at row 0 is the period: check at every
        // prime factor's quotient (a shorter period divides the period).
        let mut factors = vec![];
        let mut rest = period;
        let mut p = 2;
        while rest > 1 {
            if rest.is_multiple_of(p) {
                factors.push(p);
                while rest.is_multiple_of(p) {
                    rest /= p;
                }
            }
            p += 1;
        }
        for p in factors {
            assert_ne!(Phase::of((period / p) as u64), Phase::of(0), "repeats after period / {p}");
        }
        // A table column shorter-periodic than its length would shorten the period.
        let t = NoiseTables::new(2, 64, 30000.0, 4.5);
        for (table, &rows) in t.tables.iter().zip(&ROWS) {
            for shift in 1..rows {
                let c = 5;
                assert!((0..rows).any(|r| table[r].0[c] != table[(r + shift) % rows].0[c]), "shift {shift}");
            }
        }
    }

    /// Where the rows the groups read coincide. Two channels in the same column of groups `g`
    /// and `h` read the same row of table `t` at lags `τ ≡ starts[h][t] − starts[g][t]`
    /// (mod rows): a correlation of 1/4 per coinciding table. The steps keep one table's rows at
    /// least 21 apart at zero lag and make two tables coincide only far from zero lag.
    #[test]
    fn groups_read_coinciding_rows_only_far_from_zero_lag() {
        let t = NoiseTables::new(17, 1024, 30000.0, 4.5);
        let groups = t.starts.len();
        assert_eq!(groups, 16);
        let mut closest = [i128::MAX; TABLES + 1];
        for g in 0..groups {
            for h in g + 1..groups {
                let lag = |tables: &[usize]| {
                    let m: Vec<u128> = tables.iter().map(|&t| ROWS[t] as u128).collect();
                    let r: Vec<u128> = tables
                        .iter()
                        .map(|&i| ((t.starts[h][i] + ROWS[i] as u32 - t.starts[g][i]) % ROWS[i] as u32) as u128)
                        .collect();
                    crt(&r, &m).abs()
                };
                for mask in 1usize..1 << TABLES {
                    let tables: Vec<usize> = (0..TABLES).filter(|i| mask >> i & 1 == 1).collect();
                    let k = tables.len();
                    closest[k] = closest[k].min(lag(&tables));
                }
            }
        }
        let rate = 30000.0;
        assert!(closest[1] >= 23, "one table's rows {} apart at zero lag", closest[1]);
        assert!(closest[2] as f64 / rate >= 0.2, "two tables coincide at a lag of {} frames", closest[2]);
        assert!(closest[3] as f64 / rate >= 75.0, "three tables coincide at a lag of {} frames", closest[3]);
        assert!(closest[4] as f64 / rate >= 15.0 * 3600.0, "all tables coincide at a lag of {} frames", closest[4]);
    }

    /// The cross-correlation of channels in the same column of different groups over the whole
    /// period, computed exactly from the tables' circular autocovariances: about 0 at zero lag,
    /// and nowhere within ±2600 frames (87 ms at 30 kHz) much more than one table's share (1/4:
    /// one table's rows coincide, the others' are far apart).
    #[test]
    fn groups_are_decorrelated_at_zero_and_short_lags() {
        let t = NoiseTables::new(23, 1024, 30000.0, 4.5);
        let groups = t.starts.len();
        let max_lag = 2_600i64;
        for c in [0, 21, 42, 63] {
            // Circular autocovariance of column c in each table.
            let acov: Vec<Vec<f64>> = t
                .tables
                .iter()
                .map(|table| {
                    let n = table.len();
                    let mean = table.iter().map(|r| r.0[c] as f64).sum::<f64>() / n as f64;
                    let x: Vec<f64> = table.iter().map(|r| r.0[c] as f64 - mean).collect();
                    (0..n).map(|k| (0..n).map(|i| x[i] * x[(i + k) % n]).sum::<f64>() / n as f64).collect()
                })
                .collect();
            let var: f64 = acov.iter().map(|a| a[0]).sum();
            for g in 0..groups {
                for h in g + 1..groups {
                    let mut worst = (0.0f64, 0i64);
                    for lag in -max_lag..=max_lag {
                        let cov: f64 = (0..TABLES)
                            .map(|i| {
                                let n = ROWS[i] as i64;
                                let d = t.starts[h][i] as i64 - t.starts[g][i] as i64 + lag;
                                acov[i][d.rem_euclid(n) as usize]
                            })
                            .sum();
                        let r = cov / var;
                        if lag == 0 {
                            assert!(r.abs() < 0.02, "channel {c}, groups {g} and {h}: {r:.3} at zero lag");
                        }
                        if r.abs() > worst.0.abs() {
                            worst = (r, lag);
                        }
                    }
                    assert!(worst.0.abs() < 0.3, "channel {c}, groups {g} and {h}: {:.3} at lag {}", worst.0, worst.1);
                }
            }
        }
    }
}

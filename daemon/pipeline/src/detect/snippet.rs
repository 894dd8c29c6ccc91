//! From the raw samples around a crossing to the snippet a [`Spike`](super::Spike) carries.
//!
//! The CL API's snippet is 75 samples at 25 kHz: 25 before the crossing and 50 from it, i.e.
//! the times `(j - 25) / 25000` s for `j` in `0..75`. At any other rate the detector keeps the
//! raw samples covering that span (1 ms before, 1.96 ms after) and interpolates linearly onto
//! those 75 times; the interpolation positions are computed once per stream. At 25 kHz every
//! position falls on a sample, and the snippet is the raw samples exactly.

use super::spike::{SNIPPET_PRE, SNIPPET_SAMPLES};

/// The snippet's own rate: at this rate snippet points are samples.
pub const SNIPPET_RATE_HZ: f64 = 25_000.0;

/// Where the snippet's points fall among the raw samples at one sample rate.
#[derive(Debug, Clone)]
pub(crate) struct SnippetGeometry {
    /// Raw samples kept before the crossing.
    pub pre: usize,
    /// Raw samples kept in all; the crossing is at index `pre`.
    pub len: usize,
    /// For each snippet point: the raw index at or before it, and the fraction of the way to
    /// the next raw sample.
    taps: [(usize, f32); SNIPPET_SAMPLES],
}

impl SnippetGeometry {
    pub(crate) fn new(sample_rate_hz: f64) -> Self {
        // Raw offset (from the crossing) of snippet point j, kept exact where it is an integer
        // so that 25 kHz (and multiples of it) pick samples without interpolation.
        let offset = |j: usize| {
            let p = (j as f64 - SNIPPET_PRE as f64) * sample_rate_hz / SNIPPET_RATE_HZ;
            if (p - p.round()).abs() < 1e-9 {
                p.round()
            } else {
                p
            }
        };
        let pre = (-offset(0).floor()) as usize;
        let last = offset(SNIPPET_SAMPLES - 1).ceil() as usize;
        let taps = std::array::from_fn(|j| {
            let p = offset(j) + pre as f64;
            let i = p.floor();
            (i as usize, (p - i) as f32)
        });
        SnippetGeometry { pre, len: pre + last + 1, taps }
    }

    /// Interpolates the snippet's points out of `raw` (`len` samples, crossing at `pre`).
    pub(crate) fn resample(&self, raw: &[f32], out: &mut [f32; SNIPPET_SAMPLES]) {
        for (o, &(i, frac)) in out.iter_mut().zip(&self.taps) {
            *o = if frac == 0.0 { raw[i] } else { raw[i] + (raw[i + 1] - raw[i]) * frac };
        }
    }
}

/// Index of the extreme of `raw[from..=to]`: the minimum for a negative crossing, the maximum
/// for a positive one (the first one on ties). The search starts from `anchor` (the crossing,
/// inside the range and never NaN), so NaN samples are never chosen.
pub(crate) fn peak_index(raw: &[f32], from: usize, to: usize, anchor: usize, negative: bool) -> usize {
    let mut best = anchor;
    for i in from..=to {
        let better = if negative { raw[i] < raw[best] } else { raw[i] > raw[best] };
        if better {
            best = i;
        }
    }
    best
}

/// Width of the excursion through `raw[peak]` at half its height (from zero), in samples,
/// interpolated between samples; an excursion that runs off the end of `raw` is cut there.
pub(crate) fn half_peak_width(raw: &[f32], peak: usize) -> f32 {
    let half = raw[peak] * 0.5;
    let beyond = |v: f32| if half < 0.0 { v < half } else { v > half };
    // Where the straight line from a (inside) to b (beyond) meets the half level, as a
    // fraction of the way from a to b.
    let meet = |a: f32, b: f32| if b != a { ((half - a) / (b - a)).clamp(0.0, 1.0) } else { 0.0 };
    let mut left = peak;
    while left > 0 && beyond(raw[left - 1]) {
        left -= 1;
    }
    let left_edge = if left > 0 { (left - 1) as f32 + meet(raw[left - 1], raw[left]) } else { 0.0 };
    let mut right = peak;
    while right + 1 < raw.len() && beyond(raw[right + 1]) {
        right += 1;
    }
    let right_edge =
        if right + 1 < raw.len() { (right + 1) as f32 - meet(raw[right + 1], raw[right]) } else { right as f32 };
    right_edge - left_edge
}

/// Subtracts the mean of `samples` from each of them.
pub(crate) fn centre(samples: &mut [f32; SNIPPET_SAMPLES]) {
    let mean = samples.iter().sum::<f32>() / SNIPPET_SAMPLES as f32;
    samples.iter_mut().for_each(|v| *v -= mean);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_25_khz_the_snippet_is_the_raw_samples() {
        let g = SnippetGeometry::new(25_000.0);
        assert_eq!((g.pre, g.len), (25, 75));
        let raw: Vec<f32> = (0..75).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let mut out = [0.0; SNIPPET_SAMPLES];
        g.resample(&raw, &mut out);
        assert_eq!(out.to_vec(), raw);
    }

    #[test]
    fn at_other_rates_the_same_span_is_interpolated() {
        for (rate, pre, len) in [(30_000.0, 30, 90), (20_000.0, 20, 61), (1_000.0, 1, 4), (10_000.0 / 3.0, 4, 12)] {
            let g = SnippetGeometry::new(rate);
            assert_eq!((g.pre, g.len), (pre, len), "{rate} Hz");
            // A ramp in time resamples to the same ramp at 25 kHz.
            let raw: Vec<f32> = (0..g.len).map(|i| (i as f64 - g.pre as f64) as f32 / rate as f32).collect();
            let mut out = [0.0; SNIPPET_SAMPLES];
            g.resample(&raw, &mut out);
            for (j, v) in out.iter().enumerate() {
                let t = (j as f32 - 25.0) / 25_000.0;
                assert!((v - t).abs() < 1e-7, "{rate} Hz, point {j}: {v} vs {t}");
            }
        }
    }

    #[test]
    fn widths_are_measured_at_half_the_peak() {
        // Half of -100 is -50: crossed a quarter of the way from sample 1 to 2 and halfway from
        // sample 5 to 6.
        let raw = [0.0, -40.0, -80.0, -100.0, -90.0, -60.0, -40.0, 0.0];
        assert_eq!(peak_index(&raw, 0, 7, 1, true), 3);
        assert_eq!(peak_index(&[f32::NAN, -50.0, -60.0], 0, 2, 1, true), 2);
        assert!((half_peak_width(&raw, 3) - (5.5 - 1.25)).abs() < 1e-6);
        let up = raw.map(|v| -v);
        assert_eq!(peak_index(&up, 0, 7, 1, false), 3);
        assert!((half_peak_width(&up, 3) - 4.25).abs() < 1e-6);
        // Cut at the ends.
        assert!((half_peak_width(&[-100.0, -90.0, 0.0], 0) - (1.0 + 40.0 / 90.0)).abs() < 1e-6);
    }
}

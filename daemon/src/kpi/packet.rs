//! The metrics of one packet: every metric of every amplifier channel over the same frames,
//! and the spikes detected in them.
//!
//! Pure functions over a copy of the packet, so they run on the KPI thread with nothing locked
//! and are tested on their own. Sums are taken in integers of the raw samples (exact), and
//! scaled to µV once, so `SD` carries no cancellation error even on a large offset.

use ephysd_drivers::AMPLIFIER_UV_PER_UNIT;
use ephysd_pipeline::detect::Spike;

use super::metric::{KpiMetric, METRIC_COUNT};

/// The divisor that makes a median absolute deviation a standard deviation for Gaussian noise.
pub const MAD_TO_SD: f64 = 0.6745;

/// What KPI keeps of a spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeSummary {
    /// Device frame index of the threshold crossing.
    pub frame: u64,
    /// Amplifier channel.
    pub channel: usize,
    /// The spike's extreme, µV.
    pub peak_uv: f64,
    /// Largest minus smallest sample of its snippet, µV.
    pub peak_to_peak_uv: f64,
}

impl From<&Spike> for SpikeSummary {
    fn from(s: &Spike) -> Self {
        let (lo, hi) = s.samples.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        SpikeSummary {
            frame: s.frame,
            channel: usize::from(s.channel),
            peak_uv: f64::from(s.peak_uv),
            peak_to_peak_uv: f64::from(hi) - f64::from(lo),
        }
    }
}

/// One packet's samples: `frames` frames of `channels` amplifier values, frame-major, raw units.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    /// The values, `frames * channels` of them.
    pub amplifier: &'a [i16],
    /// Amplifier channels per frame.
    pub channels: usize,
    /// Frames per second.
    pub sample_rate_hz: f64,
    /// The spike detector's noise estimate per channel (µV; NaN where it has none yet). When
    /// given, `NOISE_UV` and `SNR` use it, as radiens-core defines them ("the spike
    /// detector's noise estimate, which its thresholds are scaled by"); without it the packet's
    /// own median absolute deviation stands in.
    pub detector_noise_uv: Option<&'a [f64]>,
}

/// Reusable space for [`measure`]: one channel's deviations (for the median).
#[derive(Debug, Default)]
pub struct Scratch {
    column: Vec<f64>,
}

/// Median of `v` (numpy's: the mean of the two middle values of an even count). Reorders `v`.
pub fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (lower, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + mid) / 2.0
    }
}

/// Writes every metric of every channel of `samples` into `out` (`channels * METRIC_COUNT`
/// values, row per channel, column per [`KpiMetric::column`]). `spikes` are the spikes of the
/// packet (the caller picks them by frame); spikes on channels beyond the layout are ignored.
/// An empty packet gives the [`KpiMetric::unmeasured`] values.
pub fn measure(samples: Samples<'_>, spikes: &[SpikeSummary], scratch: &mut Scratch, out: &mut Vec<f64>) {
    let c = samples.channels;
    out.clear();
    out.resize(c * METRIC_COUNT, f64::NAN);
    let frames = samples.amplifier.len().checked_div(c).unwrap_or(0);
    if frames == 0 {
        for row in out.chunks_exact_mut(METRIC_COUNT) {
            for m in KpiMetric::ALL {
                row[m.column()] = m.unmeasured();
            }
        }
        return;
    }
    let amplifier = &samples.amplifier[..frames * c];
    let signal = SignalSums::of(amplifier, c);
    let events = EventSums::of(spikes, c);
    let (n, k) = (frames as f64, AMPLIFIER_UV_PER_UNIT);
    let duration = n / samples.sample_rate_hz;
    for (ch, row) in out.chunks_exact_mut(METRIC_COUNT).enumerate() {
        let (s1, s2) = (signal.sum[ch], signal.sum_sq[ch]);
        let mean = s1 as f64 / n * k;
        // n·Σx² − (Σx)² is exact in 128 bits; the variance is that over n².
        let spread = (i128::from(s2) * frames as i128 - i128::from(s1) * i128::from(s1)) as f64;
        let (min, max) = (f64::from(signal.min[ch]) * k, f64::from(signal.max[ch]) * k);
        let noise = match samples.detector_noise_uv.and_then(|n| n.get(ch)) {
            Some(&noise) => noise,
            None => {
                scratch.column.clear();
                scratch.column.extend(amplifier.iter().skip(ch).step_by(c).map(|&v| (f64::from(v) * k - mean).abs()));
                median(&mut scratch.column) / MAD_TO_SD
            }
        };
        let set = |row: &mut [f64], m: KpiMetric, v: f64| row[m.column()] = v;
        set(row, KpiMetric::NumPts, n);
        set(row, KpiMetric::NumPtsIsi, n);
        set(row, KpiMetric::DurSec, duration);
        set(row, KpiMetric::Mean, mean);
        set(row, KpiMetric::Min, min);
        set(row, KpiMetric::Max, max);
        set(row, KpiMetric::MaxAbs, min.abs().max(max.abs()));
        set(row, KpiMetric::MaxMinDiffAbs, max - min);
        set(row, KpiMetric::Sd, spread.max(0.0).sqrt() / n * k);
        set(row, KpiMetric::Rms, (s2 as f64 / n).sqrt() * k);
        set(row, KpiMetric::NoiseUv, noise);
        let e = &events;
        let count = e.count[ch];
        set(row, KpiMetric::EventRate, count as f64 / duration);
        if count == 0 {
            for m in KpiMetric::ALL {
                if let Some(v) = m.without_events() {
                    row[m.column()] = v;
                }
            }
            continue;
        }
        let mean_abs = e.sum_abs[ch] / count as f64;
        set(row, KpiMetric::EventMax, e.max[ch]);
        set(row, KpiMetric::EventMin, e.min[ch]);
        set(row, KpiMetric::EventMaxAbs, e.max_abs[ch]);
        set(row, KpiMetric::EventMaxMinDiffAbs, e.max_p2p[ch]);
        set(row, KpiMetric::EventMeanMaxAbs, mean_abs);
        set(row, KpiMetric::EventMeanMaxMinDiffAbs, e.sum_p2p[ch] / count as f64);
        set(row, KpiMetric::Snr, if noise > 0.0 { mean_abs / noise } else { f64::NAN });
    }
}

/// Integer sums and extremes per channel, in one frame-major pass.
struct SignalSums {
    sum: Vec<i64>,
    sum_sq: Vec<i64>,
    min: Vec<i16>,
    max: Vec<i16>,
}

impl SignalSums {
    fn of(amplifier: &[i16], channels: usize) -> Self {
        let mut s = SignalSums {
            sum: vec![0; channels],
            sum_sq: vec![0; channels],
            min: vec![i16::MAX; channels],
            max: vec![i16::MIN; channels],
        };
        for frame in amplifier.chunks_exact(channels) {
            for (ch, &v) in frame.iter().enumerate() {
                let x = i64::from(v);
                s.sum[ch] += x;
                s.sum_sq[ch] += x * x;
                s.min[ch] = s.min[ch].min(v);
                s.max[ch] = s.max[ch].max(v);
            }
        }
        s
    }
}

/// Spike counts, extremes and sums per channel.
struct EventSums {
    count: Vec<u64>,
    max: Vec<f64>,
    min: Vec<f64>,
    max_abs: Vec<f64>,
    max_p2p: Vec<f64>,
    sum_abs: Vec<f64>,
    sum_p2p: Vec<f64>,
}

impl EventSums {
    fn of(spikes: &[SpikeSummary], channels: usize) -> Self {
        let mut e = EventSums {
            count: vec![0; channels],
            max: vec![f64::NEG_INFINITY; channels],
            min: vec![f64::INFINITY; channels],
            max_abs: vec![f64::NEG_INFINITY; channels],
            max_p2p: vec![f64::NEG_INFINITY; channels],
            sum_abs: vec![0.0; channels],
            sum_p2p: vec![0.0; channels],
        };
        for s in spikes.iter().filter(|s| s.channel < channels) {
            let ch = s.channel;
            e.count[ch] += 1;
            e.max[ch] = e.max[ch].max(s.peak_uv);
            e.min[ch] = e.min[ch].min(s.peak_uv);
            e.max_abs[ch] = e.max_abs[ch].max(s.peak_uv.abs());
            e.max_p2p[ch] = e.max_p2p[ch].max(s.peak_to_peak_uv);
            e.sum_abs[ch] += s.peak_uv.abs();
            e.sum_p2p[ch] += s.peak_to_peak_uv;
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(out: &[f64], ch: usize, m: KpiMetric) -> f64 {
        out[ch * METRIC_COUNT + m.column()]
    }

    #[test]
    fn median_is_numpys() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn a_known_signal_gives_known_metrics() {
        // Channel 0: 10, -10 alternating (µV ×0.195); channel 1: constant 100.
        let amplifier: Vec<i16> = (0..100).flat_map(|i| [if i % 2 == 0 { 10 } else { -10 }, 100]).collect();
        let spikes = [
            SpikeSummary { frame: 3, channel: 0, peak_uv: -40.0, peak_to_peak_uv: 60.0 },
            SpikeSummary { frame: 9, channel: 0, peak_uv: 20.0, peak_to_peak_uv: 30.0 },
            SpikeSummary { frame: 9, channel: 7, peak_uv: 20.0, peak_to_peak_uv: 30.0 },
        ];
        let mut out = Vec::new();
        let samples = Samples { amplifier: &amplifier, channels: 2, sample_rate_hz: 1000.0, detector_noise_uv: None };
        measure(samples, &spikes, &mut Scratch::default(), &mut out);
        let k = AMPLIFIER_UV_PER_UNIT;
        assert_eq!(col(&out, 0, KpiMetric::NumPts), 100.0);
        assert_eq!(col(&out, 0, KpiMetric::DurSec), 0.1);
        assert_eq!(col(&out, 0, KpiMetric::Mean), 0.0);
        assert!((col(&out, 0, KpiMetric::Sd) - 10.0 * k).abs() < 1e-12);
        assert!((col(&out, 0, KpiMetric::Rms) - 10.0 * k).abs() < 1e-12);
        assert!((col(&out, 0, KpiMetric::NoiseUv) - 10.0 * k / MAD_TO_SD).abs() < 1e-12);
        assert!((col(&out, 0, KpiMetric::MaxMinDiffAbs) - 20.0 * k).abs() < 1e-12);
        assert_eq!(col(&out, 0, KpiMetric::EventRate), 20.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMax), 20.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMin), -40.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMaxAbs), 40.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMaxMinDiffAbs), 60.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMeanMaxAbs), 30.0);
        assert_eq!(col(&out, 0, KpiMetric::EventMeanMaxMinDiffAbs), 45.0);
        assert!((col(&out, 0, KpiMetric::Snr) - 30.0 / (10.0 * k / MAD_TO_SD)).abs() < 1e-9);
        // A flat channel: no spread, no noise, no events.
        assert_eq!(col(&out, 1, KpiMetric::Sd), 0.0);
        assert_eq!(col(&out, 1, KpiMetric::NoiseUv), 0.0);
        assert_eq!(col(&out, 1, KpiMetric::EventRate), 0.0);
        assert!(col(&out, 1, KpiMetric::Snr).is_nan());
        assert_eq!(col(&out, 1, KpiMetric::EventMin), f64::INFINITY);
        assert_eq!(col(&out, 1, KpiMetric::EventMeanMaxAbs), f64::NEG_INFINITY);
    }

    #[test]
    fn nothing_measured_reads_zero_counts_and_nan() {
        let mut out = Vec::new();
        measure(
            Samples { amplifier: &[], channels: 3, sample_rate_hz: 1000.0, detector_noise_uv: None },
            &[],
            &mut Scratch::default(),
            &mut out,
        );
        assert_eq!(out.len(), 3 * METRIC_COUNT);
        assert_eq!(col(&out, 2, KpiMetric::NumPts), 0.0);
        assert!(col(&out, 2, KpiMetric::NoiseUv).is_nan());
    }

    #[test]
    fn a_spike_keeps_its_peak_and_snippet_range() {
        let mut samples = [0f32; ephysd_pipeline::detect::SNIPPET_SAMPLES];
        samples[10] = -55.5;
        samples[30] = 21.25;
        let s = Spike { frame: 77, channel: 5, unit: -1, peak_uv: -60.0, samples };
        let summary = SpikeSummary::from(&s);
        assert_eq!(summary, SpikeSummary { frame: 77, channel: 5, peak_uv: -60.0, peak_to_peak_uv: 76.75 });
    }
}

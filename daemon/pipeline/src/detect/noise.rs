//! The robust noise estimate of every channel, tracked over time at a bounded cost per frame.
//!
//! The estimate is the median absolute deviation of the signal divided by 0.6745, which makes
//! it the standard deviation for Gaussian noise while spikes, being rare and large, hardly
//! move it. The deviation is taken from zero, `median(|x|) / 0.6745` (Quiroga et al., 2004):
//! the signal is highpassed, so its median is zero, and the detection levels are relative to
//! zero too. That takes one selection per estimate instead of two (one for the median, one
//! for the deviations), which halves the largest cost of the detector after the scan itself.
//!
//! Computing it over every sample would cost far more than detection, so each channel keeps a
//! ring of [`NOISE_RING`] decimated samples spanning about the last second, and the channels
//! are re-estimated round-robin, one every `rate / channels` frames, so each is refreshed
//! about once a second. The published estimate is the mean of the channel's last two medians,
//! which cover consecutive, disjoint seconds: the precision of 2048 samples (a relative
//! standard error of about 2.6%, 1.17 / √n for Gaussian noise) for the selection cost of
//! 1024, at the price of following a change over two seconds instead of one. The first sweep
//! starts when half the ring is filled (about half a second into the stream) and runs eight
//! times faster; until a channel's first estimate its noise is unknown.
//!
//! Cost: a median of 1024 integer keys (the bits of `|x|`, which order like the numbers;
//! integer comparisons select about 1.5× faster than a float comparator) plus gathering the
//! channel's samples. A plain `select_nth_unstable` took about 3.5 µs inside the running
//! detector (0.12 ns per sample at 1024 channels and 30 kHz); from the second estimate on,
//! the median is selected among the keys near the channel's previous one (`select_near`),
//! about a third of that. Keeping the decimated frames costs about 0.03 ns per sample.
//!
//! Layout: the ring is cut into blocks of [`RUN`] consecutive columns, each block
//! channel-major (`[block][channel][RUN]`). A decimated frame then writes one float per
//! channel 64 bytes apart inside one 64 KiB block (at 1024 channels), which stays in cache for
//! the `RUN` frames that fill it, and an estimate gathers 64 whole cache lines. A purely
//! channel-major ring would make every kept frame touch one line per channel spread over the
//! whole ring; a frame-major one would make every estimate touch one line per sample.
//!
//! Everything happens at frames fixed by the count of frames seen since the stream started,
//! never at block boundaries, so the estimates (and the thresholds made from them) do not
//! depend on how the stream is cut into blocks.

use crate::prefault::prefaulted;

/// Decimated samples each channel keeps for its noise estimate (about the last second).
pub const NOISE_RING: usize = 1024;
/// Consecutive columns of one channel stored together: one cache line of floats.
const RUN: usize = 16;
/// Time the ring spans, seconds.
const WINDOW_S: f64 = 1.0;
/// Time between two estimates of the same channel, seconds.
const REFRESH_PERIOD_S: f64 = 1.0;
/// How much faster the first sweep runs, so every channel has an estimate soon after the
/// ring holds enough samples.
const FIRST_SWEEP_SPEEDUP: f64 = 8.0;
/// Median of |x| for a standard normal x.
const MEDIAN_ABS_OF_UNIT_GAUSSIAN: f32 = 0.6745;

/// Per-channel noise estimates from a decimated history.
pub(crate) struct NoiseTracker {
    channels: usize,
    /// Every `decimation`-th frame is kept.
    decimation: u64,
    /// Frame count of the next frame to keep.
    next_sample: u64,
    /// `NOISE_RING / RUN` blocks of `channels × RUN` samples.
    ring: Box<[f32]>,
    /// Next ring column to write.
    write: usize,
    /// Ring columns holding samples.
    filled: usize,
    scratch: Box<[u32]>,
    /// The keys near the previous median, for [`select_near`].
    near: Box<[u32]>,
    /// Each channel's previous median of |x| (NaN before the first).
    last_median: Box<[f32]>,
    /// Frame count (fractional) at which the next channel is recomputed; infinite until the
    /// ring is half full.
    refresh_at: f64,
    /// Frames between two recomputations in the steady state.
    step: f64,
    next_channel: usize,
    first_sweep: bool,
}

impl NoiseTracker {
    /// A tracker for `channels` sampled at `sample_rate_hz`; all memory is allocated here.
    pub(crate) fn new(channels: usize, sample_rate_hz: f64) -> Self {
        let decimation = ((WINDOW_S * sample_rate_hz / NOISE_RING as f64).round() as u64).max(1);
        NoiseTracker {
            channels,
            decimation,
            next_sample: 0,
            ring: prefaulted(channels * NOISE_RING, 0.0),
            write: 0,
            filled: 0,
            scratch: prefaulted(NOISE_RING, 0),
            near: prefaulted(NOISE_RING, 0),
            last_median: prefaulted(channels, f32::NAN),
            refresh_at: f64::INFINITY,
            step: REFRESH_PERIOD_S * sample_rate_hz / channels.max(1) as f64,
            next_channel: 0,
            first_sweep: true,
        }
    }

    /// The first frame count at or after which [`NoiseTracker::on_frame`] has work to do.
    #[inline]
    pub(crate) fn next_due(&self) -> u64 {
        self.next_sample.min(self.refresh_due())
    }

    fn refresh_due(&self) -> u64 {
        if self.refresh_at.is_finite() {
            self.refresh_at.ceil() as u64
        } else {
            u64::MAX
        }
    }

    /// Takes frame `n` (`row`, one sample per channel) if it is one to keep, and recomputes
    /// the estimates that are due, handing each `(channel, noise_uv)` to `refreshed` (NaN if
    /// the channel's samples give no finite estimate).
    pub(crate) fn on_frame(&mut self, n: u64, row: &[f32], mut refreshed: impl FnMut(usize, f32)) {
        if n >= self.next_sample {
            self.keep(row);
            self.next_sample = n + self.decimation;
            if self.refresh_at.is_infinite() && self.filled >= NOISE_RING / 2 {
                self.refresh_at = n as f64;
            }
        }
        while n >= self.refresh_due() {
            let channel = self.next_channel;
            refreshed(channel, self.estimate(channel));
            self.next_channel += 1;
            if self.next_channel == self.channels {
                self.next_channel = 0;
                self.first_sweep = false;
            }
            self.refresh_at += if self.first_sweep { self.step / FIRST_SWEEP_SPEEDUP } else { self.step };
        }
    }

    fn keep(&mut self, row: &[f32]) {
        let (block, at) = (self.write / RUN, self.write % RUN);
        let block = &mut self.ring[block * self.channels * RUN..(block + 1) * self.channels * RUN];
        for (run, &v) in block.chunks_exact_mut(RUN).zip(row) {
            run[at] = v;
        }
        self.write = (self.write + 1) % NOISE_RING;
        self.filled = (self.filled + 1).min(NOISE_RING);
    }

    /// The channel's noise from its ring and its previous median.
    fn estimate(&mut self, channel: usize) -> f32 {
        // Until the ring has wrapped, only its first `filled` columns hold samples.
        let keys = &mut self.scratch[..self.filled];
        let runs = self.ring.chunks_exact(RUN).skip(channel).step_by(self.channels);
        for (out, run) in keys.chunks_mut(RUN).zip(runs) {
            for (key, &v) in out.iter_mut().zip(run) {
                *key = abs_key(v);
            }
        }
        let last = self.last_median[channel];
        let median = if keys.is_empty() || !last.is_finite() {
            median_of_keys(keys)
        } else {
            let (lo, hi) = (abs_key(last * (1.0 - NEAR)), abs_key(last * (1.0 + NEAR)));
            f32::from_bits(select_near(keys, keys.len() / 2, lo, hi, &mut self.near))
        };
        self.last_median[channel] = median;
        let both = if last.is_nan() { median } else { 0.5 * (median + last) };
        let noise = both / MEDIAN_ABS_OF_UNIT_GAUSSIAN;
        if noise.is_finite() {
            noise
        } else {
            f32::NAN
        }
    }
}

/// How far from the previous median (relatively) [`select_near`] looks first. Noise moves
/// little in a second; at ±10 % about one key in eleven of Gaussian noise lies there.
const NEAR: f32 = 0.1;

/// The `k`-th smallest of `keys` (which it may reorder), looked for first among the keys
/// between `lo` and `hi`, inclusive, which `near` (as long as `keys`) collects.
///
/// One pass without branches counts the keys below `lo` and collects those between; when the
/// `k`-th lies between (almost always, with bounds around the previous median), selecting
/// among the few collected finds it, else a selection over all of them does. Either way the
/// result is exactly the `k`-th smallest. A selection over 1024 keys branches unpredictably
/// at every comparison; this is about a third of its time, at most the pass more.
fn select_near(keys: &mut [u32], k: usize, lo: u32, hi: u32, near: &mut [u32]) -> u32 {
    let (mut below, mut between) = (0usize, 0usize);
    for &key in keys.iter() {
        below += usize::from(key < lo);
        near[between] = key;
        between += usize::from(key >= lo && key <= hi);
    }
    if (below..below + between).contains(&k) {
        *near[..between].select_nth_unstable(k - below).1
    } else {
        *keys.select_nth_unstable(k).1
    }
}

/// `|v|` as an integer key: without the sign bit, a float's bits order like the numbers (NaN
/// above infinity).
#[inline]
fn abs_key(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

/// The median (the upper one for an even count) of the floats whose [`abs_key`]s are `keys`;
/// NaN for none. Reorders `keys`.
fn median_of_keys(keys: &mut [u32]) -> f32 {
    if keys.is_empty() {
        return f32::NAN;
    }
    let mid = keys.len() / 2;
    f32::from_bits(*keys.select_nth_unstable(mid).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median_abs(values: &[f32]) -> f32 {
        median_of_keys(&mut values.iter().map(|&v| abs_key(v)).collect::<Vec<_>>())
    }

    #[test]
    fn the_median_of_absolute_values_is_exact_on_small_sets() {
        assert_eq!(median_abs(&[1.0, -3.0, 2.0, -4.0, 6.0, 1.0, -100.0]), 3.0);
        assert_eq!(median_abs(&[-0.0, 0.0, -0.0]), 0.0);
        assert_eq!(median_abs(&[f32::NAN, -1.0, 2.0]), 2.0);
        assert!(median_abs(&[]).is_nan());
    }

    #[test]
    fn selecting_near_a_guess_finds_exactly_the_kth_key_whether_the_guess_is_good_or_not() {
        let mut state = 12345u64;
        let keys: Vec<u32> = (0..1024)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                abs_key(((state >> 40) as f32 / 16_777_216.0 - 0.5) * 20.0)
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut near = vec![0; keys.len()];
        for k in [0, 1, 511, 512, 900, 1023] {
            let exact = sorted[k];
            for (lo, hi) in [
                (exact.saturating_sub(1000), exact.saturating_add(1000)),
                (exact, exact),
                (0, u32::MAX),
                (exact + 1, exact + 9),
                (0, 0),
            ] {
                let mut work = keys.clone();
                assert_eq!(select_near(&mut work, k, lo, hi, &mut near), exact, "k {k}, bounds {lo}..={hi}");
            }
        }
    }

    #[test]
    fn each_channel_is_estimated_from_its_own_samples_across_the_blocks_of_the_ring() {
        // Channel c holds ±(c + 1) × 0.6745, so its noise is c + 1, before and after the ring
        // wraps, and with a partly filled last block.
        let channels = 5;
        let mut tracker = NoiseTracker::new(channels, 30_000.0);
        for filled in [NOISE_RING / 2 + 3, NOISE_RING + 7] {
            while tracker.filled < filled.min(NOISE_RING) || (filled > NOISE_RING && tracker.write != 7) {
                let sign = if tracker.write.is_multiple_of(2) { 1.0 } else { -1.0 };
                let row: Vec<f32> = (0..channels).map(|c| sign * (c + 1) as f32 * 0.6745).collect();
                tracker.keep(&row);
            }
            for c in 0..channels {
                assert!((tracker.estimate(c) - (c + 1) as f32).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn every_channel_is_estimated_after_half_a_second_and_refreshed_about_once_a_second() {
        let (channels, rate) = (64, 30_000.0);
        let mut tracker = NoiseTracker::new(channels, rate);
        let mut refreshed = vec![Vec::new(); channels];
        let row: Vec<f32> = (0..channels).map(|c| if c % 2 == 0 { 0.6745 } else { -0.6745 }).collect();
        for n in 0..3 * 30_000u64 {
            if n >= tracker.next_due() {
                tracker.on_frame(n, &row, |c, noise| refreshed[c].push((n, noise)));
            }
        }
        for times in &refreshed {
            let first = times[0].0 as f64 / rate;
            assert!((0.45..0.7).contains(&first), "first estimate at {first} s");
            for pair in times.windows(2) {
                let gap = (pair[1].0 - pair[0].0) as f64 / rate;
                assert!((0.1..1.05).contains(&gap), "refreshed {gap} s apart");
            }
            assert!(times.iter().all(|&(_, noise)| (noise - 1.0).abs() < 1e-6));
        }
    }
}

//! The simulated neurons: where they sit, what their spikes look like, how they fire.
//!
//! Channels are cut into neighbourhoods of 4–8 adjacent channels (a tetrode-to-shank-section
//! sized patch), each holding 2–4 units, so that every neighbourhood poses a small sorting
//! problem. Each unit gets an extracellular waveform from a sum of Gaussians — a sharp trough,
//! a slower repolarisation peak 0.3–1 ms later and, for some units, a small initial positive
//! bump (triphasic) — with a peak amplitude of 50–300 µV on its peak channel that decays
//! exponentially over neighbouring channels, arriving slightly later and broader with
//! distance. Two classes are drawn: narrow, fast-firing, non-bursting units
//! (interneuron-like) and broad, slower units of which some fire complex-spike bursts
//! (pyramidal-like).
//!
//! All of this is drawn once from the seed at construction; templates are sampled into a flat
//! table in amplifier units so rendering a spike is a scaled add.

use std::ops::Range;

use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;

/// Public description of a simulated unit, for ground-truth comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitInfo {
    /// Unit id, 0-based, as in [`GroundTruthSpike::unit`](super::GroundTruthSpike::unit).
    pub id: u32,
    /// Channel with the largest deflection (where ground-truth spikes are reported).
    pub peak_channel: usize,
    /// Channels the unit's spikes are added to (contiguous, around the peak channel).
    pub channels: Range<usize>,
    /// Trough depth on the peak channel, µV, for an unattenuated spike.
    pub peak_amplitude_uv: f64,
    /// Mean firing rate, spikes per second (bursts included).
    pub firing_rate_hz: f64,
    /// Whether some of its spikes come in complex-spike bursts (2–5 spikes at 3–8 ms ISI,
    /// each smaller than the last).
    pub bursting: bool,
    /// Trough-to-peak time of the waveform on the peak channel, ms.
    pub trough_to_peak_ms: f64,
    /// Absolute refractory period, ms: no two spikes of the unit are closer.
    pub refractory_ms: f64,
}

/// A unit's spike waveform as sampled at the device's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitWaveform {
    /// Index of the spike time (the trough on the peak channel) within each channel's trace.
    pub trough_index: usize,
    /// Channels covered, as in [`UnitInfo::channels`].
    pub channels: Range<usize>,
    /// Samples per channel trace.
    pub len: usize,
    /// Channel-major traces in µV, `channels.len() × len`.
    pub uv: Vec<f32>,
}

impl UnitWaveform {
    /// The trace on `channel`, if the unit reaches it.
    pub fn channel(&self, channel: usize) -> Option<&[f32]> {
        if !self.channels.contains(&channel) {
            return None;
        }
        let i = channel - self.channels.start;
        Some(&self.uv[i * self.len..(i + 1) * self.len])
    }
}

/// Firing parameters of a unit, in the units the train generator works in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Firing {
    pub rate_hz: f64,
    pub refractory_frames: f64,
    /// Probability that an event is a burst rather than a single spike (0 for regular units).
    pub burst_prob: f64,
    /// Largest burst size (2..=5).
    pub burst_max: usize,
    /// Amplitude ratio of each burst spike to the previous one.
    pub burst_atten: f32,
}

/// Everything the renderer and the train generator need about one unit.
#[derive(Debug, Clone)]
pub(crate) struct UnitModel {
    /// Template samples before the spike frame.
    pub pre: u64,
    /// Template samples from the spike frame on (the spike frame included).
    pub post: u64,
    /// Start of this unit's traces in the flat template table.
    pub template_offset: usize,
    pub firing: Firing,
}

impl UnitModel {
    #[inline]
    pub fn len(&self) -> usize {
        (self.pre + self.post) as usize
    }
}

/// The unit population of a simulated device.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    pub infos: Vec<UnitInfo>,
    pub models: Vec<UnitModel>,
    /// All traces, in amplifier units: per unit, frame-major `len × channels`.
    pub templates: Vec<f32>,
}

/// Waveform shape in ms around the trough, before normalisation.
#[derive(Debug, Clone, Copy)]
struct Shape {
    sigma_trough: f64,
    t_peak: f64,
    sigma_peak: f64,
    peak_ratio: f64,
    /// (time before trough, width, height) of the initial positive phase, if triphasic.
    bump: Option<(f64, f64, f64)>,
}

fn gauss(t: f64, mu: f64, sigma: f64) -> f64 {
    let z = (t - mu) / sigma;
    (-0.5 * z * z).exp()
}

impl Shape {
    fn raw(&self, t: f64) -> f64 {
        let mut v = -gauss(t, 0.0, self.sigma_trough) + self.peak_ratio * gauss(t, self.t_peak, self.sigma_peak);
        if let Some((t0, s0, h0)) = self.bump {
            v += h0 * gauss(t, -t0, s0);
        }
        v
    }
}

/// A shape re-centred so its minimum is at t = 0 with value −1: then the sample at a spike's
/// frame on its peak channel is exactly the trough, which is what ground truth reports.
#[derive(Debug, Clone, Copy)]
struct Normalised {
    shape: Shape,
    shift: f64,
    scale: f64,
}

const GRID_MS: f64 = 0.0005;
/// Steps of the coarse pass of [`grid_argmax`], in fine steps.
const COARSE_STEPS: usize = 20;

/// The point of the grid `lo, lo + GRID_MS, …, ≤ hi` where `f` is largest, and its value.
///
/// Waveform shapes are smooth sums of Gaussians, so their extremes are found on a grid 20
/// times coarser first and then refined on the fine grid around the coarse winner: the same
/// answer as scanning the fine grid, at a tenth of the evaluations (this runs for every unit
/// at stream start).
fn grid_argmax(lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
    let steps = ((hi - lo) / GRID_MS + 1e-9).floor() as usize;
    let at = |k: usize| lo + k as f64 * GRID_MS;
    let mut best = (0usize, f64::NEG_INFINITY);
    for k in (0..=steps).step_by(COARSE_STEPS) {
        let v = f(at(k));
        if v > best.1 {
            best = (k, v);
        }
    }
    let from = best.0.saturating_sub(COARSE_STEPS);
    let to = (best.0 + COARSE_STEPS).min(steps);
    for k in from..=to {
        let v = f(at(k));
        if v > best.1 {
            best = (k, v);
        }
    }
    (at(best.0), best.1)
}

impl Normalised {
    fn new(shape: Shape) -> Self {
        let (shift, negated_min) = grid_argmax(-0.3, 0.3, |t| -shape.raw(t));
        Normalised { shape, shift, scale: 1.0 / negated_min }
    }

    fn at(&self, t: f64) -> f64 {
        self.shape.raw(t + self.shift) * self.scale
    }

    /// Time of the repolarisation maximum after the trough.
    fn trough_to_peak(&self) -> f64 {
        grid_argmax(0.0, 3.0, |t| self.at(t)).0
    }

    /// Time span (ms) outside which the waveform is below 0.05 % of the trough.
    fn support(&self) -> (f64, f64) {
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        let mut t = -3.0;
        while t <= 6.0 {
            if self.at(t).abs() > 5e-4 {
                lo = lo.min(t);
                hi = hi.max(t);
            }
            t += 0.005;
        }
        (lo, hi)
    }
}

/// Extra arrival delay per channel of distance from the peak, ms.
const DELAY_PER_CHANNEL_MS: f64 = 0.025;
/// Extra widening per channel of distance from the peak.
const WIDEN_PER_CHANNEL: f64 = 0.08;

/// Draws a unit's waveform shape, retrying until its trough-to-peak time is in the physiological
/// 0.3–1 ms range the classes are meant to span.
fn draw_shape(rng: &mut Rng, narrow: bool) -> (Normalised, f64) {
    loop {
        let t_peak = if narrow { rng.uniform(0.28, 0.42) } else { rng.uniform(0.5, 0.95) };
        let shape = Shape {
            sigma_trough: if narrow { rng.uniform(0.06, 0.09) } else { rng.uniform(0.09, 0.14) },
            t_peak,
            sigma_peak: t_peak * if narrow { rng.uniform(0.35, 0.45) } else { rng.uniform(0.4, 0.55) },
            peak_ratio: if narrow { rng.uniform(0.35, 0.6) } else { rng.uniform(0.15, 0.35) },
            bump: if rng.chance(0.35) {
                Some((rng.uniform(0.2, 0.35), rng.uniform(0.06, 0.1), rng.uniform(0.08, 0.2)))
            } else {
                None
            },
        };
        let n = Normalised::new(shape);
        let tp = n.trough_to_peak();
        if (0.3..=1.0).contains(&tp) {
            return (n, tp);
        }
    }
}

impl Population {
    /// Draws the population for `channels` channels at `rate` Hz.
    pub fn new(seed: u64, channels: usize, rate: f64) -> Self {
        let mut rng = Rng::from_key(&[seed, stream::UNITS]);
        let mut pop = Population::default();
        let mut start = 0;
        while start < channels {
            let size = rng.range_inclusive(4, 8).min(channels - start);
            let n_units = rng.range_inclusive(2, 4);
            for _ in 0..n_units {
                let peak = start + rng.below(size as u64) as usize;
                pop.add_unit(&mut rng, peak, channels, rate);
            }
            start += size;
        }
        pop
    }

    fn add_unit(&mut self, rng: &mut Rng, peak: usize, channels: usize, rate: f64) {
        let narrow = rng.chance(0.3);
        let (shape, trough_to_peak) = draw_shape(rng, narrow);
        let amplitude_uv = rng.log_uniform(50.0, 300.0);
        let space_constant = rng.uniform(0.7, 1.5);
        let refractory_ms = rng.uniform(1.5, 2.5);
        let rate_hz = if narrow { rng.log_uniform(5.0, 20.0) } else { rng.log_uniform(1.0, 10.0) };
        let bursting = !narrow && rng.chance(0.4);
        let firing = Firing {
            rate_hz,
            refractory_frames: refractory_ms * 1e-3 * rate,
            burst_prob: if bursting { rng.uniform(0.3, 0.6) } else { 0.0 },
            burst_max: if bursting { rng.range_inclusive(3, 5) } else { 1 },
            burst_atten: if bursting { rng.uniform(0.75, 0.9) as f32 } else { 1.0 },
        };

        // Footprint: every channel where the amplitude is at least 10 % of the peak.
        let radius = ((space_constant * 10f64.ln()).floor() as usize).max(1);
        let lo = peak.saturating_sub(radius);
        let hi = (peak + radius + 1).min(channels);
        let max_d = (peak - lo).max(hi - 1 - peak) as f64;

        let (s_lo, s_hi) = shape.support();
        let widen_max = 1.0 + WIDEN_PER_CHANNEL * max_d;
        let ms_to_frames = rate / 1000.0;
        let pre = ((-s_lo * widen_max) * ms_to_frames).ceil() as u64 + 1;
        let post = ((s_hi * widen_max + DELAY_PER_CHANNEL_MS * max_d) * ms_to_frames).ceil() as u64 + 1;
        let len = (pre + post) as usize;

        let template_offset = self.templates.len();
        let amp_units = amplitude_uv / AMPLIFIER_UV_PER_UNIT;
        // Frame-major (`len × channels`), like the blocks: rendering a spike then writes one
        // short contiguous run per frame instead of striding a whole block row per sample.
        for j in 0..len {
            let t = (j as f64 - pre as f64) / ms_to_frames;
            for ch in lo..hi {
                let d = (ch as f64 - peak as f64).abs();
                let gain = amp_units * (-d / space_constant).exp();
                let delay = DELAY_PER_CHANNEL_MS * d;
                let widen = 1.0 + WIDEN_PER_CHANNEL * d;
                self.templates.push((gain * shape.at((t - delay) / widen)) as f32);
            }
        }

        self.infos.push(UnitInfo {
            id: self.infos.len() as u32,
            peak_channel: peak,
            channels: lo..hi,
            peak_amplitude_uv: amplitude_uv,
            firing_rate_hz: rate_hz,
            bursting,
            trough_to_peak_ms: trough_to_peak,
            refractory_ms,
        });
        self.models.push(UnitModel { pre, post, template_offset, firing });
    }

    /// The sampled waveform of unit `id` in µV.
    pub fn waveform(&self, id: usize) -> Option<UnitWaveform> {
        let info = self.infos.get(id)?;
        let m = &self.models[id];
        let (nch, len) = (info.channels.len(), m.len());
        let t = &self.templates[m.template_offset..m.template_offset + nch * len];
        let mut uv = Vec::with_capacity(nch * len);
        for k in 0..nch {
            uv.extend((0..len).map(|j| (t[j * nch + k] as f64 * AMPLIFIER_UV_PER_UNIT) as f32));
        }
        Some(UnitWaveform { trough_index: m.pre as usize, channels: info.channels.clone(), len: m.len(), uv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_fills_neighbourhoods_with_two_to_four_units() {
        let p = Population::new(11, 64, 30000.0);
        // 64 channels in neighbourhoods of 4..=8 → 8..=16 neighbourhoods of 2..=4 units.
        assert!((16..=64).contains(&p.infos.len()), "{}", p.infos.len());
        for (u, m) in p.infos.iter().zip(&p.models) {
            assert!(u.channels.contains(&u.peak_channel));
            let w = p.waveform(u.id as usize).unwrap();
            let peak = w.channel(u.peak_channel).unwrap();
            // The spike frame is the trough, at exactly −amplitude.
            let trough = peak[m.pre as usize] as f64;
            assert!(
                (trough + u.peak_amplitude_uv).abs() < 1e-3 * u.peak_amplitude_uv,
                "{trough} {}",
                u.peak_amplitude_uv
            );
            assert!(peak.iter().all(|&v| v as f64 >= trough - 1e-3));
            // Template ends are quiet, so truncation leaves no steps.
            assert!(
                peak[0].abs() < 0.01 * u.peak_amplitude_uv as f32
                    && peak[peak.len() - 1].abs() < 0.01 * u.peak_amplitude_uv as f32
            );
        }
    }

    #[test]
    fn coarse_to_fine_search_finds_the_fine_grid_extreme_of_every_shape() {
        let mut rng = Rng::from_key(&[77]);
        for i in 0..300 {
            let (shape, _) = draw_shape(&mut rng, i % 3 == 0);
            for (lo, hi, f) in [
                (-0.3, 0.3, Box::new(|t: f64| -shape.shape.raw(t)) as Box<dyn Fn(f64) -> f64>),
                (0.0, 3.0, Box::new(|t: f64| shape.at(t))),
            ] {
                let steps = ((hi - lo) / GRID_MS + 1e-9).floor() as usize;
                let brute = (0..=steps).map(|k| (lo + k as f64 * GRID_MS, f(lo + k as f64 * GRID_MS))).fold(
                    (0.0, f64::NEG_INFINITY),
                    |best, (t, v)| {
                        if v > best.1 {
                            (t, v)
                        } else {
                            best
                        }
                    },
                );
                assert_eq!(grid_argmax(lo, hi, &f), brute, "shape {i} on [{lo}, {hi}]");
            }
        }
    }
}

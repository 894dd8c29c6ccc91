//! The local field potential: slow, large, spatially smooth.
//!
//! LFP content is below ~100 Hz, so it does not need to be computed at 30 kHz. It is evaluated
//! exactly at "knots" every ~0.5 ms (`knot_frames` frames, a pure function of the knot index)
//! and linearly interpolated between them in Q8 fixed point, which costs one integer add per
//! sample and interpolates an 80 Hz gamma with < 1 % error. Because the value at every frame is
//! a function of the absolute frame alone (knot value + step × offset), blocks of any size
//! produce identical samples.
//!
//! Spatially, a handful of sources are spread along the channel axis every 32 channels and
//! each channel linearly mixes its two nearest: neighbouring channels see nearly the same LFP
//! (as on a real shank) and the cost per knot is two multiply-adds per channel. Each source is
//! a weighted sum of global rhythms (delta; theta with drifting amplitude; gamma nested in the
//! theta phase) and its own 1/f-like background read from a precomputed knot-rate table.

use super::config::SimMode;
use super::convert::round_i32;
use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;
use std::f64::consts::TAU;

/// Channels between neighbouring LFP sources.
const SOURCE_SPACING: usize = 32;
/// Length of the 1/f background table, in knots (~33 s at 2000 knots/s; the 0.5 Hz corner's
/// time constant is 0.3 s, so two passes around the loop reach steady state).
const PINK_KNOTS: usize = 1 << 16;
/// Fixed-point fraction bits of the interpolated values.
pub(crate) const Q: u32 = 8;

/// Amplitudes (µV) of the LFP components for a mode; `None` for modes without LFP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LfpLevels {
    pub delta_uv: f64,
    pub theta_uv: f64,
    pub gamma_uv: f64,
    pub background_uv: f64,
}

impl LfpLevels {
    pub fn for_mode(mode: SimMode) -> Option<LfpLevels> {
        match mode {
            // "Tens of µV, a few Hz": present, but not competing with the spikes.
            SimMode::Spikes => Some(LfpLevels { delta_uv: 20.0, theta_uv: 15.0, gamma_uv: 3.0, background_uv: 10.0 }),
            // Hundreds of µV with theta/gamma structure.
            SimMode::Lfp => Some(LfpLevels { delta_uv: 150.0, theta_uv: 200.0, gamma_uv: 40.0, background_uv: 60.0 }),
            SimMode::Broadband => {
                Some(LfpLevels { delta_uv: 75.0, theta_uv: 100.0, gamma_uv: 20.0, background_uv: 30.0 })
            }
            SimMode::Sine => None,
        }
    }
}

/// Per-source weights (µV) of the global rhythms and of its own background.
#[derive(Debug, Clone, Copy)]
struct SourceMix {
    delta: f32,
    theta: f32,
    gamma: f32,
    background: f32,
    background_offset: u64,
}

/// LFP generator plus the per-channel interpolation state of the stream.
#[derive(Debug, Clone)]
pub(crate) struct Lfp {
    knot_frames: u64,
    knot_seconds: f64,
    f_delta: f64,
    f_theta: f64,
    f_gamma: f64,
    phase: [f64; 4],
    sources: Vec<SourceMix>,
    background: Vec<f32>,
    channels: usize,
    /// 1 / knot_frames, for computing the per-frame steps without an integer division per
    /// channel.
    inv_knot_frames: f32,
    source_values: Vec<f32>,
    /// Current value of each channel (Q8 amplifier units) at the next frame to produce.
    pub cur: Vec<i32>,
    /// Per-frame increment of each channel until the next knot.
    pub step: Vec<i32>,
    /// Exact values at the next knot.
    next: Vec<i32>,
    next_knot: u64,
}

/// Frames between knots: ~0.5 ms, at least one frame.
pub(crate) fn knot_frames(rate: f64) -> u64 {
    ((rate / 2000.0).round() as u64).max(1)
}

impl Lfp {
    pub fn new(seed: u64, channels: usize, rate: f64, levels: LfpLevels) -> Self {
        let mut rng = Rng::from_key(&[seed, stream::LFP]);
        let k = knot_frames(rate);
        let knot_rate = rate / k as f64;
        let n_sources = channels.div_ceil(SOURCE_SPACING) + 1;
        let theta_phase = rng.uniform(0.0, TAU);
        let sources = (0..n_sources)
            .map(|s| SourceMix {
                delta: (levels.delta_uv * rng.uniform(0.8, 1.2)) as f32,
                // Theta reverses polarity across depth, as across the hippocampal layers.
                theta: (levels.theta_uv * (0.3 + 0.7 * (std::f64::consts::PI * s as f64 / 6.0 + theta_phase).cos()))
                    as f32,
                gamma: (levels.gamma_uv * rng.uniform(0.5, 1.5)) as f32,
                background: (levels.background_uv * rng.uniform(0.7, 1.3)) as f32,
                background_offset: rng.below(PINK_KNOTS as u64),
            })
            .collect();
        let background = build_background(&mut rng, knot_rate);
        let mut lfp = Lfp {
            knot_frames: k,
            knot_seconds: k as f64 / rate,
            f_delta: rng.uniform(1.5, 3.0),
            f_theta: rng.uniform(6.0, 8.5),
            f_gamma: rng.uniform(35.0, 60.0),
            phase: [rng.uniform(0.0, TAU), rng.uniform(0.0, TAU), rng.uniform(0.0, TAU), rng.uniform(0.0, TAU)],
            sources,
            background,
            channels,
            inv_knot_frames: 1.0 / k as f32,
            source_values: vec![0.0; n_sources],
            cur: vec![0; channels],
            step: vec![0; channels],
            next: vec![0; channels],
            next_knot: 0,
        };
        lfp.seek(0);
        lfp
    }

    /// The frame at which the interpolation must move on to the next knot.
    #[inline]
    pub fn next_knot_frame(&self) -> u64 {
        self.next_knot * self.knot_frames
    }

    /// Positions the interpolation state at `frame`.
    pub fn seek(&mut self, frame: u64) {
        let k = frame / self.knot_frames;
        let mut cur = std::mem::take(&mut self.cur);
        self.eval_knot(k, &mut cur);
        self.cur = cur;
        self.next_knot = k;
        self.load_next_segment();
        let into = (frame - k * self.knot_frames) as i32;
        for (c, s) in self.cur.iter_mut().zip(&self.step) {
            *c += s * into;
        }
    }

    /// Called when the stream reaches `next_knot_frame()`: the current values become exactly
    /// that knot's and the next segment's step is computed.
    pub fn advance_knot(&mut self) {
        self.cur.copy_from_slice(&self.next);
        self.load_next_segment();
    }

    /// With `cur` holding knot `next_knot` exactly, evaluates the following knot and the step.
    fn load_next_segment(&mut self) {
        let k = self.next_knot + 1;
        let mut next = std::mem::take(&mut self.next);
        self.eval_knot(k, &mut next);
        self.next = next;
        let inv = self.inv_knot_frames;
        for ((s, n), c) in self.step.iter_mut().zip(&self.next).zip(&self.cur) {
            *s = round_i32((n - c) as f32 * inv);
        }
        self.next_knot = k;
    }

    /// Exact LFP of every channel at knot `k`, in Q8 amplifier units.
    fn eval_knot(&mut self, k: u64, out: &mut [i32]) {
        let t = k as f64 * self.knot_seconds;
        let p = &self.phase;
        let delta = (TAU * self.f_delta * t + p[0]).sin() * (1.0 + 0.3 * (TAU * 0.05 * t + p[1]).sin());
        let theta_phase = TAU * self.f_theta * t + 0.6 * (TAU * 0.13 * t + p[2]).sin();
        let theta = theta_phase.sin() * (0.7 + 0.3 * (TAU * 0.031 * t).sin());
        let gamma =
            (0.5 + 0.5 * theta_phase.cos()) * (TAU * self.f_gamma * t + 2.0 * (TAU * 0.7 * t + p[3]).sin()).sin();
        let (delta, theta, gamma) = (delta as f32, theta as f32, gamma as f32);
        let n = self.background.len() as u64;
        for (v, s) in self.source_values.iter_mut().zip(&self.sources) {
            let bg = self.background[((k + s.background_offset) % n) as usize];
            *v = s.delta * delta + s.theta * theta + s.gamma * gamma + s.background * bg;
        }
        let to_q = ((1u32 << Q) as f64 / AMPLIFIER_UV_PER_UNIT) as f32;
        // Channel c lies between sources c / SPACING and the next one, at fraction
        // (c % SPACING) / SPACING; looping span by span keeps the inner loop gather-free.
        for (span, o) in out[..self.channels].chunks_mut(SOURCE_SPACING).enumerate() {
            let lo = self.source_values[span] * to_q;
            let d = (self.source_values[span + 1] - self.source_values[span]) * to_q;
            for (j, o) in o.iter_mut().enumerate() {
                *o = round_i32(lo + d * (j as f32 * (1.0 / SOURCE_SPACING as f32)));
            }
        }
    }
}

/// A 1/f-like background at the knot rate, unit rms: the sum of independent low-passed noises
/// with corners two octaves apart (0.5, 2, 8, 32 Hz), each of equal power, which gives a roughly
/// 1/f spectrum from ~1 Hz up to ~30 Hz. Each is low-passed twice (second order), so the
/// background stays in the LFP band instead of leaking into the spike band, where it would add
/// to the noise. Filtered circularly so the table loops cleanly.
fn build_background(rng: &mut Rng, knot_rate: f64) -> Vec<f32> {
    let mut acc = vec![0f64; PINK_KNOTS];
    let mut tmp = vec![0f64; PINK_KNOTS];
    let dt = 1.0 / knot_rate;
    for corner in [0.5, 2.0, 8.0, 32.0f64] {
        let corner = corner.min(knot_rate / 8.0);
        let rc = 1.0 / (TAU * corner);
        let a = dt / (rc + dt);
        for v in tmp.iter_mut() {
            *v = rng.normal();
        }
        let (mut y1, mut y2) = (0.0, 0.0);
        for pass in 0..2 {
            for v in tmp.iter_mut() {
                y1 += a * (*v - y1);
                y2 += a * (y1 - y2);
                if pass == 1 {
                    *v = y2;
                }
            }
        }
        normalise(&mut tmp);
        for (a, t) in acc.iter_mut().zip(&tmp) {
            *a += t;
        }
    }
    normalise(&mut acc);
    acc.into_iter().map(|v| v as f32).collect()
}

/// Zero mean, unit rms.
fn normalise(v: &mut [f64]) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let rms = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    for x in v.iter_mut() {
        *x = if rms > 0.0 { (*x - mean) / rms } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lfp: &mut Lfp, frames: u64, from: u64, ch: usize) -> Vec<i32> {
        let mut out = Vec::new();
        let mut f = from;
        while f < from + frames {
            if f == lfp.next_knot_frame() {
                lfp.advance_knot();
            }
            out.push(lfp.cur[ch]);
            for (c, s) in lfp.cur.iter_mut().zip(&lfp.step) {
                *c += s;
            }
            f += 1;
        }
        out
    }

    #[test]
    fn seeking_mid_segment_matches_running_from_zero() {
        let levels = LfpLevels::for_mode(SimMode::Lfp).unwrap();
        let mut a = Lfp::new(7, 40, 30000.0, levels);
        let full = run(&mut a, 1000, 0, 33);
        let mut b = Lfp::new(7, 40, 30000.0, levels);
        b.seek(517);
        let tail = run(&mut b, 483, 517, 33);
        assert_eq!(&full[517..], &tail[..]);
    }
}

//! Spike trains, regenerated on demand from `(seed, unit, epoch)`.
//!
//! A simulated device running for hours must not keep every spike it ever emitted, yet ground truth must be
//! exact for any frame range. So time is cut into fixed epochs of ~1 s (`epoch_frames`) and the
//! train of a unit within an epoch is drawn from a generator keyed by `(seed, unit, epoch)`
//! only: the renderer and [`ground_truth`](super::SimulatedSource::ground_truth) call the same
//! function and get the same spikes, with O(1) state.
//!
//! Within an epoch a unit fires as a renewal process: events separated by the refractory period
//! plus an exponential wait chosen so the mean rate is the unit's rate (a Poisson process with
//! dead time). Bursting units turn some events into bursts of 2–5 spikes at 3–8 ms ISI, each
//! spike smaller than the previous (the classic complex-spike attenuation). A burst that starts
//! near the end of an epoch keeps its tail, so spikes may lie just past the epoch's end.
//!
//! Refractoriness across the boundary: epochs are drawn independently, so epoch `e` drops its
//! leading spikes that fall within the refractory period of epoch `e−1`'s last raw spike. That
//! needs epoch `e−1` redrawn, which is cheap (a few dozen draws) and happens once per unit per
//! epoch in the renderer.

use super::rng::{stream, Rng};
use super::units::UnitModel;

/// Most spikes one unit can have in one epoch. Rates are at most 20 Hz, so an epoch holds ~20
/// on average and exceeding 64 has a probability below 1e-14; if it ever happened the train
/// would be cut at 64 — identically in rendering and ground truth, so they still agree.
pub(crate) const MAX_SPIKES_PER_EPOCH: usize = 64;

/// One spike of a train: its frame (the trough on the peak channel) and amplitude scale.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TrainSpike {
    pub frame: u64,
    pub scale: f32,
}

/// Epoch length in frames: one second, rounded to whole frames.
pub(crate) fn epoch_frames(rate: f64) -> u64 {
    rate.round() as u64
}

/// Draws the raw train of `unit` in `epoch` into `out`, returning the count.
fn raw_epoch(seed: u64, unit: u32, model: &UnitModel, rate: f64, epoch: u64, out: &mut [TrainSpike]) -> usize {
    let ef = epoch_frames(rate);
    let start = epoch * ef;
    let end = start + ef;
    let f = &model.firing;
    let mut rng = Rng::from_key(&[seed, stream::TRAIN, unit as u64, epoch]);

    // Mean spikes per event and mean burst duration, so the spike rate (not the event rate)
    // matches the unit's rate.
    let (mean_extra, mean_isi_frames) = if f.burst_prob > 0.0 {
        let mean_size = (2 + f.burst_max) as f64 / 2.0;
        (f.burst_prob * (mean_size - 1.0), 5.5e-3 * rate)
    } else {
        (0.0, 0.0)
    };
    let event_interval = (1.0 + mean_extra) * rate / f.rate_hz; // frames
    let wait_mean = (event_interval - f.refractory_frames - mean_extra * mean_isi_frames).max(1e-3 * rate);
    let refractory = f.refractory_frames.ceil() as u64;

    let mut n = 0;
    // A stationary Poisson process seen from an arbitrary instant: exponential first wait.
    let mut t = start as f64 + rng.exponential(event_interval);
    let mut last: Option<u64> = None;
    loop {
        let mut frame = t.round() as u64;
        if let Some(l) = last {
            frame = frame.max(l + refractory);
        }
        if frame >= end || n == out.len() {
            break;
        }
        out[n] = TrainSpike { frame, scale: 1.0 };
        n += 1;
        let mut tail = frame as f64;
        let mut prev = frame;
        if f.burst_prob > 0.0 && rng.chance(f.burst_prob) {
            let size = rng.range_inclusive(2, f.burst_max);
            let mut scale = 1.0f32;
            for _ in 1..size {
                tail += rng.uniform(3e-3, 8e-3) * rate;
                scale *= f.burst_atten;
                let bf = (tail.round() as u64).max(prev + refractory);
                if n == out.len() {
                    break;
                }
                out[n] = TrainSpike { frame: bf, scale };
                n += 1;
                prev = bf;
            }
        }
        last = Some(prev);
        t = prev as f64 + f.refractory_frames + rng.exponential(wait_mean);
    }
    n
}

/// The final train of `unit` in `epoch` (raw train minus the spikes that would break the
/// refractory period after the previous epoch), written into `out`; returns the count.
/// Spike frames are ascending, and every spike of epoch `e + 1` comes after every spike of
/// epoch `e`.
pub(crate) fn epoch_train(
    seed: u64,
    unit: u32,
    model: &UnitModel,
    rate: f64,
    epoch: u64,
    out: &mut [TrainSpike],
) -> usize {
    let n = raw_epoch(seed, unit, model, rate, epoch, out);
    if epoch == 0 || n == 0 {
        return n;
    }
    let mut prev = [TrainSpike::default(); MAX_SPIKES_PER_EPOCH];
    let m = raw_epoch(seed, unit, model, rate, epoch - 1, &mut prev);
    if m == 0 {
        return n;
    }
    let limit = prev[m - 1].frame + model.firing.refractory_frames.ceil() as u64;
    let drop = out[..n].iter().take_while(|s| s.frame < limit).count();
    out.copy_within(drop..n, 0);
    n - drop
}

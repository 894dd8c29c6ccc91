//! Ground truth: every spike the simulated device embeds, regenerated on request.
//!
//! Uses the same per-epoch train generator as the renderer, so what is reported is exactly what
//! was (or will be) added to the data, for any frame range, without the device storing spikes.

use std::ops::Range;

use super::firing::{epoch_frames, epoch_train, TrainSpike, MAX_SPIKES_PER_EPOCH};
use super::units::Population;

/// One embedded spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundTruthSpike {
    /// Frame index of the spike: the trough of the waveform on the peak channel.
    pub frame: u64,
    /// The unit's peak channel.
    pub channel: usize,
    /// Unit id (index into [`SimulatedSource::units`](super::SimulatedSource::units)).
    pub unit: u32,
    /// Trough depth on the peak channel, µV (smaller than the unit's peak amplitude for the
    /// later spikes of a burst).
    pub amplitude_uv: f32,
}

/// All spikes with `frames.start <= frame < frames.end`, ordered by frame then unit.
pub(crate) fn collect(pop: &Population, seed: u64, rate: f64, frames: Range<u64>) -> Vec<GroundTruthSpike> {
    let mut out = Vec::new();
    if frames.start >= frames.end {
        return out;
    }
    let ef = epoch_frames(rate);
    // Burst tails spill past their epoch's end, so start one epoch early.
    let first_epoch = (frames.start / ef).saturating_sub(1);
    let last_epoch = (frames.end - 1) / ef;
    let mut buf = [TrainSpike::default(); MAX_SPIKES_PER_EPOCH];
    for (u, (info, model)) in pop.infos.iter().zip(&pop.models).enumerate() {
        for e in first_epoch..=last_epoch {
            let n = epoch_train(seed, u as u32, model, rate, e, &mut buf);
            for s in &buf[..n] {
                if frames.contains(&s.frame) {
                    out.push(GroundTruthSpike {
                        frame: s.frame,
                        channel: info.peak_channel,
                        unit: info.id,
                        amplitude_uv: (info.peak_amplitude_uv * s.scale as f64) as f32,
                    });
                }
            }
        }
    }
    out.sort_by_key(|s| (s.frame, s.unit));
    out
}

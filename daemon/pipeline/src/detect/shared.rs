//! What the detector shows the rest of the daemon while it runs: per-channel noise, levels
//! and spike counts, and the totals of what it discarded.
//!
//! The detector writes these with relaxed atomic stores as it goes; the control plane, gRPC,
//! the KPI worker and the sorter dashboard read them at any time without locks. Floats are
//! stored as their bits in `AtomicU32`. Each value is individually current; a reader taking
//! several at once may see them from slightly different moments.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Lock-free read-outs of one running detector, shared as `Arc<DetectorShared>`.
#[derive(Debug)]
pub struct DetectorShared {
    noise_uv: Box<[AtomicU32]>,
    negative_uv: Box<[AtomicU32]>,
    positive_uv: Box<[AtomicU32]>,
    spikes: Box<[AtomicU64]>,
    spikes_total: AtomicU64,
    artifacts_rejected: AtomicU64,
    pending_overflows: AtomicU64,
    outside_width: AtomicU64,
    after_lobes: AtomicU64,
}

fn floats(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(f32::NAN.to_bits())).collect()
}

fn counts(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl DetectorShared {
    pub(crate) fn new(channels: usize) -> Self {
        DetectorShared {
            noise_uv: floats(channels),
            negative_uv: floats(channels),
            positive_uv: floats(channels),
            spikes: counts(channels),
            spikes_total: AtomicU64::new(0),
            artifacts_rejected: AtomicU64::new(0),
            pending_overflows: AtomicU64::new(0),
            outside_width: AtomicU64::new(0),
            after_lobes: AtomicU64::new(0),
        }
    }

    /// Channels the detector runs on.
    pub fn channels(&self) -> usize {
        self.spikes.len()
    }

    /// The channel's robust noise estimate (MAD / 0.6745), µV; `None` until the first one
    /// (about half a second into the stream), for a channel without a finite estimate, and for
    /// a channel out of range.
    pub fn noise_uv(&self, channel: usize) -> Option<f32> {
        let noise = load_f32(self.noise_uv.get(channel)?);
        (!noise.is_nan()).then_some(noise)
    }

    /// The levels the channel detects at, `(negative, positive)`, µV. A side is NaN while it
    /// detects nothing: the polarity excludes it, the channel is disabled, or its noise-based
    /// level is not known yet. `(NaN, NaN)` for a channel out of range.
    pub fn threshold_uv(&self, channel: usize) -> (f32, f32) {
        match (self.negative_uv.get(channel), self.positive_uv.get(channel)) {
            (Some(n), Some(p)) => (load_f32(n), load_f32(p)),
            _ => (f32::NAN, f32::NAN),
        }
    }

    /// Spikes emitted on the channel since the start or the last [`DetectorShared::reset_counts`]
    /// (artifacts excluded); 0 for a channel out of range.
    pub fn spikes(&self, channel: usize) -> u64 {
        self.spikes.get(channel).map_or(0, |s| s.load(Relaxed))
    }

    /// Spikes emitted on all channels.
    pub fn spikes_total(&self) -> u64 {
        self.spikes_total.load(Relaxed)
    }

    /// Detections discarded because their snippet went beyond the artifact level.
    pub fn artifacts_rejected(&self) -> u64 {
        self.artifacts_rejected.load(Relaxed)
    }

    /// Crossings dropped because the table of spikes waiting for their snippet was full.
    pub fn pending_overflows(&self) -> u64 {
        self.pending_overflows.load(Relaxed)
    }

    /// Emitted spikes whose half-peak width was outside the channel's `spike_width_s`.
    pub fn outside_width(&self) -> u64 {
        self.outside_width.load(Relaxed)
    }

    /// Crossings discarded as the after-lobe of the spike just before them
    /// (see [`super::after_lobe`]).
    pub fn after_lobes_rejected(&self) -> u64 {
        self.after_lobes.load(Relaxed)
    }

    /// Zeroes every count (for the sorter's CLEAR_SORT); noise and levels are kept.
    pub fn reset_counts(&self) {
        for s in self.spikes.iter() {
            s.store(0, Relaxed);
        }
        for total in [
            &self.spikes_total,
            &self.artifacts_rejected,
            &self.pending_overflows,
            &self.outside_width,
            &self.after_lobes,
        ] {
            total.store(0, Relaxed);
        }
    }

    pub(crate) fn set_noise(&self, channel: usize, noise_uv: f32) {
        self.noise_uv[channel].store(noise_uv.to_bits(), Relaxed);
    }

    pub(crate) fn set_levels(&self, channel: usize, negative_uv: f32, positive_uv: f32) {
        self.negative_uv[channel].store(negative_uv.to_bits(), Relaxed);
        self.positive_uv[channel].store(positive_uv.to_bits(), Relaxed);
    }

    pub(crate) fn count_spike(&self, channel: usize, outside_width: bool) {
        self.spikes[channel].fetch_add(1, Relaxed);
        self.spikes_total.fetch_add(1, Relaxed);
        if outside_width {
            self.outside_width.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn count_artifact(&self) {
        self.artifacts_rejected.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_after_lobe(&self) {
        self.after_lobes.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_pending_overflow(&self) {
        self.pending_overflows.fetch_add(1, Relaxed);
    }
}

fn load_f32(a: &AtomicU32) -> f32 {
    f32::from_bits(a.load(Relaxed))
}

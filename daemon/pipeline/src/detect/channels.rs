//! Per-channel detection state in the form the acquisition thread uses it: parameters turned
//! into levels and sample counts, one array per quantity (structure of arrays), so the scan
//! over a frame reads two contiguous float arrays and nothing else.
//!
//! A side that detects nothing (polarity, disabled channel, noise not known yet) gets an
//! infinite level, and a channel in its dead time gets infinite levels on both sides, so the
//! scan needs no per-channel flags: `v < lo || v > hi` is the whole test.

use super::params::DetectParams;
use super::shared::DetectorShared;
use crate::prefault::prefaulted;

/// Derived settings and live levels of every channel.
pub(crate) struct Channels {
    /// Levels the scan compares against: the configured ones, or infinite while dead.
    pub lo: Box<[f32]>,
    pub hi: Box<[f32]>,
    /// Configured levels, µV (infinite for a side that detects nothing).
    pub set_lo: Box<[f32]>,
    pub set_hi: Box<[f32]>,
    /// Artifact levels, µV (infinite when there is none or it is not known yet).
    pub artifact_lo: Box<[f32]>,
    pub artifact_hi: Box<[f32]>,
    /// Peak search before and after the crossing, raw samples.
    pub window_pre: Box<[usize]>,
    pub window_post: Box<[usize]>,
    /// Dead time, frames (at least one: the crossing frame itself).
    pub shadow: Box<[u64]>,
    /// Allowed half-peak widths, raw samples.
    pub width_min: Box<[f32]>,
    pub width_max: Box<[f32]>,
    /// Whether the channel is in its dead time (or waiting to come back inside its levels).
    pub dead: Box<[bool]>,
}

impl Channels {
    pub(crate) fn new(channels: usize) -> Self {
        let inf = |sign: f32| prefaulted(channels, sign * f32::INFINITY);
        Channels {
            lo: inf(-1.0),
            hi: inf(1.0),
            set_lo: inf(-1.0),
            set_hi: inf(1.0),
            artifact_lo: inf(-1.0),
            artifact_hi: inf(1.0),
            window_pre: prefaulted(channels, 0),
            window_post: prefaulted(channels, 0),
            shadow: prefaulted(channels, 1),
            width_min: prefaulted(channels, 0.0),
            width_max: prefaulted(channels, f32::INFINITY),
            dead: prefaulted(channels, false),
        }
    }

    /// Derives `channel`'s settings from `p` and its noise estimate (NaN while unknown), and
    /// publishes its levels.
    pub(crate) fn configure(
        &mut self,
        channel: usize,
        p: &DetectParams,
        noise_uv: f32,
        rate: f64,
        shared: &DetectorShared,
    ) {
        let c = channel;
        let (neg, pos) = p.threshold.levels_uv(noise_uv);
        let neg = if p.enabled && p.polarity.negative() && neg.is_finite() { neg } else { f32::NAN };
        let pos = if p.enabled && p.polarity.positive() && pos.is_finite() { pos } else { f32::NAN };
        shared.set_levels(c, neg, pos);
        self.set_lo[c] = if neg.is_nan() { f32::NEG_INFINITY } else { neg };
        self.set_hi[c] = if pos.is_nan() { f32::INFINITY } else { pos };
        if !self.dead[c] {
            self.lo[c] = self.set_lo[c];
            self.hi[c] = self.set_hi[c];
        }
        let (art_neg, art_pos) = p.artifact_level.map_or((f32::NAN, f32::NAN), |a| a.levels_uv(noise_uv));
        self.artifact_lo[c] = if art_neg.is_finite() { art_neg } else { f32::NEG_INFINITY };
        self.artifact_hi[c] = if art_pos.is_finite() { art_pos } else { f32::INFINITY };
        let samples = |s: f32| (f64::from(s) * rate).round() as usize;
        self.window_pre[c] = samples(p.window_pre_s);
        self.window_post[c] = samples(p.window_post_s);
        self.shadow[c] = samples(p.shadow_s).max(1) as u64;
        self.width_min[c] = (f64::from(p.spike_width_s.0) * rate) as f32;
        self.width_max[c] = (f64::from(p.spike_width_s.1) * rate) as f32;
    }
}

/// Channels in their dead time, each with the last frame count of it.
///
/// A short unordered list rather than a per-channel scan: it holds only the channels that
/// spiked in the last millisecond or so, and is looked at only on frames where one of them is
/// due.
pub(crate) struct DeadList {
    entries: Box<[(u32, u64)]>,
    len: usize,
    /// The earliest frame count at which an entry is due.
    pub next_due: u64,
}

impl DeadList {
    pub(crate) fn new(channels: usize) -> Self {
        DeadList { entries: prefaulted(channels, (0, 0)), len: 0, next_due: u64::MAX }
    }

    /// Puts `channel` (not dead yet) in its dead time, which lasts until frame count `until`
    /// inclusive.
    pub(crate) fn kill(&mut self, channels: &mut Channels, channel: usize, until: u64) {
        channels.dead[channel] = true;
        channels.lo[channel] = f32::NEG_INFINITY;
        channels.hi[channel] = f32::INFINITY;
        self.entries[self.len] = (channel as u32, until);
        self.len += 1;
        self.next_due = self.next_due.min(until);
    }

    /// At frame count `n` (`row` its samples): every channel whose dead time is over and whose
    /// sample is back inside its levels detects again from the next frame. One still beyond
    /// is looked at again next frame, so the next crossing is a real one.
    pub(crate) fn revive(&mut self, channels: &mut Channels, row: &[f32], n: u64) {
        let mut next_due = u64::MAX;
        let mut i = 0;
        while i < self.len {
            let (c, until) = self.entries[i];
            let c = c as usize;
            if until > n {
                next_due = next_due.min(until);
                i += 1;
                continue;
            }
            let v = row[c];
            if v < channels.set_lo[c] || v > channels.set_hi[c] {
                next_due = next_due.min(n + 1);
                i += 1;
                continue;
            }
            channels.dead[c] = false;
            channels.lo[c] = channels.set_lo[c];
            channels.hi[c] = channels.set_hi[c];
            self.len -= 1;
            self.entries[i] = self.entries[self.len];
        }
        self.next_due = next_due;
    }
}

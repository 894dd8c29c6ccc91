//! Detection quality against ground truth: per unit, how many of its spikes were found
//! (recall) and how many of the detections on its channel were real (precision).
//!
//! The rules, so that any detector's output (ours, or another tool's run on the same
//! recording) is scored the same way, from what a recording holds (`/spikes` and
//! `/ground_truth`):
//! - A unit's spike is found when a detection on the unit's peak channel lies within
//!   `tolerance` frames of it (the crossing precedes the trough by a fraction of a millisecond).
//! - A detection on channel `c` is explained when any true spike, of any unit whose peak
//!   channel is within `neighbourhood` channels of `c`, lies within `tolerance` frames: units
//!   reach their neighbours, and a detection of a neighbour's spike is not a false one.
//! - A unit's precision counts the detections on its peak channel: those matching one of its
//!   own spikes are true, those explained by no spike at all are false; those explained by
//!   another unit count for neither.

use std::collections::BTreeMap;

/// One true spike: frame of its trough, the unit's peak channel, the unit, its depth (µV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueSpike {
    /// Frame of the trough on the peak channel.
    pub frame: i64,
    /// The unit's peak channel.
    pub channel: usize,
    /// The unit.
    pub unit: u32,
    /// Trough depth, µV (positive).
    pub amplitude_uv: f64,
}

/// One detection: the frame and channel a detector reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// Frame of the detection (the threshold crossing, or the peak).
    pub frame: i64,
    /// Channel it was reported on.
    pub channel: usize,
}

/// How one unit fared.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitScore {
    /// The unit.
    pub unit: u32,
    /// Its peak channel.
    pub channel: usize,
    /// Its largest spike's depth over the noise rms.
    pub snr: f64,
    /// Its true spikes.
    pub spikes: usize,
    /// Of those, found.
    pub found: usize,
    /// Detections on its channel matching its spikes.
    pub true_detections: usize,
    /// Detections on its channel explained by no spike.
    pub false_detections: usize,
}

impl UnitScore {
    /// Found over true spikes (1 for a unit that never fired).
    pub fn recall(&self) -> f64 {
        if self.spikes == 0 {
            1.0
        } else {
            self.found as f64 / self.spikes as f64
        }
    }

    /// True over true plus false detections on its channel (1 with no detections).
    pub fn precision(&self) -> f64 {
        let all = self.true_detections + self.false_detections;
        if all == 0 {
            1.0
        } else {
            self.true_detections as f64 / all as f64
        }
    }
}

/// Scores `detections` against `truth`. `noise_rms_uv` turns amplitudes into SNR.
pub fn score(
    truth: &[TrueSpike],
    detections: &[Detection],
    tolerance: i64,
    neighbourhood: usize,
    noise_rms_uv: f64,
) -> Vec<UnitScore> {
    let mut by_channel: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for d in detections {
        by_channel.entry(d.channel).or_default().push(d.frame);
    }
    by_channel.values_mut().for_each(|v| v.sort_unstable());
    let mut truth_by_channel: BTreeMap<usize, Vec<(i64, u32)>> = BTreeMap::new();
    for t in truth {
        truth_by_channel.entry(t.channel).or_default().push((t.frame, t.unit));
    }
    truth_by_channel.values_mut().for_each(|v| v.sort_unstable());
    let near = |sorted: &[i64], frame: i64| {
        let i = sorted.partition_point(|&f| f < frame - tolerance);
        sorted.get(i).is_some_and(|&f| f <= frame + tolerance)
    };
    let mut units: BTreeMap<u32, UnitScore> = BTreeMap::new();
    for t in truth {
        let u = units.entry(t.unit).or_insert(UnitScore {
            unit: t.unit,
            channel: t.channel,
            snr: 0.0,
            spikes: 0,
            found: 0,
            true_detections: 0,
            false_detections: 0,
        });
        u.snr = u.snr.max(t.amplitude_uv / noise_rms_uv);
        u.spikes += 1;
        if by_channel.get(&t.channel).is_some_and(|d| near(d, t.frame)) {
            u.found += 1;
        }
    }
    for u in units.values_mut() {
        let Some(frames) = by_channel.get(&u.channel) else { continue };
        let own: Vec<i64> = truth
            .iter()
            .filter(|t| t.unit == u.unit)
            .map(|t| t.frame)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let lo = u.channel.saturating_sub(neighbourhood);
        for &f in frames {
            if near(&own, f) {
                u.true_detections += 1;
                continue;
            }
            let explained = truth_by_channel.range(lo..=u.channel + neighbourhood).any(|(_, spikes)| {
                let i = spikes.partition_point(|&(t, _)| t < f - tolerance);
                spikes.get(i).is_some_and(|&(t, _)| t <= f + tolerance)
            });
            if !explained {
                u.false_detections += 1;
            }
        }
    }
    units.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(frame: i64, channel: usize, unit: u32) -> TrueSpike {
        TrueSpike { frame, channel, unit, amplitude_uv: 100.0 }
    }

    fn d(frame: i64, channel: usize) -> Detection {
        Detection { frame, channel }
    }

    #[test]
    fn recall_and_precision_follow_the_rules() {
        let truth = [t(100, 5, 0), t(300, 5, 0), t(500, 5, 0), t(200, 7, 1)];
        let detections = [
            d(98, 5),  // unit 0's first spike
            d(305, 5), // its second, 5 frames late
            d(201, 5), // unit 1's spike seen on a neighbour: neither true nor false for unit 0
            d(900, 5), // nothing: false
            d(199, 7), // unit 1
        ];
        let scores = score(&truth, &detections, 10, 4, 10.0);
        let u0 = &scores[0];
        assert_eq!((u0.spikes, u0.found, u0.true_detections, u0.false_detections), (3, 2, 2, 1));
        assert!((u0.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((u0.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(u0.snr, 10.0);
        let u1 = &scores[1];
        assert_eq!((u1.recall(), u1.precision()), (1.0, 1.0));
        // Outside the tolerance nothing matches.
        let scores = score(&truth, &[d(111, 5)], 10, 4, 10.0);
        assert_eq!((scores[0].found, scores[0].false_detections), (0, 1));
    }
}

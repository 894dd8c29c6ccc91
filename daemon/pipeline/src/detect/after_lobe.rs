//! After-lobe rejection: a large spike, once highpassed, swings back past its own threshold a
//! millisecond or two after its trough (the filtered repolarisation overshoots). That second
//! crossing is the same spike, not a new one: counted twice it would double a unit's rate.
//!
//! A crossing is taken for an after-lobe when it follows an emitted spike of the same sign
//! on the same channel within [`AFTER_LOBE_WINDOW_S`] and its peak is smaller than
//! [`AFTER_LOBE_FRACTION`] of that spike's. A second unit's spike that close and that much
//! smaller on the same channel is lost with it; at a few spikes per second per channel that
//! is well under one percent of its spikes.

use crate::prefault::prefaulted;

/// How long after a spike's crossing a smaller crossing of the same sign is its after-lobe.
pub const AFTER_LOBE_WINDOW_S: f64 = 0.0025;
/// How much smaller (as a fraction of the spike's peak) an after-lobe is.
pub const AFTER_LOBE_FRACTION: f32 = 0.7;

/// The last emitted spike of each channel.
pub(super) struct AfterLobes {
    window_frames: u64,
    last_frame: Box<[u64]>,
    last_peak: Box<[f32]>,
}

impl AfterLobes {
    pub fn new(channels: usize, sample_rate_hz: f64) -> Self {
        AfterLobes {
            window_frames: (AFTER_LOBE_WINDOW_S * sample_rate_hz).round() as u64,
            last_frame: prefaulted(channels, u64::MAX),
            last_peak: prefaulted(channels, 0.0),
        }
    }

    /// Whether a spike crossing at device frame `frame` on `channel` with peak `peak_uv` is the
    /// after-lobe of the channel's last spike. Remembers it as the last spike if not.
    #[inline]
    pub fn is_after_lobe(&mut self, channel: usize, frame: u64, peak_uv: f32) -> bool {
        let (last, last_peak) = (self.last_frame[channel], self.last_peak[channel]);
        let close = last != u64::MAX && frame > last && frame - last <= self.window_frames;
        let same_sign = (peak_uv < 0.0) == (last_peak < 0.0);
        if close && same_sign && peak_uv.abs() < AFTER_LOBE_FRACTION * last_peak.abs() {
            return true;
        }
        self.last_frame[channel] = frame;
        self.last_peak[channel] = peak_uv;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_crossing_soon_after_a_spike_is_its_after_lobe() {
        let mut lobes = AfterLobes::new(2, 30_000.0);
        assert!(!lobes.is_after_lobe(0, 1000, -200.0));
        assert!(lobes.is_after_lobe(0, 1040, -60.0), "1.3 ms later, 30 %: after-lobe");
        assert!(!lobes.is_after_lobe(0, 1050, -160.0), "80 %: a spike of its own");
        assert!(!lobes.is_after_lobe(0, 1200, -40.0), "beyond 2.5 ms of the last spike");
        assert!(!lobes.is_after_lobe(0, 1210, 30.0), "opposite sign");
        assert!(!lobes.is_after_lobe(1, 1001, -10.0), "another channel");
    }
}

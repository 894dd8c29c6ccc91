//! The spike event: what the detector emits into its [`EventRing`](crate::events::EventRing)
//! for the recorder (`/spikes`), the KPI worker, gRPC and closed-loop streams.

use crate::events::Event;

/// Samples in a spike snippet, as the CL API defines it: 25 before the threshold crossing and
/// 50 from it at 25 kHz. At other rates the snippet spans the same 1 ms before and 2 ms from
/// the crossing, resampled onto these 75 points.
pub const SNIPPET_SAMPLES: usize = 75;

/// Snippet samples before the crossing.
pub const SNIPPET_PRE: usize = 25;

/// Unit label of a spike no sorter has assigned.
pub const UNSORTED: i32 = -1;

/// One detected spike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// Device frame index of the threshold crossing.
    pub frame: u64,
    /// Amplifier channel (column of the frame block) it was detected on.
    pub channel: u16,
    /// Unit label, [`UNSORTED`] from a detect-only sorter.
    pub unit: i32,
    /// The extreme of the spike in the snippet (the trough for a negative crossing), µV, before
    /// mean-centring.
    pub peak_uv: f32,
    /// The snippet around the crossing, mean-centred, µV.
    pub samples: [f32; SNIPPET_SAMPLES],
}

impl Event for Spike {
    /// Frame; channel, unit and peak packed; 75 floats in 38 words.
    const WORDS: usize = 2 + SNIPPET_SAMPLES.div_ceil(2);

    fn encode(&self, words: &mut [u64]) {
        words[0] = self.frame;
        words[1] = u64::from(self.channel) | (u64::from(self.unit as u32) << 16);
        for (i, pair) in self.samples.chunks(2).enumerate() {
            let lo = u64::from(pair[0].to_bits());
            let hi = pair.get(1).map_or(u64::from(self.peak_uv.to_bits()), |v| u64::from(v.to_bits()));
            words[2 + i] = lo | (hi << 32);
        }
    }

    fn decode(words: &[u64]) -> Self {
        let mut samples = [0f32; SNIPPET_SAMPLES];
        for (i, s) in samples.iter_mut().enumerate() {
            let w = words[2 + i / 2];
            *s = f32::from_bits(if i % 2 == 0 { w as u32 } else { (w >> 32) as u32 });
        }
        // The odd sample count leaves the high half of the last word for the peak.
        let peak_uv = f32::from_bits((words[Self::WORDS - 1] >> 32) as u32);
        Spike { frame: words[0], channel: words[1] as u16, unit: (words[1] >> 16) as u32 as i32, peak_uv, samples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_survives_encoding_in_forty_words() {
        assert_eq!(Spike::WORDS, 40);
        let spike = Spike {
            frame: u64::MAX - 3,
            channel: 1023,
            unit: UNSORTED,
            peak_uv: -123.5,
            samples: std::array::from_fn(|i| i as f32 * -1.5 + 0.25),
        };
        let mut words = vec![0u64; Spike::WORDS];
        spike.encode(&mut words);
        assert_eq!(Spike::decode(&words), spike);
        let sorted = Spike { unit: 7, channel: 0, ..spike };
        sorted.encode(&mut words);
        assert_eq!(Spike::decode(&words), sorted);
    }
}

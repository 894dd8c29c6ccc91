//! The metrics KPI computes, in the order and with the meanings radiens-core documents for
//! `KpiMetric` (its `models/kpi.py`), and how each one is averaged over time.
//!
//! The ordinals here are the columns of every table this module keeps; the mapping to the wire
//! enum lives in `grpc::kpi`, so a renumbering of the wire enum changes one table only.

/// Number of metrics: the columns of every per-channel table.
pub const METRIC_COUNT: usize = 19;

/// One per-channel metric. Amplitudes are µV of the amplifier signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KpiMetric {
    /// Samples measured.
    NumPts,
    /// Samples the noise estimate was taken from (every sample of the packet). radiens-core
    /// documents it as such: despite the name, not an inter-spike-interval count.
    NumPtsIsi,
    /// Duration measured, seconds (samples / sample rate).
    DurSec,
    /// Mean signal level.
    Mean,
    /// Minimum signal level.
    Min,
    /// Maximum signal level.
    Max,
    /// Largest absolute signal level.
    MaxAbs,
    /// Signal range, `MAX - MIN`.
    MaxMinDiffAbs,
    /// Standard deviation with `ddof = 0` (numpy's `np.std` default).
    Sd,
    /// Root mean square.
    Rms,
    /// The spike detector's noise estimate (the median absolute value of the spike band over
    /// about a second, divided by 0.6745); without a detector, the packet's median absolute
    /// deviation from its mean, divided by 0.6745.
    NoiseUv,
    /// `EVENT_MEAN_MAX_ABS / NOISE_UV`; NaN without events or with zero noise.
    Snr,
    /// Spikes per second.
    EventRate,
    /// Largest spike peak (`Spike::peak_uv`).
    EventMax,
    /// Smallest spike peak (the deepest trough).
    EventMin,
    /// Largest absolute spike peak.
    EventMaxAbs,
    /// Largest spike snippet peak-to-peak.
    EventMaxMinDiffAbs,
    /// Mean absolute spike peak.
    EventMeanMaxAbs,
    /// Mean spike snippet peak-to-peak.
    EventMeanMaxMinDiffAbs,
}

/// How a metric is carried from packet to packet in the averaged table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blend {
    /// Exponential moving average.
    Average,
    /// An upper envelope: rises at once to a larger packet value, decays like the average.
    Upper,
    /// A lower envelope: falls at once to a smaller packet value, rises like the average.
    Lower,
}

impl KpiMetric {
    /// Every metric, in column order.
    pub const ALL: [KpiMetric; METRIC_COUNT] = [
        KpiMetric::NumPts,
        KpiMetric::NumPtsIsi,
        KpiMetric::DurSec,
        KpiMetric::Mean,
        KpiMetric::Min,
        KpiMetric::Max,
        KpiMetric::MaxAbs,
        KpiMetric::MaxMinDiffAbs,
        KpiMetric::Sd,
        KpiMetric::Rms,
        KpiMetric::NoiseUv,
        KpiMetric::Snr,
        KpiMetric::EventRate,
        KpiMetric::EventMax,
        KpiMetric::EventMin,
        KpiMetric::EventMaxAbs,
        KpiMetric::EventMaxMinDiffAbs,
        KpiMetric::EventMeanMaxAbs,
        KpiMetric::EventMeanMaxMinDiffAbs,
    ];

    /// Column of this metric in every table.
    pub fn column(self) -> usize {
        self as usize
    }

    /// The metric of column `column`.
    pub fn from_column(column: usize) -> Option<KpiMetric> {
        Self::ALL.get(column).copied()
    }

    /// The name radiens-core uses (`KpiMetric.<NAME>`).
    pub fn name(self) -> &'static str {
        match self {
            KpiMetric::NumPts => "NUM_PTS",
            KpiMetric::NumPtsIsi => "NUM_PTS_ISI",
            KpiMetric::DurSec => "DUR_SEC",
            KpiMetric::Mean => "MEAN",
            KpiMetric::Min => "MIN",
            KpiMetric::Max => "MAX",
            KpiMetric::MaxAbs => "MAX_ABS",
            KpiMetric::MaxMinDiffAbs => "MAX_MIN_DIFF_ABS",
            KpiMetric::Sd => "SD",
            KpiMetric::Rms => "RMS",
            KpiMetric::NoiseUv => "NOISE_UV",
            KpiMetric::Snr => "SNR",
            KpiMetric::EventRate => "EVENT_RATE",
            KpiMetric::EventMax => "EVENT_MAX",
            KpiMetric::EventMin => "EVENT_MIN",
            KpiMetric::EventMaxAbs => "EVENT_MAX_ABS",
            KpiMetric::EventMaxMinDiffAbs => "EVENT_MAX_MIN_DIFF_ABS",
            KpiMetric::EventMeanMaxAbs => "EVENT_MEAN_MAX_ABS",
            KpiMetric::EventMeanMaxMinDiffAbs => "EVENT_MEAN_MAX_MIN_DIFF_ABS",
        }
    }

    /// How the averaged table carries it: extrema are envelopes (radiens-core: "whose extrema
    /// are envelopes rather than exact min/max"), everything else a moving average.
    pub fn blend(self) -> Blend {
        match self {
            KpiMetric::Max
            | KpiMetric::MaxAbs
            | KpiMetric::MaxMinDiffAbs
            | KpiMetric::EventMax
            | KpiMetric::EventMaxAbs
            | KpiMetric::EventMaxMinDiffAbs => Blend::Upper,
            KpiMetric::Min | KpiMetric::EventMin => Blend::Lower,
            _ => Blend::Average,
        }
    }

    /// The value of a packet without spikes on the channel, as radiens-core documents it:
    /// `SNR` NaN, `EVENT_RATE` 0, `EVENT_MIN` +inf, the other event metrics -inf. `None` for
    /// the signal metrics, which always have a value once a sample was measured.
    pub fn without_events(self) -> Option<f64> {
        match self {
            KpiMetric::Snr => Some(f64::NAN),
            KpiMetric::EventRate => Some(0.0),
            KpiMetric::EventMin => Some(f64::INFINITY),
            KpiMetric::EventMax
            | KpiMetric::EventMaxAbs
            | KpiMetric::EventMaxMinDiffAbs
            | KpiMetric::EventMeanMaxAbs
            | KpiMetric::EventMeanMaxMinDiffAbs => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }

    /// The value reported before anything was measured: counts and duration 0, the rest NaN
    /// (radiens-core: `NOISE_UV` is "NaN when nothing was measured").
    pub fn unmeasured(self) -> f64 {
        match self {
            KpiMetric::NumPts | KpiMetric::NumPtsIsi | KpiMetric::DurSec => 0.0,
            _ => f64::NAN,
        }
    }
}

impl std::fmt::Display for KpiMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_documented_order() {
        for (i, m) in KpiMetric::ALL.iter().enumerate() {
            assert_eq!(m.column(), i);
            assert_eq!(KpiMetric::from_column(i), Some(*m));
        }
        assert_eq!(KpiMetric::from_column(METRIC_COUNT), None);
        assert_eq!(KpiMetric::EventMeanMaxMinDiffAbs.column(), 18);
        assert_eq!(KpiMetric::NoiseUv.name(), "NOISE_UV");
    }
}

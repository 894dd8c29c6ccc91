//! The averaged table: each packet blended into what came before, so a client reads metrics
//! that reflect the last `lookback` seconds of signal rather than one short packet.
//!
//! A packet enters with weight `beta = min(1, signal seconds since the previous packet /
//! lookback)`: on a running stream that is `update_period / lookback`, and a packet after a
//! pause in the stream weighs as much as the signal it stands for. The first packet is taken
//! as it is. Extrema are envelopes (radiens-core: "whose extrema are envelopes rather than
//! exact min/max"): a maximum rises at once to a larger packet value and otherwise decays
//! like the average, a minimum likewise downwards.
//!
//! Event metrics have no value in a packet without spikes (±inf, NaN by radiens-core's
//! convention). Such a packet leaves the averaged event values as they were while the channel
//! had spikes within the lookback window, and sets them to the no-event values once it has
//! had none for a whole window: the average then says what the window holds.

use super::metric::{Blend, KpiMetric, METRIC_COUNT};

/// The running average of every metric of every channel.
#[derive(Debug, Default)]
pub struct Averager {
    values: Vec<f64>,
    /// Stream frame that ended the last packet with spikes, per channel.
    last_events: Vec<Option<u64>>,
    /// Stream frame that ended the previous packet.
    last_end: Option<u64>,
}

impl Averager {
    /// Forgets everything (a new stream).
    pub fn reset(&mut self) {
        *self = Averager::default();
    }

    /// The averaged values, laid out as the packets are.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Blends `packet` (row per channel, [`METRIC_COUNT`] columns), which ends at stream frame
    /// `end`, into the average; returns the weight it was given.
    pub fn add(&mut self, packet: &[f64], end: u64, sample_rate_hz: f64, lookback_s: f64) -> f64 {
        let channels = packet.len() / METRIC_COUNT;
        let Some(last_end) = self.last_end.filter(|_| self.values.len() == packet.len()) else {
            self.values = packet.to_vec();
            self.last_events =
                (0..channels).map(|ch| has_events(&packet[ch * METRIC_COUNT..]).then_some(end)).collect();
            self.last_end = Some(end);
            return 1.0;
        };
        let window = lookback_s * sample_rate_hz;
        let beta = (end.saturating_sub(last_end) as f64 / window).min(1.0);
        for (ch, (avg, new)) in
            self.values.chunks_exact_mut(METRIC_COUNT).zip(packet.chunks_exact(METRIC_COUNT)).enumerate()
        {
            if has_events(new) {
                self.last_events[ch] = Some(end);
            }
            let quiet = self.last_events[ch].is_none_or(|e| (end - e) as f64 >= window);
            for m in KpiMetric::ALL {
                let (a, p) = (&mut avg[m.column()], new[m.column()]);
                *a = blend(m, *a, p, beta, quiet);
            }
        }
        self.last_end = Some(end);
        beta
    }
}

fn has_events(row: &[f64]) -> bool {
    row[KpiMetric::EventRate.column()] > 0.0
}

/// One value carried forward: `previous` averaged, `packet` new, `quiet` when the channel had
/// no spikes for a whole lookback window.
fn blend(metric: KpiMetric, previous: f64, packet: f64, beta: f64, quiet: bool) -> f64 {
    if !packet.is_finite() {
        // No value in this packet: an event metric holds while spikes are within the window.
        return if metric.without_events().is_some() && !quiet { previous } else { packet };
    }
    if !previous.is_finite() {
        return packet;
    }
    let average = beta * packet + (1.0 - beta) * previous;
    match metric.blend() {
        Blend::Average => average,
        Blend::Upper => average.max(packet),
        Blend::Lower => average.min(packet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(f: impl Fn(KpiMetric) -> f64) -> Vec<f64> {
        KpiMetric::ALL.iter().map(|&m| f(m)).collect()
    }

    fn quiet_row(level: f64) -> Vec<f64> {
        row(|m| m.without_events().unwrap_or(level))
    }

    #[test]
    fn averages_decay_envelopes_jump_and_the_first_packet_is_taken_whole() {
        let mut a = Averager::default();
        assert_eq!(a.add(&quiet_row(10.0), 1000, 1000.0, 2.0), 1.0);
        let same = |x: &f64, y: &f64| x.to_bits() == y.to_bits();
        assert!(a.values().iter().zip(&quiet_row(10.0)).all(|(x, y)| same(x, y)));
        // Half a second later with a two-second window: beta = 0.25.
        assert_eq!(a.add(&quiet_row(20.0), 1500, 1000.0, 2.0), 0.25);
        let v = |m: KpiMetric| a.values()[m.column()];
        assert_eq!(v(KpiMetric::Mean), 12.5);
        assert_eq!(v(KpiMetric::Max), 20.0, "an upper envelope rises at once");
        assert_eq!(v(KpiMetric::Min), 12.5, "a lower envelope rises like the average");
        a.add(&quiet_row(0.0), 2000, 1000.0, 2.0);
        let v = |m: KpiMetric| a.values()[m.column()];
        assert_eq!(v(KpiMetric::Max), 15.0, "and decays like the average");
        assert_eq!(v(KpiMetric::Min), 0.0);
        assert_eq!(v(KpiMetric::EventMin), f64::INFINITY);
        assert!(v(KpiMetric::Snr).is_nan());
    }

    #[test]
    fn event_values_hold_through_quiet_packets_for_one_window_then_read_none() {
        let spiking = row(|m| match m {
            KpiMetric::EventRate => 4.0,
            KpiMetric::EventMin => -80.0,
            KpiMetric::Snr => 6.0,
            _ => 50.0,
        });
        let mut a = Averager::default();
        a.add(&quiet_row(1.0), 500, 1000.0, 1.0);
        a.add(&spiking, 1000, 1000.0, 1.0);
        let v = |a: &Averager, m: KpiMetric| a.values()[m.column()];
        assert_eq!(v(&a, KpiMetric::EventMin), -80.0, "first events are taken as they are");
        assert_eq!(v(&a, KpiMetric::EventRate), 0.5 * 4.0);
        a.add(&quiet_row(1.0), 1500, 1000.0, 1.0);
        assert_eq!(v(&a, KpiMetric::EventMin), -80.0);
        assert_eq!(v(&a, KpiMetric::Snr), 6.0);
        assert_eq!(v(&a, KpiMetric::EventRate), 1.0);
        a.add(&quiet_row(1.0), 2000, 1000.0, 1.0);
        assert_eq!(v(&a, KpiMetric::EventMin), f64::INFINITY, "a whole window without spikes");
        assert_eq!(v(&a, KpiMetric::EventMax), f64::NEG_INFINITY);
        assert!(v(&a, KpiMetric::Snr).is_nan());
    }
}

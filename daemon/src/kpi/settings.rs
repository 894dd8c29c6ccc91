//! The three knobs of KPI: how much signal a packet measures, how often one is measured, and
//! how many seconds of recent signal the averaged values reflect.
//!
//! Every value is checked before it is taken, and a refusal names the setting, the value and
//! the allowed range; nothing is clamped.

use std::fmt;

/// Longest packet: the worker copies a whole packet of every channel (2 bytes a sample), so
/// this bounds its memory (5 s of 1024 channels at 30 kHz is about 300 MB).
pub const MAX_PACKET_DUR_S: f64 = 5.0;
/// Shortest packet: a millisecond.
pub const MIN_PACKET_DUR_S: f64 = 0.001;
/// Fastest update: the worker shares two cores with acquisition and the recorder.
pub const MIN_UPDATE_PERIOD_S: f64 = 0.01;
/// Slowest update.
pub const MAX_UPDATE_PERIOD_S: f64 = 60.0;
/// Shortest averaging window.
pub const MIN_LOOKBACK_S: f64 = 0.001;
/// Longest averaging window: an hour.
pub const MAX_LOOKBACK_S: f64 = 3600.0;

/// KPI settings, shared by every client of the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpiSettings {
    /// Seconds of signal one packet measures (the most recent ones at each update).
    pub packet_dur_s: f64,
    /// Seconds between packets.
    pub update_period_s: f64,
    /// Seconds of recent signal the averaged values reflect: each packet enters the average
    /// with weight `min(1, signal time since the previous packet / lookback_s)`, which is
    /// `update_period_s / lookback_s` on a running stream. radiens-core's
    /// `stream_lookback_sec` sets it; 1 s until set, as radiens-core documents.
    pub lookback_s: f64,
}

impl Default for KpiSettings {
    /// A short packet (0.1 s) twice a second, averaged over the last second.
    fn default() -> Self {
        KpiSettings { packet_dur_s: 0.1, update_period_s: 0.5, lookback_s: 1.0 }
    }
}

/// A setting refused: which one, the value asked for and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: allowed {allowed}")]
pub struct SettingsError {
    /// The setting (`packet_dur_s`, `update_period_s`, `lookback_s`).
    pub field: &'static str,
    /// The value refused.
    pub value: f64,
    /// The allowed range, in words.
    pub allowed: String,
}

fn check(field: &'static str, value: f64, min: f64, max: f64, unit: &str) -> Result<f64, SettingsError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SettingsError { field, value, allowed: format!("{min}..={max} {unit}") })
    }
}

impl KpiSettings {
    /// Checks every setting; `cache_s` is the length of the attached primary cache, which a
    /// packet may not exceed.
    pub fn validate(&self, cache_s: Option<f64>) -> Result<(), SettingsError> {
        check_packet_dur(self.packet_dur_s, cache_s)?;
        check_update_period(self.update_period_s)?;
        check_lookback(self.lookback_s)?;
        Ok(())
    }

    /// Weight of a packet arriving `update_period_s` after the previous one.
    pub fn beta(&self) -> f64 {
        (self.update_period_s / self.lookback_s).min(1.0)
    }
}

/// Checks a packet duration against the fixed range and the attached cache's length.
pub fn check_packet_dur(value: f64, cache_s: Option<f64>) -> Result<f64, SettingsError> {
    let max = cache_s.map_or(MAX_PACKET_DUR_S, |c| c.min(MAX_PACKET_DUR_S));
    check("packet_dur_s", value, MIN_PACKET_DUR_S, max, "s").map_err(|mut e| {
        if max < MAX_PACKET_DUR_S {
            e.allowed.push_str(&format!(" (no longer than the primary cache, {max} s)"));
        }
        e
    })
}

/// Checks an update period.
pub fn check_update_period(value: f64) -> Result<f64, SettingsError> {
    check("update_period_s", value, MIN_UPDATE_PERIOD_S, MAX_UPDATE_PERIOD_S, "s")
}

/// Checks an averaging window.
pub fn check_lookback(value: f64) -> Result<f64, SettingsError> {
    check("lookback_s", value, MIN_LOOKBACK_S, MAX_LOOKBACK_S, "s")
}

impl fmt::Display for KpiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packet {} s every {} s, averaged over {} s",
            self.packet_dur_s, self.update_period_s, self.lookback_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_refusals_name_the_setting_and_range() {
        assert_eq!(KpiSettings::default().validate(Some(60.0)), Ok(()));
        assert_eq!(KpiSettings::default().beta(), 0.5);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0, 6.0] {
            let e = check_packet_dur(bad, None).unwrap_err();
            assert_eq!(e.field, "packet_dur_s");
            assert!(e.to_string().starts_with(&format!("packet_dur_s = {bad}: allowed 0.001..=5 s")), "{e}");
        }
        let e = check_packet_dur(2.0, Some(1.5)).unwrap_err().to_string();
        assert!(e.contains("0.001..=1.5 s") && e.contains("primary cache, 1.5 s"), "{e}");
        assert!(check_update_period(0.001)
            .unwrap_err()
            .to_string()
            .contains("update_period_s = 0.001: allowed 0.01..=60 s"));
        assert!(check_lookback(f64::NAN).unwrap_err().to_string().contains("lookback_s = NaN"));
        assert_eq!(KpiSettings { lookback_s: 0.1, ..Default::default() }.beta(), 1.0);
    }
}

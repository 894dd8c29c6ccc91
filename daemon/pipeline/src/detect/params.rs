//! Per-channel detection parameters, as the control plane sets them, and their validation.
//!
//! Parameters are plain data so the control plane can store, compare and send them; every
//! check happens here, on the control plane, so the acquisition thread only ever sees tables
//! it can apply without a second look. An out-of-range value is an error naming the field and
//! the allowed range, never a clamp.

use std::fmt;

/// Which excursions from baseline count as a threshold crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    /// Only going below the negative level (extracellular spikes are troughs).
    #[default]
    Negative,
    /// Only going above the positive level.
    Positive,
    /// Either; the snippet's peak is then searched on the side that was crossed.
    Both,
}

impl Polarity {
    /// Whether crossings below the negative level are detected.
    pub fn negative(self) -> bool {
        matches!(self, Polarity::Negative | Polarity::Both)
    }

    /// Whether crossings above the positive level are detected.
    pub fn positive(self) -> bool {
        matches!(self, Polarity::Positive | Polarity::Both)
    }
}

/// A pair of levels, one below and one above baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Absolute levels in µV: `negative` below zero (e.g. -50), `positive` above it.
    Microvolts {
        /// Level below baseline, µV, < 0.
        negative: f32,
        /// Level above baseline, µV, > 0.
        positive: f32,
    },
    /// Multiples of the channel's robust noise estimate (MAD / 0.6745), both given as positive
    /// numbers: the levels are `-negative × noise` and `+positive × noise`. Until a channel has
    /// its first noise estimate (about half a second into the stream) such levels are unknown
    /// and detect nothing.
    NoiseMultiple {
        /// Multiple of the noise for the level below baseline, > 0 (e.g. 4.5).
        negative: f32,
        /// Multiple of the noise for the level above baseline, > 0.
        positive: f32,
    },
}

impl Threshold {
    /// The negative and positive levels in µV for a channel whose noise estimate is
    /// `noise_uv` (NaN while unknown); NaN where a level cannot be known yet.
    pub fn levels_uv(&self, noise_uv: f32) -> (f32, f32) {
        match *self {
            Threshold::Microvolts { negative, positive } => (negative, positive),
            // A flat channel (MAD 0) has no usable scale: its levels stay unknown rather than
            // collapsing onto zero, where every sample would cross.
            Threshold::NoiseMultiple { negative, positive } if noise_uv.is_finite() && noise_uv > 0.0 => {
                (-negative * noise_uv, positive * noise_uv)
            }
            Threshold::NoiseMultiple { .. } => (f32::NAN, f32::NAN),
        }
    }
}

/// How one channel detects spikes.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectParams {
    /// Whether the channel is searched at all.
    pub enabled: bool,
    /// Which crossings count.
    pub polarity: Polarity,
    /// The detection levels.
    pub threshold: Threshold,
    /// Allego's "weak threshold": a detected spike whose snippet goes below the negative or
    /// above the positive level (whatever the polarity) is discarded as an artifact and
    /// counted. Compared in its own units; a noise multiple is inactive until the channel
    /// has a noise estimate. `None` keeps every spike.
    pub artifact_level: Option<Threshold>,
    /// Start of the peak search, seconds before the crossing (Allego's thr_wdw pre).
    pub window_pre_s: f32,
    /// End of the peak search, seconds after the crossing (Allego's thr_wdw post).
    pub window_post_s: f32,
    /// Dead time from a crossing during which the channel detects nothing new, seconds. After
    /// it the signal must come back inside the levels before the next crossing counts, so a
    /// channel stuck beyond a level does not fire at the dead-time rate.
    pub shadow_s: f32,
    /// Allowed (min, max) width at half peak, seconds. Spikes outside are still emitted, and
    /// counted, so a dashboard can show how plausible the detections are.
    pub spike_width_s: (f32, f32),
}

impl Default for DetectParams {
    /// Chosen on Gaussian noise and on the simulated device's spikes (50–300 µV troughs,
    /// 300 Hz-highpassed), where they find 99.8% of the spikes on their peak channel:
    ///
    /// * negative crossings of 4.5 × the noise: about 0.1 false crossings per second on
    ///   highpassed Gaussian noise (0.07/s measured on the simulated device), while a 50 µV
    ///   spike on 5–10 µV rms noise still crosses;
    /// * peak searched from 0.2 ms before to 0.8 ms after the crossing: a trough follows its
    ///   crossing on the descending flank within a few tenths of a millisecond;
    /// * 1 ms dead time, about one spike's duration;
    /// * ±1 mV artifact rejection, well beyond any spike;
    /// * half-peak width 0.1–2 ms: narrow (interneuron-like) units measure 0.1–0.15 ms at
    ///   30 kHz after the highpass, so a 0.15 ms minimum flagged one spike in six.
    fn default() -> Self {
        DetectParams {
            enabled: true,
            polarity: Polarity::Negative,
            threshold: Threshold::NoiseMultiple { negative: 4.5, positive: 4.5 },
            artifact_level: Some(Threshold::Microvolts { negative: -1000.0, positive: 1000.0 }),
            window_pre_s: 0.0002,
            window_post_s: 0.0008,
            shadow_s: 0.001,
            spike_width_s: (0.0001, 0.002),
        }
    }
}

/// Longest peak search before the crossing: the snippet's 1 ms of pre-crossing signal.
pub const MAX_WINDOW_PRE_S: f32 = 0.001;
/// Longest peak search after the crossing: the snippet's last point, 49/25000 s after it.
pub const MAX_WINDOW_POST_S: f32 = 0.00196;
/// Longest dead time.
pub const MAX_SHADOW_S: f32 = 1.0;
/// Widest half-peak width that can be told apart: the snippet's 3 ms span.
pub const MAX_SPIKE_WIDTH_S: f32 = 0.003;
/// Sample rates the detector accepts, Hz (the Intan range and some room above it).
pub const SAMPLE_RATE_RANGE_HZ: (f64, f64) = (1000.0, 100_000.0);

/// A parameter outside its allowed range: which field, of which channel, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectParamsError {
    /// The channel whose parameters are wrong, when the error is about one channel.
    pub channel: Option<usize>,
    /// The offending field (`threshold.negative`, `window_post_s`, `spike_width_s.max`, ...).
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

impl DetectParamsError {
    /// An error about `field`, not yet tied to a channel.
    pub fn new(field: &'static str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        DetectParamsError { channel: None, field, value: value.to_string(), allowed: allowed.into() }
    }

    /// The same error, about `channel`.
    pub fn on_channel(self, channel: usize) -> Self {
        DetectParamsError { channel: Some(channel), ..self }
    }
}

impl fmt::Display for DetectParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(channel) = self.channel {
            write!(f, "channel {channel}: ")?;
        }
        write!(f, "{} = {}: allowed {}", self.field, self.value, self.allowed)
    }
}

impl std::error::Error for DetectParamsError {}

/// Checks that the detector can run at `sample_rate_hz`.
pub fn validate_sample_rate(sample_rate_hz: f64) -> Result<(), DetectParamsError> {
    let (lo, hi) = SAMPLE_RATE_RANGE_HZ;
    if sample_rate_hz.is_finite() && (lo..=hi).contains(&sample_rate_hz) {
        Ok(())
    } else {
        Err(DetectParamsError::new("sample_rate_hz", sample_rate_hz, format!("{lo} to {hi} Hz")))
    }
}

impl DetectParams {
    /// Checks every field for a channel sampled at `sample_rate_hz`; the first offending
    /// field is named with its allowed range. Fields that do not apply (the positive level of
    /// a negative-only channel, a disabled channel's settings) are checked all the same, so a
    /// table that passes stays valid whatever is switched on later.
    pub fn validate(&self, sample_rate_hz: f64) -> Result<(), DetectParamsError> {
        validate_sample_rate(sample_rate_hz)?;
        check_threshold(&self.threshold, "threshold.negative", "threshold.positive")?;
        if let Some(artifact) = &self.artifact_level {
            check_threshold(artifact, "artifact_level.negative", "artifact_level.positive")?;
            check_artifact_beyond_threshold(&self.threshold, artifact)?;
        }
        check_seconds("window_pre_s", self.window_pre_s, 0.0, MAX_WINDOW_PRE_S)?;
        check_seconds("window_post_s", self.window_post_s, 0.0, MAX_WINDOW_POST_S)?;
        check_seconds("shadow_s", self.shadow_s, 0.0, MAX_SHADOW_S)?;
        let (min, max) = self.spike_width_s;
        check_seconds("spike_width_s.min", min, 0.0, MAX_SPIKE_WIDTH_S)?;
        if !(max.is_finite() && max >= min && max <= MAX_SPIKE_WIDTH_S) {
            return Err(DetectParamsError::new(
                "spike_width_s.max",
                max,
                format!("spike_width_s.min ({min}) to {MAX_SPIKE_WIDTH_S} s"),
            ));
        }
        Ok(())
    }
}

fn check_seconds(field: &'static str, value: f32, min: f32, max: f32) -> Result<(), DetectParamsError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DetectParamsError::new(field, value, format!("{min} to {max} s")))
    }
}

fn check_threshold(
    t: &Threshold,
    negative_field: &'static str,
    positive_field: &'static str,
) -> Result<(), DetectParamsError> {
    match *t {
        Threshold::Microvolts { negative, positive } => {
            if !(negative.is_finite() && negative < 0.0) {
                return Err(DetectParamsError::new(negative_field, negative, "a finite level below 0 µV"));
            }
            if !(positive.is_finite() && positive > 0.0) {
                return Err(DetectParamsError::new(positive_field, positive, "a finite level above 0 µV"));
            }
        }
        Threshold::NoiseMultiple { negative, positive } => {
            for (field, k) in [(negative_field, negative), (positive_field, positive)] {
                if !(k.is_finite() && k > 0.0) {
                    return Err(DetectParamsError::new(field, k, "a finite multiple of the noise above 0"));
                }
            }
        }
    }
    Ok(())
}

/// An artifact level inside the detection level would reject every spike; it can only be
/// checked when both are in the same units.
fn check_artifact_beyond_threshold(threshold: &Threshold, artifact: &Threshold) -> Result<(), DetectParamsError> {
    let pairs = match (*threshold, *artifact) {
        (
            Threshold::Microvolts { negative: tn, positive: tp },
            Threshold::Microvolts { negative: an, positive: ap },
        ) => [(tn, an), (tp, ap)],
        (
            Threshold::NoiseMultiple { negative: tn, positive: tp },
            Threshold::NoiseMultiple { negative: an, positive: ap },
        ) => [(tn, an), (tp, ap)],
        _ => return Ok(()),
    };
    let fields = ["artifact_level.negative", "artifact_level.positive"];
    for ((t, a), field) in pairs.into_iter().zip(fields) {
        if a.abs() <= t.abs() {
            return Err(DetectParamsError::new(field, a, format!("beyond the detection level ({t})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_at_every_intan_rate() {
        for rate in ephysd_drivers::INTAN_SAMPLE_RATES {
            DetectParams::default().validate(rate).unwrap();
        }
    }

    #[test]
    fn each_bad_field_is_named_with_its_range() {
        let base = DetectParams::default();
        let cases: Vec<(DetectParams, &str)> = vec![
            (
                DetectParams { threshold: Threshold::Microvolts { negative: 20.0, positive: 50.0 }, ..base.clone() },
                "threshold.negative",
            ),
            (
                DetectParams {
                    threshold: Threshold::NoiseMultiple { negative: 4.0, positive: f32::NAN },
                    ..base.clone()
                },
                "threshold.positive",
            ),
            (
                DetectParams {
                    artifact_level: Some(Threshold::Microvolts { negative: -500.0, positive: f32::INFINITY }),
                    ..base.clone()
                },
                "artifact_level.positive",
            ),
            (
                DetectParams {
                    artifact_level: Some(Threshold::NoiseMultiple { negative: 3.0, positive: 40.0 }),
                    ..base.clone()
                },
                "artifact_level.negative",
            ),
            (DetectParams { window_pre_s: 0.002, ..base.clone() }, "window_pre_s"),
            (DetectParams { window_post_s: -0.0001, ..base.clone() }, "window_post_s"),
            (DetectParams { shadow_s: f32::NAN, ..base.clone() }, "shadow_s"),
            (DetectParams { spike_width_s: (0.001, 0.0005), ..base.clone() }, "spike_width_s.max"),
            (DetectParams { spike_width_s: (-0.001, 0.0005), ..base.clone() }, "spike_width_s.min"),
        ];
        for (params, field) in cases {
            let err = params.validate(30_000.0).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().starts_with(field) && err.to_string().contains("allowed"), "{err}");
        }
        let err = base.validate(f64::NAN).unwrap_err();
        assert_eq!(err.field, "sample_rate_hz");
        assert_eq!(err.clone().on_channel(3).to_string(), format!("channel 3: {err}"));
    }
}

//! Detection parameters per channel as Allego models them, and what the detector runs.
//!
//! Allego keeps both threshold forms per channel (µV and multiples of the noise, each for the
//! negative and positive side), which side is armed, an artifact level ("weak threshold") in
//! both forms, the window around the crossing, the shadow time and the accepted spike width.
//! The client sets them one command at a time (`SpikeSorterSetParamRequest`); the table keeps
//! every field so what a client set is what it reads back, and derives the detector's
//! [`DetectParams`] from the armed, active form.

use ephysd_pipeline::detect::{DetectParams, Polarity, Threshold};

/// One channel's detection settings, as Allego reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDetect {
    /// Detection runs on the channel.
    pub enabled: bool,
    /// Levels in µV, `[negative, positive]` (the negative one below zero).
    pub thr_uv: [f64; 2],
    /// Levels in multiples of the noise estimate, `[negative, positive]`, as magnitudes.
    pub thr_sd: [f64; 2],
    /// Whether the noise multiples (rather than µV) are the active form.
    pub is_sd: bool,
    /// Which sides detect, `[negative, positive]`.
    pub armed: [bool; 2],
    /// Artifact levels in µV, `[negative, positive]`.
    pub weak_uv: [f64; 2],
    /// Artifact levels in noise multiples, magnitudes.
    pub weak_sd: [f64; 2],
    /// Which artifact levels reject, `[negative, positive]`.
    pub weak_armed: [bool; 2],
    /// Peak-search window around the crossing, seconds `[pre, post]`.
    pub window_s: [f64; 2],
    /// Dead time after a spike, seconds.
    pub shadow_s: f64,
    /// Accepted width at half peak, seconds `[min, max]`.
    pub spike_width_s: [f64; 2],
}

impl ChannelDetect {
    /// The defaults: negative spikes at `threshold_sd` times the noise, no artifact level.
    pub fn with_threshold_sd(threshold_sd: f64) -> Self {
        let d = DetectParams::default();
        ChannelDetect {
            enabled: true,
            thr_uv: [-50.0, 50.0],
            thr_sd: [threshold_sd, threshold_sd],
            is_sd: true,
            armed: [true, false],
            weak_uv: [-1000.0, 1000.0],
            weak_sd: [30.0, 30.0],
            weak_armed: [false, false],
            window_s: [f64::from(d.window_pre_s), f64::from(d.window_post_s)],
            shadow_s: f64::from(d.shadow_s),
            spike_width_s: [f64::from(d.spike_width_s.0), f64::from(d.spike_width_s.1)],
        }
    }

    /// What the detector runs for this channel; `sorter_on` false disables detection.
    pub fn params(&self, sorter_on: bool) -> DetectParams {
        let polarity = match self.armed {
            [true, true] => Polarity::Both,
            [false, true] => Polarity::Positive,
            _ => Polarity::Negative,
        };
        let level = |uv: [f64; 2], sd: [f64; 2]| {
            if self.is_sd {
                Threshold::NoiseMultiple { negative: sd[0].abs() as f32, positive: sd[1].abs() as f32 }
            } else {
                Threshold::Microvolts { negative: uv[0] as f32, positive: uv[1] as f32 }
            }
        };
        // A side whose artifact level is not armed never rejects: its level is moved out of
        // any signal's reach.
        let far = |armed: bool, v: f64, sign: f64| if armed { v } else { sign * 1.0e9 };
        let artifact = (self.weak_armed[0] || self.weak_armed[1]).then(|| {
            level(
                [far(self.weak_armed[0], self.weak_uv[0], -1.0), far(self.weak_armed[1], self.weak_uv[1], 1.0)],
                [far(self.weak_armed[0], self.weak_sd[0], 1.0), far(self.weak_armed[1], self.weak_sd[1], 1.0)],
            )
        });
        DetectParams {
            enabled: sorter_on && self.enabled && (self.armed[0] || self.armed[1]),
            polarity,
            threshold: level(self.thr_uv, self.thr_sd),
            artifact_level: artifact,
            window_pre_s: self.window_s[0] as f32,
            window_post_s: self.window_s[1] as f32,
            shadow_s: self.shadow_s as f32,
            spike_width_s: (self.spike_width_s[0] as f32, self.spike_width_s[1] as f32),
        }
    }
}

/// One of Allego's parameter commands (`SpikeSorterParamCommand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamCommand {
    /// Threshold levels in µV.
    ThresholdUv,
    /// Threshold levels in noise multiples.
    ThresholdSd,
    /// Window `[pre, post]` in seconds.
    Window,
    /// Artifact levels in µV.
    WeakUv,
    /// Artifact levels in noise multiples.
    WeakSd,
    /// Dead time in seconds.
    Shadow,
    /// Arm or disarm threshold sides.
    Activate,
    /// Arm or disarm artifact sides.
    WeakActivate,
    /// Accepted width `[min, max]` in seconds.
    SpikeWidth,
}

/// A parameter change that is not allowed; names the field and the allowed values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {allowed}")]
pub struct ParamError {
    /// The request field, as the client names it (`regFloat64[1]`, `ntvChanIdx`).
    pub field: String,
    /// What was sent.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

fn param_error(field: impl Into<String>, value: impl std::fmt::Display, allowed: impl Into<String>) -> ParamError {
    ParamError { field: field.into(), value: value.to_string(), allowed: allowed.into() }
}

/// Applies one command to one channel's settings. `values` and `sides` are the request's
/// `regFloat64` and `regBool`; `sides[i]` true means the value at position `i` is set (with
/// one value and no sides, it is the negative side, as the client sends it).
pub fn apply(
    ch: &mut ChannelDetect,
    command: ParamCommand,
    values: &[f64],
    sides: &[bool],
    sample_rate_hz: f64,
) -> Result<(), ParamError> {
    for (i, v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(param_error(format!("regFloat64[{i}]"), v, "a finite number"));
        }
    }
    let need = |n: usize, what: &str| {
        if values.len() == n {
            Ok(())
        } else {
            Err(param_error("regFloat64", format!("{values:?}"), format!("exactly {n} values: {what}")))
        }
    };
    let per_side = |what: &str| -> Result<[Option<f64>; 2], ParamError> {
        if values.is_empty() || values.len() > 2 {
            return Err(param_error("regFloat64", format!("{values:?}"), format!("1 or 2 values: {what}")));
        }
        let mut out = [None, None];
        for (i, v) in values.iter().enumerate() {
            if sides.get(i).copied().unwrap_or(true) {
                out[i] = Some(*v);
            }
        }
        Ok(out)
    };
    let frame_s = 1.0 / sample_rate_hz;
    match command {
        ParamCommand::ThresholdUv | ParamCommand::WeakUv => {
            let [neg, pos] = per_side("[negative, positive] µV")?;
            if let Some(n) = neg.filter(|n| *n >= 0.0) {
                return Err(param_error("regFloat64[0]", n, "the negative level, below 0 µV"));
            }
            if let Some(p) = pos.filter(|p| *p <= 0.0) {
                return Err(param_error("regFloat64[1]", p, "the positive level, above 0 µV"));
            }
            let target = if command == ParamCommand::ThresholdUv { &mut ch.thr_uv } else { &mut ch.weak_uv };
            set_sides(target, [neg, pos]);
            if command == ParamCommand::ThresholdUv {
                ch.is_sd = false;
            }
        }
        ParamCommand::ThresholdSd | ParamCommand::WeakSd => {
            let [neg, pos] = per_side("[negative, positive] multiples of the noise")?;
            for (i, v) in [neg, pos].iter().enumerate() {
                if let Some(v) = v.filter(|v| !(0.5..=100.0).contains(&v.abs())) {
                    return Err(param_error(format!("regFloat64[{i}]"), v, "a multiple of the noise of 0.5 to 100"));
                }
            }
            let abs = |v: Option<f64>| v.map(f64::abs);
            let target = if command == ParamCommand::ThresholdSd { &mut ch.thr_sd } else { &mut ch.weak_sd };
            set_sides(target, [abs(neg), abs(pos)]);
            if command == ParamCommand::ThresholdSd {
                ch.is_sd = true;
            }
        }
        ParamCommand::Window => {
            if values.len() < 2 || values.len() > 3 {
                return Err(param_error("regFloat64", format!("{values:?}"), "[pre, post] seconds"));
            }
            for (i, v) in values[..2].iter().enumerate() {
                if !(0.0..=0.002).contains(v) {
                    return Err(param_error(format!("regFloat64[{i}]"), v, "0 to 0.002 s (the snippet's reach)"));
                }
            }
            ch.window_s = [values[0], values[1]];
        }
        ParamCommand::Shadow => {
            need(1, "the dead time in seconds")?;
            if !(0.0..=0.1).contains(&values[0]) {
                return Err(param_error("regFloat64[0]", values[0], "0 to 0.1 s"));
            }
            ch.shadow_s = values[0];
        }
        ParamCommand::SpikeWidth => {
            need(2, "[min, max] seconds")?;
            if !(0.0..=0.01).contains(&values[0]) || !(values[0]..=0.01).contains(&values[1]) {
                return Err(param_error(
                    "regFloat64",
                    format!("{values:?}"),
                    format!("0 <= min <= max <= 0.01 s (one sample is {frame_s:.6} s)"),
                ));
            }
            ch.spike_width_s = [values[0], values[1]];
        }
        ParamCommand::Activate | ParamCommand::WeakActivate => {
            let [neg, pos] = per_side("1.0 (arm) or 0.0 (disarm) per side")?;
            for (i, v) in [neg, pos].iter().enumerate() {
                if let Some(v) = v.filter(|v| *v != 0.0 && *v != 1.0) {
                    return Err(param_error(format!("regFloat64[{i}]"), v, "1.0 (arm) or 0.0 (disarm)"));
                }
            }
            let target = if command == ParamCommand::Activate { &mut ch.armed } else { &mut ch.weak_armed };
            for (side, v) in [neg, pos].into_iter().enumerate() {
                if let Some(v) = v {
                    target[side] = v == 1.0;
                }
            }
        }
    }
    Ok(())
}

fn set_sides(target: &mut [f64; 2], values: [Option<f64>; 2]) {
    for (t, v) in target.iter_mut().zip(values) {
        if let Some(v) = v {
            *t = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: f64 = 30_000.0;

    #[test]
    fn thresholds_switch_between_microvolts_and_noise_multiples() {
        let mut ch = ChannelDetect::with_threshold_sd(5.0);
        assert!(matches!(ch.params(true).threshold, Threshold::NoiseMultiple { negative, .. } if negative == 5.0));
        apply(&mut ch, ParamCommand::ThresholdUv, &[-60.0, 70.0], &[true, true], FS).unwrap();
        assert_eq!(ch.params(true).threshold, Threshold::Microvolts { negative: -60.0, positive: 70.0 });
        apply(&mut ch, ParamCommand::ThresholdSd, &[-4.0], &[true], FS).unwrap();
        assert_eq!(ch.thr_sd, [4.0, 5.0]);
        assert!(ch.is_sd);
    }

    #[test]
    fn arming_sides_sets_polarity_and_the_sorter_gates_everything() {
        let mut ch = ChannelDetect::with_threshold_sd(5.0);
        apply(&mut ch, ParamCommand::Activate, &[1.0, 1.0], &[true, true], FS).unwrap();
        assert_eq!(ch.params(true).polarity, Polarity::Both);
        apply(&mut ch, ParamCommand::Activate, &[0.0], &[true], FS).unwrap();
        assert_eq!(ch.params(true).polarity, Polarity::Positive);
        assert!(ch.params(true).enabled);
        assert!(!ch.params(false).enabled);
        apply(&mut ch, ParamCommand::Activate, &[0.0, 0.0], &[true, true], FS).unwrap();
        assert!(!ch.params(true).enabled);
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let mut ch = ChannelDetect::with_threshold_sd(5.0);
        let before = ch.clone();
        let e = apply(&mut ch, ParamCommand::ThresholdUv, &[50.0, 50.0], &[true, true], FS).unwrap_err();
        assert!(e.to_string().contains("regFloat64[0]") && e.to_string().contains("below 0"), "{e}");
        let e = apply(&mut ch, ParamCommand::Shadow, &[f64::NAN], &[], FS).unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
        let e = apply(&mut ch, ParamCommand::Window, &[0.001], &[], FS).unwrap_err();
        assert!(e.to_string().contains("[pre, post]"), "{e}");
        let e = apply(&mut ch, ParamCommand::Activate, &[2.0], &[true], FS).unwrap_err();
        assert!(e.to_string().contains("arm"), "{e}");
        assert_eq!(ch, before);
    }
}

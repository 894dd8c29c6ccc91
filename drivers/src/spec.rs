//! Which device to open, as the configuration's `device.*` keys name it.
//!
//! The keys arrive as [`DeviceKeys`] (plain values, deserialised from the `[device]` section)
//! and are checked once into a [`DeviceSpec`], a typed description of one device. Everything
//! after that passes the spec around, never the strings: a misspelt backbone is refused at
//! start, naming the key and the allowed values.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rates::{canonical_sample_rate, rate_list};
use crate::sim::{SimConfig, SimMode};
use crate::MAX_AMPLIFIER_CHANNELS;

/// Frames per block the pipeline accepts: at least 16 (per-block overhead), at most 4096
/// (136 ms at 30 kHz: latency).
pub const FRAMES_PER_BLOCK_RANGE: std::ops::RangeInclusive<u32> = 16..=4096;

/// The `[device]` section of the configuration, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeys {
    /// Which device: a simulated mode today (`sim-spikes`, ...), the hardware families later.
    pub backbone: String,
    /// Amplifier channels.
    pub channels: u32,
    /// Frames per second.
    pub sample_rate_hz: f64,
    /// Seed of the simulated device.
    pub seed: u64,
    /// Run the simulated device as fast as the pipeline takes it instead of in real time.
    pub accelerated: bool,
    /// Frames per block moved through the pipeline at once.
    pub frames_per_block: u32,
}

/// A device, fully specified and checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DeviceSpec {
    /// The built-in simulated device.
    Simulated(SimConfig),
}

/// A `device.*` key that does not name a usable device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct DeviceSpecError {
    /// The key within the `[device]` section (`channels`, `backbone`, ...).
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

fn refuse(key: &'static str, value: impl std::fmt::Display, allowed: impl Into<String>) -> DeviceSpecError {
    DeviceSpecError { key, value: value.to_string(), allowed: allowed.into() }
}

/// Every `device.backbone` value this version can open, in the order messages list them.
pub fn backbone_names() -> Vec<&'static str> {
    SimMode::ALL.iter().map(|m| m.name()).collect()
}

impl DeviceSpec {
    /// Checks `keys` and builds the spec they describe.
    pub fn from_keys(keys: &DeviceKeys) -> Result<DeviceSpec, DeviceSpecError> {
        let mode = SimMode::from_str(&keys.backbone)
            .map_err(|_| refuse("backbone", &keys.backbone, format!("allowed: {}", backbone_names().join(", "))))?;
        if !(1..=MAX_AMPLIFIER_CHANNELS as u32).contains(&keys.channels) {
            return Err(refuse("channels", keys.channels, format!("allowed 1..={MAX_AMPLIFIER_CHANNELS}")));
        }
        let rate = canonical_sample_rate(keys.sample_rate_hz)
            .ok_or_else(|| refuse("sample_rate_hz", keys.sample_rate_hz, format!("allowed: {}", rate_list())))?;
        if !FRAMES_PER_BLOCK_RANGE.contains(&keys.frames_per_block) {
            let (lo, hi) = FRAMES_PER_BLOCK_RANGE.into_inner();
            return Err(refuse("frames_per_block", keys.frames_per_block, format!("allowed {lo}..={hi}")));
        }
        Ok(DeviceSpec::Simulated(SimConfig {
            mode,
            amplifier_channels: keys.channels as usize,
            sample_rate_hz: rate,
            seed: keys.seed,
            accelerated: keys.accelerated,
            frames_per_block: keys.frames_per_block as usize,
            ..SimConfig::default()
        }))
    }

    /// The device's `device.backbone` name.
    pub fn backbone(&self) -> &'static str {
        match self {
            DeviceSpec::Simulated(c) => c.mode.name(),
        }
    }

    /// The frames per second the spec asks for.
    pub fn sample_rate_hz(&self) -> f64 {
        match self {
            DeviceSpec::Simulated(c) => c.sample_rate_hz,
        }
    }

    /// The same device at another sample rate, which must be one the device can run at.
    pub fn with_sample_rate(&self, hz: f64) -> Result<DeviceSpec, DeviceSpecError> {
        let rate = canonical_sample_rate(hz)
            .ok_or_else(|| refuse("sample_rate_hz", hz, format!("allowed: {}", rate_list())))?;
        match self {
            DeviceSpec::Simulated(c) => Ok(DeviceSpec::Simulated(SimConfig { sample_rate_hz: rate, ..c.clone() })),
        }
    }

    /// The device `backbone` names, keeping this spec's channels, rate and other settings.
    /// A backbone this version cannot drive is refused, naming the ones it can.
    pub fn with_backbone(&self, backbone: &str) -> Result<DeviceSpec, DeviceSpecError> {
        let mode = SimMode::from_str(backbone).map_err(|_| {
            refuse("backbone", backbone, format!("this version drives: {}", backbone_names().join(", ")))
        })?;
        match self {
            DeviceSpec::Simulated(c) => Ok(DeviceSpec::Simulated(SimConfig { mode, ..c.clone() })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> DeviceKeys {
        DeviceKeys {
            backbone: "sim-spikes".into(),
            channels: 64,
            sample_rate_hz: 30000.0,
            seed: 1,
            accelerated: false,
            frames_per_block: 128,
        }
    }

    #[test]
    fn good_keys_make_a_simulated_device() {
        let spec = DeviceSpec::from_keys(&DeviceKeys { backbone: "sim-lfp".into(), sample_rate_hz: 3333.33, ..keys() })
            .unwrap();
        assert_eq!(spec.backbone(), "sim-lfp");
        let DeviceSpec::Simulated(c) = spec;
        assert_eq!((c.mode, c.amplifier_channels, c.sample_rate_hz), (SimMode::Lfp, 64, 10000.0 / 3.0));
    }

    #[test]
    fn a_spec_changes_rate_or_backbone_and_keeps_the_rest() {
        let spec = DeviceSpec::from_keys(&keys()).unwrap();
        let slower = spec.with_sample_rate(20000.0).unwrap();
        assert_eq!((slower.sample_rate_hz(), slower.backbone()), (20000.0, "sim-spikes"));
        let e = spec.with_sample_rate(44100.0).unwrap_err();
        assert!(e.key == "sample_rate_hz" && e.allowed.contains("30000"), "{e}");
        let sine = spec.with_backbone("sim-sine").unwrap();
        assert_eq!((sine.backbone(), sine.sample_rate_hz()), ("sim-sine", 30000.0));
        let DeviceSpec::Simulated(c) = &sine;
        assert_eq!(c.amplifier_channels, 64);
        let e = spec.with_backbone("xdaq-one-rec").unwrap_err();
        assert!(e.to_string().contains("xdaq-one-rec") && e.allowed.contains("sim-spikes"), "{e}");
    }

    #[test]
    fn each_bad_key_is_named_with_what_is_allowed() {
        let e = DeviceSpec::from_keys(&DeviceKeys { backbone: "sim-noise".into(), ..keys() }).unwrap_err();
        assert_eq!(e.key, "backbone");
        assert!(e.allowed.contains("sim-spikes, sim-sine, sim-lfp, sim-broadband"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys { channels: 2000, ..keys() }).unwrap_err();
        assert_eq!(e.to_string(), "channels = 2000: allowed 1..=1024");
        let e = DeviceSpec::from_keys(&DeviceKeys { sample_rate_hz: 44100.0, ..keys() }).unwrap_err();
        assert!(e.key == "sample_rate_hz" && e.allowed.contains("3333.33") && e.allowed.contains("30000"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys { frames_per_block: 8, ..keys() }).unwrap_err();
        assert_eq!(e.to_string(), "frames_per_block = 8: allowed 16..=4096");
    }
}

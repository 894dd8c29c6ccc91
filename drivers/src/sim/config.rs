//! What the simulated device is asked to produce, and the checks that keep it board-like.

use std::fmt;
use std::str::FromStr;

use crate::frame::{BlockLayout, LayoutError};
use crate::rates::{canonical_sample_rate, rate_list};

/// What the simulated amplifier channels carry. Mirrors the signal generators of Allego's
/// SmartBox simulator (`SMARTBOX_SIM_GEN_*`), so operators recognise the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SimMode {
    /// Background noise, a modest LFP and sortable units: the default, for exercising spike
    /// detection and sorting.
    #[default]
    Spikes,
    /// A clean sine per channel with little noise: for checking filters, scaling and plots.
    Sine,
    /// LFP-dominant signal (delta, theta, theta-nested gamma, 1/f): for LFP displays.
    Lfp,
    /// LFP, spikes and noise together, as a raw wideband recording looks.
    Broadband,
}

impl SimMode {
    /// Every mode, in the order the names are listed in messages.
    pub const ALL: [SimMode; 4] = [SimMode::Spikes, SimMode::Sine, SimMode::Lfp, SimMode::Broadband];

    /// The configuration name of the mode (`sim-spikes`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SimMode::Spikes => "sim-spikes",
            SimMode::Sine => "sim-sine",
            SimMode::Lfp => "sim-lfp",
            SimMode::Broadband => "sim-broadband",
        }
    }

    /// Whether the mode contains spiking units (and hence ground truth).
    pub fn has_spikes(self) -> bool {
        matches!(self, SimMode::Spikes | SimMode::Broadband)
    }
}

impl fmt::Display for SimMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SimMode {
    type Err = SimConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SimMode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| SimConfigError::Mode(s.to_string()))
    }
}

fn mode_names() -> String {
    SimMode::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// A simulator configuration that cannot describe a real board. Each message names the field,
/// the offending value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimConfigError {
    #[error("unknown simulation mode {0:?} (allowed: {names})", names = mode_names())]
    Mode(String),
    /// A block-shape field (amplifier, aux or analog-in channels, frames per block).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("sample_rate_hz = {0} is not an Intan sample rate (allowed: {allowed})", allowed = rate_list())]
    SampleRate(f64),
    #[error("digital_in_channels = {0} is out of range (allowed 0..=16)")]
    DigitalInChannels(usize),
    #[error("digital_out_channels = {0} is out of range (allowed 0..=16)")]
    DigitalOutChannels(usize),
}

/// Everything the simulated device needs. The defaults describe a 64-channel headstage on a
/// Rhythm-style board at 30 kHz, paced to real time.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub mode: SimMode,
    /// Electrode channels, 1..=1024.
    pub amplifier_channels: usize,
    /// Per-channel sample rate; one of [`INTAN_SAMPLE_RATES`](crate::INTAN_SAMPLE_RATES).
    pub sample_rate_hz: f64,
    /// Seeds every random choice: same config and seed, same samples, bit for bit.
    pub seed: u64,
    /// Produce frames as fast as asked instead of pacing to the wall clock (benchmarks,
    /// tests, offline generation).
    pub accelerated: bool,
    /// Frames per block handed to the pipeline.
    pub frames_per_block: usize,
    /// Board analog inputs (BNC ADCs), 0..=16.
    pub analog_in_channels: usize,
    /// Headstage auxiliary inputs, 0..=96.
    pub aux_channels: usize,
    /// Digital input lines, 0..=16 (one 16-bit word per frame).
    pub digital_in_channels: usize,
    /// Digital output lines, 0..=16.
    pub digital_out_channels: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            mode: SimMode::Spikes,
            amplifier_channels: 64,
            sample_rate_hz: 30000.0,
            seed: 1,
            accelerated: false,
            frames_per_block: 128,
            analog_in_channels: 8,
            aux_channels: 3,
            digital_in_channels: 16,
            digital_out_channels: 16,
        }
    }
}

impl SimConfig {
    /// Checks every field against what a real board can be configured to.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        // The block shape (channels, block size, aux and analog inputs) is the frame's own rule.
        self.layout().validate()?;
        if canonical_sample_rate(self.sample_rate_hz).is_none() {
            return Err(SimConfigError::SampleRate(self.sample_rate_hz));
        }
        if self.digital_in_channels > 16 {
            return Err(SimConfigError::DigitalInChannels(self.digital_in_channels));
        }
        if self.digital_out_channels > 16 {
            return Err(SimConfigError::DigitalOutChannels(self.digital_out_channels));
        }
        Ok(())
    }

    /// The block shape this configuration produces.
    pub fn layout(&self) -> BlockLayout {
        BlockLayout {
            amplifier_channels: self.amplifier_channels,
            aux_channels: self.aux_channels,
            analog_in_channels: self.analog_in_channels,
            frames_per_block: self.frames_per_block,
        }
    }
}

//! Allego's filter stages as the control plane keeps them, and how a stage becomes a
//! [`FilterPlan`] the acquisition thread runs.
//!
//! Allego sets filters per stage (hardware, stage 1, stage 2, spike sorter) as a list of
//! entries, each for one port's channels: a filter (lowpass, highpass, bandpass, bandstop,
//! notch), a common average over the port, or a reference subtracted from the port's channels
//! (virtual) or from one channel (paired); or a filter for one analog input. A stage's list
//! replaces the stage as a whole on every port, as the client documents. Each stage compiles to
//! two plans: one over the amplifier channels, one over the analog inputs.

use std::ops::Range;

use ephysd_drivers::DeviceDescription;
use ephysd_pipeline::dsp::{design, FilterFamily, FilterKind, FilterPlan, FilterSpec, Sos};

/// One of Allego's filter stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DspStage {
    /// The chips' analog band, set through the device.
    Hardware,
    /// The first software stage.
    Stage1,
    /// The second software stage: what `get_signals(apply_dsp=True)` returns.
    Stage2,
    /// Filters for the spike detector only, after stage 2.
    SpikeSorter,
}

impl DspStage {
    /// Every stage, in the order the signal passes through them.
    pub const ALL: [DspStage; 4] = [DspStage::Hardware, DspStage::Stage1, DspStage::Stage2, DspStage::SpikeSorter];

    /// The stage's name in logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            DspStage::Hardware => "hardware",
            DspStage::Stage1 => "stage 1",
            DspStage::Stage2 => "stage 2",
            DspStage::SpikeSorter => "spike sorter",
        }
    }
}

/// What one entry does.
#[derive(Debug, Clone, PartialEq)]
pub enum DspOp {
    /// A filter designed from `spec`.
    Filter(FilterSpec),
    /// Subtract the per-frame mean of the port's channels from each of them.
    CommonAverage,
    /// Subtract channel `reference` from every other channel of the port.
    VirtualReference {
        /// Native index of the reference channel.
        reference: usize,
    },
    /// Subtract channel `reference` from channel `target`.
    PairedReference {
        /// Native index of the reference channel.
        reference: usize,
        /// Native index of the channel referenced.
        target: usize,
    },
}

/// One entry of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DspEntry {
    /// What it does.
    pub op: DspOp,
    /// The port (0 = A) whose channels it applies to (ignored for an analog input).
    pub port: usize,
    /// The analog input it applies to instead of a port's channels (a filter only).
    pub analog_in: Option<usize>,
    /// The user's label, kept and reported back.
    pub label: String,
}

/// The plans of one stage: over the amplifier channels and over the analog inputs.
pub struct StagePlans {
    /// Over the amplifier channels.
    pub amplifier: FilterPlan,
    /// Over the board's analog inputs.
    pub analog_in: FilterPlan,
}

/// An entry that cannot be built for the open device.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DspError {
    /// The entry names a port the device does not have.
    #[error("{stage} entry {entry}: port {port} is not on this device (ports: {ports})")]
    NoSuchPort { stage: &'static str, entry: usize, port: char, ports: String },
    /// A channel index outside the port.
    #[error("{stage} entry {entry}: {field} {channel} is not a channel of port {port} (allowed {first}..={last})")]
    ChannelOutsidePort {
        stage: &'static str,
        entry: usize,
        field: &'static str,
        channel: usize,
        port: char,
        first: usize,
        last: usize,
    },
    /// A filter the design refuses (cutoff above Nyquist, order out of range, ...).
    #[error("{stage} entry {entry}: {reason}")]
    Design { stage: &'static str, entry: usize, reason: String },
    /// An analog input the device does not have.
    #[error("{stage} entry {entry}: auxChanIdx {channel} is not an analog input of this device (allowed 0..={last})")]
    NoSuchAnalogIn { stage: &'static str, entry: usize, channel: usize, last: usize },
    /// Analog inputs take filters only.
    #[error("{stage} entry {entry}: an analog input takes filters only, not {what}")]
    AnalogInNotFilter { stage: &'static str, entry: usize, what: &'static str },
    /// The hardware stage takes only the chips' band: lowpass, highpass or bandpass.
    #[error("hardware entry {entry}: the chips' analog band is a lowpass, highpass or bandpass, not {what}")]
    NotAnalogBand { entry: usize, what: &'static str },
}

/// The entries of every stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DspSettings {
    stages: [Vec<DspEntry>; 4],
}

impl DspSettings {
    /// Settings with the spike-sorter stage a Butterworth highpass on every port (what lifts
    /// spikes off the LFP for the detector) and the other stages empty.
    pub fn with_spike_band(description: &DeviceDescription, cutoff_hz: f64, order: u32) -> Self {
        let mut settings = DspSettings::default();
        settings.stages[3] = description
            .ports
            .iter()
            .map(|p| DspEntry {
                op: DspOp::Filter(FilterSpec {
                    kind: FilterKind::Highpass { cutoff_hz },
                    family: FilterFamily::Butterworth,
                    order,
                }),
                port: p.port,
                analog_in: None,
                label: "spike band".into(),
            })
            .collect();
        settings
    }

    /// The entries of `stage`.
    pub fn stage(&self, stage: DspStage) -> &[DspEntry] {
        &self.stages[stage as usize]
    }

    /// Replaces `stage` with `entries` once they build for `description`; on error nothing
    /// changes.
    pub fn replace(
        &mut self,
        stage: DspStage,
        entries: Vec<DspEntry>,
        description: &DeviceDescription,
    ) -> Result<(), DspError> {
        compile(stage, &entries, description)?;
        self.stages[stage as usize] = entries;
        Ok(())
    }

    /// The plans the acquisition thread runs for `stage`.
    pub fn plans(&self, stage: DspStage, description: &DeviceDescription) -> Result<StagePlans, DspError> {
        compile(stage, self.stage(stage), description)
    }

    /// Drops entries for ports the device no longer has (after a reopen into another mode),
    /// and entries that no longer build (a cutoff above the new Nyquist frequency). Returns
    /// what was dropped, for the journal.
    pub fn keep_buildable(&mut self, description: &DeviceDescription) -> Vec<String> {
        let mut dropped = Vec::new();
        for stage in DspStage::ALL {
            let entries = std::mem::take(&mut self.stages[stage as usize]);
            let mut kept = Vec::new();
            for entry in entries {
                match compile(stage, std::slice::from_ref(&entry), description) {
                    Ok(_) => kept.push(entry),
                    Err(e) => dropped.push(e.to_string()),
                }
            }
            self.stages[stage as usize] = kept;
        }
        dropped
    }
}

/// Builds the plans of one stage, checking every entry against the device.
fn compile(stage: DspStage, entries: &[DspEntry], description: &DeviceDescription) -> Result<StagePlans, DspError> {
    let mut plan = FilterPlan::new(description.layout.amplifier_channels);
    let analog_in_channels = description.layout.analog_in_channels;
    let mut analog_plan = FilterPlan::new(analog_in_channels);
    for (i, entry) in entries.iter().enumerate() {
        let plan_error = |e: ephysd_pipeline::dsp::PlanError| DspError::Design {
            stage: stage.name(),
            entry: i,
            reason: e.to_string(),
        };
        if let Some(channel) = entry.analog_in {
            let DspOp::Filter(spec) = &entry.op else {
                let what = match entry.op {
                    DspOp::CommonAverage => "a common average",
                    _ => "a reference",
                };
                return Err(DspError::AnalogInNotFilter { stage: stage.name(), entry: i, what });
            };
            if channel >= analog_in_channels {
                return Err(DspError::NoSuchAnalogIn {
                    stage: stage.name(),
                    entry: i,
                    channel,
                    last: analog_in_channels.saturating_sub(1),
                });
            }
            analog_plan.filter(&[channel], &design_entry(stage, i, spec, description)?).map_err(plan_error)?;
            continue;
        }
        let channels = port_channels(stage, i, entry.port, description)?;
        let all: Vec<usize> = channels.clone().collect();
        let inside = |field: &'static str, channel: usize| {
            if channels.contains(&channel) {
                Ok(channel)
            } else {
                Err(DspError::ChannelOutsidePort {
                    stage: stage.name(),
                    entry: i,
                    field,
                    channel,
                    port: port_letter(entry.port),
                    first: channels.start,
                    last: channels.end.saturating_sub(1),
                })
            }
        };
        match &entry.op {
            DspOp::Filter(spec) => {
                plan.filter(&all, &design_entry(stage, i, spec, description)?).map_err(plan_error)?;
            }
            DspOp::CommonAverage => {
                plan.common_average(&all).map_err(plan_error)?;
            }
            DspOp::VirtualReference { reference } => {
                let reference = inside("reference", *reference)?;
                let targets: Vec<usize> = all.iter().copied().filter(|&c| c != reference).collect();
                plan.reference(reference, &targets).map_err(plan_error)?;
            }
            DspOp::PairedReference { reference, target } => {
                let reference = inside("reference", *reference)?;
                let target = inside("target", *target)?;
                plan.reference(reference, &[target]).map_err(plan_error)?;
            }
        }
    }
    Ok(StagePlans { amplifier: plan, analog_in: analog_plan })
}

/// The sections of entry `entry`'s filter, checked for its stage.
fn design_entry(
    stage: DspStage,
    entry: usize,
    spec: &FilterSpec,
    description: &DeviceDescription,
) -> Result<Sos, DspError> {
    if stage == DspStage::Hardware {
        check_analog_band(entry, spec)?;
    }
    design(spec, description.sample_rate_hz).map_err(|e| DspError::Design {
        stage: stage.name(),
        entry,
        reason: e.to_string(),
    })
}

fn check_analog_band(entry: usize, spec: &FilterSpec) -> Result<(), DspError> {
    let what = match spec.kind {
        FilterKind::Lowpass { .. } | FilterKind::Highpass { .. } | FilterKind::Bandpass { .. } => return Ok(()),
        FilterKind::Bandstop { .. } => "a bandstop",
        FilterKind::Notch { .. } => "a notch",
    };
    Err(DspError::NotAnalogBand { entry, what })
}

fn port_channels(
    stage: DspStage,
    entry: usize,
    port: usize,
    description: &DeviceDescription,
) -> Result<Range<usize>, DspError> {
    description.ports.iter().find(|p| p.port == port).map(|p| p.first_channel..p.first_channel + p.channels).ok_or_else(
        || DspError::NoSuchPort {
            stage: stage.name(),
            entry,
            port: port_letter(port),
            ports: description.ports.iter().map(|p| p.letter().to_string()).collect::<Vec<_>>().join(", "),
        },
    )
}

fn port_letter(port: usize) -> char {
    char::from(b'A'.saturating_add(port.min(25) as u8))
}

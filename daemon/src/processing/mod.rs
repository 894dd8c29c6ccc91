//! Real-time processing as the control plane sets it up: Allego's filter stages, the spike
//! detector's parameters per channel, the live sorter, and for a running stream the handles
//! that change them at a block boundary.
//!
//! A stream's stage chain, in the order the acquisition thread runs it:
//!
//! | stage | what | who reads the result |
//! |---|---|---|
//! | hardware | the chips' analog band; on the simulated device, modelled here | the stages after it |
//! | stage 1 | the client's filters and references, recorded | the primary cache, recordings |
//! | stage 2 | the client's filters and references, never stored | the filtered tap |
//! | filtered tap | publishes the signal into the filtered cache | `get_signals(apply_dsp=True)`, KPI |
//! | spike sorter | the spike band (a highpass by default) | the detector |
//! | detector | thresholds, snippets → the spike ring | recorder (`/spikes`), KPI, sorter, gRPC |
//!
//! As in Allego, the hardware and stage-1 filters are in the recorded samples (the chain writes
//! its signal back into the block after stage 1; with no filter there the samples are the
//! device's, bit for bit); stage 2, the spike band and the detector never change them.

pub mod detect_table;
pub mod dsp_settings;
pub mod losses;
pub mod score;
pub mod sorter;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ephysd_drivers::DeviceDescription;
use ephysd_pipeline::detect::{DetectorControl, DetectorShared, DetectorStage, Spike};
use ephysd_pipeline::dsp::{FilterControl, FilterStage, Lane, ReplaceError};
use ephysd_pipeline::{EventRing, FilteredCache, FilteredTap, PrimaryCache, Stage, StageChain};

use crate::config::ProcessingSettings;
pub use detect_table::{ChannelDetect, ParamCommand, ParamError};
pub use dsp_settings::{DspEntry, DspError, DspOp, DspSettings, DspStage};
pub use sorter::{SorterCommand, SorterPhase, SorterState, SORTER_ID};

/// Processing could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessingError {
    /// A filter entry does not build for the device.
    #[error(transparent)]
    Dsp(#[from] DspError),
    /// A detection parameter is not allowed.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A channel index outside the device.
    #[error("ntvChanIdx {channel} is not an amplifier channel (allowed 0..={last})")]
    NoSuchChannel { channel: i64, last: usize },
    /// The detector refused its parameters (a rule the table did not anticipate).
    #[error("the detector refused the parameters: {0}")]
    Detector(String),
    /// The running stage did not take a change.
    #[error("the {stage} stage did not take the change: {reason}")]
    NotApplied { stage: &'static str, reason: String },
    /// Processing is switched off by configuration.
    #[error("processing is off (processing.detection = false): no filters or spikes are computed")]
    Off,
}

/// One parameter command for some channels (Allego's `SpikeSorterSetParamRequest`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectUpdate {
    /// Native channel indices (as sent; checked against the device).
    pub channels: Vec<i64>,
    /// What to change.
    pub command: ParamCommand,
    /// `regFloat64`.
    pub values: Vec<f64>,
    /// `regBool`: which positions of `values` apply.
    pub sides: Vec<bool>,
}

/// The handles of one running stream's processing.
struct Running {
    /// Per stage (the hardware stage too, on the simulated device): the amplifier channels'
    /// filter and, where the device has analog inputs, theirs.
    filters: Vec<(DspStage, FilterControl, Option<FilterControl>)>,
    detector: DetectorControl,
    spikes: Arc<EventRing<Spike>>,
    filtered: FilteredCache,
    saturated: Arc<AtomicU64>,
    recorded_saturated: Arc<AtomicU64>,
}

/// What a running stream's processing offers its readers.
#[derive(Clone)]
pub struct ProcessingOutputs {
    /// Spikes as the detector emits them.
    pub spikes: Arc<EventRing<Spike>>,
    /// The signal after stage 2 (the primary cache's while no stage 2 filter has changed it).
    pub filtered: FilteredCache,
    /// The detector's per-channel read-outs.
    pub detector: Arc<DetectorShared>,
    /// Filtered samples stored at the 16-bit range's end.
    pub saturated: Arc<AtomicU64>,
    /// Recorded samples the hardware and stage-1 filters pushed beyond the 16-bit range.
    pub recorded_saturated: Arc<AtomicU64>,
}

impl std::fmt::Debug for ProcessingOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessingOutputs")
            .field("spikes_pushed", &self.spikes.head())
            .field("filtered_frames", &self.filtered.current().head())
            .field("spikes_detected", &self.detector.spikes_total())
            .finish()
    }
}

/// The control plane's processing state: settings that outlive streams, and the running
/// stream's handles.
pub struct Processing {
    config: ProcessingSettings,
    cache_seconds: u32,
    dsp: DspSettings,
    detect: Vec<ChannelDetect>,
    sorter: SorterState,
    running: Option<Running>,
}

impl Processing {
    /// Defaults for `description` from the `[processing]` keys.
    pub fn new(config: &ProcessingSettings, cache_seconds: u32, description: &DeviceDescription) -> Self {
        Processing {
            config: config.clone(),
            cache_seconds,
            dsp: DspSettings::with_spike_band(description, config.spike_band_hz, config.spike_band_order),
            detect: vec![ChannelDetect::with_threshold_sd(config.threshold_sd); description.layout.amplifier_channels],
            sorter: SorterState::new(true),
            running: None,
        }
    }

    /// Whether the configuration turns processing on.
    pub fn enabled(&self) -> bool {
        self.config.detection
    }

    /// The device was reopened (another mode or rate): entries that no longer build are
    /// dropped (and returned, for the journal), channels beyond the new count forgotten.
    pub fn device_changed(&mut self, description: &DeviceDescription) -> Vec<String> {
        self.running = None;
        let channels = description.layout.amplifier_channels;
        self.detect.resize(channels, ChannelDetect::with_threshold_sd(self.config.threshold_sd));
        self.dsp.keep_buildable(description)
    }

    /// Builds the stage chain of a new stream whose primary cache is `primary`, and keeps its
    /// handles. An empty chain when processing is off.
    pub fn chain_for_stream(
        &mut self,
        description: &DeviceDescription,
        primary: &Arc<PrimaryCache>,
    ) -> Result<StageChain, ProcessingError> {
        self.running = None;
        if !self.config.detection {
            return Ok(StageChain::new(description.layout, Vec::new()));
        }
        let layout = description.layout;
        let rate = description.sample_rate_hz;
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        let mut filters = Vec::new();
        let mut add_filter = |stage: DspStage, stages: &mut Vec<Box<dyn Stage>>| -> Result<(), ProcessingError> {
            let plans = self.dsp.plans(stage, description)?;
            let (filter, control) = FilterStage::new(&format!("{} filter", stage.name()), plans.amplifier);
            stages.push(Box::new(filter));
            let analog = (layout.analog_in_channels > 0).then(|| {
                let name = format!("{} analog-input filter", stage.name());
                let (filter, control) = FilterStage::on_lane(&name, Lane::AnalogIn, plans.analog_in);
                stages.push(Box::new(filter));
                control
            });
            filters.push((stage, control, analog));
            Ok(())
        };
        if description.simulated {
            add_filter(DspStage::Hardware, &mut stages)?;
        }
        add_filter(DspStage::Stage1, &mut stages)?;
        let recorded_after = stages.len();
        add_filter(DspStage::Stage2, &mut stages)?;
        let filtered_frames = (f64::from(self.config.filtered_seconds(self.cache_seconds)) * rate).ceil() as usize;
        let (tap, filtered, saturated) = FilteredTap::new(layout, filtered_frames, Arc::clone(primary));
        stages.push(Box::new(tap));
        add_filter(DspStage::SpikeSorter, &mut stages)?;
        let (writer, spikes) = EventRing::new(self.config.spike_ring);
        let params = self.detect.iter().map(|c| c.params(self.sorter.is_on())).collect();
        let (detector, control) = DetectorStage::new(layout.amplifier_channels, rate, params, writer)
            .map_err(|e| ProcessingError::Detector(e.to_string()))?;
        stages.push(Box::new(detector));
        self.sorter.restart_window(layout.amplifier_channels);
        let recorded_saturated = Arc::new(AtomicU64::new(0));
        self.running = Some(Running {
            filters,
            detector: control,
            spikes,
            filtered,
            saturated,
            recorded_saturated: Arc::clone(&recorded_saturated),
        });
        Ok(StageChain::new(layout, stages).with_write_back(recorded_after, recorded_saturated))
    }

    /// The stream stopped: its handles go.
    pub fn stream_stopped(&mut self) {
        self.running = None;
    }

    /// What the running stream's processing offers, if a stream runs with processing on.
    pub fn outputs(&self) -> Option<ProcessingOutputs> {
        self.running.as_ref().map(|r| ProcessingOutputs {
            spikes: Arc::clone(&r.spikes),
            filtered: r.filtered.clone(),
            detector: r.detector.shared(),
            saturated: Arc::clone(&r.saturated),
            recorded_saturated: Arc::clone(&r.recorded_saturated),
        })
    }

    /// The entries of `stage`.
    pub fn dsp(&self) -> &DspSettings {
        &self.dsp
    }

    /// Replaces `stage`'s entries; a running stream takes them at its next block boundary.
    pub fn set_dsp(
        &mut self,
        stage: DspStage,
        entries: Vec<DspEntry>,
        description: &DeviceDescription,
    ) -> Result<(), ProcessingError> {
        let mut next = self.dsp.clone();
        next.replace(stage, entries, description)?;
        if let Some((_, amplifier, analog)) =
            self.running.as_ref().and_then(|r| r.filters.iter().find(|(s, _, _)| *s == stage))
        {
            let plans = next.plans(stage, description)?;
            let not_applied =
                |e: ReplaceError| ProcessingError::NotApplied { stage: stage.name(), reason: e.to_string() };
            amplifier.replace(plans.amplifier).map_err(not_applied)?;
            if let Some(analog) = analog {
                analog.replace(plans.analog_in).map_err(not_applied)?;
            }
        }
        self.dsp = next;
        Ok(())
    }

    /// Detection settings of every channel.
    pub fn detect(&self) -> &[ChannelDetect] {
        &self.detect
    }

    /// Applies parameter commands in order, all or none; a running detector takes the
    /// result at its next block boundary.
    pub fn update_detect(&mut self, updates: &[DetectUpdate], sample_rate_hz: f64) -> Result<(), ProcessingError> {
        let last = self.detect.len().saturating_sub(1);
        let mut next = self.detect.clone();
        let mut touched = std::collections::BTreeSet::new();
        for u in updates {
            for &c in &u.channels {
                let Some(c) = usize::try_from(c).ok().filter(|&c| c < next.len()) else {
                    return Err(ProcessingError::NoSuchChannel { channel: c, last });
                };
                detect_table::apply(&mut next[c], u.command, &u.values, &u.sides, sample_rate_hz)?;
                touched.insert(c);
            }
        }
        let changes = touched.into_iter().map(|c| (c, next[c].params(self.sorter.is_on()))).collect();
        self.push_detect(changes)?;
        self.detect = next;
        Ok(())
    }

    /// The sorter's state.
    pub fn sorter(&self) -> &SorterState {
        &self.sorter
    }

    /// Carries out a sorter command.
    pub fn sorter_command(&mut self, command: SorterCommand) -> Result<(), ProcessingError> {
        if !self.config.detection {
            return Err(ProcessingError::Off);
        }
        let shared = self.running.as_ref().map(|r| r.detector.shared());
        if matches!(command, SorterCommand::ClearSort | SorterCommand::Rebase | SorterCommand::Init) {
            if let Some(s) = &shared {
                s.reset_counts();
            }
        }
        if command == SorterCommand::Init {
            self.detect = vec![ChannelDetect::with_threshold_sd(self.config.threshold_sd); self.detect.len()];
        }
        let counts = shared.map(|s| (0..self.detect.len()).map(|c| s.spikes(c)).collect()).unwrap_or_default();
        self.sorter.apply(command, counts);
        let on = self.sorter.is_on();
        let all = self.detect.iter().enumerate().map(|(c, d)| (c, d.params(on))).collect();
        self.push_detect(all)
    }

    fn push_detect(&self, changes: Vec<(usize, ephysd_pipeline::detect::DetectParams)>) -> Result<(), ProcessingError> {
        match &self.running {
            Some(r) => r.detector.update(changes).map_err(|e| ProcessingError::Detector(e.to_string())),
            None => Ok(()),
        }
    }
}

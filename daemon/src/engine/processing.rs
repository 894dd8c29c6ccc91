//! Filters, detection parameters and the sorter, as clients change them.

use super::{Blocked, Engine, EngineError};
use crate::processing::{
    ChannelDetect, DetectUpdate, DspEntry, DspSettings, DspStage, ProcessingOutputs, SorterCommand, SorterPhase,
};

/// What the sorter reports, read in one go.
#[derive(Debug, Clone)]
pub struct SorterView {
    /// Detection runs (when streaming).
    pub on: bool,
    /// What it is doing.
    pub phase: SorterPhase,
    /// The last thing that happened.
    pub message: String,
    /// Seconds since its statistics window started.
    pub window_seconds: f64,
    /// Per channel: spikes in the window, the noise estimate (µV) and whether detection is
    /// enabled. Empty counts and noise when no stream runs.
    pub spikes: Vec<u64>,
    /// Per channel noise estimate, µV, where known.
    pub noise_uv: Vec<Option<f32>>,
    /// Per channel: detection enabled by its parameters.
    pub enabled: Vec<bool>,
    /// Spikes detected since the stream started (all channels).
    pub spikes_total: u64,
}

impl Engine {
    /// Every stage's filter entries.
    pub fn dsp_settings(&self) -> DspSettings {
        self.lock().processing.dsp().clone()
    }

    /// Replaces `stage`'s entries. The hardware and stage-1 filters cannot change while
    /// recording; stage 2 can at any time.
    pub fn set_dsp_stage(&self, stage: DspStage, entries: Vec<DspEntry>) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() && matches!(stage, DspStage::Hardware | DspStage::Stage1) {
            return Err(EngineError::RecordingOn(Blocked::ChangeFilters));
        }
        let description = std::sync::Arc::clone(&st.description);
        st.processing.set_dsp(stage, entries, &description)?;
        tracing::info!(stage = stage.name(), "filters changed");
        Ok(())
    }

    /// Detection settings of every amplifier channel.
    pub fn detect_settings(&self) -> Vec<ChannelDetect> {
        self.lock().processing.detect().to_vec()
    }

    /// Applies detection parameter commands, all or none.
    pub fn update_detect(&self, updates: &[DetectUpdate]) -> Result<(), EngineError> {
        let mut st = self.lock();
        let rate = st.description.sample_rate_hz;
        st.processing.update_detect(updates, rate)?;
        Ok(())
    }

    /// Carries out a sorter command.
    pub fn sorter_command(&self, command: SorterCommand) -> Result<(), EngineError> {
        let mut st = self.lock();
        st.processing.sorter_command(command)?;
        tracing::info!(?command, "sorter command");
        Ok(())
    }

    /// Whether processing runs at all (`processing.detection`).
    pub fn processing_enabled(&self) -> bool {
        self.lock().processing.enabled()
    }

    /// The sorter's state and statistics.
    pub fn sorter_view(&self) -> SorterView {
        let st = self.lock();
        let p = &st.processing;
        let sorter = p.sorter();
        let streaming = st.stream.is_some();
        let outputs = p.outputs();
        let channels = p.detect().len();
        let (spikes, noise_uv, spikes_total) = match &outputs {
            Some(o) => (
                (0..channels).map(|c| sorter.spikes_in_window(c, o.detector.spikes(c))).collect(),
                (0..channels).map(|c| o.detector.noise_uv(c)).collect(),
                o.detector.spikes_total(),
            ),
            None => (vec![0; channels], vec![None; channels], 0),
        };
        SorterView {
            on: sorter.is_on(),
            phase: sorter.phase(streaming),
            message: sorter.message().to_string(),
            window_seconds: sorter.window_seconds(),
            spikes,
            noise_uv,
            enabled: p.detect().iter().map(|d| d.params(sorter.is_on()).enabled).collect(),
            spikes_total,
        }
    }

    /// Wall-clock time of the running stream's first frame.
    pub fn stream_started_at(&self) -> Option<std::time::SystemTime> {
        self.view().stream_started_at
    }

    /// The running stream's spike ring, filtered cache and detector read-outs (none when
    /// not streaming or processing is off).
    pub fn processing_outputs(&self) -> Option<ProcessingOutputs> {
        self.view().processing.clone()
    }
}

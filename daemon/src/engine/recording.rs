//! Recording: the recording config, starting, stopping and finalizing recordings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ephysd_drivers::AMPLIFIER_UV_PER_UNIT;
use ephysd_hdf5::{recording_file_name, RecordingMeta, RecordingSummary};

use super::{Blocked, Engine, EngineError, State};
use crate::config::{validate_base_name, RecordingSettings};
use crate::recorder::{ActiveRecording, StopAt};

/// The recording settings clients can read and change (Allego's "recording config").
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// Directory recordings are written to.
    pub base_path: PathBuf,
    /// File name stem.
    pub base_name: String,
    /// Append a running index to each name.
    pub index: bool,
    /// Append the UTC start time to each name.
    pub timestamp: bool,
    /// Allego's data-source index; kept and reported back, not used for naming.
    pub datasource_idx: i32,
}

impl From<&RecordingSettings> for RecordingConfig {
    fn from(r: &RecordingSettings) -> Self {
        RecordingConfig {
            base_path: r.base_path.clone(),
            base_name: r.base_name.clone(),
            index: r.index,
            timestamp: r.timestamp,
            datasource_idx: 0,
        }
    }
}

impl Engine {
    /// Starts a recording of the stream (starting the stream first if it is off). Returns the
    /// file; a recording already running is kept and its file returned.
    pub fn start_recording(&self) -> Result<PathBuf, EngineError> {
        let mut st = self.lock();
        if let Some(r) = &st.recording {
            return Ok(r.path().to_path_buf());
        }
        self.start_stream_locked(&mut st)?;
        let result = self.start_recording_locked(&mut st);
        self.publish(&st);
        result
    }

    fn start_recording_locked(&self, st: &mut State) -> Result<PathBuf, EngineError> {
        let cache = Arc::clone(&st.stream.as_ref().expect("the stream was just started").cache);
        let cfg = st.recording_config.clone();
        std::fs::create_dir_all(&cfg.base_path)
            .map_err(|source| EngineError::RecordingDirectory { path: cfg.base_path.clone(), source })?;
        let (path, index) = next_free_path(&cfg, st.next_index)?;
        let meta = RecordingMeta {
            frames_per_second: cache.sample_rate_hz(),
            channel_count: cache.layout().amplifier_channels,
            uv_per_sample_unit: AMPLIFIER_UV_PER_UNIT,
            application: format!("ephysd {}", crate::VERSION),
            device: self.description.name.clone(),
        };
        let recording = ActiveRecording::start(
            cache,
            &path,
            meta,
            Arc::clone(&self.counters),
            self.description.free_running,
            self.recorder_ended.0.clone(),
        )?;
        st.next_index = index + 1;
        st.recording = Some(recording);
        st.last_error = None;
        tracing::info!(path = %path.display(), "recording started");
        self.notifier.status(&format!("recording: {}", path.display()));
        Ok(path)
    }

    /// Stops the recording (if any) and finalizes its file.
    pub fn stop_recording(&self) -> Result<Option<RecordingSummary>, EngineError> {
        let mut st = self.lock();
        let head = st.stream.as_ref().map_or(0, |s| s.cache.head());
        let result = self.finish_recording_locked(&mut st, StopAt::Frame(head));
        self.publish(&st);
        result
    }

    /// Finalizes the running recording (if any) at `at`. Holds the state lock, so no other
    /// transition interleaves; status keeps answering from the published view meanwhile.
    pub(super) fn finish_recording_locked(
        &self,
        st: &mut State,
        at: StopAt,
    ) -> Result<Option<RecordingSummary>, EngineError> {
        let Some(recording) = st.recording.take() else {
            return Ok(None);
        };
        let path = recording.path().to_path_buf();
        match recording.stop(at) {
            Ok(summary) => {
                tracing::info!(path = %path.display(), frames = summary.duration_frames, "recording finalized");
                self.notifier.status(&format!("streaming: recording finalized {}", path.display()));
                Ok(Some(summary))
            }
            Err(e) => {
                self.set_error(st, format!("recording {} failed: {e}", path.display()));
                Err(e.into())
            }
        }
    }

    /// Ends a recording whose recorder thread stopped on its own (a write failed).
    pub(super) fn recorder_ended(&self, path: &Path) {
        let mut st = self.lock();
        if st.recording.as_ref().map(|r| r.path()) != Some(path) {
            return;
        }
        // The error is recorded in status by finishing; nothing else can be done with it here.
        let _ = self.finish_recording_locked(&mut st, StopAt::Now);
        self.publish(&st);
    }

    /// The current recording config.
    pub fn recording_config(&self) -> RecordingConfig {
        self.view().recording_config.clone()
    }

    /// Replaces the recording config; refused while recording or for a path that is missing.
    pub fn set_recording_config(&self, cfg: RecordingConfig) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() {
            return Err(EngineError::RecordingOn(Blocked::ChangeRecordingConfig));
        }
        validate_base_name(&cfg.base_name).map_err(|e| EngineError::InvalidArgument {
            field: "baseFileName",
            value: cfg.base_name.clone(),
            allowed: e.to_string(),
        })?;
        if !cfg.base_path.is_dir() {
            return Err(EngineError::InvalidArgument {
                field: "baseFilePath",
                value: cfg.base_path.display().to_string(),
                allowed: "an existing directory".into(),
            });
        }
        st.recording_config = cfg;
        self.publish(&st);
        Ok(())
    }

    /// Applies the recording keys that are safe to change live; returns what changed.
    pub fn reload_recording(&self, r: &RecordingSettings) -> Vec<String> {
        let mut st = self.lock();
        let mut applied = Vec::new();
        let c = &mut st.recording_config;
        if c.base_path != r.base_path {
            applied.push(format!("recording.base_path = {}", r.base_path.display()));
            c.base_path = r.base_path.clone();
        }
        if c.base_name != r.base_name {
            applied.push(format!("recording.base_name = {}", r.base_name));
            c.base_name = r.base_name.clone();
        }
        if c.index != r.index {
            applied.push(format!("recording.index = {}", r.index));
            c.index = r.index;
        }
        if c.timestamp != r.timestamp {
            applied.push(format!("recording.timestamp = {}", r.timestamp));
            c.timestamp = r.timestamp;
        }
        if !applied.is_empty() && st.recording.is_some() {
            applied.push("(the running recording keeps its file; the change applies to the next one)".into());
        }
        self.publish(&st);
        applied
    }
}

/// The first file name from `start_index` on that does not exist yet: recordings are never
/// overwritten. Without an index, an existing name is an error the client sees.
fn next_free_path(cfg: &RecordingConfig, start_index: u32) -> Result<(PathBuf, u32), EngineError> {
    let stamp = cfg.timestamp.then(chrono::Utc::now);
    let name_for = |index: Option<u32>| {
        recording_file_name(&cfg.base_name, index, stamp).map_err(|e| EngineError::InvalidArgument {
            field: "baseFileName",
            value: cfg.base_name.clone(),
            allowed: e.to_string(),
        })
    };
    if !cfg.index {
        let path = cfg.base_path.join(name_for(None)?);
        if path.exists() {
            return Err(EngineError::FileExists { path });
        }
        return Ok((path, start_index));
    }
    for index in start_index..=start_index.saturating_add(100_000) {
        let path = cfg.base_path.join(name_for(Some(index))?);
        if !path.exists() {
            return Ok((path, index));
        }
    }
    Err(EngineError::NoFreeIndex { dir: cfg.base_path.clone() })
}

//! Reading recordings back (tests, `ephysd inspect`).

use std::path::{Path, PathBuf};

use hdf5::{Dataset, File, H5Type};

use crate::layout::{self, attr};
use crate::rows::{ChannelRow, DataStreamIndexRow, GapRow, GroundTruthRow, SpikeRow, StimRow};
use crate::{attrs, RecordingError};

/// Everything the root attributes and dataset shapes say about a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// The file this was read from.
    pub path: PathBuf,
    /// Frames per second per channel.
    pub frames_per_second: f64,
    /// Columns of `/samples` (channels of the recording).
    pub channel_count: usize,
    /// Microvolts per sample unit.
    pub uv_per_sample_unit: f64,
    /// Device frame index of the first frame.
    pub start_timestamp: u64,
    /// Device frame index one past the last frame (as of the last flush).
    pub end_timestamp: u64,
    /// `end_timestamp - start_timestamp`.
    pub duration_frames: u64,
    /// `duration_frames / frames_per_second`.
    pub duration_seconds: f64,
    /// ISO-8601 UTC creation time.
    pub created_utc: String,
    /// ISO-8601 UTC close time; empty if the file was never closed cleanly.
    pub ended_utc: String,
    /// The software that wrote it.
    pub software_version: String,
    /// The device the samples came from.
    pub device: String,
    /// The device's serial number, empty if none.
    pub device_serial: String,
    /// JSON: the headstage or chip on each port.
    pub chips_json: String,
    /// JSON: the configuration the recording was made with.
    pub config_json: String,
    /// `continuous`, `spikes` or `continuous_and_spikes`.
    pub recording_type: String,
    /// The port the file holds, empty for all ports.
    pub port: String,
    /// The file's place in its recording (rollover).
    pub file_sequence: u32,
    /// Rows in `/gaps`.
    pub gap_count: u64,
    /// Whether the writer closed the file cleanly.
    pub closed_cleanly: bool,
    /// When `ephysd recover` closed it, empty if it was not recovered.
    pub recovered_utc: String,
    /// The file is still marked open for writing (being recorded, or its writer died and it
    /// has not been recovered): it was opened in SWMR read mode.
    pub open_for_writing: bool,
    /// Rows of `/samples` (0 for a spikes-only recording).
    pub frames: u64,
    /// Columns of `/analog_in` (0 if absent).
    pub analog_in_channels: usize,
    /// Whether `/digital_in` and `/digital_out` are present.
    pub digital: bool,
    /// Rows of `/spikes`.
    pub spikes: u64,
    /// Rows of `/stims`.
    pub stims: u64,
    /// Rows of `/ground_truth` (`None` if the file has no such table).
    pub ground_truth: Option<u64>,
    /// Each data stream's name and entry count.
    pub data_streams: Vec<(String, u64)>,
}

/// Read access to a recording file.
#[derive(Debug)]
pub struct RecordingReader {
    info: RecordingInfo,
    file: File,
}

fn scalar<T: H5Type>(file: &File, path: &Path, name: &'static str) -> Result<T, RecordingError> {
    let format = |reason: String| RecordingError::Format { path: path.to_path_buf(), reason };
    let attribute = file.attr(name).map_err(|_| format(format!("missing root attribute {name}")))?;
    attribute.read_scalar().map_err(|e| format(format!("root attribute {name}: {e}")))
}

fn text_attr(file: &File, path: &Path, name: &'static str) -> Result<String, RecordingError> {
    attrs::read_str(file, name)
        .map_err(|e| RecordingError::Format { path: path.to_path_buf(), reason: format!("root attribute {name}: {e}") })
}

fn rows_of(file: &File, name: &str) -> Option<u64> {
    file.dataset(name).ok().map(|d| d.shape().first().copied().unwrap_or(0) as u64)
}

impl RecordingReader {
    /// Opens a recording read-only and reads its attributes. A file still marked open for
    /// writing is opened in SWMR read mode (and says so in [`RecordingInfo::open_for_writing`]).
    ///
    /// Fails with [`RecordingError::Format`] if an attribute is missing or the shapes disagree
    /// with `channel_count`, so callers can trust `info()`.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let (file, open_for_writing) = match File::open(path) {
            Ok(f) => (f, false),
            Err(plain) => match File::open_as(path, hdf5::file::OpenMode::ReadSWMR) {
                Ok(f) => (f, true),
                Err(_) => return Err(RecordingError::hdf5(path, "open file", plain)),
            },
        };
        let format = |reason: String| RecordingError::Format { path: path.to_path_buf(), reason };
        let text = |name: &'static str| text_attr(&file, path, name);
        let channel_count = scalar::<u32>(&file, path, attr::CHANNEL_COUNT)? as usize;
        let mut frames = 0;
        if let Ok(samples) = file.dataset(layout::SAMPLES) {
            let shape = samples.shape();
            if shape.len() != 2 || shape[1] != channel_count {
                return Err(format(format!(
                    "/{} has shape {shape:?}, expected (frames, {channel_count})",
                    layout::SAMPLES
                )));
            }
            frames = shape[0] as u64;
        }
        let streams = file
            .group(layout::DATA_STREAM)
            .and_then(|g| g.member_names())
            .unwrap_or_default()
            .into_iter()
            .map(|name| {
                let entries = file.dataset(&format!("{}/{name}/{}", layout::DATA_STREAM, layout::DATA_STREAM_INDEX));
                let n = entries.map(|d| d.shape()[0] as u64).unwrap_or(0);
                (name, n)
            })
            .collect();
        let info = RecordingInfo {
            path: path.to_path_buf(),
            frames_per_second: scalar(&file, path, attr::FRAMES_PER_SECOND)?,
            channel_count,
            uv_per_sample_unit: scalar(&file, path, attr::UV_PER_SAMPLE_UNIT)?,
            start_timestamp: scalar(&file, path, attr::START_TIMESTAMP)?,
            end_timestamp: scalar(&file, path, attr::END_TIMESTAMP)?,
            duration_frames: scalar(&file, path, attr::DURATION_FRAMES)?,
            duration_seconds: scalar(&file, path, attr::DURATION_SECONDS)?,
            created_utc: text(attr::CREATED_UTC)?,
            ended_utc: text(attr::ENDED_UTC)?,
            software_version: text(attr::SOFTWARE_VERSION)?,
            device: text(attr::DEVICE)?,
            device_serial: text(attr::DEVICE_SERIAL)?,
            chips_json: text(attr::CHIPS)?,
            config_json: text(attr::CONFIG)?,
            recording_type: text(attr::RECORDING_TYPE)?,
            port: text(attr::PORT)?,
            file_sequence: scalar(&file, path, attr::FILE_SEQUENCE)?,
            gap_count: scalar(&file, path, attr::GAP_COUNT)?,
            closed_cleanly: scalar::<u8>(&file, path, attr::CLOSED_CLEANLY)? == 1,
            recovered_utc: text(attr::RECOVERED_UTC)?,
            open_for_writing,
            frames,
            analog_in_channels: file.dataset(layout::ANALOG_IN).map(|d| d.shape()[1]).unwrap_or(0),
            digital: file.dataset(layout::DIGITAL_IN).is_ok(),
            spikes: rows_of(&file, layout::SPIKES).unwrap_or(0),
            stims: rows_of(&file, layout::STIMS).unwrap_or(0),
            ground_truth: rows_of(&file, layout::GROUND_TRUTH),
            data_streams: streams,
        };
        Ok(Self { info, file })
    }

    /// The attributes and sizes read at open time.
    pub fn info(&self) -> &RecordingInfo {
        &self.info
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.info.path
    }

    /// Rows of `/samples`.
    pub fn frames(&self) -> u64 {
        self.info.frames
    }

    fn dataset(&self, name: &str) -> Result<Dataset, RecordingError> {
        self.file
            .dataset(name)
            .map_err(|_| RecordingError::Format { path: self.info.path.clone(), reason: format!("no /{name}") })
    }

    /// Reads `frames` rows of `/samples` from `start_frame`, frame-major (`frames *
    /// channel_count` values), as stored (× `uv_per_sample_unit` = µV).
    pub fn read_samples(&self, start_frame: u64, frames: usize) -> Result<Vec<i16>, RecordingError> {
        self.read_rows(layout::SAMPLES, start_frame, frames)
    }

    /// Reads `frames` rows of `/analog_in` from `start_frame`, frame-major.
    pub fn read_analog_in(&self, start_frame: u64, frames: usize) -> Result<Vec<u16>, RecordingError> {
        self.read_rows(layout::ANALOG_IN, start_frame, frames)
    }

    /// Reads `frames` device frame indices from row `start`.
    pub fn read_frame_index(&self, start: u64, frames: usize) -> Result<Vec<u64>, RecordingError> {
        self.read_rows(layout::FRAME_INDEX, start, frames)
    }

    /// Reads `frames` digital-input words from row `start`.
    pub fn read_digital_in(&self, start: u64, frames: usize) -> Result<Vec<u16>, RecordingError> {
        self.read_rows(layout::DIGITAL_IN, start, frames)
    }

    /// Reads `frames` digital-output words from row `start`.
    pub fn read_digital_out(&self, start: u64, frames: usize) -> Result<Vec<u16>, RecordingError> {
        self.read_rows(layout::DIGITAL_OUT, start, frames)
    }

    fn read_rows<T: H5Type + Copy>(&self, name: &str, start: u64, frames: usize) -> Result<Vec<T>, RecordingError> {
        let end = start.checked_add(frames as u64);
        let (start, end) = match end {
            Some(end) if end <= self.info.frames => (start as usize, end as usize),
            _ => {
                return Err(RecordingError::OutOfRange {
                    path: self.info.path.clone(),
                    start,
                    end: end.unwrap_or(u64::MAX),
                    available: self.info.frames,
                })
            }
        };
        if start == end {
            return Ok(Vec::new());
        }
        let dataset = self.dataset(name)?;
        let err = |e| RecordingError::hdf5(&self.info.path, "read", e);
        Ok(match dataset.ndim() {
            1 => dataset.read_slice_1d::<T, _>(start..end).map_err(err)?.to_vec(),
            _ => dataset.read_slice_2d::<T, _>((start..end, ..)).map_err(err)?.iter().copied().collect(),
        })
    }

    fn read_table<T: H5Type + Clone>(&self, name: &str) -> Result<Vec<T>, RecordingError> {
        let dataset = self.dataset(name)?;
        dataset.read_raw::<T>().map_err(|e| RecordingError::hdf5(&self.info.path, "read table", e))
    }

    /// Every row of `/spikes` (timestamps in frames from `start_timestamp`).
    pub fn read_spikes(&self) -> Result<Vec<SpikeRow>, RecordingError> {
        self.read_table(layout::SPIKES)
    }

    /// Every row of `/stims`.
    pub fn read_stims(&self) -> Result<Vec<StimRow>, RecordingError> {
        self.read_table(layout::STIMS)
    }

    /// Every row of `/gaps`.
    pub fn read_gaps(&self) -> Result<Vec<GapRow>, RecordingError> {
        self.read_table(layout::GAPS)
    }

    /// Every row of `/channels`.
    pub fn read_channels(&self) -> Result<Vec<ChannelRow>, RecordingError> {
        self.read_table(layout::CHANNELS)
    }

    /// Every row of `/ground_truth`.
    pub fn read_ground_truth(&self) -> Result<Vec<GroundTruthRow>, RecordingError> {
        self.read_table(layout::GROUND_TRUTH)
    }

    /// Every entry of data stream `name`: (frames from `start_timestamp`, its bytes).
    pub fn read_data_stream(&self, name: &str) -> Result<Vec<(i64, Vec<u8>)>, RecordingError> {
        let base = format!("{}/{name}", layout::DATA_STREAM);
        let index: Vec<DataStreamIndexRow> = self.read_table(&format!("{base}/{}", layout::DATA_STREAM_INDEX))?;
        let data: Vec<u8> = self.read_table(&format!("{base}/{}", layout::DATA_STREAM_DATA))?;
        Ok(index.iter().map(|r| (r.timestamp, data[r.start_index as usize..r.end_index as usize].to_vec())).collect())
    }
}

//! Reading recordings back (tests, `ephysd inspect`).

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File, H5Type};

use crate::layout::{self, attr};
use crate::RecordingError;

/// Everything the root attributes and dataset shapes say about a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// The file this was read from.
    pub path: PathBuf,
    /// Frames per second per channel.
    pub frames_per_second: f64,
    /// Columns of `/samples`.
    pub channel_count: usize,
    /// Microvolts per sample unit.
    pub uv_per_sample_unit: f64,
    /// Device frame index of the first row.
    pub start_timestamp: u64,
    /// Device frame index one past the last row (as of the last flush).
    pub end_timestamp: u64,
    /// `end_timestamp - start_timestamp`.
    pub duration_frames: u64,
    /// `duration_frames / frames_per_second`.
    pub duration_seconds: f64,
    /// ISO-8601 UTC creation time.
    pub created_utc: String,
    /// ISO-8601 UTC finish time; empty if the recording was never finished.
    pub ended_utc: String,
    /// Producer, e.g. `"ephysd 0.1.0"`.
    pub application: String,
    /// The device the samples came from.
    pub device: String,
    /// Discontinuities in `/frame_index`.
    pub gap_count: u64,
    /// Whether the writer finished cleanly.
    pub finalized: bool,
    /// Rows stored in the file (the smaller of the two datasets' lengths, should a
    /// crash ever have left them different).
    pub frames: u64,
}

/// Read access to a recording file.
#[derive(Debug)]
pub struct RecordingReader {
    path: PathBuf,
    info: RecordingInfo,
    samples: Dataset,
    frame_index: Dataset,
    // Keeps the file open for the datasets' lifetime.
    _file: File,
}

impl RecordingReader {
    /// Opens a recording read-only and reads its attributes.
    ///
    /// Fails with [`RecordingError::Format`] if a dataset or attribute is missing or
    /// the shapes disagree with `channel_count`, so callers can trust `info()`.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let file = File::open(path).map_err(|e| RecordingError::hdf5(path, "open file", e))?;
        let format = |reason: String| RecordingError::Format { path: path.to_path_buf(), reason };

        let samples =
            file.dataset(layout::SAMPLES).map_err(|_| format(format!("missing dataset /{}", layout::SAMPLES)))?;
        let frame_index = file
            .dataset(layout::FRAME_INDEX)
            .map_err(|_| format(format!("missing dataset /{}", layout::FRAME_INDEX)))?;

        let channel_count: u32 = read_attr(&file, path, attr::CHANNEL_COUNT)?;
        let channel_count = channel_count as usize;
        let shape = samples.shape();
        if shape.len() != 2 || shape[1] != channel_count {
            return Err(format(format!(
                "/{} has shape {shape:?}, expected (frames, {channel_count})",
                layout::SAMPLES
            )));
        }
        let index_shape = frame_index.shape();
        if index_shape.len() != 1 {
            return Err(format(format!("/{} has shape {index_shape:?}, expected (frames,)", layout::FRAME_INDEX)));
        }
        let frames = shape[0].min(index_shape[0]) as u64;

        let finalized: u8 = read_attr(&file, path, attr::FINALIZED)?;
        let info = RecordingInfo {
            path: path.to_path_buf(),
            frames_per_second: read_attr(&file, path, attr::FRAMES_PER_SECOND)?,
            channel_count,
            uv_per_sample_unit: read_attr(&file, path, attr::UV_PER_SAMPLE_UNIT)?,
            start_timestamp: read_attr(&file, path, attr::START_TIMESTAMP)?,
            end_timestamp: read_attr(&file, path, attr::END_TIMESTAMP)?,
            duration_frames: read_attr(&file, path, attr::DURATION_FRAMES)?,
            duration_seconds: read_attr(&file, path, attr::DURATION_SECONDS)?,
            created_utc: read_str_attr(&file, path, attr::CREATED_UTC)?,
            ended_utc: read_str_attr(&file, path, attr::ENDED_UTC)?,
            application: read_str_attr(&file, path, attr::APPLICATION)?,
            device: read_str_attr(&file, path, attr::DEVICE)?,
            gap_count: read_attr(&file, path, attr::GAP_COUNT)?,
            finalized: finalized != 0,
            frames,
        };
        Ok(Self { path: path.to_path_buf(), info, samples, frame_index, _file: file })
    }

    /// The attributes and sizes read at open time.
    pub fn info(&self) -> &RecordingInfo {
        &self.info
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows stored in the file.
    pub fn frames(&self) -> u64 {
        self.info.frames
    }

    /// Reads `frames` frames starting at row `start_frame`, frame-major
    /// (`frames * channel_count` values), as stored (multiply by
    /// `uv_per_sample_unit` for µV).
    pub fn read_samples(&self, start_frame: u64, frames: usize) -> Result<Vec<i16>, RecordingError> {
        let (start, end) = self.check_range(start_frame, frames)?;
        if start == end {
            return Ok(Vec::new());
        }
        let table = self
            .samples
            .read_slice_2d::<i16, _>((start..end, ..))
            .map_err(|e| RecordingError::hdf5(&self.path, "read /samples", e))?;
        Ok(table.iter().copied().collect())
    }

    /// Reads the device frame indices of `frames` rows starting at row `start`.
    pub fn read_frame_index(&self, start: u64, frames: usize) -> Result<Vec<u64>, RecordingError> {
        let (start, end) = self.check_range(start, frames)?;
        if start == end {
            return Ok(Vec::new());
        }
        let column = self
            .frame_index
            .read_slice_1d::<u64, _>(start..end)
            .map_err(|e| RecordingError::hdf5(&self.path, "read /frame_index", e))?;
        Ok(column.iter().copied().collect())
    }

    fn check_range(&self, start: u64, frames: usize) -> Result<(usize, usize), RecordingError> {
        let end = start.checked_add(frames as u64);
        match end {
            Some(end) if end <= self.info.frames => Ok((start as usize, end as usize)),
            _ => Err(RecordingError::OutOfRange {
                path: self.path.clone(),
                start,
                end: end.unwrap_or(u64::MAX),
                available: self.info.frames,
            }),
        }
    }
}

fn read_attr<T: H5Type>(file: &File, path: &Path, name: &'static str) -> Result<T, RecordingError> {
    let attribute = file.attr(name).map_err(|_| RecordingError::Format {
        path: path.to_path_buf(),
        reason: format!("missing root attribute {name}"),
    })?;
    attribute.read_scalar::<T>().map_err(|e| RecordingError::Format {
        path: path.to_path_buf(),
        reason: format!("root attribute {name} has an unexpected type: {e}"),
    })
}

fn read_str_attr(file: &File, path: &Path, name: &'static str) -> Result<String, RecordingError> {
    read_attr::<VarLenUnicode>(file, path, name).map(|s| s.as_str().to_owned())
}

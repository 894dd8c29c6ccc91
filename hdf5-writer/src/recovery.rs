//! Closing a recording whose writer died (SIGKILL, power loss, a failed write): `ephysd
//! recover`, and the daemon at start-up for files left behind.
//!
//! A file written in SWMR mode is consistent whenever its writer stops, but it keeps its
//! "open for writing" mark and its end attributes say only what the last flush knew. Recovery
//! clears the mark, trims the frame-aligned datasets to the rows that are whole (the longest
//! run of rising frame indices from the start: `/frame_index` is written after every other
//! column of a row, so a row with its frame index is complete), and sets the end attributes
//! from what is there. `closed_cleanly` stays 0 and `recovered_utc` records when it was done,
//! so nobody mistakes a recovered file for one closed cleanly.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use hdf5::{Dataset, File};

use crate::layout::{self, attr};
use crate::{attrs, swmr, RecordingError};

/// Rows of `/frame_index` read at a time while looking for the end of the whole rows.
const SCAN_ROWS: usize = 1 << 20;

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryReport {
    /// The file.
    pub path: PathBuf,
    /// It had been closed cleanly: nothing was changed.
    pub already_closed: bool,
    /// Frames the file holds now.
    pub frames: u64,
    /// Rows dropped because they were not whole (written after the last flush).
    pub trimmed_frames: u64,
    /// Seconds of signal the file covers now (gaps included).
    pub duration_seconds: f64,
    /// Rows in `/gaps`.
    pub gap_count: u64,
}

/// Closes the recording at `path` as described in the module documentation. A file that was
/// closed cleanly is left as it is.
pub fn recover(path: &Path) -> Result<RecoveryReport, RecordingError> {
    let file = swmr::open_clearing_mark(path).map_err(|e| RecordingError::hdf5(path, "open for recovery", e))?;
    let format = |reason: String| RecordingError::Format { path: path.to_path_buf(), reason };
    let closed: u8 = attrs::read(&file, attr::CLOSED_CLEANLY)
        .map_err(|_| format(format!("no `{}` attribute: not an ephysd recording", attr::CLOSED_CLEANLY)))?;
    let rate: f64 =
        attrs::read(&file, attr::FRAMES_PER_SECOND).map_err(|e| RecordingError::hdf5(path, "read attributes", e))?;
    let gap_count = file.dataset(layout::GAPS).map(|d| d.shape()[0] as u64).unwrap_or(0);
    let mut report = RecoveryReport {
        path: path.to_path_buf(),
        already_closed: closed == 1,
        frames: 0,
        trimmed_frames: 0,
        duration_seconds: 0.0,
        gap_count,
    };
    let err = |op| move |e| RecordingError::hdf5(path, op, e);
    if let Ok(index) = file.dataset(layout::FRAME_INDEX) {
        let rows = index.shape()[0];
        let (whole, first, last) = whole_rows(&index).map_err(err("read /frame_index"))?;
        report.frames = whole as u64;
        if closed == 1 {
            report.duration_seconds = attrs::read::<f64>(&file, attr::DURATION_SECONDS).unwrap_or(0.0);
            return Ok(report);
        }
        report.trimmed_frames = (rows - whole) as u64;
        if whole < rows {
            trim(&file, whole).map_err(err("trim the frame datasets"))?;
        }
        let (start, end) = if whole > 0 { (first, last + 1) } else { (0, 0) };
        report.duration_seconds = (end - start) as f64 / rate;
        (|| -> hdf5::Result<()> {
            attrs::write(&file, attr::START_TIMESTAMP, &start)?;
            attrs::write(&file, attr::END_TIMESTAMP, &end)?;
            attrs::write(&file, attr::DURATION_FRAMES, &(end - start))?;
            attrs::write(&file, attr::DURATION_SECONDS, &report.duration_seconds)
        })()
        .map_err(err("write the end attributes"))?;
    } else if closed == 1 {
        return Ok(report);
    } else {
        // A spikes-only recording: its span is what the last flush wrote.
        report.duration_seconds = attrs::read::<f64>(&file, attr::DURATION_SECONDS).unwrap_or(0.0);
    }
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    attrs::write(&file, attr::GAP_COUNT, &gap_count)
        .and_then(|()| attrs::write_str(&file, attr::RECOVERED_UTC, &now))
        .and_then(|()| file.flush())
        .map_err(err("write the recovery attributes"))?;
    file.close().map_err(err("close"))?;
    Ok(report)
}

/// The number of whole rows (the run of rising frame indices from row 0), and the first and
/// last frame index of that run.
fn whole_rows(index: &Dataset) -> hdf5::Result<(usize, u64, u64)> {
    let rows = index.shape()[0];
    let (mut first, mut prev) = (0u64, None::<u64>);
    let mut from = 0;
    while from < rows {
        let to = (from + SCAN_ROWS).min(rows);
        let chunk = index.read_slice_1d::<u64, _>(from..to)?;
        for (i, &v) in chunk.iter().enumerate() {
            match prev {
                None => first = v,
                Some(p) if v <= p => return Ok((from + i, first, p)),
                Some(_) => {}
            }
            prev = Some(v);
        }
        from = to;
    }
    Ok((rows, first, prev.unwrap_or(0)))
}

/// Shrinks every frame-aligned dataset to `rows`.
fn trim(file: &File, rows: usize) -> hdf5::Result<()> {
    for name in layout::FRAME_ALIGNED {
        let Ok(dataset) = file.dataset(name) else { continue };
        let mut shape = dataset.shape();
        if shape[0] > rows {
            shape[0] = rows;
            dataset.resize(shape)?;
        }
    }
    Ok(())
}

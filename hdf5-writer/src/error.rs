//! The one error type of this crate.
//!
//! Every variant that touches the file system carries the recording's path and the
//! operation that failed, because the daemon logs these errors far away from the call
//! site (the recorder thread), and "HDF5 error" alone is useless to an operator
//! trying to find out which recording on which disk went wrong.

use std::path::PathBuf;

/// Errors from creating, writing, finishing or reading a recording file.
///
/// `RecordingError` is `Send + Sync + 'static`, so the recorder thread can hand it to
/// the control plane over a channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// A [`RecordingMeta`](crate::RecordingMeta) field is outside what the format and
    /// the hardware support.
    #[error("invalid recording metadata: {field} is {value}, allowed: {allowed}")]
    InvalidMeta {
        /// Name of the offending field.
        field: &'static str,
        /// The value that was rejected, rendered for humans.
        value: String,
        /// The allowed range or rule.
        allowed: &'static str,
    },

    /// A base name passed to [`recording_file_name`](crate::recording_file_name) could
    /// not be used as a single file name.
    #[error("invalid recording base name {name:?}: {reason}")]
    InvalidBaseName {
        /// The rejected base name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The target file already exists. Recordings are never overwritten: losing an
    /// experiment because a file name was reused is worse than failing to start.
    #[error("refusing to overwrite existing recording {}", path.display())]
    AlreadyExists {
        /// The recording path that already exists.
        path: PathBuf,
    },

    /// The directory that should hold the recording does not exist.
    #[error(
        "cannot create recording {}: directory {} does not exist",
        path.display(),
        directory.display()
    )]
    MissingDirectory {
        /// The recording path that was asked for.
        path: PathBuf,
        /// Its parent directory, which is missing.
        directory: PathBuf,
    },

    /// An operating-system level failure (permissions, disk full, ...).
    #[error("{operation} failed for {}: {source}", path.display())]
    Io {
        /// The recording path.
        path: PathBuf,
        /// What was being done, e.g. "create recording file".
        operation: &'static str,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The HDF5 library reported a failure.
    #[error("HDF5 {operation} failed for {}: {source}", path.display())]
    Hdf5 {
        /// The recording path.
        path: PathBuf,
        /// What was being done, e.g. "write /samples".
        operation: &'static str,
        /// The HDF5 error (its message holds the library's error-stack description).
        #[source]
        source: hdf5::Error,
    },

    /// `append` was given a slice whose length does not match `frame_index.len()` frames of
    /// the file's columns.
    #[error("append to {} rejected: {frames} frames of {what} need {expected} values, got {actual}", path.display())]
    SampleCountMismatch {
        /// The recording path.
        path: PathBuf,
        /// Which slice (`samples`, `analog_in`, ...).
        what: &'static str,
        /// Number of frames (length of the frame-index slice).
        frames: usize,
        /// Values expected for them (0 for a dataset the file does not keep).
        expected: usize,
        /// Length of the slice actually passed.
        actual: usize,
    },

    /// The disk has no room for the next write and for closing the file. Nothing was written;
    /// [`RecordingWriter::finish`](crate::RecordingWriter::finish) still closes the file with
    /// every frame appended so far.
    #[error(
        "disk full: {} kept {frames_kept} frames; the next write needed {} MiB and {} MiB was available",
        path.display(),
        needed.div_ceil(1 << 20),
        available >> 20
    )]
    DiskFull {
        /// The recording path.
        path: PathBuf,
        /// Bytes the write and the closing margin needed.
        needed: u64,
        /// Bytes that could be had.
        available: u64,
        /// Frames the recording holds (all of them are kept).
        frames_kept: u64,
    },

    /// The file could grow no larger than a limit (`ulimit -f`, the file system's maximum
    /// file size) too small for a recording file.
    #[error("{}: files can grow to {} MiB here (ulimit -f or the file system's limit), less than the {} MiB a recording file needs", path.display(), limit >> 20, needed >> 20)]
    FileSizeLimit {
        /// The recording path.
        path: PathBuf,
        /// The limit, bytes.
        limit: u64,
        /// The least a recording file needs, bytes.
        needed: u64,
    },

    /// An entry for a data stream the file was not created with.
    #[error("{} has no data stream {name:?} (streams are declared when a file is created)", path.display())]
    UnknownDataStream {
        /// The recording path.
        path: PathBuf,
        /// The stream asked for.
        name: String,
    },

    /// A read asked for frames past the end of the recording.
    #[error(
        "read from {} rejected: frames {start}..{end} out of range (recording has {available} frames)",
        path.display()
    )]
    OutOfRange {
        /// The recording path.
        path: PathBuf,
        /// First requested frame.
        start: u64,
        /// One past the last requested frame.
        end: u64,
        /// Frames stored in the file.
        available: u64,
    },

    /// The file opened but is not laid out as an ephysd recording.
    #[error("{} is not a valid ephysd recording: {reason}", path.display())]
    Format {
        /// The file that was opened.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl RecordingError {
    /// Whether the failure is the disk (or the user's quota) running out of space, however it
    /// surfaced: as an operating-system error, or inside an HDF5 error stack.
    pub fn is_disk_full(&self) -> bool {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        match self {
            RecordingError::DiskFull { .. } => true,
            RecordingError::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
                    || matches!(source.raw_os_error(), Some(ENOSPC | EDQUOT))
            }
            // HDF5's POSIX driver reports the errno of a failed write in its error stack.
            RecordingError::Hdf5 { source, .. } => {
                let text = source.to_string();
                text.contains("No space left on device")
                    || text.contains("errno = 28")
                    || text.contains("Disk quota exceeded")
            }
            _ => false,
        }
    }

    /// The error on one line, for status and logs: HDF5 errors carry the library's whole
    /// error stack, of which the first line says what failed.
    pub fn summary_line(&self) -> String {
        let text = self.to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or_default().to_string();
        if lines.next().is_some() {
            format!("{first} (…)")
        } else {
            first
        }
    }

    pub(crate) fn io(path: &std::path::Path, operation: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), operation, source }
    }

    pub(crate) fn hdf5(path: &std::path::Path, operation: &'static str, source: hdf5::Error) -> Self {
        Self::Hdf5 { path: path.to_path_buf(), operation, source }
    }
}

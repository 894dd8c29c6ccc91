//! Which files a recording writes, and what each holds.
//!
//! A recording writes one file, or one per headstage port when split by port. Every time it
//! starts new files (at the start, at each rollover, at each trigger's rising edge) it takes
//! the next index from the recording config's counter, so file names sort in recording order
//! and no name is ever reused: an existing file is never overwritten.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ephysd_hdf5::{recording_file_name, RecordingError, RecordingMeta, RecordingWriter, RECORDING_EXTENSION};

/// Most indices tried past a taken one before giving up.
const MAX_INDEX_PROBES: u32 = 100_000;

/// One file of a generation: all channels, or one port's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    /// The port's letter (split recordings), or `None` for the whole device.
    pub port: Option<char>,
    /// The port's columns of the device's frame.
    pub columns: Range<usize>,
}

/// How a recording's files are named and what they hold.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// The recording directory.
    pub directory: PathBuf,
    /// File name stem.
    pub base_name: String,
    /// Whether names carry an index (later files of a recording always do).
    pub index: bool,
    /// Whether names carry the UTC time the file was started.
    pub timestamp: bool,
    /// The next index, shared with the recording config so the next recording goes on from it.
    pub next_index: Arc<AtomicU32>,
    /// What a file of all the device's channels holds; a port's file takes its columns.
    pub meta: RecordingMeta,
    /// One entry per file of a generation.
    pub outputs: Vec<OutputPlan>,
}

impl FilePlan {
    /// The paths of the next generation of files, one per output. `first` is the
    /// recording's first generation, the only one that may go without an index.
    pub fn next_paths(&self, first: bool) -> Result<Vec<PathBuf>, RecordingError> {
        let stamp = self.timestamp.then(chrono::Utc::now);
        if first && !self.index {
            let paths = self.paths(None, stamp)?;
            if let Some(taken) = paths.iter().find(|p| p.exists()) {
                return Err(RecordingError::AlreadyExists { path: taken.clone() });
            }
            return Ok(paths);
        }
        for _ in 0..MAX_INDEX_PROBES {
            let index = self.next_index.fetch_add(1, Ordering::Relaxed);
            let paths = self.paths(Some(index), stamp)?;
            if paths.iter().all(|p| !p.exists()) {
                return Ok(paths);
            }
        }
        Err(RecordingError::AlreadyExists { path: self.directory.join(&self.base_name) })
    }

    fn paths(
        &self,
        index: Option<u32>,
        stamp: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<PathBuf>, RecordingError> {
        let name = recording_file_name(&self.base_name, index, stamp)?;
        Ok(self.outputs.iter().map(|o| self.directory.join(with_port(&name, o.port))).collect())
    }

    /// Creates the file of output `output` at `path`, the `sequence`-th of its recording.
    pub fn open(&self, output: usize, path: &Path, sequence: u32) -> Result<RecordingWriter, RecordingError> {
        let plan = &self.outputs[output];
        let mut meta = self.meta.clone();
        if plan.columns.len() != meta.channel_count {
            meta.channel_count = plan.columns.len();
            if !meta.channels.is_empty() {
                meta.channels = meta.channels[plan.columns.clone()].to_vec();
            }
        }
        meta.port = plan.port.map(String::from).unwrap_or_default();
        meta.file_sequence = sequence;
        RecordingWriter::create(path, meta)
    }
}

/// `name.h5` as `name_A.h5` for port A.
fn with_port(name: &str, port: Option<char>) -> String {
    match port {
        Some(letter) => {
            let stem = name.strip_suffix(&format!(".{RECORDING_EXTENSION}")).unwrap_or(name);
            format!("{stem}_{letter}.{RECORDING_EXTENSION}")
        }
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path, index: bool, ports: &[Option<char>]) -> FilePlan {
        FilePlan {
            directory: dir.to_path_buf(),
            base_name: "rat".into(),
            index,
            timestamp: false,
            next_index: Arc::new(AtomicU32::new(1)),
            meta: RecordingMeta::new(30_000.0, 8, 0.195),
            outputs: ports
                .iter()
                .enumerate()
                .map(|(i, &port)| OutputPlan { port, columns: i * 4..i * 4 + 4 })
                .collect(),
        }
    }

    #[test]
    fn generations_take_the_next_free_index_and_ports_share_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), true, &[Some('A'), Some('B')]);
        let names = |paths: Vec<PathBuf>| {
            paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names(p.next_paths(true).unwrap()), ["rat_0001_A.h5", "rat_0001_B.h5"]);
        std::fs::write(dir.path().join("rat_0003_B.h5"), b"taken").unwrap();
        assert_eq!(names(p.next_paths(false).unwrap()), ["rat_0002_A.h5", "rat_0002_B.h5"]);
        assert_eq!(names(p.next_paths(false).unwrap()), ["rat_0004_A.h5", "rat_0004_B.h5"], "a taken name is skipped");
    }

    #[test]
    fn without_an_index_only_the_first_file_goes_unnumbered_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), false, &[None]);
        let first = p.next_paths(true).unwrap();
        assert_eq!(first[0].file_name().unwrap(), "rat.h5");
        assert_eq!(p.next_paths(false).unwrap()[0].file_name().unwrap(), "rat_0001.h5");
        std::fs::write(&first[0], b"x").unwrap();
        assert!(matches!(p.next_paths(true), Err(RecordingError::AlreadyExists { .. })));
    }
}

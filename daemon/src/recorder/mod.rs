//! The recorder: a thread that follows the primary cache and writes recordings.
//!
//! It reads the cache like any other consumer, so a slow disk can never stall acquisition: if
//! the recorder falls more than the cache length behind, it is told how many frames it lost,
//! and the file records that as a gap (`/gaps`, reason "recorder overrun") and goes on.
//!
//! One recording writes one file, or one per port when split by port ([`files`]); rolls over
//! to the next file by size or duration with the frame numbering continuous across the seam;
//! and with digital triggers ([`trigger`]) writes a file per trigger window, frame-exact. A
//! full disk ends the recording cleanly: the writer refuses the write that would not fit and
//! closes every file inside the room it reserved earlier; a failed write ends it too, and the
//! file is recovered on the spot. Either way the control plane hears of it
//! ([`RecorderEvent::Ended`]) and acquisition goes on.

mod files;
mod session;
mod spikes;
pub mod trigger;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use ephysd_drivers::GroundTruth;
use ephysd_hdf5::{RecordingError, RecordingSummary};
use ephysd_pipeline::{PipelineCounters, PrimaryCache};

pub use files::{FilePlan, OutputPlan};
pub use spikes::SpikeFeed;
pub use trigger::{DigitalLine, Trigger};

/// Where a recording stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// At the frame with this cache sequence number (the cache head when the stop was asked):
    /// everything published before it is recorded first.
    Frame(u64),
    /// At once, with whatever has been written so far.
    Now,
}

impl StopAt {
    fn sequence(self) -> u64 {
        match self {
            StopAt::Frame(seq) => seq,
            StopAt::Now => 0,
        }
    }
}

/// When a file is closed and the next one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollover {
    /// After the file reaches this many bytes.
    pub max_bytes: Option<u64>,
    /// After the file covers this many frames.
    pub max_frames: Option<u64>,
}

/// Why a file was closed while its recording went on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// It reached the rollover size or duration; the next file continues it.
    Rollover,
    /// Its trigger line fell.
    Trigger,
}

/// A recording that ended on its own: the full disk or the failed write, and what each file
/// kept. On a full disk every file was closed with all it had; after a failed write each was
/// recovered up to its last whole frame.
#[derive(Debug)]
pub struct RecordingFailure {
    /// What ended it.
    pub error: RecordingError,
    /// Each file and the frames it holds.
    pub kept: Vec<(PathBuf, u64)>,
}

impl RecordingFailure {
    /// Whether the disk was full (as opposed to a write failing).
    pub fn is_disk_full(&self) -> bool {
        self.error.is_disk_full()
    }

    /// One line for status and the journal: what happened, which file, how much was kept.
    pub fn summary_line(&self) -> String {
        let kept: Vec<String> =
            self.kept.iter().map(|(p, frames)| format!("{} kept {frames} frames", p.display())).collect();
        let kept = if kept.is_empty() { "nothing was written".to_string() } else { kept.join(", ") };
        if self.is_disk_full() {
            format!("recording stopped: disk full; {kept}")
        } else {
            format!("recording stopped: {}; {kept} (recovered up to the last whole frame)", self.error.summary_line())
        }
    }
}

impl std::fmt::Display for RecordingFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary_line())
    }
}

impl std::error::Error for RecordingFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What the recorder tells the control plane, as it happens.
#[derive(Debug)]
pub enum RecorderEvent {
    /// A file was opened.
    FileOpened {
        /// The file.
        path: PathBuf,
    },
    /// A file was closed while the recording went on.
    FileClosed {
        /// What it holds.
        summary: RecordingSummary,
        /// Why.
        reason: CloseReason,
    },
    /// Frames are missing from a file (`/gaps` has the details).
    Gap {
        /// The file.
        path: PathBuf,
        /// Frames the recorder lost falling behind the cache (0: the device dropped them).
        overrun_frames: u64,
    },
    /// The recording ended without being asked to; every file is closed (stopping it returns
    /// the [`RecordingFailure`]).
    Ended {
        /// The recording's first file, as the control plane knows it.
        path: PathBuf,
    },
}

/// Live progress of a recording, readable without touching the recorder.
#[derive(Debug)]
pub struct RecordingProgress {
    frames: AtomicU64,
    sample_rate_hz: f64,
    files: RwLock<Arc<Vec<PathBuf>>>,
}

impl RecordingProgress {
    fn new(sample_rate_hz: f64) -> Self {
        RecordingProgress { frames: AtomicU64::new(0), sample_rate_hz, files: RwLock::new(Arc::new(Vec::new())) }
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Seconds of signal written so far.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate_hz
    }

    /// The files open now (none while a triggered recording waits for its trigger).
    pub fn files(&self) -> Arc<Vec<PathBuf>> {
        Arc::clone(&self.files.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn set_files(&self, files: Vec<PathBuf>) {
        *self.files.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(files);
    }
}

/// Everything a recording needs, built by the control plane.
pub struct RecordingPlan {
    /// The stream's primary cache.
    pub cache: Arc<PrimaryCache>,
    /// The files and what they hold.
    pub files: FilePlan,
    /// Digital lines that gate recording (none: record all the time).
    pub triggers: Vec<Trigger>,
    /// When to start the next file.
    pub rollover: Rollover,
    /// How often everything written is flushed to disk, bounding what a crash can take.
    pub flush_interval: Duration,
    /// The device's ground truth, kept in `/ground_truth` (simulated device).
    pub ground_truth: Option<Arc<dyn GroundTruth>>,
    /// The detector's spikes, kept in `/spikes` (none: processing is off).
    pub spikes: Option<SpikeFeed>,
    /// Hold a consumer-paced stream to the recorder's pace (accelerated tests, benchmarks).
    pub pace_acquisition: bool,
    /// The pipeline's counters (frames recorded, overruns, write errors).
    pub counters: Arc<PipelineCounters>,
    /// Where events go.
    pub events: Sender<RecorderEvent>,
    /// The last device frame of the recording this one continues after the device went away
    /// and came back: each first file records the jump from it in `/gaps`, and the recording
    /// takes the resumed stream from its first frame.
    pub follows: Option<u64>,
}

/// A running recording. Dropping it without [`ActiveRecording::stop`] still closes its files.
pub struct ActiveRecording {
    path: PathBuf,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    progress: Arc<RecordingProgress>,
    thread: Option<JoinHandle<Result<Vec<RecordingSummary>, RecordingFailure>>>,
}

impl ActiveRecording {
    /// Starts recording at the cache's newest frame. Without triggers the first files are
    /// created now, so a bad path or a taken name fails the request that asked for it.
    pub fn start(plan: RecordingPlan) -> Result<Self, RecordingError> {
        let progress = Arc::new(RecordingProgress::new(plan.cache.sample_rate_hz()));
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let stop_requested = Arc::new(AtomicBool::new(false));
        let session =
            session::Session::new(plan, Arc::clone(&stop_at), Arc::clone(&stop_requested), Arc::clone(&progress))?;
        let path = session.first_path();
        let thread = std::thread::Builder::new()
            .name("ephysd-recorder".into())
            .spawn(move || session.run())
            .map_err(|e| RecordingError::Io { path: path.clone(), operation: "start recorder thread", source: e })?;
        Ok(ActiveRecording { path, stop_at, stop_requested, progress, thread: Some(thread) })
    }

    /// The recording's first file (the name it is known by).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Live progress, shared with whoever reports status.
    pub fn progress(&self) -> &Arc<RecordingProgress> {
        &self.progress
    }

    /// Records everything up to `at`, then closes every file. Returns what the files closed at
    /// the end hold; a recording that ended on its own returns how.
    pub fn stop(mut self, at: StopAt) -> Result<Vec<RecordingSummary>, RecordingFailure> {
        self.finish(at)
    }

    fn finish(&mut self, at: StopAt) -> Result<Vec<RecordingSummary>, RecordingFailure> {
        self.stop_at.store(at.sequence(), Ordering::Release);
        self.stop_requested.store(true, Ordering::Release);
        let failure = |operation, message: &str| RecordingFailure {
            error: RecordingError::Io {
                path: self.path.clone(),
                operation,
                source: std::io::Error::other(message.to_string()),
            },
            kept: Vec::new(),
        };
        match self.thread.take() {
            Some(t) => {
                // Wake it now rather than at the end of its idle wait.
                t.thread().unpark();
                t.join().unwrap_or_else(|_| Err(failure("record", "recorder thread panicked")))
            }
            None => Err(failure("stop", "already stopped")),
        }
    }
}

impl Drop for ActiveRecording {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish(StopAt::Now);
        }
    }
}

/// Recovers every recording in `dir` that a crash left open (still marked open for writing,
/// or never closed and never recovered), so it opens in any HDF5 reader. Files that are not
/// recordings are left alone. Returns what was done to each file it touched.
pub fn recover_unclosed(dir: &Path) -> Vec<(PathBuf, Result<ephysd_hdf5::RecoveryReport, RecordingError>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ephysd_hdf5::RECORDING_EXTENSION))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| {
            ephysd_hdf5::RecordingReader::open(p).is_ok_and(|r| {
                r.info().open_for_writing || (!r.info().closed_cleanly && r.info().recovered_utc.is_empty())
            })
        })
        .map(|p| {
            let report = ephysd_hdf5::recover(&p);
            (p, report)
        })
        .collect()
}

//! The recorder thread: follows the primary cache and writes what it reads to an HDF5 file.
//!
//! It reads the cache like any other consumer, so a slow disk can never stall acquisition: if
//! the recorder falls more than the cache length behind, it is told how many frames it lost,
//! counts them, logs them, and the recording shows the jump in its `/frame_index`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ephysd_hdf5::{RecordingError, RecordingMeta, RecordingSummary, RecordingWriter};
use ephysd_pipeline::{CacheReader, PipelineCounters, PrimaryCache, ReadOutcome};

/// How often buffered frames are flushed to disk, bounding what a crash can take.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the recorder sleeps when it has caught up with the writer.
const IDLE_WAIT: Duration = Duration::from_millis(2);
/// Most frames taken from the cache per read (fewer when the writer's batch has less room):
/// large enough that per-read overhead vanishes, small enough to stay in the CPU's caches
/// (2 MiB at 1024 channels).
const READ_FRAMES: usize = 1024;

/// Where a recording stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// At the frame with this cache sequence number (the cache head when the stop was asked):
    /// everything published before it is recorded first.
    Frame(u64),
    /// At once, with whatever has been written so far (the recording already failed, or the
    /// stream is gone).
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

/// Told to the control plane when a recorder thread ends on its own (a write failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderEnded {
    /// The recording's file.
    pub path: PathBuf,
}

/// Live progress of a recording, readable without touching the recorder.
#[derive(Debug)]
pub struct RecordingProgress {
    frames: AtomicU64,
    sample_rate_hz: f64,
}

impl RecordingProgress {
    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Seconds of signal written so far.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate_hz
    }
}

/// A running recording. Dropping it without [`ActiveRecording::stop`] still finalizes the file.
pub struct ActiveRecording {
    path: PathBuf,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    progress: Arc<RecordingProgress>,
    thread: Option<JoinHandle<Result<RecordingSummary, RecordingError>>>,
}

impl ActiveRecording {
    /// Creates the file now (so a bad path fails the request that asked for it) and starts
    /// the recorder thread at the cache's newest frame. If the thread ends on its own (a write
    /// failed), it says so on `ended`.
    pub fn start(
        cache: Arc<PrimaryCache>,
        path: &Path,
        meta: RecordingMeta,
        counters: Arc<PipelineCounters>,
        pace_acquisition: bool,
        ended: Sender<RecorderEnded>,
    ) -> Result<Self, RecordingError> {
        let progress =
            Arc::new(RecordingProgress { frames: AtomicU64::new(0), sample_rate_hz: meta.frames_per_second });
        let writer = RecordingWriter::create(path, meta)?;
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let stop_requested = Arc::new(AtomicBool::new(false));
        let reader = cache.reader_at_head();
        if pace_acquisition {
            cache.set_pace_gate(reader.position());
        }
        let job = RecorderJob {
            cache,
            reader,
            writer,
            stop_at: Arc::clone(&stop_at),
            stop_requested: Arc::clone(&stop_requested),
            progress: Arc::clone(&progress),
            counters,
            pace_acquisition,
            ended,
        };
        let thread =
            std::thread::Builder::new().name("ephysd-recorder".into()).spawn(move || job.run()).map_err(|e| {
                RecordingError::Io { path: path.to_path_buf(), operation: "start recorder thread", source: e }
            })?;
        Ok(ActiveRecording { path: path.to_path_buf(), stop_at, stop_requested, progress, thread: Some(thread) })
    }

    /// The recording's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Live progress, shared with whoever reports status.
    pub fn progress(&self) -> &Arc<RecordingProgress> {
        &self.progress
    }

    /// Records everything up to `at`, then finalizes the file. A recording whose writer
    /// already failed returns that failure.
    pub fn stop(mut self, at: StopAt) -> Result<RecordingSummary, RecordingError> {
        self.finish(at)
    }

    fn finish(&mut self, at: StopAt) -> Result<RecordingSummary, RecordingError> {
        self.stop_at.store(at.sequence(), Ordering::Release);
        self.stop_requested.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(RecordingError::Io {
                    path: self.path.clone(),
                    operation: "record",
                    source: std::io::Error::other("recorder thread panicked"),
                })
            }),
            None => Err(RecordingError::Io {
                path: self.path.clone(),
                operation: "stop",
                source: std::io::Error::other("already stopped"),
            }),
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

struct RecorderJob {
    cache: Arc<PrimaryCache>,
    reader: CacheReader,
    writer: RecordingWriter,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    progress: Arc<RecordingProgress>,
    counters: Arc<PipelineCounters>,
    pace_acquisition: bool,
    ended: Sender<RecorderEnded>,
}

impl RecorderJob {
    fn run(mut self) -> Result<RecordingSummary, RecordingError> {
        let result = self.record();
        if self.pace_acquisition {
            self.cache.clear_pace_gate();
        }
        match result {
            Ok(()) => self.writer.finish(),
            Err(e) => {
                PipelineCounters::add(&self.counters.recording_write_errors, 1);
                let path = self.writer.path().to_path_buf();
                tracing::error!(path = %path.display(), "recording failed: {e}");
                // The writer closes the file with what reached it when the job is dropped; the
                // error goes to whoever joins this thread, once the control plane is told.
                let _ = self.ended.send(RecorderEnded { path });
                Err(e)
            }
        }
    }

    fn record(&mut self) -> Result<(), RecordingError> {
        let mut last_flush = Instant::now();
        loop {
            let stopping = self.stop_requested.load(Ordering::Acquire);
            let stop_at = self.stop_at.load(Ordering::Acquire);
            if stopping && self.reader.position() >= stop_at {
                return Ok(());
            }
            // Frames go from the cache straight into the writer's batch buffer.
            let (cache, reader) = (&self.cache, &mut self.reader);
            let mut outcome = ReadOutcome::default();
            let recorded = self.writer.append_with(READ_FRAMES, |frame_index, samples| {
                outcome = reader.read_amplifier(cache, frame_index, samples);
                let mut n = outcome.frames;
                if stopping {
                    // Do not record past the frame the stop was asked at.
                    let past = reader.position().saturating_sub(stop_at) as usize;
                    n = n.saturating_sub(past);
                }
                n
            })?;
            if self.pace_acquisition {
                self.cache.set_pace_gate(self.reader.position());
            }
            if outcome.lost > 0 {
                PipelineCounters::add(&self.counters.recorder_overrun_frames, outcome.lost);
                tracing::warn!(
                    lost_frames = outcome.lost,
                    "recorder fell behind the primary cache; the gap shows in /frame_index"
                );
            }
            if outcome.frames == 0 {
                if stopping {
                    // Nothing more will arrive (the stream stopped before stop_at was reached).
                    return Ok(());
                }
                std::thread::sleep(IDLE_WAIT);
                continue;
            }
            self.progress.frames.fetch_add(recorded as u64, Ordering::Relaxed);
            PipelineCounters::add(&self.counters.frames_recorded, recorded as u64);
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.writer.flush()?;
                last_flush = Instant::now();
            }
        }
    }
}

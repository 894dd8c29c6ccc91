//! The recorder thread: follows the primary cache and writes what it reads to an HDF5 file.
//!
//! It reads the cache like any other consumer, so a slow disk can never stall acquisition: if
//! the recorder falls more than the cache length behind, it is told how many frames it lost,
//! counts them, logs them, and the recording shows the jump in its `/frame_index`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ephysd_hdf5::{RecordingError, RecordingMeta, RecordingSummary, RecordingWriter};

use crate::core::{PipelineCounters, PrimaryCache, ReadOutcome};

/// How often buffered frames are flushed to disk, bounding what a crash can take.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the recorder sleeps when it has caught up with the writer.
const IDLE_WAIT: Duration = Duration::from_millis(2);
/// Most frames taken from the cache per read (fewer when the writer's batch has less room):
/// large enough that per-read overhead vanishes, small enough to stay in the CPU's caches
/// (2 MiB at 1024 channels).
const READ_FRAMES: usize = 1024;

/// A running recording. Dropping it without [`ActiveRecording::stop`] still finalizes the file.
pub struct ActiveRecording {
    path: PathBuf,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    sample_rate_hz: f64,
    thread: Option<JoinHandle<Result<RecordingSummary, RecordingError>>>,
}

impl ActiveRecording {
    /// Creates the file now (so a bad path fails the request that asked for it) and starts
    /// the recorder thread at the cache's newest frame.
    pub fn start(
        cache: Arc<PrimaryCache>,
        path: &Path,
        meta: RecordingMeta,
        counters: Arc<PipelineCounters>,
        pace_acquisition: bool,
    ) -> Result<Self, RecordingError> {
        let sample_rate_hz = meta.frames_per_second;
        let writer = RecordingWriter::create(path, meta)?;
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let stop_requested = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
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
            frames: Arc::clone(&frames),
            error: Arc::clone(&error),
            counters,
            pace_acquisition,
        };
        let thread = std::thread::Builder::new()
            .name("ephysd-recorder".into())
            .spawn(move || job.run())
            .map_err(|e| RecordingError::Io { path: path.to_path_buf(), operation: "start recorder thread", source: e })?;
        Ok(ActiveRecording {
            path: path.to_path_buf(),
            stop_at,
            stop_requested,
            frames,
            error,
            sample_rate_hz,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds of signal written so far.
    pub fn duration_seconds(&self) -> f64 {
        self.frames.load(Ordering::Relaxed) as f64 / self.sample_rate_hz
    }

    /// The write error that ended this recording early, if any.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Whether the recorder thread has ended (stopped or failed).
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Records everything published up to `head` (the cache head when stop was asked), then
    /// finalizes the file.
    pub fn stop(mut self, head: u64) -> Result<RecordingSummary, RecordingError> {
        self.finish(head)
    }

    fn finish(&mut self, head: u64) -> Result<RecordingSummary, RecordingError> {
        self.stop_at.store(head, Ordering::Release);
        self.stop_requested.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(RecordingError::Io { path: self.path.clone(), operation: "record", source: std::io::Error::other("recorder thread panicked") })
            }),
            None => Err(RecordingError::Io { path: self.path.clone(), operation: "stop", source: std::io::Error::other("already stopped") }),
        }
    }
}

impl Drop for ActiveRecording {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish(0);
        }
    }
}

struct RecorderJob {
    cache: Arc<PrimaryCache>,
    reader: crate::core::CacheReader,
    writer: RecordingWriter,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    counters: Arc<PipelineCounters>,
    pace_acquisition: bool,
}

impl RecorderJob {
    fn run(mut self) -> Result<RecordingSummary, RecordingError> {
        let result = self.record();
        if self.pace_acquisition {
            self.cache.clear_pace_gate();
        }
        if let Err(e) = &result {
            PipelineCounters::add(&self.counters.recording_write_errors, 1);
            tracing::error!(path = %self.writer.path().display(), "recording failed: {e}");
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(e.to_string());
            }
        }
        result?;
        self.writer.finish()
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
                tracing::warn!(lost_frames = outcome.lost, "recorder fell behind the primary cache; the gap shows in /frame_index");
            }
            if outcome.frames == 0 {
                if stopping {
                    // Nothing more will arrive (the stream stopped before stop_at was reached).
                    return Ok(());
                }
                std::thread::sleep(IDLE_WAIT);
                continue;
            }
            self.frames.fetch_add(recorded as u64, Ordering::Relaxed);
            PipelineCounters::add(&self.counters.frames_recorded, recorded as u64);
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.writer.flush()?;
                last_flush = Instant::now();
            }
        }
    }
}

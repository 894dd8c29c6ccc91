//! Counters the real-time threads bump and everyone else reads.
//!
//! "Nothing lost silently" starts here: every dropped block, overrun, gap and write error has a
//! counter, and status, logs and recordings are built from a snapshot of them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters shared by the acquisition thread, the recorder and the control plane.
/// Relaxed atomics: each counter is independent, and a snapshot need not be instantaneous.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Bumped on every pass of the acquisition loop, idle or streaming: the liveness proof
    /// behind the systemd watchdog.
    pub heartbeat: AtomicU64,
    /// Frames read from the source and published into the primary cache.
    pub frames_acquired: AtomicU64,
    /// Blocks read from the source.
    pub blocks_acquired: AtomicU64,
    /// Discontinuities in the device frame index (frames the device itself dropped).
    pub frame_index_gaps: AtomicU64,
    /// Source failures that ended a stream.
    pub source_errors: AtomicU64,
    /// Frames the recorder wanted but found already overwritten in the primary cache.
    pub recorder_overrun_frames: AtomicU64,
    /// Frames written to recordings.
    pub frames_recorded: AtomicU64,
    /// Recording write failures.
    pub recording_write_errors: AtomicU64,
}

/// A copy of the counters at one moment, for status and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    pub heartbeat: u64,
    pub frames_acquired: u64,
    pub blocks_acquired: u64,
    pub frame_index_gaps: u64,
    pub source_errors: u64,
    pub recorder_overrun_frames: u64,
    pub frames_recorded: u64,
    pub recording_write_errors: u64,
}

impl PipelineCounters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            heartbeat: r(&self.heartbeat),
            frames_acquired: r(&self.frames_acquired),
            blocks_acquired: r(&self.blocks_acquired),
            frame_index_gaps: r(&self.frame_index_gaps),
            source_errors: r(&self.source_errors),
            recorder_overrun_frames: r(&self.recorder_overrun_frames),
            frames_recorded: r(&self.frames_recorded),
            recording_write_errors: r(&self.recording_write_errors),
        }
    }

    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

//! Counters the real-time threads bump and everyone else reads.
//!
//! "Nothing lost silently" starts here: every dropped block, overrun, gap and write error has a
//! counter, and status, logs and recordings are built from a snapshot of them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares each counter once: as an atomic in [`PipelineCounters`] and as a plain value in
/// [`CounterSnapshot`], with the same documentation.
macro_rules! counters {
    ($($(#[doc = $doc:expr])+ $name:ident,)+) => {
        /// Monotonic counters shared by the acquisition thread, the recorder and the control
        /// plane. Relaxed atomics: each counter is independent, and a snapshot need not be
        /// instantaneous.
        #[derive(Debug, Default)]
        pub struct PipelineCounters {
            $($(#[doc = $doc])+ pub $name: AtomicU64,)+
        }

        /// A copy of the counters at one moment, for status and logs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct CounterSnapshot {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl PipelineCounters {
            /// Reads every counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Ordering::Relaxed),)+ }
            }
        }
    };
}

counters! {
    /// Bumped on every pass of the acquisition loop, idle or streaming: the liveness proof
    /// behind the systemd watchdog.
    heartbeat,
    /// Frames read from the device and published into the primary cache.
    frames_acquired,
    /// Blocks read from the device.
    blocks_acquired,
    /// Discontinuities in the device frame index (frames the device itself dropped).
    frame_index_gaps,
    /// Device failures that ended a stream.
    source_errors,
    /// Frames the recorder wanted but found already overwritten in the primary cache.
    recorder_overrun_frames,
    /// Frames written to recordings.
    frames_recorded,
    /// Recording write failures.
    recording_write_errors,
    /// Spikes written to recordings' `/spikes`.
    spikes_recorded,
    /// Spikes the recorder wanted but found already overwritten in the spike ring.
    recorder_spikes_lost,
}

impl PipelineCounters {
    /// Adds `n` to `counter`. Wait-free: safe on the acquisition thread.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

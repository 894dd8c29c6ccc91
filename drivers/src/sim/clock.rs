//! Pacing the simulated device to the wall clock, as a real board's sample clock would.
//!
//! Each block's deadline is computed from a fixed start instant and the total number of frames
//! produced — `start + frames / rate` — never by adding per-block sleeps, so sleep overshoot
//! and scheduling jitter never accumulate: after hours the stream is still within one sleep's
//! jitter of the ideal frame count. A consumer that falls behind is not "caught up" by
//! producing frames faster than the deadlines allow; the next read simply returns without
//! sleeping, as a board's FIFO would already hold the data.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    rate: f64,
    accelerated: bool,
    /// Set at the first read, so construction time does not count as streaming time.
    start: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: f64, accelerated: bool) -> Self {
        Pacer { rate, accelerated, start: None }
    }

    /// Marks the start of streaming if this is the first block.
    #[inline]
    pub fn start(&mut self) {
        if !self.accelerated && self.start.is_none() {
            self.start = Some(Instant::now());
        }
    }

    /// The instant at which `frames` frames since the start exist in real time.
    pub fn deadline(&self, frames: u64) -> Option<Instant> {
        let start = self.start?;
        let nanos = (frames as f64 * 1e9 / self.rate).round() as u64;
        Some(start + Duration::from_nanos(nanos))
    }

    /// Sleeps until `frames` frames exist (no-op when accelerated).
    pub fn wait_for(&self, frames: u64) {
        if self.accelerated {
            return;
        }
        if let Some(deadline) = self.deadline(frames) {
            let now = Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            }
        }
    }
}

//! Spikes on their way into `/spikes`: read from the detector's ring, held until the file
//! that holds their frame has it, then handed to that file.
//!
//! The detector pushes a spike once its snippet is complete, a few milliseconds after its
//! threshold crossing; the recorder may have written that frame already, or not yet. So spikes
//! wait here until the frames they belong to are written, and a file is only closed once
//! every spike of its frames can have arrived ([`SpikeFeed::settle_frames`] after its last
//! frame). A spike the ring overwrote before the recorder read it is counted, never silently
//! missing.

use std::collections::VecDeque;
use std::sync::Arc;

use ephysd_pipeline::detect::Spike;
use ephysd_pipeline::{EventReader, EventRing};

/// Spikes read from the ring per call.
const BATCH: usize = 256;

/// Where a recording's spikes come from.
#[derive(Clone)]
pub struct SpikeFeed {
    /// The detector's ring.
    pub ring: Arc<EventRing<Spike>>,
    /// Frames after a spike's crossing by which the detector has pushed it: its snippet's
    /// reach after the crossing plus one block.
    pub settle_frames: u64,
}

/// The recorder's side of the feed: its reader and the spikes not yet placed.
pub(super) struct SpikeQueue {
    feed: SpikeFeed,
    reader: EventReader<Spike>,
    waiting: VecDeque<Spike>,
}

impl SpikeQueue {
    /// Follows `feed` from the spikes pushed from now on.
    pub fn new(feed: SpikeFeed) -> Self {
        let reader = feed.ring.reader_at_head(BATCH);
        SpikeQueue { feed, reader, waiting: VecDeque::new() }
    }

    /// How long after a file's last frame its spikes can still arrive.
    pub fn settle_frames(&self) -> u64 {
        self.feed.settle_frames
    }

    /// Moves everything the ring has into the queue. Returns how many spikes the ring had
    /// already overwritten.
    pub fn pull(&mut self) -> u64 {
        let mut lost = 0;
        loop {
            let waiting = &mut self.waiting;
            let read = self.reader.read(&self.feed.ring, |s| waiting.push_back(*s));
            lost += read.lost;
            if read.events == 0 {
                return lost;
            }
        }
    }

    /// Takes every queued spike whose frame is at or before `through` (frames written), in
    /// the order they were pushed; later ones keep waiting.
    pub fn take_through(&mut self, through: u64, mut place: impl FnMut(&Spike)) {
        let mut keep = self.waiting.len();
        for _ in 0..self.waiting.len() {
            let Some(s) = self.waiting.pop_front() else { break };
            if s.frame <= through {
                place(&s);
            } else {
                self.waiting.push_back(s);
            }
            keep -= 1;
            if keep == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_pipeline::detect::{SNIPPET_SAMPLES, UNSORTED};

    fn spike(frame: u64) -> Spike {
        Spike { frame, channel: 1, unit: UNSORTED, peak_uv: -80.0, samples: [0.0; SNIPPET_SAMPLES] }
    }

    #[test]
    fn spikes_wait_for_their_frames_and_losses_are_counted() {
        let (mut writer, ring) = EventRing::new(1024);
        let mut q = SpikeQueue::new(SpikeFeed { ring: Arc::clone(&ring), settle_frames: 90 });
        for f in [10, 50, 30, 200] {
            writer.push(&spike(f));
        }
        assert_eq!(q.pull(), 0);
        let mut placed = Vec::new();
        q.take_through(40, |s| placed.push(s.frame));
        assert_eq!(placed, [10, 30]);
        q.take_through(500, |s| placed.push(s.frame));
        assert_eq!(placed, [10, 30, 50, 200]);
        for f in 0..3000 {
            writer.push(&spike(f));
        }
        assert_eq!(q.pull(), 3000 - 1024);
    }
}

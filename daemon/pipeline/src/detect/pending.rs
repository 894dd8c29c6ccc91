//! Spikes whose snippet is not complete yet: the bounded table between a crossing and the
//! moment its last post-crossing sample arrives.
//!
//! Every pending spike waits the same number of frames (the snippet's span after the
//! crossing), so spikes complete in the order they were detected and the table is a FIFO
//! queue: crossings enter at the back in (frame, channel) order, and completed spikes leave
//! from the front in that same order. Each entry owns a preallocated run of raw samples,
//! filled as the frames arrive, so a snippet can span any number of blocks while the history
//! only has to hold the pre-crossing span. When the queue is full a new crossing is dropped
//! and counted; the spikes already waiting are never disturbed.

use crate::prefault::prefaulted;

/// One crossing waiting for its snippet.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pending {
    /// Device frame index of the crossing.
    pub frame: u64,
    /// Frame count (frames seen since the start) of the crossing.
    pub at: u64,
    pub channel: u32,
    /// Whether it crossed the negative level (else the positive one).
    pub negative: bool,
    /// Frame count of the next raw sample to copy in.
    pub next: u64,
}

/// A FIFO of pending spikes with their raw samples.
pub(crate) struct PendingQueue {
    entries: Box<[Pending]>,
    /// `capacity × len` raw samples, one run per entry slot.
    raw: Box<[f32]>,
    /// Raw samples per spike, and how many of them precede the crossing.
    len: usize,
    pre: usize,
    head: usize,
    count: usize,
}

impl PendingQueue {
    /// A queue of `capacity` spikes of `len` raw samples, `pre` of them before the crossing.
    pub(crate) fn new(capacity: usize, len: usize, pre: usize) -> Self {
        let capacity = capacity.max(1);
        PendingQueue {
            entries: prefaulted(capacity, Pending::default()),
            raw: prefaulted(capacity * len, 0.0),
            len,
            pre,
            head: 0,
            count: 0,
        }
    }

    /// Spikes the queue can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Frame count of the last raw sample `p` needs.
    #[inline]
    pub(crate) fn last_needed(&self, p: &Pending) -> u64 {
        p.at + (self.len - self.pre - 1) as u64
    }

    /// Frame count at which the front spike completes, if any is waiting.
    pub(crate) fn next_completion(&self) -> Option<u64> {
        (self.count > 0).then(|| self.last_needed(&self.entries[self.head]))
    }

    /// Queues a crossing at frame count `at`; false (and nothing queued) when full.
    pub(crate) fn push(&mut self, frame: u64, at: u64, channel: usize, negative: bool) -> bool {
        if self.count == self.entries.len() {
            return false;
        }
        let slot = (self.head + self.count) % self.entries.len();
        self.count += 1;
        let next = at.saturating_sub(self.pre as u64);
        // Samples from before the start of the stream read as zero.
        let missing = (self.pre as u64 - (at - next)) as usize;
        self.raw[slot * self.len..slot * self.len + missing].fill(0.0);
        self.entries[slot] = Pending { frame, at, channel: channel as u32, negative, next };
        true
    }

    /// Copies into every waiting spike the raw samples it still needs up to frame count
    /// `upto` (exclusive), reading them through `sample(frame_count, channel)`.
    pub(crate) fn fill(&mut self, upto: u64, sample: impl Fn(u64, usize) -> f32) {
        for i in 0..self.count {
            let slot = (self.head + i) % self.entries.len();
            let p = &mut self.entries[slot];
            let end = upto.min(p.at + (self.len - self.pre) as u64);
            let raw = &mut self.raw[slot * self.len..(slot + 1) * self.len];
            let channel = p.channel as usize;
            while p.next < end {
                raw[(p.next + self.pre as u64 - p.at) as usize] = sample(p.next, channel);
                p.next += 1;
            }
        }
    }

    /// Fills the front spike up to frame count `upto` (exclusive) and, if that completes it,
    /// hands it and its raw samples to `complete` and removes it. Returns whether it did.
    pub(crate) fn complete_front(
        &mut self,
        upto: u64,
        sample: impl Fn(u64, usize) -> f32,
        complete: impl FnOnce(&Pending, &[f32]),
    ) -> bool {
        if self.count == 0 {
            return false;
        }
        let slot = self.head;
        let p = &mut self.entries[slot];
        let end = p.at + (self.len - self.pre) as u64;
        if upto < end {
            return false;
        }
        let raw = &mut self.raw[slot * self.len..(slot + 1) * self.len];
        let channel = p.channel as usize;
        while p.next < end {
            raw[(p.next + self.pre as u64 - p.at) as usize] = sample(p.next, channel);
            p.next += 1;
        }
        complete(p, raw);
        self.head = (self.head + 1) % self.entries.len();
        self.count -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_complete_in_order_with_every_sample_and_overflow_is_refused() {
        // 2 before, 3 from the crossing.
        let mut q = PendingQueue::new(2, 5, 2);
        let value = |n: u64, c: usize| (n * 10 + c as u64) as f32;
        assert!(q.push(100, 1, 7, true)); // needs counts -1..=3: one before the start
        assert!(q.push(101, 2, 3, false));
        assert!(!q.push(102, 2, 4, true));
        assert_eq!(q.next_completion(), Some(3));
        q.fill(2, value);
        let mut done = Vec::new();
        assert!(!q.complete_front(3, value, |_, _| unreachable!()));
        assert!(q.complete_front(4, value, |p, raw| done.push((p.frame, p.negative, raw.to_vec()))));
        assert!(q.complete_front(5, value, |p, raw| done.push((p.frame, p.negative, raw.to_vec()))));
        assert!(!q.complete_front(100, value, |_, _| unreachable!()));
        assert_eq!(
            done,
            [(100, true, vec![0.0, 7.0, 17.0, 27.0, 37.0]), (101, false, vec![3.0, 13.0, 23.0, 33.0, 43.0])]
        );
        assert!(q.push(103, 9, 0, true));
    }
}

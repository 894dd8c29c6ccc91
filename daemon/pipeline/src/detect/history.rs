//! The last frames of the signal, so that a crossing early in a block still gets the snippet
//! samples that came before it in earlier blocks.
//!
//! Frame-major, like the blocks it is copied from: keeping it costs one contiguous copy of a
//! block's last frames per block, while the rare reads (one strided column per spike) are off
//! the hot path. It holds exactly the snippet's pre-crossing span: samples after a crossing
//! are copied into the spike's own buffer as blocks arrive (see [`super::pending`]).

use crate::prefault::prefaulted;

/// A ring of the last `rows` frames, indexed by frame count (frames seen since the start).
pub(crate) struct History {
    channels: usize,
    rows: usize,
    samples: Box<[f32]>,
}

impl History {
    pub(crate) fn new(channels: usize, rows: usize) -> Self {
        let rows = rows.max(1);
        History { channels, rows, samples: prefaulted(rows * channels, 0.0) }
    }

    /// The sample of `channel` at frame count `n`, which must be one of the last `rows`
    /// frames kept (frames before the start read as zero).
    #[inline]
    pub(crate) fn get(&self, n: u64, channel: usize) -> f32 {
        self.samples[(n % self.rows as u64) as usize * self.channels + channel]
    }

    /// Keeps the frames of `block` (frame-major, its first frame at count `first`) that will
    /// be among the last `rows`.
    pub(crate) fn keep(&mut self, first: u64, block: &[f32]) {
        let frames = block.len() / self.channels.max(1);
        for i in frames.saturating_sub(self.rows)..frames {
            let at = ((first + i as u64) % self.rows as u64) as usize * self.channels;
            self.samples[at..at + self.channels].copy_from_slice(&block[i * self.channels..(i + 1) * self.channels]);
        }
    }
}

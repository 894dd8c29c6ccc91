//! Adds spikes to blocks sparsely, touching only the samples they cover.
//!
//! Each unit has a cursor over its spike train holding two epochs' trains (the current one and
//! the next, drawn when first needed) in buffers preallocated at construction, so rendering
//! never allocates. A per-unit "wake" frame — no spike of the unit can touch a sample before it
//! — lets a chunk skip most units with one comparison, which keeps the per-block cost
//! proportional to the spikes present rather than to the unit count.
//!
//! The source renders in chunks of at most a quarter epoch; with waveforms of a few ms and burst
//! tails of tens of ms, a chunk's window then touches at most two consecutive epochs of a unit,
//! which is why two buffers suffice. Spikes are added unit by unit, each unit's spikes in time
//! order, so every sample receives its contributions in the same order whatever the block size
//! (saturating adds are not associative, so the order is part of determinism).

use super::convert::round_i32;
use super::firing::{epoch_frames, epoch_train, TrainSpike, MAX_SPIKES_PER_EPOCH};
use super::units::Population;

#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Epoch whose train is in the current slot.
    epoch: u64,
    /// Which of the unit's two slots is current.
    cur: usize,
    cur_len: usize,
    /// Length of the next epoch's train, if drawn.
    next_len: Option<usize>,
    /// First spike of the current slot not yet known to be entirely in the past.
    idx: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct SpikeRenderer {
    seed: u64,
    rate: f64,
    epoch_frames: u64,
    cursors: Vec<Cursor>,
    /// `units × 2 × MAX_SPIKES_PER_EPOCH` train buffers.
    slots: Vec<TrainSpike>,
    /// Per unit: no spike of the unit reaches a sample before this frame.
    wake: Vec<u64>,
}

/// Largest chunk the renderer accepts (see the module notes).
pub(crate) fn max_chunk_frames(rate: f64) -> u64 {
    (epoch_frames(rate) / 4).max(1)
}

impl SpikeRenderer {
    pub fn new(seed: u64, rate: f64, pop: &Population) -> Self {
        let n = pop.models.len();
        let mut r = SpikeRenderer {
            seed,
            rate,
            epoch_frames: epoch_frames(rate),
            cursors: vec![Cursor { epoch: 0, cur: 0, cur_len: 0, next_len: None, idx: 0 }; n],
            slots: vec![TrainSpike::default(); n * 2 * MAX_SPIKES_PER_EPOCH],
            wake: vec![0; n],
        };
        for u in 0..n {
            let len = r.draw(pop, u, 0, 0);
            r.cursors[u].cur_len = len;
        }
        r
    }

    fn slot(&self, unit: usize, which: usize) -> &[TrainSpike] {
        let o = (unit * 2 + which) * MAX_SPIKES_PER_EPOCH;
        &self.slots[o..o + MAX_SPIKES_PER_EPOCH]
    }

    /// Draws `epoch`'s train of `unit` into slot `which`.
    fn draw(&mut self, pop: &Population, unit: usize, which: usize, epoch: u64) -> usize {
        let o = (unit * 2 + which) * MAX_SPIKES_PER_EPOCH;
        let buf = &mut self.slots[o..o + MAX_SPIKES_PER_EPOCH];
        epoch_train(self.seed, unit as u32, &pop.models[unit], self.rate, epoch, buf)
    }

    fn ensure_next(&mut self, pop: &Population, unit: usize) -> usize {
        let c = self.cursors[unit];
        match c.next_len {
            Some(n) => n,
            None => {
                let n = self.draw(pop, unit, 1 - c.cur, c.epoch + 1);
                self.cursors[unit].next_len = Some(n);
                n
            }
        }
    }

    /// Makes the next epoch current.
    fn step_epoch(&mut self, pop: &Population, unit: usize) {
        let n = self.ensure_next(pop, unit);
        let c = &mut self.cursors[unit];
        c.cur = 1 - c.cur;
        c.cur_len = n;
        c.next_len = None;
        c.epoch += 1;
        c.idx = 0;
    }

    /// Adds every spike overlapping frames `[a, b)` to `out`, a frame-major block of
    /// `channels` channels whose first frame is `block_first`. Chunks must be consecutive and
    /// at most [`max_chunk_frames`] long.
    pub fn render(&mut self, pop: &Population, a: u64, b: u64, block_first: u64, out: &mut [i16], channels: usize) {
        debug_assert!(b - a <= max_chunk_frames(self.rate));
        let ef = self.epoch_frames;
        for u in 0..self.cursors.len() {
            if self.wake[u] >= b {
                continue;
            }
            let m = &pop.models[u];
            let (pre, post) = (m.pre, m.post);
            let horizon = b + pre; // spikes at or after this frame cannot touch the chunk

            // 1. Forget spikes that ended before the chunk.
            loop {
                let c = self.cursors[u];
                if c.idx < c.cur_len {
                    if self.slot(u, c.cur)[c.idx].frame + post <= a {
                        self.cursors[u].idx += 1;
                        continue;
                    }
                    break;
                }
                if (c.epoch + 1) * ef >= horizon {
                    break;
                }
                self.step_epoch(pop, u);
            }

            // 2. Render what overlaps, in time order, moving into the next epoch if needed.
            let mut in_next = false;
            let mut i = self.cursors[u].idx;
            loop {
                let c = self.cursors[u];
                let (which, len) = if in_next { (1 - c.cur, c.next_len.unwrap_or(0)) } else { (c.cur, c.cur_len) };
                if i < len {
                    let s = self.slot(u, which)[i];
                    if s.frame >= horizon {
                        break;
                    }
                    add_spike(pop, u, s, a, b, block_first, out, channels);
                    i += 1;
                } else if !in_next {
                    if (c.epoch + 1) * ef >= horizon {
                        break;
                    }
                    self.ensure_next(pop, u);
                    in_next = true;
                    i = 0;
                } else {
                    break;
                }
            }

            // 3. Next frame at which this unit can matter again.
            let c = self.cursors[u];
            let slot = self.slot(u, c.cur);
            let mut idx = c.idx;
            while idx < c.cur_len && slot[idx].frame + post <= b {
                idx += 1;
            }
            let first = if idx < c.cur_len {
                slot[idx].frame
            } else {
                match c.next_len {
                    Some(n) if n > 0 => self.slot(u, 1 - c.cur)[0].frame,
                    Some(_) => (c.epoch + 2) * ef,
                    None => (c.epoch + 1) * ef,
                }
            };
            self.cursors[u].idx = idx;
            self.wake[u] = first.saturating_sub(pre);
        }
    }
}

/// Adds the part of spike `s` of unit `u` that falls in `[a, b)`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn add_spike(
    pop: &Population,
    u: usize,
    s: TrainSpike,
    a: u64,
    b: u64,
    block_first: u64,
    out: &mut [i16],
    channels: usize,
) {
    let m = &pop.models[u];
    let first = s.frame as i64 - m.pre as i64; // frame of template sample 0
    let lo = first.max(a as i64);
    let hi = ((s.frame + m.post) as i64).min(b as i64);
    if lo >= hi {
        return;
    }
    let j0 = (lo - first) as usize;
    let n = (hi - lo) as usize;
    let footprint = pop.infos[u].channels.clone();
    let nch = footprint.len();
    let tpl = &pop.templates[m.template_offset + j0 * nch..][..n * nch];
    let mut row = (lo as u64 - block_first) as usize * channels + footprint.start;
    for t in tpl.chunks_exact(nch) {
        for (o, &t) in out[row..row + nch].iter_mut().zip(t) {
            *o = (*o as i32 + round_i32(t * s.scale)).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        }
        row += channels;
    }
}

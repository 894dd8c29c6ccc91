//! The primary cache: a lock-free ring of the last N seconds of frames.
//!
//! One writer (the acquisition thread) publishes whole blocks; any number of readers (recorder,
//! snapshots, closed-loop streams) follow at their own pace. Readers never block the writer and
//! never see torn data: a reader that falls so far behind that the writer has overwritten the
//! frames it wanted is told exactly how many frames it lost.
//!
//! The protocol is a sequence lock over frame positions. Every frame gets a sequence number
//! (0, 1, 2, ...) and lives in slot `seq % capacity`. Before overwriting slots, the writer
//! announces how far it is about to write (`claimed`), then stores the data, then publishes
//! `head`. A reader copies frames below `head`, then re-reads `claimed`: any frame older than
//! `claimed - capacity` may have been overwritten during the copy and is discarded and counted
//! as lost. Samples are stored in `AtomicU64` words (four 16-bit values each) so concurrent
//! access is well defined without locks; relaxed word stores cost about what plain stores do.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use ephysd_drivers::{BlockLayout, FrameBlock};

/// A 16-bit sample type the cache can store by its bit pattern.
trait Bits16: Copy {
    fn to_bits(self) -> u16;
    fn from_bits(bits: u16) -> Self;
}

impl Bits16 for u16 {
    #[inline(always)]
    fn to_bits(self) -> u16 {
        self
    }
    #[inline(always)]
    fn from_bits(bits: u16) -> Self {
        bits
    }
}

impl Bits16 for i16 {
    #[inline(always)]
    fn to_bits(self) -> u16 {
        self as u16
    }
    #[inline(always)]
    fn from_bits(bits: u16) -> Self {
        bits as i16
    }
}

#[inline(always)]
fn pack4<T: Bits16>(v: &[T]) -> u64 {
    v.iter().enumerate().fold(0u64, |word, (lane, x)| word | (x.to_bits() as u64) << (16 * lane))
}

#[inline(always)]
fn unpack4<T: Bits16>(word: u64, out: &mut [T]) {
    for (lane, x) in out.iter_mut().enumerate() {
        *x = T::from_bits((word >> (16 * lane)) as u16);
    }
}

/// Sixteen-bit values stored four to an atomic word, `words_per_frame` words per frame.
struct PackedLane {
    words: Box<[AtomicU64]>,
    words_per_frame: usize,
}

impl PackedLane {
    fn new(values_per_frame: usize, capacity: usize) -> Self {
        let words_per_frame = values_per_frame.div_ceil(4);
        PackedLane { words: zeroed_atomics(words_per_frame * capacity), words_per_frame }
    }

    /// Stores one frame's values (exactly `values_per_frame` of them) into `slot`.
    #[inline]
    fn store_frame<T: Bits16>(&self, slot: usize, values: &[T]) {
        let words = &self.words[slot * self.words_per_frame..(slot + 1) * self.words_per_frame];
        // Whole groups of four in a fixed-size loop the compiler unrolls; the tail once.
        let mut groups = values.chunks_exact(4);
        for (word, g) in words.iter().zip(&mut groups) {
            let packed = g[0].to_bits() as u64
                | (g[1].to_bits() as u64) << 16
                | (g[2].to_bits() as u64) << 32
                | (g[3].to_bits() as u64) << 48;
            word.store(packed, Ordering::Relaxed);
        }
        let tail = groups.remainder();
        if !tail.is_empty() {
            words[words.len() - 1].store(pack4(tail), Ordering::Relaxed);
        }
    }

    /// Loads one frame's values from `slot` into `out`.
    #[inline]
    fn load_frame<T: Bits16>(&self, slot: usize, out: &mut [T]) {
        let words = &self.words[slot * self.words_per_frame..(slot + 1) * self.words_per_frame];
        let mut groups = out.chunks_exact_mut(4);
        for (word, g) in words.iter().zip(&mut groups) {
            let w = word.load(Ordering::Relaxed);
            g[0] = T::from_bits(w as u16);
            g[1] = T::from_bits((w >> 16) as u16);
            g[2] = T::from_bits((w >> 32) as u16);
            g[3] = T::from_bits((w >> 48) as u16);
        }
        let tail = groups.into_remainder();
        if !tail.is_empty() {
            unpack4(words[words.len() - 1].load(Ordering::Relaxed), tail);
        }
    }
}

/// Allocates `n` zeroed atomics and faults every page in now.
///
/// The kernel hands out freshly allocated pages lazily, on first write. Left that way, the
/// acquisition thread would take a page fault (and the kernel would zero a page) every 4 KiB
/// of new signal for the whole first pass through the ring: for a 1024-channel stream that
/// is about 1 500 faults per second of signal on the real-time thread. Touching every page
/// here moves that cost to stream start, on the control thread that builds the cache.
fn zeroed_atomics(n: usize) -> Box<[AtomicU64]> {
    if n == 0 {
        return Box::new([]);
    }
    let layout = std::alloc::Layout::array::<AtomicU64>(n).expect("cache size overflows");
    // SAFETY: the layout is non-zero-sized; all-zero bits are a valid AtomicU64; the pointer is
    // turned into a Box of exactly `n` elements with the same layout it was allocated with.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut AtomicU64;
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let words: Box<[AtomicU64]> = Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n));
        prefault(&words);
        words
    }
}

/// Writes one word of every page of `words` (with the value it already holds, zero), so the
/// kernel maps each page now rather than on the real-time thread's first store.
fn prefault(words: &[AtomicU64]) {
    const WORDS_PER_PAGE: usize = 4096 / std::mem::size_of::<AtomicU64>();
    for word in words.iter().step_by(WORDS_PER_PAGE) {
        word.store(0, Ordering::Relaxed);
    }
}

/// What a read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOutcome {
    /// Frames copied into the caller's block.
    pub frames: usize,
    /// Frames the reader wanted but the writer had already overwritten.
    pub lost: u64,
}

/// The ring itself. Share it as `Arc<PrimaryCache>`; exactly one thread may call
/// [`PrimaryCache::publish`].
pub struct PrimaryCache {
    layout: BlockLayout,
    capacity: usize,
    sample_rate_hz: f64,
    frame_index: Box<[AtomicU64]>,
    amplifier: PackedLane,
    aux: PackedLane,
    analog_in: PackedLane,
    /// digital_in in the low 16 bits, digital_out in the next 16.
    digital: Box<[AtomicU64]>,
    claimed: AtomicU64,
    head: AtomicU64,
    /// Position of the one consumer an accelerated stream waits for (`u64::MAX` = none).
    /// Only accelerated (test and benchmark) streams honour it: a paced stream never waits.
    pace_gate: AtomicU64,
}

impl PrimaryCache {
    /// A cache holding `capacity_frames` frames of `layout` (at least one block).
    pub fn new(layout: BlockLayout, capacity_frames: usize, sample_rate_hz: f64) -> Self {
        let capacity = capacity_frames.max(layout.frames_per_block);
        PrimaryCache {
            layout,
            capacity,
            sample_rate_hz,
            frame_index: zeroed_atomics(capacity),
            amplifier: PackedLane::new(layout.amplifier_channels, capacity),
            aux: PackedLane::new(layout.aux_channels, capacity),
            analog_in: PackedLane::new(layout.analog_in_channels, capacity),
            digital: zeroed_atomics(capacity),
            claimed: AtomicU64::new(0),
            head: AtomicU64::new(0),
            pace_gate: AtomicU64::new(u64::MAX),
        }
    }

    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    pub fn capacity_frames(&self) -> usize {
        self.capacity
    }

    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }

    /// Frames published since the stream started (the next frame's sequence number).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Sequence number of the oldest frame still held.
    pub fn oldest(&self) -> u64 {
        self.head().saturating_sub(self.capacity as u64)
    }

    /// Registers the position of the consumer an accelerated stream must not overrun.
    pub fn set_pace_gate(&self, position: u64) {
        self.pace_gate.store(position, Ordering::Release);
    }

    /// Removes the pace gate: accelerated streams run free again.
    pub fn clear_pace_gate(&self) {
        self.pace_gate.store(u64::MAX, Ordering::Release);
    }

    /// Whether a block of `frames` can be published without overwriting frames the gated
    /// consumer has not read yet.
    pub fn has_room_for(&self, frames: usize) -> bool {
        let gate = self.pace_gate.load(Ordering::Acquire);
        gate == u64::MAX || self.head() + frames as u64 <= gate + self.capacity as u64
    }

    /// Appends the filled frames of `block`. Wait-free; must only be called by the one writer.
    pub fn publish(&self, block: &FrameBlock) {
        let n = block.frames.min(self.capacity);
        let start = self.head.load(Ordering::Relaxed);
        let end = start + n as u64;
        // Announce the overwrite before touching any slot (the seqlock's "odd" phase).
        self.claimed.store(end, Ordering::Relaxed);
        fence(Ordering::Release);
        let l = self.layout;
        for i in 0..n {
            let slot = self.slot(start + i as u64);
            self.frame_index[slot].store(block.frame_index[i], Ordering::Relaxed);
            let amp = &block.amplifier[i * l.amplifier_channels..(i + 1) * l.amplifier_channels];
            self.amplifier.store_frame(slot, amp);
            let aux = &block.aux[i * l.aux_channels..(i + 1) * l.aux_channels];
            self.aux.store_frame(slot, aux);
            let adc = &block.analog_in[i * l.analog_in_channels..(i + 1) * l.analog_in_channels];
            self.analog_in.store_frame(slot, adc);
            let digital = block.digital_in[i] as u64 | (block.digital_out[i] as u64) << 16;
            self.digital[slot].store(digital, Ordering::Relaxed);
        }
        self.head.store(end, Ordering::Release);
    }

    /// A reader that starts at the newest frame (it sees only what is published from now on).
    pub fn reader_at_head(&self) -> CacheReader {
        CacheReader { next: self.head() }
    }

    /// A reader that starts at sequence number `seq` (it may already be lost).
    pub fn reader_at(&self, seq: u64) -> CacheReader {
        CacheReader { next: seq }
    }

    /// The ring slot holding sequence number `seq`.
    #[inline]
    fn slot(&self, seq: u64) -> usize {
        (seq % self.capacity as u64) as usize
    }

    fn copy_frames(&self, from: u64, n: usize, out: &mut FrameBlock) {
        let l = self.layout;
        for i in 0..n {
            let slot = self.slot(from + i as u64);
            out.frame_index[i] = self.frame_index[slot].load(Ordering::Relaxed);
            let amp = &mut out.amplifier[i * l.amplifier_channels..(i + 1) * l.amplifier_channels];
            self.amplifier.load_frame(slot, amp);
            let aux = &mut out.aux[i * l.aux_channels..(i + 1) * l.aux_channels];
            self.aux.load_frame(slot, aux);
            let adc = &mut out.analog_in[i * l.analog_in_channels..(i + 1) * l.analog_in_channels];
            self.analog_in.load_frame(slot, adc);
            let digital = self.digital[slot].load(Ordering::Relaxed);
            out.digital_in[i] = digital as u16;
            out.digital_out[i] = (digital >> 16) as u16;
        }
    }
}

/// A reader's position in the cache. Cheap to create; each consumer owns one.
#[derive(Debug, Clone)]
pub struct CacheReader {
    next: u64,
}

impl CacheReader {
    /// Sequence number of the next frame this reader will return.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Frames published but not yet read (including ones already lost).
    pub fn backlog(&self, cache: &PrimaryCache) -> u64 {
        cache.head().saturating_sub(self.next)
    }

    /// Copies up to one block of the next frames into `out` (which must have the cache's
    /// layout). Never blocks; returns zero frames when the reader is caught up.
    pub fn read(&mut self, cache: &PrimaryCache, out: &mut FrameBlock) -> ReadOutcome {
        debug_assert_eq!(out.layout(), cache.layout, "reader block layout differs from the cache");
        let outcome = self.read_with(cache, out.layout().frames_per_block, |from, n| cache.copy_frames(from, n, out));
        out.frames = outcome.frames;
        outcome
    }

    /// Copies up to `frame_index.len()` of the next frames' device frame indices and
    /// amplifier samples (frame-major, `amplifier_channels` per frame) into the given slices,
    /// and nothing else. This is the recorder's read: straight into its write buffer, without
    /// a block in between. Never blocks.
    pub fn read_amplifier(&mut self, cache: &PrimaryCache, frame_index: &mut [u64], amplifier: &mut [i16]) -> ReadOutcome {
        let channels = cache.layout.amplifier_channels;
        let max = frame_index.len().min(amplifier.len() / channels);
        self.read_with(cache, max, |from, n| {
            for (i, (index, samples)) in frame_index[..n].iter_mut().zip(amplifier.chunks_exact_mut(channels)).enumerate() {
                let slot = cache.slot(from + i as u64);
                *index = cache.frame_index[slot].load(Ordering::Relaxed);
                cache.amplifier.load_frame(slot, samples);
            }
        })
    }

    /// The seqlock read protocol around `copy(from, n)`, which copies `n` frames starting at
    /// sequence number `from` to wherever the caller wants them. Frames the writer may have
    /// overwritten while they were copied are dropped (counted as lost) and the copy is
    /// redone from the first safe frame, so what the caller keeps is never torn.
    fn read_with(&mut self, cache: &PrimaryCache, max: usize, mut copy: impl FnMut(u64, usize)) -> ReadOutcome {
        let mut lost = 0u64;
        loop {
            let head = cache.head.load(Ordering::Acquire);
            let oldest = head.saturating_sub(cache.capacity as u64);
            if self.next < oldest {
                lost += oldest - self.next;
                self.next = oldest;
            }
            let n = ((head - self.next) as usize).min(max);
            if n == 0 {
                return ReadOutcome { frames: 0, lost };
            }
            copy(self.next, n);
            // Close the seqlock: anything the writer began overwriting before this point is
            // suspect, and whatever we copied older than that is dropped, never returned torn.
            fence(Ordering::Acquire);
            let claimed = cache.claimed.load(Ordering::Relaxed);
            let safe_from = claimed.saturating_sub(cache.capacity as u64);
            if self.next >= safe_from {
                self.next += n as u64;
                return ReadOutcome { frames: n, lost };
            }
            lost += safe_from - self.next;
            self.next = safe_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn layout(ch: usize, fpb: usize) -> BlockLayout {
        BlockLayout { amplifier_channels: ch, aux_channels: 3, analog_in_channels: 2, frames_per_block: fpb }
    }

    /// Fills a block whose every value encodes its frame's sequence number, so a reader can
    /// check each frame is whole (all values from the same write).
    fn stamped_block(l: BlockLayout, first: u64) -> FrameBlock {
        let mut b = FrameBlock::new(l);
        b.frames = l.frames_per_block;
        for i in 0..b.frames {
            let seq = first + i as u64;
            b.frame_index[i] = seq;
            let v = (seq % 30_000) as i16;
            for c in 0..l.amplifier_channels {
                b.amplifier[i * l.amplifier_channels + c] = v.wrapping_add(c as i16);
            }
            for c in 0..l.aux_channels {
                b.aux[i * l.aux_channels + c] = v as u16;
            }
            for c in 0..l.analog_in_channels {
                b.analog_in[i * l.analog_in_channels + c] = !(v as u16);
            }
            b.digital_in[i] = v as u16;
            b.digital_out[i] = (v as u16).rotate_left(3);
        }
        b
    }

    fn assert_whole(b: &FrameBlock) {
        let l = b.layout();
        for i in 0..b.frames {
            let v = (b.frame_index[i] % 30_000) as i16;
            for c in 0..l.amplifier_channels {
                assert_eq!(b.amplifier[i * l.amplifier_channels + c], v.wrapping_add(c as i16), "torn amplifier");
            }
            assert!(b.aux[i * l.aux_channels..(i + 1) * l.aux_channels].iter().all(|&a| a == v as u16));
            assert!(b.analog_in[i * l.analog_in_channels..(i + 1) * l.analog_in_channels].iter().all(|&a| a == !(v as u16)));
            assert_eq!(b.digital_in[i], v as u16);
            assert_eq!(b.digital_out[i], (v as u16).rotate_left(3));
        }
    }

    #[test]
    fn reader_gets_every_frame_in_order() {
        let l = layout(5, 16);
        let cache = PrimaryCache::new(l, 64, 30_000.0);
        let mut reader = cache.reader_at_head();
        let mut out = FrameBlock::new(l);
        let mut expected = 0u64;
        for blk in 0..10 {
            cache.publish(&stamped_block(l, blk * 16));
            let r = reader.read(&cache, &mut out);
            assert_eq!(r, ReadOutcome { frames: 16, lost: 0 });
            assert_whole(&out);
            for i in 0..16 {
                assert_eq!(out.frame_index[i], expected);
                expected += 1;
            }
        }
        assert_eq!(reader.read(&cache, &mut out).frames, 0);
    }

    #[test]
    fn slow_reader_is_told_exactly_how_much_it_lost() {
        let l = layout(3, 8);
        let cache = PrimaryCache::new(l, 32, 30_000.0);
        let mut reader = cache.reader_at_head();
        for blk in 0..10 {
            cache.publish(&stamped_block(l, blk * 8));
        }
        // 80 frames published, 32 held: frames 0..48 are gone.
        let mut out = FrameBlock::new(l);
        let r = reader.read(&cache, &mut out);
        assert_eq!(r, ReadOutcome { frames: 8, lost: 48 });
        assert_eq!(out.frame_index[0], 48);
        assert_whole(&out);
    }

    #[test]
    fn concurrent_readers_never_see_torn_frames_and_account_for_every_frame() {
        let l = layout(37, 32);
        let cache = Arc::new(PrimaryCache::new(l, 96, 30_000.0));
        let total_blocks = 20_000u64;
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    let mut reader = cache.reader_at(0);
                    let mut out = FrameBlock::new(l);
                    let (mut got, mut lost, mut expected) = (0u64, 0u64, 0u64);
                    while got + lost < total_blocks * 32 {
                        let r = reader.read(&cache, &mut out);
                        lost += r.lost;
                        expected += r.lost;
                        assert_whole(&out);
                        for i in 0..r.frames {
                            assert_eq!(out.frame_index[i], expected, "frames out of order");
                            expected += 1;
                        }
                        got += r.frames as u64;
                    }
                    (got, lost)
                })
            })
            .collect();
        for blk in 0..total_blocks {
            cache.publish(&stamped_block(l, blk * 32));
        }
        for r in readers {
            let (got, lost) = r.join().unwrap();
            assert_eq!(got + lost, total_blocks * 32);
        }
    }

    #[test]
    fn amplifier_reads_are_whole_in_order_and_account_for_every_frame() {
        let l = layout(37, 32);
        let cache = Arc::new(PrimaryCache::new(l, 96, 30_000.0));
        let total_blocks = 20_000u64;
        let reader = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut reader = cache.reader_at(0);
                // Not a multiple of the block size, so reads straddle published blocks.
                let mut index = vec![0u64; 50];
                let mut amp = vec![0i16; 50 * l.amplifier_channels];
                let (mut got, mut lost, mut expected) = (0u64, 0u64, 0u64);
                while got + lost < total_blocks * 32 {
                    let r = reader.read_amplifier(&cache, &mut index, &mut amp);
                    lost += r.lost;
                    expected += r.lost;
                    for i in 0..r.frames {
                        assert_eq!(index[i], expected, "frames out of order");
                        let v = (expected % 30_000) as i16;
                        for c in 0..l.amplifier_channels {
                            assert_eq!(amp[i * l.amplifier_channels + c], v.wrapping_add(c as i16), "torn amplifier");
                        }
                        expected += 1;
                    }
                    got += r.frames as u64;
                }
                (got, lost)
            })
        };
        for blk in 0..total_blocks {
            cache.publish(&stamped_block(l, blk * 32));
        }
        let (got, lost) = reader.join().unwrap();
        assert_eq!(got + lost, total_blocks * 32);
        assert!(got > 0);
    }

}

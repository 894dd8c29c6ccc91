//! The primary cache: a lock-free ring of the last N seconds of frames.
//!
//! One writer (the acquisition thread, through its [`CacheWriter`]) publishes whole blocks;
//! any number of readers (recorder, snapshots, closed-loop streams) follow at their own pace.
//! Readers never block the writer and never see torn data: a reader that falls so far behind
//! that the writer has overwritten the frames it wanted is told exactly how many frames it lost
//! (the sequence-lock protocol of [`crate::ring`]). Samples are stored in `AtomicU64` words
//! (four 16-bit values each) so concurrent access is well defined without locks; relaxed word
//! stores cost about what plain stores do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ephysd_drivers::{BlockLayout, FrameBlock};

use crate::ring::{prefaulted_words, SeqRing};

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
        PackedLane { words: prefaulted_words(words_per_frame * capacity), words_per_frame }
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

/// What a read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOutcome {
    /// Frames copied into the caller's buffers.
    pub frames: usize,
    /// Frames the reader wanted but the writer had already overwritten.
    pub lost: u64,
}

/// The ring itself, shared as `Arc<PrimaryCache>` by every reader. Only the one
/// [`CacheWriter`] made with it can publish.
pub struct PrimaryCache {
    layout: BlockLayout,
    sample_rate_hz: f64,
    positions: SeqRing,
    frame_index: Box<[AtomicU64]>,
    amplifier: PackedLane,
    aux: PackedLane,
    analog_in: PackedLane,
    /// digital_in in the low 16 bits, digital_out in the next 16.
    digital: Box<[AtomicU64]>,
    /// Position of the one consumer a self-paced stream waits for (`u64::MAX` = none).
    /// Only streams paced by their consumer (accelerated tests and benchmarks) honour it: a
    /// device-paced stream never waits.
    pace_gate: AtomicU64,
}

/// The single writer of a [`PrimaryCache`]: owned by the acquisition thread. There is exactly
/// one per cache, so the one-writer rule of the protocol is the compiler's to keep.
pub struct CacheWriter {
    cache: Arc<PrimaryCache>,
}

impl PrimaryCache {
    /// A cache holding `capacity_frames` frames of `layout` (at least one block), and its
    /// writer. Every page is faulted in here, so build it before the stream starts.
    pub fn new(layout: BlockLayout, capacity_frames: usize, sample_rate_hz: f64) -> (Arc<PrimaryCache>, CacheWriter) {
        let capacity = capacity_frames.max(layout.frames_per_block);
        let cache = Arc::new(PrimaryCache {
            layout,
            sample_rate_hz,
            positions: SeqRing::new(capacity),
            frame_index: prefaulted_words(capacity),
            amplifier: PackedLane::new(layout.amplifier_channels, capacity),
            aux: PackedLane::new(layout.aux_channels, capacity),
            analog_in: PackedLane::new(layout.analog_in_channels, capacity),
            digital: prefaulted_words(capacity),
            pace_gate: AtomicU64::new(u64::MAX),
        });
        let writer = CacheWriter { cache: Arc::clone(&cache) };
        (cache, writer)
    }

    /// The shape of every frame held.
    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// Frames the ring holds.
    pub fn capacity_frames(&self) -> usize {
        self.positions.capacity()
    }

    /// Frames per second of the stream it caches.
    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }

    /// Frames published since the stream started (the next frame's sequence number).
    pub fn head(&self) -> u64 {
        self.positions.head()
    }

    /// Sequence number of the oldest frame still held.
    pub fn oldest(&self) -> u64 {
        self.positions.oldest()
    }

    /// The device frame index of the frame at sequence number `position`, while the cache
    /// still holds it (the stream's last frame is at `head() - 1`).
    pub fn frame_index_at(&self, position: u64) -> Option<u64> {
        if position < self.oldest() || position >= self.head() {
            return None;
        }
        Some(self.frame_index[self.positions.slot(position)].load(Ordering::Relaxed))
    }

    /// Registers the position of the consumer a consumer-paced stream must not overrun.
    pub fn set_pace_gate(&self, position: u64) {
        self.pace_gate.store(position, Ordering::Release);
    }

    /// Removes the pace gate: consumer-paced streams run free again.
    pub fn clear_pace_gate(&self) {
        self.pace_gate.store(u64::MAX, Ordering::Release);
    }

    /// Whether a block of `frames` can be published without overwriting frames the gated
    /// consumer has not read yet.
    pub fn has_room_for(&self, frames: usize) -> bool {
        let gate = self.pace_gate.load(Ordering::Acquire);
        gate == u64::MAX || self.head() + frames as u64 <= gate + self.capacity_frames() as u64
    }

    /// A reader that starts at the newest frame (it sees only what is published from now on).
    pub fn reader_at_head(&self) -> CacheReader {
        CacheReader { next: self.head() }
    }

    /// A reader that starts at sequence number `seq` (it may already be lost).
    pub fn reader_at(&self, seq: u64) -> CacheReader {
        CacheReader { next: seq }
    }

    fn store_frames(&self, start: u64, block: &FrameBlock, n: usize) {
        let l = self.layout;
        for i in 0..n {
            let slot = self.positions.slot(start + i as u64);
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
    }

    fn copy_frames(&self, from: u64, n: usize, out: &mut FrameBlock) {
        let l = self.layout;
        for i in 0..n {
            let slot = self.positions.slot(from + i as u64);
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

impl std::fmt::Debug for PrimaryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrimaryCache")
            .field("layout", &self.layout)
            .field("capacity_frames", &self.capacity_frames())
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl CacheWriter {
    /// Appends the filled frames of `block`, which has the cache's amplifier and analog-input
    /// channels, and its aux channels or, for a cache that holds none, any number of them
    /// (left out). Wait-free.
    pub fn publish(&mut self, block: &FrameBlock) {
        let cache = &*self.cache;
        let (b, c) = (block.layout(), cache.layout);
        debug_assert!(
            b.amplifier_channels == c.amplifier_channels
                && b.analog_in_channels == c.analog_in_channels
                && (b.aux_channels == c.aux_channels || c.aux_channels == 0),
            "block channels {b:?} do not fit the cache's {c:?}"
        );
        let n = block.frames.min(cache.capacity_frames());
        let start = cache.positions.begin_write(n);
        cache.store_frames(start, block, n);
        cache.positions.end_write(start + n as u64);
    }

    /// Before the first publish: numbers the first frame `position` instead of 0, for a cache
    /// that begins in the middle of its stream and keeps the stream's positions (the filtered
    /// cache once a stage first changes the signal). Readers see no frame below it.
    pub fn start_at(&mut self, position: u64) {
        self.cache.positions.start_at(position);
    }

    /// The cache this writer fills.
    pub fn cache(&self) -> &Arc<PrimaryCache> {
        &self.cache
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

    /// Copies up to one block of the next frames into `out`, which must have the cache's
    /// channels but may hold any number of frames. Never blocks; returns zero frames when the
    /// reader is caught up.
    pub fn read(&mut self, cache: &PrimaryCache, out: &mut FrameBlock) -> ReadOutcome {
        let (l, c) = (out.layout(), cache.layout);
        assert!(
            (l.amplifier_channels, l.aux_channels, l.analog_in_channels)
                == (c.amplifier_channels, c.aux_channels, c.analog_in_channels),
            "reader block channels {l:?} differ from the cache's {c:?}"
        );
        let max = out.layout().frames_per_block;
        let taken = cache.positions.read(&mut self.next, max, |from, n| cache.copy_frames(from, n, out));
        out.frames = taken.items;
        ReadOutcome { frames: taken.items, lost: taken.lost }
    }

    /// Copies up to `slots.frame_index.len()` of the next frames into the caller's slices
    /// (a recorder's write buffers, without a block in between). Each slice holds that many
    /// frames of its lane, frame-major; an empty slice skips its lane. Never blocks.
    pub fn read_into(&mut self, cache: &PrimaryCache, slots: CacheSlots<'_>) -> ReadOutcome {
        let l = cache.layout;
        let max = slots.frame_index.len();
        let check = |len: usize, per_frame: usize| len == 0 || len >= max * per_frame;
        assert!(
            check(slots.amplifier.len(), l.amplifier_channels)
                && check(slots.analog_in.len(), l.analog_in_channels)
                && check(slots.digital_in.len(), 1)
                && check(slots.digital_out.len(), 1),
            "slots too small for {max} frames of {l:?}"
        );
        let CacheSlots { frame_index, amplifier, analog_in, digital_in, digital_out } = slots;
        let taken = cache.positions.read(&mut self.next, max, |from, n| {
            for i in 0..n {
                let slot = cache.positions.slot(from + i as u64);
                frame_index[i] = cache.frame_index[slot].load(Ordering::Relaxed);
                if !amplifier.is_empty() {
                    let c = l.amplifier_channels;
                    cache.amplifier.load_frame(slot, &mut amplifier[i * c..(i + 1) * c]);
                }
                if !analog_in.is_empty() {
                    let c = l.analog_in_channels;
                    cache.analog_in.load_frame(slot, &mut analog_in[i * c..(i + 1) * c]);
                }
                if !digital_in.is_empty() || !digital_out.is_empty() {
                    let digital = cache.digital[slot].load(Ordering::Relaxed);
                    if let Some(d) = digital_in.get_mut(i) {
                        *d = digital as u16;
                    }
                    if let Some(d) = digital_out.get_mut(i) {
                        *d = (digital >> 16) as u16;
                    }
                }
            }
        });
        ReadOutcome { frames: taken.items, lost: taken.lost }
    }
}

impl CacheReader {
    /// Reads up to `max` of the next frames' amplifier samples channel-major, for readers that
    /// want channels rather than frames (snapshots): the channels of the packed words `quads`
    /// (word `q` holds channels `4q .. 4q + 4`; a channel past the layout's last reads 0) go
    /// into `out` as rows of `max` values, row `4k + l` being channel `4 * quads[k] + l`,
    /// column `i` the `i`-th frame read. Each word is read down the frames of each stretch of
    /// the ring that does not wrap, so no sequence number is divided per value, and its four
    /// lanes land in four sequential rows. Never blocks; frames the writer overtook are
    /// counted as lost and the read resumes past them, as [`CacheReader::read_into`] does.
    pub fn read_amplifier_quads(
        &mut self,
        cache: &PrimaryCache,
        max: usize,
        quads: &[usize],
        out: &mut [i16],
    ) -> ReadOutcome {
        let lane = &cache.amplifier;
        let stride = lane.words_per_frame;
        assert!(quads.iter().all(|&q| q < stride), "words {quads:?} beyond {stride} per frame");
        assert!(
            out.len() >= quads.len() * 4 * max,
            "{} values cannot hold {} rows of {max}",
            out.len(),
            quads.len() * 4
        );
        let capacity = cache.capacity_frames();
        let taken = cache.positions.read(&mut self.next, max, |from, n| {
            let first_slot = cache.positions.slot(from);
            let before_wrap = n.min(capacity - first_slot);
            // Every cache line the read needs is asked for first: read one quad at a time
            // down the frames, each line would be a separate wait on memory.
            prefetch_quads(&lane.words, stride, quads, first_slot, before_wrap);
            prefetch_quads(&lane.words, stride, quads, 0, n - before_wrap);
            for (k, &quad) in quads.iter().enumerate() {
                let rows = &mut out[4 * k * max..4 * (k + 1) * max];
                let (r0, rest) = rows.split_at_mut(max);
                let (r1, rest) = rest.split_at_mut(max);
                let (r2, r3) = rest.split_at_mut(max);
                for (slot, column, len) in [(first_slot, 0, before_wrap), (0, before_wrap, n - before_wrap)] {
                    let words = lane.words[slot * stride + quad..].iter().step_by(stride).take(len);
                    let span = column..column + len;
                    let lanes = r0[span.clone()].iter_mut().zip(&mut r1[span.clone()]);
                    let lanes = lanes.zip(r2[span.clone()].iter_mut().zip(&mut r3[span]));
                    for (word, ((l0, l1), (l2, l3))) in words.zip(lanes) {
                        let packed = word.load(Ordering::Relaxed);
                        *l0 = packed as i16;
                        *l1 = (packed >> 16) as i16;
                        *l2 = (packed >> 32) as i16;
                        *l3 = (packed >> 48) as i16;
                    }
                }
            }
        });
        ReadOutcome { frames: taken.items, lost: taken.lost }
    }
}

/// Asks the processor to bring in the cache lines holding `quads` (ascending) in the `frames`
/// slots from `first_slot`, without waiting for them.
#[inline]
fn prefetch_quads(words: &[AtomicU64], stride: usize, quads: &[usize], first_slot: usize, frames: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        const WORDS_PER_LINE: usize = 64 / std::mem::size_of::<AtomicU64>();
        for slot in first_slot..first_slot + frames {
            let frame = &words[slot * stride..(slot + 1) * stride];
            let mut last_line = usize::MAX;
            for &quad in quads {
                if quad / WORDS_PER_LINE != last_line {
                    last_line = quad / WORDS_PER_LINE;
                    // SAFETY: a prefetch is only a hint; the address is inside `frame`.
                    unsafe {
                        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                            frame[quad].as_ptr() as *const i8
                        )
                    };
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (words, stride, quads, first_slot, frames);
}

/// Where [`CacheReader::read_into`] copies frames: one slice per lane, all sized for the same
/// number of frames (`frame_index.len()`); an empty slice skips its lane.
#[derive(Debug)]
pub struct CacheSlots<'a> {
    /// Device frame index of each frame.
    pub frame_index: &'a mut [u64],
    /// Amplifier samples, frame-major.
    pub amplifier: &'a mut [i16],
    /// Analog-input codes, frame-major.
    pub analog_in: &'a mut [u16],
    /// Digital-input words.
    pub digital_in: &'a mut [u16],
    /// Digital-output words.
    pub digital_out: &'a mut [u16],
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(b.analog_in[i * l.analog_in_channels..(i + 1) * l.analog_in_channels]
                .iter()
                .all(|&a| a == !(v as u16)));
            assert_eq!(b.digital_in[i], v as u16);
            assert_eq!(b.digital_out[i], (v as u16).rotate_left(3));
        }
    }

    #[test]
    fn reader_gets_every_frame_in_order() {
        let l = layout(5, 16);
        let (cache, mut writer) = PrimaryCache::new(l, 64, 30_000.0);
        let mut reader = cache.reader_at_head();
        let mut out = FrameBlock::new(l);
        let mut expected = 0u64;
        for blk in 0..10 {
            writer.publish(&stamped_block(l, blk * 16));
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
        let (cache, mut writer) = PrimaryCache::new(l, 32, 30_000.0);
        let mut reader = cache.reader_at_head();
        for blk in 0..10 {
            writer.publish(&stamped_block(l, blk * 8));
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
        let (cache, mut writer) = PrimaryCache::new(l, 96, 30_000.0);
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
            writer.publish(&stamped_block(l, blk * 32));
        }
        for r in readers {
            let (got, lost) = r.join().unwrap();
            assert_eq!(got + lost, total_blocks * 32);
        }
    }

    #[test]
    fn slot_reads_are_whole_in_order_and_account_for_every_frame() {
        let l = layout(37, 32);
        let (cache, mut writer) = PrimaryCache::new(l, 96, 30_000.0);
        let total_blocks = 20_000u64;
        let reader = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut reader = cache.reader_at(0);
                // Not a multiple of the block size, so reads straddle published blocks.
                let mut index = vec![0u64; 50];
                let mut amp = vec![0i16; 50 * l.amplifier_channels];
                let mut adc = vec![0u16; 50 * l.analog_in_channels];
                let (mut din, mut dout) = (vec![0u16; 50], vec![0u16; 50]);
                let (mut got, mut lost, mut expected) = (0u64, 0u64, 0u64);
                while got + lost < total_blocks * 32 {
                    // Every other read skips the analog lane, as a recorder without one would.
                    let skip_adc = got % 2 == 1;
                    let slots = CacheSlots {
                        frame_index: &mut index,
                        amplifier: &mut amp,
                        analog_in: if skip_adc { &mut [] } else { &mut adc },
                        digital_in: &mut din,
                        digital_out: &mut dout,
                    };
                    let r = reader.read_into(&cache, slots);
                    lost += r.lost;
                    expected += r.lost;
                    for i in 0..r.frames {
                        assert_eq!(index[i], expected, "frames out of order");
                        let v = (expected % 30_000) as i16;
                        for c in 0..l.amplifier_channels {
                            assert_eq!(amp[i * l.amplifier_channels + c], v.wrapping_add(c as i16), "torn amplifier");
                        }
                        if !skip_adc {
                            let frame = &adc[i * l.analog_in_channels..(i + 1) * l.analog_in_channels];
                            assert!(frame.iter().all(|&a| a == !(v as u16)), "torn analog");
                        }
                        assert_eq!((din[i], dout[i]), (v as u16, (v as u16).rotate_left(3)), "torn digital");
                        expected += 1;
                    }
                    got += r.frames as u64;
                }
                (got, lost)
            })
        };
        for blk in 0..total_blocks {
            writer.publish(&stamped_block(l, blk * 32));
        }
        let (got, lost) = reader.join().unwrap();
        assert_eq!(got + lost, total_blocks * 32);
        assert!(got > 0);
    }
}

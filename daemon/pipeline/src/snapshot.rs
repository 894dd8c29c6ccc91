//! Snapshots: a span of the primary cache, some channels of it, channel-major, in physical
//! units, as clients ask for signals ("the last second of channels 3, 7 and 12").
//!
//! The cache is frame-major because that is how frames arrive and how recordings store them;
//! a client plotting or analysing channels wants each channel's samples together. Amplifier
//! rows are read a block of frames at a time: the cache unpacks the packed words (four
//! channels each) that hold a picked channel into a small channel-major scratch, asking for
//! all their cache lines first so the memory system fetches them together
//! ([`CacheReader::read_amplifier_quads`]), and each picked row is then converted from its
//! scratch row in one vectorized pass ([`amplifier_rows`]); the board's lanes, a few values
//! per frame, go through a small frame-major scratch. Each value is a little-endian `f32`,
//! the layout Allego's `RadixMatrixBytes` carries, written straight into the reply's bytes,
//! which come from a [`BufferPool`].
//!
//! [`CacheReader::read_amplifier_quads`]: crate::CacheReader::read_amplifier_quads
//!
//! A snapshot never blocks the writer. A span that reaches back to the oldest frames can be
//! overwritten while it is read; the read then starts again a little later, and the span the
//! snapshot reports is the one it actually holds.

use std::sync::Mutex;

use ephysd_drivers::{analog_in_volts, AMPLIFIER_UV_PER_UNIT};

use crate::cache::{CacheSlots, PrimaryCache};
use crate::simd::with_avx2;

/// Frames read per pass: 64 frames × 1024 channels × 2 bytes = 128 KiB of scratch at most, so
/// the scratch stays in L2 and the 64 cache lines one channel touches stay in L1 for the next.
const CHUNK_FRAMES: usize = 64;

/// How many times a read that lost its oldest frames to the writer starts again.
const MAX_RESTARTS: usize = 4;

/// A span of cache sequence numbers, `[start, end)` (frames since the stream started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
}

impl FrameSpan {
    /// Frames in the span.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which channels to take from each lane, in the order their rows should come (repeats
/// allowed). Indices must be within the cache's layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPick {
    /// Amplifier channels (rows in µV).
    pub amplifier: Vec<usize>,
    /// Board analog inputs (rows in V).
    pub analog_in: Vec<usize>,
    /// Digital input lines (rows of 0.0 and 1.0).
    pub digital_in: Vec<usize>,
    /// Digital output lines (rows of 0.0 and 1.0).
    pub digital_out: Vec<usize>,
}

impl ChannelPick {
    /// Rows over all lanes.
    pub fn rows(&self) -> usize {
        self.amplifier.len() + self.analog_in.len() + self.digital_in.len() + self.digital_out.len()
    }
}

/// One lane's rows: `rows × frames` little-endian `f32`, channel-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    /// Rows (channels).
    pub rows: usize,
    /// Columns (frames).
    pub frames: usize,
    /// `rows * frames * 4` bytes.
    pub bytes: Vec<u8>,
}

impl Matrix {
    fn new(rows: usize, frames: usize, pool: &BufferPool) -> Self {
        Matrix { rows, frames, bytes: pool.take(rows * frames * 4) }
    }

    /// The value at `row`, `frame`.
    pub fn value(&self, row: usize, frame: usize) -> f32 {
        let at = (row * self.frames + frame) * 4;
        f32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("four bytes"))
    }
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The frames served (may be later than asked if the oldest were overwritten meanwhile).
    pub span: FrameSpan,
    /// Amplifier rows, µV.
    pub amplifier: Matrix,
    /// Analog-input rows, V.
    pub analog_in: Matrix,
    /// Digital-input rows, 0/1.
    pub digital_in: Matrix,
    /// Digital-output rows, 0/1.
    pub digital_out: Matrix,
}

/// Buffers of earlier snapshots, kept for the next ones.
///
/// A second of 1024 channels is 123 MB. Freshly allocated memory of that size comes from the
/// kernel page by page (30 000 page faults, each zeroing a page), which on a virtual machine
/// costs more than filling it; a buffer that served a reply before is already mapped. The
/// pool keeps at most [`BufferPool::MAX_BYTES`] and hands out the smallest buffer that fits.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// The most the pool keeps (about 4 s of 1024 channels).
    pub const MAX_BYTES: usize = 512 << 20;

    /// A buffer of exactly `len` bytes (contents unspecified: every byte is overwritten).
    pub fn take(&self, len: usize) -> Vec<u8> {
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            let best = (0..free.len()).filter(|&i| free[i].capacity() >= len).min_by_key(|&i| free[i].capacity());
            best.map(|i| free.swap_remove(i))
        };
        let mut buf = reused.unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Takes a buffer back, unless the pool is full (then it is freed).
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = free.iter().map(Vec::capacity).sum();
        if held + buf.capacity() <= Self::MAX_BYTES {
            free.push(buf);
        }
    }

    /// Bytes the pool holds.
    pub fn held_bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).iter().map(Vec::capacity).sum()
    }
}

/// A snapshot that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Nothing of the span is in the cache.
    #[error("frames {}..{} are not in the cache, which holds {}..{}", asked.start, asked.end, held.start, held.end)]
    NotHeld {
        /// What was asked.
        asked: FrameSpan,
        /// What the cache held when asked.
        held: FrameSpan,
    },
    /// The writer kept overwriting the span faster than it could be read.
    #[error("frames from {start} were overwritten while being read; ask for a more recent span")]
    Overrun {
        /// Where the last attempt started.
        start: u64,
    },
}

/// Reads `asked`, clipped to what the cache holds, for the channels `pick` names.
///
/// # Panics
/// If `pick` names a channel outside the cache's layout (callers validate requests first).
pub fn snapshot(
    cache: &PrimaryCache,
    asked: FrameSpan,
    pick: &ChannelPick,
    pool: &BufferPool,
) -> Result<Snapshot, SnapshotError> {
    let layout = cache.layout();
    assert!(
        pick.amplifier.iter().all(|&c| c < layout.amplifier_channels)
            && pick.analog_in.iter().all(|&c| c < layout.analog_in_channels)
            && pick.digital_in.iter().chain(&pick.digital_out).all(|&c| c < 16),
        "channel pick {pick:?} outside {layout:?}"
    );
    let mut start = asked.start;
    for _ in 0..=MAX_RESTARTS {
        let held = FrameSpan { start: cache.oldest(), end: cache.head() };
        let span = FrameSpan { start: start.max(held.start), end: asked.end.min(held.end) };
        if span.is_empty() {
            return Err(SnapshotError::NotHeld { asked, held });
        }
        let mut out = Snapshot {
            span,
            amplifier: Matrix::default(),
            analog_in: Matrix::new(pick.analog_in.len(), span.len() as usize, pool),
            digital_in: Matrix::new(pick.digital_in.len(), span.len() as usize, pool),
            digital_out: Matrix::new(pick.digital_out.len(), span.len() as usize, pool),
        };
        let read = read_board_lanes(cache, &mut out, pick)
            .and_then(|()| amplifier_rows(cache, span, &pick.amplifier, pool).map_err(|_| cache.oldest()));
        match read {
            Ok(amplifier) => return Ok(Snapshot { amplifier, ..out }),
            // Lost to the writer: start again past the frames it is about to overwrite.
            Err(lost_until) => {
                for m in [out.analog_in, out.digital_in, out.digital_out] {
                    pool.give(m.bytes);
                }
                start = lost_until + (cache.capacity_frames() as u64 / 16)
            }
        }
    }
    Err(SnapshotError::Overrun { start })
}

/// Reads the amplifier rows of `channels` (repeats allowed) for exactly `span`, as one
/// matrix: the piece a streamed reply sends while it reads the next. Unlike [`snapshot`] it
/// does not move the span: frames the cache no longer (or not yet) holds are an error.
pub fn amplifier_rows(
    cache: &PrimaryCache,
    span: FrameSpan,
    channels: &[usize],
    pool: &BufferPool,
) -> Result<Matrix, SnapshotError> {
    let layout = cache.layout();
    assert!(channels.iter().all(|&c| c < layout.amplifier_channels), "channels {channels:?} outside {layout:?}");
    let frames = span.len() as usize;
    let mut out = Matrix::new(channels.len(), frames, pool);
    let quads = Quads::new(channels);
    let mut scratch = vec![0i16; quads.words.len() * 4 * CHUNK_FRAMES];
    let mut done = 0usize;
    while done < frames && !channels.is_empty() {
        let want = (frames - done).min(CHUNK_FRAMES);
        let mut reader = cache.reader_at(span.start + done as u64);
        let got = reader.read_amplifier_quads(cache, want, &quads.words, &mut scratch);
        if got.lost > 0 || got.frames < want {
            pool.give(out.bytes);
            let held = FrameSpan { start: cache.oldest(), end: cache.head() };
            return Err(if got.lost > 0 {
                SnapshotError::Overrun { start: span.start }
            } else {
                SnapshotError::NotHeld { asked: span, held }
            });
        }
        for (row, &source) in quads.source_row.iter().enumerate() {
            let at = (row * frames + done) * 4;
            units_to_uv_le(&mut out.bytes[at..at + want * 4], &scratch[source * want..(source + 1) * want]);
        }
        done += want;
    }
    Ok(out)
}

/// One attempt at filling the board's lanes of `out` (sized for its span), through a small
/// frame-major scratch (they are a few values per frame): `Err` says where the read got to if
/// the writer overwrote part of the span meanwhile.
fn read_board_lanes(cache: &PrimaryCache, out: &mut Snapshot, pick: &ChannelPick) -> Result<(), u64> {
    let layout = cache.layout();
    let span = out.span;
    let frames = span.len() as usize;
    let lane_len = |wanted: bool, per_frame: usize| if wanted { CHUNK_FRAMES * per_frame } else { 0 };
    let mut frame_index = vec![0u64; CHUNK_FRAMES];
    let mut analog_in = vec![0u16; lane_len(!pick.analog_in.is_empty(), layout.analog_in_channels)];
    let mut digital_in = vec![0u16; lane_len(!pick.digital_in.is_empty(), 1)];
    let mut digital_out = vec![0u16; lane_len(!pick.digital_out.is_empty(), 1)];
    if analog_in.is_empty() && digital_in.is_empty() && digital_out.is_empty() {
        return Ok(());
    }
    let mut done = 0usize;
    while done < frames {
        let want = (frames - done).min(CHUNK_FRAMES);
        let mut reader = cache.reader_at(span.start + done as u64);
        let got = reader.read_into(
            cache,
            CacheSlots {
                frame_index: &mut frame_index[..want],
                amplifier: &mut [],
                analog_in: &mut analog_in,
                digital_in: &mut digital_in,
                digital_out: &mut digital_out,
            },
        );
        if got.lost > 0 || got.frames < want {
            return Err(reader.position());
        }
        scatter(&analog_in, layout.analog_in_channels, &pick.analog_in, &mut out.analog_in, done, want, |v: u16| {
            analog_in_volts(v) as f32
        });
        scatter_bits(&digital_in, &pick.digital_in, &mut out.digital_in, done, want);
        scatter_bits(&digital_out, &pick.digital_out, &mut out.digital_out, done, want);
        done += want;
    }
    Ok(())
}

/// The packed cache words (four channels each) a pick needs, and where each picked channel
/// lands in the channel-major scratch [`CacheReader::read_amplifier_quads`] fills.
///
/// [`CacheReader::read_amplifier_quads`]: crate::CacheReader::read_amplifier_quads
struct Quads {
    /// The words holding a picked channel, ascending, each once.
    words: Vec<usize>,
    /// For each picked row, its channel's row in the scratch (`4 * index in words + lane`).
    source_row: Vec<usize>,
}

impl Quads {
    fn new(pick: &[usize]) -> Self {
        let mut words: Vec<usize> = pick.iter().map(|c| c / 4).collect();
        words.sort_unstable();
        words.dedup();
        let source_row = pick
            .iter()
            .map(|&c| 4 * words.binary_search(&(c / 4)).expect("every picked word is listed") + c % 4)
            .collect();
        Quads { words, source_row }
    }
}

with_avx2! {
    /// Amplifier units as little-endian `f32` µV, the layout of a reply's rows (as many
    /// values as both slices hold). The product is formed in `f64` and rounded once, so a
    /// value is the same whichever copy of the loop runs.
    fn units_to_uv_le(out: &mut [u8], units: &[i16]) {
        for (cell, &v) in out.chunks_exact_mut(4).zip(units) {
            cell.copy_from_slice(&((f64::from(v) * AMPLIFIER_UV_PER_UNIT) as f32).to_le_bytes());
        }
    }
}

/// Copies `n` frames of the picked channels from frame-major `scratch` (`stride` values per
/// frame) into their rows of `out`, from column `at`, converting each value.
fn scatter<T: Copy>(
    scratch: &[T],
    stride: usize,
    pick: &[usize],
    out: &mut Matrix,
    at: usize,
    n: usize,
    convert: impl Fn(T) -> f32,
) {
    for (row, &channel) in pick.iter().enumerate() {
        let first = (row * out.frames + at) * 4;
        let dst = &mut out.bytes[first..first + n * 4];
        for (i, cell) in dst.chunks_exact_mut(4).enumerate() {
            cell.copy_from_slice(&convert(scratch[i * stride + channel]).to_le_bytes());
        }
    }
}

/// Like [`scatter`] for digital words: each row is one line (bit) as 0.0 or 1.0.
fn scatter_bits(words: &[u16], pick: &[usize], out: &mut Matrix, at: usize, n: usize) {
    for (row, &line) in pick.iter().enumerate() {
        let first = (row * out.frames + at) * 4;
        let dst = &mut out.bytes[first..first + n * 4];
        for (cell, word) in dst.chunks_exact_mut(4).zip(&words[..n]) {
            let bit = f32::from((word >> line) & 1);
            cell.copy_from_slice(&bit.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_drivers::{BlockLayout, FrameBlock, ANALOG_IN_ZERO_CODE};

    fn layout() -> BlockLayout {
        BlockLayout { amplifier_channels: 6, aux_channels: 1, analog_in_channels: 2, frames_per_block: 100 }
    }

    /// Publishes `blocks` blocks whose amplifier value is `seq * 10 + channel` (mod i16) and
    /// whose digital-in word is the sequence number.
    fn filled_cache(capacity: usize, blocks: u64) -> std::sync::Arc<PrimaryCache> {
        let l = layout();
        let (cache, mut writer) = PrimaryCache::new(l, capacity, 1000.0);
        for b in 0..blocks {
            let mut block = FrameBlock::new(l);
            block.frames = l.frames_per_block;
            for i in 0..block.frames {
                let seq = b * l.frames_per_block as u64 + i as u64;
                block.frame_index[i] = seq;
                for c in 0..l.amplifier_channels {
                    block.amplifier[i * l.amplifier_channels + c] = ((seq * 10 + c as u64) % 30000) as i16;
                }
                block.analog_in[i * 2] = ANALOG_IN_ZERO_CODE + 3200; // 1 V
                block.analog_in[i * 2 + 1] = ANALOG_IN_ZERO_CODE;
                block.digital_in[i] = seq as u16;
                block.digital_out[i] = 0b10;
            }
            writer.publish(&block);
        }
        cache
    }

    fn uv(seq: u64, channel: usize) -> f32 {
        (f64::from(((seq * 10 + channel as u64) % 30000) as i16) * AMPLIFIER_UV_PER_UNIT) as f32
    }

    #[test]
    fn rows_follow_the_pick_in_order_with_repeats_in_physical_units() {
        let cache = filled_cache(1000, 5);
        let pick = ChannelPick {
            amplifier: vec![4, 0, 4],
            analog_in: vec![0, 1],
            digital_in: vec![0, 1],
            digital_out: vec![1],
        };
        let s = snapshot(&cache, FrameSpan { start: 120, end: 420 }, &pick, &BufferPool::default()).unwrap();
        assert_eq!(s.span, FrameSpan { start: 120, end: 420 });
        assert_eq!((s.amplifier.rows, s.amplifier.frames, s.amplifier.bytes.len()), (3, 300, 3 * 300 * 4));
        for f in 0..300 {
            let seq = 120 + f as u64;
            assert_eq!(s.amplifier.value(0, f), uv(seq, 4));
            assert_eq!(s.amplifier.value(1, f), uv(seq, 0));
            assert_eq!(s.amplifier.value(2, f), uv(seq, 4));
            assert_eq!(s.analog_in.value(0, f), 1.0);
            assert_eq!(s.analog_in.value(1, f), 0.0);
            assert_eq!(s.digital_in.value(0, f), (seq & 1) as f32);
            assert_eq!(s.digital_in.value(1, f), ((seq >> 1) & 1) as f32);
            assert_eq!(s.digital_out.value(0, f), 1.0);
        }
    }

    #[test]
    fn a_span_is_clipped_to_what_the_cache_holds_and_nothing_held_is_an_error() {
        // 1000 frames of capacity, 1500 published: 500..1500 held.
        let cache = filled_cache(1000, 15);
        let pick = ChannelPick { amplifier: vec![1], ..Default::default() };
        let s = snapshot(&cache, FrameSpan { start: 0, end: 10_000 }, &pick, &BufferPool::default()).unwrap();
        assert_eq!(s.span, FrameSpan { start: 500, end: 1500 });
        assert_eq!(s.amplifier.value(0, 0), uv(500, 1));
        assert_eq!(s.amplifier.value(0, 999), uv(1499, 1));
        let e = snapshot(&cache, FrameSpan { start: 0, end: 400 }, &pick, &BufferPool::default()).unwrap_err();
        assert_eq!(
            e,
            SnapshotError::NotHeld {
                asked: FrameSpan { start: 0, end: 400 },
                held: FrameSpan { start: 500, end: 1500 }
            }
        );
        assert!(snapshot(&cache, FrameSpan { start: 1500, end: 1600 }, &pick, &BufferPool::default()).is_err());
    }

    #[test]
    fn the_pool_reuses_the_smallest_buffer_that_fits_and_keeps_a_bounded_amount() {
        let pool = BufferPool::default();
        let mut big = pool.take(1000);
        big.fill(7);
        let ptr = big.as_ptr();
        pool.give(big);
        pool.give(Vec::with_capacity(100));
        let again = pool.take(900);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 900), "the 1000-byte buffer, not the 100-byte one");
        assert_eq!(pool.held_bytes(), 100);
        pool.give(Vec::with_capacity(BufferPool::MAX_BYTES));
        assert_eq!(pool.held_bytes(), 100, "a buffer that would overfill the pool is freed");
    }

    #[test]
    fn amplifier_rows_read_exactly_the_span_or_fail() {
        let cache = filled_cache(1000, 15); // 500..1500 held
        let pool = BufferPool::default();
        let m = amplifier_rows(&cache, FrameSpan { start: 600, end: 900 }, &[3, 1, 3], &pool).unwrap();
        assert_eq!((m.rows, m.frames), (3, 300));
        for f in 0..300 {
            let seq = 600 + f as u64;
            assert_eq!((m.value(0, f), m.value(1, f), m.value(2, f)), (uv(seq, 3), uv(seq, 1), uv(seq, 3)));
        }
        // Across the ring's end (slot 999 to slot 0 falls inside a chunk), every channel in
        // reverse order plus repeats, two of them from the layout's last, partly used word.
        let pick = [5, 4, 3, 2, 1, 0, 5, 0];
        let m = amplifier_rows(&cache, FrameSpan { start: 950, end: 1450 }, &pick, &pool).unwrap();
        assert_eq!((m.rows, m.frames), (8, 500));
        for (row, &channel) in pick.iter().enumerate() {
            for f in 0..500 {
                assert_eq!(m.value(row, f), uv(950 + f as u64, channel), "row {row}, frame {f}");
            }
        }
        assert!(matches!(
            amplifier_rows(&cache, FrameSpan { start: 400, end: 900 }, &[1], &pool),
            Err(SnapshotError::Overrun { .. })
        ));
        assert!(matches!(
            amplifier_rows(&cache, FrameSpan { start: 1400, end: 1600 }, &[1], &pool),
            Err(SnapshotError::NotHeld { .. })
        ));
    }

    #[test]
    fn an_empty_pick_serves_the_span_with_empty_matrices() {
        let cache = filled_cache(1000, 2);
        let s = snapshot(&cache, FrameSpan { start: 10, end: 20 }, &ChannelPick::default(), &BufferPool::default())
            .unwrap();
        assert_eq!(s.span.len(), 10);
        assert!(s.amplifier.bytes.is_empty() && s.digital_out.bytes.is_empty());
    }

    #[test]
    fn a_read_racing_the_writer_never_returns_torn_or_misplaced_frames() {
        let l = layout();
        let (cache, mut writer) = PrimaryCache::new(l, 400, 1000.0);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut block = FrameBlock::new(l);
                    block.frames = l.frames_per_block;
                    for i in 0..block.frames {
                        for c in 0..l.amplifier_channels {
                            block.amplifier[i * l.amplifier_channels + c] = ((seq * 10 + c as u64) % 30000) as i16;
                        }
                        block.frame_index[i] = seq;
                        seq += 1;
                    }
                    writer.publish(&block);
                    // About a real-time pace: the ring turns over every few hundred µs.
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            })
        };
        let pick = ChannelPick { amplifier: vec![5, 2], ..Default::default() };
        let pool = BufferPool::default();
        while cache.head() < 1000 {
            std::thread::yield_now();
        }
        let mut served = 0;
        for _ in 0..2000 {
            let head = cache.head();
            match snapshot(&cache, FrameSpan { start: head.saturating_sub(400), end: head }, &pick, &pool) {
                Ok(s) => {
                    for f in 0..s.span.len() as usize {
                        let seq = s.span.start + f as u64;
                        assert_eq!(s.amplifier.value(0, f), uv(seq, 5), "frame {seq}");
                        assert_eq!(s.amplifier.value(1, f), uv(seq, 2), "frame {seq}");
                    }
                    pool.give(s.amplifier.bytes);
                    served += 1;
                }
                Err(SnapshotError::Overrun { .. } | SnapshotError::NotHeld { .. }) => {}
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writing.join().unwrap();
        assert!(served > 0, "no snapshot was ever served");
    }
}

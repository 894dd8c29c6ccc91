//! The filtered tap: a stage that publishes the signal as the stages before it left it into a
//! cache of its own, so readers can ask for filtered data (Allego's `apply_dsp`) over any
//! range the cache still holds, the way they ask the primary cache for raw data.
//!
//! The filtered cache holds the amplifier channels and the board's analog inputs (no aux
//! inputs, which no stage touches), with the digital lines alongside, in the primary cache's
//! units ([`ephysd_drivers::AMPLIFIER_UV_PER_UNIT`] µV per unit, analog-input codes), rounded
//! to the nearest unit. A filtered value beyond the 16-bit range (±6.39 mV, far outside any
//! filtered neural signal) is stored at the range's end and counted.
//!
//! While no stage before the tap has changed the signal (no filter, or only filters before the
//! chain's write-back, whose output is what the primary cache stores), the filtered signal *is*
//! the primary cache's: the tap then publishes nothing and readers are sent to the primary
//! cache ([`FilteredCache::current`]). Copying it would write every sample a second time on the
//! acquisition thread, about a tenth of that thread's work at 1024 channels. The first block a
//! stage changes starts the tap's own cache at that block's position; from then on the tap
//! publishes every block, and readers read its cache, which holds the signal from that frame on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ephysd_drivers::{BlockLayout, FrameBlock};

use crate::cache::{CacheWriter, PrimaryCache};
use crate::stage::{Stage, StageBlock};

/// Publishes the stage signal into a filtered cache.
pub struct FilteredTap {
    writer: CacheWriter,
    /// The stream's primary cache: its head is the position of the block being processed.
    primary: Arc<PrimaryCache>,
    /// True until the first block a stage changed.
    mirroring: bool,
    /// [`Self::mirroring`] for readers.
    shared_mirroring: Arc<AtomicBool>,
    block: FrameBlock,
    saturated: Arc<AtomicU64>,
}

/// Where readers find the filtered signal of a stream.
#[derive(Clone)]
pub struct FilteredCache {
    primary: Arc<PrimaryCache>,
    /// The tap's own cache; `None` for a stream without a tap (the signal is the primary's).
    own: Option<Arc<PrimaryCache>>,
    mirroring: Arc<AtomicBool>,
}

impl FilteredCache {
    /// The filtered signal of a stream without processing: the primary cache itself.
    pub fn unfiltered(primary: Arc<PrimaryCache>) -> FilteredCache {
        FilteredCache { primary, own: None, mirroring: Arc::new(AtomicBool::new(true)) }
    }

    /// The cache that holds the filtered signal now: the primary cache while no stage has
    /// changed the signal, the tap's own cache once one has. Positions are the stream's in
    /// both, so a reader can switch between them at any time.
    pub fn current(&self) -> &Arc<PrimaryCache> {
        match &self.own {
            Some(own) if !self.mirroring.load(Ordering::Acquire) => own,
            _ => &self.primary,
        }
    }

    /// Frames of filtered signal kept: the tap's cache's length (`processing.filtered_cache_seconds`),
    /// which the primary cache, when it stands in, holds at least.
    pub fn capacity_frames(&self) -> usize {
        self.own.as_ref().unwrap_or(&self.primary).capacity_frames()
    }

    /// Frames per second of the stream.
    pub fn sample_rate_hz(&self) -> f64 {
        self.primary.sample_rate_hz()
    }

    /// Position of the oldest frame of filtered signal held: what [`Self::current`] holds,
    /// no further back than [`Self::capacity_frames`] from its head.
    pub fn oldest(&self) -> u64 {
        let cache = self.current();
        cache.oldest().max(cache.head().saturating_sub(self.capacity_frames() as u64))
    }
}

impl From<Arc<PrimaryCache>> for FilteredCache {
    /// [`FilteredCache::unfiltered`].
    fn from(primary: Arc<PrimaryCache>) -> FilteredCache {
        FilteredCache::unfiltered(primary)
    }
}

impl std::fmt::Debug for FilteredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let own = self.own.is_some() && !self.mirroring.load(Ordering::Relaxed);
        f.debug_struct("FilteredCache").field("own_cache", &own).field("current", self.current()).finish()
    }
}

impl FilteredTap {
    /// A tap for streams of `layout` and its cache, holding the last `capacity_frames`, which
    /// stands in for `primary` (the stream's primary cache) until a stage changes the signal.
    /// Returns the tap, the filtered signal for readers and the count of saturated samples.
    pub fn new(
        layout: BlockLayout,
        capacity_frames: usize,
        primary: Arc<PrimaryCache>,
    ) -> (FilteredTap, FilteredCache, Arc<AtomicU64>) {
        let filtered_layout = BlockLayout { aux_channels: 0, ..layout };
        let (cache, writer) = PrimaryCache::new(filtered_layout, capacity_frames, primary.sample_rate_hz());
        let saturated = Arc::new(AtomicU64::new(0));
        let mirroring = Arc::new(AtomicBool::new(true));
        let mut block = FrameBlock::new(filtered_layout);
        crate::prefault::touch_block(&mut block);
        let readers =
            FilteredCache { primary: Arc::clone(&primary), own: Some(cache), mirroring: Arc::clone(&mirroring) };
        let tap = FilteredTap {
            writer,
            primary,
            mirroring: true,
            shared_mirroring: mirroring,
            block,
            saturated: Arc::clone(&saturated),
        };
        (tap, readers, saturated)
    }
}

impl Stage for FilteredTap {
    fn name(&self) -> &str {
        "filtered tap"
    }

    /// While no stage changed the signal the tap copies the raw block (or, mirroring, nothing),
    /// and an amplifier signal never converted is the raw block's own samples (see
    /// `SignalBlock::store_lanes`).
    fn takes_unconverted(&self) -> bool {
        true
    }

    fn process(&mut self, block: &mut StageBlock<'_>) {
        let modified = block.signal.is_modified();
        if self.mirroring {
            if !modified {
                // The primary cache will hold this very block once the chain has run.
                return;
            }
            // The stages run before the block is published, so the primary's head is the
            // position of this block's first frame.
            self.writer.start_at(self.primary.head());
        }
        if !modified {
            // The block's own samples are the signal, rounded: the filtered cache takes them
            // as they are (leaving out the aux inputs it does not hold).
            self.writer.publish(block.raw);
        } else {
            let frames = block.signal.frames();
            let out = &mut self.block;
            out.frames = frames;
            out.frame_index[..frames].copy_from_slice(&block.raw.frame_index[..frames]);
            out.digital_in[..frames].copy_from_slice(&block.raw.digital_in[..frames]);
            out.digital_out[..frames].copy_from_slice(&block.raw.digital_out[..frames]);
            let saturated = block.signal.store_lanes(block.raw, &mut out.amplifier, &mut out.analog_in);
            if saturated > 0 {
                self.saturated.fetch_add(saturated, Ordering::Relaxed);
            }
            self.writer.publish(out);
        }
        if self.mirroring {
            self.mirroring = false;
            self.shared_mirroring.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ReadOutcome;
    use crate::stage::StageChain;

    /// Doubles the signal: a stand-in for a filter.
    struct Gain(f32);

    impl Stage for Gain {
        fn name(&self) -> &str {
            "gain"
        }
        fn process(&mut self, block: &mut StageBlock<'_>) {
            block.signal.samples_mut().iter_mut().for_each(|v| *v *= self.0);
        }
    }

    /// Doubles the signal while `on` is set, leaves it alone otherwise.
    struct Switchable(Arc<AtomicBool>);

    impl Stage for Switchable {
        fn name(&self) -> &str {
            "switchable gain"
        }
        fn process(&mut self, block: &mut StageBlock<'_>) {
            if self.0.load(Ordering::Relaxed) {
                block.signal.samples_mut().iter_mut().for_each(|v| *v *= 2.0);
            }
        }
    }

    fn primary(layout: BlockLayout) -> (Arc<PrimaryCache>, CacheWriter) {
        PrimaryCache::new(layout, 64, 1000.0)
    }

    /// One pass of the acquisition thread: the stages, then the primary cache.
    fn acquire(chain: &mut StageChain, writer: &mut CacheWriter, raw: &mut FrameBlock) {
        chain.run_block(raw);
        writer.publish(raw);
    }

    #[test]
    fn with_nothing_changed_readers_are_sent_to_the_primary_cache() {
        let layout = BlockLayout { amplifier_channels: 3, aux_channels: 0, analog_in_channels: 2, frames_per_block: 4 };
        let (primary, mut writer) = primary(layout);
        let (tap, filtered, saturated) = FilteredTap::new(layout, 16, Arc::clone(&primary));
        let mut chain = StageChain::new(layout, vec![Box::new(Gain(1.0)), Box::new(tap)])
            .with_write_back(1, Arc::new(AtomicU64::new(0)));
        let mut raw = FrameBlock::new(layout);
        raw.frames = 4;
        raw.amplifier.copy_from_slice(&[i16::MIN, -1, 0, 1, i16::MAX, 7, -7, 300, -300, 5, 6, 12345]);
        raw.analog_in.copy_from_slice(&[0, 1, 32768, 65535, 100, 200, 300, 400]);
        // The gain marks the signal changed; the write-back after it makes the block match it
        // again, so the filtered signal is the primary cache's (twice: the state carries over).
        for _ in 0..2 {
            acquire(&mut chain, &mut writer, &mut raw);
        }
        assert!(Arc::ptr_eq(filtered.current(), &primary), "{filtered:?}");
        assert_eq!(filtered.own.as_ref().map(|own| own.head()), Some(0), "the tap copied the blocks");
        assert_eq!((filtered.oldest(), filtered.capacity_frames()), (0, 16));
        let cache = filtered.current();
        let mut out = FrameBlock::new(cache.layout());
        let mut reader = cache.reader_at(0);
        for _ in 0..2 {
            assert_eq!(reader.read(cache, &mut out).frames, 4);
            assert_eq!(out.amplifier, raw.amplifier);
            assert_eq!(out.analog_in, raw.analog_in);
        }
        assert_eq!(saturated.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_tap_publishes_what_the_stages_before_it_made_and_counts_saturation() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 1, analog_in_channels: 1, frames_per_block: 4 };
        let (primary, mut writer) = primary(layout);
        let (tap, filtered, saturated) = FilteredTap::new(layout, 16, primary);
        let mut chain = StageChain::new(layout, vec![Box::new(Gain(2.0)), Box::new(tap)]);
        let mut raw = FrameBlock::new(layout);
        raw.frames = 3;
        raw.frame_index[..3].copy_from_slice(&[7, 8, 9]);
        raw.amplifier[..6].copy_from_slice(&[10, -10, 20000, -3, 0, 1]);
        raw.digital_in[..3].copy_from_slice(&[1, 2, 3]);
        acquire(&mut chain, &mut writer, &mut raw);
        let cache = filtered.current();
        let mut out = FrameBlock::new(cache.layout());
        let got = cache.reader_at(0).read(cache, &mut out);
        assert_eq!(got, ReadOutcome { frames: 3, lost: 0 });
        assert_eq!(&out.frame_index[..3], &[7, 8, 9]);
        assert_eq!(&out.amplifier[..6], &[20, -20, i16::MAX, -6, 0, 2]);
        assert_eq!(&out.digital_in[..3], &[1, 2, 3]);
        assert_eq!(saturated.load(Ordering::Relaxed), 1);
        assert_eq!(cache.layout().aux_channels, 0);
    }

    #[test]
    fn a_stage_that_starts_changing_the_signal_mid_stream_starts_the_tap_cache_at_that_frame() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 0, analog_in_channels: 0, frames_per_block: 4 };
        let (primary, mut writer) = primary(layout);
        let (tap, filtered, _) = FilteredTap::new(layout, 16, Arc::clone(&primary));
        let on = Arc::new(AtomicBool::new(false));
        let mut chain = StageChain::new(layout, vec![Box::new(Switchable(Arc::clone(&on))), Box::new(tap)]);
        let mut raw = FrameBlock::new(layout);
        raw.frames = 4;
        let mut next = 0u64;
        let mut run = |chain: &mut StageChain, raw: &mut FrameBlock, blocks: usize| {
            for _ in 0..blocks {
                for f in 0..4 {
                    raw.frame_index[f] = next;
                    raw.amplifier[2 * f..2 * f + 2].copy_from_slice(&[next as i16, -(next as i16)]);
                    next += 1;
                }
                acquire(chain, &mut writer, raw);
            }
        };
        run(&mut chain, &mut raw, 2);
        assert!(Arc::ptr_eq(filtered.current(), &primary));
        on.store(true, Ordering::Relaxed);
        run(&mut chain, &mut raw, 2);
        // The tap's cache holds frames 8.. (doubled), numbered as the stream numbers them.
        let own = Arc::clone(filtered.current());
        assert!(!Arc::ptr_eq(&own, &primary));
        assert_eq!((own.oldest(), own.head(), filtered.oldest()), (8, 16, 8));
        assert_eq!(own.frame_index_at(7), None);
        assert_eq!(own.frame_index_at(8), Some(8));
        let mut out = FrameBlock::new(own.layout());
        let mut reader = own.reader_at(0);
        assert_eq!(reader.read(&own, &mut out), ReadOutcome { frames: 4, lost: 8 });
        assert_eq!(&out.amplifier[..8], &[16, -16, 18, -18, 20, -20, 22, -22]);
        // Unchanged blocks after that are still published there (as they are).
        on.store(false, Ordering::Relaxed);
        run(&mut chain, &mut raw, 1);
        assert!(Arc::ptr_eq(filtered.current(), &own));
        assert_eq!(reader.read(&own, &mut out), ReadOutcome { frames: 4, lost: 0 });
        assert_eq!(reader.read(&own, &mut out), ReadOutcome { frames: 4, lost: 0 });
        assert_eq!(&out.amplifier[..8], &[16, -16, 17, -17, 18, -18, 19, -19]);
    }

    #[test]
    fn a_stream_without_a_tap_reads_the_primary_cache() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 1, analog_in_channels: 0, frames_per_block: 4 };
        let (primary, _writer) = PrimaryCache::new(layout, 32, 1000.0);
        let filtered = FilteredCache::unfiltered(Arc::clone(&primary));
        assert!(Arc::ptr_eq(filtered.current(), &primary));
        assert_eq!((filtered.capacity_frames(), filtered.sample_rate_hz()), (32, 1000.0));
    }
}

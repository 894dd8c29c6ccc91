//! The filtered tap: a stage that publishes the signal as the stages before it left it into a
//! cache of its own, so readers can ask for filtered data (Allego's `apply_dsp`) over any
//! range the cache still holds, the way they ask the primary cache for raw data.
//!
//! The filtered cache holds the amplifier channels and the board's analog inputs (no aux
//! inputs, which no stage touches), with the digital lines alongside, in the primary cache's
//! units ([`ephysd_drivers::AMPLIFIER_UV_PER_UNIT`] µV per unit, analog-input codes), rounded
//! to the nearest unit. A filtered value beyond the 16-bit range (±6.39 mV, far outside any
//! filtered neural signal) is stored at the range's end and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ephysd_drivers::{BlockLayout, FrameBlock};

use crate::cache::{CacheWriter, PrimaryCache};
use crate::stage::{Stage, StageBlock};

/// Publishes the stage signal into a filtered cache.
pub struct FilteredTap {
    writer: CacheWriter,
    block: FrameBlock,
    saturated: Arc<AtomicU64>,
}

impl FilteredTap {
    /// A tap for streams of `layout` and its cache, holding the last `capacity_frames`.
    /// Returns the tap, the cache for readers and the count of saturated samples.
    pub fn new(
        layout: BlockLayout,
        capacity_frames: usize,
        sample_rate_hz: f64,
    ) -> (FilteredTap, Arc<PrimaryCache>, Arc<AtomicU64>) {
        let filtered_layout = BlockLayout { aux_channels: 0, ..layout };
        let (cache, writer) = PrimaryCache::new(filtered_layout, capacity_frames, sample_rate_hz);
        let saturated = Arc::new(AtomicU64::new(0));
        let mut block = FrameBlock::new(filtered_layout);
        crate::prefault::touch_block(&mut block);
        let tap = FilteredTap { writer, block, saturated: Arc::clone(&saturated) };
        (tap, cache, saturated)
    }
}

impl Stage for FilteredTap {
    fn name(&self) -> &str {
        "filtered tap"
    }

    /// While no stage changed the signal the tap copies the raw block, and an amplifier signal
    /// never converted is the raw block's own samples (see `SignalBlock::store_lanes`).
    fn takes_unconverted(&self) -> bool {
        true
    }

    fn process(&mut self, block: &mut StageBlock<'_>) {
        if !block.signal.is_modified() {
            // The block's own samples are the signal, rounded: the filtered cache takes them
            // as they are (leaving out the aux inputs it does not hold).
            self.writer.publish(block.raw);
            return;
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn with_nothing_changed_the_tap_publishes_the_blocks_own_samples() {
        let layout = BlockLayout { amplifier_channels: 3, aux_channels: 0, analog_in_channels: 2, frames_per_block: 4 };
        let (tap, cache, saturated) = FilteredTap::new(layout, 16, 1000.0);
        let mut chain = StageChain::new(layout, vec![Box::new(Gain(1.0)), Box::new(tap)])
            .with_write_back(1, std::sync::Arc::new(AtomicU64::new(0)));
        let mut raw = FrameBlock::new(layout);
        raw.frames = 4;
        raw.amplifier.copy_from_slice(&[i16::MIN, -1, 0, 1, i16::MAX, 7, -7, 300, -300, 5, 6, 12345]);
        raw.analog_in.copy_from_slice(&[0, 1, 32768, 65535, 100, 200, 300, 400]);
        // The gain marks the signal changed; the write-back after it makes the block match it
        // again, so the tap copies the block's samples (twice: the state carries over).
        for _ in 0..2 {
            chain.run_block(&mut raw);
        }
        let mut out = FrameBlock::new(cache.layout());
        let mut reader = cache.reader_at(0);
        for _ in 0..2 {
            assert_eq!(reader.read(&cache, &mut out).frames, 4);
            assert_eq!(out.amplifier, raw.amplifier);
            assert_eq!(out.analog_in, raw.analog_in);
        }
        assert_eq!(saturated.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_tap_publishes_what_the_stages_before_it_made_and_counts_saturation() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 1, analog_in_channels: 1, frames_per_block: 4 };
        let (tap, cache, saturated) = FilteredTap::new(layout, 16, 1000.0);
        let mut chain = StageChain::new(layout, vec![Box::new(Gain(2.0)), Box::new(tap)]);
        let mut raw = FrameBlock::new(layout);
        raw.frames = 3;
        raw.frame_index[..3].copy_from_slice(&[7, 8, 9]);
        raw.amplifier[..6].copy_from_slice(&[10, -10, 20000, -3, 0, 1]);
        raw.digital_in[..3].copy_from_slice(&[1, 2, 3]);
        chain.run(&raw);
        let mut out = FrameBlock::new(cache.layout());
        let got = cache.reader_at(0).read(&cache, &mut out);
        assert_eq!(got.frames, 3);
        assert_eq!(&out.frame_index[..3], &[7, 8, 9]);
        assert_eq!(&out.amplifier[..6], &[20, -20, i16::MAX, -6, 0, 2]);
        assert_eq!(&out.digital_in[..3], &[1, 2, 3]);
        assert_eq!(saturated.load(Ordering::Relaxed), 1);
        assert_eq!(cache.layout().aux_channels, 0);
    }
}

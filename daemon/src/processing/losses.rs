//! What processing lost, said in the journal as it happens: crossings the detector had no room
//! to hold, filtered or recorded samples beyond the 16-bit range. The counters live on the
//! acquisition thread's side; this compares them with what was last reported.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::ProcessingOutputs;

/// The counts last reported, for one stream.
#[derive(Default)]
pub struct LossWatch {
    /// Identifies the stream the counts belong to (its spike ring).
    stream: usize,
    reported: [u64; 3],
}

impl LossWatch {
    /// Lines describing what was lost since the last call (none when nothing was).
    pub fn check(&mut self, outputs: &ProcessingOutputs) -> Vec<String> {
        let stream = Arc::as_ptr(&outputs.spikes) as usize;
        if stream != self.stream {
            *self = LossWatch { stream, ..LossWatch::default() };
        }
        let now = [
            outputs.detector.pending_overflows(),
            outputs.recorded_saturated.load(Ordering::Relaxed),
            outputs.saturated.load(Ordering::Relaxed),
        ];
        let what = [
            "threshold crossings dropped: the detector had no room left for spikes waiting for their snippets",
            "recorded samples stored at the 16-bit range's end: a hardware or stage-1 filter drove them beyond it",
            "filtered samples stored at the 16-bit range's end in the filtered cache",
        ];
        let mut lines = Vec::new();
        for ((now, reported), what) in now.iter().zip(&mut self.reported).zip(what) {
            if *now > *reported {
                lines.push(format!("{} {what} ({now} since the stream started)", now - *reported));
                *reported = *now;
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use ephysd_drivers::BlockLayout;
    use ephysd_pipeline::detect::{DetectParams, DetectorStage};
    use ephysd_pipeline::{EventRing, FilteredCache, PrimaryCache};

    use super::*;

    fn outputs() -> ProcessingOutputs {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 0, analog_in_channels: 0, frames_per_block: 8 };
        let (writer, spikes) = EventRing::new(16);
        let (_, control) = DetectorStage::new(2, 30_000.0, vec![DetectParams::default(); 2], writer).unwrap();
        ProcessingOutputs {
            spikes,
            filtered: FilteredCache::unfiltered(PrimaryCache::new(layout, 64, 30_000.0).0),
            detector: control.shared(),
            saturated: Arc::new(AtomicU64::new(0)),
            recorded_saturated: Arc::new(AtomicU64::new(0)),
        }
    }

    #[test]
    fn each_loss_is_reported_once_and_a_new_stream_starts_afresh() {
        let mut watch = LossWatch::default();
        let first = outputs();
        assert!(watch.check(&first).is_empty());
        first.recorded_saturated.fetch_add(3, Ordering::Relaxed);
        let lines = watch.check(&first);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("3 recorded samples") && lines[0].contains("(3 since"), "{}", lines[0]);
        assert!(watch.check(&first).is_empty(), "reported once");
        first.saturated.fetch_add(2, Ordering::Relaxed);
        assert!(watch.check(&first)[0].starts_with("2 filtered samples"));
        let second = outputs();
        second.recorded_saturated.fetch_add(1, Ordering::Relaxed);
        assert!(watch.check(&second)[0].starts_with("1 recorded samples"), "a new stream counts from zero");
    }
}

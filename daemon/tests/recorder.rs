//! The recorder under overload: frames it loses by falling behind the primary cache, and
//! frames the device dropped, become `/gaps` rows and events; the recording goes on, every
//! row it keeps is whole, and every frame is accounted for.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ephysd::recorder::{ActiveRecording, FilePlan, OutputPlan, RecorderEvent, RecordingPlan, Rollover, StopAt};
use ephysd_drivers::{BlockLayout, FrameBlock};
use ephysd_hdf5::{GapReason, RecordingMeta, RecordingReader};
use ephysd_pipeline::{PipelineCounters, PrimaryCache};

const CHANNELS: usize = 1024;

/// A sample that depends on its frame's place in its block and its channel, so a row holding
/// samples of another frame shows (blocks start at multiples of 128 frames).
fn value(frame: u64, channel: usize) -> i16 {
    (((frame % 128) * 13 + channel as u64) % 3000) as i16
}

/// One block of the pattern; publishing renumbers it, which costs nothing.
fn pattern_block(layout: BlockLayout) -> FrameBlock {
    let mut b = FrameBlock::new(layout);
    b.frames = layout.frames_per_block;
    for i in 0..b.frames {
        for c in 0..CHANNELS {
            b.amplifier[i * CHANNELS + c] = value(i as u64, c);
        }
    }
    b
}

fn renumber(b: &mut FrameBlock, first_frame: u64) {
    for (i, f) in b.frame_index.iter_mut().enumerate() {
        *f = first_frame + i as u64;
    }
}

#[test]
fn lost_and_dropped_frames_become_gaps_and_every_kept_row_is_whole() {
    let layout =
        BlockLayout { amplifier_channels: CHANNELS, aux_channels: 0, analog_in_channels: 0, frames_per_block: 128 };
    let (cache, mut writer) = PrimaryCache::new(layout, 2048, 30_000.0);
    let dir = tempfile::tempdir().unwrap();
    let (events, received) = crossbeam_channel::unbounded();
    let counters = Arc::new(PipelineCounters::default());
    let recording = ActiveRecording::start(RecordingPlan {
        cache: Arc::clone(&cache),
        files: FilePlan {
            directory: dir.path().to_path_buf(),
            base_name: "overload".into(),
            index: false,
            timestamp: false,
            next_index: Arc::new(AtomicU32::new(1)),
            meta: RecordingMeta::new(30_000.0, CHANNELS, 0.195),
            outputs: vec![OutputPlan { port: None, columns: 0..CHANNELS }],
        },
        triggers: Vec::new(),
        rollover: Rollover::default(),
        flush_interval: Duration::from_millis(200),
        ground_truth: None,
        spikes: None,
        pace_acquisition: false,
        counters: Arc::clone(&counters),
        events,
        follows: None,
    })
    .unwrap();

    // Far faster than any disk: 2000 blocks (8.5 s of signal) into a 2048-frame cache at once.
    let mut b = pattern_block(layout);
    let mut frame = 0;
    for _ in 0..2000 {
        renumber(&mut b, frame);
        writer.publish(&b);
        frame += 128;
    }
    // Let the recorder catch up, then the device drops 512 frames, at a pace it can follow.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..40 {
        if i == 20 {
            // A multiple of the block, so the pattern stays aligned with the frame index.
            frame += 512;
        }
        renumber(&mut b, frame);
        writer.publish(&b);
        frame += 128;
        std::thread::sleep(Duration::from_millis(5));
    }
    let published = (2000 + 40) * 128u64;
    let summaries = recording.stop(StopAt::Frame(cache.head())).unwrap();
    let lost = counters.recorder_overrun_frames.load(Ordering::Relaxed);
    assert!(lost > 0, "the recorder kept up with 8.5 s of 1024 channels published at once");

    let s = &summaries[0];
    assert_eq!(s.frames_written + lost, published, "every frame is either recorded or counted as lost");
    let r = RecordingReader::open(&s.path).unwrap();
    let gaps = r.read_gaps().unwrap();
    let overrun: i64 =
        gaps.iter().filter(|g| g.reason.as_str() == GapReason::RecorderOverrun.as_str()).map(|g| g.length).sum();
    assert_eq!(overrun as u64, lost, "{gaps:?}");
    let device: Vec<_> = gaps.iter().filter(|g| g.reason.as_str() == GapReason::Device.as_str()).collect();
    assert_eq!(device.len(), 1, "{gaps:?}");
    assert_eq!(device[0].length, 512);
    assert_eq!(r.info().gap_count, gaps.len() as u64);

    // Every kept row is whole: its samples belong to its frame index.
    let index = r.read_frame_index(0, r.frames() as usize).unwrap();
    let samples = r.read_samples(0, r.frames() as usize).unwrap();
    for (row, &f) in index.iter().enumerate().step_by(997) {
        for c in [0, 511, 1023] {
            assert_eq!(samples[row * CHANNELS + c], value(f, c), "row {row} (frame {f}) channel {c}");
        }
    }
    // The control plane heard of the gaps as they happened.
    let heard: Vec<u64> = received
        .try_iter()
        .filter_map(|e| match e {
            RecorderEvent::Gap { overrun_frames, .. } => Some(overrun_frames),
            _ => None,
        })
        .collect();
    assert!(heard.iter().any(|&n| n > 0) && heard.contains(&0), "gap events: {heard:?}");
}

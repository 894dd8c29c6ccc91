//! The acquisition thread through its public interface: stages between the device and the
//! cache, events readable by several consumers, streams that end on their own, pacing.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Crossing, CrossingDetector};
use ephysd_drivers::sim::{SimConfig, SimMode};
use ephysd_drivers::{
    open, BlockLayout, DeviceError, DeviceSpec, FrameBlock, Source, SourceError, AMPLIFIER_UV_PER_UNIT,
};
use ephysd_pipeline::{
    Acquisition, CacheReader, EventRing, Pacing, PipelineCounters, PrimaryCache, StageChain, StreamId, StreamPlan,
    ThreadPlacement,
};

const CHANNELS: usize = 32;

fn device_spec(accelerated: bool) -> DeviceSpec {
    DeviceSpec::Simulated(SimConfig {
        mode: SimMode::Spikes,
        amplifier_channels: CHANNELS,
        accelerated,
        seed: 11,
        ..SimConfig::default()
    })
}

fn spawn() -> (Acquisition, Arc<PipelineCounters>) {
    let counters = Arc::new(PipelineCounters::default());
    let (acquisition, outcome) = Acquisition::spawn(ThreadPlacement::default(), Arc::clone(&counters)).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    (acquisition, counters)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn events_a_stage_emits_reach_every_reader_and_match_the_published_samples() {
    let (acquisition, _) = spawn();
    let mut device = open(&device_spec(false)).unwrap();
    let layout = device.description().layout;
    // Three seconds of cache, so every event's frame can be looked up afterwards.
    let (cache, writer) = PrimaryCache::new(layout, 90_000, 30_000.0);
    let (events, ring) = EventRing::<Crossing>::new(100_000);
    let mut readers = [ring.reader_at_head(64), ring.reader_at_head(1000)];
    acquisition.start(StreamPlan {
        id: StreamId(1),
        source: device.start_stream().unwrap(),
        cache: writer,
        stages: StageChain::new(layout, vec![Box::new(CrossingDetector::new(CHANNELS, -40.0, events))]),
        pacing: Pacing::Device,
    });
    // Paced to real time: one second of signal.
    wait_until("a second of signal", || cache.head() >= 30_000);
    acquisition.stop();

    let mut seen: [Vec<Crossing>; 2] = [Vec::new(), Vec::new()];
    for (reader, seen) in readers.iter_mut().zip(&mut seen) {
        loop {
            let r = reader.read(&ring, |e| seen.push(*e));
            assert_eq!(r.lost, 0);
            if r.events == 0 {
                break;
            }
        }
    }
    assert_eq!(seen[0], seen[1], "readers with different batch sizes see the same events");
    assert!(seen[0].len() > 20, "only {} crossings in a second of spiking signal", seen[0].len());
    assert!(seen[0].windows(2).all(|w| w[0].frame <= w[1].frame), "events arrive in frame order");

    // Every event's sample is the published raw sample, in µV, and below the threshold while
    // the one before it was not.
    let mut block = FrameBlock::new(BlockLayout { frames_per_block: 90_000, ..layout });
    let mut reader: CacheReader = cache.reader_at(0);
    let read = reader.read(&cache, &mut block);
    assert_eq!(read.lost, 0);
    for e in &seen[0] {
        let i = e.frame as usize;
        assert_eq!(block.frame_index[i], e.frame);
        let raw = block.amplifier_frame(i)[e.channel as usize];
        assert_eq!(e.uv, raw as f32 * AMPLIFIER_UV_PER_UNIT as f32);
        assert!(e.uv < -40.0);
        if i > 0 {
            let before = block.amplifier_frame(i - 1)[e.channel as usize] as f32 * AMPLIFIER_UV_PER_UNIT as f32;
            assert!(before >= -40.0, "{e:?} follows a sample already below the threshold");
        }
    }
}

/// A device that delivers `blocks` blocks and then is unplugged.
struct Unplugged {
    layout: BlockLayout,
    blocks: usize,
}

impl Source for Unplugged {
    fn layout(&self) -> BlockLayout {
        self.layout
    }
    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        if self.blocks == 0 {
            return Err(SourceError::Device(DeviceError::Gone {
                device: "test board".into(),
                reason: "USB device disconnected".into(),
            }));
        }
        self.blocks -= 1;
        block.frames = 0;
        std::thread::sleep(Duration::from_millis(1));
        Ok(())
    }
}

#[test]
fn a_stream_whose_device_goes_away_is_reported_with_its_cause_and_counted() {
    let (acquisition, counters) = spawn();
    let layout = BlockLayout { amplifier_channels: 4, aux_channels: 0, analog_in_channels: 0, frames_per_block: 16 };
    let (_cache, writer) = PrimaryCache::new(layout, 1000, 30_000.0);
    acquisition.start(StreamPlan {
        id: StreamId(7),
        source: Box::new(Unplugged { layout, blocks: 5 }),
        cache: writer,
        stages: StageChain::new(layout, Vec::new()),
        pacing: Pacing::Device,
    });
    let ended = acquisition.ended_streams().recv_timeout(Duration::from_secs(10)).expect("the end is reported");
    assert_eq!(ended.stream, StreamId(7));
    assert!(matches!(&ended.reason, SourceError::Device(e) if e.is_gone()), "{:?}", ended.reason);
    assert!(ended.reason.to_string().contains("USB device disconnected"));
    assert_eq!(counters.snapshot().source_errors, 1);
    assert_eq!(counters.snapshot().blocks_acquired, 5);
    // The thread is idle again and keeps beating.
    let beat = counters.heartbeat.load(Ordering::Relaxed);
    wait_until("a heartbeat", || counters.heartbeat.load(Ordering::Relaxed) > beat);
}

#[test]
fn a_consumer_paced_stream_waits_for_its_consumer_and_loses_nothing() {
    let (acquisition, counters) = spawn();
    let mut device = open(&device_spec(true)).unwrap();
    assert!(device.description().free_running);
    let layout = device.description().layout;
    // A tiny cache (about 8 blocks) that a free-running device would lap at once.
    let (cache, writer) = PrimaryCache::new(layout, 1024, 30_000.0);
    let mut reader = cache.reader_at_head();
    cache.set_pace_gate(reader.position());
    acquisition.start(StreamPlan {
        id: StreamId(2),
        source: device.start_stream().unwrap(),
        cache: writer,
        stages: StageChain::new(layout, Vec::new()),
        pacing: Pacing::Consumer,
    });
    let mut block = FrameBlock::new(layout);
    let (mut frames, mut expected) = (0u64, 0u64);
    while frames < 60_000 {
        let r = reader.read(&cache, &mut block);
        assert_eq!(r.lost, 0, "the consumer-paced stream overran its consumer");
        for &index in &block.frame_index[..r.frames] {
            assert_eq!(index, expected);
            expected += 1;
        }
        frames += r.frames as u64;
        cache.set_pace_gate(reader.position());
        if r.frames == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    acquisition.stop();
    assert_eq!(counters.snapshot().frame_index_gaps, 0);
}

//! `cargo bench -p ephysd --bench pipeline`: the whole acquisition path, measured as a multiple
//! of real time.
//!
//! The simulated device at 1024 channels × 30 kHz, accelerated, feeds the acquisition thread,
//! which publishes into the primary cache; the recorder thread follows the cache and writes HDF5.
//! One iteration moves two seconds of signal end to end into a real file; the report's
//! throughput in frames/s divided by 30 000 is the "× real time" figure in docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::AtomicU32;

use ephysd::recorder::{ActiveRecording, FilePlan, OutputPlan, RecordingPlan, Rollover, StopAt};
use ephysd_drivers::sim::SimConfig;
use ephysd_drivers::{open, Device, DeviceSpec, FrameBlock, AMPLIFIER_UV_PER_UNIT};
use ephysd_hdf5::RecordingMeta;
use ephysd_pipeline::{
    Acquisition, Pacing, PipelineCounters, PrimaryCache, StageChain, StreamId, StreamPlan, ThreadPlacement,
};

const CHANNELS: usize = 1024;
const RATE: f64 = 30_000.0;
const SECONDS_PER_ITERATION: f64 = 2.0;

fn device() -> Device {
    let config =
        SimConfig { amplifier_channels: CHANNELS, sample_rate_hz: RATE, accelerated: true, ..SimConfig::default() };
    open(&DeviceSpec::Simulated(config)).expect("valid simulator config")
}

/// Streams `seconds` of signal from the simulated device through the cache into a recording;
/// returns the wall time it took.
fn record_through_pipeline(acquisition: &Acquisition, dir: &std::path::Path, n: usize) -> Duration {
    let mut device = device();
    let layout = device.description().layout;
    let source = device.start_stream().expect("stream starts");
    let (cache, writer) = PrimaryCache::new(layout, RATE as usize, RATE);
    let target = (SECONDS_PER_ITERATION * RATE) as u64;
    let d = device.description();
    // As the daemon records: samples, the board's analog and digital streams, ground truth.
    let meta = RecordingMeta {
        software_version: "ephysd bench".into(),
        device: d.name.clone(),
        analog_in_channels: d.layout.analog_in_channels,
        digital: true,
        ground_truth: true,
        ..RecordingMeta::new(RATE, CHANNELS, AMPLIFIER_UV_PER_UNIT)
    };
    let files = FilePlan {
        directory: dir.to_path_buf(),
        base_name: format!("bench_{n}"),
        index: false,
        timestamp: false,
        next_index: Arc::new(AtomicU32::new(1)),
        meta,
        outputs: vec![OutputPlan { port: None, columns: 0..CHANNELS }],
    };
    let started = Instant::now();
    let (events, _) = crossbeam_channel::unbounded();
    let recording = ActiveRecording::start(RecordingPlan {
        cache: Arc::clone(&cache),
        files,
        triggers: Vec::new(),
        rollover: Rollover::default(),
        flush_interval: Duration::from_secs(1),
        ground_truth: device.ground_truth(),
        spikes: None,
        pace_acquisition: true,
        counters: Arc::new(PipelineCounters::default()),
        events,
    })
    .expect("recording starts");
    acquisition.start(StreamPlan {
        id: StreamId(n as u64),
        source,
        cache: writer,
        stages: StageChain::new(layout, Vec::new()),
        pacing: Pacing::Consumer,
    });
    // Stop the source once it has produced the iteration's signal (the recorder may still be
    // behind; `stop(target)` waits for it), so no work beyond the 2 s is timed.
    while cache.head() < target {
        std::thread::sleep(Duration::from_millis(1));
    }
    acquisition.stop();
    let summaries = recording.stop(StopAt::Frame(target)).expect("recording finalizes");
    let summary = &summaries[0];
    let elapsed = started.elapsed();
    assert!(summary.duration_frames >= target, "recorded {} of {target} frames", summary.duration_frames);
    let _ = std::fs::remove_file(dir.join(format!("bench_{n}.h5")));
    elapsed
}

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    // The acquisition thread is pinned to one core, as `realtime.core` pins it in the daemon.
    let (acquisition, _) = Acquisition::spawn(
        ThreadPlacement { core: Some(0), fifo_priority: None },
        Arc::new(PipelineCounters::default()),
    )
    .expect("thread");
    let frames = (SECONDS_PER_ITERATION * RATE) as u64;

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(frames));
    let mut n = 0usize;
    let mut best = f64::MAX;
    group.bench_function("sim1024x30k_cache_recorder_hdf5", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let t = record_through_pipeline(&acquisition, dir.path(), n);
                best = best.min(t.as_secs_f64());
                total += t;
            }
            total
        })
    });
    group.finish();
    println!(
        "pipeline: best iteration {:.1}x real time (1024 ch x 30 kHz through cache into HDF5)",
        SECONDS_PER_ITERATION / best
    );

    // The primary cache alone: publish one block and read it back, per block of 128 frames.
    let mut source = device().start_stream().expect("stream starts");
    let layout = source.layout();
    let (cache, mut writer) = PrimaryCache::new(layout, RATE as usize, RATE);
    let mut block = FrameBlock::new(layout);
    source.read_block(&mut block).expect("block");
    let mut out = FrameBlock::new(layout);
    let mut reader = cache.reader_at_head();
    let mut group = c.benchmark_group("primary_cache");
    group.throughput(Throughput::Elements(block.frames as u64));
    group.bench_function("publish_and_read_1024ch_block", |b| {
        b.iter(|| {
            writer.publish(&block);
            reader.read(&cache, &mut out)
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);

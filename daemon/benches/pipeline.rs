//! `cargo bench -p ephysd --bench pipeline`: the whole acquisition path, measured as a multiple
//! of real time.
//!
//! The simulated device at 1024 channels × 30 kHz, accelerated, feeds the acquisition thread,
//! which publishes into the primary cache; the recorder thread follows the cache and writes HDF5.
//! One iteration moves two seconds of signal end to end into a real file; the report's
//! throughput in frames/s divided by 30 000 is the "× real time" figure in docs/PERFORMANCE.md.
//!
//! Two variants: `pipeline/sim1024x30k_cache_recorder_hdf5`, the raw signal only (processing
//! off), and `pipeline/sim1024x30k_processing_spikes_hdf5`, with the processing stages the
//! daemon runs by default (`ephysd::processing`: filters, filtered tap, spike-band highpass,
//! detector) on the acquisition thread and the detected spikes recorded into `/spikes`
//! (`continuous_and_spikes`). After criterion's runs of both, the two are run alternately, one
//! iteration each per round, and their medians printed side by side (`pipeline alternated, …`),
//! so the ratio is not the machine's drift between the two criterion runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::AtomicU32;

use ephysd::config::Settings;
use ephysd::processing::Processing;
use ephysd::recorder::{ActiveRecording, FilePlan, OutputPlan, RecordingPlan, Rollover, SpikeFeed, StopAt};
use ephysd_drivers::sim::SimConfig;
use ephysd_drivers::{open, Device, DeviceSpec, FrameBlock, AMPLIFIER_UV_PER_UNIT};
use ephysd_hdf5::{RecordingMeta, RecordingType};
use ephysd_pipeline::{
    Acquisition, Pacing, PipelineCounters, PrimaryCache, StageChain, StreamId, StreamPlan, ThreadPlacement,
};

const CHANNELS: usize = 1024;
const RATE: f64 = 30_000.0;
const SECONDS_PER_ITERATION: f64 = 2.0;
/// With spikes recorded, how far past the iteration's 2 s the source may run while the recorder
/// waits for the spikes of its last frames (see `record_through_pipeline`).
const RUN_ON_FRAMES: u64 = 2048;
/// How often the benchmark looks at the stream's progress. Its checks run on the same two
/// cores as the pipeline it times, and the daemon has no such thread: at every 100 µs they
/// took 10–20 % of a core from it (each wakeup costs several µs in a virtual machine). Every
/// millisecond a stop is asked for at most 1 ms late, while the recorder is still catching up.
const POLL: Duration = Duration::from_millis(1);
/// Rounds of the alternated comparison (one iteration of each variant per round).
const ALTERNATED_ROUNDS: usize = 7;

fn device() -> Device {
    let config =
        SimConfig { amplifier_channels: CHANNELS, sample_rate_hz: RATE, accelerated: true, ..SimConfig::default() };
    open(&DeviceSpec::Simulated(config)).expect("valid simulator config")
}

/// Streams `seconds` of signal from the simulated device through the cache into a recording;
/// returns the wall time it took. With `processing`, the daemon's default processing stages run
/// on the acquisition thread and their spikes are recorded too; the stages (and their caches)
/// are built before the timing starts, as a stream's are before it starts.
fn record_through_pipeline(acquisition: &Acquisition, dir: &std::path::Path, n: usize, processing: bool) -> Duration {
    let mut device = device();
    let layout = device.description().layout;
    let d = device.description().clone();
    let settings = Settings::defaults();
    let mut setup = Processing::new(&settings.processing, settings.cache.seconds, &d);
    let (cache, writer) = PrimaryCache::new(layout, RATE as usize, RATE);
    let chain = if processing {
        setup.chain_for_stream(&d, &cache).expect("default processing builds")
    } else {
        StageChain::new(layout, Vec::new())
    };
    // As the daemon feeds the recorder (engine/recording.rs).
    let spikes = setup.outputs().map(|o| SpikeFeed {
        ring: o.spikes,
        settle_frames: (0.002 * RATE).ceil() as u64 + 2 * layout.frames_per_block as u64,
    });
    let settle_frames = spikes.as_ref().map_or(0, |s| s.settle_frames);
    let source = device.start_stream().expect("stream starts");
    let target = (SECONDS_PER_ITERATION * RATE) as u64;
    // As the daemon records: samples, the board's analog and digital streams, ground truth.
    let meta = RecordingMeta {
        software_version: "ephysd bench".into(),
        device: d.name.clone(),
        analog_in_channels: d.layout.analog_in_channels,
        digital: true,
        ground_truth: true,
        recording_type: if processing { RecordingType::ContinuousAndSpikes } else { RecordingType::Continuous },
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
        spikes,
        pace_acquisition: true,
        counters: Arc::new(PipelineCounters::default()),
        events,
        follows: None,
    })
    .expect("recording starts");
    acquisition.start(StreamPlan {
        id: StreamId(n as u64),
        source,
        cache: writer,
        stages: chain,
        pacing: Pacing::Consumer,
    });
    // Stop the source once it has produced the iteration's signal (the recorder may still be
    // behind; `stop(target)` waits for it), so no work beyond the 2 s is timed.
    if settle_frames == 0 {
        while cache.head() < target {
            std::thread::sleep(POLL);
        }
        acquisition.stop();
        let summaries = recording.stop(StopAt::Frame(target)).expect("recording finalizes");
        return finish(summaries, target, started, dir, n);
    }
    // With spikes, the recorder closes the file only once the stream has gone `settle_frames`
    // past the last frame it read (the detector pushes a spike when its snippet is complete),
    // and waits up to 250 ms for that. In the daemon the stream runs on after a recording
    // stops; here the stop is asked for as the source reaches the 2 s, and the source runs on
    // until the recorder's wait is over: 316 frames past the frames it read, whose end is a
    // little past the 2 s (at most what it read in one go), 2 048 frames at most in all (3.4 %
    // of an iteration, inside the timing).
    while cache.head() < target {
        std::thread::sleep(POLL);
    }
    let stopper = std::thread::spawn(move || recording.stop(StopAt::Frame(target)));
    while !stopper.is_finished() && cache.head() < target + RUN_ON_FRAMES {
        std::thread::sleep(POLL);
    }
    acquisition.stop();
    let summaries = stopper.join().expect("the stopping thread").expect("recording finalizes");
    finish(summaries, target, started, dir, n)
}

/// The wall time since `started`, once the recording is checked and its file deleted.
fn finish(
    summaries: Vec<ephysd_hdf5::RecordingSummary>,
    target: u64,
    started: Instant,
    dir: &std::path::Path,
    n: usize,
) -> Duration {
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
    for (id, processing, what) in [
        ("sim1024x30k_cache_recorder_hdf5", false, "through cache into HDF5"),
        ("sim1024x30k_processing_spikes_hdf5", true, "with processing and /spikes, through cache into HDF5"),
    ] {
        let mut best = f64::MAX;
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let t = record_through_pipeline(&acquisition, dir.path(), n, processing);
                    best = best.min(t.as_secs_f64());
                    total += t;
                }
                total
            })
        });
        if best < f64::MAX {
            println!(
                "pipeline: best iteration {:.1}x real time (1024 ch x 30 kHz {what})",
                SECONDS_PER_ITERATION / best
            );
        }
    }
    group.finish();

    // Both variants alternately, one iteration each per round: the ratio in one sitting. Only
    // when both ran above (a filter naming one of them skips this).
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let selected = |id: &str| filter.is_empty() || filter.iter().any(|f| format!("pipeline/{id}").contains(f.as_str()));
    if selected("sim1024x30k_cache_recorder_hdf5") && selected("sim1024x30k_processing_spikes_hdf5") {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..ALTERNATED_ROUNDS {
            for (i, processing) in [false, true].into_iter().enumerate() {
                n += 1;
                times[i].push(record_through_pipeline(&acquisition, dir.path(), n, processing).as_secs_f64());
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (plain, with) = (median(&mut times[0]), median(&mut times[1]));
        println!(
            "pipeline alternated, {ALTERNATED_ROUNDS} rounds, median per 2 s: processing off {:.1} ms ({:.1}x), \
             processing and /spikes on {:.1} ms ({:.1}x); on/off time ratio {:.2}",
            plain * 1e3,
            SECONDS_PER_ITERATION / plain,
            with * 1e3,
            SECONDS_PER_ITERATION / with,
            with / plain
        );
    }

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

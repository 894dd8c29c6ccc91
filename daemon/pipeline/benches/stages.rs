//! `cargo bench -p ephysd-pipeline --bench stages`: the processing stages alone, as the
//! acquisition thread runs them, at 1024 channels × 30 kHz of the simulated device.
//!
//! The signal is generated before any timing (2 s of `sim-spikes`, cycled); before each timed
//! block it is copied into the chain's input block outside the timing, as a device read leaves
//! it in the cache just before the acquisition thread runs the chain. Every chain
//! first runs 2 s of it so the detector has its noise estimates and thresholds (they appear
//! about half a second into a stream) before anything is measured.
//!
//! - `stages/highpass300_detect_1024ch_128f` (criterion): one 128-frame block through
//!   [`StageChain::run_block`] with a 300 Hz order-2 Butterworth highpass and the detector with
//!   [`DetectParams::default`]: conversion to µV, filter, detection. A block is 4.27 ms of
//!   signal, so × real time = 4.267 ms ÷ time per block.
//! - `stages/production_chain_1024ch_128f` (criterion): the chain the daemon builds for the
//!   simulated device with the default `[processing]` keys (`Processing::chain_for_stream`):
//!   empty hardware and stage-1 filters (amplifier and analog-input), the write-back of the
//!   signal after them into the block that is published and recorded (skipped while those
//!   filters leave the signal untouched, as by default), empty stage-2 filters,
//!   the filtered tap (10 s filtered cache), the spike-band highpass (300 Hz, order 2) and the
//!   detector at 5 × noise without artifact rejection; run as the acquisition thread runs it
//!   (`StageChain::run_block`). `target/release/examples/detect_file` runs the daemon's own
//!   chain over a recording, so it checks this copy.
//! - `stages/part_*` (criterion): the parts of those chains alone, for the breakdown: the
//!   conversion of the raw block to µV, the highpass, the filtered tap, the highpass followed
//!   by the write-back of its output into the block.
//! - Latency (printed, not criterion): each block of the production chain timed alone over
//!   20 000 blocks, p50 / p99 / p99.9 / max, at 128, 32 and 16 frames per block (16 is the
//!   smallest `device.frames_per_block` allows), once at normal scheduling and once as a rig
//!   runs the acquisition thread (pinned to core 1, SCHED_FIFO 80 when permitted). A spike is
//!   readable by every consumer the moment `run_block` returns for the block that completes
//!   its snippet, so this is the time from a block entering the acquisition thread to its
//!   spikes being readable.
//! - The highpass + detection chain over the same 20 000 blocks at each block size, normal
//!   scheduling: ns per sample and × real time (mean), and its block time percentiles.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ephysd_drivers::sim::{SimConfig, SimulatedSource};
use ephysd_drivers::{BlockLayout, FrameBlock, Source};
use ephysd_pipeline::detect::{DetectParams, DetectorStage, Spike, Threshold};
use ephysd_pipeline::dsp::{design, FilterFamily, FilterKind, FilterPlan, FilterSpec, FilterStage, Lane};
use ephysd_pipeline::placement::place_current_thread;
use ephysd_pipeline::{EventRing, FilteredTap, PrimaryCache, Stage, StageChain, ThreadPlacement};

const CHANNELS: usize = 1024;
const RATE: f64 = 30_000.0;
/// Signal generated before the timing and cycled through.
const SIGNAL_SECONDS: f64 = 2.0;
/// Signal run through a chain before it is timed: the detector's noise estimates settle.
const WARM_UP_SECONDS: f64 = 2.0;
/// Blocks timed one by one for the latency percentiles.
const LATENCY_BLOCKS: usize = 20_000;
/// A pause between timed blocks after so much running (see `block_times`).
const PAUSE_AFTER: Duration = Duration::from_millis(100);
const PAUSE: Duration = Duration::from_millis(10);
/// Spike-band highpass of the daemon's defaults (`processing.spike_band_hz`, `_order`).
const SPIKE_BAND_HZ: f64 = 300.0;
const SPIKE_BAND_ORDER: u32 = 2;
/// `processing.threshold_sd` of the daemon's defaults.
const THRESHOLD_SD: f32 = 5.0;
/// `processing.filtered_cache_seconds` and `processing.spike_ring` of the daemon's defaults.
const FILTERED_SECONDS: f64 = 10.0;
const SPIKE_RING: usize = 65_536;

/// `SIGNAL_SECONDS` of simulated signal in blocks of `frames_per_block`.
fn signal(frames_per_block: usize) -> Vec<FrameBlock> {
    let config = SimConfig {
        amplifier_channels: CHANNELS,
        sample_rate_hz: RATE,
        accelerated: true,
        frames_per_block,
        ..SimConfig::default()
    };
    let mut source = SimulatedSource::new(config).expect("valid simulator config");
    let n = (SIGNAL_SECONDS * RATE / frames_per_block as f64).ceil() as usize;
    (0..n)
        .map(|_| {
            let mut block = FrameBlock::new(source.layout());
            source.read_block(&mut block).expect("the simulated source never fails");
            block
        })
        .collect()
}

fn spike_band() -> FilterPlan {
    let spec = FilterSpec {
        kind: FilterKind::Highpass { cutoff_hz: SPIKE_BAND_HZ },
        family: FilterFamily::Butterworth,
        order: SPIKE_BAND_ORDER,
    };
    let mut plan = FilterPlan::new(CHANNELS);
    let all: Vec<usize> = (0..CHANNELS).collect();
    plan.filter(&all, &design(&spec, RATE).expect("valid design")).expect("valid plan");
    plan
}

fn filter(name: &str, plan: FilterPlan) -> Box<dyn Stage> {
    // The control handle is dropped: nothing replaces the plan during the benchmark.
    Box::new(FilterStage::new(name, plan).0)
}

fn detector(params: DetectParams) -> Box<dyn Stage> {
    let (writer, _ring) = EventRing::<Spike>::new(SPIKE_RING);
    let (stage, _control) =
        DetectorStage::new(CHANNELS, RATE, vec![params; CHANNELS], writer).expect("valid detector parameters");
    Box::new(stage)
}

/// The spike-band highpass and the detector with its defaults.
fn highpass_and_detection(layout: BlockLayout) -> StageChain {
    StageChain::new(layout, vec![filter("spike sorter filter", spike_band()), detector(DetectParams::default())])
}

/// The parts, for the breakdown: the chain's conversion of the raw block to µV alone (one
/// empty filter stage), the highpass alone, the filtered tap alone.
fn conversion_only(layout: BlockLayout) -> StageChain {
    StageChain::new(layout, vec![filter("stage 1 filter", FilterPlan::new(CHANNELS))])
}

fn highpass_only(layout: BlockLayout) -> StageChain {
    StageChain::new(layout, vec![filter("spike sorter filter", spike_band())])
}

/// The stream's primary cache, which the filtered tap stands in for while no stage before it
/// changes the signal (here, never: it only reads its head when a stage first does).
fn primary(layout: BlockLayout) -> Arc<PrimaryCache> {
    PrimaryCache::new(layout, layout.frames_per_block, RATE).0
}

/// The tap as it runs by default: nothing before it changes the signal, so it publishes
/// nothing and readers are sent to the primary cache.
fn tap_only(layout: BlockLayout) -> StageChain {
    let (tap, _filtered, _saturated) = FilteredTap::new(layout, (FILTERED_SECONDS * RATE) as usize, primary(layout));
    StageChain::new(layout, vec![Box::new(tap)])
}

/// The highpass with the write-back of its output after it: the write-back costs the
/// difference from `highpass_only` (after empty filters, as by default, there is nothing to
/// write back and the chain skips it).
fn highpass_and_write_back(layout: BlockLayout) -> StageChain {
    StageChain::new(layout, vec![filter("stage 1 filter", spike_band())])
        .with_write_back(1, Arc::new(AtomicU64::new(0)))
}

/// What `ephysd::processing::Processing::chain_for_stream` builds for the simulated device
/// with the default `[processing]` keys: each Allego filter stage as an amplifier and an
/// analog-input filter (all empty but the spike band), the write-back after stage 1, the
/// filtered tap after stage 2, the detector last.
fn production(layout: BlockLayout) -> StageChain {
    let mut stages: Vec<Box<dyn Stage>> = Vec::new();
    let add = |name: &str, plan: FilterPlan, stages: &mut Vec<Box<dyn Stage>>| {
        stages.push(filter(&format!("{name} filter"), plan));
        if layout.analog_in_channels > 0 {
            let analog = FilterPlan::new(layout.analog_in_channels);
            let name = format!("{name} analog-input filter");
            stages.push(Box::new(FilterStage::on_lane(&name, Lane::AnalogIn, analog).0));
        }
    };
    add("hardware", FilterPlan::new(CHANNELS), &mut stages);
    add("stage 1", FilterPlan::new(CHANNELS), &mut stages);
    // What the hardware and stage-1 filters leave is what gets recorded.
    let recorded_after = stages.len();
    add("stage 2", FilterPlan::new(CHANNELS), &mut stages);
    let (tap, _filtered, _saturated) = FilteredTap::new(layout, (FILTERED_SECONDS * RATE) as usize, primary(layout));
    stages.push(Box::new(tap));
    add("spike sorter", spike_band(), &mut stages);
    let params = DetectParams {
        threshold: Threshold::NoiseMultiple { negative: THRESHOLD_SD, positive: THRESHOLD_SD },
        artifact_level: None,
        ..DetectParams::default()
    };
    stages.push(detector(params));
    StageChain::new(layout, stages).with_write_back(recorded_after, Arc::new(AtomicU64::new(0)))
}

/// Runs `WARM_UP_SECONDS` of `blocks` through `chain`; returns the index of the next block.
/// Blocks go through `run_block`, as on the acquisition thread. Only `highpass_and_write_back`
/// changes them (it writes its highpassed signal back, pass after pass), so it runs last of
/// the criterion benchmarks, and the latency runs generate their own blocks.
fn warm_up(chain: &mut StageChain, blocks: &mut [FrameBlock]) -> usize {
    let n = (WARM_UP_SECONDS * RATE / blocks[0].frames as f64).ceil() as usize;
    for i in 0..n {
        chain.run_block(&mut blocks[i % blocks.len()]);
    }
    n
}

fn stages(c: &mut Criterion) {
    let mut blocks = signal(128);
    let layout = blocks[0].layout();
    let mut group = c.benchmark_group("stages");
    group.sample_size(30).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements((128 * CHANNELS) as u64));
    for (id, build) in [
        ("highpass300_detect_1024ch_128f", highpass_and_detection as fn(BlockLayout) -> StageChain),
        ("production_chain_1024ch_128f", production),
        ("part_conversion_1024ch_128f", conversion_only),
        ("part_highpass300_1024ch_128f", highpass_only),
        ("part_filtered_tap_1024ch_128f", tap_only),
        ("part_highpass300_write_back_1024ch_128f", highpass_and_write_back),
    ] {
        let mut chain = build(layout);
        let mut i = warm_up(&mut chain, &mut blocks);
        let n = blocks.len();
        let mut input = FrameBlock::new(layout);
        group.bench_function(id, |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    fresh_from_device(&mut input, &blocks[i % n]);
                    let start = Instant::now();
                    chain.run_block(&mut input);
                    spent += start.elapsed();
                    i += 1;
                }
                spent
            })
        });
    }
    group.finish();
}

/// Puts `block` into `input` as a device read leaves it for the acquisition thread: just
/// written, so in the cache when the chain starts (the 2 s of signal cycled through are far
/// larger than the cache; read straight from them, every block would come from memory).
fn fresh_from_device(input: &mut FrameBlock, block: &FrameBlock) {
    input.frames = block.frames;
    input.frame_index.copy_from_slice(&block.frame_index);
    input.amplifier.copy_from_slice(&block.amplifier);
    input.aux.copy_from_slice(&block.aux);
    input.analog_in.copy_from_slice(&block.analog_in);
    input.digital_in.copy_from_slice(&block.digital_in);
    input.digital_out.copy_from_slice(&block.digital_out);
}

/// Each block's time through `chain`, `LATENCY_BLOCKS` of them, after the warm-up. After every
/// `PAUSE_AFTER` of running the thread sleeps `PAUSE` (outside the timing): a SCHED_FIFO thread
/// that never sleeps is stopped by the kernel's real-time throttling for 50 ms of every second
/// (`sched_rt_runtime_us`), which the daemon's acquisition thread, waiting for the device
/// between blocks, never meets.
fn block_times(chain: &mut StageChain, blocks: &mut [FrameBlock]) -> Vec<Duration> {
    let first = warm_up(chain, blocks);
    let n = blocks.len();
    let mut times = Vec::with_capacity(LATENCY_BLOCKS);
    let mut input = FrameBlock::new(blocks[0].layout());
    let mut running = Instant::now();
    for i in first..first + LATENCY_BLOCKS {
        if running.elapsed() >= PAUSE_AFTER {
            std::thread::sleep(PAUSE);
            running = Instant::now();
        }
        fresh_from_device(&mut input, &blocks[i % n]);
        let start = Instant::now();
        chain.run_block(&mut input);
        times.push(start.elapsed());
    }
    times
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints p50 / p99 / p99.9 / max of `times` and returns p99.
fn percentiles(what: &str, mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{what}: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us over {} blocks",
        micros(at(0.5)),
        micros(at(0.99)),
        micros(at(0.999)),
        micros(times[times.len() - 1]),
        times.len()
    );
    at(0.99)
}

/// Latency of the production chain and throughput of highpass + detection, each in a thread of
/// its own so that its placement does not outlive it.
fn latency(_: &mut Criterion) {
    for frames in [128usize, 32, 16] {
        let mut blocks = signal(frames);
        let layout = blocks[0].layout();
        let block_us = frames as f64 / RATE * 1e6;
        for (placement, label) in [
            (ThreadPlacement::default(), "normal scheduling"),
            (ThreadPlacement { core: Some(1), fifo_priority: Some(80) }, "core 1, SCHED_FIFO 80"),
        ] {
            let blocks = &mut blocks;
            std::thread::scope(|s| {
                s.spawn(move || {
                    let outcome = place_current_thread(placement);
                    let label = if outcome.warnings.is_empty() {
                        label.to_string()
                    } else {
                        format!("{label} not granted: {}", outcome.warnings.join("; "))
                    };
                    let times = block_times(&mut production(layout), blocks);
                    let p99 = percentiles(
                        &format!(
                            "latency, production chain, 1024 ch x {frames}-frame blocks ({block_us:.0} us of signal), {label}"
                        ),
                        times,
                    );
                    println!("  p99 < 50 us: {}", if p99 < Duration::from_micros(50) { "yes" } else { "no" });
                });
            });
        }
        let times = block_times(&mut highpass_and_detection(layout), &mut blocks);
        let total: Duration = times.iter().sum();
        let samples = (times.len() * frames * CHANNELS) as f64;
        let signal_s = (times.len() * frames) as f64 / RATE;
        println!(
            "throughput, highpass 300 Hz + detection, 1024 ch x {frames} frames: {:.3} ns/sample, {:.1}x real time \
             (mean over {} blocks)",
            total.as_secs_f64() * 1e9 / samples,
            signal_s / total.as_secs_f64(),
            times.len()
        );
        let p99 = percentiles(&format!("  latency, highpass 300 Hz + detection only, {frames}-frame blocks"), times);
        println!("  p99 < 50 us: {}", if p99 < Duration::from_micros(50) { "yes" } else { "no" });
    }
}

criterion_group!(benches, stages, latency);
criterion_main!(benches);

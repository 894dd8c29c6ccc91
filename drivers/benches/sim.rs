//! Generation speed of the simulated source.
//!
//! The daemon's pipeline benchmark drives the source at 1024 ch × 30 kHz accelerated and needs the
//! whole pipeline at ≥ 20× real time, so the source alone must be far faster than
//! 20 × 30.72 M samples/s ≈ 614 M samples/s. Throughput is reported in samples (frames ×
//! channels); the × real-time factor is samples/s ÷ (channels × 30 000).
//!
//! Blocks are read in a steady stream (the source keeps its state), so the measurement includes
//! spike-train epochs being drawn and LFP knots being evaluated at their natural rate.
//!
//! `sim_read_block` reads blocks back to back, so the simulator's tables stay in the caches
//! (the accelerated pipeline is close to that). `sim_cold` reproduces the paced daemon instead:
//! there one block is generated every 4.27 ms and the other threads stream hundreds of MB/s
//! through the caches in between, so every block starts with the simulator's state evicted.
//! Between blocks it streams (reads and writes) a buffer of `EVICT_BYTES`, far larger than
//! L2; only the blocks are timed, not the streaming. `sim_cold_dram` streams a buffer larger
//! than the L3 as well, so the state comes back from memory.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

/// An accelerated 30 kHz source of `mode` with 128-frame blocks, and a block to read into.
fn accelerated_source(mode: SimMode, channels: usize) -> (SimulatedSource, FrameBlock) {
    let config = SimConfig {
        mode,
        amplifier_channels: channels,
        sample_rate_hz: 30000.0,
        accelerated: true,
        frames_per_block: 128,
        ..SimConfig::default()
    };
    let source = SimulatedSource::new(config).expect("valid config");
    let block = FrameBlock::new(source.layout());
    (source, block)
}

fn read_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_read_block");
    for (mode, channels) in [
        (SimMode::Spikes, 1024),
        (SimMode::Spikes, 64),
        (SimMode::Broadband, 1024),
        (SimMode::Lfp, 1024),
        (SimMode::Sine, 1024),
    ] {
        let (mut source, mut block) = accelerated_source(mode, channels);
        group.throughput(Throughput::Elements((128 * channels) as u64));
        group.bench_function(BenchmarkId::new(mode.name(), format!("{channels}ch_30kHz_128f")), |b| {
            b.iter(|| {
                source.read_block(&mut block).expect("simulated source never fails");
                black_box(&block.amplifier[0]);
            })
        });
    }
    group.finish();
}

/// Bytes streamed between two blocks of `sim_cold`: well beyond a core's L2 (1–2 MiB on
/// current x86 server cores), like what the pipeline moves during one paced block interval.
/// What it leaves of the simulator's state in the shared L3 depends on what else runs.
const EVICT_BYTES: usize = 8 << 20;
/// Bytes streamed between two blocks of `sim_cold_dram`: beyond the L3 too (32 MiB here), so
/// the state comes back from memory, as when other threads and other machines' tenants share
/// the L3 (closest to what a profile of the paced daemon shows).
const EVICT_DRAM_BYTES: usize = 64 << 20;

/// Reads and writes every cache line of `buffer`, evicting whatever else was in the caches it
/// does not fit beside.
fn evict(buffer: &mut [u64]) {
    for v in buffer.iter_mut() {
        *v = v.wrapping_add(1);
    }
    black_box(&buffer[0]);
}

fn read_block_cold(c: &mut Criterion) {
    // Each timed block costs an untimed sweep of several times its own duration.
    let mut group = c.benchmark_group("sim_cold");
    group.sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    cold_blocks(&mut group, EVICT_BYTES);
    group.finish();
    // A 64 MiB sweep takes milliseconds: fewer, equal samples of fewer blocks.
    let mut group = c.benchmark_group("sim_cold_dram");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_millis(30));
    cold_blocks(&mut group, EVICT_DRAM_BYTES);
    group.finish();
}

/// 128-frame blocks at 1024 channels of every mode, `evict_bytes` streamed before each (untimed).
fn cold_blocks(group: &mut BenchmarkGroup<WallTime>, evict_bytes: usize) {
    let mut buffer = vec![0u64; evict_bytes / 8];
    for mode in [SimMode::Spikes, SimMode::Broadband, SimMode::Lfp, SimMode::Sine] {
        let channels = 1024;
        let (mut source, mut block) = accelerated_source(mode, channels);
        group.throughput(Throughput::Elements((128 * channels) as u64));
        group.bench_function(BenchmarkId::new(mode.name(), format!("{channels}ch_30kHz_128f")), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    evict(&mut buffer);
                    let start = Instant::now();
                    source.read_block(&mut block).expect("simulated source never fails");
                    black_box(&block.amplifier[0]);
                    timed += start.elapsed();
                }
                timed
            })
        });
    }
}

/// Building a source is what starting a stream costs (noise tables, unit waveforms, LFP).
fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_build");
    group.sample_size(10);
    for channels in [64, 1024] {
        let config = SimConfig { amplifier_channels: channels, ..SimConfig::default() };
        group.bench_function(BenchmarkId::new("sim-spikes", format!("{channels}ch")), |b| {
            b.iter(|| black_box(SimulatedSource::new(config.clone()).expect("valid config")))
        });
    }
    group.finish();
}

criterion_group!(benches, read_block, read_block_cold, build);
criterion_main!(benches);

//! Generation speed of the simulated source.
//!
//! The daemon's pipeline benchmark drives the source at 1024 ch × 30 kHz accelerated and needs the
//! whole pipeline at ≥ 20× real time, so the source alone must be far faster than
//! 20 × 30.72 M samples/s ≈ 614 M samples/s. Throughput is reported in samples (frames ×
//! channels); the × real-time factor is samples/s ÷ (channels × 30 000).
//!
//! Blocks are read in a steady stream (the source keeps its state), so the measurement includes
//! spike-train epochs being drawn and LFP knots being evaluated at their natural rate.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

fn read_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_read_block");
    for (mode, channels) in [
        (SimMode::Spikes, 1024),
        (SimMode::Spikes, 64),
        (SimMode::Broadband, 1024),
        (SimMode::Lfp, 1024),
        (SimMode::Sine, 1024),
    ] {
        let config = SimConfig {
            mode,
            amplifier_channels: channels,
            sample_rate_hz: 30000.0,
            accelerated: true,
            frames_per_block: 128,
            ..SimConfig::default()
        };
        let mut source = SimulatedSource::new(config).expect("valid config");
        let mut block = FrameBlock::new(source.layout());
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

criterion_group!(benches, read_block, build);
criterion_main!(benches);

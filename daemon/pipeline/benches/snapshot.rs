//! `cargo bench -p ephysd-pipeline --bench snapshot`: reading signals back out of the primary
//! cache as `GetHDSnapshot2` does, alone (no acquisition thread, no gRPC).
//!
//! The cache holds 3 s of 1024 channels × 30 kHz whose values vary per channel and frame; the
//! reads are of its last second, in µV, channel-major:
//! - `snapshot/amplifier_rows_1s_1024ch_by_32` (criterion): the streamed reply's way, 32
//!   channels at a time (`ROWS_PER_BLOCK` in the daemon's `grpc/signal_stream.rs`), each block's
//!   buffer handed back to the pool as the reply does once it is sent;
//! - `snapshot/amplifier_rows_1s_1024ch_whole` (criterion): all 1024 rows in one call;
//! - `snapshot/amplifier_rows_1s_64ch_scattered` (criterion): 64 channels picked across the
//!   probe (every 16th), the read of a client that plots a few channels.
//!
//! Throughput is the reply's bytes (1 s × channels × 4 bytes).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ephysd_drivers::{BlockLayout, FrameBlock};
use ephysd_pipeline::{amplifier_rows, BufferPool, FrameSpan, PrimaryCache};

const CHANNELS: usize = 1024;
const RATE: usize = 30_000;
const FRAMES_PER_BLOCK: usize = 128;

/// A cache of `seconds` + 1 s holding `seconds` s of a signal that differs in every frame
/// and channel.
fn filled_cache(seconds: usize) -> std::sync::Arc<PrimaryCache> {
    let layout = BlockLayout {
        amplifier_channels: CHANNELS,
        aux_channels: 0,
        analog_in_channels: 8,
        frames_per_block: FRAMES_PER_BLOCK,
    };
    let (cache, mut writer) = PrimaryCache::new(layout, (seconds + 1) * RATE, RATE as f64);
    let mut block = FrameBlock::new(layout);
    block.frames = FRAMES_PER_BLOCK;
    for b in 0..(seconds * RATE).div_ceil(FRAMES_PER_BLOCK) {
        for i in 0..FRAMES_PER_BLOCK {
            let seq = (b * FRAMES_PER_BLOCK + i) as u64;
            block.frame_index[i] = seq;
            for c in 0..CHANNELS {
                block.amplifier[i * CHANNELS + c] = ((seq as usize * 7 + c * 13) % 4001) as i16 - 2000;
            }
        }
        writer.publish(&block);
    }
    cache
}

fn snapshot(c: &mut Criterion) {
    let cache = filled_cache(3);
    let head = cache.head();
    let span = FrameSpan { start: head - RATE as u64, end: head };
    let pool = BufferPool::default();
    let all: Vec<usize> = (0..CHANNELS).collect();
    let scattered: Vec<usize> = (0..CHANNELS).step_by(16).collect();

    let mut group = c.benchmark_group("snapshot");
    group.sample_size(20);
    group.throughput(Throughput::Bytes((RATE * CHANNELS * 4) as u64));
    for rows_per_read in [32, 64, 128, 256] {
        group.bench_function(format!("amplifier_rows_1s_1024ch_by_{rows_per_read}"), |b| {
            b.iter(|| {
                for rows in all.chunks(rows_per_read) {
                    let m = amplifier_rows(&cache, span, rows, &pool).expect("held");
                    pool.give(m.bytes);
                }
            })
        });
    }
    group.bench_function("amplifier_rows_1s_1024ch_whole", |b| {
        b.iter(|| {
            let m = amplifier_rows(&cache, span, &all, &pool).expect("held");
            pool.give(m.bytes);
        })
    });
    group.throughput(Throughput::Bytes((RATE * scattered.len() * 4) as u64));
    group.bench_function("amplifier_rows_1s_64ch_scattered", |b| {
        b.iter(|| {
            let m = amplifier_rows(&cache, span, &scattered, &pool).expect("held");
            pool.give(m.bytes);
        })
    });
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);

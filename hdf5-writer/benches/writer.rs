//! Append throughput of the recording writer at the daemon's worst case: 1024
//! channels at 30 kHz (61.44 MB/s of int16) delivered in 128-frame blocks.
//! The goal is 20x real time, i.e. about 1.2 GB/s.
//!
//! Files go to a temporary directory and are deleted after each sample, so the
//! figures mostly measure HDF5 + page-cache cost, not the disk.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ephysd_hdf5::{RecordingMeta, RecordingWriter};

const CHANNELS: usize = 1024;
const BLOCK_FRAMES: usize = 128;
const FPS: f64 = 30_000.0;

fn meta() -> RecordingMeta {
    RecordingMeta {
        software_version: "ephysd bench".into(),
        device: "bench".into(),
        ..RecordingMeta::new(FPS, CHANNELS, 0.195)
    }
}

fn block() -> Vec<i16> {
    (0..BLOCK_FRAMES * CHANNELS).map(|i| (i % 4096) as i16 - 2048).collect()
}

fn bench_writer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let samples = block();
    let mut file_no = 0u64;
    let mut next_path = || {
        file_no += 1;
        dir.path().join(format!("bench_{file_no}.h5"))
    };

    let mut group = c.benchmark_group("writer");

    // One append call of a 128-frame block, amortised over many calls into one file,
    // including the final flush of whatever is still buffered.
    group.throughput(Throughput::Bytes((BLOCK_FRAMES * CHANNELS * 2) as u64));
    group.bench_function("append_1024ch_128frames", |b| {
        b.iter_custom(|iters| {
            let path = next_path();
            let mut w = RecordingWriter::create(&path, meta()).unwrap();
            let mut index = vec![0u64; BLOCK_FRAMES];
            let mut next = 0u64;
            let start = Instant::now();
            for _ in 0..iters {
                for slot in index.iter_mut() {
                    *slot = next;
                    next += 1;
                }
                w.append_samples(&index, &samples).unwrap();
            }
            w.flush().unwrap();
            let elapsed = start.elapsed();
            w.finish().unwrap();
            std::fs::remove_file(&path).unwrap();
            elapsed
        })
    });

    // A whole one-second recording: create, 30 000 frames in 128-frame blocks, finish.
    // Throughput here is directly "seconds of data per second" x 61.44 MB/s.
    let frames_per_recording = FPS as usize;
    group.throughput(Throughput::Bytes((frames_per_recording * CHANNELS * 2) as u64));
    group.sample_size(10);
    group.bench_function("record_1s_1024ch_create_to_finish", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = next_path();
                let start = Instant::now();
                let mut w = RecordingWriter::create(&path, meta()).unwrap();
                let mut written = 0usize;
                while written < frames_per_recording {
                    let n = BLOCK_FRAMES.min(frames_per_recording - written);
                    let index: Vec<u64> = (written as u64..(written + n) as u64).collect();
                    w.append_samples(&index, &samples[..n * CHANNELS]).unwrap();
                    written += n;
                }
                w.finish().unwrap();
                total += start.elapsed();
                std::fs::remove_file(&path).unwrap();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_writer);
criterion_main!(benches);

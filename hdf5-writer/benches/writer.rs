//! Throughput of the recording writer at the daemon's worst case: 1024 channels at 30 kHz
//! (61.44 MB/s of int16) delivered in 128-frame blocks. Goals: at least 20x real time with
//! crash safety on, and at least 3x PyTables writing the same layout the way cl-sdk's writer
//! does (`pytables_writer.py`, run in the same benchmark for a side-by-side ratio).
//!
//! Files go to a temporary directory on disk and are deleted after each sample.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ephysd_hdf5::{FrameRows, RecordingMeta, RecordingType, RecordingWriter, UNSORTED};

const CHANNELS: usize = 1024;
const BLOCK_FRAMES: usize = 128;
/// Frames per append in the side-by-side comparison: the batches cl-sdk's producer hands its writer
/// when running accelerated (its `DEFAULT_ACCELERATED_MAX_FRAMES_PER_BATCH`).
const LAYOUT_BLOCK_FRAMES: usize = 1024;
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

/// Seconds of signal per recording in the side-by-side comparison.
const LAYOUT_SECONDS: f64 = 4.0;
/// Spikes per second written alongside (about 1 Hz per channel).
const SPIKES_PER_SECOND: u64 = 1000;

/// One recording of the full layout with crash safety on (SWMR, a flush every second of
/// signal), as the daemon's recorder writes it: samples, frame index, analog and digital
/// streams, spikes.
fn record_layout(path: &Path) -> Duration {
    let samples: Vec<i16> = (0..LAYOUT_BLOCK_FRAMES * CHANNELS).map(|i| (i % 4096) as i16 - 2048).collect();
    let analog = vec![32768u16; LAYOUT_BLOCK_FRAMES * 8];
    let digital = vec![0u16; LAYOUT_BLOCK_FRAMES];
    let snippet: [f32; 75] = std::array::from_fn(|i| -50.0 + i as f32 * 70.0 / 74.0);
    let meta = RecordingMeta {
        recording_type: RecordingType::ContinuousAndSpikes,
        analog_in_channels: 8,
        digital: true,
        ..meta()
    };
    let frames = (LAYOUT_SECONDS * FPS) as u64;
    let spike_every = FPS as u64 / SPIKES_PER_SECOND;
    let start = Instant::now();
    let mut w = RecordingWriter::create(path, meta).unwrap();
    let mut index = vec![0u64; LAYOUT_BLOCK_FRAMES];
    let (mut written, mut next_flush) = (0u64, FPS as u64);
    while written < frames {
        let n = LAYOUT_BLOCK_FRAMES.min((frames - written) as usize);
        for (i, slot) in index[..n].iter_mut().enumerate() {
            *slot = written + i as u64;
        }
        let rows = FrameRows {
            frame_index: &index[..n],
            samples: &samples[..n * CHANNELS],
            analog_in: &analog[..n * 8],
            digital_in: &digital[..n],
            digital_out: &digital[..n],
        };
        w.append(&rows).unwrap();
        let mut frame = written.div_ceil(spike_every) * spike_every;
        while frame < written + n as u64 {
            w.add_spike(frame, (frame % CHANNELS as u64) as u16, &snippet, UNSORTED).unwrap();
            frame += spike_every;
        }
        written += n as u64;
        if written >= next_flush {
            w.flush().unwrap();
            next_flush += FPS as u64;
        }
    }
    w.finish().unwrap();
    // Done means on disk, for both writers compared.
    std::fs::File::open(path).unwrap().sync_all().unwrap();
    start.elapsed()
}

/// The Python that runs `pytables_writer.py`: `EPHYSD_BENCH_PYTHON`, else the test virtualenv
/// `make test` builds, else `python3`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("EPHYSD_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Wall time of PyTables writing the same recording, or why it could not run.
fn record_layout_with_pytables(path: &Path) -> Result<Duration, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pytables_writer.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(path)
        .args([
            CHANNELS.to_string(),
            LAYOUT_SECONDS.to_string(),
            LAYOUT_BLOCK_FRAMES.to_string(),
            SPIKES_PER_SECOND.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python().display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let seconds = text
        .split("\"seconds\": ")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("unexpected output: {text}"))?;
    Ok(Duration::from_secs_f64(seconds))
}

/// How long putting `bytes` into a new file at `path` takes with nothing but `write` calls
/// of one append's worth of samples from a reused buffer, then `fsync`; with `direct`, the
/// same through `O_DIRECT` (the page cache bypassed), or `None` where the file system
/// refuses it. No format and no metadata: not a writer, the least any writer of a file of
/// that size can take here, so `PyTables time / this` bounds the ratio any writer can reach.
fn write_floor(path: &Path, bytes: u64, direct: bool) -> Option<Duration> {
    /// O_DIRECT wants buffer, offset and length aligned to the device's block (4 KiB covers
    /// every common one).
    const ALIGN: usize = 4096;
    let chunk = LAYOUT_BLOCK_FRAMES * CHANNELS * 2;
    let mut storage = vec![0x5au8; chunk + ALIGN];
    let skip = storage.as_ptr().align_offset(ALIGN);
    let buffer = &mut storage[skip..skip + chunk];
    let start = Instant::now();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let mut file = options.open(path).ok()?;
    let mut left = bytes.next_multiple_of(ALIGN as u64);
    while left > 0 {
        let n = chunk.min(left as usize);
        if file.write_all(&buffer[..n]).is_err() {
            // O_DIRECT opened but refused at the first write (some file systems do that).
            let _ = std::fs::remove_file(path);
            return None;
        }
        left -= n as u64;
    }
    file.sync_all().unwrap();
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(path).unwrap();
    Some(elapsed)
}

fn bench_layout_against_pytables(c: &mut Criterion) {
    // On disk (the build's temporary directory) and in memory (/dev/shm, when it exists):
    // the first is what a rig sees, the second the writers' own cost without the disk.
    let places =
        [("disk", Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")))), ("memory", Some(PathBuf::from("/dev/shm")))];
    for (place, root) in places {
        let Some(root) = root.filter(|r| r.is_dir()) else { continue };
        let dir = tempfile::tempdir_in(root).unwrap();
        let mut n = 0;
        let mut ours = Vec::new();
        let mut file_bytes = 0;
        let mut group = c.benchmark_group("layout");
        group.throughput(Throughput::Bytes((LAYOUT_SECONDS * FPS) as u64 * (CHANNELS as u64 * 2)));
        group.sample_size(10);
        group.bench_function(format!("record_4s_1024ch_swmr_flush_1s_with_spikes_to_{place}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let path = dir.path().join(format!("layout_{n}.h5"));
                    let t = record_layout(&path);
                    ours.push(t);
                    total += t;
                    file_bytes = std::fs::metadata(&path).unwrap().len();
                    std::fs::remove_file(&path).unwrap();
                }
                total
            })
        });
        group.finish();
        if ours.is_empty() {
            // Filtered out (or listing): nothing to compare.
            continue;
        }

        // PyTables, the same recording, in the same run: five times, median.
        let mut theirs = Vec::new();
        for i in 0..5 {
            let path = dir.path().join(format!("pytables_{i}.h5"));
            match record_layout_with_pytables(&path) {
                Ok(t) => theirs.push(t),
                Err(reason) => {
                    println!("layout vs PyTables ({place}): PyTables side skipped: {reason}");
                    return;
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (ours, theirs) = (median(&mut ours), median(&mut theirs));
        let x = |t: Duration| LAYOUT_SECONDS / t.as_secs_f64();
        println!(
            "layout vs PyTables ({place}): ephysd {:.1} ms ({:.1}x real time), PyTables {:.1} ms ({:.1}x real time): ephysd {:.2}x PyTables",
            ours.as_secs_f64() * 1e3,
            x(ours),
            theirs.as_secs_f64() * 1e3,
            x(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );

        // The floor under both, in the same run: five times each, median.
        let floor = |direct: bool| -> Option<Duration> {
            let mut runs: Vec<Duration> = (0..5)
                .map(|i| write_floor(&dir.path().join(format!("floor_{i}.bin")), file_bytes, direct))
                .collect::<Option<_>>()?;
            Some(median(&mut runs))
        };
        let (buffered, direct) = (floor(false).unwrap(), floor(true));
        let best = direct.map_or(buffered, |d| d.min(buffered));
        println!(
            "layout vs PyTables ({place}): the same {:.0} MB in plain writes + fsync {:.1} ms, through O_DIRECT {}: no writer of this file can exceed {:.2}x PyTables here",
            file_bytes as f64 / 1e6,
            buffered.as_secs_f64() * 1e3,
            direct.map_or("refused".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)),
            theirs.as_secs_f64() / best.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench_writer, bench_layout_against_pytables);
criterion_main!(benches);

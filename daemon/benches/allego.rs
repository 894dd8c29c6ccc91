//! `cargo bench -p ephysd --bench allego`: what a client of the Allego surface waits for.
//!
//! A real daemon (this build's `ephysd` binary) streams and records 1024 channels at 30 kHz
//! on the Allego ports while the benchmark asks it, through tonic:
//! - `GetStatus` over and over (criterion's mean, then p50/p99/max of 5000 sustained calls);
//! - `GetHDSnapshot2` for the last second of all 1024 channels (123 MB of `f32`), with
//!   tonic's default client, with one tuned for large replies (large windows and frames), and
//!   with that one in a process whose allocator keeps freed memory for the next reply;
//!
//! Beside them, in the same run: the snapshot alone in process (no gRPC), and the same second
//! read the two ways a Python user would: radiens-core's `AllegoClient.get_signals` from the
//! daemon, and a plain h5py/numpy read of that second from a recording
//! (`signals_side_by_side.py`, run with the test virtualenv's Python).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ephysd_drivers::sim::SimConfig;
use ephysd_drivers::{open, DeviceSpec};
use ephysd_pipeline::{
    snapshot, Acquisition, BufferPool, ChannelPick, FrameSpan, Pacing, PipelineCounters, PrimaryCache, StageChain,
    StreamId, StreamPlan, ThreadPlacement,
};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::pcache1_client::Pcache1Client;
use ephysd_proto::allego::{
    HdSnapshotRequest2, RecordMode, SetRecordRequest, SetStreamRequest, SigSelector, StandardRequest, TimeRange,
    TimeRangeSelMode,
};
use tonic::transport::{Channel, Endpoint};

const CHANNELS: usize = 1024;
const RATE: f64 = 30_000.0;
/// radiens-core dials these fixed ports, so the daemon under test must have them.
const BASE_PORT: u16 = 50051;

/// The daemon under test; killed when dropped.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Daemon {
    if std::net::TcpStream::connect(("127.0.0.1", BASE_PORT)).is_ok() {
        panic!("port {BASE_PORT} is in use: stop the other Allego server or ephysd before benchmarking");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(env!("CARGO_BIN_EXE_ephysd"))
        .arg("run")
        .env("EPHYSD_DEVICE__CHANNELS", CHANNELS.to_string())
        .env("EPHYSD_CACHE__SECONDS", "10")
        .env("EPHYSD_RECORDING__BASE_PATH", dir.path().join("recordings"))
        .env("EPHYSD_RECORDING__BASE_NAME", "bench")
        .env("EPHYSD_RECORDING__MIN_FREE_MB", "0")
        .env("EPHYSD_REALTIME__FIFO_PRIORITY", "none")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("ephysd.log")).expect("log file"))
        .spawn()
        .expect("ephysd starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", BASE_PORT + 4)).is_err() {
        assert!(Instant::now() < deadline, "ephysd did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon { child, dir }
}

fn last_second_request() -> HdSnapshotRequest2 {
    HdSnapshotRequest2 {
        dsource_id: "Live Signals".into(),
        t_r: TimeRange { time_range_sec: vec![1.0, f64::NAN], fs: RATE, ..Default::default() },
        sel_mode: Some(TimeRangeSelMode::TrsFromHead as i32),
        sig_sel: Some(SigSelector { amp_ntv_idxs: (0..CHANNELS as i64).collect(), ..Default::default() }),
        apply_ds_pstage2: Some(false),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn allego(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = start_daemon();
    let endpoint = |offset: u16| format!("http://127.0.0.1:{}", BASE_PORT + offset);
    let (mut core, mut pcache, mut tuned) = runtime.block_on(async {
        let core = AllegoCoreClient::connect(endpoint(0)).await.expect("core port");
        let pcache =
            Pcache1Client::connect(endpoint(1)).await.expect("pcache port").max_decoding_message_size(usize::MAX);
        // A client tuned for large replies, as gRPC's C core tunes itself: large flow-control
        // windows and frames.
        let tuned = Endpoint::from_shared(endpoint(1))
            .expect("endpoint")
            .initial_stream_window_size(64 << 20)
            .initial_connection_window_size(64 << 20)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("pcache port");
        let tuned: Pcache1Client<Channel> = Pcache1Client::new(tuned).max_decoding_message_size(usize::MAX);
        (core, pcache, tuned)
    });
    runtime.block_on(async {
        core.set_stream_state(SetStreamRequest { mode: 1 }).await.expect("streaming starts");
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROn as i32, port: None })
            .await
            .expect("recording starts");
        // Let the cache hold more than the second each snapshot asks for.
        tokio::time::sleep(Duration::from_secs(3)).await;
    });

    let mut group = c.benchmark_group("allego");
    group.bench_function("get_status_while_recording_1024ch", |b| {
        b.iter(|| runtime.block_on(core.get_status(StandardRequest::default())).expect("status"))
    });
    let mut latencies: Vec<Duration> = (0..5000)
        .map(|_| {
            let started = Instant::now();
            runtime.block_on(core.get_status(StandardRequest::default())).expect("status");
            started.elapsed()
        })
        .collect();
    latencies.sort();
    println!(
        "get_status while streaming and recording 1024 ch: p50 {:?}, p99 {:?}, max {:?} over {} calls",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len()
    );

    let bytes = (CHANNELS as f64 * RATE * 4.0) as u64;
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);
    group.bench_function("get_signals_last_1s_1024ch_grpc", |b| {
        b.iter(|| {
            let reply = runtime.block_on(pcache.get_hd_snapshot2(last_second_request())).expect("signals").into_inner();
            assert_eq!(reply.sigs.amp.expect("amp").data.len() as u64, bytes);
        })
    });
    group.bench_function("get_signals_last_1s_1024ch_grpc_tuned_client", |b| {
        b.iter(|| {
            let reply = runtime.block_on(tuned.get_hd_snapshot2(last_second_request())).expect("signals").into_inner();
            assert_eq!(reply.sigs.amp.expect("amp").data.len() as u64, bytes);
        })
    });
    keep_freed_memory();
    group.bench_function("get_signals_last_1s_1024ch_grpc_tuned_client_memory_kept", |b| {
        b.iter(|| {
            let reply = runtime.block_on(tuned.get_hd_snapshot2(last_second_request())).expect("signals").into_inner();
            assert_eq!(reply.sigs.amp.expect("amp").data.len() as u64, bytes);
        })
    });
    group.finish();

    let recording = runtime.block_on(async {
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROff as i32, port: None }).await.expect("stop");
        std::fs::read_dir(daemon.dir.path().join("recordings"))
            .expect("recordings")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "h5"))
            .expect("a recording")
    });
    side_by_side(&recording);
    drop(daemon);
}

/// The snapshot alone: one second of 1024 channels from a full primary cache into reply bytes.
fn snapshot_in_process(c: &mut Criterion) {
    let config =
        SimConfig { amplifier_channels: CHANNELS, sample_rate_hz: RATE, accelerated: true, ..SimConfig::default() };
    let mut device = open(&DeviceSpec::Simulated(config)).expect("device");
    let layout = device.description().layout;
    let (cache, writer) = PrimaryCache::new(layout, 2 * RATE as usize, RATE);
    let acquisition = Acquisition::spawn(ThreadPlacement::default(), std::sync::Arc::new(PipelineCounters::default()))
        .expect("acquisition")
        .0;
    acquisition.start(StreamPlan {
        id: StreamId(1),
        source: device.start_stream().expect("stream"),
        cache: writer,
        stages: StageChain::new(layout, Vec::new()),
        pacing: Pacing::Consumer,
    });
    // Fill the cache, then hold the stream still (a gate at the head) so every read sees the
    // same frames.
    cache.set_pace_gate(0);
    while cache.head() < RATE as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pick = ChannelPick { amplifier: (0..CHANNELS).collect(), ..Default::default() };
    let mut group = c.benchmark_group("allego");
    group.throughput(Throughput::Bytes((CHANNELS as f64 * RATE * 4.0) as u64));
    group.sample_size(20);
    // As the daemon serves replies: each snapshot's buffers go back to the pool once used.
    let pool = BufferPool::default();
    group.bench_function("snapshot_1s_1024ch_in_process", |b| {
        b.iter(|| {
            let head = cache.head();
            let s = snapshot(&cache, FrameSpan { start: head - RATE as u64, end: head }, &pick, &pool).expect("held");
            pool.give(s.amplifier.bytes);
        })
    });
    group.finish();
    acquisition.stop();
}

/// Makes this process's allocator keep memory it frees for the next allocation.
///
/// tonic receives a reply into one buffer of the message's size. glibc maps every allocation
/// over 32 MiB afresh and unmaps it when freed, so each 123 MB reply would fault in 30 000 new
/// pages, which on this kind of virtual machine costs more than moving the bytes. With
/// mappings off and trimming off, the second reply reuses the first one's pages. The same
/// holds for any client process ([`KEEP_FREED_MEMORY`] for one that cannot call `mallopt`).
fn keep_freed_memory() {
    // SAFETY: mallopt only changes glibc's allocation policy for later calls; it takes no
    // pointers and is called from one thread while no allocation is in flight on others that
    // depend on the old policy.
    let kept =
        unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1 };
    assert!(kept, "glibc refused the allocation policy");
}

/// radiens-core's `get_signals` of the last second against h5py reading one second of the
/// recording, both from Python in one run.
fn side_by_side(recording: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/signals_side_by_side.py");
    run_side_by_side(&script, recording, None);
    let (name, value) = KEEP_FREED_MEMORY;
    println!("the same, with the Python process keeping freed memory ({name}={value}):");
    run_side_by_side(&script, recording, Some(KEEP_FREED_MEMORY));
}

/// What [`keep_freed_memory`] does, as the environment variable for a process that cannot
/// call `mallopt` itself.
const KEEP_FREED_MEMORY: (&str, &str) =
    ("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647");

fn run_side_by_side(script: &Path, recording: &Path, environment: Option<(&str, &str)>) {
    let mut command = Command::new(python());
    command.arg(script).arg(recording).env("RADIENS_OFFLINE", "1");
    if let Some((name, value)) = environment {
        command.env(name, value);
    }
    let out = command.output();
    match out {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => println!(
            "side by side with radiens-core and h5py not measured: {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            println!("side by side with radiens-core and h5py not measured: cannot run {}: {e}", python().display())
        }
    }
}

/// The Python with radiens-core and h5py: `EPHYSD_BENCH_PYTHON`, else the test virtualenv
/// `make test` builds, else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EPHYSD_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

criterion_group!(benches, allego, snapshot_in_process);
criterion_main!(benches);

//! Recordings made by the real daemon process, read back and checked against what the
//! simulated device generated: every sample frame for frame, rollover seams, trigger windows,
//! files per port, recording types, autostart and the free-space check.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{h5_files, signal, wait_exit, TestDaemon};
use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};
use ephysd_hdf5::RecordingReader;
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::{
    BackboneStatus, RecordMode, SetRecordRequest, SetStreamRequest, SetTriggerRequest, StandardRequest, StreamMode,
    TriggerChannel,
};
use tonic::transport::Channel;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A daemon on the accelerated simulated device with extra `EPHYSD_*` settings.
fn start(d: &mut TestDaemon, channels: usize, env: &[(&str, &str)]) -> Child {
    let mut cmd = d.command();
    cmd.env("EPHYSD_DEVICE__CHANNELS", channels.to_string())
        .env("EPHYSD_DEVICE__ACCELERATED", "true")
        .env("EPHYSD_DEVICE__SEED", "7")
        .env("EPHYSD_RECORDING__MIN_FREE_MB", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));
    child
}

fn stop(d: &TestDaemon, mut child: Child) {
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
}

async fn client(d: &TestDaemon) -> AllegoCoreClient<Channel> {
    AllegoCoreClient::connect(d.endpoint(0)).await.unwrap()
}

async fn status(core: &mut AllegoCoreClient<Channel>) -> BackboneStatus {
    core.get_status(StandardRequest::default()).await.unwrap().into_inner()
}

async fn record(core: &mut AllegoCoreClient<Channel>, on: bool) -> Result<(), tonic::Status> {
    let mode = if on { RecordMode::ROn } else { RecordMode::ROff };
    core.set_record_state(SetRecordRequest { mode: mode as i32, port: None }).await.map(drop)
}

/// Records until status reports `seconds` of signal, then stops.
async fn record_for(core: &mut AllegoCoreClient<Channel>, seconds: f64) {
    record(core, true).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while status(core).await.recording.duration < seconds {
        assert!(Instant::now() < deadline, "the recording did not reach {seconds} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    record(core, false).await.unwrap();
}

/// The device the daemon runs, rebuilt here: same configuration, same seed.
fn same_device(channels: usize) -> SimulatedSource {
    SimulatedSource::new(SimConfig {
        mode: SimMode::Spikes,
        amplifier_channels: channels,
        accelerated: true,
        seed: 7,
        ..SimConfig::default()
    })
    .unwrap()
}

/// Every frame the device generates up to `end`, as (frame-major amplifier, analog, digital in).
fn generate(source: &mut SimulatedSource, end: u64) -> (Vec<i16>, Vec<u16>, Vec<u16>) {
    let (mut amp, mut adc, mut din) = (Vec::new(), Vec::new(), Vec::new());
    let mut block = FrameBlock::new(source.layout());
    while source.frames_produced() < end {
        source.read_block(&mut block).unwrap();
        amp.extend_from_slice(block.amplifier_filled());
        adc.extend_from_slice(&block.analog_in[..block.frames * block.layout().analog_in_channels]);
        din.extend_from_slice(&block.digital_in[..block.frames]);
    }
    (amp, adc, din)
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    h5_files(dir)
}

#[test]
fn recorded_frames_equal_what_the_device_generated_frame_for_frame() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 16, &[]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        record_for(&mut core, 1.5).await;
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    assert_eq!(files.len(), 1, "{files:?}");
    let r = RecordingReader::open(&files[0]).unwrap();
    let info = r.info().clone();
    assert!(info.closed_cleanly);
    assert!(info.frames >= 45_000, "{} frames", info.frames);
    assert_eq!(info.device, "simulated device (sim-spikes, 16 ch @ 30000 Hz)");
    assert_eq!((info.analog_in_channels, info.digital), (8, true));
    let config: serde_json::Value = serde_json::from_str(&info.config_json).unwrap();
    assert_eq!(config["device"]["seed"], 7);

    let index = r.read_frame_index(0, info.frames as usize).unwrap();
    assert!(index.windows(2).all(|w| w[1] == w[0] + 1), "a consumer-paced recording has no gaps");
    assert_eq!((info.start_timestamp, info.end_timestamp), (index[0], index[0] + info.frames));
    let (amp, adc, din) = generate(&mut same_device(16), info.end_timestamp);
    let first = index[0] as usize;
    let n = info.frames as usize;
    assert_eq!(r.read_samples(0, n).unwrap(), amp[first * 16..(first + n) * 16], "samples differ from the device's");
    assert_eq!(r.read_analog_in(0, n).unwrap(), adc[first * 8..(first + n) * 8]);
    assert_eq!(r.read_digital_in(0, n).unwrap(), din[first..first + n]);

    // /ground_truth holds exactly the device's spikes in the recorded frames.
    let truth = r.read_ground_truth().unwrap();
    let expected = same_device(16).ground_truth(info.start_timestamp..info.end_timestamp);
    assert!(expected.len() > 10, "{} spikes", expected.len());
    assert_eq!(truth.len(), expected.len());
    for (row, s) in truth.iter().zip(&expected) {
        assert_eq!(row.timestamp, (s.frame - info.start_timestamp) as i64);
        assert_eq!((row.channel as usize, row.unit, row.peak_uv), (s.channel, s.unit, -s.amplitude_uv));
    }
    // /channels names the ports' channels and carries the impedance measured at start.
    let channels = r.read_channels().unwrap();
    assert_eq!(channels.len(), 16);
    assert_eq!((channels[5].native_index, channels[5].name.as_str(), channels[5].port.as_str()), (5, "A-005", "A"));
    assert!(channels.iter().all(|c| c.impedance_ohms > 50e3 && c.impedance_ohms < 5e6), "{:?}", channels[0]);
}

#[test]
fn rollover_by_duration_and_size_keeps_the_frame_numbering_continuous_across_files() {
    for (channels, env, min_files) in [
        (32, [("EPHYSD_RECORDING__ROLLOVER_MINUTES", "0.05")], 3),
        (1024, [("EPHYSD_RECORDING__ROLLOVER_MB", "16")], 5),
    ] {
        let mut d = TestDaemon::new();
        let child = start(&mut d, channels, &env);
        let seconds = if channels == 32 { 10.0 } else { 1.5 };
        runtime().block_on(async {
            let mut core = client(&d).await;
            record_for(&mut core, seconds).await;
        });
        stop(&d, child);
        let files = sorted_files(&d.recordings());
        assert!(files.len() >= min_files, "{channels} ch: {} files", files.len());
        let mut next_frame = None;
        for (i, path) in files.iter().enumerate() {
            let r = RecordingReader::open(path).unwrap();
            let info = r.info();
            assert!(info.closed_cleanly, "{path:?}");
            assert_eq!(info.file_sequence as usize, i + 1, "{path:?}");
            let index = r.read_frame_index(0, info.frames as usize).unwrap();
            if index.is_empty() {
                // The stop can come just after a rollover opened the next file.
                assert_eq!(i + 1, files.len(), "an empty file before the last one: {path:?}");
                continue;
            }
            assert!(index.windows(2).all(|w| w[1] == w[0] + 1), "{path:?} has a gap");
            if let Some(expected) = next_frame {
                assert_eq!(index[0], expected, "frames lost or repeated at the seam before {path:?}");
            }
            next_frame = Some(index[index.len() - 1] + 1);
            if i + 1 < files.len() {
                if channels == 32 {
                    assert_eq!(info.duration_frames, 90_000, "3 s per file at 30 kHz: {path:?}");
                } else {
                    let size = std::fs::metadata(path).unwrap().len();
                    assert!((16 << 20..(16 << 20) + (5 << 20)).contains(&size), "{path:?}: {size} bytes");
                }
            }
        }
    }
}

#[test]
fn a_trigger_records_each_pulse_of_its_line_frame_exactly() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 16, &[]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        let enable = SetTriggerRequest { channel: TriggerChannel::TDin0 as i32, enabled: true, port: None };
        core.set_trigger_state(enable).await.unwrap();
        let state = core.get_trigger_state(StandardRequest::default()).await.unwrap().into_inner();
        assert_eq!(state.enabled_channels, vec![TriggerChannel::TDin0 as i32]);
        let bad = SetTriggerRequest { channel: 77, enabled: true, port: None };
        let e = core.set_trigger_state(bad).await.unwrap_err();
        assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains("channel = 77"), "{e:?}");
        core.set_stream_state(SetStreamRequest { mode: StreamMode::SOn as i32 }).await.unwrap();
        // DIN 0 of the simulated board pulses for 10 ms every second: one file per pulse.
        let deadline = Instant::now() + Duration::from_secs(120);
        while sorted_files(&d.recordings()).len() < 4 {
            assert!(Instant::now() < deadline, "only {} trigger files", sorted_files(&d.recordings()).len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let disable = SetTriggerRequest { channel: TriggerChannel::TNone as i32, enabled: false, port: None };
        core.set_trigger_state(disable).await.unwrap();
        assert!(core
            .get_trigger_state(StandardRequest::default())
            .await
            .unwrap()
            .into_inner()
            .enabled_channels
            .is_empty());
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    let closed: Vec<_> = files.iter().filter(|p| RecordingReader::open(p).unwrap().info().frames == 300).collect();
    assert!(closed.len() >= 3, "{} files of one whole pulse among {files:?}", closed.len());
    for path in closed {
        let r = RecordingReader::open(path).unwrap();
        let index = r.read_frame_index(0, 300).unwrap();
        assert_eq!(index[0] % 30_000, 0, "{path:?} does not start on the rising edge");
        assert!(index.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(r.read_digital_in(0, 300).unwrap().iter().all(|w| w & 1 == 1), "{path:?} holds frames with DIN 0 low");
        assert!(r.info().closed_cleanly);
    }
}

#[test]
fn split_by_port_writes_one_file_per_port_with_its_own_channels() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 300, &[("EPHYSD_RECORDING__SPLIT_FILES_BY_PORT", "true")]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        record_for(&mut core, 0.5).await;
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(files.len(), 3, "{names:?}");
    assert!(names[0].ends_with("_A.h5") && names[1].ends_with("_B.h5") && names[2].ends_with("_C.h5"), "{names:?}");
    let mut frames = None;
    for (path, (port, first, channels)) in files.iter().zip([("A", 0, 128), ("B", 128, 128), ("C", 256, 44)]) {
        let r = RecordingReader::open(path).unwrap();
        let info = r.info();
        assert_eq!((info.port.as_str(), info.channel_count), (port, channels));
        let rows = r.read_channels().unwrap();
        assert_eq!(
            rows.iter().map(|c| c.native_index as usize).collect::<Vec<_>>(),
            (first..first + channels).collect::<Vec<_>>()
        );
        // The ports' files cover the same frames.
        let span = (info.start_timestamp, info.end_timestamp);
        assert_eq!(*frames.get_or_insert(span), span);
        // Column 0 of port B's file is device channel 128.
        let (amp, _, _) = generate(&mut same_device(300), info.start_timestamp + 100);
        let f = info.start_timestamp as usize;
        let recorded = r.read_samples(0, 100).unwrap();
        for row in 0..100 {
            assert_eq!(recorded[row * channels], amp[(f + row) * 300 + first], "{port} row {row}");
        }
    }
}

#[test]
fn a_spikes_only_recording_keeps_time_but_no_samples() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 16, &[("EPHYSD_RECORDING__RECORDING_TYPE", "spikes")]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        record_for(&mut core, 0.5).await;
        let config = core.get_config_recording(StandardRequest::default()).await.unwrap().into_inner();
        assert_eq!(config.recording_type, ephysd_proto::allego::DataRecordingType::Spikes as i32);
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    let r = RecordingReader::open(&files[0]).unwrap();
    assert_eq!((r.info().recording_type.as_str(), r.info().frames), ("spikes", 0));
    assert!(r.info().duration_seconds >= 0.5, "{}", r.info().duration_seconds);
}

#[test]
fn autostart_record_streams_and_records_without_a_client() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 8, &[("EPHYSD_RECORDING__AUTOSTART", "record")]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        let s = status(&mut core).await;
        assert_eq!(s.streaming.stream_mode, StreamMode::SOn as i32);
        assert_eq!(s.recording.record_mode, RecordMode::ROn as i32);
        assert!(s.recording.active_file_name.ends_with(".h5"));
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    assert_eq!(files.len(), 1);
    assert!(RecordingReader::open(&files[0]).unwrap().info().closed_cleanly);
}

#[test]
fn too_little_free_space_refuses_a_recording_and_names_the_key() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 8, &[("EPHYSD_RECORDING__MIN_FREE_MB", "104857600")]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        let e = record(&mut core, true).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("recording.min_free_mb") && e.message().contains("MiB free"), "{}", e.message());
        assert_eq!(status(&mut core).await.recording.record_mode, RecordMode::ROff as i32);
    });
    stop(&d, child);
    assert!(sorted_files(&d.recordings()).is_empty());
}

#[test]
fn a_file_size_limit_rolls_the_recording_over_without_losing_a_frame() {
    // A process file-size limit (`ulimit -f`), as a FAT32 disk's 4 GiB would be: the recorder
    // starts the next file before a write could fail, and the recording goes on.
    const LIMIT: u64 = 40 << 20;
    let mut d = TestDaemon::new();
    let mut cmd = d.command();
    cmd.env("EPHYSD_DEVICE__CHANNELS", "1024")
        .env("EPHYSD_DEVICE__ACCELERATED", "true")
        .env("EPHYSD_RECORDING__MIN_FREE_MB", "0");
    // SAFETY: setrlimit is async-signal-safe and only reads the struct passed.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));
    runtime().block_on(async {
        let mut core = client(&d).await;
        record_for(&mut core, 1.5).await;
        let s = status(&mut core).await;
        assert_eq!(s.recording.error, "", "a file-size limit is not an error");
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    assert!(files.len() >= 3, "{} files for 92 MB under a 40 MiB limit", files.len());
    let mut next = None;
    for path in &files {
        assert!(std::fs::metadata(path).unwrap().len() < LIMIT, "{path:?} reached the limit");
        let r = RecordingReader::open(path).unwrap();
        assert!(r.info().closed_cleanly, "{path:?}");
        let index = r.read_frame_index(0, r.frames() as usize).unwrap();
        if index.is_empty() {
            // The stop can come just after a rollover opened the next file: only the last
            // file may be empty.
            assert_eq!(Some(path), files.last(), "an empty file before the last one");
            continue;
        }
        assert!(index.windows(2).all(|w| w[1] == w[0] + 1), "{path:?}");
        if let Some(expected) = next {
            assert_eq!(index[0], expected, "frames lost or repeated before {path:?}");
        }
        next = Some(index[index.len() - 1] + 1);
    }
}

#[test]
fn a_trigger_given_a_port_gates_only_that_ports_files_in_a_split_recording() {
    let mut d = TestDaemon::new();
    let child = start(&mut d, 300, &[("EPHYSD_RECORDING__SPLIT_FILES_BY_PORT", "true")]);
    runtime().block_on(async {
        let mut core = client(&d).await;
        let port_b = ephysd_proto::allego::Port::B as i32;
        let enable = SetTriggerRequest { channel: TriggerChannel::TDin0 as i32, enabled: true, port: Some(port_b) };
        core.set_trigger_state(enable).await.unwrap();
        let state = core.get_trigger_state(StandardRequest::default()).await.unwrap().into_inner();
        assert_eq!((state.enabled_channels, state.ports), (vec![TriggerChannel::TDin0 as i32], vec![port_b]));
        core.set_stream_state(SetStreamRequest { mode: StreamMode::SOn as i32 }).await.unwrap();
        // Port B's files follow the pulses of DIN 0 (10 ms each second); A and C record throughout.
        let deadline = Instant::now() + Duration::from_secs(120);
        let b_files = |d: &TestDaemon| {
            sorted_files(&d.recordings()).into_iter().filter(|p| p.to_string_lossy().ends_with("_B.h5")).count()
        };
        while b_files(&d) < 3 {
            assert!(Instant::now() < deadline, "port B has {} files", b_files(&d));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let disable = SetTriggerRequest { channel: TriggerChannel::TNone as i32, enabled: false, port: None };
        core.set_trigger_state(disable).await.unwrap();
    });
    stop(&d, child);
    let files = sorted_files(&d.recordings());
    let of = |suffix: &str| files.iter().filter(|p| p.to_string_lossy().ends_with(suffix)).cloned().collect::<Vec<_>>();
    let (a, b, c) = (of("_A.h5"), of("_B.h5"), of("_C.h5"));
    assert_eq!((a.len(), c.len()), (1, 1), "ungated ports keep one file each: {files:?}");
    let a_info = RecordingReader::open(&a[0]).unwrap().info().clone();
    assert!(a_info.duration_frames >= 2 * 30_000, "port A recorded throughout: {} frames", a_info.duration_frames);
    let whole: Vec<_> = b.iter().filter(|p| RecordingReader::open(p).unwrap().info().frames == 300).collect();
    assert!(whole.len() >= 2, "port B files of one whole pulse: {} of {}", whole.len(), b.len());
    for path in whole {
        let r = RecordingReader::open(path).unwrap();
        assert_eq!((r.info().port.as_str(), r.info().channel_count), ("B", 128));
        assert_eq!(r.read_frame_index(0, 1).unwrap()[0] % 30_000, 0, "{path:?} starts on the rising edge");
        assert!(r.read_digital_in(0, 300).unwrap().iter().all(|w| w & 1 == 1));
    }
}

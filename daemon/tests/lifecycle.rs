//! The daemon as systemd runs it: notify protocol over a real Unix datagram socket, watchdog
//! pings, gRPC control, SIGHUP reload and SIGTERM with a recording open.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{h5_files, signal, wait_exit, TestDaemon};
use ephysd_hdf5::RecordingReader;
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::{BackboneMode, RecordMode, SetRecordRequest, SetStreamRequest, StandardRequest, StreamMode};

/// Collects notify datagrams until one satisfies `until` or the timeout passes.
fn receive_until(sock: &UnixDatagram, timeout: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = until(&msg);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("notify message not received in {timeout:?}; got {seen:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn notify_watchdog_grpc_and_sigterm_with_an_open_recording() {
    let mut d = TestDaemon::new();
    let sock_path = d.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut child = d.command().env("NOTIFY_SOCKET", &sock_path).env("WATCHDOG_USEC", "400000").spawn().unwrap();

    let seen = receive_until(&sock, Duration::from_secs(30), |m| m.contains("READY=1"));
    // READY=1 means every service answers.
    for i in 0..5 {
        std::net::TcpStream::connect(("127.0.0.1", d.base_port + i)).expect("port open once READY=1 is sent");
    }
    let status_lines = receive_until(&sock, Duration::from_secs(5), |m| m.starts_with("STATUS="));
    assert!(status_lines.iter().chain(&seen).any(|m| m.contains("STATUS=idle")), "{seen:?} {status_lines:?}");
    // The watchdog is pinged repeatedly while the acquisition thread lives.
    receive_until(&sock, Duration::from_secs(3), |m| m.contains("WATCHDOG=1"));
    receive_until(&sock, Duration::from_secs(3), |m| m.contains("WATCHDOG=1"));

    let rt = runtime();
    rt.block_on(async {
        let mut core = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        core.set_stream_state(SetStreamRequest { mode: StreamMode::SOn as i32 }).await.unwrap();
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROn as i32, port: None }).await.unwrap();
        let status = core.get_status(StandardRequest::default()).await.unwrap().into_inner();
        assert_eq!(status.recording.record_mode, RecordMode::ROn as i32);
        assert_eq!(status.streaming.stream_mode, StreamMode::SOn as i32);
        assert!(status.recording.active_file_name.ends_with(".h5"));
        assert_eq!(status.ports.iter().map(|p| p.channel_count).sum::<i32>(), 16);
        assert_eq!((status.gpio_channel_count.n_din, status.gpio_channel_count.n_dout), (16, 16));
        let config = core.get_config(StandardRequest::default()).await.unwrap().into_inner();
        assert_eq!(config.base_samp_freq, 30_000.0);
        assert_eq!(config.backbone_mode, BackboneMode::SmartboxSimGenSpikes as i32);
        assert_eq!(config.stream_loop_dur_ms, 4, "128-frame blocks at 30 kHz");
        let bad = core.set_stream_state(SetStreamRequest { mode: 9 }).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert!(bad.message().contains("mode = 9"), "{}", bad.message());
    });
    receive_until(&sock, Duration::from_secs(5), |m| m.contains("STATUS=recording"));
    std::thread::sleep(Duration::from_millis(1200));

    signal(&child, libc::SIGTERM);
    receive_until(&sock, Duration::from_secs(5), |m| m.contains("STOPPING=1"));
    let (status, took) = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
    assert!(took < Duration::from_secs(5));

    let files = h5_files(&d.recordings());
    assert_eq!(files.len(), 1, "{files:?}");
    let info = RecordingReader::open(&files[0]).unwrap().info().clone();
    assert!(info.closed_cleanly, "the recording open at SIGTERM is closed cleanly");
    assert_eq!(info.channel_count, 16);
    assert!(info.duration_frames as f64 >= 0.8 * 30_000.0, "{info:?}");
}

#[test]
fn sighup_applies_live_keys_and_says_what_it_applied() {
    let mut d = TestDaemon::new();
    let cfg = d.dir.path().join("ephysd.toml");
    std::fs::write(&cfg, "[recording]\nbase_name = \"before\"\n").unwrap();
    let mut child = d.command().arg("--config").arg(&cfg).spawn().unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));

    std::fs::write(&cfg, "[log]\nlevel = \"debug\"\n[recording]\nbase_name = \"after\"\n[device]\nseed = 99\n")
        .unwrap();
    signal(&child, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.log_text().contains("reload applied") {
        assert!(Instant::now() < deadline, "no reload line: {}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log_text();
    assert!(log.contains("log.level = debug") && log.contains("recording.base_name = after"), "{log}");
    assert!(log.contains("device") && log.contains("after a restart"), "{log}");

    runtime().block_on(async {
        let mut core = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROn as i32, port: None }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROff as i32, port: None }).await.unwrap();
    });
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    let files = h5_files(&d.recordings());
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("after"), "{name}");
    // Only live keys changed the running daemon: the stream kept its 16 channels.
    assert_eq!(RecordingReader::open(&files[0]).unwrap().info().channel_count, 16);
}

#[test]
fn unimplemented_methods_are_named() {
    let mut d = TestDaemon::new();
    let mut child = d.spawn();
    runtime().block_on(async {
        let mut core = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        let err = core.get_stim_params(StandardRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
        assert!(err.message().contains("allego.AllegoCore/GetStimParams"), "{}", err.message());
    });
    signal(&child, libc::SIGINT);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

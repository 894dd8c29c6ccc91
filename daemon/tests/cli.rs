//! The command line: `--version`, `check-config`, and start-up failures with clear messages.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{ephysd, wait_exit, TestDaemon};

#[test]
fn version_prints_the_package_version() {
    let out = ephysd().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ephysd {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let out = ephysd().arg("check-config").env("EPHYSD_DEVICE__CHANNELS", "128").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: toml::Table = text.parse().expect("check-config prints TOML");
    assert_eq!(parsed["device"]["channels"].as_integer(), Some(128));
    assert_eq!(parsed["server"]["base_port"].as_integer(), Some(50051));
}

#[test]
fn check_config_fails_with_one_line_naming_the_key() {
    let out = ephysd().arg("check-config").env("EPHYSD_DEVICE__SAMPLE_RATE_HZ", "44100").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("device.sample_rate_hz") && err.contains("44100") && err.contains("30000"), "{err}");
}

#[test]
fn check_config_reads_a_file_and_refuses_unknown_keys_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[device]\nbackbone = \"sim-lfp\"\n").unwrap();
    let out = ephysd().args(["check-config", "--config"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("sim-lfp"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[device]\nchanels = 8\n").unwrap();
    let out = ephysd().args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("device.chanels") && err.contains("bad.toml"), "{err}");
}

#[test]
fn run_refuses_out_of_range_channels_without_panicking() {
    let mut d = TestDaemon::new();
    let out = d.command().env("EPHYSD_DEVICE__CHANNELS", "0").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = d.log_text();
    assert!(log.contains("device.channels") && log.contains("1..=1024"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn run_refuses_an_unwritable_recording_directory() {
    let mut d = TestDaemon::new();
    let out = d.command().env("EPHYSD_RECORDING__BASE_PATH", "/proc/ephysd/recordings").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = d.log_text();
    assert!(log.contains("recording.base_path") && log.contains("/proc/ephysd/recordings"), "{log}");
}

#[test]
fn run_refuses_a_port_in_use_and_names_it() {
    let mut d = TestDaemon::new();
    let _taken = TcpListener::bind(("127.0.0.1", d.base_port + 2)).unwrap();
    let mut child = d.command().spawn().unwrap();
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    let log = d.log_text();
    let port = (d.base_port + 2).to_string();
    assert!(log.contains(&port) && log.contains("Kpi1") && log.contains("in use"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// A small recording with a gap, closed cleanly; and a copy taken while it was open, as a
/// crash would leave it.
fn recordings(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use ephysd_hdf5::{RecordingMeta, RecordingWriter};
    let clean = dir.join("clean.h5");
    let crashed = dir.join("crashed.h5");
    let meta = RecordingMeta {
        device: "test device".into(),
        software_version: "ephysd test".into(),
        ..RecordingMeta::new(1_000.0, 4, 0.195)
    };
    let mut w = RecordingWriter::create(&clean, meta).unwrap();
    let index: Vec<u64> = (0..1500).chain(1600..2000).collect();
    w.append_samples(&index, &vec![7; index.len() * 4]).unwrap();
    w.flush().unwrap();
    std::fs::copy(&clean, &crashed).unwrap();
    w.finish().unwrap();
    (clean, crashed)
}

#[test]
fn inspect_says_what_a_recording_holds_and_whether_it_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, crashed) = recordings(dir.path());
    let out = ephysd().arg("inspect").arg(&clean).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "closed cleanly  yes",
        "device          test device",
        "channels        4",
        "rate            1000 Hz",
        "gaps            1 (1 device, 0 recorder overrun; 100 frames missing)",
        "frames stored   1900",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let out = ephysd().args(["inspect", "--json"]).arg(&clean).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["frames"].as_u64(), json["duration_frames"].as_u64()), (Some(1900), Some(2000)));
    assert_eq!(json["gaps"]["device"].as_u64(), Some(1));

    let out = ephysd().arg("inspect").arg(&crashed).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NO: still open for writing"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, b"not a recording").unwrap();
    let out = ephysd().arg("inspect").arg(&clean).arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "an unreadable file fails the command");
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.h5"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean.h5"), "readable files are still shown");
}

#[test]
fn recover_closes_a_crashed_recording_and_leaves_a_clean_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, crashed) = recordings(dir.path());
    let out = ephysd().arg("recover").arg(&crashed).arg(&clean).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("crashed.h5: recovered: 1900 frames"), "{text}");
    assert!(text.contains("clean.h5: closed cleanly already"), "{text}");
    let info = ephysd_hdf5::RecordingReader::open(&crashed).unwrap().info().clone();
    assert!(!info.open_for_writing && !info.closed_cleanly && !info.recovered_utc.is_empty());
    assert_eq!((info.frames, info.start_timestamp, info.end_timestamp), (1900, 0, 2000));
    let out = ephysd().arg("recover").arg(dir.path().join("missing.h5")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.h5"));
}

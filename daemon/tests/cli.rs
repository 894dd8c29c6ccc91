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

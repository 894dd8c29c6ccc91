//! `ephysd devices` and `ephysd devices --json`, run as an operator runs them, checked against
//! a scan of the same machine made here: on a machine without acquisition hardware the answer
//! must be the plain sentence or `[]`, and on one with hardware every board the scan sees must
//! be listed with its serial. The test cannot pass by printing nothing: the expected output is
//! derived from the scan, whatever it finds.

use std::process::Command;

use ephysd_drivers::discovery::{scan, FoundDevice};

const NONE_FOUND: &str =
    "No acquisition devices found (looked for Opal Kelly FrontPanel modules, vendor 0x151f, and KonteX XDAQ).";

fn devices(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ephysd")).arg("devices").args(args).output().expect("ephysd runs");
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "ephysd devices {args:?} exits 0; stderr: {stderr}");
    (stdout, stderr)
}

/// What this machine has plugged in, as the drivers see it.
fn expected() -> Vec<FoundDevice> {
    scan().expect("the drivers can list USB on this machine (an absent bus is an empty list)")
}

#[test]
fn devices_prints_one_line_per_device_or_the_plain_sentence() {
    let (stdout, stderr) = devices(&[]);
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
    let expected = expected();
    let lines: Vec<&str> = stdout.lines().collect();
    if expected.is_empty() {
        assert_eq!(lines, [NONE_FOUND], "{stdout}");
        return;
    }
    assert_eq!(lines.len(), expected.len(), "one line per device: {stdout}");
    for (line, found) in lines.iter().zip(&expected) {
        assert!(line.starts_with(&found.description), "{line:?} names {:?}", found.description);
        let serial = found.usb.serial.as_deref().expect("an Opal Kelly module reports its serial");
        assert!(line.contains(&format!("  serial {serial}  ")), "{line:?} carries serial {serial}");
        assert!(
            line.ends_with(&format!("  bus {} address {}", found.usb.bus, found.usb.address)),
            "{line:?} says where the device sits"
        );
    }
}

#[test]
fn devices_json_is_an_array_of_what_the_scan_finds() {
    let (stdout, stderr) = devices(&["--json"]);
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let entries = value.as_array().expect("a JSON array");
    let expected = expected();
    if expected.is_empty() {
        assert_eq!(stdout.trim(), "[]");
        return;
    }
    assert_eq!(entries.len(), expected.len(), "{stdout}");
    for (entry, found) in entries.iter().zip(&expected) {
        assert_eq!(entry["description"], found.description.as_str());
        assert_eq!(entry["family"], "opal_kelly");
        let serial = entry["serial"].as_str().expect("each entry has a serial");
        assert!(!serial.is_empty());
        assert_eq!(Some(serial), found.usb.serial.as_deref());
        assert_eq!(entry["vendor_id"], u64::from(found.usb.vendor_id));
        assert_eq!(entry["product_id"], u64::from(found.usb.product_id));
        assert_eq!(entry["bus"], u64::from(found.usb.bus));
        assert_eq!(entry["address"], u64::from(found.usb.address));
    }
}

#[test]
fn devices_help_names_the_json_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_ephysd")).args(["devices", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--json"));
}

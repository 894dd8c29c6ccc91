//! `ephysd status`, `stream`, `record` and `config` against the real daemon: what they print
//! for a person and for a script, the exit codes (1 the daemon refused, 2 the command line is
//! wrong and nothing was sent, 3 the daemon is out of reach), and TLS with the bearer token.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ephysd, free_base_port, h5_files, TestDaemon};
use ephysd_proto::allego::allego_core_server::{AllegoCore, AllegoCoreServer};
use ephysd_proto::allego::{
    BackboneMode, CableDelay, ConfigCore, ConfigRecording, Port, RestartRequest, SetConfigCoreRequest, StandardReply,
    StandardRequest,
};
use serde_json::Value;

/// What one run of the command line did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.stdout.lines().count(), 1, "one JSON object on one line: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Runs `ephysd ARGS` with only `env` for configuration (nothing of the test's environment).
fn cli(env: &[(&str, String)], args: &[&str]) -> Run {
    let mut cmd = ephysd();
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A test daemon (16 channels, 30 kHz, see common.rs), killed when dropped.
struct Running {
    d: TestDaemon,
    child: Child,
}

impl Running {
    fn start() -> Running {
        let mut d = TestDaemon::new();
        let child = d.spawn();
        Running { d, child }
    }

    /// The configuration the command line reads: the daemon's port, as `EPHYSD_*` gives it.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("EPHYSD_SERVER__BASE_PORT", self.d.base_port.to_string())]
    }

    fn cli(&self, args: &[&str]) -> Run {
        cli(&self.env(), args)
    }

    /// `ephysd status --json`, which must succeed.
    fn status(&self) -> Value {
        let run = self.cli(&["status", "--json"]);
        assert_eq!(run.code, 0, "{run:?}");
        run.json()
    }

    /// `ephysd config get KEY`, which must succeed.
    fn get(&self, key: &str) -> String {
        let run = self.cli(&["config", "get", key]);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout.trim_end_matches('\n').to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts the run succeeded and returns its stdout.
fn ok(run: Run) -> String {
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    run.stdout
}

/// The `label  value` lines of human status output, checking they are aligned.
fn labelled(stdout: &str) -> BTreeMap<String, String> {
    let mut columns = Vec::new();
    let rows = stdout
        .lines()
        .map(|line| {
            let (label, rest) = line.split_once("  ").unwrap_or_else(|| panic!("not `label  value`: {line:?}"));
            let value = rest.trim_start();
            columns.push(line.len() - value.len());
            (label.to_string(), value.to_string())
        })
        .collect();
    columns.dedup();
    assert_eq!(columns.len(), 1, "values start in one column:\n{stdout}");
    rows
}

#[test]
fn status_shows_the_daemons_state_for_people_and_for_scripts() {
    let daemon = Running::start();
    let port = daemon.d.base_port;

    // The address comes from the configuration (EPHYSD_SERVER__BASE_PORT).
    let lines = labelled(&ok(daemon.cli(&["status"])));
    assert_eq!(lines["daemon"], format!("127.0.0.1:{port} (Allego API {})", ephysd::ALLEGO_API_VERSION));
    assert_eq!(lines["device"], "sim-spikes (SMARTBOX_SIM_GEN_SPIKES)");
    assert_eq!(lines["sample rate"], "30000 Hz");
    assert_eq!(lines["streaming"], "off");
    assert_eq!(lines["recording"], "off");
    assert_eq!(lines["ports"], "A: 16 ch (16 channels)");
    assert!(lines["gpio"].ends_with("digital out"), "{lines:?}");
    assert!(lines["record to"].starts_with(&format!("{} (name \"ephysd\"", text(&daemon.d.recordings()))), "{lines:?}");
    assert!(!lines.contains_key("last error"), "{lines:?}");

    // Given explicitly, and for a script.
    let run = cli(&[], &["status", "--json", "--addr", &format!("127.0.0.1:{port}")]);
    assert_eq!(run.code, 0, "{run:?}");
    let status = run.json();
    assert_eq!(status["address"], format!("127.0.0.1:{port}"));
    assert_eq!(status["api_version"], ephysd::ALLEGO_API_VERSION);
    assert_eq!(status["device_mode"], "SMARTBOX_SIM_GEN_SPIKES");
    assert_eq!(status["backbone"], "sim-spikes");
    assert_eq!(status["sample_rate_hz"].as_f64(), Some(30000.0));
    assert_eq!(status["streaming"]["on"], false);
    assert_eq!(status["recording"]["on"], false);
    assert_eq!(status["recording"]["active_file"], Value::Null);
    assert_eq!(status["channels_total"], 16);
    let port_channels: i64 = status["ports"].as_array().unwrap().iter().map(|p| p["channels"].as_i64().unwrap()).sum();
    assert_eq!(port_channels, 16, "{status}");
    assert_eq!(status["recording_config"]["base_path"], text(&daemon.d.recordings()));
}

#[test]
fn stream_and_record_drive_the_daemon_and_its_refusals_exit_1() {
    let daemon = Running::start();
    assert_eq!(ok(daemon.cli(&["stream", "start"])), "streaming on\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = daemon.status();
        if !status["streaming"]["cache_range_s"].is_null() {
            break status;
        }
        assert!(Instant::now() < deadline, "the cache never filled: {status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["streaming"]["on"], true);
    let lines = labelled(&ok(daemon.cli(&["status"])));
    assert!(lines["streaming"].starts_with("on, cache "), "{lines:?}");

    let said = ok(daemon.cli(&["record", "start"]));
    let file = PathBuf::from(said.strip_prefix("recording to ").and_then(|s| s.strip_suffix('\n')).expect(&said));
    assert_eq!(file.parent(), Some(daemon.d.recordings().as_path()), "{said}");
    assert!(file.exists() && file.extension().is_some_and(|e| e == "h5"), "{said}");
    let status = daemon.status();
    assert_eq!(status["recording"]["on"], true);
    assert_eq!(status["recording"]["active_file"], text(&file));

    // Stopping the stream under a recording is refused: exit 1, the code and the message.
    let run = daemon.cli(&["stream", "stop"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.starts_with("ephysd: SetStreamState: FAILED_PRECONDITION: "), "{run:?}");
    assert!(run.stderr.contains("recording"), "{run:?}");
    let run = daemon.cli(&["stream", "stop", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(
        (error["code"].as_str(), error["method"].as_str()),
        (Some("FAILED_PRECONDITION"), Some("SetStreamState"))
    );
    assert!(error["message"].as_str().unwrap().contains("recording"), "{error}");
    let status = daemon.status();
    assert_eq!((status["streaming"]["on"].as_bool(), status["recording"]["on"].as_bool()), (Some(true), Some(true)));

    std::thread::sleep(Duration::from_millis(300));
    let said = ok(daemon.cli(&["record", "stop"]));
    assert!(said.starts_with(&format!("recording stopped; closed {}", text(&file))), "{said}");
    assert_eq!(h5_files(&daemon.d.recordings()), vec![file]);
    assert_eq!(daemon.status()["recording"]["on"], false);

    let run = daemon.cli(&["stream", "stop", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json(), serde_json::json!({"streaming": false}));
    assert_eq!(daemon.status()["streaming"]["on"], false);
}

#[test]
fn config_set_and_get_round_trip_the_recording_keys() {
    let daemon = Running::start();
    let recordings = daemon.d.recordings();
    let listed = ok(daemon.cli(&["config", "get"]));
    let all: BTreeMap<&str, &str> = listed.lines().map(|l| l.split_once(" = ").expect(l)).collect();
    let expected = [
        ("recording.base_name", "\"ephysd\"".to_string()),
        ("recording.base_path", format!("{:?}", text(&recordings))),
        ("recording.timestamp", "true".into()),
        ("recording.split_files_by_port", "false".into()),
        ("recording.recording_type", "continuous_and_spikes".into()),
        ("recording.force_start_at_zero", "false".into()),
        ("core.sample_rate_hz", "30000".into()),
        ("core.backbone", "sim-spikes".into()),
    ];
    for (key, value) in &expected {
        assert_eq!(all.get(key), Some(&value.as_str()), "{listed}");
    }

    let sessions = daemon.d.dir.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    assert_eq!(
        ok(daemon.cli(&["config", "set", "recording.base_name", "mouse12"])),
        "recording.base_name = \"mouse12\" (was \"ephysd\")\n"
    );
    assert_eq!(
        ok(daemon.cli(&["config", "set", "recording.base_path", text(&sessions)])),
        format!("recording.base_path = {:?} (was {:?})\n", text(&sessions), text(&recordings))
    );
    assert_eq!(
        ok(daemon.cli(&["config", "set", "recording.timestamp", "false"])),
        "recording.timestamp = false (was true)\n"
    );
    assert_eq!(
        ok(daemon.cli(&["config", "set", "recording.timestamp", "false"])),
        "recording.timestamp = false (unchanged)\n"
    );
    let run = daemon.cli(&["config", "set", "recording.recording_type", "continuous", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json(),
        serde_json::json!({"key": "recording.recording_type", "value": "continuous", "was": "continuous_and_spikes"})
    );
    ok(daemon.cli(&["config", "set", "recording.split_files_by_port", "true"]));
    assert_eq!(daemon.get("recording.split_files_by_port"), "true");
    ok(daemon.cli(&["config", "set", "recording.split_files_by_port", "false"]));
    ok(daemon.cli(&["config", "set", "recording.recording_type", "continuous"]));

    assert_eq!(daemon.get("recording.base_name"), "mouse12");
    assert_eq!(daemon.get("recording.base_path"), text(&sessions));
    let run = daemon.cli(&["config", "get", "recording.timestamp", "--json"]);
    assert_eq!(run.json(), serde_json::json!({"recording.timestamp": false}));
    let run = daemon.cli(&["config", "get", "--json"]);
    let all = run.json();
    assert_eq!(all["recording.base_name"], "mouse12");
    assert_eq!(all["recording.split_files_by_port"], false);
    assert_eq!(all["core.sample_rate_hz"].as_f64(), Some(30000.0));

    // A bad value is refused before anything is sent; the daemon's value stays.
    let run = daemon.cli(&["config", "set", "recording.timestamp", "maybe"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("recording.timestamp") && run.stderr.contains("true or false"), "{run:?}");
    assert_eq!(daemon.get("recording.timestamp"), "false");
    // A value the daemon refuses: exit 1 with its code, nothing changed.
    let run = daemon.cli(&["config", "set", "recording.force_start_at_zero", "true"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("ephysd: SetConfigRecording: INVALID_ARGUMENT: "), "{run:?}");
    assert_eq!(daemon.get("recording.force_start_at_zero"), "false");

    // The next recording follows the new settings.
    ok(daemon.cli(&["stream", "start"]));
    let said = ok(daemon.cli(&["record", "start"]));
    let file = PathBuf::from(said.trim_start_matches("recording to ").trim_end());
    assert_eq!(file.parent(), Some(sessions.as_path()), "{said}");
    assert!(file.file_name().unwrap().to_str().unwrap().starts_with("mouse12"), "{said}");
    ok(daemon.cli(&["record", "stop"]));
    assert_eq!(h5_files(&sessions), vec![file]);
}

#[test]
fn bad_keys_values_and_options_exit_2_before_anything_is_sent() {
    // Nothing listens here: a command that dialed would exit 3, so 2 proves it did not.
    let env = [("EPHYSD_SERVER__BASE_PORT", free_base_port().to_string())];
    let cases: [(&[&str], &[&str]); 12] = [
        (
            &["config", "set", "recording.nope", "x"],
            &["\"recording.nope\"", "recording.base_name", "core.cable_delay.<A..H>"],
        ),
        (&["config", "get", "core.cable_delay.Z"], &["\"core.cable_delay.Z\"", "core.backbone"]),
        (&["config", "set", "recording.timestamp", "maybe"], &["recording.timestamp = \"maybe\"", "true or false"]),
        (
            &["config", "set", "recording.recording_type", "both"],
            &["recording.recording_type", "continuous, spikes, continuous_and_spikes"],
        ),
        (&["config", "set", "recording.base_name", "a/b"], &["recording.base_name", "no path separators"]),
        (&["config", "set", "core.sample_rate_hz", "44100"], &["core.sample_rate_hz = \"44100\"", "30000"]),
        (&["config", "set", "core.cable_delay.A", "-1"], &["core.cable_delay.A", "0..=15 or auto"]),
        (&["config", "set", "core.backbone", "sim-nope"], &["core.backbone", "sim-spikes", "xdaq-one-rec"]),
        (&["status", "--addr", "http://127.0.0.1:50051"], &["--addr", "HOST[:PORT]"]),
        (&["status", "--tls-name", "rig-3"], &["--tls-name", "--tls-ca"]),
        (&["record", "start", "--port", "Z"], &["--port", "A..H"]),
        (&["status", "--timeout", "0"], &["--timeout"]),
    ];
    for (args, said) in cases {
        let run = cli(&env, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        for s in said {
            assert!(run.stderr.contains(s), "{args:?} should say {s:?}: {run:?}");
        }
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    let run = cli(&env, &["config", "set", "recording.timestamp", "maybe", "--json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(error["code"], "USAGE");
    assert!(error["message"].as_str().unwrap().contains("true or false"), "{error}");

    // A token never travels in clear text beyond loopback.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "cli-test-token-never-sent-0001\n").unwrap();
    let run = cli(&env, &["status", "--addr", "192.0.2.1", "--token-file", text(&token)]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("unencrypted to 192.0.2.1:") && run.stderr.contains("--tls-ca"), "{run:?}");
    assert!(!run.stderr.contains("cli-test-token-never-sent"), "{run:?}");
}

#[test]
fn no_daemon_exits_3_quickly_naming_the_address() {
    let port = free_base_port();
    let address = format!("127.0.0.1:{port}");
    let run = cli(&[], &["status", "--addr", &address, "--timeout", "2"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.starts_with(&format!("ephysd: cannot reach the daemon at {address}: ")), "{run:?}");
    assert!(run.stderr.contains("systemctl status ephysd") && run.stderr.contains("--tls-ca"), "{run:?}");
    assert!(run.took < Duration::from_secs(2), "{run:?}");
    let run = cli(&[], &["stream", "start", "--json", "--addr", &address, "--timeout", "2"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.json()["error"]["code"], "UNREACHABLE");

    // A port that takes connections but never answers: the time limit ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let run = cli(&[], &["status", "--addr", &address, "--timeout", "1"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains(&format!("no answer from {address} within 1 s")), "{run:?}");
    assert!(run.took < Duration::from_secs(4), "{run:?}");
    drop(silent);
}

const TOKEN: &str = "remote-cli-token-5d1e9a7c3b";
const WRONG_TOKEN: &str = "remote-cli-token-5d1e9a7c3c";

/// A file holding `token`, readable by its owner only (as the daemon requires).
fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A daemon on loopback serving TLS with this certificate and key, and the token `TOKEN`;
/// returned with the paths of the certificate, the key and the token file.
fn start_secured(cert_pem: &str, key_pem: &str) -> (Running, PathBuf, PathBuf, PathBuf) {
    let mut d = TestDaemon::new();
    let dir = d.dir.path().to_path_buf();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let token = token_file(&dir, "token", TOKEN);
    let mut cmd = d.command();
    cmd.env("EPHYSD_SERVER__TLS_CERT", &cert)
        .env("EPHYSD_SERVER__TLS_KEY", &key)
        .env("EPHYSD_SERVER__TOKEN_FILE", &token);
    let mut child = cmd.spawn().unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));
    (Running { d, child }, cert, key, token)
}

#[test]
fn a_daemon_serving_tls_is_reached_with_its_ca_and_token_and_the_token_is_never_printed() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (daemon, cert, key, token) = start_secured(&generated.cert.pem(), &generated.signing_key.serialize_pem());
    let wrong = token_file(daemon.d.dir.path(), "wrong-token", WRONG_TOKEN);

    let port_only = daemon.env();
    let run = |env: &[(&str, String)], args: &[&str]| {
        let run = cli(env, args);
        assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN), "the token was printed: {run:?}");
        assert!(!run.stdout.contains(WRONG_TOKEN) && !run.stderr.contains(WRONG_TOKEN), "{run:?}");
        run
    };
    let tls = ["--tls-ca", text(&cert), "--tls-name", "localhost"];

    let r = run(&port_only, &[&["status", "--json", "--token-file", text(&token)][..], &tls].concat());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["channels_total"], 16);

    // On the rig PC, the daemon's own configuration gives the CA, the name and the token.
    let rig_pc = [
        port_only.clone(),
        vec![
            ("EPHYSD_SERVER__TLS_CERT", text(&cert).to_string()),
            ("EPHYSD_SERVER__TLS_KEY", text(&key).to_string()),
            ("EPHYSD_SERVER__TOKEN_FILE", text(&token).to_string()),
        ],
    ]
    .concat();
    assert_eq!(ok(run(&rig_pc, &["stream", "start"])), "streaming on\n");
    let r = run(&rig_pc, &["status", "--json"]);
    assert_eq!((r.code, r.json()["streaming"]["on"].as_bool()), (0, Some(true)), "{r:?}");
    assert_eq!(ok(run(&rig_pc, &["stream", "stop"])), "streaming off\n");

    // A wrong token, or none: the daemon refuses (exit 1, UNAUTHENTICATED).
    for token_args in [&["--token-file", text(&wrong)][..], &[]] {
        let r = run(&port_only, &[&["status"][..], &tls, token_args].concat());
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.starts_with("ephysd: ") && r.stderr.contains(": UNAUTHENTICATED: "), "{r:?}");
    }
    let r = run(&port_only, &[&["stream", "start", "--json"][..], &tls, &["--token-file", text(&wrong)]].concat());
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("UNAUTHENTICATED")), "{r:?}");

    // A certificate that does not carry the name, or no TLS at all: out of reach (exit 3).
    let r = run(
        &port_only,
        &[
            "status",
            "--tls-ca",
            text(&cert),
            "--tls-name",
            "rig.example",
            "--token-file",
            text(&token),
            "--timeout",
            "5",
        ],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{}", daemon.d.base_port)) && r.stderr.contains("--tls-name"),
        "{r:?}"
    );
    let r = run(&port_only, &["status", "--token-file", text(&token), "--timeout", "2"]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = run(&rig_pc, &["status", "--json"]);
    assert_eq!(r.json()["streaming"]["on"], false, "the refused stream start changed nothing: {r:?}");
}

/// `openssl req -x509` marks a self-signed certificate as a CA unless told otherwise, and TLS
/// refuses a CA certificate as the server's own: the error says how to make one that works.
#[test]
fn a_server_certificate_marked_as_a_ca_is_refused_with_the_fix_named() {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (daemon, cert, _, token) = start_secured(&cert.pem(), &key.serialize_pem());
    let run = daemon.cli(&["status", "--tls-ca", text(&cert), "--tls-name", "localhost", "--token-file", text(&token)]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("basicConstraints=critical,CA:FALSE"), "{run:?}");
}

/// `SetConfigCore` and `Restart` on the real daemon: refused while streaming, applied when
/// idle, and a device that cannot be opened leaves the previous one.
#[test]
fn config_set_core_keys_end_to_end() {
    let daemon = Running::start();
    ok(daemon.cli(&["stream", "start"]));
    let run = daemon.cli(&["config", "set", "core.sample_rate_hz", "20000"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("ephysd: SetConfigCore: FAILED_PRECONDITION: "), "{run:?}");
    assert_eq!(daemon.get("core.sample_rate_hz"), "30000");
    ok(daemon.cli(&["stream", "stop"]));

    assert_eq!(
        ok(daemon.cli(&["config", "set", "core.sample_rate_hz", "20000"])),
        "core.sample_rate_hz = 20000 (was 30000)\n"
    );
    assert_eq!(daemon.get("core.sample_rate_hz"), "20000");
    assert_eq!(daemon.status()["sample_rate_hz"].as_f64(), Some(20000.0));

    let said = ok(daemon.cli(&["config", "set", "core.cable_delay.A", "3"]));
    assert!(said.starts_with("core.cable_delay.A = 3 ("), "{said}");
    assert_eq!(daemon.get("core.cable_delay.A"), "3");

    assert_eq!(
        ok(daemon.cli(&["config", "set", "core.backbone", "sim-sine"])),
        "core.backbone = sim-sine (was sim-spikes)\n"
    );
    assert_eq!(daemon.get("core.backbone"), "sim-sine");
    assert_eq!(daemon.status()["device_mode"], "SMARTBOX_SIM_GEN_SINE");

    let run = daemon.cli(&["config", "set", "core.backbone", "xdaq-one-rec"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("ephysd: Restart: "), "{run:?}");
    assert_eq!(daemon.get("core.backbone"), "sim-sine");
    assert_eq!(ok(daemon.cli(&["stream", "start"])), "streaming on\n");
}

/// What a stand-in daemon was asked: the core calls exactly as they arrived.
#[derive(Default)]
struct Asked {
    config: ConfigCore,
    set_config_core: Vec<SetConfigCoreRequest>,
    restart: Vec<RestartRequest>,
}

/// A stand-in for the daemon's core service that records `SetConfigCore` and `Restart` and
/// applies them to what `GetConfig` reports.
#[derive(Clone)]
struct StandIn(Arc<Mutex<Asked>>);

#[tonic::async_trait]
impl AllegoCore for StandIn {
    async fn get_config(
        &self,
        _: tonic::Request<StandardRequest>,
    ) -> Result<tonic::Response<ConfigCore>, tonic::Status> {
        Ok(tonic::Response::new(self.0.lock().unwrap().config.clone()))
    }

    async fn get_config_recording(
        &self,
        _: tonic::Request<StandardRequest>,
    ) -> Result<tonic::Response<ConfigRecording>, tonic::Status> {
        Ok(tonic::Response::new(ConfigRecording::default()))
    }

    async fn set_config_core(
        &self,
        request: tonic::Request<SetConfigCoreRequest>,
    ) -> Result<tonic::Response<StandardReply>, tonic::Status> {
        let mut asked = self.0.lock().unwrap();
        let request = request.into_inner();
        if let Some(hz) = request.samp_freq {
            asked.config.base_samp_freq = hz;
        }
        if let Some(delay) = request.cable_delay {
            asked.config.cable_delays.cable_delays.insert(delay.port, delay);
        }
        asked.set_config_core.push(request);
        Ok(tonic::Response::new(StandardReply::default()))
    }

    async fn restart(
        &self,
        request: tonic::Request<RestartRequest>,
    ) -> Result<tonic::Response<StandardReply>, tonic::Status> {
        let mut asked = self.0.lock().unwrap();
        asked.config.backbone_mode = request.get_ref().mode;
        asked.restart.push(request.into_inner());
        Ok(tonic::Response::new(StandardReply::default()))
    }
}

/// The core keys send the Allego requests with only their own field set (checked against a
/// stand-in, so the requests themselves are seen).
#[test]
fn core_keys_send_only_their_own_field() {
    let asked = Arc::new(Mutex::new(Asked {
        config: ConfigCore {
            base_samp_freq: 30000.0,
            backbone_mode: BackboneMode::SmartboxSimGenSpikes as i32,
            ..Default::default()
        },
        ..Default::default()
    }));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(AllegoCoreServer::new(StandIn(Arc::clone(&asked))))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let set = |key: &str, value: &str| ok(cli(&[], &["config", "set", key, value, "--addr", &address]));

    assert_eq!(set("core.sample_rate_hz", "20000"), "core.sample_rate_hz = 20000 (was 30000)\n");
    assert_eq!(
        set("core.cable_delay.B", "auto"),
        "core.cable_delay.B = auto (was unknown (not reported by the daemon))\n"
    );
    assert_eq!(set("core.cable_delay.c", "7"), "core.cable_delay.C = 7 (was unknown (not reported by the daemon))\n");
    assert_eq!(set("core.backbone", "sim-lfp"), "core.backbone = sim-lfp (was sim-spikes)\n");

    let asked = asked.lock().unwrap();
    assert_eq!(
        asked.set_config_core,
        [
            SetConfigCoreRequest { samp_freq: Some(20000.0), ..Default::default() },
            SetConfigCoreRequest {
                cable_delay: Some(CableDelay { port: Port::B as i32, cable_delay: 0, is_auto: true }),
                ..Default::default()
            },
            SetConfigCoreRequest {
                cable_delay: Some(CableDelay { port: Port::C as i32, cable_delay: 7, is_auto: false }),
                ..Default::default()
            },
        ]
    );
    assert_eq!(asked.restart, [RestartRequest { mode: BackboneMode::SmartboxSimGenLfp as i32 }]);
}

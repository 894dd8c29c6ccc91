//! Helpers for end-to-end tests that run the real `ephysd` binary.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn ephysd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ephysd"))
}

/// Base ports handed out in this test binary: tests run in parallel threads, and a range found
/// free by one test must not be handed to another before the first daemon has bound it.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A base port whose five ports are currently free and overlap no range handed out before in
/// this binary (tests run in parallel, away from 50051).
pub fn free_base_port() -> u16 {
    loop {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if !(20000..=65000).contains(&base) {
            continue;
        }
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed_out.iter().any(|&b| base.abs_diff(b) < 5) {
            continue;
        }
        if (0..5).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            handed_out.push(base);
            return base;
        }
    }
}

pub fn wait_for_port(port: u16, child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ephysd exited early with {status}");
        }
        assert!(Instant::now() < deadline, "port {port} did not open in {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a pid we own; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// Waits for exit; panics (and kills) if it takes longer than `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("ephysd did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon configured for a test: own ports, own recording directory, fast cache.
pub struct TestDaemon {
    pub base_port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Default for TestDaemon {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDaemon {
    pub fn new() -> Self {
        TestDaemon { base_port: free_base_port(), dir: tempfile::tempdir().unwrap(), log: PathBuf::new() }
    }

    pub fn recordings(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    pub fn command(&mut self) -> Command {
        self.log = self.dir.path().join("ephysd.log");
        let log = std::fs::File::create(&self.log).unwrap();
        let mut cmd = ephysd();
        // The daemon dies with the test thread that started it, even when the test fails
        // before stopping it: no stray daemon keeps recording into a deleted directory.
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EPHYSD_SERVER__BASE_PORT", self.base_port.to_string())
            .env("EPHYSD_RECORDING__BASE_PATH", self.recordings())
            // The host's free space is not what these tests are about: the tests of the
            // free-space refusal set the key themselves.
            .env("EPHYSD_RECORDING__MIN_FREE_MB", "0")
            .env("EPHYSD_DEVICE__CHANNELS", "16")
            .env("EPHYSD_CACHE__SECONDS", "5")
            .env("EPHYSD_REALTIME__FIFO_PRIORITY", "none")
            .stdout(Stdio::null())
            .stderr(log);
        cmd
    }

    pub fn spawn(&mut self) -> Child {
        let mut child = self.command().spawn().unwrap();
        wait_for_port(self.base_port + 4, &mut child, Duration::from_secs(20));
        child
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self, offset: u16) -> String {
        format!("http://127.0.0.1:{}", self.base_port + offset)
    }
}

pub fn h5_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "h5")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

//! A write that fails part-way (the disk, a limit the writer could not foresee) must not cost
//! the file: the writer lets go of it as the last successful write left it, and recovery
//! closes it with every frame flushed before the failure.
//!
//! The failure is real: a file-size limit (`RLIMIT_FSIZE`) set after the file was created, so
//! writes past it fail with EFBIG while writes below it (HDF5's metadata) still succeed, the
//! way a failing disk lets some writes through. A process-wide limit must not touch other
//! tests, so the writing happens in a child process (this test binary, run again).

use std::path::{Path, PathBuf};
use std::process::Command;

use ephysd_hdf5::{recover, RecordingMeta, RecordingReader, RecordingWriter};

const CHILD: &str = "EPHYSD_FAILED_WRITE_FILE";
const HOW: &str = "EPHYSD_FAILED_WRITE_HOW";
const CHANNELS: usize = 64;
const FLUSHED: u64 = 40_000;

fn sample(frame: u64, channel: usize) -> i16 {
    ((frame * 31 + channel as u64 * 7) % 4000) as i16 - 2000
}

fn frames(rows: std::ops::Range<u64>) -> (Vec<u64>, Vec<i16>) {
    (rows.clone().collect(), rows.flat_map(|r| (0..CHANNELS).map(move |c| sample(r, c))).collect())
}

/// In the child: records, flushes, then meets a file-size limit; lets go of the file the way
/// `HOW` says and exits.
fn write_until_it_fails(path: &Path, abandon: bool) {
    let mut w = RecordingWriter::create(path, RecordingMeta::new(30_000.0, CHANNELS, 0.195)).unwrap();
    let (index, samples) = frames(0..FLUSHED);
    w.append_samples(&index, &samples).unwrap();
    w.flush().unwrap();
    let size = std::fs::metadata(path).unwrap().len();
    // SAFETY: plain syscalls on this process; the handler is the default "ignore".
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: size + (1 << 20), rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let mut next = FLUSHED;
    let error = loop {
        let (index, samples) = frames(next..next + 4096);
        match w.append_samples(&index, &samples) {
            Ok(()) => next += 4096,
            Err(e) => break e,
        }
    };
    eprintln!("write failed as the disk would: {}", error.summary_line());
    if abandon {
        w.abandon();
    } else {
        drop(w);
    }
}

fn run_child(path: &Path, how: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_write_that_fails_part_way_leaves_a_file_recovery_closes", "--nocapture"])
        .env(CHILD, path)
        .env(HOW, how)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("write failed as the disk would"), "{stderr}");
}

#[test]
fn a_write_that_fails_part_way_leaves_a_file_recovery_closes() {
    if let Some(path) = std::env::var_os(CHILD) {
        write_until_it_fails(&PathBuf::from(path), std::env::var(HOW).as_deref() == Ok("abandon"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failed.h5");
    run_child(&path, "abandon");
    let report = recover(&path).unwrap();
    assert_eq!(report.frames, FLUSHED, "{report:?}");
    let r = RecordingReader::open(&path).unwrap();
    assert!(!r.info().open_for_writing && !r.info().closed_cleanly && !r.info().recovered_utc.is_empty());
    assert_eq!(r.read_samples(0, FLUSHED as usize).unwrap(), frames(0..FLUSHED).1);
    assert_eq!((r.info().start_timestamp, r.info().end_timestamp), (0, FLUSHED));
}

#[test]
fn a_file_size_limit_too_small_for_a_recording_is_refused_by_name() {
    if let Some(path) = std::env::var_os(CHILD) {
        let refused =
            RecordingWriter::create(Path::new(&path), RecordingMeta::new(30_000.0, CHANNELS, 0.195)).unwrap_err();
        eprintln!("{refused}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.h5");
    // In a child process: `ulimit -f` is the shell's way to set the limit (8 or 16 MiB,
    // depending on the shell's block size).
    let script = format!(
        "ulimit -f 16384 && exec {} --exact a_file_size_limit_too_small_for_a_recording_is_refused_by_name --nocapture",
        std::env::current_exe().unwrap().display()
    );
    let out = Command::new("sh").args(["-c", &script]).env(CHILD, &path).env(HOW, "create").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("small.h5: files can grow to ") && said.contains("less than the 32 MiB a recording file needs"),
        "{said}"
    );
    assert!(!path.exists(), "a refused file is not left behind");
}

#[test]
fn closing_after_a_failed_write_the_ordinary_way_is_what_abandon_avoids() {
    // The same failure, but the writer closes the file normally: HDF5 then writes metadata
    // for the write that failed, and the file no longer opens at all.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.h5");
    run_child(&path, "drop");
    let e = recover(&path).unwrap_err().to_string();
    assert!(e.contains("truncated") || e.contains("addr overflow") || e.contains("unable to open"), "{e}");
}

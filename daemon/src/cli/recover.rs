//! `ephysd recover FILE...`: closes recordings whose writer died, keeping every whole frame.

use std::path::Path;
use std::process::ExitCode;

/// Recovers each file and says what it kept; exits 1 if any could not be recovered.
pub fn run(files: &[impl AsRef<Path>]) -> ExitCode {
    let mut failed = false;
    for path in files {
        let path = path.as_ref();
        match ephysd_hdf5::recover(path) {
            Ok(r) if r.already_closed => println!("{}: closed cleanly already; nothing to do", path.display()),
            Ok(r) => println!(
                "{}: recovered: {} frames ({:.3} s) kept, {} incomplete frames dropped, {} gaps",
                path.display(),
                r.frames,
                r.duration_seconds,
                r.trimmed_frames,
                r.gap_count
            ),
            Err(e) => {
                eprintln!("ephysd recover: {}", e.summary_line());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

//! Writes a small recording with a deterministic ramp, for interoperability tests
//! (`tests/interop/test_recording_h5py.py`) and for trying tools against a real file.
//!
//! Usage: `write_sample_recording <path> <channels> <frames> [gap_at]`
//!
//! * sample (frame f, channel c) = `(f + 1000 * c) mod 65536`, reinterpreted as i16
//!   (so the ramp wraps through negative values);
//! * frame indices start at `FIRST_FRAME_INDEX` and count up by one, except that if
//!   `gap_at` is given, the frame at row `gap_at` and all after it are shifted by
//!   `GAP_FRAMES` (one gap);
//! * frames are appended in blocks of 100, which does not line up with chunks, so the
//!   writer's buffering is exercised.

use std::path::PathBuf;
use std::process::ExitCode;

use ephysd_hdf5::{RecordingMeta, RecordingWriter};

const FIRST_FRAME_INDEX: u64 = 1_000;
const GAP_FRAMES: u64 = 5;
const BLOCK_FRAMES: usize = 100;

fn ramp_value(frame: usize, channel: usize) -> i16 {
    ((frame + 1000 * channel) % 65_536) as u16 as i16
}

fn run(args: &[String]) -> Result<(), String> {
    if !(4..=5).contains(&args.len()) {
        return Err(format!("usage: {} <path> <channels> <frames> [gap_at]", args[0]));
    }
    let path = PathBuf::from(&args[1]);
    let channels: usize = args[2].parse().map_err(|e| format!("bad <channels> {:?}: {e}", args[2]))?;
    let frames: usize = args[3].parse().map_err(|e| format!("bad <frames> {:?}: {e}", args[3]))?;
    let gap_at: Option<usize> = match args.get(4) {
        Some(s) => Some(s.parse().map_err(|e| format!("bad [gap_at] {s:?}: {e}"))?),
        None => None,
    };

    let meta = RecordingMeta {
        software_version: format!("ephysd {}", env!("CARGO_PKG_VERSION")),
        device: "ramp".to_owned(),
        ..RecordingMeta::new(30_000.0, channels, 0.195)
    };
    let mut writer = RecordingWriter::create(&path, meta).map_err(|e| e.to_string())?;

    let mut index = Vec::with_capacity(BLOCK_FRAMES);
    let mut samples = Vec::with_capacity(BLOCK_FRAMES * channels);
    let mut f = 0;
    while f < frames {
        let n = BLOCK_FRAMES.min(frames - f);
        index.clear();
        samples.clear();
        for frame in f..f + n {
            let shift = if gap_at.is_some_and(|g| frame >= g) { GAP_FRAMES } else { 0 };
            index.push(FIRST_FRAME_INDEX + frame as u64 + shift);
            samples.extend((0..channels).map(|c| ramp_value(frame, c)));
        }
        writer.append_samples(&index, &samples).map_err(|e| e.to_string())?;
        f += n;
    }
    let summary = writer.finish().map_err(|e| e.to_string())?;
    println!(
        "wrote {} frames x {} channels to {} ({} gaps)",
        summary.frames_written,
        channels,
        summary.path.display(),
        summary.gap_count
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write_sample_recording: {e}");
            ExitCode::FAILURE
        }
    }
}

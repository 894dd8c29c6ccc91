//! `ephysd inspect FILE...`: what a recording holds, for a person or (`--json`) a script.

use std::path::Path;
use std::process::ExitCode;

use ephysd_hdf5::{GapReason, RecordingInfo, RecordingReader};

/// Prints each file's summary; exits 1 if any file cannot be read as a recording.
pub fn run(files: &[impl AsRef<Path>], json: bool) -> ExitCode {
    let mut failed = false;
    for path in files {
        let path = path.as_ref();
        match RecordingReader::open(path).and_then(|r| summary(&r)) {
            Ok(s) if json => println!("{}", s.to_json()),
            Ok(s) => print!("{}", s.to_text()),
            Err(e) => {
                eprintln!("ephysd inspect: {}", e.summary_line());
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

/// What inspect reports about one file.
struct Summary {
    info: RecordingInfo,
    gaps_device: u64,
    gaps_overrun: u64,
    frames_missing: i64,
}

fn summary(r: &RecordingReader) -> Result<Summary, ephysd_hdf5::RecordingError> {
    let gaps = r.read_gaps()?;
    let count = |reason: GapReason| gaps.iter().filter(|g| g.reason.as_str() == reason.as_str()).count() as u64;
    Ok(Summary {
        gaps_device: count(GapReason::Device),
        gaps_overrun: count(GapReason::RecorderOverrun),
        frames_missing: gaps.iter().map(|g| g.length.max(0)).sum(),
        info: r.info().clone(),
    })
}

impl Summary {
    fn closed(&self) -> String {
        let i = &self.info;
        if i.closed_cleanly {
            format!("yes ({})", i.ended_utc)
        } else if i.open_for_writing {
            "NO: still open for writing (being recorded now, or its writer died: `ephysd recover` closes it)".into()
        } else if !i.recovered_utc.is_empty() {
            format!("no: recovered {} after its writer died", i.recovered_utc)
        } else {
            "no: its writer stopped without closing it (`ephysd recover` records its end)".into()
        }
    }

    fn to_text(&self) -> String {
        let i = &self.info;
        let streams = if i.data_streams.is_empty() {
            "none".to_string()
        } else {
            i.data_streams.iter().map(|(n, c)| format!("{n} ({c} entries)")).collect::<Vec<_>>().join(", ")
        };
        let mut out = format!("{}\n", i.path.display());
        let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<16}{v}\n"));
        row("closed cleanly", self.closed());
        row(
            "device",
            if i.device_serial.is_empty() {
                i.device.clone()
            } else {
                format!("{} (serial {})", i.device, i.device_serial)
            },
        );
        row("written by", i.software_version.clone());
        row("recording type", i.recording_type.clone());
        row("port", if i.port.is_empty() { "all".into() } else { i.port.clone() });
        row("file sequence", i.file_sequence.to_string());
        row("rate", format!("{} Hz", i.frames_per_second));
        row("channels", i.channel_count.to_string());
        row(
            "duration",
            format!(
                "{:.3} s ({} frames: device frames {}..{})",
                i.duration_seconds, i.duration_frames, i.start_timestamp, i.end_timestamp
            ),
        );
        row("frames stored", i.frames.to_string());
        row(
            "board streams",
            format!("{} analog in, digital in/out {}", i.analog_in_channels, if i.digital { "yes" } else { "no" }),
        );
        row("spikes", i.spikes.to_string());
        row("stims", i.stims.to_string());
        row(
            "gaps",
            format!(
                "{} ({} device, {} recorder overrun; {} frames missing)",
                i.gap_count, self.gaps_device, self.gaps_overrun, self.frames_missing
            ),
        );
        row("ground truth", i.ground_truth.map_or("none".into(), |n| format!("{n} spikes")));
        row("data streams", streams);
        row("created", i.created_utc.clone());
        out
    }

    fn to_json(&self) -> String {
        let i = &self.info;
        serde_json::json!({
            "path": i.path,
            "closed_cleanly": i.closed_cleanly,
            "open_for_writing": i.open_for_writing,
            "recovered_utc": i.recovered_utc,
            "device": i.device,
            "device_serial": i.device_serial,
            "software_version": i.software_version,
            "recording_type": i.recording_type,
            "port": i.port,
            "file_sequence": i.file_sequence,
            "frames_per_second": i.frames_per_second,
            "channel_count": i.channel_count,
            "start_timestamp": i.start_timestamp,
            "end_timestamp": i.end_timestamp,
            "duration_frames": i.duration_frames,
            "duration_seconds": i.duration_seconds,
            "frames": i.frames,
            "analog_in_channels": i.analog_in_channels,
            "digital": i.digital,
            "spikes": i.spikes,
            "stims": i.stims,
            "gaps": { "count": i.gap_count, "device": self.gaps_device, "recorder_overrun": self.gaps_overrun, "frames_missing": self.frames_missing },
            "ground_truth": i.ground_truth,
            "data_streams": i.data_streams.iter().map(|(n, c)| serde_json::json!({ "name": n, "entries": c })).collect::<Vec<_>>(),
            "created_utc": i.created_utc,
            "ended_utc": i.ended_utc,
        })
        .to_string()
    }
}

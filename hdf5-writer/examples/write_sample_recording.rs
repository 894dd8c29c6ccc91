//! Writes a small recording with every part of the layout filled with known values, for
//! interoperability tests (`tests/interop/test_recording_h5py.py`) and for trying tools
//! against a real file.
//!
//! Usage: `write_sample_recording <path> <channels> <frames> [gap_at]`
//!
//! Below, `f` is the row (0-based frame number in the file), `c` the `/samples` column and
//! `frame(f)` the device frame index of row `f`.
//!
//! Frames, appended in blocks of 100 (which do not line up with chunks, so the writer's
//! buffering is exercised):
//!
//! * `/samples[f, c]` = `(f + 1000 * c) mod 65536`, reinterpreted as i16 (so the ramp wraps
//!   through negative values);
//! * `/frame_index[f]` = `frame(f)` = `1000 + f`, plus `GAP_FRAMES` = 5 from row `gap_at` on
//!   if `gap_at` is given (one gap: a `/gaps` row at `gap_at`, length 5, reason `device`);
//! * `/analog_in[f, a]` (2 inputs) = `(3 * f + 10000 * a) mod 65536` as u16;
//! * `/digital_in[f]` = `(f / 16) mod 65536` as u16 (integer division);
//! * `/digital_out[f]` = `1 << (f mod 16)` as u16.
//!
//! Events, each at a row and stored with `timestamp` = `frame(row) - 1000` (frames from
//! `start_timestamp`, so rows after the gap are 5 further on). An event whose row is not
//! below `<frames>` or whose channel is not below `<channels>` is left out:
//!
//! * `/spikes` (`SPIKES`: row, channel, unit): (100, 0, 1), (500, 3, 2), (1200, 7, -1),
//!   (1500, 1, 1), (2400, 5, 3); the snippet of the k-th spike (k from 0) is
//!   `samples[j] = 100 * k + (j - 25) / 2` for j in 0..75;
//! * `/stims` (`STIMS`: row, channel, design id): (200, 2, 1), (1300, 6, 2), (2200, 2, 1);
//! * `/ground_truth` (`GROUND_TRUTH`: row, channel, unit, peak µV): (101, 0, 1, -80.5),
//!   (502, 3, 2, -120.25), (1501, 1, 1, -79.75);
//! * `/data_stream/events` (attribute `application` = `{"source": "write_sample_recording"}`),
//!   msgpack entries at rows 0, 1000, 2000: `{"x": 1}`, `["of", "arbitrary", "size"]`,
//!   `"and type."`;
//! * `/data_stream/values` (attribute `application` = `{}`), msgpack entries at rows 0, 300,
//!   600, 900, 1200, 1800: `None`, `True`, `-5`, `300`, `0.25`, `{"a": [1, 2], "b": "µV"}`.
//!
//! `/channels`, one row per column: `native_index` = c; the first `channels / 2` columns on
//! port `A`, the rest on port `B`, each named `<port>-<i>` with i its place on the port, three
//! digits (`A-000`, ..., `B-000`, ...); `chip` = c / 4; `x_um` = 16 * (c mod 4);
//! `y_um` = 20 * (c / 4); `impedance_ohms` = 100000 + 1000 * c; `impedance_phase_deg` =
//! -30 - c.
//!
//! Root attributes: 30000 frames per second, 0.195 µV per unit, `device` = `ramp`,
//! `device_serial` = `RAMP-0001`, `chips` = `CHIPS_JSON`, `config` = `CONFIG_JSON`,
//! `recording_type` = `continuous_and_spikes`, `port` empty, `file_sequence` = 1.

use std::path::PathBuf;
use std::process::ExitCode;

use ephysd_hdf5::{
    ChannelRow, DataStreamSpec, FrameRows, RecordingMeta, RecordingType, RecordingWriter, SPIKE_SNIPPET_SAMPLES,
    UNSORTED,
};

const FIRST_FRAME_INDEX: u64 = 1_000;
const GAP_FRAMES: u64 = 5;
const BLOCK_FRAMES: usize = 100;
const ANALOG_INPUTS: usize = 2;

/// Spikes: (row, channel, unit).
const SPIKES: [(usize, u16, i32); 5] = [(100, 0, 1), (500, 3, 2), (1200, 7, UNSORTED), (1500, 1, 1), (2400, 5, 3)];
/// Stimulations: (row, channel, design id).
const STIMS: [(usize, u16, u32); 3] = [(200, 2, 1), (1300, 6, 2), (2200, 2, 1)];
/// Ground truth: (row, channel, unit, peak µV).
const GROUND_TRUTH: [(usize, u16, u32, f32); 3] = [(101, 0, 1, -80.5), (502, 3, 2, -120.25), (1501, 1, 1, -79.75)];

const DEVICE_SERIAL: &str = "RAMP-0001";
const CHIPS_JSON: &str = r#"[{"port": "A", "headstage": "ramp"}, {"port": "B", "headstage": "ramp"}]"#;
const CONFIG_JSON: &str = r#"{"device": {"backbone": "ramp"}, "note": "µV ramp"}"#;

/// A msgpack value, as far as the data streams below need one.
enum Msgpack {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
    Array(Vec<Msgpack>),
    Map(Vec<(&'static str, Msgpack)>),
}

impl Msgpack {
    /// The msgpack encoding (only the forms the values here need: fix-sized strings, arrays
    /// and maps, and the smallest integer form).
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Msgpack::Nil => out.push(0xc0),
            Msgpack::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Msgpack::Int(v) => match *v {
                0..=0x7f => out.push(*v as u8),
                -32..=-1 => out.push(*v as i8 as u8),
                0x80..=0xffff => {
                    out.push(0xcd);
                    out.extend_from_slice(&(*v as u16).to_be_bytes());
                }
                _ => {
                    out.push(0xd3);
                    out.extend_from_slice(&v.to_be_bytes());
                }
            },
            Msgpack::Float(v) => {
                out.push(0xcb);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Msgpack::Str(s) => {
                assert!(s.len() < 32, "fixstr only");
                out.push(0xa0 | s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
            Msgpack::Array(items) => {
                assert!(items.len() < 16, "fixarray only");
                out.push(0x90 | items.len() as u8);
                items.iter().for_each(|i| i.encode(out));
            }
            Msgpack::Map(entries) => {
                assert!(entries.len() < 16, "fixmap only");
                out.push(0x80 | entries.len() as u8);
                for (key, value) in entries {
                    Msgpack::Str(key).encode(out);
                    value.encode(out);
                }
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A data stream: its name, its application attributes (JSON) and its entries as (row, value).
type Stream = (&'static str, &'static str, Vec<(usize, Msgpack)>);

/// The data streams.
fn data_streams() -> Vec<Stream> {
    use Msgpack::*;
    vec![
        (
            "events",
            r#"{"source": "write_sample_recording"}"#,
            vec![
                (0, Map(vec![("x", Int(1))])),
                (1000, Array(vec![Str("of"), Str("arbitrary"), Str("size")])),
                (2000, Str("and type.")),
            ],
        ),
        (
            "values",
            "{}",
            vec![
                (0, Nil),
                (300, Bool(true)),
                (600, Int(-5)),
                (900, Int(300)),
                (1200, Float(0.25)),
                (1800, Map(vec![("a", Array(vec![Int(1), Int(2)])), ("b", Str("µV"))])),
            ],
        ),
    ]
}

fn ramp_value(frame: usize, channel: usize) -> i16 {
    ((frame + 1000 * channel) % 65_536) as u16 as i16
}

fn analog_value(frame: usize, input: usize) -> u16 {
    ((3 * frame + 10_000 * input) % 65_536) as u16
}

fn digital_in_value(frame: usize) -> u16 {
    ((frame / 16) % 65_536) as u16
}

fn digital_out_value(frame: usize) -> u16 {
    1 << (frame % 16)
}

fn spike_snippet(k: usize) -> [f32; SPIKE_SNIPPET_SAMPLES] {
    std::array::from_fn(|j| 100.0 * k as f32 + (j as f32 - 25.0) / 2.0)
}

fn channel_rows(channels: usize) -> Vec<ChannelRow> {
    let half = channels / 2;
    (0..channels)
        .map(|c| {
            let (port, i) = if c < half { ("A", c) } else { ("B", c - half) };
            let mut row = ChannelRow::new(c as u32, &format!("{port}-{i:03}"), port, (c / 4) as u16);
            row.x_um = 16.0 * (c % 4) as f32;
            row.y_um = 20.0 * (c / 4) as f32;
            row.impedance_ohms = 100_000.0 + 1_000.0 * c as f32;
            row.impedance_phase_deg = -30.0 - c as f32;
            row
        })
        .collect()
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
    let frame_of = |row: usize| {
        let shift = if gap_at.is_some_and(|g| row >= g) { GAP_FRAMES } else { 0 };
        FIRST_FRAME_INDEX + row as u64 + shift
    };
    let streams = data_streams();

    let meta = RecordingMeta {
        software_version: format!("ephysd {}", env!("CARGO_PKG_VERSION")),
        device: "ramp".to_owned(),
        device_serial: DEVICE_SERIAL.to_owned(),
        chips_json: CHIPS_JSON.to_owned(),
        config_json: CONFIG_JSON.to_owned(),
        recording_type: RecordingType::ContinuousAndSpikes,
        channels: channel_rows(channels),
        analog_in_channels: ANALOG_INPUTS,
        digital: true,
        ground_truth: true,
        data_streams: streams
            .iter()
            .map(|(name, application, _)| DataStreamSpec {
                name: (*name).to_owned(),
                application_json: (*application).to_owned(),
            })
            .collect(),
        ..RecordingMeta::new(30_000.0, channels, 0.195)
    };
    let mut writer = RecordingWriter::create(&path, meta).map_err(|e| e.to_string())?;

    let mut index = Vec::with_capacity(BLOCK_FRAMES);
    let mut samples = Vec::with_capacity(BLOCK_FRAMES * channels);
    let mut analog_in = Vec::with_capacity(BLOCK_FRAMES * ANALOG_INPUTS);
    let mut digital_in = Vec::with_capacity(BLOCK_FRAMES);
    let mut digital_out = Vec::with_capacity(BLOCK_FRAMES);
    let mut f = 0;
    while f < frames {
        let n = BLOCK_FRAMES.min(frames - f);
        index.clear();
        samples.clear();
        analog_in.clear();
        digital_in.clear();
        digital_out.clear();
        for frame in f..f + n {
            index.push(frame_of(frame));
            samples.extend((0..channels).map(|c| ramp_value(frame, c)));
            analog_in.extend((0..ANALOG_INPUTS).map(|a| analog_value(frame, a)));
            digital_in.push(digital_in_value(frame));
            digital_out.push(digital_out_value(frame));
        }
        let rows = FrameRows {
            frame_index: &index,
            samples: &samples,
            analog_in: &analog_in,
            digital_in: &digital_in,
            digital_out: &digital_out,
        };
        writer.append(&rows).map_err(|e| e.to_string())?;
        f += n;
    }

    let fits = |row: usize, channel: u16| row < frames && usize::from(channel) < channels;
    for (k, &(row, channel, unit)) in SPIKES.iter().enumerate() {
        if fits(row, channel) {
            writer.add_spike(frame_of(row), channel, &spike_snippet(k), unit).map_err(|e| e.to_string())?;
        }
    }
    for &(row, channel, design_id) in &STIMS {
        if fits(row, channel) {
            writer.add_stim(frame_of(row), channel, design_id).map_err(|e| e.to_string())?;
        }
    }
    for &(row, channel, unit, peak_uv) in &GROUND_TRUTH {
        if fits(row, channel) {
            writer.add_ground_truth(frame_of(row), channel, unit, peak_uv).map_err(|e| e.to_string())?;
        }
    }
    for (name, _, entries) in &streams {
        for (row, value) in entries.iter().filter(|(row, _)| *row < frames) {
            writer.add_data_stream_entry(name, frame_of(*row), &value.to_bytes()).map_err(|e| e.to_string())?;
        }
    }

    let summary = writer.finish().map_err(|e| e.to_string())?;
    println!(
        "wrote {} frames x {} channels to {} ({} gaps, {} spikes, {} stims)",
        summary.frames_written,
        channels,
        summary.path.display(),
        summary.gap_count,
        summary.spikes,
        summary.stims
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

//! The whole layout through the public API: every dataset and table round-trips, the
//! recording types, compression, recovery of a file whose writer died, and a full disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::meta;
use ephysd_hdf5::{
    recover, ChannelRow, Compression, DataStreamSpec, FrameRows, GapReason, RecordingError, RecordingMeta,
    RecordingReader, RecordingType, RecordingWriter, SPIKE_SNIPPET_SAMPLES, UNSORTED,
};

fn sample(frame: u64, channel: usize) -> i16 {
    ((frame * 31 + channel as u64 * 7) % 4000) as i16 - 2000
}

/// Frames `rows` with device indices `rows + offset`, all columns filled from the row.
struct Block {
    index: Vec<u64>,
    samples: Vec<i16>,
    analog: Vec<u16>,
    din: Vec<u16>,
    dout: Vec<u16>,
}

fn block(rows: std::ops::Range<u64>, offset: u64, channels: usize, adc: usize) -> Block {
    Block {
        index: rows.clone().map(|r| r + offset).collect(),
        samples: rows.clone().flat_map(|r| (0..channels).map(move |c| sample(r, c))).collect(),
        analog: rows
            .clone()
            .flat_map(|r| (0..adc).map(move |a| (r as u16).wrapping_mul(3).wrapping_add(a as u16)))
            .collect(),
        din: rows.clone().map(|r| (r % 7) as u16).collect(),
        dout: rows.map(|r| (r % 11) as u16 | 0x100).collect(),
    }
}

impl Block {
    fn rows(&self) -> FrameRows<'_> {
        FrameRows {
            frame_index: &self.index,
            samples: &self.samples,
            analog_in: &self.analog,
            digital_in: &self.din,
            digital_out: &self.dout,
        }
    }
}

fn snippet(seed: f32) -> [f32; SPIKE_SNIPPET_SAMPLES] {
    std::array::from_fn(|i| seed + i as f32 * 0.5)
}

#[test]
fn every_object_of_the_layout_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.h5");
    let channels = 6;
    let mut rows: Vec<ChannelRow> =
        (0..channels).map(|i| ChannelRow::new(100 + i as u32, &format!("B-{i:03}"), "B", 1)).collect();
    rows[2].x_um = 0.0;
    rows[2].y_um = 40.0;
    rows[2].impedance_ohms = 412_000.0;
    rows[2].impedance_phase_deg = -72.5;
    let m = RecordingMeta {
        device_serial: "SN-0042".into(),
        chips_json: r#"[{"port":"B","chip":"RHD2132"}]"#.into(),
        config_json: r#"{"device":{"channels":6}}"#.into(),
        recording_type: RecordingType::ContinuousAndSpikes,
        port: "B".into(),
        file_sequence: 3,
        channels: rows.clone(),
        analog_in_channels: 2,
        digital: true,
        ground_truth: true,
        data_streams: vec![
            DataStreamSpec { name: "game_state".into(), application_json: r#"{"level":2}"#.into() },
            DataStreamSpec { name: "notes".into(), application_json: "{}".into() },
        ],
        ..meta(channels, 20_000.0)
    };
    let mut w = RecordingWriter::create(&path, m).unwrap();
    // Frames 0..3000 at device index 1000.., then the recorder loses 100 frames, then the
    // device drops 5.
    w.append(&block(0..3000, 1000, channels, 2).rows()).unwrap();
    w.note_overrun(100);
    w.append(&block(3100..4000, 1000, channels, 2).rows()).unwrap();
    w.append(&block(4005..5000, 1000, channels, 2).rows()).unwrap();
    w.add_spike(1000 + 10, 4, &snippet(-50.0), UNSORTED).unwrap();
    w.add_spike(1000 + 4500, 1, &snippet(3.0), 7).unwrap();
    w.add_stim(1000 + 200, 5, 9).unwrap();
    w.add_ground_truth(1000 + 12, 4, 3, -81.5).unwrap();
    w.add_data_stream_entry("game_state", 1000 + 20, &[0x81, 0xa1, 0x78, 0x01]).unwrap();
    w.add_data_stream_entry("game_state", 1000 + 30, &[0xa3, b'a', b'b', b'c']).unwrap();
    let err = w.add_data_stream_entry("undeclared", 1000, &[1]).unwrap_err();
    assert!(matches!(&err, RecordingError::UnknownDataStream { name, .. } if name == "undeclared"), "{err}");
    let summary = w.finish().unwrap();
    assert_eq!((summary.start_timestamp, summary.end_timestamp), (1000, 6000));
    assert_eq!((summary.spikes, summary.stims, summary.gap_count), (2, 1, 2));

    let r = RecordingReader::open(&path).unwrap();
    let info = r.info();
    assert!(info.closed_cleanly && !info.open_for_writing && info.recovered_utc.is_empty());
    assert_eq!((info.frames, info.channel_count, info.analog_in_channels, info.digital), (4895, channels, 2, true));
    assert_eq!((info.start_timestamp, info.end_timestamp, info.duration_frames), (1000, 6000, 5000));
    assert_eq!(info.duration_seconds, 0.25);
    assert_eq!((info.device_serial.as_str(), info.port.as_str(), info.file_sequence), ("SN-0042", "B", 3));
    assert_eq!(info.recording_type, "continuous_and_spikes");
    assert_eq!(info.chips_json, r#"[{"port":"B","chip":"RHD2132"}]"#);
    assert_eq!(info.config_json, r#"{"device":{"channels":6}}"#);
    assert_eq!((info.spikes, info.stims, info.gap_count, info.ground_truth), (2, 1, 2, Some(1)));
    assert_eq!(info.data_streams, vec![("game_state".to_string(), 2), ("notes".to_string(), 0)]);

    // Frame-aligned datasets hold exactly what was appended, row by row.
    let kept: Vec<u64> = (0..3000).chain(3100..4000).chain(4005..5000).collect();
    let samples: Vec<i16> = kept.iter().flat_map(|&r| (0..channels).map(move |c| sample(r, c))).collect();
    assert_eq!(r.read_samples(0, 4895).unwrap(), samples);
    assert_eq!(r.read_frame_index(0, 4895).unwrap(), kept.iter().map(|r| r + 1000).collect::<Vec<_>>());
    let analog: Vec<u16> =
        kept.iter().flat_map(|&r| (0..2).map(move |a| (r as u16).wrapping_mul(3).wrapping_add(a))).collect();
    assert_eq!(r.read_analog_in(0, 4895).unwrap(), analog);
    assert_eq!(r.read_digital_in(0, 4895).unwrap(), kept.iter().map(|r| (r % 7) as u16).collect::<Vec<_>>());
    assert_eq!(r.read_digital_out(2999, 2).unwrap(), vec![(2999 % 11) as u16 | 0x100, (3100 % 11) as u16 | 0x100]);

    // Tables: timestamps in frames from start_timestamp.
    let spikes = r.read_spikes().unwrap();
    assert_eq!((spikes[0].timestamp, spikes[0].channel, spikes[0].unit), (10, 4, UNSORTED));
    assert_eq!(spikes[0].samples, snippet(-50.0));
    assert_eq!((spikes[1].timestamp, spikes[1].channel, spikes[1].unit), (4500, 1, 7));
    let stims = r.read_stims().unwrap();
    assert_eq!((stims[0].timestamp, stims[0].channel, stims[0].design_id), (200, 5, 9));
    let gaps = r.read_gaps().unwrap();
    assert_eq!(
        (gaps[0].timestamp, gaps[0].length, gaps[0].reason.as_str()),
        (3000, 100, GapReason::RecorderOverrun.as_str())
    );
    assert_eq!((gaps[1].timestamp, gaps[1].length, gaps[1].reason.as_str()), (4000, 5, "device"));
    let truth = r.read_ground_truth().unwrap();
    assert_eq!((truth[0].timestamp, truth[0].channel, truth[0].unit, truth[0].peak_uv), (12, 4, 3, -81.5));
    let channel_rows = r.read_channels().unwrap();
    assert_eq!(channel_rows.len(), channels);
    assert_eq!(
        (channel_rows[2].native_index, channel_rows[2].name.as_str(), channel_rows[2].port.as_str()),
        (102, "B-002", "B")
    );
    assert_eq!(
        (channel_rows[2].y_um, channel_rows[2].impedance_ohms, channel_rows[2].impedance_phase_deg),
        (40.0, 412_000.0, -72.5)
    );
    assert!(channel_rows[0].x_um.is_nan() && channel_rows[0].impedance_ohms.is_nan());
    let stream = r.read_data_stream("game_state").unwrap();
    assert_eq!(stream, vec![(20, vec![0x81, 0xa1, 0x78, 0x01]), (30, vec![0xa3, b'a', b'b', b'c'])]);
    assert!(r.read_data_stream("notes").unwrap().is_empty());
}

#[test]
fn a_spikes_only_recording_keeps_spikes_and_time_but_no_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spikes.h5");
    let m = RecordingMeta {
        recording_type: RecordingType::Spikes,
        analog_in_channels: 2,
        digital: true,
        ..meta(4, 30_000.0)
    };
    let mut w = RecordingWriter::create(&path, m).unwrap();
    // Frames still flow through (they carry time); only the frame index is given.
    for start in (0..90_000).step_by(128) {
        let index: Vec<u64> = (start..start + 128).map(|f| f + 500).collect();
        w.append(&FrameRows { frame_index: &index, ..FrameRows::default() }).unwrap();
    }
    let err = w.append_samples(&[1], &[0, 0, 0, 0]).unwrap_err();
    assert!(matches!(err, RecordingError::SampleCountMismatch { what: "samples", expected: 0, .. }), "{err}");
    w.add_spike(500 + 1234, 2, &snippet(1.0), UNSORTED).unwrap();
    let s = w.finish().unwrap();
    assert_eq!((s.start_timestamp, s.end_timestamp, s.spikes), (500, 500 + 90_112, 1));
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!((r.info().frames, r.info().analog_in_channels, r.info().digital), (0, 0, false));
    assert_eq!(r.info().recording_type, "spikes");
    assert_eq!(r.info().duration_frames, 90_112);
    assert_eq!(r.read_spikes().unwrap()[0].timestamp, 1234);
}

#[test]
fn a_continuous_recording_keeps_no_spikes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuous.h5");
    let mut w = RecordingWriter::create(&path, meta(2, 1_000.0)).unwrap();
    w.append_samples(&[0, 1], &[1, 2, 3, 4]).unwrap();
    w.add_spike(0, 0, &snippet(0.0), UNSORTED).unwrap();
    assert_eq!(w.finish().unwrap().spikes, 0);
    assert_eq!(RecordingReader::open(&path).unwrap().info().spikes, 0);
}

#[test]
fn compressed_samples_read_back_identically_and_take_less_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for (name, compression) in [("plain.h5", Compression::None), ("deflate.h5", Compression::Deflate { level: 4 })] {
        let path = dir.path().join(name);
        let mut w = RecordingWriter::create(&path, RecordingMeta { compression, ..meta(64, 30_000.0) }).unwrap();
        let b = block(0..30_000, 0, 64, 0);
        w.append_samples(&b.index, &b.samples).unwrap();
        w.finish().unwrap();
        let r = RecordingReader::open(&path).unwrap();
        assert_eq!(r.read_samples(0, 30_000).unwrap(), b.samples);
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    assert!(sizes[1] < sizes[0] * 3 / 4, "deflate {} vs plain {}", sizes[1], sizes[0]);
    let bad = RecordingMeta { compression: Compression::Deflate { level: 0 }, ..meta(4, 1_000.0) };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("compression level") && e.contains("1..=9"), "{e}");
}

#[test]
fn new_fields_are_validated_by_name() {
    let cases: Vec<(RecordingMeta, &str, &str)> = vec![
        (
            RecordingMeta { channels: vec![ChannelRow::new(0, "a", "A", 0)], ..meta(4, 1_000.0) },
            "channels",
            "one row per channel",
        ),
        (RecordingMeta { analog_in_channels: 17, ..meta(4, 1_000.0) }, "analog_in_channels", "0..=16"),
        (RecordingMeta { file_sequence: 0, ..meta(4, 1_000.0) }, "file_sequence", "1 or more"),
        (RecordingMeta { config_json: "{\0}".into(), ..meta(4, 1_000.0) }, "config_json", "NUL"),
        (
            RecordingMeta {
                data_streams: vec![DataStreamSpec { name: "a/b".into(), application_json: "{}".into() }],
                ..meta(4, 1_000.0)
            },
            "data_streams",
            "without '/'",
        ),
        (
            RecordingMeta {
                data_streams: vec![
                    DataStreamSpec { name: "s".into(), application_json: "{}".into() },
                    DataStreamSpec { name: "s".into(), application_json: "{}".into() },
                ],
                ..meta(4, 1_000.0)
            },
            "data_streams",
            "distinct",
        ),
    ];
    for (m, field, allowed) in cases {
        let e = m.validate().unwrap_err();
        assert!(matches!(&e, RecordingError::InvalidMeta { field: f, .. } if *f == field), "{e}");
        assert!(e.to_string().contains(allowed), "{e}");
    }
}

#[test]
fn a_file_whose_writer_died_is_recovered_with_every_flushed_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.h5");
    let channels = 32;
    let m = RecordingMeta {
        recording_type: RecordingType::ContinuousAndSpikes,
        analog_in_channels: 1,
        digital: true,
        ..meta(channels, 30_000.0)
    };
    let mut w = RecordingWriter::create(&path, m).unwrap();
    w.append(&block(0..40_000, 7, channels, 1).rows()).unwrap();
    w.add_spike(7 + 100, 3, &snippet(2.0), UNSORTED).unwrap();
    w.flush().unwrap();
    // More frames after the flush: some reach the file, some stay in the writer's buffer.
    w.append(&block(40_000..52_345, 7, channels, 1).rows()).unwrap();
    // A crash now leaves the file as it is on disk: copy it, as the writer's process dying
    // would leave it.
    let crashed = dir.path().join("crashed.h5");
    std::fs::copy(&path, &crashed).unwrap();
    drop(w);

    let before = RecordingReader::open(&crashed).unwrap();
    assert!(before.info().open_for_writing, "a crashed SWMR file is still marked open");
    drop(before);
    let report = recover(&crashed).unwrap();
    assert!(!report.already_closed);
    assert!(report.frames >= 40_000, "{report:?}");
    let r = RecordingReader::open(&crashed).unwrap();
    let info = r.info();
    assert!(!info.open_for_writing, "recovered files open plainly");
    assert!(!info.closed_cleanly && !info.recovered_utc.is_empty());
    assert_eq!(info.frames, report.frames);
    assert_eq!((info.start_timestamp, info.end_timestamp), (7, 7 + report.frames));
    let b = block(0..report.frames, 7, channels, 1);
    assert_eq!(r.read_samples(0, report.frames as usize).unwrap(), b.samples);
    assert_eq!(r.read_frame_index(0, report.frames as usize).unwrap(), b.index);
    assert_eq!(r.read_spikes().unwrap().len(), 1);
    drop(r);

    // Recovering again changes nothing of substance.
    let again = recover(&crashed).unwrap();
    assert_eq!((again.frames, again.trimmed_frames), (report.frames, 0));
    // The dropped writer closed its own file with everything it had, not cleanly.
    let dropped = recover(&path).unwrap();
    assert_eq!((dropped.already_closed, dropped.frames, dropped.trimmed_frames), (false, 52_345, 0));
}

#[test]
fn recovering_something_that_is_not_a_recording_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.h5");
    std::fs::write(&path, b"not hdf5").unwrap();
    let e = recover(&path).unwrap_err().to_string();
    assert!(e.contains("junk.h5"), "{e}");
}

/// A small tmpfs mounted for one test and unmounted after.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `megabytes` of tmpfs, or says why it cannot.
    fn mount(megabytes: u32) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount refused: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn fill_until_full(path: &Path, channels: usize) -> (RecordingWriter, u64, RecordingError) {
    let mut w = RecordingWriter::create(path, meta(channels, 30_000.0)).unwrap();
    let mut row = 0u64;
    loop {
        let b = block(row..row + 128, 0, channels, 0);
        match w.append_samples(&b.index, &b.samples) {
            Ok(()) => row += 128,
            Err(e) => return (w, row, e),
        }
        if row % 30_000 < 128 {
            if let Err(e) = w.flush() {
                return (w, row, e);
            }
        }
    }
}

#[test]
fn a_full_disk_stops_the_writer_before_it_writes_and_the_file_closes_with_everything() {
    let disk = match SmallDisk::mount(40) {
        Ok(d) => d,
        Err(reason) => {
            println!("SKIPPED: needs a 40 MB tmpfs ({reason})");
            return;
        }
    };
    let path = disk.path().join("full.h5");
    let (w, appended, err) = fill_until_full(&path, 1024);
    assert!(err.is_disk_full(), "{err}");
    match &err {
        RecordingError::DiskFull { path: p, frames_kept, .. } => {
            assert_eq!(p, &path);
            assert!(*frames_kept >= appended, "{err}");
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("disk full") && message.contains("full.h5"), "{message}");
    let kept = w.frames_written();
    let summary = w.finish().expect("the file closes inside its reserved margin");
    assert_eq!(summary.frames_written, kept);

    let r = RecordingReader::open(&path).unwrap();
    assert!(r.info().closed_cleanly);
    assert_eq!(r.frames(), kept);
    assert!(kept > 10_000, "a 40 MB disk holds more than {kept} frames of 1024 channels");
    let last = kept - 1;
    assert_eq!(r.read_samples(last, 1).unwrap(), (0..1024).map(|c| sample(last, c)).collect::<Vec<_>>());
    assert_eq!(r.read_frame_index(0, kept as usize).unwrap(), (0..kept).collect::<Vec<_>>());
}

#[test]
fn frames_lost_before_the_first_frame_are_a_gap_just_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.h5");
    let mut w = RecordingWriter::create(&path, meta(2, 1_000.0)).unwrap();
    w.note_overrun(300);
    w.append_samples(&[1000, 1001], &[0; 4]).unwrap();
    assert_eq!(w.finish().unwrap().gap_count, 1);
    let gaps = RecordingReader::open(&path).unwrap().read_gaps().unwrap();
    assert_eq!((gaps[0].timestamp, gaps[0].length, gaps[0].reason.as_str()), (-300, 300, "recorder overrun"));
}

/// Every frame-aligned dataset of `path`, read with a plain `hdf5::File` (not the crate's
/// reader), against `rows` of [`block`] at device index `rows + offset`.
fn assert_plain_hdf5_holds(path: &Path, rows: std::ops::Range<u64>, offset: u64, channels: usize, adc: usize) {
    let b = block(rows.clone(), offset, channels, adc);
    let frames = (rows.end - rows.start) as usize;
    let file = hdf5::File::open(path).unwrap();
    let samples = file.dataset("samples").unwrap().read_2d::<i16>().unwrap();
    assert_eq!(samples.dim(), (frames, channels));
    assert!(samples.iter().copied().eq(b.samples.iter().copied()), "/samples");
    let analog = file.dataset("analog_in").unwrap().read_2d::<u16>().unwrap();
    assert_eq!(analog.dim(), (frames, adc));
    assert!(analog.iter().copied().eq(b.analog.iter().copied()), "/analog_in");
    assert_eq!(file.dataset("digital_in").unwrap().read_raw::<u16>().unwrap(), b.din);
    assert_eq!(file.dataset("digital_out").unwrap().read_raw::<u16>().unwrap(), b.dout);
    assert_eq!(file.dataset("frame_index").unwrap().read_raw::<u64>().unwrap(), b.index);
}

/// The same through [`RecordingReader`].
fn assert_reader_holds(path: &Path, rows: std::ops::Range<u64>, offset: u64, channels: usize, adc: usize) {
    let b = block(rows.clone(), offset, channels, adc);
    let frames = (rows.end - rows.start) as usize;
    let r = RecordingReader::open(path).unwrap();
    assert_eq!(r.frames(), frames as u64);
    assert!(r.read_samples(0, frames).unwrap() == b.samples, "samples");
    assert_eq!(r.read_analog_in(0, frames).unwrap(), b.analog);
    assert_eq!(r.read_digital_in(0, frames).unwrap(), b.din);
    assert_eq!(r.read_digital_out(0, frames).unwrap(), b.dout);
    assert_eq!(r.read_frame_index(0, frames).unwrap(), b.index);
}

fn with_board_streams(m: RecordingMeta, adc: usize) -> RecordingMeta {
    RecordingMeta { analog_in_channels: adc, digital: true, ..m }
}

#[test]
fn whole_chunks_written_directly_read_back_exactly_with_the_reader_and_plain_hdf5() {
    // 1024 channels: 512-frame (1 MiB) chunks, 1536-frame write batches; 128-frame appends
    // as the daemon makes them, across several batches, ending inside a chunk.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("direct.h5");
    let (channels, adc) = (1024, 8);
    let mut w = RecordingWriter::create(&path, with_board_streams(meta(channels, 30_000.0), adc)).unwrap();
    assert_eq!(w.chunk_frames(), 512);
    let total = 40 * 128 + 77;
    let mut row = 0;
    while row < total {
        let n = 128.min(total - row);
        w.append(&block(row..row + n, 3, channels, adc).rows()).unwrap();
        row += n;
    }
    w.finish().unwrap();
    assert_reader_holds(&path, 0..total, 3, channels, adc);
    assert_plain_hdf5_holds(&path, 0..total, 3, channels, adc);
}

#[test]
fn a_partial_chunk_left_by_a_flush_is_completed_by_later_frames_plain_and_deflated() {
    // Flushes that end inside a chunk, more frames completing that chunk (rewritten whole) and
    // starting others, then close: every row reads back, whether /samples is written directly
    // (plain) or through H5Dwrite (deflate; the other datasets still directly).
    let dir = tempfile::tempdir().unwrap();
    let (channels, adc) = (1024, 2);
    for (name, compression) in [("plain.h5", Compression::None), ("deflate.h5", Compression::Deflate { level: 1 })] {
        let path = dir.path().join(name);
        let m = RecordingMeta { compression, ..with_board_streams(meta(channels, 30_000.0), adc) };
        let mut w = RecordingWriter::create(&path, m).unwrap();
        let mut row = 0;
        for n in [700, 1_000, 1, 2_047, 333] {
            w.append(&block(row..row + n, 11, channels, adc).rows()).unwrap();
            row += n;
            w.flush().unwrap();
            // As a crash right after this flush would leave it.
            let snapshot = dir.path().join(format!("snapshot_{name}"));
            std::fs::copy(&path, &snapshot).unwrap();
            let r = RecordingReader::open(&snapshot).unwrap();
            assert!(r.info().open_for_writing);
            assert_eq!(r.frames(), row, "{name}");
            drop(r);
            assert_reader_holds(&snapshot, 0..row, 11, channels, adc);
            std::fs::remove_file(&snapshot).unwrap();
        }
        w.append(&block(row..row + 100, 11, channels, adc).rows()).unwrap();
        row += 100;
        w.finish().unwrap();
        assert_reader_holds(&path, 0..row, 11, channels, adc);
        assert_plain_hdf5_holds(&path, 0..row, 11, channels, adc);
    }
}

const KILLED_CHILD: &str = "EPHYSD_KILLED_WRITER_FILE";

#[test]
fn a_writer_killed_mid_write_leaves_a_file_recovery_closes_with_every_flushed_frame() {
    let (channels, adc) = (256, 2);
    if let Some(path) = std::env::var_os(KILLED_CHILD) {
        // The child: records until it is killed, saying after each flush how many frames the
        // file holds; flushes fall inside chunks (2048-frame chunks, 1000-frame appends).
        let mut w =
            RecordingWriter::create(Path::new(&path), with_board_streams(meta(channels, 30_000.0), adc)).unwrap();
        let mut row = 0;
        for i in 0..200u64 {
            w.append(&block(row..row + 1_000, 5, channels, adc).rows()).unwrap();
            row += 1_000;
            if i % 3 == 2 {
                w.flush().unwrap();
                println!("flushed {row}");
            }
        }
        // About 100 MB: far past where the parent kills it, short of filling a disk if it does not.
        panic!("not killed");
    }
    let dir = tempfile::tempdir().unwrap();
    // Killed at a few different moments after a flush: inside appends, writes and flushes.
    for delay_ms in [0, 2, 5, 9] {
        let path = dir.path().join(format!("killed_{delay_ms}.h5"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "a_writer_killed_mid_write_leaves_a_file_recovery_closes_with_every_flushed_frame"])
            .arg("--nocapture")
            .env(KILLED_CHILD, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let mut flushed = 0;
        let mut flushes = 0;
        while flushes < 8 {
            let line = lines.next().expect("the child exited early").unwrap();
            if let Some(n) = line.strip_prefix("flushed ") {
                flushed = n.parse::<u64>().unwrap();
                flushes += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(lines);

        let report = recover(&path).unwrap();
        println!("killed {delay_ms} ms after {flushed} frames were flushed: {report:?}");
        assert!(!report.already_closed);
        assert!(report.frames >= flushed, "{report:?}, {flushed} frames flushed");
        let frames = report.frames;
        assert_reader_holds(&path, 0..frames, 5, channels, adc);
        let r = RecordingReader::open(&path).unwrap();
        let info = r.info();
        assert!(!info.open_for_writing && !info.closed_cleanly && !info.recovered_utc.is_empty());
        assert_eq!((info.start_timestamp, info.end_timestamp), (5, 5 + frames));
    }
}

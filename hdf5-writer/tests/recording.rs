//! Behaviour of the recording format through the public API only.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use common::meta;
use ephysd_hdf5::{layout, recording_file_name, RecordingError, RecordingMeta, RecordingReader, RecordingWriter};

/// A value that differs per frame and channel and wraps through negative numbers.
fn pattern(frame: u64, channel: usize) -> i16 {
    (frame.wrapping_mul(7).wrapping_add(channel as u64 * 1_013) % 65_536) as u16 as i16
}

fn block(first_row: u64, frames: usize, channels: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(frames * channels);
    for f in first_row..first_row + frames as u64 {
        out.extend((0..channels).map(|c| pattern(f, c)));
    }
    out
}

fn expected(rows: std::ops::Range<u64>, channels: usize) -> Vec<i16> {
    block(rows.start, (rows.end - rows.start) as usize, channels)
}

/// Appends `sizes` blocks of contiguous frames (device index = row + offset).
fn append_blocks(w: &mut RecordingWriter, sizes: &[usize], first_row: &mut u64, offset: u64) {
    let channels = w.meta().channel_count;
    for &n in sizes {
        let idx: Vec<u64> = (*first_row..*first_row + n as u64).map(|r| r + offset).collect();
        w.append_samples(&idx, &block(*first_row, n, channels)).unwrap();
        *first_row += n as u64;
    }
}

fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn round_trip_many_small_appends_across_chunk_and_batch_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "round_trip.h5");
    let channels = 1024;
    let mut w = RecordingWriter::create(&path, meta(channels, 30_000.0)).unwrap();
    // 1 MiB chunks at 1024 channels.
    assert_eq!(w.chunk_frames(), 512);

    let mut row = 0u64;
    // Odd block sizes so nothing lines up with 512-frame chunks or write batches.
    let sizes: Vec<usize> = (0..160).map(|i| [1, 37, 128, 3, 511, 64][i % 6]).collect();
    append_blocks(&mut w, &sizes, &mut row, 5_000);
    let total = row;
    assert!(total > 4 * 2048, "must cross several write batches, got {total}");
    assert_eq!(w.frames_written(), total);
    let summary = w.finish().unwrap();
    assert_eq!(summary.frames_written, total);
    assert_eq!(summary.gap_count, 0);

    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), total);
    assert_eq!(r.read_samples(0, total as usize).unwrap(), expected(0..total, channels));
    let idx = r.read_frame_index(0, total as usize).unwrap();
    assert_eq!(idx, (5_000..5_000 + total).collect::<Vec<_>>());
    // A window straddling a chunk boundary and one at the very end.
    assert_eq!(r.read_samples(500, 30).unwrap(), expected(500..530, channels));
    assert_eq!(r.read_samples(total - 3, 3).unwrap(), expected(total - 3..total, channels));
    assert_eq!(r.read_frame_index(510, 4).unwrap(), vec![5_510, 5_511, 5_512, 5_513]);
}

#[test]
fn flushes_between_appends_keep_data_intact() {
    // Flushing writes a partial chunk that is later rewritten whole: data before and
    // after each flush point must survive that.
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "flushes.h5");
    let channels = 3;
    let mut w = RecordingWriter::create(&path, meta(channels, 1_000.0)).unwrap();
    assert_eq!(w.chunk_frames(), 1_000);
    let mut row = 0u64;
    for round in 0..12 {
        append_blocks(&mut w, &[17 + round * 29, 250, 1], &mut row, 0);
        w.flush().unwrap();
        let r = RecordingReader::open(&path).unwrap();
        assert_eq!(r.frames(), row, "after flush {round}");
        assert_eq!(r.read_samples(0, row as usize).unwrap(), expected(0..row, channels));
    }
    w.finish().unwrap();
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), row);
    assert_eq!(r.read_samples(0, row as usize).unwrap(), expected(0..row, channels));
    assert_eq!(r.read_frame_index(0, row as usize).unwrap(), (0..row).collect::<Vec<_>>());
}

#[test]
fn attributes_before_and_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "attrs.h5");
    let before = Utc::now();
    let mut w = RecordingWriter::create(&path, meta(8, 20_000.0)).unwrap();

    // Self-describing from the start, with provisional end values.
    let info = RecordingReader::open(&path).unwrap().info().clone();
    assert_eq!(info.frames_per_second, 20_000.0);
    assert_eq!(info.channel_count, 8);
    assert_eq!(info.uv_per_sample_unit, 0.195);
    assert_eq!(info.software_version, "ephysd 9.9.9-test");
    assert_eq!(info.device, "unit-test-device");
    assert_eq!((info.start_timestamp, info.end_timestamp), (0, 0));
    assert_eq!((info.duration_frames, info.duration_seconds), (0, 0.0));
    assert_eq!(info.gap_count, 0);
    assert_eq!(info.ended_utc, "");
    assert!(!info.closed_cleanly);
    assert_eq!(info.frames, 0);
    let created: DateTime<Utc> = DateTime::parse_from_rfc3339(&info.created_utc).unwrap().into();
    assert!(info.created_utc.ends_with('Z'), "UTC designator: {}", info.created_utc);
    assert!(created >= before - chrono::Duration::seconds(1) && created <= Utc::now());

    // 40_000 frames at device indices 100_000.. with one 500-frame hole.
    let mut row = 0u64;
    append_blocks(&mut w, &[10_000, 10_000], &mut row, 100_000);
    append_blocks(&mut w, &[20_000], &mut row, 100_500);
    let summary = w.finish().unwrap();
    assert_eq!(summary.start_timestamp, 100_000);
    assert_eq!(summary.end_timestamp, 140_500);
    assert_eq!(summary.duration_frames, 40_500);
    assert_eq!(summary.gap_count, 1);

    let info = RecordingReader::open(&path).unwrap().info().clone();
    assert_eq!(info.start_timestamp, 100_000);
    assert_eq!(info.end_timestamp, 140_500);
    assert_eq!(info.duration_frames, 40_500);
    assert!((info.duration_seconds - 2.025).abs() < 1e-12, "{}", info.duration_seconds);
    assert_eq!(info.gap_count, 1);
    assert_eq!(info.frames, 40_000);
    assert!(info.closed_cleanly);
    let ended: DateTime<Utc> = DateTime::parse_from_rfc3339(&info.ended_utc).unwrap().into();
    assert!(ended >= created);
    assert_eq!(info.channel_count, 8);
    assert_eq!(info.software_version, "ephysd 9.9.9-test");
}

#[test]
fn gaps_are_counted_within_and_across_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "gaps.h5");
    let mut w = RecordingWriter::create(&path, meta(2, 1_000.0)).unwrap();
    let calls: [&[u64]; 6] = [
        &[10, 11, 12], // contiguous
        &[13, 20, 21], // continues across the call, then a jump inside: 1
        &[23],         // jump across the call boundary: 2
        &[23],         // repeated index: 3
        &[5, 6],       // backwards: 4
        &[7, 8, 9],    // continues across the call: still 4
    ];
    for idx in calls {
        w.append_samples(idx, &vec![0i16; idx.len() * 2]).unwrap();
    }
    assert_eq!(w.gap_count(), 4);
    let summary = w.finish().unwrap();
    assert_eq!(summary.gap_count, 4);
    assert_eq!(summary.start_timestamp, 10);
    assert_eq!(summary.end_timestamp, 10); // one past the last frame written (9)

    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.info().gap_count, 4);
    assert_eq!(r.read_frame_index(0, 13).unwrap(), vec![10, 11, 12, 13, 20, 21, 23, 23, 5, 6, 7, 8, 9]);
}

#[test]
fn refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "existing.h5");
    std::fs::write(&path, b"precious data").unwrap();
    let err = RecordingWriter::create(&path, meta(4, 1_000.0)).unwrap_err();
    assert!(matches!(&err, RecordingError::AlreadyExists { path: p } if p == &path), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious data");

    // Also an existing, finished recording.
    let path2 = path_in(&dir, "rec.h5");
    let mut w = RecordingWriter::create(&path2, meta(4, 1_000.0)).unwrap();
    w.append_samples(&[1], &[1, 2, 3, 4]).unwrap();
    w.finish().unwrap();
    let err = RecordingWriter::create(&path2, meta(4, 1_000.0)).unwrap_err();
    assert!(matches!(err, RecordingError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(RecordingReader::open(&path2).unwrap().frames(), 1);
}

#[test]
fn missing_directory_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_such_dir").join("rec.h5");
    let err = RecordingWriter::create(&path, meta(4, 1_000.0)).unwrap_err();
    match &err {
        RecordingError::MissingDirectory { path: p, directory } => {
            assert_eq!(p, &path);
            assert_eq!(directory, &dir.path().join("no_such_dir"));
        }
        other => panic!("expected MissingDirectory, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn mismatched_sample_length_is_rejected_and_writer_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "mismatch.h5");
    let mut w = RecordingWriter::create(&path, meta(4, 1_000.0)).unwrap();
    let err = w.append_samples(&[0, 1], &[0i16; 7]).unwrap_err();
    match &err {
        RecordingError::SampleCountMismatch { frames, what, expected, actual, path: p } => {
            assert_eq!((*frames, *what, *expected, *actual), (2, "samples", 8, 7));
            assert_eq!(p, &path);
        }
        other => panic!("expected SampleCountMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("2 frames of samples need 8 values, got 7"), "{err}");
    // Samples without frames is a mismatch too.
    assert!(w.append_samples(&[], &[1]).is_err());
    assert_eq!(w.frames_written(), 0);
    assert_eq!(w.gap_count(), 0);

    w.append_samples(&[0, 1], &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    w.finish().unwrap();
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.read_samples(0, 2).unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(r.info().gap_count, 0);
}

#[test]
fn flushed_file_is_complete_on_disk_while_writer_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "live.h5");
    let channels = 64;
    let mut w = RecordingWriter::create(&path, meta(channels, 30_000.0)).unwrap();
    let mut row = 0u64;
    append_blocks(&mut w, &[4_000, 333, 1], &mut row, 77);
    w.flush().unwrap();

    // Same-process reader while the writer is open.
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), row);
    assert_eq!(r.info().end_timestamp, 77 + row);
    assert!(!r.info().closed_cleanly);
    drop(r);

    // The bytes on disk right now, as a crash right after flush would leave them: a copy
    // opens on its own (in SWMR read mode: it is still marked open for writing) and holds
    // every frame.
    let snapshot = path_in(&dir, "snapshot.h5");
    std::fs::copy(&path, &snapshot).unwrap();
    let r = RecordingReader::open(&snapshot).unwrap();
    assert!(r.info().open_for_writing);
    assert_eq!(r.frames(), row);
    assert_eq!(r.read_samples(0, row as usize).unwrap(), expected(0..row, channels));
    assert_eq!(r.read_frame_index(row - 1, 1).unwrap(), vec![77 + row - 1]);
    assert_eq!(r.info().start_timestamp, 77);
    assert_eq!(r.info().end_timestamp, 77 + row);
    assert!(!r.info().closed_cleanly);
    assert_eq!(r.info().ended_utc, "");
}

#[test]
fn dropping_an_unfinished_writer_keeps_all_frames_unfinalized() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "dropped.h5");
    let channels = 16;
    let mut w = RecordingWriter::create(&path, meta(channels, 30_000.0)).unwrap();
    let mut row = 0u64;
    append_blocks(&mut w, &[1_000, 500], &mut row, 0);
    w.flush().unwrap();
    // These frames are only in the writer's buffer when it is dropped.
    append_blocks(&mut w, &[250], &mut row, 0);
    drop(w);

    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), row);
    assert_eq!(r.read_samples(0, row as usize).unwrap(), expected(0..row, channels));
    assert!(!r.info().closed_cleanly);
    assert_eq!(r.info().ended_utc, "");
    assert_eq!(r.info().end_timestamp, row);
}

#[test]
fn empty_recording_finishes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "empty.h5");
    let w = RecordingWriter::create(&path, meta(1, 1.0)).unwrap();
    let s = w.finish().unwrap();
    assert_eq!((s.frames_written, s.start_timestamp, s.end_timestamp, s.duration_frames), (0, 0, 0, 0));
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), 0);
    assert!(r.info().closed_cleanly);
    assert!(r.read_samples(0, 0).unwrap().is_empty());
}

#[test]
fn invalid_meta_names_field_and_range_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "bad.h5");
    let cases: Vec<(RecordingMeta, &str, &str)> = vec![
        (meta(0, 1_000.0), "channel_count", "1..=1024"),
        (meta(1025, 1_000.0), "channel_count", "1..=1024"),
        (meta(4, 0.0), "frames_per_second", "<= 30000"),
        (meta(4, 30_001.0), "frames_per_second", "<= 30000"),
        (meta(4, f64::NAN), "frames_per_second", "finite"),
        (RecordingMeta { uv_per_sample_unit: f64::INFINITY, ..meta(4, 1_000.0) }, "uv_per_sample_unit", "finite"),
        (RecordingMeta { device: "a\0b".into(), ..meta(4, 1_000.0) }, "device", "NUL"),
    ];
    for (m, field, range) in cases {
        let err = RecordingWriter::create(&path, m).unwrap_err();
        match &err {
            RecordingError::InvalidMeta { field: f, .. } => assert_eq!(*f, field),
            other => panic!("expected InvalidMeta for {field}, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains(range), "{msg}");
        assert!(!path.exists());
    }
    assert!(meta(1024, 30_000.0).validate().is_ok());
    assert!(meta(1, 0.5).validate().is_ok());
}

#[test]
fn reads_past_the_end_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "range.h5");
    let mut w = RecordingWriter::create(&path, meta(2, 1_000.0)).unwrap();
    w.append_samples(&[0, 1, 2], &[0; 6]).unwrap();
    w.finish().unwrap();
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.read_samples(1, 2).unwrap().len(), 4);
    let err = r.read_samples(2, 2).unwrap_err();
    assert!(matches!(err, RecordingError::OutOfRange { start: 2, end: 4, available: 3, .. }), "{err:?}");
    assert!(r.read_frame_index(u64::MAX, 2).is_err());
}

#[test]
fn opening_a_non_recording_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "not_hdf5.h5");
    std::fs::write(&path, b"hello").unwrap();
    let err = RecordingReader::open(&path).unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    let missing = path_in(&dir, "missing.h5");
    assert!(RecordingReader::open(&missing).is_err());
}

#[test]
fn chunk_size_is_about_one_second_capped_at_one_mib() {
    assert_eq!(layout::chunk_frames(30_000.0, 1024), 512);
    assert_eq!(layout::chunk_frames(30_000.0, 32), 16_384);
    assert_eq!(layout::chunk_frames(1_000.0, 4), 1_000);
    assert_eq!(layout::chunk_frames(0.5, 1), 1);
    for ch in [1, 3, 64, 100, 1000, 1024] {
        let frames = layout::chunk_frames(30_000.0, ch);
        assert!(frames * ch * 2 <= layout::TARGET_CHUNK_BYTES);
    }
}

#[test]
fn file_names() {
    let ts = Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 30).unwrap();
    assert_eq!(recording_file_name("rat7", None, None).unwrap(), "rat7.h5");
    assert_eq!(recording_file_name("rat7", Some(3), None).unwrap(), "rat7_0003.h5");
    assert_eq!(recording_file_name("rat7", Some(12345), None).unwrap(), "rat7_12345.h5");
    assert_eq!(recording_file_name("rat7", None, Some(ts)).unwrap(), "rat7_2026-11-21T10-15-30Z.h5");
    assert_eq!(recording_file_name("rat7", Some(3), Some(ts)).unwrap(), "rat7_2026-11-21T10-15-30Z_0003.h5");
    assert_eq!(recording_file_name("rat7.H5", Some(1), None).unwrap(), "rat7_0001.h5");
    assert_eq!(recording_file_name("séance", None, None).unwrap(), "séance.h5");
    for bad in ["", "   ", "a/b", "a\\b", "/abs", "..", ".", ".h5", "x\0y"] {
        let err = recording_file_name(bad, Some(1), None).unwrap_err();
        assert!(matches!(err, RecordingError::InvalidBaseName { .. }), "{bad:?}: {err:?}");
    }
}

#[test]
fn writer_and_errors_can_cross_threads() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send::<RecordingWriter>();
    assert_send_sync::<RecordingError>();

    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "thread.h5");
    let mut w = RecordingWriter::create(&path, meta(2, 1_000.0)).unwrap();
    let path_back: PathBuf = std::thread::spawn(move || {
        w.append_samples(&[0, 1], &[1, 2, 3, 4]).unwrap();
        w.finish().unwrap().path
    })
    .join()
    .unwrap();
    assert_eq!(path_back, path);
    assert_eq!(RecordingReader::open(Path::new(&path)).unwrap().frames(), 2);
}

#[test]
fn in_place_appends_mix_with_copying_appends_and_count_only_what_was_filled() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir, "in_place.h5");
    let channels = 64;
    let mut w = RecordingWriter::create(&path, meta(channels, 30_000.0)).unwrap();
    let mut row = 0u64;
    // Offers of varying size, each filled only partly, interleaved with ordinary appends,
    // across several batches; the device index jumps once (one gap).
    let mut offers = 0;
    while row < 150_000 {
        let jump = if row >= 70_000 { 5 } else { 0 };
        let max = 37 + (offers * 101) % 900;
        let fill_count = max * 2 / 3;
        let filled = w
            .append_with(max, |slots| {
                let (index, samples) = (slots.frame_index, slots.samples);
                assert!(index.len() <= max && !index.is_empty());
                assert_eq!(samples.len(), index.len() * channels);
                let n = fill_count.min(index.len());
                for f in 0..n {
                    index[f] = row + f as u64 + jump;
                    for c in 0..channels {
                        samples[f * channels + c] = pattern(row + f as u64, c);
                    }
                }
                n
            })
            .unwrap();
        row += filled as u64;
        offers += 1;
        if offers % 3 == 0 {
            append_blocks(&mut w, &[113], &mut row, jump);
        }
    }
    assert_eq!(w.append_with(0, |_| unreachable!("no slots for zero frames")).unwrap(), 0);
    let summary = w.finish().unwrap();
    assert_eq!(summary.frames_written, row);
    assert_eq!(summary.gap_count, 1);
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.frames(), row);
    for start in [0, 69_990, row - 500] {
        assert_eq!(r.read_samples(start, 500).unwrap(), expected(start..start + 500, channels), "rows from {start}");
    }
}

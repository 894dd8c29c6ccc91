//! A long recording keeps only a window of itself in the page cache, and loses nothing by it.
//!
//! Residency is read with `mincore` over a read-only mapping of the file, which reports the
//! page cache's state for the file without faulting anything in. The file lives under the
//! build directory (a disk-backed file system), since tmpfs pages cannot be dropped at all.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

mod common;

use common::meta;
use ephysd_hdf5::{RecordingReader, RecordingWriter, WRITE_BEHIND_WINDOW_BYTES};

const CHANNELS: usize = 1024;
const BLOCK_FRAMES: usize = 128;

fn value(frame: u64, channel: usize) -> i16 {
    (frame.wrapping_mul(31).wrapping_add(channel as u64 * 7) % 65_521) as u16 as i16
}

/// Bytes of `path` currently held in the page cache.
fn resident_bytes(path: &Path) -> u64 {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    if len == 0 {
        return 0;
    }
    // SAFETY: a fresh read-only shared mapping of `len` bytes of a file we opened; only
    // mincore looks at it and it is unmapped before returning.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0);
        assert_ne!(addr, libc::MAP_FAILED, "mmap {}", std::io::Error::last_os_error());
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let mut pages = vec![0u8; len.div_ceil(page)];
        let rc = libc::mincore(addr, len, pages.as_mut_ptr());
        assert_eq!(rc, 0, "mincore {}", std::io::Error::last_os_error());
        libc::munmap(addr, len);
        pages.iter().filter(|&&p| p & 1 == 1).count() as u64 * page as u64
    }
}

#[test]
fn a_long_recording_keeps_a_bounded_window_in_the_page_cache_and_reads_back_whole() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("long.h5");
    let mut writer = RecordingWriter::create(&path, meta(CHANNELS, 30_000.0)).unwrap();

    // 96 MiB of samples: twelve times the window.
    let total_frames = (96u64 << 20) / (CHANNELS as u64 * 2);
    let mut samples = vec![0i16; BLOCK_FRAMES * CHANNELS];
    let mut index = vec![0u64; BLOCK_FRAMES];
    let mut most_resident = 0u64;
    let mut frame = 0u64;
    while frame < total_frames {
        for (i, slot) in index.iter_mut().enumerate() {
            *slot = frame + i as u64;
        }
        for (f, row) in samples.chunks_exact_mut(CHANNELS).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = value(frame + f as u64, c);
            }
        }
        writer.append_samples(&index, &samples).unwrap();
        frame += BLOCK_FRAMES as u64;
        if frame.is_multiple_of(4096) {
            most_resident = most_resident.max(resident_bytes(&path));
        }
    }
    let file_len = std::fs::metadata(&path).unwrap().len();
    // The window, plus the batch being written and the one before it (4 MiB each), plus a
    // little for HDF5 metadata pages.
    let bound = WRITE_BEHIND_WINDOW_BYTES + (9 << 20);
    assert!(file_len > 4 * bound, "the file ({file_len} bytes) must outgrow the bound many times over");
    assert!(
        most_resident <= bound,
        "at most {bound} bytes of the recording should stay cached while it is written; saw {most_resident} of {file_len}"
    );

    let summary = writer.finish().unwrap();
    assert_eq!(summary.frames_written, total_frames);
    let reader = RecordingReader::open(&path).unwrap();
    assert_eq!(reader.info().duration_frames, total_frames);
    for start in [0, total_frames / 3, total_frames - 200] {
        let rows = reader.read_samples(start, 200).unwrap();
        for (f, row) in rows.chunks_exact(CHANNELS).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                assert_eq!(v, value(start + f as u64, c), "frame {} channel {c}", start + f as u64);
            }
        }
    }
}

/// Bytes of disk allocated to `path` (which may exceed its length while space is reserved).
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

fn write_frames(writer: &mut RecordingWriter, frames: u64) {
    let samples = vec![7i16; BLOCK_FRAMES * CHANNELS];
    let mut index = vec![0u64; BLOCK_FRAMES];
    let mut frame = writer.frames_written();
    let end = frame + frames;
    while frame < end {
        for (i, slot) in index.iter_mut().enumerate() {
            *slot = frame + i as u64;
        }
        writer.append_samples(&index, &samples).unwrap();
        frame += BLOCK_FRAMES as u64;
    }
}

#[test]
fn disk_space_is_reserved_ahead_while_recording_and_released_when_it_closes() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // 24 MiB of samples, then finish.
    let finished = dir.path().join("finished.h5");
    let mut writer = RecordingWriter::create(&finished, meta(CHANNELS, 30_000.0)).unwrap();
    write_frames(&mut writer, (24 << 20) / (CHANNELS as u64 * 2));
    let len = std::fs::metadata(&finished).unwrap().len();
    assert!(
        allocated_bytes(&finished) >= len + (16 << 20),
        "space ahead of the end should be reserved while recording: {} allocated for {len} bytes",
        allocated_bytes(&finished)
    );
    writer.finish().unwrap();
    let len = std::fs::metadata(&finished).unwrap().len();
    assert!(
        allocated_bytes(&finished) <= len + (1 << 20),
        "a finished recording keeps no reserved space: {} allocated for {len} bytes",
        allocated_bytes(&finished)
    );

    // A writer dropped without finishing releases it too.
    let dropped = dir.path().join("dropped.h5");
    let mut writer = RecordingWriter::create(&dropped, meta(CHANNELS, 30_000.0)).unwrap();
    write_frames(&mut writer, (12 << 20) / (CHANNELS as u64 * 2));
    drop(writer);
    let len = std::fs::metadata(&dropped).unwrap().len();
    assert!(allocated_bytes(&dropped) <= len + (1 << 20), "{} allocated for {len} bytes", allocated_bytes(&dropped));
    assert_eq!(RecordingReader::open(&dropped).unwrap().info().duration_frames, (12 << 20) / (CHANNELS as u64 * 2));
}

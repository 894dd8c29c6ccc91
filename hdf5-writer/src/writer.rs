//! The recording writer used by the daemon's recorder thread.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File, H5Type};

use crate::layout::{self, attr};
use crate::write_behind::WriteBehind;
use crate::{RecordingError, RecordingMeta};

/// How much sample data the writer gathers before it writes, in bytes (rounded down to
/// whole chunks, at least one chunk).
///
/// Each write resizes both datasets once and hands HDF5 a run of whole chunks, so the
/// per-write overhead (extent change, B-tree updates, selection setup) is paid once
/// per few MiB instead of once per `append` call.
const WRITE_BATCH_BYTES: usize = 4 << 20;

/// What [`RecordingWriter::finish`] reports about the closed recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSummary {
    /// The recording file.
    pub path: PathBuf,
    /// Rows in `/samples` and `/frame_index`.
    pub frames_written: u64,
    /// Device frame index of the first row (0 if no frame was written).
    pub start_timestamp: u64,
    /// Device frame index one past the last row (0 if no frame was written).
    pub end_timestamp: u64,
    /// `end_timestamp - start_timestamp`: device time covered, gaps included.
    pub duration_frames: u64,
    /// `duration_frames / frames_per_second`.
    pub duration_seconds: f64,
    /// Number of discontinuities in the frame index.
    pub gap_count: u64,
}

/// The open HDF5 objects; `None` in the writer once finished.
struct Handles {
    file: File,
    samples: Dataset,
    frame_index: Dataset,
}

/// Writes one recording file: `/samples`, `/frame_index` and the root attributes.
///
/// Frames are buffered in memory and written in runs of whole chunks, so `append` can
/// be called with any block size (the daemon uses whatever the driver delivers)
/// without paying HDF5 overhead per call. Call [`flush`](Self::flush) to make
/// everything appended so far durable and visible, and [`finish`](Self::finish) to
/// close the recording cleanly. Dropping an unfinished writer flushes and closes the
/// file on a best-effort basis but leaves `finalized = 0`, so tools can tell a cleanly
/// finished recording from one cut short.
pub struct RecordingWriter {
    path: PathBuf,
    meta: RecordingMeta,
    chunk_frames: usize,
    batch_frames: usize,
    handles: Option<Handles>,
    /// Keeps the file's page-cache footprint to a window behind its end.
    write_behind: WriteBehind,
    /// Dataset row of the first buffered frame. Always a multiple of `chunk_frames`,
    /// which is what keeps every write chunk-aligned.
    buffer_start: u64,
    /// Room for one batch of samples, frame-major, `channel_count` per frame; the first
    /// `buffered` frames are live. Allocated (and zeroed) once, so filling it never
    /// touches fresh memory.
    sample_buf: Vec<i16>,
    /// Room for one batch of frame indices; the first `buffered` are live.
    index_buf: Vec<u64>,
    /// Frames held in the buffers, not yet written or (a trailing partial chunk) to be
    /// rewritten whole.
    buffered: usize,
    /// Current extent (rows) of both datasets.
    extent: u64,
    /// Frames accepted by `append` (written or buffered).
    frames_appended: u64,
    first_frame_index: Option<u64>,
    last_frame_index: Option<u64>,
    gap_count: u64,
}

impl RecordingWriter {
    /// Creates a new recording at `path`.
    ///
    /// Fails with [`RecordingError::AlreadyExists`] if anything exists at `path`
    /// (recordings are never overwritten), with [`RecordingError::MissingDirectory`]
    /// if the parent directory does not exist, and with [`RecordingError::Io`] if the
    /// file cannot be created (e.g. unwritable directory). The name is claimed with an
    /// exclusive create first, so two writers racing for the same name cannot both win.
    ///
    /// All root attributes are written immediately (end values provisional, `ended_utc`
    /// empty, `finalized = 0`), so the file describes itself from the first moment.
    pub fn create(path: &Path, meta: RecordingMeta) -> Result<Self, RecordingError> {
        meta.validate()?;
        let directory = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !directory.is_dir() {
            return Err(RecordingError::MissingDirectory { path: path.to_path_buf(), directory });
        }
        // Claim the name with an exclusive create: it fails cleanly if anything is there and
        // gives the operating system's own reason (permissions, read-only file system) if the
        // directory refuses a new file.
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(RecordingError::AlreadyExists { path: path.to_path_buf() });
            }
            Err(source) => {
                return Err(RecordingError::io(path, "create recording file", source));
            }
        }
        // HDF5 must create the file itself. Letting it truncate our empty claim would mark the
        // file on ext4 as "replaced by truncation", and ext4 then forces writeback of the whole
        // recording when it is closed (auto_da_alloc), stalling finalize for as long as the
        // disk takes to absorb it. So the claim is released and HDF5 creates the name again
        // exclusively (O_EXCL): if another writer took the name in between, this one fails
        // with AlreadyExists and nothing is overwritten.
        std::fs::remove_file(path).map_err(|e| RecordingError::io(path, "release the name claim", e))?;
        let file = File::create_excl(path).map_err(|e| {
            if path.exists() {
                RecordingError::AlreadyExists { path: path.to_path_buf() }
            } else {
                RecordingError::hdf5(path, "create file", e)
            }
        })?;
        let laid_out = WriteBehind::open(path)
            .map_err(|e| RecordingError::io(path, "open recording file for write-behind", e))
            .and_then(|write_behind| Self::lay_out(file, write_behind, path, meta));
        match laid_out {
            Ok(writer) => Ok(writer),
            Err(e) => {
                // The file is ours; a failed start must not leave a partial "recording" behind.
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Creates the datasets and root attributes in a freshly created file.
    fn lay_out(
        file: File,
        write_behind: WriteBehind,
        path: &Path,
        meta: RecordingMeta,
    ) -> Result<Self, RecordingError> {
        let err = |op| move |e| RecordingError::hdf5(path, op, e);
        let channels = meta.channel_count;
        let chunk_frames = layout::chunk_frames(meta.frames_per_second, channels);
        let chunk_bytes = chunk_frames * channels * std::mem::size_of::<i16>();
        let batch_frames = chunk_frames * (WRITE_BATCH_BYTES / chunk_bytes).max(1);

        // The raw-data chunk cache is disabled because the writer only ever hands
        // HDF5 whole chunks (plus at most one partial chunk per flush): caching them
        // would add a memcpy and delay the write without ever saving a read.
        let samples = file
            .new_dataset::<i16>()
            .chunk((chunk_frames, channels))
            .chunk_cache(0, 0, 1.0)
            .shape((0.., channels))
            .create(layout::SAMPLES)
            .map_err(err("create /samples"))?;
        let frame_index = file
            .new_dataset::<u64>()
            .chunk(chunk_frames)
            .chunk_cache(0, 0, 1.0)
            .shape(0..)
            .create(layout::FRAME_INDEX)
            .map_err(err("create /frame_index"))?;

        let writer = Self {
            path: path.to_path_buf(),
            meta,
            chunk_frames,
            batch_frames,
            handles: Some(Handles { file, samples, frame_index }),
            write_behind,
            buffer_start: 0,
            sample_buf: vec![0; batch_frames * channels],
            index_buf: vec![0; batch_frames],
            buffered: 0,
            extent: 0,
            frames_appended: 0,
            first_frame_index: None,
            last_frame_index: None,
            gap_count: 0,
        };
        writer.write_initial_attributes()?;
        Ok(writer)
    }

    /// Path of the recording file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata the recording was created with.
    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Frames accepted by [`append`](Self::append) so far. Some of them may still be
    /// in the writer's buffer until the next chunk boundary or [`flush`](Self::flush).
    pub fn frames_written(&self) -> u64 {
        self.frames_appended
    }

    /// Discontinuities seen in the frame index so far (including across `append`
    /// calls).
    pub fn gap_count(&self) -> u64 {
        self.gap_count
    }

    /// Rows per HDF5 chunk chosen for this recording.
    pub fn chunk_frames(&self) -> usize {
        self.chunk_frames
    }

    /// Appends `frame_index.len()` frames.
    ///
    /// `samples` is frame-major (`frame_index.len() * channel_count` values, all
    /// channels of the first frame first). `frame_index` holds each frame's device
    /// frame index; any step other than +1 from the previous frame (in this call or
    /// the previous one) counts as one gap.
    ///
    /// Data is copied into an internal buffer and written once a run of whole chunks
    /// (a few MiB) has accumulated, so the cost per call is a `memcpy` most of the
    /// time. Nothing is validated against the file, so this never blocks on I/O except
    /// when a batch is due.
    pub fn append(&mut self, frame_index: &[u64], samples: &[i16]) -> Result<(), RecordingError> {
        let channels = self.meta.channel_count;
        let frames = frame_index.len();
        let expected = frames.checked_mul(channels);
        if expected != Some(samples.len()) {
            return Err(RecordingError::SampleCountMismatch {
                path: self.path.clone(),
                frames,
                channels,
                expected: expected.unwrap_or(usize::MAX),
                actual: samples.len(),
            });
        }
        if frames == 0 {
            return Ok(());
        }

        let mut done = 0;
        while done < frames {
            self.make_room()?;
            let take = self.room().min(frames - done);
            let (index_slots, sample_slots) = self.slots(take);
            index_slots.copy_from_slice(&frame_index[done..done + take]);
            sample_slots.copy_from_slice(&samples[done * channels..(done + take) * channels]);
            self.commit(take)?;
            done += take;
        }
        Ok(())
    }

    /// Appends frames written directly into the writer's buffer, saving the copy
    /// [`append`](Self::append) makes.
    ///
    /// `fill` gets slots for up to `max_frames` frames (fewer if the current batch has less
    /// room; never zero): a frame-index slice and the matching frame-major sample slice. It
    /// fills a prefix of them and returns how many frames it filled; only those are
    /// appended. Returns that count.
    pub fn append_with(
        &mut self,
        max_frames: usize,
        fill: impl FnOnce(&mut [u64], &mut [i16]) -> usize,
    ) -> Result<usize, RecordingError> {
        if max_frames == 0 {
            return Ok(0);
        }
        self.make_room()?;
        let offered = self.room().min(max_frames);
        let (index_slots, sample_slots) = self.slots(offered);
        let filled = fill(index_slots, sample_slots).min(offered);
        self.commit(filled)?;
        Ok(filled)
    }

    /// Free frames in the current batch.
    fn room(&self) -> usize {
        self.batch_frames - self.buffered
    }

    /// Writes a full batch so there is room again. A batch is written as soon as it fills,
    /// so this only writes here when that write failed and is being retried.
    fn make_room(&mut self) -> Result<(), RecordingError> {
        if self.room() == 0 {
            self.write_buffer()?;
            self.retire_whole_chunks();
        }
        Ok(())
    }

    /// The next `frames` free slots of the buffers.
    fn slots(&mut self, frames: usize) -> (&mut [u64], &mut [i16]) {
        let channels = self.meta.channel_count;
        let from = self.buffered;
        (&mut self.index_buf[from..from + frames], &mut self.sample_buf[from * channels..(from + frames) * channels])
    }

    /// Takes `frames` freshly filled slots into the recording, writing the batch once full.
    fn commit(&mut self, frames: usize) -> Result<(), RecordingError> {
        if frames == 0 {
            return Ok(());
        }
        let from = self.buffered;
        let mut prev = self.last_frame_index;
        for &idx in &self.index_buf[from..from + frames] {
            if let Some(p) = prev {
                if p.checked_add(1) != Some(idx) {
                    self.gap_count += 1;
                }
            }
            prev = Some(idx);
        }
        if self.first_frame_index.is_none() {
            self.first_frame_index = Some(self.index_buf[from]);
        }
        self.last_frame_index = prev;
        self.buffered += frames;
        self.frames_appended += frames as u64;
        self.make_room()
    }

    /// Writes every buffered frame, updates the end attributes and flushes the HDF5
    /// file, so that everything appended so far is on disk and a reader opening the
    /// file afterwards sees all of it (with `finalized = 0`).
    ///
    /// A trailing partial chunk is written too but stays buffered, and is rewritten
    /// whole once it fills up; that keeps all later writes chunk-aligned.
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        self.write_buffer()?;
        self.retire_whole_chunks();
        self.write_progress_attributes()?;
        self.handles()?.file.flush().map_err(|e| RecordingError::hdf5(&self.path, "flush file", e))
    }

    /// Flushes, records the final end values, `ended_utc` and `finalized = 1`, and
    /// closes the file.
    pub fn finish(mut self) -> Result<RecordingSummary, RecordingError> {
        self.flush()?;
        let ended = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        {
            let handles = self.handles()?;
            write_str_attr(&handles.file, attr::ENDED_UTC, &ended)
                .and_then(|()| write_attr(&handles.file, attr::FINALIZED, &1u8))
                .and_then(|()| handles.file.flush())
                .map_err(|e| RecordingError::hdf5(&self.path, "finalize attributes", e))?;
        }
        let summary = self.summary();
        let Some(Handles { file, samples, frame_index }) = self.handles.take() else {
            return Err(RecordingError::Format { path: self.path.clone(), reason: "writer already closed".into() });
        };
        drop(samples);
        drop(frame_index);
        file.close().map_err(|e| RecordingError::hdf5(&self.path, "close file", e))?;
        self.write_behind
            .release_reserved()
            .map_err(|e| RecordingError::io(&self.path, "release reserved disk space", e))?;
        Ok(summary)
    }

    fn summary(&self) -> RecordingSummary {
        let (start, end) = self.time_span();
        let duration_frames = end.saturating_sub(start);
        RecordingSummary {
            path: self.path.clone(),
            frames_written: self.frames_appended,
            start_timestamp: start,
            end_timestamp: end,
            duration_frames,
            duration_seconds: duration_frames as f64 / self.meta.frames_per_second,
            gap_count: self.gap_count,
        }
    }

    /// (start_timestamp, end_timestamp) as defined for the attributes.
    fn time_span(&self) -> (u64, u64) {
        match (self.first_frame_index, self.last_frame_index) {
            (Some(first), Some(last)) => (first, last.saturating_add(1)),
            _ => (0, 0),
        }
    }

    fn handles(&self) -> Result<&Handles, RecordingError> {
        // Only reachable if a method is called on a writer whose `finish` failed
        // half-way through close; kept as an error rather than a panic.
        self.handles
            .as_ref()
            .ok_or_else(|| RecordingError::Format { path: self.path.clone(), reason: "writer already closed".into() })
    }

    /// Writes all buffered rows at `buffer_start`, growing both datasets first if needed.
    fn write_buffer(&mut self) -> Result<(), RecordingError> {
        let rows = self.buffered;
        if rows == 0 {
            return Ok(());
        }
        debug_assert_eq!(self.buffer_start % self.chunk_frames as u64, 0, "writes must start on a chunk");
        let channels = self.meta.channel_count;
        let start = self.buffer_start as usize;
        let end = start + rows;
        let path = self.path.as_path();
        let handles = self.handles.as_ref().ok_or_else(|| RecordingError::Format {
            path: path.to_path_buf(),
            reason: "writer already closed".into(),
        })?;

        if end as u64 > self.extent {
            handles.samples.resize((end, channels)).map_err(|e| RecordingError::hdf5(path, "resize /samples", e))?;
            handles.frame_index.resize(end).map_err(|e| RecordingError::hdf5(path, "resize /frame_index", e))?;
            self.extent = end as u64;
        }

        ndview::write_rows(&handles.samples, &self.sample_buf[..rows * channels], start, channels)
            .map_err(|e| RecordingError::hdf5(path, "write /samples", e))?;
        handles
            .frame_index
            .as_writer()
            .write_slice(&self.index_buf[..rows], start..end)
            .map_err(|e| RecordingError::hdf5(path, "write /frame_index", e))?;
        self.write_behind.advance().map_err(|e| RecordingError::io(path, "write back recording data", e))
    }

    /// Drops the whole chunks at the front of the buffer (already written); a trailing
    /// partial chunk stays so that it is rewritten whole later.
    fn retire_whole_chunks(&mut self) {
        let rows = self.buffered;
        let whole = rows - rows % self.chunk_frames;
        if whole == 0 {
            return;
        }
        let channels = self.meta.channel_count;
        self.index_buf.copy_within(whole..rows, 0);
        self.sample_buf.copy_within(whole * channels..rows * channels, 0);
        self.buffered = rows - whole;
        self.buffer_start += whole as u64;
    }

    fn write_initial_attributes(&self) -> Result<(), RecordingError> {
        let handles = self.handles()?;
        let file = &handles.file;
        let created = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let m = &self.meta;
        let channel_count = m.channel_count as u32; // validated <= 1024
        (|| -> hdf5::Result<()> {
            create_attr(file, attr::FRAMES_PER_SECOND, &m.frames_per_second)?;
            create_attr(file, attr::CHANNEL_COUNT, &channel_count)?;
            create_attr(file, attr::UV_PER_SAMPLE_UNIT, &m.uv_per_sample_unit)?;
            create_attr(file, attr::START_TIMESTAMP, &0u64)?;
            create_attr(file, attr::END_TIMESTAMP, &0u64)?;
            create_attr(file, attr::DURATION_FRAMES, &0u64)?;
            create_attr(file, attr::DURATION_SECONDS, &0f64)?;
            create_str_attr(file, attr::CREATED_UTC, &created)?;
            create_str_attr(file, attr::ENDED_UTC, "")?;
            create_str_attr(file, attr::APPLICATION, &m.application)?;
            create_str_attr(file, attr::DEVICE, &m.device)?;
            create_attr(file, attr::GAP_COUNT, &0u64)?;
            create_attr(file, attr::FINALIZED, &0u8)?;
            Ok(())
        })()
        .map_err(|e| RecordingError::hdf5(&self.path, "write initial attributes", e))
    }

    fn write_progress_attributes(&self) -> Result<(), RecordingError> {
        let file = &self.handles()?.file;
        let s = self.summary();
        (|| -> hdf5::Result<()> {
            write_attr(file, attr::START_TIMESTAMP, &s.start_timestamp)?;
            write_attr(file, attr::END_TIMESTAMP, &s.end_timestamp)?;
            write_attr(file, attr::DURATION_FRAMES, &s.duration_frames)?;
            write_attr(file, attr::DURATION_SECONDS, &s.duration_seconds)?;
            write_attr(file, attr::GAP_COUNT, &s.gap_count)?;
            Ok(())
        })()
        .map_err(|e| RecordingError::hdf5(&self.path, "update end attributes", e))
    }
}

impl Drop for RecordingWriter {
    /// Best effort: write whatever is buffered and close, so an error path in the
    /// daemon that drops the writer loses nothing that reached `append`. Errors are
    /// ignored (there is nobody left to report them to) and `finalized` stays 0.
    fn drop(&mut self) {
        if self.handles.is_some() {
            let _ = self.flush();
            self.handles = None;
            let _ = self.write_behind.release_reserved();
        }
    }
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("path", &self.path)
            .field("channel_count", &self.meta.channel_count)
            .field("chunk_frames", &self.chunk_frames)
            .field("frames_written", &self.frames_appended)
            .field("gap_count", &self.gap_count)
            .field("open", &self.handles.is_some())
            .finish()
    }
}

fn create_attr<T: H5Type>(file: &File, name: &str, value: &T) -> hdf5::Result<()> {
    file.new_attr::<T>().create(name)?.write_scalar(value)
}

fn write_attr<T: H5Type>(file: &File, name: &str, value: &T) -> hdf5::Result<()> {
    file.attr(name)?.write_scalar(value)
}

fn to_vlen(value: &str) -> hdf5::Result<VarLenUnicode> {
    // NUL is rejected by RecordingMeta::validate, and timestamps never contain it.
    VarLenUnicode::from_str(value).map_err(|e| hdf5::Error::from(e.to_string()))
}

fn create_str_attr(file: &File, name: &str, value: &str) -> hdf5::Result<()> {
    create_attr(file, name, &to_vlen(value)?)
}

fn write_str_attr(file: &File, name: &str, value: &str) -> hdf5::Result<()> {
    write_attr(file, name, &to_vlen(value)?)
}

/// Writes whole frames from a flat buffer into `/samples` rows, viewing the buffer as a
/// (rows × channels) array without copying.
mod ndview {
    use hdf5::Dataset;

    /// Writes `data` (whole frames of `channels` values) into `dataset` rows starting at
    /// `start_row`.
    pub(super) fn write_rows(dataset: &Dataset, data: &[i16], start_row: usize, channels: usize) -> hdf5::Result<()> {
        let rows = data.len() / channels;
        match ndarray::ArrayView2::from_shape((rows, channels), data) {
            Ok(table) => dataset.as_writer().write_slice(&table, (start_row..start_row + rows, ..)),
            // Only whole frames are ever buffered, so this is a bug, not bad input.
            Err(e) => Err(hdf5::Error::from(format!(
                "internal error: {} buffered samples is not whole frames: {e}",
                data.len()
            ))),
        }
    }
}

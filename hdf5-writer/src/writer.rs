//! The recording writer used by the daemon's recorder thread.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use hdf5::File;

use crate::frames::{FrameRows, FrameSlots, FrameStore};
use crate::layout::{self, attr};
use crate::rows::{ChannelRow, GapReason, GapRow, GroundTruthRow, SpikeRow, StimRow, SPIKE_SNIPPET_SAMPLES};
use crate::tables::{create_stream_group, DataStream, Table};
use crate::write_behind::{NoRoom, WriteBehind, MIN_FILE_SIZE_LIMIT};
use crate::{attrs, swmr, RecordingError, RecordingMeta};

/// What [`RecordingWriter::finish`] reports about the closed recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordingSummary {
    /// The recording file.
    pub path: PathBuf,
    /// Frames that passed through the writer (rows of `/samples` when samples are kept).
    pub frames_written: u64,
    /// Device frame index of the first frame (0 if none was written).
    pub start_timestamp: u64,
    /// Device frame index one past the last frame (0 if none was written).
    pub end_timestamp: u64,
    /// `end_timestamp - start_timestamp`: device time covered, gaps included.
    pub duration_frames: u64,
    /// `duration_frames / frames_per_second`.
    pub duration_seconds: f64,
    /// Rows of `/gaps`.
    pub gap_count: u64,
    /// Rows of `/spikes`.
    pub spikes: u64,
    /// Rows of `/stims`.
    pub stims: u64,
}

/// The open HDF5 objects; `None` in the writer once closed.
struct Open {
    file: File,
    spikes: Table<SpikeRow>,
    stims: Table<StimRow>,
    gaps: Table<GapRow>,
    ground_truth: Option<Table<GroundTruthRow>>,
    streams: Vec<DataStream>,
}

/// Writes one recording file in the layout of [`crate`]: frames, tables, data streams and the
/// root attributes, in SWMR mode.
///
/// Frames are buffered and written in runs of whole chunks, so [`append`](Self::append) can
/// be called with any block size. [`flush`](Self::flush) makes everything appended so far
/// durable and visible; [`finish`](Self::finish) closes the file cleanly. Before every write
/// the writer makes sure the disk has room for it and for closing the file; when it has not,
/// the write is refused with [`RecordingError::DiskFull`] and nothing is lost: `finish` still
/// closes the file with everything appended. Dropping an unfinished writer flushes and closes
/// the file on a best-effort basis but leaves `closed_cleanly = 0`.
pub struct RecordingWriter {
    path: PathBuf,
    meta: RecordingMeta,
    open: Option<Open>,
    frames: FrameStore,
    /// Keeps the file's page-cache footprint to a window behind its end, and reserves room.
    write_behind: WriteBehind,
    /// Frames accepted by `append` (written or buffered).
    frames_appended: u64,
    first_frame: Option<u64>,
    last_frame: Option<u64>,
    /// The next frame-index jump is frames the recorder lost, not the device.
    overrun_pending: bool,
    /// Frames the recorder lost before the first frame arrived (a gap just before it).
    lost_before_start: u64,
}

impl RecordingWriter {
    /// Creates a new recording at `path` with every dataset, table, data stream and root
    /// attribute `meta` asks for, then starts SWMR writing.
    ///
    /// Fails with [`RecordingError::AlreadyExists`] if anything exists at `path` (recordings
    /// are never overwritten), with [`RecordingError::MissingDirectory`] if the parent
    /// directory does not exist, and with [`RecordingError::Io`] if the file cannot be
    /// created (e.g. unwritable directory). A failed start leaves no file behind.
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
            Err(source) => return Err(RecordingError::io(path, "create recording file", source)),
        }
        // HDF5 must create the file itself. Letting it truncate our empty claim would mark the
        // file on ext4 as "replaced by truncation", and ext4 then forces writeback of the whole
        // recording when it is closed (auto_da_alloc), stalling finalize for as long as the
        // disk takes to absorb it. So the claim is released and HDF5 creates the name again
        // exclusively (O_EXCL): if another writer took the name in between, this one fails
        // with AlreadyExists and nothing is overwritten.
        std::fs::remove_file(path).map_err(|e| RecordingError::io(path, "release the name claim", e))?;
        let file = swmr::access()
            .and_then(|fapl| File::with_options().set_access_plist(&fapl)?.create_excl(path))
            .map_err(|e| {
                if path.exists() {
                    RecordingError::AlreadyExists { path: path.to_path_buf() }
                } else {
                    RecordingError::hdf5(path, "create file", e)
                }
            })?;
        let laid_out = WriteBehind::open(path)
            .map_err(|e| RecordingError::io(path, "open recording file for write-behind", e))
            .and_then(|write_behind| match write_behind.max_size() {
                Some(limit) if limit < MIN_FILE_SIZE_LIMIT => {
                    Err(RecordingError::FileSizeLimit { path: path.to_path_buf(), limit, needed: MIN_FILE_SIZE_LIMIT })
                }
                _ => Self::lay_out(file, write_behind, path, meta),
            });
        match laid_out {
            Ok(writer) => Ok(writer),
            Err(e) => {
                // The file is ours; a failed start must not leave a partial "recording" behind.
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Creates every object and attribute in a freshly created file, then starts SWMR.
    fn lay_out(
        file: File,
        write_behind: WriteBehind,
        path: &Path,
        meta: RecordingMeta,
    ) -> Result<Self, RecordingError> {
        let err = |op| move |e| RecordingError::hdf5(path, op, e);
        let frames = FrameStore::create(&file, &meta).map_err(err("create the frame datasets"))?;
        let spikes = Table::create(&file, layout::SPIKES).map_err(err("create /spikes"))?;
        let stims = Table::create(&file, layout::STIMS).map_err(err("create /stims"))?;
        let gaps = Table::create(&file, layout::GAPS).map_err(err("create /gaps"))?;
        let ground_truth = meta
            .ground_truth
            .then(|| Table::create(&file, layout::GROUND_TRUTH))
            .transpose()
            .map_err(err("create /ground_truth"))?;
        let channels: Vec<ChannelRow> = meta.channel_rows();
        file.new_dataset_builder().with_data(&channels).create(layout::CHANNELS).map_err(err("create /channels"))?;
        let stream_group = create_stream_group(&file).map_err(err("create /data_stream"))?;
        let streams = meta
            .data_streams
            .iter()
            .map(|s| DataStream::create(&stream_group, &s.name, &s.application_json))
            .collect::<hdf5::Result<Vec<_>>>()
            .map_err(err("create the data streams"))?;
        write_initial_attributes(&file, &meta).map_err(err("write the root attributes"))?;
        file.start_swmr().map_err(err("start SWMR writing"))?;
        Ok(RecordingWriter {
            path: path.to_path_buf(),
            meta,
            open: Some(Open { file, spikes, stims, gaps, ground_truth, streams }),
            frames,
            write_behind,
            frames_appended: 0,
            first_frame: None,
            last_frame: None,
            overrun_pending: false,
            lost_before_start: 0,
        })
    }

    /// Path of the recording file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata the recording was created with.
    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Frames accepted so far (some may still be buffered until the next chunk boundary or
    /// [`flush`](Self::flush)).
    pub fn frames_written(&self) -> u64 {
        self.frames_appended
    }

    /// Rows in `/gaps` so far.
    pub fn gap_count(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| o.gaps.len())
    }

    /// Rows per HDF5 chunk of the frame-aligned datasets.
    pub fn chunk_frames(&self) -> usize {
        self.frames.chunk_frames()
    }

    /// Device time covered so far, in frames (first frame to one past the last, gaps included).
    pub fn duration_frames(&self) -> u64 {
        let (start, end) = self.time_span();
        end - start
    }

    /// Bytes the file takes on disk so far, plus what is buffered for it.
    pub fn file_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len()) + self.frames.pending_bytes()
    }

    /// Appends frames copied from `rows`. Every slice must hold the same number of frames as
    /// `rows.frame_index`; slices of datasets the file does not keep must be empty.
    pub fn append(&mut self, rows: &FrameRows<'_>) -> Result<(), RecordingError> {
        let frames = rows.frame_index.len();
        let shape = self.frames.shape();
        let mismatch = |what: &'static str, expected: usize, actual: usize| RecordingError::SampleCountMismatch {
            path: self.path.clone(),
            what,
            frames,
            expected,
            actual,
        };
        for (what, columns, slice_len) in [
            ("samples", shape.samples, rows.samples.len()),
            ("analog_in", shape.analog_in, rows.analog_in.len()),
            ("digital_in", shape.digital, rows.digital_in.len()),
            ("digital_out", shape.digital, rows.digital_out.len()),
        ] {
            let expected = frames.saturating_mul(columns);
            if slice_len != expected {
                return Err(mismatch(what, expected, slice_len));
            }
        }
        let mut done = 0;
        while done < frames {
            let take = self.room_for_frames()?.min(frames - done);
            let (s, a, d) = (shape.samples, shape.analog_in, shape.digital);
            let slots = self.frames.slots(take);
            slots.frame_index.copy_from_slice(&rows.frame_index[done..done + take]);
            slots.samples.copy_from_slice(&rows.samples[done * s..(done + take) * s]);
            slots.analog_in.copy_from_slice(&rows.analog_in[done * a..(done + take) * a]);
            slots.digital_in.copy_from_slice(&rows.digital_in[done * d..(done + take) * d]);
            slots.digital_out.copy_from_slice(&rows.digital_out[done * d..(done + take) * d]);
            self.commit(take)?;
            done += take;
        }
        Ok(())
    }

    /// Appends frames of samples only, for files without board streams (`analog_in_channels
    /// = 0`, `digital = false`): [`append`](Self::append) with just the frame index and samples.
    pub fn append_samples(&mut self, frame_index: &[u64], samples: &[i16]) -> Result<(), RecordingError> {
        self.append(&FrameRows { frame_index, samples, ..FrameRows::default() })
    }

    /// Appends frames written directly into the writer's buffers, saving the copy
    /// [`append`](Self::append) makes.
    ///
    /// `fill` gets slots for up to `max_frames` frames (fewer if the current batch has less
    /// room; never zero), fills a prefix of them and returns how many frames it filled; only
    /// those are appended. Returns that count.
    pub fn append_with(
        &mut self,
        max_frames: usize,
        fill: impl FnOnce(FrameSlots<'_>) -> usize,
    ) -> Result<usize, RecordingError> {
        if max_frames == 0 {
            return Ok(0);
        }
        let slots = self.slots(max_frames)?;
        let offered = slots.frame_index.len();
        let filled = fill(slots).min(offered);
        self.commit_slots(filled)?;
        Ok(filled)
    }

    /// The first half of [`append_with`](Self::append_with), for callers that must do
    /// something between filling and committing (such as [`note_overrun`](Self::note_overrun)):
    /// slots for up to `max_frames` frames (at least one if `max_frames > 0`). Fill a prefix,
    /// then call [`commit_slots`](Self::commit_slots) with how many.
    pub fn slots(&mut self, max_frames: usize) -> Result<FrameSlots<'_>, RecordingError> {
        let offered = self.room_for_frames()?.min(max_frames);
        Ok(self.frames.slots(offered))
    }

    /// The second half: takes the first `frames` slots handed out by [`slots`](Self::slots).
    pub fn commit_slots(&mut self, frames: usize) -> Result<(), RecordingError> {
        let frames = frames.min(self.frames.room());
        self.commit(frames)
    }

    /// Says this file continues a recording whose previous frame was `last_frame` (in another
    /// file, before the device went away and came back): the jump from it to this file's
    /// first frame is recorded in `/gaps` (reason "device"). Only before the first frame.
    pub fn follow(&mut self, last_frame: u64) {
        if self.first_frame.is_none() {
            self.last_frame = Some(last_frame);
        }
    }

    /// Tells the writer the recorder lost `frames` before the next ones (it fell behind the
    /// primary cache), so the jump in the frame index is recorded as a recorder overrun. Frames
    /// lost before the file's first frame are recorded as a gap just before it (negative
    /// timestamp), so no loss goes unrecorded.
    pub fn note_overrun(&mut self, frames: u64) {
        if self.first_frame.is_none() {
            self.lost_before_start += frames;
        } else {
            self.overrun_pending = true;
        }
    }

    /// Room in the current batch, writing the full batch first if there is none (only when
    /// an earlier write of it failed and is being retried).
    fn room_for_frames(&mut self) -> Result<usize, RecordingError> {
        if self.frames.is_full() {
            self.write_frames()?;
        }
        Ok(self.frames.room())
    }

    /// Takes `frames` filled slots: tracks the time span, records gaps in the frame index,
    /// and writes the batch once full.
    fn commit(&mut self, frames: usize) -> Result<(), RecordingError> {
        if frames == 0 {
            return Ok(());
        }
        let mut prev = self.last_frame;
        let mut gaps = Vec::new();
        for &idx in self.frames.filled_index(frames) {
            if let Some(p) = prev {
                if p.checked_add(1) != Some(idx) {
                    let reason = if std::mem::take(&mut self.overrun_pending) {
                        GapReason::RecorderOverrun
                    } else {
                        GapReason::Device
                    };
                    gaps.push(GapRow::new((p + 1) as i64, idx as i64 - (p as i64 + 1), reason));
                }
            }
            prev = Some(idx);
        }
        if self.first_frame.is_none() {
            let first = self.frames.filled_index(frames)[0];
            self.first_frame = Some(first);
            let lost = std::mem::take(&mut self.lost_before_start);
            if lost > 0 {
                gaps.insert(0, GapRow::new(first as i64 - lost as i64, lost as i64, GapReason::RecorderOverrun));
            }
        }
        self.last_frame = prev;
        if let Some(open) = &mut self.open {
            gaps.into_iter().for_each(|g| open.gaps.push(g));
        }
        self.frames_appended += frames as u64;
        self.frames.commit(frames);
        if self.frames.is_full() {
            self.write_frames()?;
        }
        Ok(())
    }

    /// Queues a spike detected at device frame `frame` on column `channel`.
    pub fn add_spike(
        &mut self,
        frame: u64,
        channel: u16,
        samples: &[f32; SPIKE_SNIPPET_SAMPLES],
        unit: i32,
    ) -> Result<(), RecordingError> {
        if !self.meta.recording_type.keeps_spikes() {
            return Ok(());
        }
        self.open()?.spikes.push(SpikeRow { timestamp: frame as i64, channel, samples: *samples, unit });
        self.write_tables_if_backed_up()
    }

    /// Queues a stimulation delivered at device frame `frame` on column `channel`.
    pub fn add_stim(&mut self, frame: u64, channel: u16, design_id: u32) -> Result<(), RecordingError> {
        self.open()?.stims.push(StimRow { timestamp: frame as i64, channel, design_id });
        self.write_tables_if_backed_up()
    }

    /// Queues a ground-truth spike at device frame `frame` (files made with `ground_truth`).
    pub fn add_ground_truth(
        &mut self,
        frame: u64,
        channel: u16,
        unit: u32,
        peak_uv: f32,
    ) -> Result<(), RecordingError> {
        let Some(table) = &mut self.open()?.ground_truth else { return Ok(()) };
        table.push(GroundTruthRow { timestamp: frame as i64, channel, unit, peak_uv });
        self.write_tables_if_backed_up()
    }

    /// Queues one entry of the data stream `name` (declared in the meta) at device frame
    /// `frame`; `entry` is its encoding (msgpack, for the CL API's readers).
    pub fn add_data_stream_entry(&mut self, name: &str, frame: u64, entry: &[u8]) -> Result<(), RecordingError> {
        let path = self.path.clone();
        let stream = self
            .open()?
            .streams
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| RecordingError::UnknownDataStream { path, name: name.to_string() })?;
        stream.push(frame, entry);
        self.write_tables_if_backed_up()
    }

    fn open(&mut self) -> Result<&mut Open, RecordingError> {
        let path = &self.path;
        self.open
            .as_mut()
            .ok_or_else(|| RecordingError::Format { path: path.clone(), reason: "writer already closed".into() })
    }

    /// Writes every buffered frame and table row, updates the end attributes and flushes the
    /// file, so everything appended so far is on disk and a reader opening the file (with
    /// `swmr=True` while it is written) sees all of it.
    ///
    /// Fails with [`RecordingError::DiskFull`], having written nothing, when the disk has no
    /// room for it and for closing the file; [`finish`](Self::finish) then still closes the
    /// file with everything appended.
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        self.ensure_room(self.frames.pending_bytes() + self.pending_table_bytes())?;
        self.write_everything()?;
        self.write_behind.advance().map_err(|e| RecordingError::io(&self.path, "write back recording data", e))
    }

    /// Flushes, records the final end values, `ended_utc` and `closed_cleanly = 1`, and closes
    /// the file. Needs no more room than the writer keeps reserved for it.
    pub fn finish(mut self) -> Result<RecordingSummary, RecordingError> {
        self.write_everything()?;
        let ended = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let summary = self.summary();
        let Some(open) = self.open.take() else {
            return Err(RecordingError::Format { path: self.path.clone(), reason: "writer already closed".into() });
        };
        attrs::write_str(&open.file, attr::ENDED_UTC, &ended)
            .and_then(|()| attrs::write(&open.file, attr::CLOSED_CLEANLY, &1u8))
            .and_then(|()| open.file.flush())
            .map_err(|e| RecordingError::hdf5(&self.path, "finalize attributes", e))?;
        self.frames.close();
        let Open { file, spikes, stims, gaps, ground_truth, streams } = open;
        drop((spikes, stims, gaps, ground_truth, streams));
        file.close().map_err(|e| RecordingError::hdf5(&self.path, "close file", e))?;
        self.write_behind
            .release_reserved()
            .map_err(|e| RecordingError::io(&self.path, "release reserved disk space", e))?;
        Ok(summary)
    }

    /// After a write failed: lets go of the file without HDF5 writing anything more to it, so
    /// it stays as the last successful write left it (consistent, thanks to SWMR) for
    /// [`recover`](crate::recover) to close. Returns the file's path.
    pub fn abandon(mut self) -> PathBuf {
        if let Some(open) = self.open.take() {
            let detached = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .and_then(|null| swmr::redirect_descriptor(&open.file, &null));
            if let Err(e) = detached {
                // Closing normally is all that is left; recovery deals with what it leaves.
                let _ = e;
            }
            self.frames.close();
            drop(open);
        }
        let _ = self.write_behind.release_reserved();
        self.path.clone()
    }

    /// The largest size this file can reach: a file-size limit of the process (`ulimit -f`)
    /// or of the file system (FAT32's 4 GiB), less the room kept for closing it; `None` if
    /// nothing limits it. A recorder rolls over to the next file before reaching it.
    pub fn size_limit(&self) -> Option<u64> {
        self.write_behind.size_limit()
    }

    /// What has been recorded so far.
    pub fn summary(&self) -> RecordingSummary {
        let (start, end) = self.time_span();
        let duration_frames = end - start;
        let (spikes, stims, gap_count) =
            self.open.as_ref().map_or((0, 0, 0), |o| (o.spikes.len(), o.stims.len(), o.gaps.len()));
        RecordingSummary {
            path: self.path.clone(),
            frames_written: self.frames_appended,
            start_timestamp: start,
            end_timestamp: end,
            duration_frames,
            duration_seconds: duration_frames as f64 / self.meta.frames_per_second,
            gap_count,
            spikes,
            stims,
        }
    }

    /// (start_timestamp, end_timestamp) as defined for the attributes.
    fn time_span(&self) -> (u64, u64) {
        match (self.first_frame, self.last_frame) {
            (Some(first), Some(last)) => (first, last.saturating_add(1).max(first)),
            _ => (0, 0),
        }
    }

    fn pending_table_bytes(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| {
            o.spikes.pending_bytes()
                + o.stims.pending_bytes()
                + o.gaps.pending_bytes()
                + o.ground_truth.as_ref().map_or(0, |t| t.pending_bytes())
                + o.streams.iter().map(|s| s.pending_bytes()).sum::<u64>()
        })
    }

    /// Refuses, with [`RecordingError::DiskFull`], a write of `bytes` the disk has no room for.
    fn ensure_room(&mut self, bytes: u64) -> Result<(), RecordingError> {
        self.write_behind.ensure_room(bytes).map_err(|NoRoom { needed, available }| RecordingError::DiskFull {
            path: self.path.clone(),
            needed,
            available,
            frames_kept: self.frames_appended,
        })
    }

    /// Writes the full batch of frames (after checking for room) and starts its writeback.
    fn write_frames(&mut self) -> Result<(), RecordingError> {
        self.ensure_room(self.frames.pending_bytes())?;
        self.frames.write().map_err(|e| RecordingError::hdf5(&self.path, "write frames", e))?;
        self.write_behind.advance().map_err(|e| RecordingError::io(&self.path, "write back recording data", e))
    }

    fn write_tables_if_backed_up(&mut self) -> Result<(), RecordingError> {
        let backed_up = self.open.as_ref().is_some_and(|o| {
            o.spikes.is_backed_up()
                || o.stims.is_backed_up()
                || o.ground_truth.as_ref().is_some_and(|t| t.is_backed_up())
                || o.streams.iter().any(|s| s.is_backed_up())
        });
        if backed_up {
            self.ensure_room(self.pending_table_bytes())?;
            self.write_tables()?;
        }
        Ok(())
    }

    fn write_tables(&mut self) -> Result<(), RecordingError> {
        let start = self.time_span().0;
        let path = &self.path;
        let Some(o) = &mut self.open else { return Ok(()) };
        (|| -> hdf5::Result<()> {
            o.spikes.write(start)?;
            o.stims.write(start)?;
            o.gaps.write(start)?;
            if let Some(t) = &mut o.ground_truth {
                t.write(start)?;
            }
            for s in &mut o.streams {
                s.write(start)?;
            }
            Ok(())
        })()
        .map_err(|e| RecordingError::hdf5(path, "write tables", e))
    }

    /// Writes buffered frames and rows and the progress attributes, then flushes HDF5.
    fn write_everything(&mut self) -> Result<(), RecordingError> {
        self.frames.write().map_err(|e| RecordingError::hdf5(&self.path, "write frames", e))?;
        self.write_tables()?;
        let s = self.summary();
        let path = &self.path;
        let Some(o) = &self.open else { return Ok(()) };
        (|| -> hdf5::Result<()> {
            attrs::write(&o.file, attr::START_TIMESTAMP, &s.start_timestamp)?;
            attrs::write(&o.file, attr::END_TIMESTAMP, &s.end_timestamp)?;
            attrs::write(&o.file, attr::DURATION_FRAMES, &s.duration_frames)?;
            attrs::write(&o.file, attr::DURATION_SECONDS, &s.duration_seconds)?;
            attrs::write(&o.file, attr::GAP_COUNT, &s.gap_count)?;
            o.file.flush()
        })()
        .map_err(|e| RecordingError::hdf5(path, "flush", e))
    }
}

impl Drop for RecordingWriter {
    /// Best effort: write whatever is buffered and close, so an error path in the daemon
    /// that drops the writer loses nothing that reached `append`. Errors are ignored (there
    /// is nobody left to report them to) and `closed_cleanly` stays 0.
    fn drop(&mut self) {
        if self.open.is_some() {
            let _ = self.write_everything();
            self.frames.close();
            self.open = None;
            let _ = self.write_behind.release_reserved();
        }
    }
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("path", &self.path)
            .field("channel_count", &self.meta.channel_count)
            .field("chunk_frames", &self.frames.chunk_frames())
            .field("frames_written", &self.frames_appended)
            .field("open", &self.open.is_some())
            .finish()
    }
}

fn write_initial_attributes(file: &File, m: &RecordingMeta) -> hdf5::Result<()> {
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let channel_count = m.channel_count as u32; // validated <= 1024
    attrs::create(file, attr::FRAMES_PER_SECOND, &m.frames_per_second)?;
    attrs::create(file, attr::SAMPLING_FREQUENCY, &m.frames_per_second)?;
    attrs::create(file, attr::CHANNEL_COUNT, &channel_count)?;
    attrs::create(file, attr::UV_PER_SAMPLE_UNIT, &m.uv_per_sample_unit)?;
    attrs::create(file, attr::START_TIMESTAMP, &0u64)?;
    attrs::create(file, attr::END_TIMESTAMP, &0u64)?;
    attrs::create(file, attr::DURATION_FRAMES, &0u64)?;
    attrs::create(file, attr::DURATION_SECONDS, &0f64)?;
    attrs::create_str(file, attr::CREATED_UTC, &created)?;
    attrs::create_str(file, attr::ENDED_UTC, "")?;
    attrs::create_str(file, attr::FILE_FORMAT, &layout::file_format_json())?;
    attrs::create_str(file, attr::SOFTWARE_VERSION, &m.software_version)?;
    attrs::create_str(file, attr::DEVICE, &m.device)?;
    attrs::create_str(file, attr::DEVICE_SERIAL, &m.device_serial)?;
    attrs::create_str(file, attr::CHIPS, &m.chips_json)?;
    attrs::create_str(file, attr::CONFIG, &m.config_json)?;
    attrs::create_str(file, attr::RECORDING_TYPE, m.recording_type.name())?;
    attrs::create_str(file, attr::PORT, &m.port)?;
    attrs::create(file, attr::FILE_SEQUENCE, &m.file_sequence)?;
    attrs::create(file, attr::GAP_COUNT, &0u64)?;
    attrs::create(file, attr::CLOSED_CLEANLY, &0u8)?;
    // Written by recovery only; made now, because nothing can be added to a file in SWMR mode.
    attrs::create_str(file, attr::RECOVERED_UTC, "")?;
    Ok(())
}

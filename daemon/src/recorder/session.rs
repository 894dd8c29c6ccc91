//! The recorder thread: one recording, from its first frame to its last file closed.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ephysd_drivers::GroundTruth;
use ephysd_hdf5::{RecordingError, RecordingSummary, RecordingWriter};
use ephysd_pipeline::{CacheReader, CacheSlots, PipelineCounters, PrimaryCache};

use super::files::FilePlan;
use super::spikes::SpikeQueue;
use super::trigger::{open_runs, Gate, Run};
use super::{CloseReason, RecorderEvent, RecordingFailure, RecordingPlan, RecordingProgress, Rollover};

/// How long the recorder sleeps when it has caught up with the stream, unless a stop wakes
/// it: about 1000 frames at 30 kHz, so each wakeup finds about one full read
/// ([`READ_FRAMES`]), well within any cache. Each wakeup costs the machine tens of µs: at 10 ms
/// the recorder thread used about 10 % more CPU paced at 1024 channels.
const IDLE_WAIT: Duration = Duration::from_millis(33);
/// How often the recorder looks at the stream while it waits for the last spikes of a file.
const SETTLE_POLL: Duration = Duration::from_micros(500);
/// Most frames taken from the cache per read: large enough that per-read overhead vanishes,
/// small enough to stay in the CPU's caches (2 MiB at 1024 channels).
const READ_FRAMES: usize = 1024;
/// How far below a file's size limit the recorder starts the next file: more than one write
/// batch and one read, so the limit is never reached.
const SIZE_LIMIT_HEADROOM: u64 = 8 << 20;
/// Longest a file's closing waits for the detector to pass its last frame (the stream may
/// have stopped, and then no later spike can come).
const SPIKE_SETTLE_WAIT: Duration = Duration::from_millis(250);

/// One file slot: the whole device, or one port.
struct Output {
    columns: Range<usize>,
    gate: Option<Gate>,
    /// The gate was open at the end of the last block.
    gate_open: bool,
    writer: Option<RecordingWriter>,
    /// Files opened so far for this slot.
    files: u32,
    /// Rows of `/gaps` already reported.
    gaps_reported: u64,
    /// Device frames written since ground truth was last added (one contiguous run). Truth is
    /// asked for once per run at the flush: asking costs the same for a block as for a second.
    truth_span: Option<Range<u64>>,
    /// Device frame of the current file's first frame, once it has one: spikes before it
    /// belong to an earlier file.
    file_first_frame: Option<u64>,
}

/// Frames read from the cache, when they are split between files or gated by triggers.
struct Staging {
    index: Vec<u64>,
    amplifier: Vec<i16>,
    analog_in: Vec<u16>,
    digital_in: Vec<u16>,
    digital_out: Vec<u16>,
}

/// Why the loop stopped early.
enum Stop {
    DiskFull(RecordingError),
    Failed(RecordingError),
}

impl From<RecordingError> for Stop {
    fn from(e: RecordingError) -> Self {
        if matches!(e, RecordingError::DiskFull { .. }) {
            Stop::DiskFull(e)
        } else {
            Stop::Failed(e)
        }
    }
}

pub(super) struct Session {
    cache: Arc<PrimaryCache>,
    files: FilePlan,
    rollover: Rollover,
    flush_interval: Duration,
    truth: Option<Arc<dyn GroundTruth>>,
    pace_acquisition: bool,
    counters: Arc<PipelineCounters>,
    events: Sender<RecorderEvent>,
    reader: CacheReader,
    stop_at: Arc<AtomicU64>,
    stop_requested: Arc<AtomicBool>,
    progress: Arc<RecordingProgress>,
    outputs: Vec<Output>,
    /// One ungated file: frames go from the cache straight into the writer's buffers.
    direct: bool,
    staging: Staging,
    runs: Vec<Run>,
    /// The recording's first file has been named.
    named_first: bool,
    first_path: PathBuf,
    /// Spikes waiting for their frames to be written.
    spikes: Option<SpikeQueue>,
    /// The last device frame read from the cache (written, or passed over by a gate).
    written_through: Option<u64>,
    /// The recording's first device frame.
    first_frame: Option<u64>,
    /// The last frame of the recording this one continues (the device went away and came
    /// back), for each output's first file to record the gap from.
    follows: Option<u64>,
}

/// `'A'` → port 0.
fn port_number(letter: Option<char>) -> Option<usize> {
    letter.map(|c| (c as u8).saturating_sub(b'A') as usize)
}

impl Session {
    /// Sets up the recording; without triggers, creates its first files.
    pub fn new(
        plan: RecordingPlan,
        stop_at: Arc<AtomicU64>,
        stop_requested: Arc<AtomicBool>,
        progress: Arc<RecordingProgress>,
    ) -> Result<Self, RecordingError> {
        let outputs: Vec<Output> = plan
            .files
            .outputs
            .iter()
            .map(|o| Output {
                columns: o.columns.clone(),
                gate: Gate::for_port(&plan.triggers, port_number(o.port)),
                gate_open: false,
                writer: None,
                files: 0,
                gaps_reported: 0,
                truth_span: None,
                file_first_frame: None,
            })
            .collect();
        let direct = outputs.len() == 1 && outputs[0].gate.is_none();
        let layout = plan.cache.layout();
        let staged = if direct { 0 } else { READ_FRAMES };
        let staging = Staging {
            index: vec![0; staged],
            amplifier: vec![0; staged * layout.amplifier_channels],
            analog_in: vec![0; staged * layout.analog_in_channels],
            digital_in: vec![0; staged],
            digital_out: vec![0; staged],
        };
        let first_path = plan.files.directory.join(&plan.files.base_name);
        // A recording that continues one the device broke off takes the resumed stream from
        // its first frame; any other starts at the newest.
        let reader = if plan.follows.is_some() { plan.cache.reader_at(0) } else { plan.cache.reader_at_head() };
        let spikes = plan.spikes.map(SpikeQueue::new);
        let mut session = Session {
            cache: plan.cache,
            files: plan.files,
            rollover: plan.rollover,
            flush_interval: plan.flush_interval,
            truth: plan.ground_truth,
            pace_acquisition: plan.pace_acquisition,
            counters: plan.counters,
            events: plan.events,
            reader,
            stop_at,
            stop_requested,
            progress,
            outputs,
            direct,
            staging,
            runs: Vec::new(),
            named_first: false,
            first_path,
            spikes,
            written_through: None,
            first_frame: None,
            follows: plan.follows,
        };
        let ungated: Vec<usize> = (0..session.outputs.len()).filter(|&o| session.outputs[o].gate.is_none()).collect();
        if !ungated.is_empty() {
            session.open_files(&ungated)?;
        }
        if session.pace_acquisition {
            session.cache.set_pace_gate(session.reader.position());
        }
        Ok(session)
    }

    /// The recording's first file, or for a triggered recording the directory and stem its
    /// files will have.
    pub fn first_path(&self) -> PathBuf {
        self.first_path.clone()
    }

    /// Runs the recording until it is stopped or ends on its own, then closes every file.
    pub fn run(mut self) -> Result<Vec<RecordingSummary>, RecordingFailure> {
        let result = self.record();
        if self.pace_acquisition {
            self.cache.clear_pace_gate();
        }
        let ended = match result {
            Ok(()) => return self.close_all(),
            Err(Stop::DiskFull(error)) => {
                // Everything appended fits the room reserved for closing: nothing is lost.
                let kept =
                    self.close_all().unwrap_or_default().into_iter().map(|s| (s.path, s.frames_written)).collect();
                RecordingFailure { error, kept }
            }
            Err(Stop::Failed(error)) => RecordingFailure { kept: self.abandon_all(), error },
        };
        PipelineCounters::add(&self.counters.recording_write_errors, 1);
        tracing::error!("recording ended: {}", ended.summary_line());
        self.progress.set_files(Vec::new());
        let _ = self.events.send(RecorderEvent::Ended { path: self.first_path.clone() });
        Err(ended)
    }

    fn record(&mut self) -> Result<(), Stop> {
        let mut last_flush = Instant::now();
        loop {
            let stopping = self.stop_requested.load(Ordering::Acquire);
            let stop_at = self.stop_at.load(Ordering::Acquire);
            if stopping && self.reader.position() >= stop_at {
                return Ok(());
            }
            let limit = if stopping { stop_at.saturating_sub(self.reader.position()) as usize } else { usize::MAX };
            // Files split at exactly their rollover duration.
            let limit = limit.min(self.frames_until_rollover());
            let (frames, lost) = if self.direct { self.read_direct(limit)? } else { self.read_staged(limit)? };
            if self.pace_acquisition {
                self.cache.set_pace_gate(self.reader.position());
            }
            if lost > 0 {
                PipelineCounters::add(&self.counters.recorder_overrun_frames, lost);
                tracing::warn!(lost_frames = lost, "recorder fell behind the primary cache; the gap is in /gaps");
            }
            if frames == 0 {
                if stopping {
                    // Nothing more will arrive (the stream stopped before stop_at was reached).
                    return Ok(());
                }
                // A stop unparks the thread (see `ActiveRecording::stop`).
                std::thread::park_timeout(IDLE_WAIT);
                continue;
            }
            self.place_spikes()?;
            PipelineCounters::add(&self.counters.frames_recorded, frames as u64);
            self.progress.frames.fetch_add(frames as u64, Ordering::Relaxed);
            self.report_gaps(lost);
            self.roll_over_if_due()?;
            if last_flush.elapsed() >= self.flush_interval {
                for o in 0..self.outputs.len() {
                    self.add_truth(o)?;
                    if let Some(w) = self.outputs[o].writer.as_mut() {
                        w.flush()?;
                    }
                }
                last_flush = Instant::now();
            }
        }
    }

    /// Reads up to `limit` frames straight into the one file's buffers. Returns (frames
    /// written, frames lost before them).
    fn read_direct(&mut self, limit: usize) -> Result<(usize, u64), Stop> {
        let Some(writer) = self.outputs[0].writer.as_mut() else { return Ok((0, 0)) };
        let slots = writer.slots(READ_FRAMES.min(limit))?;
        let outcome = self.reader.read_into(
            &self.cache,
            CacheSlots {
                frame_index: &mut *slots.frame_index,
                amplifier: &mut *slots.samples,
                analog_in: &mut *slots.analog_in,
                digital_in: &mut *slots.digital_in,
                digital_out: &mut *slots.digital_out,
            },
        );
        let n = outcome.frames.min(limit);
        let span = (n > 0).then(|| (slots.frame_index[0], slots.frame_index[n - 1]));
        if outcome.lost > 0 {
            writer.note_overrun(outcome.lost);
        }
        writer.commit_slots(n)?;
        if let Some((first, last)) = span {
            self.outputs[0].file_first_frame.get_or_insert(first);
            self.frames_read(first, last);
            self.note_truth(0, first..last + 1)?;
        }
        Ok((n, outcome.lost))
    }

    /// Reads up to `limit` frames into the staging buffers, then hands each file its columns
    /// of the frames its gate keeps, opening and closing files at trigger edges.
    fn read_staged(&mut self, limit: usize) -> Result<(usize, u64), Stop> {
        let max = READ_FRAMES.min(limit);
        let st = &mut self.staging;
        let outcome = self.reader.read_into(
            &self.cache,
            CacheSlots {
                frame_index: &mut st.index[..max],
                amplifier: &mut st.amplifier,
                analog_in: &mut st.analog_in,
                digital_in: &mut st.digital_in,
                digital_out: &mut st.digital_out,
            },
        );
        let n = outcome.frames.min(limit);
        if n > 0 {
            let (first, last) = (self.staging.index[0], self.staging.index[n - 1]);
            self.frames_read(first, last);
        }
        if outcome.lost > 0 {
            for w in self.outputs.iter_mut().filter_map(|o| o.writer.as_mut()) {
                w.note_overrun(outcome.lost);
            }
        }
        let mut runs = std::mem::take(&mut self.runs);
        for o in 0..self.outputs.len() {
            match self.outputs[o].gate {
                Some(gate) => {
                    let was_open = self.outputs[o].gate_open;
                    let st = &self.staging;
                    self.outputs[o].gate_open =
                        open_runs(&gate, &st.digital_in[..n], &st.digital_out[..n], was_open, &mut runs);
                }
                None => {
                    runs.clear();
                    runs.push(Run { start: 0, end: n, opens: false, closes: false });
                }
            }
            for run in runs.iter().copied() {
                if run.opens {
                    self.open_files(&[o])?;
                }
                self.append_run(o, run.start..run.end)?;
                if run.closes {
                    self.close_file(o, CloseReason::Trigger)?;
                }
            }
        }
        self.runs = runs;
        Ok((n, outcome.lost))
    }

    /// Appends staged rows `rows` (its columns) to output `o`'s file, with their ground truth.
    fn append_run(&mut self, o: usize, rows: Range<usize>) -> Result<(), Stop> {
        let columns = self.outputs[o].columns.clone();
        let Some(writer) = self.outputs[o].writer.as_mut() else { return Ok(()) };
        if rows.is_empty() {
            return Ok(());
        }
        let st = &self.staging;
        let total = self.cache.layout().amplifier_channels;
        let adc = self.cache.layout().analog_in_channels;
        let mut done = rows.start;
        while done < rows.end {
            let slots = writer.slots(rows.end - done)?;
            let k = slots.frame_index.len();
            for i in 0..k {
                let r = done + i;
                slots.frame_index[i] = st.index[r];
                if !slots.samples.is_empty() {
                    let width = columns.len();
                    slots.samples[i * width..(i + 1) * width]
                        .copy_from_slice(&st.amplifier[r * total + columns.start..r * total + columns.end]);
                }
                if !slots.analog_in.is_empty() {
                    slots.analog_in[i * adc..(i + 1) * adc].copy_from_slice(&st.analog_in[r * adc..(r + 1) * adc]);
                }
                if let Some(d) = slots.digital_in.get_mut(i) {
                    *d = st.digital_in[r];
                }
                if let Some(d) = slots.digital_out.get_mut(i) {
                    *d = st.digital_out[r];
                }
            }
            writer.commit_slots(k)?;
            done += k;
        }
        let frames = st.index[rows.start]..st.index[rows.end - 1] + 1;
        self.outputs[o].file_first_frame.get_or_insert(frames.start);
        Ok(self.note_truth(o, frames)?)
    }

    /// Records that output `o`'s file now holds device frames `frames`: extends its run, or,
    /// when the frames do not follow on, adds the truth of the run that ended first.
    fn note_truth(&mut self, o: usize, frames: Range<u64>) -> Result<(), RecordingError> {
        if self.truth.is_none() {
            return Ok(());
        }
        match &mut self.outputs[o].truth_span {
            Some(span) if span.end == frames.start => span.end = frames.end,
            _ => {
                self.add_truth(o)?;
                self.outputs[o].truth_span = Some(frames);
            }
        }
        Ok(())
    }

    /// Adds the ground truth of output `o`'s pending run to its file.
    fn add_truth(&mut self, o: usize) -> Result<(), RecordingError> {
        let out = &mut self.outputs[o];
        let (Some(truth), Some(span), Some(writer)) = (&self.truth, out.truth_span.take(), out.writer.as_mut()) else {
            return Ok(());
        };
        for s in truth.spikes(span) {
            if out.columns.contains(&s.channel) {
                // Stored as the signed trough value, µV.
                writer.add_ground_truth(s.frame, (s.channel - out.columns.start) as u16, s.unit, -s.amplitude_uv)?;
            }
        }
        Ok(())
    }

    /// Starts the next file of each output in `which`, sharing one index.
    fn open_files(&mut self, which: &[usize]) -> Result<(), RecordingError> {
        let paths = self.files.next_paths(!self.named_first)?;
        if !self.named_first {
            self.first_path = paths[which[0]].clone();
            self.named_first = true;
        }
        for &o in which {
            let sequence = self.outputs[o].files + 1;
            let mut writer = self.files.open(o, &paths[o], sequence)?;
            if let (1, Some(last)) = (sequence, self.follows) {
                writer.follow(last);
            }
            tracing::info!(path = %paths[o].display(), "recording file opened");
            let _ = self.events.send(RecorderEvent::FileOpened { path: paths[o].clone() });
            let out = &mut self.outputs[o];
            out.writer = Some(writer);
            out.files = sequence;
            out.gaps_reported = 0;
            out.file_first_frame = None;
        }
        self.publish_files();
        Ok(())
    }

    /// Closes output `o`'s file while the recording goes on.
    fn close_file(&mut self, o: usize, reason: CloseReason) -> Result<(), Stop> {
        self.settle_spikes();
        self.place_spikes()?;
        self.add_truth(o)?;
        let Some(writer) = self.outputs[o].writer.take() else { return Ok(()) };
        let summary = writer.finish()?;
        tracing::info!(path = %summary.path.display(), frames = summary.frames_written, ?reason, "recording file closed");
        let _ = self.events.send(RecorderEvent::FileClosed { summary, reason });
        self.publish_files();
        Ok(())
    }

    /// Starts the next files once the current ones reach the rollover size or duration:
    /// every ungated file together (so a split recording's ports stay in step), a gated
    /// file on its own.
    fn roll_over_if_due(&mut self) -> Result<(), Stop> {
        let Rollover { max_bytes, max_frames } = self.rollover;
        // A file-size limit (`ulimit -f`, FAT32's 4 GiB) is a rollover size the files must keep.
        let due = |w: &RecordingWriter| {
            let bytes = w.file_bytes();
            max_bytes.is_some_and(|b| bytes >= b)
                || max_frames.is_some_and(|f| w.duration_frames() >= f)
                || w.size_limit().is_some_and(|limit| bytes + SIZE_LIMIT_HEADROOM >= limit)
        };
        let ungated: Vec<usize> = (0..self.outputs.len()).filter(|&o| self.outputs[o].gate.is_none()).collect();
        if ungated.iter().any(|&o| self.outputs[o].writer.as_ref().is_some_and(due)) {
            for &o in &ungated {
                self.close_file(o, CloseReason::Rollover)?;
            }
            self.open_files(&ungated)?;
        }
        for o in 0..self.outputs.len() {
            if self.outputs[o].gate.is_some() && self.outputs[o].writer.as_ref().is_some_and(due) {
                self.close_file(o, CloseReason::Rollover)?;
                self.open_files(&[o])?;
            }
        }
        Ok(())
    }

    /// Frames the open files can take before one of them reaches its rollover duration.
    fn frames_until_rollover(&self) -> usize {
        let Some(max) = self.rollover.max_frames else { return usize::MAX };
        self.outputs
            .iter()
            .filter_map(|o| o.writer.as_ref())
            .map(|w| max.saturating_sub(w.duration_frames()).max(1) as usize)
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Tells the control plane about new rows in any file's `/gaps`.
    fn report_gaps(&mut self, lost: u64) {
        for out in &mut self.outputs {
            let Some(w) = &out.writer else { continue };
            if w.gap_count() > out.gaps_reported {
                out.gaps_reported = w.gap_count();
                let _ = self.events.send(RecorderEvent::Gap { path: w.path().to_path_buf(), overrun_frames: lost });
            }
        }
    }

    /// Notes that device frames `first..=last` were read from the cache.
    fn frames_read(&mut self, first: u64, last: u64) {
        self.first_frame.get_or_insert(first);
        self.written_through = Some(last);
    }

    /// Hands every spike whose frame has been written to the file holding it (each output
    /// whose channels include the spike's). A spike whose file was already closed, or that
    /// the ring overwrote before it was read, is counted and logged.
    fn place_spikes(&mut self) -> Result<(), RecordingError> {
        let Some(queue) = self.spikes.as_mut() else { return Ok(()) };
        let mut lost = queue.pull();
        let Some(through) = self.written_through else { return Ok(()) };
        let first = self.first_frame;
        let outputs = &mut self.outputs;
        let (mut result, mut placed) = (Ok(()), 0u64);
        queue.take_through(through, |s| {
            let channel = usize::from(s.channel);
            for out in outputs.iter_mut().filter(|o| o.columns.contains(&channel)) {
                match (out.writer.as_mut(), out.file_first_frame) {
                    (Some(w), Some(start)) if s.frame >= start => {
                        if result.is_ok() {
                            let column = (channel - out.columns.start) as u16;
                            result = w.add_spike(s.frame, column, &s.samples, s.unit);
                            placed += u64::from(w.meta().recording_type.keeps_spikes());
                        }
                    }
                    // A gated file that is closed records nothing, spikes included; frames
                    // before the recording began are not its to keep.
                    _ if out.gate.is_some() || first.is_none_or(|f| s.frame < f) => {}
                    _ => lost += 1,
                }
            }
        });
        PipelineCounters::add(&self.counters.spikes_recorded, placed);
        if lost > 0 {
            PipelineCounters::add(&self.counters.recorder_spikes_lost, lost);
            tracing::warn!(lost_spikes = lost, "spikes not recorded: the recorder fell behind the spike ring");
        }
        result
    }

    /// Waits (briefly) until every spike of the frames read so far can have been pushed: the
    /// cache has moved [`SpikeQueue::settle_frames`] past them.
    fn settle_spikes(&self) {
        let Some(queue) = &self.spikes else { return };
        let target = self.reader.position() + queue.settle_frames();
        let deadline = Instant::now() + SPIKE_SETTLE_WAIT;
        while self.cache.head() < target && Instant::now() < deadline {
            std::thread::sleep(SETTLE_POLL);
        }
    }

    fn publish_files(&self) {
        let files = self.outputs.iter().filter_map(|o| o.writer.as_ref().map(|w| w.path().to_path_buf())).collect();
        self.progress.set_files(files);
    }

    /// Closes every open file cleanly.
    fn close_all(&mut self) -> Result<Vec<RecordingSummary>, RecordingFailure> {
        let mut summaries = Vec::new();
        let mut first_error = None;
        self.settle_spikes();
        if let Err(e) = self.place_spikes() {
            first_error = Some(e);
        }
        for o in 0..self.outputs.len() {
            if let Err(e) = self.add_truth(o) {
                first_error = first_error.or(Some(e));
            }
        }
        for out in &mut self.outputs {
            if let Some(w) = out.writer.take() {
                match w.finish() {
                    Ok(s) => summaries.push(s),
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
        }
        self.progress.set_files(Vec::new());
        match first_error {
            None => Ok(summaries),
            Some(error) => Err(RecordingFailure {
                error,
                kept: summaries.into_iter().map(|s| (s.path, s.frames_written)).collect(),
            }),
        }
    }

    /// After a failed write: lets go of every file as the last successful write left it and
    /// recovers it up to its last whole frame. Returns what each file kept.
    fn abandon_all(&mut self) -> Vec<(PathBuf, u64)> {
        let mut kept = Vec::new();
        for out in &mut self.outputs {
            let Some(w) = out.writer.take() else { continue };
            let path = w.abandon();
            match ephysd_hdf5::recover(&path) {
                Ok(report) => kept.push((path, report.frames)),
                Err(e) => {
                    tracing::error!(path = %path.display(), "could not recover after the failed write: {}", e.summary_line());
                    kept.push((path, 0));
                }
            }
        }
        kept
    }
}

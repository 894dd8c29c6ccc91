//! The replay's read side: a reader thread fills blocks from the file ahead of time; the
//! acquisition thread takes them in order, copies them and gives them back.

use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use ephysd_drivers::{BlockLayout, DeviceError, FrameBlock, ReplaySpec, Source, SourceError};
use ephysd_hdf5::RecordingReader;

/// Blocks read ahead of the acquisition thread.
const READ_AHEAD: usize = 16;

/// What the reader thread hands over.
enum Filled {
    Block(FrameBlock),
    /// The file has no more frames.
    End,
    /// Reading failed.
    Failed(String),
}

pub(super) struct ReplaySource {
    layout: BlockLayout,
    rate: f64,
    accelerated: bool,
    path: String,
    filled: Receiver<Filled>,
    empty: Sender<FrameBlock>,
    started: Option<Instant>,
    delivered: u64,
    ended: bool,
}

impl ReplaySource {
    pub(super) fn start(spec: &ReplaySpec, layout: BlockLayout, rate: f64) -> Result<ReplaySource, DeviceError> {
        let reader = RecordingReader::open(&spec.path)
            .map_err(|e| DeviceError::Replay { path: spec.path.display().to_string(), reason: e.to_string() })?;
        let (filled_tx, filled) = bounded(READ_AHEAD);
        let (empty, empty_rx) = bounded(READ_AHEAD + 2);
        for _ in 0..READ_AHEAD + 2 {
            let _ = empty.try_send(FrameBlock::new(layout));
        }
        std::thread::Builder::new()
            .name("ephysd-replay".into())
            .spawn(move || read_ahead(reader, layout, filled_tx, empty_rx))
            .map_err(|source| DeviceError::Io {
                device: spec.path.display().to_string(),
                operation: "start the replay's reader thread",
                source,
            })?;
        Ok(ReplaySource {
            layout,
            rate,
            accelerated: spec.accelerated,
            path: spec.path.display().to_string(),
            filled,
            empty,
            started: None,
            delivered: 0,
            ended: false,
        })
    }
}

/// The reader thread: reads the file block after block into recycled blocks, frame indices
/// counted from the recording's first frame.
fn read_ahead(reader: RecordingReader, layout: BlockLayout, filled: Sender<Filled>, empty: Receiver<FrameBlock>) {
    let total = reader.frames();
    let mut at = 0u64;
    let mut first_index = None;
    while at < total {
        let Ok(mut block) = empty.recv() else { return };
        let n = (layout.frames_per_block as u64).min(total - at) as usize;
        match fill(&reader, at, n, &mut block, &mut first_index) {
            Ok(()) => {
                if filled.send(Filled::Block(block)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = filled.send(Filled::Failed(e.to_string()));
                return;
            }
        }
        at += n as u64;
    }
    let _ = filled.send(Filled::End);
}

/// Reads `n` frames from row `at` into `block`.
fn fill(
    reader: &RecordingReader,
    at: u64,
    n: usize,
    block: &mut FrameBlock,
    first_index: &mut Option<u64>,
) -> Result<(), ephysd_hdf5::RecordingError> {
    let samples = reader.read_samples(at, n)?;
    block.amplifier[..samples.len()].copy_from_slice(&samples);
    let index = reader.read_frame_index(at, n)?;
    let base = *first_index.get_or_insert(index[0]);
    for (dst, src) in block.frame_index.iter_mut().zip(&index) {
        *dst = src - base;
    }
    if block.layout().analog_in_channels > 0 {
        let a = reader.read_analog_in(at, n)?;
        block.analog_in[..a.len()].copy_from_slice(&a);
    }
    if reader.info().digital {
        block.digital_in[..n].copy_from_slice(&reader.read_digital_in(at, n)?);
        block.digital_out[..n].copy_from_slice(&reader.read_digital_out(at, n)?);
    }
    block.frames = n;
    Ok(())
}

impl Source for ReplaySource {
    fn layout(&self) -> BlockLayout {
        self.layout
    }

    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        if block.layout() != self.layout {
            return Err(SourceError::LayoutMismatch { expected: self.layout, got: block.layout() });
        }
        if self.ended {
            return Err(SourceError::Ended);
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let got = match self.filled.recv() {
            Ok(Filled::Block(b)) => b,
            Ok(Filled::End) | Err(_) => {
                self.ended = true;
                return Err(SourceError::Ended);
            }
            Ok(Filled::Failed(reason)) => {
                self.ended = true;
                return Err(SourceError::Device(DeviceError::Replay { path: self.path.clone(), reason }));
            }
        };
        let n = got.frames;
        let l = self.layout;
        block.frames = n;
        block.frame_index[..n].copy_from_slice(&got.frame_index[..n]);
        block.amplifier[..n * l.amplifier_channels].copy_from_slice(&got.amplifier[..n * l.amplifier_channels]);
        block.analog_in[..n * l.analog_in_channels].copy_from_slice(&got.analog_in[..n * l.analog_in_channels]);
        block.digital_in[..n].copy_from_slice(&got.digital_in[..n]);
        block.digital_out[..n].copy_from_slice(&got.digital_out[..n]);
        let _ = self.empty.try_send(got);
        self.delivered += n as u64;
        if !self.accelerated {
            // Paced to the recording's rate: a block is ready when its last frame's time has come.
            let due = started + Duration::from_secs_f64(self.delivered as f64 / self.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        Ok(())
    }
}

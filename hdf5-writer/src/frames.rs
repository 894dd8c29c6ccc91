//! The frame-aligned datasets (`/samples`, `/analog_in`, `/digital_in`, `/digital_out`,
//! `/frame_index`) and the batch buffers they are written from.
//!
//! Frames are gathered in memory and written in runs of whole chunks, so callers can append
//! any block size without paying HDF5 overhead per call: each write resizes the datasets once
//! and hands HDF5 a few MiB of whole chunks. A trailing partial chunk is written at a flush but
//! kept buffered, and rewritten whole once it fills, so every write starts on a chunk.
//!
//! Within a batch `/frame_index` is written last. A row whose frame index is on disk therefore
//! has all its other columns on disk too, which is what recovery relies on after a crash.

use hdf5::{Dataset, File};

use crate::layout;
use crate::meta::{Compression, RecordingMeta};

/// How much sample data is gathered before it is written, in bytes (rounded down to whole
/// chunks, at least one chunk).
const WRITE_BATCH_BYTES: usize = 4 << 20;

/// Slots for frames the caller fills in place (see
/// [`RecordingWriter::append_with`](crate::RecordingWriter::append_with)). Every slice holds
/// the same number of frames; a dataset the file does not keep has an empty slice.
#[derive(Debug)]
pub struct FrameSlots<'a> {
    /// Device frame index of each frame.
    pub frame_index: &'a mut [u64],
    /// Amplifier samples, frame-major, `channel_count` per frame.
    pub samples: &'a mut [i16],
    /// Analog-input codes, frame-major, `analog_in_channels` per frame.
    pub analog_in: &'a mut [u16],
    /// Digital-input word per frame.
    pub digital_in: &'a mut [u16],
    /// Digital-output word per frame.
    pub digital_out: &'a mut [u16],
}

/// Frames to copy in (see [`RecordingWriter::append`](crate::RecordingWriter::append)): as
/// [`FrameSlots`], read-only. Slices for datasets the file does not keep must be empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameRows<'a> {
    /// Device frame index of each frame.
    pub frame_index: &'a [u64],
    /// Amplifier samples, frame-major.
    pub samples: &'a [i16],
    /// Analog-input codes, frame-major.
    pub analog_in: &'a [u16],
    /// Digital-input word per frame.
    pub digital_in: &'a [u16],
    /// Digital-output word per frame.
    pub digital_out: &'a [u16],
}

/// Columns per frame of each frame-aligned dataset (0: not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameShape {
    pub samples: usize,
    pub analog_in: usize,
    pub digital: usize,
}

impl FrameShape {
    pub fn of(meta: &RecordingMeta) -> Self {
        if !meta.recording_type.keeps_samples() {
            return FrameShape { samples: 0, analog_in: 0, digital: 0 };
        }
        FrameShape {
            samples: meta.channel_count,
            analog_in: meta.analog_in_channels,
            digital: usize::from(meta.digital),
        }
    }

    /// Bytes one frame takes on disk.
    pub fn frame_bytes(&self) -> usize {
        let stored = self.samples > 0;
        2 * (self.samples + self.analog_in + 2 * self.digital) + if stored { 8 } else { 0 }
    }
}

/// The datasets, when frames are stored at all.
struct Datasets {
    samples: Dataset,
    analog_in: Option<Dataset>,
    digital_in: Option<Dataset>,
    digital_out: Option<Dataset>,
    frame_index: Dataset,
}

/// The frame-aligned datasets of one file and their batch buffers.
pub(crate) struct FrameStore {
    shape: FrameShape,
    chunk_frames: usize,
    batch_frames: usize,
    datasets: Option<Datasets>,
    /// Dataset row of the first buffered frame; always a multiple of `chunk_frames`.
    buffer_start: u64,
    /// Frames held in the buffers (the first `buffered` slots of each).
    buffered: usize,
    /// Current extent (rows) of the datasets.
    extent: u64,
    index_buf: Vec<u64>,
    sample_buf: Vec<i16>,
    analog_buf: Vec<u16>,
    din_buf: Vec<u16>,
    dout_buf: Vec<u16>,
}

fn create_2d<T: hdf5::H5Type>(
    file: &File,
    name: &str,
    chunk: usize,
    columns: usize,
    compression: Compression,
) -> hdf5::Result<Dataset> {
    // The raw-data chunk cache is off: the writer only ever hands HDF5 whole chunks (plus at
    // most one partial chunk per flush), so caching them would add a copy and save nothing.
    let builder = file.new_dataset::<T>().chunk((chunk, columns)).chunk_cache(0, 0, 1.0);
    let builder = match compression {
        Compression::Deflate { level } => builder.shuffle().deflate(level),
        Compression::None => builder,
    };
    builder.shape((0.., columns)).create(name)
}

fn create_1d<T: hdf5::H5Type>(file: &File, name: &str, chunk: usize) -> hdf5::Result<Dataset> {
    file.new_dataset::<T>().chunk(chunk).chunk_cache(0, 0, 1.0).shape(0..).create(name)
}

impl FrameStore {
    /// Creates the datasets `meta` asks for in `file` and allocates the buffers once, zeroed,
    /// so filling them never touches fresh memory.
    pub fn create(file: &File, meta: &RecordingMeta) -> hdf5::Result<Self> {
        let shape = FrameShape::of(meta);
        let chunk_frames = layout::chunk_frames(meta.frames_per_second, meta.channel_count);
        let chunk_bytes = chunk_frames * shape.frame_bytes().max(8);
        let batch_frames = chunk_frames * (WRITE_BATCH_BYTES / chunk_bytes).max(1);
        let datasets = if shape.samples > 0 {
            let samples = create_2d::<i16>(file, layout::SAMPLES, chunk_frames, shape.samples, meta.compression)?;
            let analog_in = (shape.analog_in > 0)
                .then(|| create_2d::<u16>(file, layout::ANALOG_IN, chunk_frames, shape.analog_in, Compression::None))
                .transpose()?;
            let digital_in =
                (shape.digital > 0).then(|| create_1d::<u16>(file, layout::DIGITAL_IN, chunk_frames)).transpose()?;
            let digital_out =
                (shape.digital > 0).then(|| create_1d::<u16>(file, layout::DIGITAL_OUT, chunk_frames)).transpose()?;
            let frame_index = create_1d::<u64>(file, layout::FRAME_INDEX, chunk_frames)?;
            Some(Datasets { samples, analog_in, digital_in, digital_out, frame_index })
        } else {
            None
        };
        Ok(FrameStore {
            shape,
            chunk_frames,
            batch_frames,
            datasets,
            buffer_start: 0,
            buffered: 0,
            extent: 0,
            index_buf: vec![0; batch_frames],
            sample_buf: vec![0; batch_frames * shape.samples],
            analog_buf: vec![0; batch_frames * shape.analog_in],
            din_buf: vec![0; batch_frames * shape.digital],
            dout_buf: vec![0; batch_frames * shape.digital],
        })
    }

    pub fn shape(&self) -> FrameShape {
        self.shape
    }

    pub fn chunk_frames(&self) -> usize {
        self.chunk_frames
    }

    /// Free frames in the current batch.
    pub fn room(&self) -> usize {
        self.batch_frames - self.buffered
    }

    /// Bytes the buffered frames take on disk (what the next write needs).
    pub fn pending_bytes(&self) -> u64 {
        (self.buffered * self.shape.frame_bytes()) as u64
    }

    /// The next `frames` free slots (`frames <= room()`).
    pub fn slots(&mut self, frames: usize) -> FrameSlots<'_> {
        let (from, to) = (self.buffered, self.buffered + frames);
        let s = self.shape;
        FrameSlots {
            frame_index: &mut self.index_buf[from..to],
            samples: &mut self.sample_buf[from * s.samples..to * s.samples],
            analog_in: &mut self.analog_buf[from * s.analog_in..to * s.analog_in],
            digital_in: &mut self.din_buf[from * s.digital..to * s.digital],
            digital_out: &mut self.dout_buf[from * s.digital..to * s.digital],
        }
    }

    /// Frame indices of the `frames` slots just filled.
    pub fn filled_index(&self, frames: usize) -> &[u64] {
        &self.index_buf[self.buffered..self.buffered + frames]
    }

    /// Takes `frames` freshly filled slots into the batch. When frames are not stored, the
    /// slots are simply reused.
    pub fn commit(&mut self, frames: usize) {
        if self.datasets.is_some() {
            self.buffered += frames;
        }
    }

    /// Whether the batch is full and must be written before more frames fit.
    pub fn is_full(&self) -> bool {
        self.room() == 0
    }

    /// Writes every buffered row at `buffer_start`, growing the datasets first if needed, then
    /// drops the whole chunks written from the buffer (a trailing partial chunk stays, to be
    /// rewritten whole).
    pub fn write(&mut self) -> hdf5::Result<()> {
        let rows = self.buffered;
        let Some(ds) = &self.datasets else { return Ok(()) };
        if rows == 0 {
            return Ok(());
        }
        debug_assert_eq!(self.buffer_start % self.chunk_frames as u64, 0, "writes must start on a chunk");
        let s = self.shape;
        let start = self.buffer_start as usize;
        let end = start + rows;
        if end as u64 > self.extent {
            ds.samples.resize((end, s.samples))?;
            if let Some(a) = &ds.analog_in {
                a.resize((end, s.analog_in))?;
            }
            for d in [&ds.digital_in, &ds.digital_out].into_iter().flatten() {
                d.resize(end)?;
            }
            ds.frame_index.resize(end)?;
            self.extent = end as u64;
        }
        write_rows(&ds.samples, &self.sample_buf[..rows * s.samples], start, s.samples)?;
        if let Some(a) = &ds.analog_in {
            write_rows(a, &self.analog_buf[..rows * s.analog_in], start, s.analog_in)?;
        }
        if let (Some(din), Some(dout)) = (&ds.digital_in, &ds.digital_out) {
            din.as_writer().write_slice(&self.din_buf[..rows], start..end)?;
            dout.as_writer().write_slice(&self.dout_buf[..rows], start..end)?;
        }
        // The commit record, last.
        ds.frame_index.as_writer().write_slice(&self.index_buf[..rows], start..end)?;
        self.retire_whole_chunks();
        Ok(())
    }

    fn retire_whole_chunks(&mut self) {
        let rows = self.buffered;
        let whole = rows - rows % self.chunk_frames;
        if whole == 0 {
            return;
        }
        let s = self.shape;
        self.index_buf.copy_within(whole..rows, 0);
        self.sample_buf.copy_within(whole * s.samples..rows * s.samples, 0);
        self.analog_buf.copy_within(whole * s.analog_in..rows * s.analog_in, 0);
        self.din_buf.copy_within(whole * s.digital..rows * s.digital, 0);
        self.dout_buf.copy_within(whole * s.digital..rows * s.digital, 0);
        self.buffered = rows - whole;
        self.buffer_start += whole as u64;
    }

    /// Closes the datasets (the file closes once nothing refers to it).
    pub fn close(&mut self) {
        self.datasets = None;
    }
}

/// Writes whole frames from a flat buffer into a 2-D dataset's rows starting at `start_row`,
/// viewing the buffer as a (rows × columns) array without copying.
fn write_rows<T: hdf5::H5Type>(dataset: &Dataset, data: &[T], start_row: usize, columns: usize) -> hdf5::Result<()> {
    let rows = data.len() / columns;
    match ndarray::ArrayView2::from_shape((rows, columns), data) {
        Ok(table) => dataset.as_writer().write_slice(&table, (start_row..start_row + rows, ..)),
        // Only whole frames are ever buffered, so this is a bug, not bad input.
        Err(e) => Err(hdf5::Error::from(format!("internal error: {} values are not whole frames: {e}", data.len()))),
    }
}

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
//!
//! # Direct chunk writes
//!
//! An unfiltered dataset (every one but a deflated `/samples`) stores a chunk as the very bytes
//! of its rows, which are already laid out that way in the batch buffers. Its chunks are
//! therefore written with HDF5's direct chunk write ([`write_chunk`]), which hands the buffer
//! to the file driver, instead of `H5Dwrite`, which first copies each chunk into a zeroed
//! buffer of its own (about 14 % of the writer's time at 1024 channels, copy and zeroing
//! together). A deflated `/samples` goes through `H5Dwrite`, since HDF5 must compress it.
//!
//! A direct write always covers a whole chunk, so a trailing partial chunk goes out with the
//! buffer's rows past the buffered ones, which lie beyond the dataset's extent where no reader
//! sees them. They are zeroed first, so the file holds there exactly what `H5Dwrite` would
//! have put (the fill value, 0). That matters for crash safety: between a write's resize and
//! its `/frame_index` write, rows of `/frame_index` not yet written are inside the extent, and
//! recovery must read them as the end of the whole rows (0 never rises above the frame index
//! before it), not as stale indices of earlier frames. HDF5 indexes a new chunk only after
//! its bytes are written and keeps a rewritten unfiltered chunk at its address (its size never
//! changes), as with `H5Dwrite`, so SWMR readers and recovery see the same sequence of states.

use hdf5::{Dataset, File, H5Type};
use hdf5_sys::h5::hsize_t;
use hdf5_sys::h5d::H5Dwrite_chunk;
use hdf5_sys::h5p::H5P_DEFAULT;

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
    samples: FrameDataset,
    analog_in: Option<FrameDataset>,
    digital_in: Option<FrameDataset>,
    digital_out: Option<FrameDataset>,
    frame_index: FrameDataset,
}

impl Datasets {
    /// Every dataset, in the order a batch is written (`/frame_index` last).
    fn in_write_order(&self) -> impl Iterator<Item = &FrameDataset> {
        [Some(&self.samples), self.analog_in.as_ref(), self.digital_in.as_ref(), self.digital_out.as_ref()]
            .into_iter()
            .flatten()
            .chain([&self.frame_index])
    }
}

/// One frame-aligned dataset: rows of `columns` values, `chunk_frames` rows per chunk.
struct FrameDataset {
    dataset: Dataset,
    /// 2 for `(frames, columns)`, 1 for `(frames,)`.
    rank: usize,
    /// Values per row (1 for a 1-D dataset).
    columns: usize,
    /// Whole chunks are written with [`write_chunk`] (the dataset is unfiltered), not `H5Dwrite`.
    direct: bool,
}

impl FrameDataset {
    /// Wraps a dataset just created for rows of `T`, deciding how its chunks are written.
    fn new<T: H5Type>(dataset: Dataset, columns: usize, chunk_frames: usize) -> hdf5::Result<Self> {
        let rank = dataset.ndim();
        let dcpl = dataset.dcpl()?;
        let chunk = if rank == 2 { vec![chunk_frames, columns] } else { vec![chunk_frames] };
        // A direct write puts the buffer's bytes in the file as they are: only for a dataset no
        // filter transforms, whose elements are `T`'s size (it was created with `T`'s native
        // type) and whose chunk is `chunk_frames` whole rows.
        let direct = (rank == 1 || rank == 2)
            && dcpl.filters().is_empty()
            && dcpl.chunk() == Some(chunk)
            && dataset.dtype()?.size() == std::mem::size_of::<T>();
        Ok(FrameDataset { dataset, rank, columns, direct })
    }

    fn resize(&self, rows: usize) -> hdf5::Result<()> {
        if self.rank == 2 {
            self.dataset.resize((rows, self.columns))
        } else {
            self.dataset.resize(rows)
        }
    }

    /// Writes the first `rows` rows of `buf` (frame-major) at dataset row `start`, a chunk
    /// boundary. With direct writes every chunk goes out whole, a trailing partial one with the
    /// buffer's rows after the written ones: `buf` must hold `rows` rounded up to whole chunks.
    fn write<T: H5Type>(&self, buf: &[T], start: usize, rows: usize, chunk_frames: usize) -> hdf5::Result<()> {
        if !self.direct {
            return self.write_selection(&buf[..rows * self.columns], start);
        }
        let chunk_len = chunk_frames * self.columns;
        let Some(chunks) = buf.get(..rows.div_ceil(chunk_frames) * chunk_len) else {
            return Err(format!(
                "internal error: a buffer of {} values does not hold {rows} rows in whole chunks",
                buf.len()
            )
            .into());
        };
        for (i, chunk) in chunks.chunks_exact(chunk_len).enumerate() {
            write_chunk(&self.dataset, self.rank, (start + i * chunk_frames) as hsize_t, chunk)?;
        }
        Ok(())
    }

    /// Writes whole rows with `H5Dwrite`, viewing a 2-D dataset's rows as a (rows × columns)
    /// array without copying.
    fn write_selection<T: H5Type>(&self, data: &[T], start: usize) -> hdf5::Result<()> {
        let rows = data.len() / self.columns;
        if self.rank == 1 {
            return self.dataset.as_writer().write_slice(data, start..start + rows);
        }
        match ndarray::ArrayView2::from_shape((rows, self.columns), data) {
            Ok(table) => self.dataset.as_writer().write_slice(&table, (start..start + rows, ..)),
            // Only whole frames are ever buffered, so this is a bug, not bad input.
            Err(e) => {
                Err(hdf5::Error::from(format!("internal error: {} values are not whole frames: {e}", data.len())))
            }
        }
    }
}

/// Writes `chunk`, one whole chunk of an unfiltered dataset of rank `rank` (1 or 2) starting at
/// row `first_row`, straight to the file with HDF5's direct chunk write (`H5Dwrite_chunk`).
///
/// Why: `H5Dwrite` copies every chunk into a zeroed buffer of its own before the `pwrite`, even
/// with the chunk cache off; the direct write hands these bytes to the file driver. HDF5 then
/// converts, selects and filters nothing, so the caller must give exactly one chunk's values
/// in the file's element type, for a dataset without filters (what [`FrameDataset::new`]
/// checks), at a row on a chunk boundary within the extent (which HDF5 checks). The call is
/// made under the `hdf5` crate's lock, as libhdf5 is not thread-safe.
fn write_chunk<T: H5Type>(dataset: &Dataset, rank: usize, first_row: hsize_t, chunk: &[T]) -> hdf5::Result<()> {
    // HDF5 reads one coordinate per dimension of the dataset.
    assert!(rank == 1 || rank == 2, "frame datasets have 1 or 2 dimensions, not {rank}");
    let coordinates = [first_row, 0];
    let offset = &coordinates[..rank];
    hdf5::sync::sync(|| {
        // SAFETY: `dataset` holds a live dataset id whose rank is `rank` (checked when it was
        // wrapped), so `offset` has every coordinate HDF5 reads; `chunk` is readable for
        // `size_of_val(chunk)` bytes, which HDF5 only reads, during the call.
        hdf5::h5check(unsafe {
            H5Dwrite_chunk(
                dataset.id(),
                H5P_DEFAULT,
                0,
                offset.as_ptr(),
                std::mem::size_of_val(chunk),
                chunk.as_ptr().cast(),
            )
        })
    })
    .map(drop)
    .map_err(|e| format!("direct write of {} chunk at {offset:?} failed: {e}", dataset.name()).into())
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
            let samples = create_2d::<i16>(file, layout::SAMPLES, chunk_frames, shape.samples, meta.compression)
                .and_then(|d| FrameDataset::new::<i16>(d, shape.samples, chunk_frames))?;
            let analog_in = (shape.analog_in > 0)
                .then(|| {
                    create_2d::<u16>(file, layout::ANALOG_IN, chunk_frames, shape.analog_in, Compression::None)
                        .and_then(|d| FrameDataset::new::<u16>(d, shape.analog_in, chunk_frames))
                })
                .transpose()?;
            let digital = |name| {
                create_1d::<u16>(file, name, chunk_frames).and_then(|d| FrameDataset::new::<u16>(d, 1, chunk_frames))
            };
            let digital_in = (shape.digital > 0).then(|| digital(layout::DIGITAL_IN)).transpose()?;
            let digital_out = (shape.digital > 0).then(|| digital(layout::DIGITAL_OUT)).transpose()?;
            let frame_index = create_1d::<u64>(file, layout::FRAME_INDEX, chunk_frames)
                .and_then(|d| FrameDataset::new::<u64>(d, 1, chunk_frames))?;
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
        if self.datasets.is_none() || rows == 0 {
            return Ok(());
        }
        debug_assert_eq!(self.buffer_start % self.chunk_frames as u64, 0, "writes must start on a chunk");
        self.clear_partial_chunk();
        let Some(ds) = &self.datasets else { return Ok(()) };
        let start = self.buffer_start as usize;
        let end = start + rows;
        if end as u64 > self.extent {
            for d in ds.in_write_order() {
                d.resize(end)?;
            }
            self.extent = end as u64;
        }
        let chunk = self.chunk_frames;
        ds.samples.write(&self.sample_buf, start, rows, chunk)?;
        if let Some(a) = &ds.analog_in {
            a.write(&self.analog_buf, start, rows, chunk)?;
        }
        if let (Some(din), Some(dout)) = (&ds.digital_in, &ds.digital_out) {
            din.write(&self.din_buf, start, rows, chunk)?;
            dout.write(&self.dout_buf, start, rows, chunk)?;
        }
        // The commit record, last.
        ds.frame_index.write(&self.index_buf, start, rows, chunk)?;
        self.retire_whole_chunks();
        Ok(())
    }

    /// Zeroes the buffer rows between the buffered ones and the end of their last chunk, which
    /// a direct write sends to the file with them (see the module documentation).
    fn clear_partial_chunk(&mut self) {
        let (rows, s) = (self.buffered, self.shape);
        let padded = rows.next_multiple_of(self.chunk_frames);
        self.index_buf[rows..padded].fill(0);
        self.sample_buf[rows * s.samples..padded * s.samples].fill(0);
        self.analog_buf[rows * s.analog_in..padded * s.analog_in].fill(0);
        self.din_buf[rows * s.digital..padded * s.digital].fill(0);
        self.dout_buf[rows * s.digital..padded * s.digital].fill(0);
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

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use hdf5::File;
    use hdf5_sys::h5::{haddr_t, hsize_t};

    use super::FrameStore;
    use crate::meta::{Compression, RecordingMeta};
    use crate::swmr;

    const CHANNELS: usize = 4;
    const ANALOG: usize = 2;

    /// 4 channels at 1 kHz: 1000-row chunks; with both board streams.
    fn meta(compression: Compression) -> RecordingMeta {
        RecordingMeta {
            analog_in_channels: ANALOG,
            digital: true,
            compression,
            ..RecordingMeta::new(1_000.0, CHANNELS, 0.195)
        }
    }

    fn sample(row: u64, channel: usize) -> i16 {
        (row as i16).wrapping_mul(5).wrapping_add(channel as i16 * 101)
    }

    fn analog(row: u64, input: usize) -> u16 {
        (row as u16).wrapping_mul(3).wrapping_add(input as u16 + 1)
    }

    /// A file in SWMR writing mode holding the frame datasets `meta` asks for.
    fn swmr_store(dir: &tempfile::TempDir, compression: Compression) -> (File, FrameStore) {
        let fapl = swmr::access().unwrap();
        let file = File::with_options().set_access_plist(&fapl).unwrap().create_excl(dir.path().join("f.h5")).unwrap();
        let store = FrameStore::create(&file, &meta(compression)).unwrap();
        file.start_swmr().unwrap();
        assert_eq!(store.chunk_frames(), 1_000);
        (file, store)
    }

    /// Buffers `rows` (device frame index = row + 7) through the slots, in blocks of 333.
    fn fill(store: &mut FrameStore, rows: Range<u64>) {
        let mut row = rows.start;
        while row < rows.end {
            let n = 333.min((rows.end - row) as usize).min(store.room());
            let slots = store.slots(n);
            for f in 0..n {
                let r = row + f as u64;
                slots.frame_index[f] = r + 7;
                for c in 0..CHANNELS {
                    slots.samples[f * CHANNELS + c] = sample(r, c);
                }
                for a in 0..ANALOG {
                    slots.analog_in[f * ANALOG + a] = analog(r, a);
                }
                slots.digital_in[f] = r as u16 ^ 0x5a5a;
                slots.digital_out[f] = (r as u16).rotate_left(3);
            }
            store.commit(n);
            row += n as u64;
        }
    }

    /// Reads every frame dataset of `file` back and compares it with what `fill` gave for rows
    /// `0..rows`.
    fn assert_holds(file: &File, rows: u64) {
        let samples = file.dataset("samples").unwrap().read_2d::<i16>().unwrap();
        assert_eq!(samples.dim(), (rows as usize, CHANNELS));
        let expected: Vec<i16> = (0..rows).flat_map(|r| (0..CHANNELS).map(move |c| sample(r, c))).collect();
        assert!(samples.iter().copied().eq(expected), "/samples");
        let analog_in = file.dataset("analog_in").unwrap().read_2d::<u16>().unwrap();
        let expected: Vec<u16> = (0..rows).flat_map(|r| (0..ANALOG).map(move |a| analog(r, a))).collect();
        assert!(analog_in.iter().copied().eq(expected), "/analog_in");
        let din = file.dataset("digital_in").unwrap().read_raw::<u16>().unwrap();
        assert_eq!(din, (0..rows).map(|r| r as u16 ^ 0x5a5a).collect::<Vec<_>>(), "/digital_in");
        let dout = file.dataset("digital_out").unwrap().read_raw::<u16>().unwrap();
        assert_eq!(dout, (0..rows).map(|r| (r as u16).rotate_left(3)).collect::<Vec<_>>(), "/digital_out");
        let index = file.dataset("frame_index").unwrap().read_raw::<u64>().unwrap();
        assert_eq!(index, (0..rows).map(|r| r + 7).collect::<Vec<_>>(), "/frame_index");
    }

    /// File address of the chunk of dataset `name` that starts at `offset`.
    fn chunk_address(file: &File, name: &str, offset: &[hsize_t]) -> haddr_t {
        let dataset = file.dataset(name).unwrap();
        let (mut mask, mut addr, mut size) = (0u32, 0 as haddr_t, 0 as hsize_t);
        let rc = hdf5::sync::sync(|| unsafe {
            // SAFETY: a live dataset id, an offset of its rank, and out-parameters that live
            // through the call.
            hdf5_sys::h5d::H5Dget_chunk_info_by_coord(dataset.id(), offset.as_ptr(), &mut mask, &mut addr, &mut size)
        });
        assert!(rc >= 0, "chunk info of /{name} at {offset:?}");
        addr
    }

    #[test]
    fn unfiltered_datasets_are_written_directly_and_deflated_samples_through_h5dwrite() {
        let dir = tempfile::tempdir().unwrap();
        for (compression, samples_direct) in [(Compression::None, true), (Compression::Deflate { level: 1 }, false)] {
            let (file, mut store) = swmr_store(&dir, compression);
            let ds = store.datasets.as_ref().unwrap();
            assert_eq!(ds.samples.direct, samples_direct, "{compression:?}");
            assert!(ds.in_write_order().skip(1).all(|d| d.direct), "the other datasets are never filtered");
            assert_eq!(ds.in_write_order().count(), 5);
            fill(&mut store, 0..2_345);
            store.write().unwrap();
            assert_holds(&file, 2_345);
            fill(&mut store, 2_345..3_001);
            store.write().unwrap();
            assert_holds(&file, 3_001);
            drop((store, file));
            std::fs::remove_file(dir.path().join("f.h5")).unwrap();
        }
    }

    #[test]
    fn a_partial_chunk_is_rewritten_in_place_and_rows_past_the_extent_are_zero() {
        let dir = tempfile::tempdir().unwrap();
        let (file, mut store) = swmr_store(&dir, Compression::None);
        // Chunk 0 whole and 500 rows of chunk 1, which stays buffered.
        fill(&mut store, 0..1_500);
        store.write().unwrap();
        assert_holds(&file, 1_500);
        let samples_at = chunk_address(&file, "samples", &[1_000, 0]);
        let index_at = chunk_address(&file, "frame_index", &[1_000]);
        assert_ne!(samples_at, chunk_address(&file, "samples", &[0, 0]));
        let file_size = file.size();

        // Chunk 1 completed (rewritten whole) and 300 rows of chunk 2.
        fill(&mut store, 1_500..2_300);
        store.write().unwrap();
        assert_holds(&file, 2_300);
        assert_eq!(chunk_address(&file, "samples", &[1_000, 0]), samples_at, "chunk 1 of /samples moved");
        assert_eq!(chunk_address(&file, "frame_index", &[1_000]), index_at, "chunk 1 of /frame_index moved");
        // One new chunk of each dataset (chunk 2), not two.
        let chunk_bytes = 1_000 * (2 * CHANNELS + 2 * ANALOG + 2 + 2 + 8) as u64;
        assert!(file.size() < file_size + 2 * chunk_bytes, "{} -> {} bytes", file_size, file.size());

        // The buffer behind rows 2_300.. held earlier frames (rows 1_300..1_500 of the first
        // batch). A crash between a write's resize and its frame-index write leaves such rows
        // inside the extent: they must read as HDF5's fill value, never as stale frame indices.
        let ds = store.datasets.as_ref().unwrap();
        for d in ds.in_write_order() {
            d.resize(3_000).unwrap();
        }
        let index = file.dataset("frame_index").unwrap().read_raw::<u64>().unwrap();
        assert!(index[2_300..].iter().all(|&v| v == 0), "stale frame indices past the written rows");
        let samples = file.dataset("samples").unwrap().read_2d::<i16>().unwrap();
        assert!(samples.as_slice().unwrap()[2_300 * CHANNELS..].iter().all(|&v| v == 0));
    }
}

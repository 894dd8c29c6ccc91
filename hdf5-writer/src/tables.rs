//! Appendable tables (`/spikes`, `/stims`, `/gaps`, `/ground_truth`) and data streams.
//!
//! Rows arrive one at a time with device frame indices; they are kept in memory and written
//! at the next flush (or once a few thousand are waiting), converted to frames from the file's
//! `start_timestamp` then. Tables and data streams are all created with the file, because a
//! file in SWMR mode cannot gain new objects.

use hdf5::{Dataset, File, Group, H5Type};

use crate::layout;
use crate::rows::DataStreamIndexRow;

/// Rows waiting in memory before a table is written without waiting for the flush.
const MAX_PENDING_ROWS: usize = 4096;

/// A row whose `timestamp` can be rebased from a device frame index to frames from the start.
pub(crate) trait Timestamped: H5Type + Copy {
    fn timestamp_mut(&mut self) -> &mut i64;
}

macro_rules! timestamped {
    ($($row:ty),*) => {$(
        impl Timestamped for $row {
            fn timestamp_mut(&mut self) -> &mut i64 {
                &mut self.timestamp
            }
        }
    )*};
}
timestamped!(crate::SpikeRow, crate::StimRow, crate::GapRow, crate::GroundTruthRow, DataStreamIndexRow);

/// One appendable table.
pub(crate) struct Table<T: Timestamped> {
    dataset: Dataset,
    /// Rows not yet written, timestamps still device frame indices.
    pending: Vec<T>,
    rows: u64,
}

impl<T: Timestamped> Table<T> {
    pub fn create(file: &Group, name: &str) -> hdf5::Result<Self> {
        let dataset = file.new_dataset::<T>().chunk(layout::TABLE_CHUNK_ROWS).shape(0..).create(name)?;
        Ok(Table { dataset, pending: Vec::new(), rows: 0 })
    }

    /// Queues a row whose timestamp is a device frame index.
    pub fn push(&mut self, row: T) {
        self.pending.push(row);
    }

    /// Rows written plus rows waiting.
    pub fn len(&self) -> u64 {
        self.rows + self.pending.len() as u64
    }

    /// Whether enough rows wait that they should be written now.
    pub fn is_backed_up(&self) -> bool {
        self.pending.len() >= MAX_PENDING_ROWS
    }

    /// Bytes the waiting rows take on disk.
    pub fn pending_bytes(&self) -> u64 {
        (self.pending.len() * std::mem::size_of::<T>()) as u64
    }

    /// Writes the waiting rows, their timestamps made relative to `start`.
    pub fn write(&mut self, start: u64) -> hdf5::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for row in &mut self.pending {
            let ts = row.timestamp_mut();
            *ts = ts.wrapping_sub(start as i64);
        }
        let (from, to) = (self.rows as usize, self.rows as usize + self.pending.len());
        self.dataset.resize(to)?;
        self.dataset.as_writer().write_slice(&self.pending, from..to)?;
        self.rows = to as u64;
        self.pending.clear();
        Ok(())
    }
}

/// One named data stream: an index table and the bytes of its entries.
pub(crate) struct DataStream {
    pub name: String,
    index: Table<DataStreamIndexRow>,
    data: Dataset,
    /// Bytes in `data`, written or pending.
    bytes: u64,
    pending: Vec<u8>,
    written: u64,
}

impl DataStream {
    /// Creates `/data_stream/<name>` with its attributes, index and data.
    pub fn create(streams: &Group, name: &str, application_json: &str) -> hdf5::Result<Self> {
        let group = streams.create_group(name)?;
        crate::attrs::create_str(&group, "name", name)?;
        crate::attrs::create_str(&group, "application", application_json)?;
        let index = Table::create(&group, layout::DATA_STREAM_INDEX)?;
        let data = group
            .new_dataset::<u8>()
            .chunk(layout::DATA_STREAM_CHUNK_BYTES)
            .shape(0..)
            .create(layout::DATA_STREAM_DATA)?;
        Ok(DataStream { name: name.to_string(), index, data, bytes: 0, pending: Vec::new(), written: 0 })
    }

    /// Queues one entry (already encoded, msgpack for the CL API's readers) at device frame
    /// `frame`.
    pub fn push(&mut self, frame: u64, entry: &[u8]) {
        let start_index = self.bytes;
        self.bytes += entry.len() as u64;
        self.pending.extend_from_slice(entry);
        self.index.push(DataStreamIndexRow { timestamp: frame as i64, start_index, end_index: self.bytes });
    }

    pub fn is_backed_up(&self) -> bool {
        self.index.is_backed_up() || self.pending.len() >= 1 << 20
    }

    pub fn pending_bytes(&self) -> u64 {
        self.pending.len() as u64 + self.index.pending_bytes()
    }

    /// Writes the pending bytes, then the index rows that point at them.
    pub fn write(&mut self, start: u64) -> hdf5::Result<()> {
        if !self.pending.is_empty() {
            let (from, to) = (self.written as usize, self.written as usize + self.pending.len());
            self.data.resize(to)?;
            self.data.as_writer().write_slice(&self.pending, from..to)?;
            self.written = to as u64;
            self.pending.clear();
        }
        self.index.write(start)
    }
}

/// Creates the `/data_stream` group every file has (empty when no stream is declared).
pub(crate) fn create_stream_group(file: &File) -> hdf5::Result<Group> {
    file.create_group(layout::DATA_STREAM)
}

//! The ephysd recording file format: one HDF5 file per recording.
//!
//! # Layout
//!
//! A superset of the CL API's recording layout (`cl.RecordingView` opens these files), in one
//! layout for every device. Tables are HDF5 compound datasets (PyTables tables, h5py
//! structured arrays); every table `timestamp` counts frames from `start_timestamp`, and
//! `*_timestamp` attributes are device frame indices, not clock times, as in the CL API.
//!
//! | object | type | meaning |
//! | --- | --- | --- |
//! | `/samples` | int16, (frames, channels), chunked | raw amplifier values; × `uV_per_sample_unit` = µV (continuous recordings) |
//! | `/frame_index` | uint64, (frames,) | device frame index of each row: dropped frames show as jumps |
//! | `/analog_in` | uint16, (frames, inputs) | board analog-input codes, frame-aligned (when the device has them) |
//! | `/digital_in`, `/digital_out` | uint16, (frames,) | digital words, frame-aligned |
//! | `/spikes` | table of [`SpikeRow`]: `timestamp` i64, `channel` u16, `samples` f32\[75\], `unit` i32 | detected spikes (spike recordings) |
//! | `/stims` | table of [`StimRow`]: `timestamp`, `channel`, `design_id` | stimulations delivered |
//! | `/gaps` | table of [`GapRow`]: `timestamp`, `length`, `reason` | frames the file does not hold, and why |
//! | `/channels` | table of [`ChannelRow`] | per column: native index, name, port, chip, site position, impedance at start |
//! | `/ground_truth` | table of [`GroundTruthRow`] | spikes the simulated device embedded |
//! | `/data_stream/<name>/` | `index` table of [`DataStreamIndexRow`], `data` uint8; attributes `name`, `application` | an application's data stream, msgpack entries |
//!
//! Root attributes ([`layout::attr`]): the CL API's `frames_per_second`, `sampling_frequency`,
//! `channel_count`, `uV_per_sample_unit`, `start_timestamp`, `end_timestamp`,
//! `duration_frames`, `duration_seconds`, `created_utc`, `ended_utc`, `file_format`; and
//! ephysd's `software_version`, `device`, `device_serial`, `chips`, `config`,
//! `recording_type`, `port`, `file_sequence`, `gap_count`, `closed_cleanly`, `recovered_utc`.
//! All exist from the moment the file is created (end values provisional) and are brought up
//! to date by every [`RecordingWriter::flush`].
//!
//! # Crash safety
//!
//! Files are written in SWMR mode (HDF5 1.10 format, `swmr`): consistent on disk at every
//! instant, readable live with `h5py.File(path, "r", swmr=True)`, and after a crash holding
//! every frame up to the last flush. [`recover`] closes a file whose writer died. Before every
//! write the writer reserves room for it and for closing the file (`write_behind`), so a full
//! disk ends a recording cleanly ([`RecordingError::DiskFull`]) instead of corrupting it.
//!
//! # Page cache
//!
//! The writer starts writeback of each batch as soon as it is written and drops the file's
//! pages from the page cache once they are [`WRITE_BEHIND_WINDOW_BYTES`] behind the end, so
//! a night-long recording neither fills memory with dirty pages nor evicts the rest of the
//! rig PC's cache (see `write_behind`).
//!
//! # Threads
//!
//! [`RecordingWriter`] is `Send`, meant to be owned by one recorder thread. The HDF5
//! library is serialised by a global lock inside `hdf5-metno`.

mod attrs;
mod error;
mod frames;
pub mod layout;
mod meta;
mod naming;
mod reader;
mod recovery;
mod rows;
mod swmr;
mod tables;
mod write_behind;
mod writer;

pub use error::RecordingError;
pub use frames::{FrameRows, FrameSlots};
pub use meta::{
    Compression, DataStreamSpec, RecordingMeta, RecordingType, MAX_ANALOG_IN, MAX_CHANNELS, MAX_FRAMES_PER_SECOND,
};
pub use naming::{recording_file_name, RECORDING_EXTENSION};
pub use reader::{RecordingInfo, RecordingReader};
pub use recovery::{recover, RecoveryReport};
pub use rows::{
    ChannelRow, DataStreamIndexRow, GapReason, GapRow, GroundTruthRow, SpikeRow, StimRow, SPIKE_SNIPPET_SAMPLES,
    UNSORTED,
};
pub use write_behind::{free_space, CLOSING_MARGIN_BYTES, WINDOW_BYTES as WRITE_BEHIND_WINDOW_BYTES};
pub use writer::{RecordingSummary, RecordingWriter};

//! The ephysd recording file format: one HDF5 file per recording.
//!
//! # Layout
//!
//! | object | type | meaning |
//! | --- | --- | --- |
//! | `/samples` | int16, (frames, channels), chunked, frames unlimited | raw amplifier values; × `uV_per_sample_unit` = µV |
//! | `/frame_index` | uint64, (frames,) | device frame index of each row, so dropped frames show up as jumps |
//! | `@frames_per_second` | f64 | |
//! | `@channel_count` | u32 | |
//! | `@uV_per_sample_unit` | f64 | |
//! | `@start_timestamp` | u64 | device frame index of the first row (a frame index, not a clock time, as in the CL API) |
//! | `@end_timestamp` | u64 | device frame index one past the last row |
//! | `@duration_frames` | u64 | `end_timestamp - start_timestamp` (gaps included) |
//! | `@duration_seconds` | f64 | `duration_frames / frames_per_second` |
//! | `@created_utc`, `@ended_utc` | variable-length UTF-8 string | ISO-8601 UTC; `ended_utc` empty until finished |
//! | `@application`, `@device` | variable-length UTF-8 string | producer, and the device the samples came from |
//! | `@gap_count` | u64 | discontinuities in `/frame_index` |
//! | `@finalized` | u8 | 1 after a clean `finish`, else 0 |
//!
//! All attributes exist from the moment the file is created (end values provisional),
//! and are brought up to date by every [`RecordingWriter::flush`]. Files use the
//! default (oldest compatible) HDF5 format so any HDF5 1.8+ reader, h5py and PyTables
//! can open them.
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

mod error;
pub mod layout;
mod meta;
mod naming;
mod reader;
mod write_behind;
mod writer;

pub use error::RecordingError;
pub use meta::{RecordingMeta, MAX_CHANNELS, MAX_FRAMES_PER_SECOND};
pub use naming::{recording_file_name, RECORDING_EXTENSION};
pub use reader::{RecordingInfo, RecordingReader};
pub use write_behind::WINDOW_BYTES as WRITE_BEHIND_WINDOW_BYTES;
pub use writer::{RecordingSummary, RecordingWriter};

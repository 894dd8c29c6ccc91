//! Names and sizes that define the on-disk layout. The writer and the reader both use
//! these, and so can other tools (e.g. `ephysd inspect`) that want to print them.

/// `/samples`: int16, shape (frames, channels), frames dimension unlimited.
pub const SAMPLES: &str = "samples";
/// `/frame_index`: uint64, shape (frames,), the device frame index of each row.
pub const FRAME_INDEX: &str = "frame_index";

/// Root attribute names and their stored HDF5 types.
pub mod attr {
    /// f64, frames per second per channel.
    pub const FRAMES_PER_SECOND: &str = "frames_per_second";
    /// u32, number of columns of `/samples`.
    pub const CHANNEL_COUNT: &str = "channel_count";
    /// f64, microvolts per sample unit.
    pub const UV_PER_SAMPLE_UNIT: &str = "uV_per_sample_unit";
    /// u64, device frame index of the first row (0 while no frame has been flushed). As in
    /// the CL API, `*_timestamp` attributes are frame indices, not clock times; the wall-clock
    /// times are the `*_utc` attributes.
    pub const START_TIMESTAMP: &str = "start_timestamp";
    /// u64, device frame index one past the last row written.
    pub const END_TIMESTAMP: &str = "end_timestamp";
    /// u64, `end_timestamp - start_timestamp` (device time covered, gaps included).
    pub const DURATION_FRAMES: &str = "duration_frames";
    /// f64, `duration_frames / frames_per_second`.
    pub const DURATION_SECONDS: &str = "duration_seconds";
    /// variable-length UTF-8 string, ISO-8601 UTC creation time.
    pub const CREATED_UTC: &str = "created_utc";
    /// variable-length UTF-8 string, ISO-8601 UTC time of `finish`; empty until then.
    pub const ENDED_UTC: &str = "ended_utc";
    /// variable-length UTF-8 string, producer, e.g. `"ephysd 0.1.0"`.
    pub const APPLICATION: &str = "application";
    /// variable-length UTF-8 string, the device the samples came from.
    pub const DEVICE: &str = "device";
    /// u64, number of discontinuities in `/frame_index`.
    pub const GAP_COUNT: &str = "gap_count";
    /// u8, 1 once the writer finished cleanly, 0 before (or after a crash).
    pub const FINALIZED: &str = "finalized";
}

/// Target size of one `/samples` chunk in bytes.
///
/// About 1 MiB is large enough that per-chunk overhead (B-tree entries, one
/// `pwrite` per chunk) is negligible at 61 MB/s, and small enough that a reader
/// pulling a few milliseconds of data does not have to read much more than it needs.
pub const TARGET_CHUNK_BYTES: usize = 1 << 20;

/// Frames per chunk for a recording: about one second of frames, capped so a chunk of
/// `channel_count` int16 columns stays within [`TARGET_CHUNK_BYTES`] (512 frames at
/// 1024 channels; 30 000 would make 60 MiB chunks that no cache could hold).
///
/// `/frame_index` uses the same number of rows per chunk so both datasets grow and
/// are written in lockstep.
pub fn chunk_frames(frames_per_second: f64, channel_count: usize) -> usize {
    let one_second =
        if frames_per_second.is_finite() && frames_per_second >= 1.0 { frames_per_second.round() as usize } else { 1 };
    let cap = TARGET_CHUNK_BYTES / (channel_count.max(1) * std::mem::size_of::<i16>());
    one_second.min(cap).max(1)
}

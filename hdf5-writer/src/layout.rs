//! Names and sizes that define the on-disk layout. The writer, the reader and recovery all
//! use these, and so can other tools (e.g. `ephysd inspect`) that want to print them.

/// `/samples`: int16, shape (frames, channels), frames dimension unlimited.
pub const SAMPLES: &str = "samples";
/// `/frame_index`: uint64, shape (frames,), the device frame index of each row. Written last
/// of the frame-aligned datasets, so a row whose frame index is on disk is whole.
pub const FRAME_INDEX: &str = "frame_index";
/// `/analog_in`: uint16 ADC codes, shape (frames, analog inputs), frame-aligned with `/samples`.
pub const ANALOG_IN: &str = "analog_in";
/// `/digital_in`: uint16 word per frame (bit n = input n).
pub const DIGITAL_IN: &str = "digital_in";
/// `/digital_out`: uint16 word per frame, as the board drove its outputs.
pub const DIGITAL_OUT: &str = "digital_out";
/// `/spikes`: table of [`SpikeRow`](crate::SpikeRow).
pub const SPIKES: &str = "spikes";
/// `/stims`: table of [`StimRow`](crate::StimRow).
pub const STIMS: &str = "stims";
/// `/gaps`: table of [`GapRow`](crate::GapRow): frames the recording does not hold, and why.
pub const GAPS: &str = "gaps";
/// `/channels`: table of [`ChannelRow`](crate::ChannelRow), one per `/samples` column.
pub const CHANNELS: &str = "channels";
/// `/ground_truth`: table of [`GroundTruthRow`](crate::GroundTruthRow), simulated device only.
pub const GROUND_TRUTH: &str = "ground_truth";
/// `/data_stream`: one group per named stream, each with an `index` table and a `data` array.
pub const DATA_STREAM: &str = "data_stream";
/// `/data_stream/<name>/index`: table of [`DataStreamIndexRow`](crate::DataStreamIndexRow).
pub const DATA_STREAM_INDEX: &str = "index";
/// `/data_stream/<name>/data`: uint8, the msgpack-encoded entries back to back.
pub const DATA_STREAM_DATA: &str = "data";

/// Every dataset that holds one row per frame, in the order the writer writes a batch
/// (`/frame_index` last: it is the commit record recovery trims by).
pub const FRAME_ALIGNED: [&str; 5] = [SAMPLES, ANALOG_IN, DIGITAL_IN, DIGITAL_OUT, FRAME_INDEX];

/// The file format's version, in the `file_format` attribute.
pub const FORMAT_VERSION: &str = "ephysd-2";

/// The `file_format` root attribute: as the CL API describes its recordings, as JSON.
pub fn file_format_json() -> String {
    format!("{{\"version\": \"{FORMAT_VERSION}\", \"stim_and_spike_timestamps_relative_to_start\": true}}")
}

/// Root attribute names and their stored HDF5 types.
///
/// The first group is the CL API's (read by `cl.RecordingView`); the rest are ephysd's own.
/// As in the CL API, `*_timestamp` values are device frame indices, not clock times, and
/// every table's `timestamp` column counts frames from `start_timestamp`.
pub mod attr {
    /// f64, frames per second per channel.
    pub const FRAMES_PER_SECOND: &str = "frames_per_second";
    /// f64, the same as `frames_per_second` (the CL API keeps both names).
    pub const SAMPLING_FREQUENCY: &str = "sampling_frequency";
    /// u32, number of columns of `/samples`.
    pub const CHANNEL_COUNT: &str = "channel_count";
    /// f64, microvolts per sample unit.
    pub const UV_PER_SAMPLE_UNIT: &str = "uV_per_sample_unit";
    /// u64, device frame index of the first frame.
    pub const START_TIMESTAMP: &str = "start_timestamp";
    /// u64, device frame index one past the last frame.
    pub const END_TIMESTAMP: &str = "end_timestamp";
    /// u64, `end_timestamp - start_timestamp` (device time covered, gaps included).
    pub const DURATION_FRAMES: &str = "duration_frames";
    /// f64, `duration_frames / frames_per_second`.
    pub const DURATION_SECONDS: &str = "duration_seconds";
    /// variable-length UTF-8 string, ISO-8601 UTC creation time.
    pub const CREATED_UTC: &str = "created_utc";
    /// variable-length UTF-8 string, ISO-8601 UTC time the file was closed; empty until then.
    pub const ENDED_UTC: &str = "ended_utc";
    /// variable-length UTF-8 string, JSON: the format version and timestamp convention.
    pub const FILE_FORMAT: &str = "file_format";

    /// variable-length UTF-8 string, the software that wrote the file (`"ephysd 0.1.0"`).
    pub const SOFTWARE_VERSION: &str = "software_version";
    /// variable-length UTF-8 string, the device the samples came from.
    pub const DEVICE: &str = "device";
    /// variable-length UTF-8 string, the device's serial number (empty if it has none).
    pub const DEVICE_SERIAL: &str = "device_serial";
    /// variable-length UTF-8 string, JSON: the headstage or chip on each port.
    pub const CHIPS: &str = "chips";
    /// variable-length UTF-8 string, JSON: the daemon's effective configuration.
    pub const CONFIG: &str = "config";
    /// variable-length UTF-8 string: `continuous`, `spikes` or `continuous_and_spikes`.
    pub const RECORDING_TYPE: &str = "recording_type";
    /// variable-length UTF-8 string, the port this file holds (`"A"`), empty for all ports.
    pub const PORT: &str = "port";
    /// u32, the file's place in its recording (1 for the first, +1 at every rollover).
    pub const FILE_SEQUENCE: &str = "file_sequence";
    /// u64, rows in `/gaps`.
    pub const GAP_COUNT: &str = "gap_count";
    /// u8, 1 once the writer closed the file cleanly, 0 before (or after a crash).
    pub const CLOSED_CLEANLY: &str = "closed_cleanly";
    /// variable-length UTF-8 string, ISO-8601 UTC time `ephysd recover` closed the file;
    /// empty unless it was recovered.
    pub const RECOVERED_UTC: &str = "recovered_utc";
}

/// Target size of one `/samples` chunk in bytes.
///
/// About 1 MiB is large enough that per-chunk overhead (index entries, one
/// `pwrite` per chunk) is negligible at 61 MB/s, and small enough that a reader
/// pulling a few milliseconds of data does not have to read much more than it needs.
pub const TARGET_CHUNK_BYTES: usize = 1 << 20;

/// Frames per chunk for a recording: about one second of frames, capped so a chunk of
/// `channel_count` int16 columns stays within [`TARGET_CHUNK_BYTES`] (512 frames at
/// 1024 channels; 30 000 would make 60 MiB chunks that no cache could hold).
///
/// Every frame-aligned dataset uses the same number of rows per chunk so they grow and
/// are written in lockstep.
pub fn chunk_frames(frames_per_second: f64, channel_count: usize) -> usize {
    let one_second =
        if frames_per_second.is_finite() && frames_per_second >= 1.0 { frames_per_second.round() as usize } else { 1 };
    let cap = TARGET_CHUNK_BYTES / (channel_count.max(1) * std::mem::size_of::<i16>());
    one_second.min(cap).max(1)
}

/// Rows per chunk of the event tables (`/spikes`, `/stims`, `/gaps`, `/ground_truth` and the
/// data-stream indexes): small enough that a short recording stays small, large enough that
/// an hour of spikes is a few thousand chunks.
pub const TABLE_CHUNK_ROWS: usize = 1024;

/// Bytes per chunk of a data stream's `data` array (as the CL API's writer uses).
pub const DATA_STREAM_CHUNK_BYTES: usize = 1 << 15;

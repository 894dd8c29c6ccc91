//! What a recording file is asked to hold, given by the caller when it is created.

use crate::rows::ChannelRow;
use crate::RecordingError;

/// Most channels one recording may hold (the largest supported headstage set).
pub const MAX_CHANNELS: usize = 1024;

/// Highest supported frame rate in frames per second (the amplifiers' maximum).
pub const MAX_FRAMES_PER_SECOND: f64 = 30_000.0;

/// Most analog inputs a file stores (the boards' BNC ADCs).
pub const MAX_ANALOG_IN: usize = 16;

/// What a recording keeps: Allego's recording types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingType {
    /// The raw samples and the frame-aligned board streams; `/spikes` stays empty.
    #[default]
    Continuous,
    /// Spikes only: no `/samples` and no board streams, a fraction of the size.
    Spikes,
    /// Both.
    ContinuousAndSpikes,
}

impl RecordingType {
    /// Every type, as configuration and messages list them.
    pub const ALL: [RecordingType; 3] =
        [RecordingType::Continuous, RecordingType::Spikes, RecordingType::ContinuousAndSpikes];

    /// The name stored in the `recording_type` attribute and used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            RecordingType::Continuous => "continuous",
            RecordingType::Spikes => "spikes",
            RecordingType::ContinuousAndSpikes => "continuous_and_spikes",
        }
    }

    /// The type called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether frames (samples and board streams) are stored.
    pub fn keeps_samples(self) -> bool {
        !matches!(self, RecordingType::Spikes)
    }

    /// Whether spikes are stored.
    pub fn keeps_spikes(self) -> bool {
        !matches!(self, RecordingType::Continuous)
    }
}

/// How `/samples` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// As is: fastest to write and read.
    #[default]
    None,
    /// Byte shuffle then deflate at `level` (1..=9): typically 30-50 % smaller for neural
    /// signals, at the cost of CPU on the recorder thread.
    Deflate {
        /// 1 (fastest) to 9 (smallest).
        level: u8,
    },
}

/// A data stream a recording carries: declared when the file is created (entries are appended
/// while recording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStreamSpec {
    /// The stream's name: the group under `/data_stream`.
    pub name: String,
    /// The application's attributes for it, as JSON (the group's `application` attribute).
    pub application_json: String,
}

/// Everything the caller knows about a recording before the first frame arrives.
///
/// All of it is written when the file is created, so even a file whose writer crashed before
/// the first flush says what it was meant to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingMeta {
    /// Device frame rate (frames per second, per channel): finite, `> 0`, `<= 30_000`.
    pub frames_per_second: f64,
    /// Columns of `/samples`, `1..=1024`. Fixed for the file.
    pub channel_count: usize,
    /// Microvolts per sample unit (0.195 for the Intan amplifiers): finite and `> 0`.
    pub uv_per_sample_unit: f64,
    /// The software that writes the file, conventionally `"ephysd <version>"`.
    pub software_version: String,
    /// The device the samples come from (its name, as status shows it).
    pub device: String,
    /// The device's serial number; empty if it has none.
    pub device_serial: String,
    /// JSON describing the headstage or chip on each port.
    pub chips_json: String,
    /// JSON of the effective configuration the recording was made with.
    pub config_json: String,
    /// What the file keeps.
    pub recording_type: RecordingType,
    /// The port this file holds (`"A"`) when recordings are split by port; empty otherwise.
    pub port: String,
    /// The file's place in its recording: 1, then +1 at every rollover.
    pub file_sequence: u32,
    /// One row per `/samples` column; empty for default rows (column `i` is native channel
    /// `i`, nothing known about it).
    pub channels: Vec<ChannelRow>,
    /// Columns of `/analog_in` (0: no `/analog_in`). Ignored unless samples are kept.
    pub analog_in_channels: usize,
    /// Whether `/digital_in` and `/digital_out` are kept. Ignored unless samples are kept.
    pub digital: bool,
    /// Whether the file has a `/ground_truth` table (the simulated device knows its spikes).
    pub ground_truth: bool,
    /// The data streams the file carries.
    pub data_streams: Vec<DataStreamSpec>,
    /// How `/samples` is stored.
    pub compression: Compression,
}

impl RecordingMeta {
    /// A continuous recording of `channel_count` channels at `frames_per_second`, with
    /// nothing else known: no board streams, no data streams, default channel rows.
    pub fn new(frames_per_second: f64, channel_count: usize, uv_per_sample_unit: f64) -> Self {
        RecordingMeta {
            frames_per_second,
            channel_count,
            uv_per_sample_unit,
            software_version: String::new(),
            device: String::new(),
            device_serial: String::new(),
            chips_json: "[]".into(),
            config_json: "{}".into(),
            recording_type: RecordingType::Continuous,
            port: String::new(),
            file_sequence: 1,
            channels: Vec::new(),
            analog_in_channels: 0,
            digital: false,
            ground_truth: false,
            data_streams: Vec::new(),
            compression: Compression::None,
        }
    }

    /// Checks every field against the supported ranges.
    ///
    /// Called by [`RecordingWriter::create`](crate::RecordingWriter::create) before any
    /// file is touched, so a bad configuration never leaves an empty file behind. The error
    /// names the field and the allowed range so it can be shown to an operator as is.
    pub fn validate(&self) -> Result<(), RecordingError> {
        let invalid = |field, value: String, allowed| Err(RecordingError::InvalidMeta { field, value, allowed });
        if !(1..=MAX_CHANNELS).contains(&self.channel_count) {
            return invalid("channel_count", self.channel_count.to_string(), "1..=1024");
        }
        let fps = self.frames_per_second;
        if !fps.is_finite() || fps <= 0.0 || fps > MAX_FRAMES_PER_SECOND {
            return invalid("frames_per_second", fps.to_string(), "finite, > 0 and <= 30000");
        }
        let uv = self.uv_per_sample_unit;
        if !uv.is_finite() || uv <= 0.0 {
            return invalid("uv_per_sample_unit", uv.to_string(), "finite and > 0");
        }
        if !self.channels.is_empty() && self.channels.len() != self.channel_count {
            return invalid("channels", format!("{} rows", self.channels.len()), "none, or one row per channel");
        }
        if self.analog_in_channels > MAX_ANALOG_IN {
            return invalid("analog_in_channels", self.analog_in_channels.to_string(), "0..=16");
        }
        if self.file_sequence == 0 {
            return invalid("file_sequence", "0".into(), "1 or more");
        }
        if let Compression::Deflate { level } = self.compression {
            if !(1..=9).contains(&level) {
                return invalid("compression level", level.to_string(), "1..=9");
            }
        }
        // HDF5 strings are C strings: an interior NUL would silently truncate them.
        for (field, value) in [
            ("software_version", &self.software_version),
            ("device", &self.device),
            ("device_serial", &self.device_serial),
            ("chips_json", &self.chips_json),
            ("config_json", &self.config_json),
            ("port", &self.port),
        ] {
            if value.contains('\0') {
                return invalid(field, format!("{value:?}"), "any UTF-8 text without NUL characters");
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for stream in &self.data_streams {
            let ok = !stream.name.is_empty()
                && stream.name.len() <= 64
                && !stream.name.contains(['/', '\0', '.'])
                && !names.contains(&stream.name.as_str());
            if !ok {
                return invalid(
                    "data_streams",
                    format!("{:?}", stream.name),
                    "distinct names of 1..=64 characters without '/', '.' or NUL",
                );
            }
            if stream.application_json.contains('\0') {
                return invalid("data_streams", format!("{:?} attributes", stream.name), "text without NUL");
            }
            names.push(&stream.name);
        }
        Ok(())
    }

    /// The channel rows the file stores: the given ones, or the defaults.
    pub(crate) fn channel_rows(&self) -> Vec<ChannelRow> {
        if !self.channels.is_empty() {
            return self.channels.clone();
        }
        (0..self.channel_count).map(|i| ChannelRow::new(i as u32, &format!("ch{i:04}"), "", 0)).collect()
    }
}

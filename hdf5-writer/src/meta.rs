//! Recording metadata supplied by the caller when a recording starts.

use crate::RecordingError;

/// Most channels one recording may hold (the largest supported headstage set).
pub const MAX_CHANNELS: usize = 1024;

/// Highest supported frame rate in frames per second (the amplifiers' maximum).
pub const MAX_FRAMES_PER_SECOND: f64 = 30_000.0;

/// What the caller knows about a recording before the first sample arrives.
///
/// Everything here is written as root attributes at creation time, so even a file
/// whose writer crashed before the first flush says what it was meant to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingMeta {
    /// Device frame rate (frames per second, per channel). Must be finite, `> 0` and
    /// `<= 30_000`.
    pub frames_per_second: f64,
    /// Channels per frame, `1..=1024`. Fixed for the whole recording: `/samples` has
    /// exactly this many columns.
    pub channel_count: usize,
    /// Microvolts per sample unit (0.195 for the Intan-style amplifiers): stored so a
    /// reader can convert without knowing the hardware. Must be finite and `> 0`.
    pub uv_per_sample_unit: f64,
    /// Producer identification, conventionally `"ephysd <version>"`.
    pub application: String,
    /// Name of the device the samples came from (its description, as status shows it).
    pub device: String,
}

impl RecordingMeta {
    /// Checks every field against the supported ranges.
    ///
    /// Called by [`RecordingWriter::create`](crate::RecordingWriter::create) before any
    /// file is touched, so a bad configuration never leaves an empty file behind.
    /// The error names the field and the allowed range so it can be shown to an
    /// operator as is.
    pub fn validate(&self) -> Result<(), RecordingError> {
        if !(1..=MAX_CHANNELS).contains(&self.channel_count) {
            return Err(RecordingError::InvalidMeta {
                field: "channel_count",
                value: self.channel_count.to_string(),
                allowed: "1..=1024",
            });
        }
        let fps = self.frames_per_second;
        if !fps.is_finite() || fps <= 0.0 || fps > MAX_FRAMES_PER_SECOND {
            return Err(RecordingError::InvalidMeta {
                field: "frames_per_second",
                value: fps.to_string(),
                allowed: "finite, > 0 and <= 30000",
            });
        }
        let uv = self.uv_per_sample_unit;
        if !uv.is_finite() || uv <= 0.0 {
            return Err(RecordingError::InvalidMeta {
                field: "uv_per_sample_unit",
                value: uv.to_string(),
                allowed: "finite and > 0",
            });
        }
        // HDF5 strings are C strings: an interior NUL would silently truncate them.
        for (field, value) in [("application", &self.application), ("device", &self.device)] {
            if value.contains('\0') {
                return Err(RecordingError::InvalidMeta {
                    field,
                    value: format!("{value:?}"),
                    allowed: "any UTF-8 text without NUL characters",
                });
            }
        }
        Ok(())
    }
}

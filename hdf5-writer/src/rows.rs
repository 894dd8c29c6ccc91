//! The rows of the recording's tables, as stored: plain `#[repr(C)]` structs that map to HDF5
//! compound types (read by PyTables, and so by `cl.RecordingView`, as tables; by h5py as
//! structured arrays).
//!
//! Every `timestamp` column counts frames from the file's `start_timestamp`, as the CL API's
//! recordings do; the writer takes device frame indices and subtracts.

use hdf5::types::FixedAscii;
use hdf5::H5Type;

/// Samples in a spike snippet: 25 before the threshold crossing and 50 from it, as the CL API
/// defines them (at 25 kHz; 1 ms before and 2 ms from at other rates, in 75 samples).
pub const SPIKE_SNIPPET_SAMPLES: usize = 75;

/// Unit label of a spike no sorter has assigned.
pub const UNSORTED: i32 = -1;

/// One detected spike.
#[derive(H5Type, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct SpikeRow {
    /// Frames from `start_timestamp` to the threshold crossing.
    pub timestamp: i64,
    /// Column of `/samples` (and row of `/channels`) the spike was detected on.
    pub channel: u16,
    /// The snippet around the crossing, mean-centred, µV.
    pub samples: [f32; SPIKE_SNIPPET_SAMPLES],
    /// Unit label from the sorter, [`UNSORTED`] if none.
    pub unit: i32,
}

/// One stimulation delivered.
#[derive(H5Type, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct StimRow {
    /// Frames from `start_timestamp` to the first frame of the pulse.
    pub timestamp: i64,
    /// Column of `/samples` stimulated.
    pub channel: u16,
    /// The stimulation design the pulse followed.
    pub design_id: u32,
}

/// Frames the recording does not hold, and why.
#[derive(H5Type, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct GapRow {
    /// Frames from `start_timestamp` to the first missing frame.
    pub timestamp: i64,
    /// How many frames are missing.
    pub length: i64,
    /// Why (see [`GapReason`]).
    pub reason: FixedAscii<24>,
}

/// Why frames are missing from a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The device's frame index jumped: the device (or its USB link) dropped them.
    Device,
    /// The recorder fell further behind than the primary cache holds.
    RecorderOverrun,
}

impl GapReason {
    /// The text stored in `/gaps`.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Device => "device",
            GapReason::RecorderOverrun => "recorder overrun",
        }
    }
}

impl GapRow {
    /// A gap of `length` frames at `timestamp` (frames from the file's start).
    pub fn new(timestamp: i64, length: i64, reason: GapReason) -> Self {
        GapRow { timestamp, length, reason: ascii(reason.as_str()) }
    }
}

/// One `/samples` column: where it comes from and where it sits.
#[derive(H5Type, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct ChannelRow {
    /// The amplifier channel's index in the device's frame.
    pub native_index: u32,
    /// Its name (`A-000`).
    pub name: FixedAscii<16>,
    /// Its headstage port (`A`..`H`).
    pub port: FixedAscii<4>,
    /// The chip on the port it belongs to, 0-based.
    pub chip: u16,
    /// Probe site position, µm (NaN when the probe map is unknown).
    pub x_um: f32,
    /// Probe site position, µm (NaN when the probe map is unknown).
    pub y_um: f32,
    /// Electrode impedance magnitude when the recording started, ohms (NaN if not measured).
    pub impedance_ohms: f32,
    /// Electrode impedance phase when the recording started, degrees (NaN if not measured).
    pub impedance_phase_deg: f32,
}

impl ChannelRow {
    /// A channel with its identity and no position or impedance known.
    pub fn new(native_index: u32, name: &str, port: &str, chip: u16) -> Self {
        ChannelRow {
            native_index,
            name: ascii(name),
            port: ascii(port),
            chip,
            x_um: f32::NAN,
            y_um: f32::NAN,
            impedance_ohms: f32::NAN,
            impedance_phase_deg: f32::NAN,
        }
    }
}

/// One spike the simulated device embedded in the signal.
#[derive(H5Type, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct GroundTruthRow {
    /// Frames from `start_timestamp` to the spike's trough on its peak channel.
    pub timestamp: i64,
    /// Column of `/samples` of the unit's peak channel.
    pub channel: u16,
    /// The simulated unit.
    pub unit: u32,
    /// Trough depth on the peak channel, µV.
    pub peak_uv: f32,
}

/// Where one data-stream entry's bytes are in the stream's `data` array.
#[derive(H5Type, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct DataStreamIndexRow {
    /// Frames from `start_timestamp` the entry belongs to.
    pub timestamp: i64,
    /// Index of its first byte in `data`.
    pub start_index: u64,
    /// Index one past its last byte in `data`.
    pub end_index: u64,
}

/// `text` as a fixed-size ASCII field: non-ASCII characters become `?` and anything past the
/// field's size is cut (names and reasons are short by construction).
pub(crate) fn ascii<const N: usize>(text: &str) -> FixedAscii<N> {
    let bytes: Vec<u8> = text.chars().take(N).map(|c| if c.is_ascii() && c != '\0' { c as u8 } else { b'?' }).collect();
    FixedAscii::from_ascii(&bytes).expect("ASCII and within capacity by construction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_keep_what_fits_as_ascii() {
        assert_eq!(ascii::<8>("A-001").as_str(), "A-001");
        assert_eq!(ascii::<4>("µV-channel").as_str(), "?V-c");
        assert_eq!(GapRow::new(5, 7, GapReason::RecorderOverrun).reason.as_str(), "recorder overrun");
    }
}

//! What a device can do, described once when it is opened.
//!
//! Status, channel metadata and request validation above the drivers are all answered from
//! this description, so the daemon never asks "which kind of board is this?".

use crate::frame::BlockLayout;

/// Capabilities and shape of an opened device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceDescription {
    /// Human-readable name, shown in status and written into recordings.
    pub name: String,
    /// The device's name in `device.backbone` (lower kebab case, e.g. `sim-spikes`).
    pub backbone: &'static str,
    /// Serial number of the hardware, if it has one.
    pub serial: Option<String>,
    /// The sample rate the device runs at, frames per second.
    pub sample_rate_hz: f64,
    /// Every sample rate the device can be set to.
    pub sample_rates_hz: &'static [f64],
    /// Shape of every block its streams deliver (amplifier, aux and analog-in channels).
    pub layout: BlockLayout,
    /// The headstage ports with amplifier channels, in channel order.
    pub ports: Vec<PortDescription>,
    /// Digital input lines.
    pub digital_in_channels: usize,
    /// Digital output lines.
    pub digital_out_channels: usize,
    /// Analog outputs (DACs).
    pub analog_out_channels: usize,
    /// Whether [`Control::stimulate`](crate::Control::stimulate) can deliver current.
    pub can_stimulate: bool,
    /// Whether [`Control::measure_impedance`](crate::Control::measure_impedance) works.
    pub can_measure_impedance: bool,
    /// Whether the device produces frames as fast as they are read instead of at its own
    /// rate (an accelerated simulation): the pipeline must then be paced by its consumer.
    pub free_running: bool,
    /// Whether this is the built-in simulated device, whose electrodes lie along one straight
    /// shank per port (the geometry its neighbouring-channel units assume).
    pub simulated: bool,
}

/// One headstage port and the amplifier channels behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortDescription {
    /// Port number, 0 = A, 1 = B, ...
    pub port: usize,
    /// Index of the port's first amplifier channel in every frame.
    pub first_channel: usize,
    /// Amplifier channels on the port.
    pub channels: usize,
    /// What is plugged in (chip or headstage model).
    pub headstage: String,
}

impl PortDescription {
    /// The port's letter as printed on the board (A..H).
    pub fn letter(&self) -> char {
        (b'A' + self.port as u8) as char
    }
}

impl DeviceDescription {
    /// Amplifier channels across all ports.
    pub fn amplifier_channels(&self) -> usize {
        self.layout.amplifier_channels
    }
}

//! The simulated device as a [`Device`](crate::Device): its description, its streams and its
//! control side.

use std::sync::Arc;

use super::config::{SimConfig, SimConfigError};
use super::outputs::{OutputPlayer, Outputs, ANALOG_OUT_CHANNELS, STIM_QUEUE_CAPACITY};
use super::rng::{splitmix64, Rng};
use super::source::SimulatedSource;
use crate::control::{Control, ControlError, Impedance, StimPulse, ANALOG_OUT_FULL_SCALE_V};
use crate::description::{DeviceDescription, PortDescription};
use crate::device::{Backend, DeviceError, GroundTruth};
use crate::rates::{format_rate, INTAN_SAMPLE_RATES};
use crate::source::Source;

/// Amplifier channels per headstage port, as on Intan's 1024-channel controllers (8 × 128).
pub const CHANNELS_PER_PORT: usize = 128;
/// Median electrode impedance of the simulated probe at 1 kHz, ohms.
pub const MEDIAN_IMPEDANCE_OHMS: f64 = 400e3;

/// The simulated device: a Rhythm-style board with simulated headstages on its ports.
pub struct SimulatedDevice {
    config: SimConfig,
    outputs: Arc<Outputs>,
    /// The queue into the running stream's source (`None` before the first stream).
    stims: Option<rtrb::Producer<StimPulse>>,
    /// The ground truth of the stream started last.
    truth: Option<Arc<dyn GroundTruth>>,
}

impl SimulatedDevice {
    /// A simulated device for `config` (validated here; no tables are built until a stream
    /// starts).
    pub fn new(config: SimConfig) -> Result<Self, SimConfigError> {
        config.validate()?;
        let rate = crate::canonical_sample_rate(config.sample_rate_hz).expect("validated");
        Ok(SimulatedDevice {
            config: SimConfig { sample_rate_hz: rate, ..config },
            outputs: Arc::new(Outputs::new()),
            stims: None,
            truth: None,
        })
    }

    /// What the simulated device is and can do.
    pub fn description(&self) -> DeviceDescription {
        let c = &self.config;
        let ports = (0..c.amplifier_channels.div_ceil(CHANNELS_PER_PORT))
            .map(|port| {
                let first_channel = port * CHANNELS_PER_PORT;
                let channels = (c.amplifier_channels - first_channel).min(CHANNELS_PER_PORT);
                PortDescription {
                    port,
                    first_channel,
                    channels,
                    headstage: format!("simulated {channels}-channel headstage"),
                }
            })
            .collect();
        DeviceDescription {
            name: format!(
                "simulated device ({}, {} ch @ {} Hz)",
                c.mode,
                c.amplifier_channels,
                format_rate(c.sample_rate_hz)
            ),
            backbone: c.mode.name(),
            serial: None,
            sample_rate_hz: c.sample_rate_hz,
            sample_rates_hz: &INTAN_SAMPLE_RATES,
            layout: c.layout(),
            ports,
            digital_in_channels: c.digital_in_channels,
            digital_out_channels: c.digital_out_channels,
            analog_out_channels: ANALOG_OUT_CHANNELS,
            can_stimulate: true,
            can_measure_impedance: true,
            free_running: c.accelerated,
            simulated: true,
        }
    }

    /// Stimulation pulses that could not be played because too many were playing at once.
    pub fn stims_dropped(&self) -> u64 {
        self.outputs.stims_dropped()
    }

    fn name(&self) -> String {
        format!("the simulated device ({})", self.config.mode)
    }
}

impl Backend for SimulatedDevice {
    fn start_stream(&mut self) -> Result<Box<dyn Source>, DeviceError> {
        let (stims, player) = OutputPlayer::new(self.config.sample_rate_hz);
        let source = SimulatedSource::new(self.config.clone())?.with_outputs(Arc::clone(&self.outputs), player);
        self.stims = Some(stims);
        self.truth = Some(Arc::new(source.truth()));
        Ok(Box::new(source))
    }

    fn control(&mut self) -> &mut dyn Control {
        self
    }

    fn ground_truth(&self) -> Option<Arc<dyn GroundTruth>> {
        self.truth.clone()
    }
}

impl Control for SimulatedDevice {
    fn set_digital_out(&mut self, word: u16) -> Result<(), ControlError> {
        let lines = self.config.digital_out_channels;
        if lines < 16 && word >> lines != 0 {
            return Err(ControlError::out_of_range(
                "digital_out",
                format!("{word:#06x}"),
                format!("lines 0..{lines} only (word < {:#06x})", 1u32 << lines),
            ));
        }
        self.outputs.set_digital_out(word);
        Ok(())
    }

    fn set_analog_out(&mut self, output: usize, volts: f64) -> Result<(), ControlError> {
        if output >= ANALOG_OUT_CHANNELS {
            return Err(ControlError::out_of_range("analog_out", output, format!("0..={}", ANALOG_OUT_CHANNELS - 1)));
        }
        if !volts.is_finite() || volts.abs() > ANALOG_OUT_FULL_SCALE_V {
            return Err(ControlError::out_of_range(
                "volts",
                volts,
                format!("finite, -{ANALOG_OUT_FULL_SCALE_V}..={ANALOG_OUT_FULL_SCALE_V}"),
            ));
        }
        self.outputs.set_analog_out(output, volts);
        Ok(())
    }

    fn stimulate(&mut self, pulse: &StimPulse) -> Result<(), ControlError> {
        let channels = self.config.amplifier_channels;
        if pulse.channel >= channels {
            return Err(ControlError::out_of_range("channel", pulse.channel, format!("0..={}", channels - 1)));
        }
        let name = self.name();
        let queue = self.stims.as_mut().ok_or(ControlError::NotStreaming { device: name, what: "stimulate" })?;
        queue.push(*pulse).map_err(|_| ControlError::QueueFull { what: "stimulation", capacity: STIM_QUEUE_CAPACITY })
    }

    fn measure_impedance(&mut self) -> Result<Vec<Impedance>, ControlError> {
        // A fixed, seeded electrode per channel: log-normal magnitude around the median, a
        // mostly capacitive phase, as a healthy microelectrode array measures at 1 kHz.
        Ok((0..self.config.amplifier_channels)
            .map(|channel| {
                let mut rng = Rng::from_key(&[splitmix64(self.config.seed), 0x696d_7065_6461_6e63, channel as u64]);
                let (a, b) = rng.normal_pair();
                Impedance {
                    channel,
                    magnitude_ohms: MEDIAN_IMPEDANCE_OHMS * (0.35 * a).exp(),
                    phase_degrees: -75.0 + 4.0 * b,
                }
            })
            .collect())
    }
}

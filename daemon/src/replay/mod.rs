//! `sim-datasource`: one of ephysd's recordings played back as if it were being acquired,
//! through the same device layer, pipeline, processing and recorder as a live device.
//!
//! The drivers do not know the file format, so the daemon opens replays itself
//! ([`open_device`]) and hands the device layer a [`Backend`] of its own. A reader thread reads
//! the file ahead in blocks, recycled through a pair of channels, so the acquisition thread
//! only copies a block that is ready (no file access, no allocation); it is paced to the
//! recording's rate, or as fast as the pipeline takes it (`device.accelerated`). Frames are
//! numbered from 0 at the recording's first frame and keep its gaps. At the end of the file the
//! stream ends ("the source has ended"), as a device that stops would.

mod source;

use std::path::Path;

use ephysd_drivers::rates::{canonical_sample_rate, INTAN_SAMPLE_RATES};
use ephysd_drivers::{
    open, Backend, BlockLayout, Control, ControlError, Device, DeviceDescription, DeviceError, DeviceSpec, Impedance,
    PortDescription, ReplaySpec, Source, StimPulse,
};
use ephysd_hdf5::RecordingReader;

/// Opens the device `spec` names: replays here, everything else through the drivers.
pub fn open_device(spec: &DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Replay(r) => {
            let replay = Replay::open(r)?;
            let description = replay.description.clone();
            Ok(Device::from_backend(spec.clone(), description, Box::new(replay)))
        }
        other => open(other),
    }
}

/// A recording opened for playback.
struct Replay {
    spec: ReplaySpec,
    description: DeviceDescription,
}

fn refuse(path: &Path, reason: impl Into<String>) -> DeviceError {
    DeviceError::Replay { path: path.display().to_string(), reason: reason.into() }
}

impl Replay {
    fn open(spec: &ReplaySpec) -> Result<Replay, DeviceError> {
        let reader = RecordingReader::open(&spec.path).map_err(|e| refuse(&spec.path, e.to_string()))?;
        let info = reader.info().clone();
        if info.frames == 0 {
            return Err(refuse(&spec.path, "it holds no frames (a spikes-only recording, or an empty file)"));
        }
        let rate = canonical_sample_rate(info.frames_per_second).ok_or_else(|| {
            refuse(&spec.path, format!("its rate {} Hz is not one a device of ephysd runs at", info.frames_per_second))
        })?;
        let layout = BlockLayout {
            amplifier_channels: info.channel_count,
            aux_channels: 0,
            analog_in_channels: info.analog_in_channels,
            frames_per_block: spec.frames_per_block,
        };
        layout.validate().map_err(|e| refuse(&spec.path, e.to_string()))?;
        let channels = reader.read_channels().unwrap_or_default();
        let description = DeviceDescription {
            name: format!(
                "replay of {}",
                spec.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into())
            ),
            backbone: ephysd_drivers::spec::REPLAY_BACKBONE,
            serial: None,
            sample_rate_hz: rate,
            sample_rates_hz: &INTAN_SAMPLE_RATES,
            layout,
            ports: ports_of(&channels, info.channel_count, &info.device),
            digital_in_channels: if info.digital { 16 } else { 0 },
            digital_out_channels: if info.digital { 16 } else { 0 },
            analog_out_channels: 0,
            can_stimulate: false,
            can_measure_impedance: false,
            free_running: spec.accelerated,
            simulated: false,
        };
        Ok(Replay { spec: spec.clone(), description })
    }
}

/// The recording's ports, from its `/channels` (one port holding every channel when the
/// table says nothing).
fn ports_of(rows: &[ephysd_hdf5::ChannelRow], channels: usize, device: &str) -> Vec<PortDescription> {
    let mut ports: Vec<PortDescription> = Vec::new();
    for (i, row) in rows.iter().enumerate().take(channels) {
        let letter = row.port.as_str().bytes().next().unwrap_or(b'A');
        let port = usize::from(letter.saturating_sub(b'A')).min(7);
        match ports.last_mut() {
            Some(p) if p.port == port => p.channels += 1,
            _ => ports.push(PortDescription {
                port,
                first_channel: i,
                channels: 1,
                headstage: format!("recorded ({device})"),
            }),
        }
    }
    let covered: usize = ports.iter().map(|p| p.channels).sum();
    if covered != channels {
        return vec![PortDescription {
            port: 0,
            first_channel: 0,
            channels,
            headstage: format!("recorded ({device})"),
        }];
    }
    ports
}

impl Backend for Replay {
    fn start_stream(&mut self) -> Result<Box<dyn Source>, DeviceError> {
        Ok(Box::new(source::ReplaySource::start(&self.spec, self.description.layout, self.description.sample_rate_hz)?))
    }

    fn control(&mut self) -> &mut dyn Control {
        self
    }
}

impl Control for Replay {
    fn set_digital_out(&mut self, _word: u16) -> Result<(), ControlError> {
        Err(ControlError::Unsupported {
            device: self.description.name.clone(),
            what: "drive outputs (it plays a recording)",
        })
    }

    fn set_analog_out(&mut self, _output: usize, _volts: f64) -> Result<(), ControlError> {
        Err(ControlError::Unsupported {
            device: self.description.name.clone(),
            what: "drive outputs (it plays a recording)",
        })
    }

    fn stimulate(&mut self, _pulse: &StimPulse) -> Result<(), ControlError> {
        Err(ControlError::Unsupported {
            device: self.description.name.clone(),
            what: "stimulate (it plays a recording)",
        })
    }

    fn measure_impedance(&mut self) -> Result<Vec<Impedance>, ControlError> {
        Err(ControlError::Unsupported {
            device: self.description.name.clone(),
            what: "measure impedance (it plays a recording)",
        })
    }
}

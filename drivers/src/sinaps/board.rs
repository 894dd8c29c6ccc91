//! A SmartBox Pro with a SiNAPS probe: bring-up, the Sinaps operations, the control side and
//! the device backend. It speaks only [`FrontPanel`], through the map of
//! [`endpoints`](super::endpoints), so the same code drives the vendor library and the
//! emulated box.
//!
//! Bring-up: the FrontPanel module must be one a SmartBox Pro is built on (its FPGA part is
//! what a bitfile is checked against); a configured bitfile is checked whole, then the FPGA is
//! configured and must report the file's design; the design must be the Sinaps interface of
//! the map; reset; the sample clock must lock; the probe must be connected and be the model
//! `device.backbone` names; every pixel of its shanks is switched on through a MOSI bank and
//! the FPGA must report them active with no shank in error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::bitfile::Bitfile;
use super::endpoints as ep;
use super::status::{SinapsStatus, WireOuts};
use super::stream::{flush, SinapsSource};
use super::{MosiBank, SinapsControl, SinapsError, SinapsModel, PIXELS_PER_SHANK};
use crate::control::{Control, ControlError, Impedance, StimPulse};
use crate::description::{DeviceDescription, PortDescription};
use crate::device::{Backend, DeviceError};
use crate::frame::BlockLayout;
use crate::frontpanel::{FrontPanel, FrontPanelError, PanelProvider};
use crate::rhythm::board::{lock, panel_error, BoardHealth, SharedPanel};
use crate::source::Source;
use crate::spec::{SinapsPanelSource, SinapsSpec};

/// How to bring a SmartBox Pro up.
#[derive(Debug, Clone, PartialEq)]
pub struct SinapsSettings {
    pub model: SinapsModel,
    /// A name for messages and status.
    pub name: String,
    pub sample_rate_hz: f64,
    pub frames_per_block: usize,
    /// Configure the FPGA from this bitfile first.
    pub bitfile: Option<PathBuf>,
    /// Frames arrive as fast as they are read (an emulated box running free).
    pub free_running: bool,
}

/// A SmartBox Pro with its probe brought up, ready to stream.
pub struct SinapsBoard {
    panel: SharedPanel,
    settings: SinapsSettings,
    serial: String,
    /// The FPGA part of the box's FrontPanel module.
    part: &'static str,
    health: Arc<BoardHealth>,
    /// A stream of the board is running (set by its source while it lives).
    streaming: Arc<AtomicBool>,
    /// The bank loaded into the FPGA and not yet transmitted.
    loaded: Option<MosiBank>,
    /// Transmits asked for since bring-up.
    host_counter: u32,
}

impl std::fmt::Debug for SinapsBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinapsBoard")
            .field("settings", &self.settings)
            .field("serial", &self.serial)
            .field("part", &self.part)
            .finish_non_exhaustive()
    }
}

/// Samples every wire-out.
pub(super) fn read_wire_outs(p: &mut dyn FrontPanel) -> Result<WireOuts, FrontPanelError> {
    p.update_wire_outs()?;
    let mut w = [0u32; 32];
    for (i, v) in w.iter_mut().enumerate() {
        *v = p.wire_out(0x20 + i as u8)?;
    }
    Ok(w)
}

impl SinapsBoard {
    /// Brings the box behind `panel` up; see the module documentation.
    pub fn bring_up(panel: Box<dyn FrontPanel>, settings: SinapsSettings) -> Result<SinapsBoard, DeviceError> {
        let info = panel.info();
        let name = settings.name.clone();
        let refuse = |reason: String| DeviceError::SinapsBringUp { device: name.clone(), reason };
        let part = ep::fpga_part(&info.model).ok_or_else(|| {
            let known: Vec<&str> = ep::MODULE_PARTS.iter().map(|(m, _)| *m).collect();
            refuse(format!(
                "FrontPanel module {} is not one a SmartBox Pro is built on in ephysd's model (allowed: {})",
                info.model,
                known.join(", ")
            ))
        })?;
        let mut board = SinapsBoard {
            panel: Arc::new(Mutex::new(panel)),
            serial: info.serial,
            part,
            health: Arc::new(BoardHealth::default()),
            streaming: Arc::new(AtomicBool::new(false)),
            loaded: None,
            host_counter: 0,
            settings,
        };
        if let Some(path) = board.settings.bitfile.clone() {
            board.configure(&path).map_err(|e| match e {
                SinapsError::Device(d) => d,
                other => refuse(other.to_string()),
            })?;
        }
        board.start_probe()?;
        Ok(board)
    }

    pub fn settings(&self) -> &SinapsSettings {
        &self.settings
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The FPGA part of the box's module, which bitfiles must be built for.
    pub fn fpga_part(&self) -> &'static str {
        self.part
    }

    pub fn health(&self) -> &Arc<BoardHealth> {
        &self.health
    }

    fn io(&self, operation: &'static str) -> impl Fn(FrontPanelError) -> DeviceError + '_ {
        move |e| panel_error(&self.settings.name, operation, e)
    }

    fn refuse(&self, reason: String) -> DeviceError {
        DeviceError::SinapsBringUp { device: self.settings.name.clone(), reason }
    }

    /// The decoded status now.
    fn read_status(&self) -> Result<SinapsStatus, DeviceError> {
        let mut p = lock(&self.panel);
        read_wire_outs(&mut **p).map(|w| SinapsStatus::decode(&w)).map_err(self.io("read the status registers"))
    }

    /// Checks the bitfile, configures the FPGA from it and checks the FPGA reports its design.
    /// Nothing reaches the FPGA unless the whole file is valid and built for its part.
    fn configure(&mut self, path: &Path) -> Result<(), SinapsError> {
        let file = Bitfile::read(path)?;
        file.check_part(self.part).map_err(|problem| super::BitfileError { path: path.to_path_buf(), problem })?;
        lock(&self.panel).configure_fpga(path).map_err(self.io("configure the FPGA"))?;
        self.loaded = None;
        let status = self.read_status()?;
        let expected = SinapsStatus::reported_firmware(&file.design);
        if status.firmware != expected {
            return Err(SinapsError::NotConfigured {
                device: self.settings.name.clone(),
                path: path.display().to_string(),
                expected: expected.to_string(),
                found: status.firmware,
            });
        }
        Ok(())
    }

    /// Reset, clock, probe check, every pixel on; the FIFO left empty.
    fn start_probe(&mut self) -> Result<(), DeviceError> {
        let status = self.read_status()?;
        if status.design_id != ep::DESIGN_ID || status.map_version != ep::MAP_VERSION {
            return Err(self.refuse(format!(
                "the FPGA does not run the Sinaps interface of ephysd's SmartBox Pro model (design id {:#010x}, map \
                 version {}; expected {:#010x}, version {}); configure it with device.bitfile",
                status.design_id,
                status.map_version,
                ep::DESIGN_ID,
                ep::MAP_VERSION
            )));
        }
        {
            let mut p = lock(&self.panel);
            let io = self.io("reset");
            p.set_wire_in(ep::WIRE_IN_CONTROL, ep::CONTROL_RESET, u32::MAX).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
            p.set_wire_in(ep::WIRE_IN_CONTROL, 0, u32::MAX).map_err(&io)?;
            let millihertz = (self.settings.sample_rate_hz * 1000.0).round() as u32;
            p.set_wire_in(ep::WIRE_IN_SAMPLE_RATE_MHZ, millihertz, u32::MAX).map_err(&io)?;
            p.set_wire_in(ep::WIRE_IN_HOST_COUNTER, 0, u32::MAX).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
        }
        self.host_counter = 0;
        self.loaded = None;
        let status = self.read_status()?;
        if !status.clock_locked {
            return Err(self.refuse(format!("the sample clock did not lock at {} Hz", self.settings.sample_rate_hz)));
        }
        if !status.probe_connected {
            return Err(self.refuse("no SiNAPS probe is connected".into()));
        }
        let model = self.settings.model;
        if status.probe_model as usize != model.channels() {
            return Err(self.refuse(format!(
                "the probe reports model {} (pixels), but device.backbone = {} is a {}-channel probe",
                status.probe_model,
                model.backbone,
                model.channels()
            )));
        }
        let bank = MosiBank::all_pixels(model);
        self.load(&bank)?;
        self.transmit().map_err(|e| match e {
            SinapsError::Device(d) => d,
            other => self.refuse(other.to_string()),
        })?;
        let status = self.read_status()?;
        let want: Vec<u32> =
            (0..super::MAX_SHANKS).map(|s| if s < model.shanks { PIXELS_PER_SHANK as u32 } else { 0 }).collect();
        if status.active_pixels[..] != want[..] || status.shank_errors.iter().any(|&e| e) {
            return Err(self.refuse(format!(
                "after switching every pixel on, the FPGA reports active pixels {:?} (expected {want:?}) and shank \
                 errors {:?}",
                status.active_pixels, status.shank_errors
            )));
        }
        let mut p = lock(&self.panel);
        flush(&mut **p).map_err(self.io("empty the FIFO"))
    }

    /// Loads `bank` into the FPGA.
    fn load(&mut self, bank: &MosiBank) -> Result<(), DeviceError> {
        {
            let mut p = lock(&self.panel);
            let io = self.io("load the MOSI registers");
            p.activate_trigger_in(ep::TRIGGER_IN_MOSI, ep::TRIGGER_MOSI_ADDRESS_RESET).map_err(&io)?;
            p.write_pipe_in(ep::PIPE_IN_MOSI, &bank.to_bytes()).map_err(&io)?;
        }
        self.loaded = Some(*bank);
        Ok(())
    }

    /// Sends the loaded bank to the probe.
    fn transmit(&mut self) -> Result<(), SinapsError> {
        if self.loaded.is_none() {
            return Err(SinapsError::NothingLoaded { device: self.settings.name.clone() });
        }
        let counter = self.host_counter.wrapping_add(1);
        {
            let mut p = lock(&self.panel);
            let io = self.io("transmit the MOSI registers");
            p.set_wire_in(ep::WIRE_IN_HOST_COUNTER, counter, u32::MAX).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
            p.activate_trigger_in(ep::TRIGGER_IN_MOSI, ep::TRIGGER_MOSI_TRANSMIT).map_err(&io)?;
        }
        self.host_counter = counter;
        let status = self.read_status()?;
        if status.mosi_rejected {
            return Err(SinapsError::NothingLoaded { device: self.settings.name.clone() });
        }
        Ok(())
    }

    /// Starts streaming and returns the read side.
    pub fn start_stream(&mut self) -> Result<SinapsSource, DeviceError> {
        SinapsSource::start(
            Arc::clone(&self.panel),
            self.settings.name.clone(),
            self.layout(),
            self.settings.sample_rate_hz,
            self.settings.free_running,
            Arc::clone(&self.health),
            Arc::clone(&self.streaming),
        )
    }

    /// The shape of the stream's blocks: every pixel, no aux or analog inputs.
    pub fn layout(&self) -> BlockLayout {
        BlockLayout {
            amplifier_channels: self.settings.model.channels(),
            aux_channels: 0,
            analog_in_channels: 0,
            frames_per_block: self.settings.frames_per_block,
        }
    }

    /// What the box is and can do: one port per shank.
    pub fn description(&self) -> DeviceDescription {
        let model = self.settings.model;
        DeviceDescription {
            name: self.settings.name.clone(),
            backbone: model.backbone,
            serial: Some(self.serial.clone()),
            sample_rate_hz: self.settings.sample_rate_hz,
            sample_rates_hz: &crate::rates::INTAN_SAMPLE_RATES,
            layout: self.layout(),
            ports: (0..model.shanks)
                .map(|s| PortDescription {
                    port: s,
                    first_channel: s * PIXELS_PER_SHANK,
                    channels: PIXELS_PER_SHANK,
                    headstage: format!("SiNAPS shank {s} ({PIXELS_PER_SHANK} pixels)"),
                })
                .collect(),
            digital_in_channels: 16,
            digital_out_channels: 0,
            analog_out_channels: 0,
            can_stimulate: false,
            can_measure_impedance: false,
            free_running: self.settings.free_running,
            simulated: false,
        }
    }

    fn unsupported(&self, what: &'static str) -> ControlError {
        ControlError::Unsupported { device: self.settings.name.clone(), what }
    }
}

impl SinapsControl for SinapsBoard {
    fn load_all_mosi(&mut self, register_vals: &[i32]) -> Result<(), SinapsError> {
        let bank = MosiBank::new(register_vals, self.settings.model)?;
        Ok(self.load(&bank)?)
    }

    fn transmit_mosi(&mut self) -> Result<(), SinapsError> {
        self.transmit()
    }

    fn read_wire_out(&mut self, address: i64) -> Result<u32, SinapsError> {
        let Some(endpoint) = u8::try_from(address).ok().filter(|a| crate::frontpanel::WIRE_OUT_RANGE.contains(a))
        else {
            return Err(SinapsError::InvalidArgument {
                field: "wire_out_address".into(),
                value: address.to_string(),
                allowed: "32..=63 (the FrontPanel wire-outs 0x20..=0x3f)".into(),
            });
        };
        let mut p = lock(&self.panel);
        let io = self.io("read a wire-out");
        p.update_wire_outs().map_err(&io)?;
        Ok(p.wire_out(endpoint).map_err(&io)?)
    }

    fn status(&mut self) -> Result<SinapsStatus, SinapsError> {
        Ok(self.read_status()?)
    }

    fn flash(&mut self, bitfile: &Path) -> Result<(), SinapsError> {
        if self.streaming.load(Ordering::Acquire) {
            return Err(SinapsError::Streaming { device: self.settings.name.clone(), what: "flash the FPGA" });
        }
        self.configure(bitfile)?;
        self.start_probe()?;
        Ok(())
    }
}

impl Control for SinapsBoard {
    fn set_digital_out(&mut self, _word: u16) -> Result<(), ControlError> {
        Err(self.unsupported("drive digital outputs (none in ephysd's SmartBox Pro model)"))
    }

    fn set_analog_out(&mut self, _output: usize, _volts: f64) -> Result<(), ControlError> {
        Err(self.unsupported("set an analog output level"))
    }

    fn stimulate(&mut self, _pulse: &StimPulse) -> Result<(), ControlError> {
        Err(self.unsupported("stimulate (SiNAPS pixels record only)"))
    }

    fn measure_impedance(&mut self) -> Result<Vec<Impedance>, ControlError> {
        Err(self.unsupported("measure impedance"))
    }

    fn sinaps(&mut self) -> Option<&mut dyn SinapsControl> {
        Some(self)
    }
}

impl Backend for SinapsBoard {
    fn start_stream(&mut self) -> Result<Box<dyn Source>, DeviceError> {
        Ok(Box::new(SinapsBoard::start_stream(self)?))
    }

    fn control(&mut self) -> &mut dyn Control {
        self
    }

    fn health(&self) -> Option<Arc<BoardHealth>> {
        Some(Arc::clone(&self.health))
    }
}

/// Opens and brings up the box `spec` names, through the vendor library or the emulator.
pub fn open_sinaps(spec: &SinapsSpec) -> Result<SinapsBoard, DeviceError> {
    use crate::frontpanel::library::LibraryProvider;
    let provider: Box<dyn PanelProvider> = match &spec.panel {
        SinapsPanelSource::Library(path) => Box::new(LibraryProvider::load(path)?),
        SinapsPanelSource::Emulated(e) => Box::new(crate::emulator::sinaps::SinapsEmulatorProvider::shared(e.clone())),
    };
    let panel = provider
        .open(spec.serial.as_deref())
        .map_err(|source| DeviceError::Open { provider: provider.describe(), source })?;
    let free_running = matches!(&spec.panel, SinapsPanelSource::Emulated(e) if !e.realtime);
    let settings = SinapsSettings {
        model: spec.model,
        name: format!("{} {}", spec.model.name, panel.info().serial),
        sample_rate_hz: spec.sample_rate_hz,
        frames_per_block: spec.frames_per_block,
        bitfile: spec.bitfile.clone(),
        free_running,
    };
    SinapsBoard::bring_up(panel, settings)
}

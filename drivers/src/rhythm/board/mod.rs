//! The driver of the boards of the Rhythm family: Intan's RHD USB interface board and
//! recording controllers, the Open Ephys acquisition board, KonteX's XDAQ with RHD
//! headstages, and KonteX's XDAQ with RHS headstages, which also stimulate. It speaks only
//! [`FrontPanel`], so the same code drives the vendor library and the emulated board.
//!
//! * [`bringup`]: reset, clock, command lists, the MISO-delay scan that finds every chip and
//!   the delay its cable needs, and the data streams they fill;
//! * [`rhs_bringup`], [`rhs_commands`]: the same for XDAQ with RHS2116 headstages (their
//!   register map, 32-bit command lists uploaded through pipe-ins, one stream per chip);
//! * [`stream`]: [`RhythmSource`], which reads the FIFO and decodes frames into blocks,
//!   counting corrupt and lost data;
//! * [`commands`]: the aux command lists and where their results land;
//! * [`impedance`]: electrode impedance through the chips' impedance-check circuit;
//! * [`stim`], [`outputs`]: stimulation through RHS headstages, the analog outputs (DACs) and
//!   the amplifiers' fast settle, the [`Control`] side of a running board.

pub mod bringup;
pub mod catalog;
pub mod commands;
pub mod impedance;
pub mod outputs;
pub mod rhs_bringup;
pub mod rhs_commands;
pub mod stim;
pub mod stream;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::endpoints::{self as ep, Interface};
use super::rhd::RhdChip;
use super::{Board, ChipFamily, HeadstageChip};
use crate::control::{Control, ControlError, Impedance, StimPulse};
use crate::device::DeviceError;
use crate::frontpanel::{FrontPanel, FrontPanelError};

pub use bringup::BringUpError;
pub use stream::RhythmSource;

/// Brings the board behind `panel` up: an RHD board ([`bringup::bring_up`]) or XDAQ with RHS
/// headstages ([`rhs_bringup::bring_up`]).
pub fn bring_up(panel: SharedPanel, settings: BoardSettings) -> Result<RhythmBoard, BringUpError> {
    match settings.board.chip() {
        ChipFamily::Rhd => bringup::bring_up(panel, settings),
        ChipFamily::Rhs => rhs_bringup::bring_up(panel, settings),
    }
}

/// A FrontPanel device shared by the acquisition thread (pipe reads) and the control plane
/// (wire-ins). Each side holds the lock for one FrontPanel operation or one short sequence.
pub type SharedPanel = Arc<Mutex<Box<dyn FrontPanel>>>;

/// Locks the panel; a panic elsewhere while holding it does not make the board unusable.
pub(crate) fn lock(panel: &SharedPanel) -> MutexGuard<'_, Box<dyn FrontPanel>> {
    panel.lock().unwrap_or_else(|p| p.into_inner())
}

/// How to bring a board up.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardSettings {
    pub board: Board,
    /// A name for messages and status (`Intan RHD recording controller`, ...).
    pub name: String,
    pub sample_rate_hz: f64,
    /// Frames per block handed to the pipeline.
    pub frames_per_block: usize,
    /// Configure the FPGA from this bitfile first (boards that keep no configuration).
    pub bitfile: Option<PathBuf>,
    /// SPI ports this model has (the 512-channel controller has 4 of the firmware's 8).
    pub ports: usize,
    /// Frames arrive as fast as they are read (an emulated board running free) instead of at
    /// the sample rate.
    pub free_running: bool,
}

/// One RHD chip found by the delay scan (an RHS board's chips are its
/// [`streams`](RhythmBoard::streams), one per RHS2116).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundChip {
    /// 0 = A.
    pub port: usize,
    /// MISO line 0 or 1 of the port.
    pub line: usize,
    pub chip: RhdChip,
}

/// One data stream as the board sends it, in frame order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPlan {
    /// The stream's number on the board (its enable bit).
    pub board_stream: usize,
    pub port: usize,
    pub line: usize,
    /// The RHD2164's MISO B half.
    pub ddr: bool,
    pub chip: HeadstageChip,
    /// Amplifier words of the stream's 32 (RHS: 16) that carry electrodes (16 for an RHD2216).
    pub channels: usize,
}

/// Live figures of a board, updated by its source and read by status.
#[derive(Debug, Default)]
pub struct BoardHealth {
    /// USB reads whose data was corrupt (a frame without the magic number).
    pub corrupt_reads: AtomicU64,
    /// Frames missing from the sample-index sequence (dropped or lost to corruption).
    pub frames_lost: AtomicU64,
    /// Highest FIFO fill seen, in per mille of its capacity.
    pub fifo_peak_permille: AtomicU64,
    /// Times the FIFO crossed [`stream::FIFO_WARNING_PERMILLE`] on the way up.
    pub fifo_warnings: AtomicU64,
}

impl BoardHealth {
    pub fn corrupt_reads(&self) -> u64 {
        self.corrupt_reads.load(Ordering::Relaxed)
    }
    pub fn frames_lost(&self) -> u64 {
        self.frames_lost.load(Ordering::Relaxed)
    }
    pub fn fifo_peak_permille(&self) -> u64 {
        self.fifo_peak_permille.load(Ordering::Relaxed)
    }
    pub fn fifo_warnings(&self) -> u64 {
        self.fifo_warnings.load(Ordering::Relaxed)
    }
}

/// How far the running stream of a board has read, shared by its source (which counts) and its
/// control side (which waits for frames to pass, [`RhythmBoard::wait_for_frames`]).
#[derive(Debug, Default)]
pub struct StreamProgress {
    /// Frames read from the pipe since the board was brought up.
    pub frames_read: AtomicU64,
    /// A stream of the board is running.
    pub streaming: AtomicBool,
}

/// What the control side has set on a board, kept to write only what changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlState {
    /// The amplifiers' fast settle is on.
    fast_settle: bool,
    /// RHD: the TTL input the firmware's external fast settle follows.
    ttl_fast_settle: Option<u8>,
    /// RHS: each data stream's chip as the driver last programmed it.
    rhs_chips: [rhs_commands::RhsChipSettings; ep::rhs::MAX_STREAMS],
    /// RHS: the sequencer unit (board stream, channel) armed on the manual trigger.
    armed: Option<(usize, usize)>,
    /// RHS: what the board does around each pulse.
    stim_options: stim::StimOptions,
    /// What each analog output plays.
    dacs: [Option<outputs::DacUse>; 8],
}

/// A board after bring-up: its chips, delays and streams, ready to run.
pub struct RhythmBoard {
    panel: SharedPanel,
    settings: BoardSettings,
    interface: Interface,
    serial: String,
    chips: Vec<FoundChip>,
    delays: Vec<u8>,
    streams: Vec<StreamPlan>,
    health: Arc<BoardHealth>,
    board_id: u32,
    board_version: u32,
    progress: Arc<StreamProgress>,
    control: ControlState,
}

impl std::fmt::Debug for RhythmBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhythmBoard")
            .field("settings", &self.settings)
            .field("serial", &self.serial)
            .field("chips", &self.chips)
            .field("delays", &self.delays)
            .finish_non_exhaustive()
    }
}

impl RhythmBoard {
    pub fn settings(&self) -> &BoardSettings {
        &self.settings
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The RHD chips the scan found, in port and line order (empty on an RHS board: see
    /// [`streams`](Self::streams)).
    pub fn chips(&self) -> &[FoundChip] {
        &self.chips
    }

    /// The MISO delay chosen for each port.
    pub fn delays(&self) -> &[u8] {
        &self.delays
    }

    /// The streams in frame order.
    pub fn streams(&self) -> &[StreamPlan] {
        &self.streams
    }

    /// Firmware id and version as the board reports them.
    pub fn firmware(&self) -> (u32, u32) {
        (self.board_id, self.board_version)
    }

    pub fn health(&self) -> &Arc<BoardHealth> {
        &self.health
    }

    /// Amplifier channels across every chip.
    pub fn amplifier_channels(&self) -> usize {
        self.streams.iter().map(|s| s.channels).sum()
    }

    /// Amplifier channels on each port (index 0 = A).
    pub fn channels_per_port(&self) -> Vec<usize> {
        let mut per = vec![0; self.port_count()];
        for s in &self.streams {
            per[s.port] += s.channels;
        }
        per
    }

    /// Starts the sequencer in continuous mode and returns the stream's read side.
    pub fn start_stream(&mut self) -> Result<RhythmSource, DeviceError> {
        RhythmSource::start(self)
    }

    /// Measures every amplifier channel's electrode impedance at the test frequency closest to
    /// `frequency_hz` the sample rate allows ([`impedance::test_frequency`]); refused while a
    /// stream of the board is running, and on RHS boards (not implemented for RHS2116 chips).
    pub fn measure_impedance_at(&mut self, frequency_hz: f64) -> Result<Vec<Impedance>, ControlError> {
        if self.is_rhs() {
            return Err(ControlError::Unsupported {
                device: self.settings.name.clone(),
                what: "measure impedance (not implemented for RHS headstages in this version)",
            });
        }
        // Paused only when the measurement can run (a running stream holds the panel too).
        let ttl = self.control.ttl_fast_settle.filter(|_| Arc::strong_count(&self.panel) == 1);
        if ttl.is_some() {
            // RHX `impedancereader.cpp`: off while measuring (it would replace DAC commands).
            self.apply_ttl_fast_settle(None)
                .map_err(|e| ControlError::Device(self.panel_error("pause TTL fast settle", e)))?;
        }
        let measured = impedance::measure(self, frequency_hz);
        if ttl.is_some() {
            self.apply_ttl_fast_settle(ttl)
                .map_err(|e| ControlError::Device(self.panel_error("restore TTL fast settle", e)))?;
        }
        if self.control.fast_settle {
            // The measurement leaves the register list on its streaming bank.
            let mut p = lock(&self.panel);
            bringup::select_bank(&mut **p, bringup::CONFIG_SLOT, bringup::BANK_FAST_SETTLE)
                .map_err(|e| ControlError::Device(self.panel_error("restore fast settle", e)))?;
        }
        measured
    }

    /// Whether the board runs RHS headstages.
    fn is_rhs(&self) -> bool {
        self.settings.board.chip() == ChipFamily::Rhs
    }

    /// SPI ports of the board's register map.
    fn port_count(&self) -> usize {
        if self.is_rhs() {
            ep::rhs::PORTS
        } else {
            self.interface.ports()
        }
    }

    fn panel_error(&self, operation: &'static str, e: FrontPanelError) -> DeviceError {
        panel_error(&self.settings.name, operation, e)
    }
}

/// A FrontPanel failure as a device error: a vanished board is [`DeviceError::Gone`].
pub(crate) fn panel_error(device: &str, operation: &'static str, e: FrontPanelError) -> DeviceError {
    if e.is_gone() {
        DeviceError::Gone { device: device.to_string(), reason: e.to_string() }
    } else {
        DeviceError::Io { device: device.to_string(), operation, source: std::io::Error::other(e) }
    }
}

impl Control for RhythmBoard {
    fn set_digital_out(&mut self, word: u16) -> Result<(), ControlError> {
        let mut p = lock(&self.panel);
        p.set_wire_in(ep::WIRE_IN_TTL_OUT, u32::from(word), 0xffff)
            .and_then(|_| p.update_wire_ins())
            .map_err(|e| ControlError::Device(self.panel_error("set TTL outputs", e)))
    }

    fn set_analog_out(&mut self, output: usize, volts: f64) -> Result<(), ControlError> {
        self.set_dac_level(output, volts)
    }

    fn stimulate(&mut self, pulse: &StimPulse) -> Result<(), ControlError> {
        if !self.is_rhs() {
            let what = "stimulate (RHD chips record only)";
            return Err(ControlError::Unsupported { device: self.settings.name.clone(), what });
        }
        self.stimulate_rhs(pulse)
    }

    fn fast_settle(&mut self, on: bool) -> Result<(), ControlError> {
        self.set_fast_settle(on)
    }

    fn fast_settle_on_ttl(&mut self, input: Option<u8>) -> Result<(), ControlError> {
        self.set_fast_settle_on_ttl(input)
    }

    fn set_cable_delay(&mut self, port: usize, delay: Option<u8>) -> Result<(), ControlError> {
        let ports = self.delays.len();
        if port >= ports {
            return Err(ControlError::out_of_range("port", port, format!("0..{ports} (the board's SPI ports)")));
        }
        let steps = match delay {
            Some(d) if d > 15 => return Err(ControlError::out_of_range("delay", d, "0..=15 clock steps")),
            Some(d) => d,
            None => self.delays[port],
        };
        let shift = 4 * port as u32;
        let mut p = lock(&self.panel);
        p.set_wire_in(ep::WIRE_IN_MISO_DELAY, u32::from(steps) << shift, 0xf << shift)
            .and_then(|_| p.update_wire_ins())
            .map_err(|e| ControlError::Device(self.panel_error("set a cable delay", e)))
    }

    fn measure_impedance(&mut self) -> Result<Vec<Impedance>, ControlError> {
        self.measure_impedance_at(impedance::DEFAULT_FREQUENCY_HZ)
    }
}

/// Opens and brings up the board `spec` names, through the vendor library or the emulator.
pub fn open_board(spec: &crate::spec::RhythmSpec) -> Result<RhythmBoard, DeviceError> {
    use crate::frontpanel::library::LibraryProvider;
    use crate::frontpanel::PanelProvider;
    use crate::spec::PanelSource;
    let provider: Box<dyn PanelProvider> = match &spec.panel {
        PanelSource::Library(path) => Box::new(LibraryProvider::load(path)?),
        PanelSource::Emulated(e) => Box::new(crate::emulator::EmulatorProvider::shared(e.clone())),
    };
    let panel = provider
        .open(spec.serial.as_deref())
        .map_err(|source| DeviceError::Open { provider: provider.describe(), source })?;
    let free_running = matches!(&spec.panel, PanelSource::Emulated(e) if !e.realtime);
    let serial = panel.info().serial;
    let settings = BoardSettings {
        board: spec.model.board,
        name: format!("{} {}", spec.model.name, serial),
        sample_rate_hz: spec.sample_rate_hz,
        frames_per_block: spec.frames_per_block,
        bitfile: spec.bitfile.clone(),
        ports: spec.model.ports,
        free_running,
    };
    bring_up(Arc::new(Mutex::new(panel)), settings).map_err(|e| match e {
        BringUpError::Device(d) => d,
        other => DeviceError::BringUp(Box::new(other)),
    })
}

impl RhythmBoard {
    /// What the board is and can do, as the device layer describes every device.
    pub fn description(&self, spec: &crate::spec::RhythmSpec) -> crate::description::DeviceDescription {
        let mut ports: Vec<crate::description::PortDescription> = Vec::new();
        let mut first = 0;
        for s in &self.streams {
            match ports.last_mut() {
                Some(p) if p.port == s.port => {
                    p.channels += s.channels;
                    if !s.ddr && !p.headstage.ends_with(&format!("line {}", s.line + 1)) {
                        p.headstage.push_str(&format!(" + {} on MISO line {}", s.chip.name(), s.line + 1));
                    }
                }
                _ => ports.push(crate::description::PortDescription {
                    port: s.port,
                    first_channel: first,
                    channels: s.channels,
                    headstage: format!("{} on MISO line {}", s.chip.name(), s.line + 1),
                }),
            }
            first += s.channels;
        }
        crate::description::DeviceDescription {
            name: self.settings.name.clone(),
            backbone: spec.model.backbone,
            serial: Some(self.serial.clone()),
            sample_rate_hz: self.settings.sample_rate_hz,
            sample_rates_hz: &crate::rates::INTAN_SAMPLE_RATES,
            layout: stream::stream_layout(&self.streams, self.settings.frames_per_block),
            ports,
            digital_in_channels: 16,
            digital_out_channels: 16,
            analog_out_channels: if self.drives_dacs() { 8 } else { 0 },
            // RHS2116 headstages stimulate (their stimulators are enabled on first use).
            can_stimulate: self.is_rhs(),
            can_measure_impedance: !self.is_rhs(),
            free_running: self.settings.free_running,
            simulated: false,
        }
    }
}

impl crate::device::Backend for RhythmBoard {
    fn start_stream(&mut self) -> Result<Box<dyn crate::source::Source>, DeviceError> {
        Ok(Box::new(RhythmBoard::start_stream(self)?))
    }

    fn control(&mut self) -> &mut dyn Control {
        self
    }

    fn health(&self) -> Option<Arc<BoardHealth>> {
        Some(Arc::clone(&self.health))
    }
}

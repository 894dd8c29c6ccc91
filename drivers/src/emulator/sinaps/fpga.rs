//! The emulated SmartBox Pro FPGA behind the FrontPanel operations, implementing ephysd's
//! model of its interface ([`crate::sinaps::endpoints`]): wire-ins set the clock and run,
//! the MOSI bank arrives through its pipe-in and is sent to the probe on a trigger (which
//! pixels stream, each shank's reference voltage, a calibration whose progress shows in
//! status), the status wire-outs report it all, and the frames of the simulated rig's signal
//! wait in a FIFO until the host reads the pipe. The FPGA is configured from a `.bit` file,
//! whose design name it then reports as its firmware.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::spec::SinapsEmulatorSpec;
use crate::emulator::world::FrameFate;
use crate::emulator::World;
use crate::frame::FrameBlock;
use crate::frontpanel::{
    check_endpoint, FrontPanel, FrontPanelError, OkErrorCode, PanelInfo, PIPE_IN_RANGE, PIPE_OUT_RANGE,
    TRIGGER_IN_RANGE, WIRE_IN_RANGE, WIRE_OUT_RANGE,
};
use crate::sim::{SimConfig, SimulatedSource};
use crate::sinaps::bitfile::Bitfile;
use crate::sinaps::endpoints::{self as ep, frame as fl, mosi};
use crate::sinaps::frame::{bytes_per_frame, encode_frame, FrameHeader};
use crate::sinaps::status::{SinapsStatus, WireOuts};
use crate::sinaps::{MosiBank, MAX_SHANKS, PIXELS_PER_SHANK};
use crate::source::Source;

/// Frames the FPGA assembles at a time.
const CHUNK_FRAMES: usize = 128;
/// How long a pipe read waits for frames that are not there before it fails with `Timeout`.
const PIPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The generation the emulated probe reports.
pub const EMULATED_PROBE_GENERATION: u32 = 1;

/// The simulated pixels behind an emulated SmartBox Pro at `rate_hz`: the configuration of
/// the [`SimulatedSource`] whose amplifier channels the connected probe's pixels carry
/// (shank 0's first), with 16 digital inputs. A run plays it from its frame 0.
pub fn sinaps_signal_config(spec: &SinapsEmulatorSpec, rate_hz: f64) -> SimConfig {
    SimConfig {
        mode: spec.mode,
        amplifier_channels: spec.probe_channels().max(1),
        sample_rate_hz: rate_hz,
        seed: spec.seed,
        accelerated: true,
        frames_per_block: CHUNK_FRAMES,
        analog_in_channels: 0,
        aux_channels: 0,
        digital_in_channels: 16,
        digital_out_channels: 0,
    }
}

/// Counts of what the emulated FPGA did, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinapsEmulatorCounters {
    /// Frames the FPGA produced.
    pub frames_generated: u64,
    /// Frames lost because the FIFO was full.
    pub frames_overflowed: u64,
    /// Frames removed by a `drop` fault.
    pub frames_dropped: u64,
    /// Frames whose magic a `corrupt` fault damaged.
    pub frames_corrupted: u64,
    /// `ConfigureFPGA` calls that reached the FPGA, valid or not.
    pub configure_attempts: u64,
    /// Bytes written to the MOSI pipe-in.
    pub mosi_bytes_loaded: u64,
}

/// A running stream.
#[derive(Debug)]
struct Run {
    started: Instant,
    produced: u64,
    rate: f64,
    signal: SimulatedSource,
    block: FrameBlock,
    used: usize,
    /// The box went away (an `unplug` fault): nothing more is produced.
    stalled: bool,
}

impl Run {
    /// The row of the signal's next sample in `block`, reading the next block when this one
    /// is used up. The caller advances `used`.
    fn next_row(&mut self) -> usize {
        if self.used == self.block.frames {
            self.signal.read_block(&mut self.block).expect("simulated source");
            self.used = 0;
        }
        self.used
    }
}

/// The firmware wire-outs reporting design name `design`.
fn firmware_words(design: &str) -> [u32; ep::FIRMWARE_WIRE_OUTS as usize] {
    let w = SinapsStatus { firmware: design.to_string(), ..SinapsStatus::decode(&[0; 32]) }.encode();
    let first = usize::from(ep::WIRE_OUT_FIRMWARE_FIRST - 0x20);
    let mut out = [0; ep::FIRMWARE_WIRE_OUTS as usize];
    out.copy_from_slice(&w[first..first + usize::from(ep::FIRMWARE_WIRE_OUTS)]);
    out
}

/// The emulated SmartBox Pro, opened.
pub struct SinapsPanel {
    spec: SinapsEmulatorSpec,
    world: Arc<World>,
    /// Gone for good: the box was unplugged while this handle was open.
    dead: bool,
    staged: [u32; 32],
    wires: [u32; 32],
    wire_outs: WireOuts,
    firmware: String,
    /// The firmware's wire-outs, encoded once per configuration (sampling the wire-outs runs
    /// on the acquisition thread with the in-process emulator, and must not allocate).
    firmware_words: [u32; ep::FIRMWARE_WIRE_OUTS as usize],
    rate: f64,
    clock_locked: bool,
    /// The bank as the pipe-in loaded it, and where the next word goes.
    mosi_pipe: [u32; mosi::REGISTERS],
    mosi_address: usize,
    mosi_rejected: bool,
    /// The bank the probe runs with.
    bank: MosiBank,
    /// Per pixel of the connected probe: on.
    enabled: Vec<bool>,
    calibration_started: Option<Instant>,
    host_counter: u32,
    fpga_counter: u32,
    run: Option<Run>,
    /// The signal at the current rate, built once per rate and cloned at each run start.
    pristine_signal: Option<(f64, SimulatedSource)>,
    fifo: Vec<u8>,
    fifo_read: usize,
    frame_scratch: Vec<u8>,
    sample_scratch: Vec<i16>,
    counters: SinapsEmulatorCounters,
    /// A `stall` fault holds the pipe: until this instant (`Some(None)`: for good).
    pipe_held: Option<Option<Instant>>,
}

impl std::fmt::Debug for SinapsPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinapsPanel").field("spec", &self.spec.to_string()).finish_non_exhaustive()
    }
}

impl SinapsPanel {
    /// A freshly powered box as `spec` describes it, alone on its bus.
    pub fn new(spec: &SinapsEmulatorSpec) -> SinapsPanel {
        SinapsPanel::with_world(spec, Arc::new(World::default()))
    }

    /// A box sharing `world` (its presence and fired faults) with other handles.
    pub fn with_world(spec: &SinapsEmulatorSpec, world: Arc<World>) -> SinapsPanel {
        let channels = spec.probe_channels();
        let mut panel = SinapsPanel {
            spec: spec.clone(),
            world,
            dead: false,
            staged: [0; 32],
            wires: [0; 32],
            wire_outs: [0; 32],
            firmware: spec.firmware.clone(),
            firmware_words: firmware_words(&spec.firmware),
            rate: 30000.0,
            clock_locked: false,
            mosi_pipe: [0; mosi::REGISTERS],
            mosi_address: 0,
            mosi_rejected: false,
            bank: MosiBank::from_words([0; mosi::REGISTERS]),
            enabled: vec![false; channels],
            calibration_started: None,
            host_counter: 0,
            fpga_counter: 0,
            run: None,
            pristine_signal: None,
            fifo: Vec::new(),
            fifo_read: 0,
            frame_scratch: vec![0; bytes_per_frame(channels)],
            sample_scratch: vec![0; channels],
            counters: SinapsEmulatorCounters::default(),
            pipe_held: None,
        };
        panel.reset();
        panel
    }

    /// The spec this box plays.
    pub fn spec(&self) -> &SinapsEmulatorSpec {
        &self.spec
    }

    /// What the FPGA did so far.
    pub fn counters(&self) -> SinapsEmulatorCounters {
        self.counters
    }

    /// The bank the probe runs with.
    pub fn bank(&self) -> &MosiBank {
        &self.bank
    }

    /// The design name the FPGA runs.
    pub fn firmware(&self) -> &str {
        &self.firmware
    }

    /// Reset: stream stopped, FIFO emptied, every pixel off, reference voltages 0, counters 0.
    fn reset(&mut self) {
        self.run = None;
        self.fifo.clear();
        self.fifo_read = 0;
        self.mosi_pipe = [0; mosi::REGISTERS];
        self.mosi_address = 0;
        self.mosi_rejected = false;
        self.apply(MosiBank::from_words([0; mosi::REGISTERS]));
        self.calibration_started = None;
        self.fpga_counter = 0;
        self.pipe_held = None;
    }

    /// The probe takes `bank`.
    fn apply(&mut self, bank: MosiBank) {
        self.bank = bank;
        let shanks = self.spec.probe.map_or(0, |p| p.shanks);
        for (c, on) in self.enabled.iter_mut().enumerate() {
            let (s, p) = (c / PIXELS_PER_SHANK, c % PIXELS_PER_SHANK);
            *on = s < shanks && bank.pixel_on(s, p);
        }
        if bank.calibrate() {
            self.calibration_started = Some(Instant::now());
        }
    }

    fn check_present(&mut self, operation: &'static str) -> Result<(), FrontPanelError> {
        if !self.dead && !self.world.present() {
            self.dead = true;
        }
        if self.dead {
            return Err(FrontPanelError::Code { operation, code: OkErrorCode::DeviceNotOpen });
        }
        Ok(())
    }

    fn fifo_len(&self) -> usize {
        self.fifo.len() - self.fifo_read
    }

    /// The calibration's progress (0 to 1) and whether it is still running.
    fn calibration(&self) -> (f64, bool) {
        match self.calibration_started {
            None => (0.0, false),
            Some(t) => {
                let p = (t.elapsed().as_secs_f64() / mosi::CALIBRATION_SECONDS).min(1.0);
                (p, p < 1.0)
            }
        }
    }

    /// Shanks the bank enables pixels on that the probe does not have.
    fn shank_errors(&self) -> [bool; MAX_SHANKS] {
        let shanks = self.spec.probe.map_or(0, |p| p.shanks);
        std::array::from_fn(|s| s >= shanks && self.bank.active_pixels(s) > 0)
    }

    /// The status, but for the firmware name (left empty: see `firmware_words`).
    fn status(&self) -> SinapsStatus {
        let (progress, calibrating) = self.calibration();
        let shanks = self.spec.probe.map_or(0, |p| p.shanks);
        SinapsStatus {
            calibrating,
            calibration_progress: progress,
            active_pixels: std::array::from_fn(|s| if s < shanks { self.bank.active_pixels(s) } else { 0 }),
            vref_volts: std::array::from_fn(|s| f64::from(self.bank.vref_code(s)) * ep::VREF_VOLTS_PER_CODE),
            shank_errors: self.shank_errors(),
            host_counter: self.host_counter,
            fpga_counter: self.fpga_counter,
            firmware: String::new(),
            probe_generation: if self.spec.probe.is_some() { EMULATED_PROBE_GENERATION } else { 0 },
            probe_model: self.spec.probe_channels() as u32,
            running: self.run.is_some(),
            clock_locked: self.clock_locked,
            mosi_rejected: self.mosi_rejected,
            probe_connected: self.spec.probe.is_some(),
            fifo_bytes: self.fifo_len().min(u32::MAX as usize) as u32,
            design_id: ep::DESIGN_ID,
            map_version: ep::MAP_VERSION,
        }
    }

    fn start_run(&mut self) {
        if !self.clock_locked || self.spec.probe.is_none() {
            return;
        }
        let rate = self.rate;
        let signal = match &self.pristine_signal {
            Some((r, s)) if *r == rate => s.clone(),
            _ => {
                let s = SimulatedSource::new(sinaps_signal_config(&self.spec, rate))
                    .expect("emulator signal config is valid");
                self.pristine_signal = Some((rate, s.clone()));
                s
            }
        };
        let block = FrameBlock::new(signal.layout());
        self.run = Some(Run { started: Instant::now(), produced: 0, rate, signal, block, used: 0, stalled: false });
    }

    fn fault_for_frame(&mut self, run: &mut Run, index: u64) -> FrameFate {
        if run.stalled {
            return FrameFate::Stalled;
        }
        let outcome = self.world.frame_fate(&self.spec.faults, index, index as f64 / run.rate);
        if let Some(until) = outcome.hold_pipe {
            self.pipe_held = Some(until);
        }
        if outcome.fate == FrameFate::Stalled {
            self.dead = true;
            run.stalled = true;
        }
        outcome.fate
    }

    /// Produces frames until the run has produced `target`.
    fn produce_until(&mut self, target: u64) {
        let Some(mut run) = self.run.take() else { return };
        let (_, calibrating) = self.calibration();
        let errors = self.shank_errors();
        let mut flags = if calibrating { fl::FLAG_CALIBRATING } else { 0 };
        for (s, &e) in errors.iter().enumerate() {
            if e {
                flags |= 1 << (fl::FLAG_SHANK_ERROR_SHIFT + s as u16);
            }
        }
        let channels = self.enabled.len();
        let capacity = ep::FIFO_CAPACITY_BYTES as usize;
        while run.produced < target && !run.stalled {
            let index = run.produced;
            let row = run.next_row();
            let fate = self.fault_for_frame(&mut run, index);
            if matches!(fate, FrameFate::Stalled) {
                break;
            }
            let signal = run.block.amplifier_frame(row);
            for ((out, &on), &x) in self.sample_scratch.iter_mut().zip(&self.enabled).zip(&signal[..channels]) {
                *out = if on { x } else { 0 };
            }
            let header = FrameHeader { flags, digital_in: run.block.digital_in[row], counter: index };
            encode_frame(&mut self.frame_scratch, &header, &self.sample_scratch);
            run.used += 1;
            run.produced += 1;
            self.counters.frames_generated += 1;
            match fate {
                FrameFate::Drop => {
                    self.counters.frames_dropped += 1;
                    continue;
                }
                FrameFate::Corrupt => {
                    self.frame_scratch[fl::MAGIC_AT] ^= 0xff;
                    self.counters.frames_corrupted += 1;
                }
                FrameFate::Keep | FrameFate::Stalled => {}
            }
            if self.fifo_len() + self.frame_scratch.len() > capacity {
                self.counters.frames_overflowed += 1;
                continue;
            }
            self.fifo.extend_from_slice(&self.frame_scratch);
        }
        self.run = Some(run);
    }

    /// Brings the stream up to now: in real time, the frames whose time has come; free
    /// running, enough for `wanted_bytes` in the FIFO.
    fn advance(&mut self, wanted_bytes: usize) {
        let Some(run) = &self.run else { return };
        let target = if self.spec.realtime {
            (run.started.elapsed().as_secs_f64() * run.rate) as u64
        } else {
            let missing = wanted_bytes.saturating_sub(self.fifo_len());
            run.produced + missing.div_ceil(self.frame_scratch.len().max(1)) as u64
        };
        self.produce_until(target);
    }

    fn on_update_wire_ins(&mut self) {
        let before = self.wires;
        self.wires = self.staged;
        let control = usize::from(ep::WIRE_IN_CONTROL);
        if self.wires[control] & ep::CONTROL_RESET != 0 && before[control] & ep::CONTROL_RESET == 0 {
            self.reset();
        }
        let millihertz = self.wires[usize::from(ep::WIRE_IN_SAMPLE_RATE_MHZ)];
        if millihertz != before[usize::from(ep::WIRE_IN_SAMPLE_RATE_MHZ)] || !self.clock_locked {
            match crate::rates::canonical_sample_rate(f64::from(millihertz) / 1000.0) {
                Some(r) => {
                    self.rate = r;
                    self.clock_locked = true;
                }
                None => self.clock_locked = false,
            }
        }
        self.host_counter = self.wires[usize::from(ep::WIRE_IN_HOST_COUNTER)];
        let run = self.wires[control] & ep::CONTROL_RUN != 0;
        if run && before[control] & ep::CONTROL_RUN == 0 {
            self.start_run();
        } else if !run {
            self.run = None;
        }
    }

    fn compact_fifo(&mut self) {
        if self.fifo_read > 0 && self.fifo_read * 2 >= self.fifo.len() {
            self.fifo.drain(..self.fifo_read);
            self.fifo_read = 0;
        }
    }
}

impl FrontPanel for SinapsPanel {
    fn info(&self) -> PanelInfo {
        PanelInfo {
            serial: self.spec.serial.clone(),
            model: self.spec.module().into(),
            device_id: "Emulated SmartBox Pro".into(),
        }
    }

    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError> {
        const OP: &str = "ConfigureFPGA";
        self.check_present(OP)?;
        self.counters.configure_attempts += 1;
        let bytes = std::fs::read(bitfile)
            .map_err(|_| FrontPanelError::Code { operation: OP, code: OkErrorCode::FileError })?;
        let invalid = FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidBitstream };
        let file = Bitfile::parse(&bytes).map_err(|_| invalid.clone())?;
        let part = ep::fpga_part(self.spec.module()).expect("the emulated module has a part");
        file.check_part(part).map_err(|_| invalid)?;
        self.firmware_words = firmware_words(&file.design);
        self.firmware = file.design;
        self.reset();
        self.clock_locked = false;
        self.staged = [0; 32];
        self.wires = [0; 32];
        Ok(())
    }

    fn set_wire_in(&mut self, endpoint: u8, value: u32, mask: u32) -> Result<(), FrontPanelError> {
        const OP: &str = "SetWireInValue";
        check_endpoint(OP, endpoint, "wire-in", WIRE_IN_RANGE)?;
        self.check_present(OP)?;
        let w = &mut self.staged[usize::from(endpoint)];
        *w = (*w & !mask) | (value & mask);
        Ok(())
    }

    fn update_wire_ins(&mut self) -> Result<(), FrontPanelError> {
        self.check_present("UpdateWireIns")?;
        self.advance(0);
        self.on_update_wire_ins();
        Ok(())
    }

    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError> {
        self.check_present("UpdateWireOuts")?;
        self.advance(0);
        self.wire_outs = self.status().encode();
        let first = usize::from(ep::WIRE_OUT_FIRMWARE_FIRST - 0x20);
        self.wire_outs[first..first + self.firmware_words.len()].copy_from_slice(&self.firmware_words);
        Ok(())
    }

    fn wire_out(&self, endpoint: u8) -> Result<u32, FrontPanelError> {
        check_endpoint("GetWireOutValue", endpoint, "wire-out", WIRE_OUT_RANGE)?;
        if self.dead {
            return Err(FrontPanelError::Code { operation: "GetWireOutValue", code: OkErrorCode::DeviceNotOpen });
        }
        Ok(self.wire_outs[usize::from(endpoint - 0x20)])
    }

    fn activate_trigger_in(&mut self, endpoint: u8, bit: u8) -> Result<(), FrontPanelError> {
        const OP: &str = "ActivateTriggerIn";
        check_endpoint(OP, endpoint, "trigger-in", TRIGGER_IN_RANGE)?;
        if bit > 31 {
            return Err(FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidParameter });
        }
        self.check_present(OP)?;
        match (endpoint, bit) {
            (ep::TRIGGER_IN_MOSI, ep::TRIGGER_MOSI_ADDRESS_RESET) => self.mosi_address = 0,
            (ep::TRIGGER_IN_MOSI, ep::TRIGGER_MOSI_TRANSMIT) => {
                self.advance(0);
                if self.mosi_address >= mosi::REGISTERS {
                    self.apply(MosiBank::from_words(self.mosi_pipe));
                    self.fpga_counter = self.fpga_counter.wrapping_add(1);
                    self.mosi_rejected = false;
                } else {
                    self.mosi_rejected = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn read_pipe_out(
        &mut self,
        endpoint: u8,
        block_size: Option<usize>,
        buf: &mut [u8],
    ) -> Result<usize, FrontPanelError> {
        let op = if block_size.is_some() { "ReadFromBlockPipeOut" } else { "ReadFromPipeOut" };
        check_endpoint(op, endpoint, "pipe-out", PIPE_OUT_RANGE)?;
        self.check_present(op)?;
        if endpoint != ep::PIPE_OUT_DATA {
            return Err(FrontPanelError::Code { operation: op, code: OkErrorCode::InvalidEndpoint });
        }
        if let Some(b) = block_size {
            if b == 0 || !buf.len().is_multiple_of(b) {
                return Err(FrontPanelError::Code { operation: op, code: OkErrorCode::InvalidBlockSize });
            }
        }
        let deadline = Instant::now() + PIPE_TIMEOUT;
        loop {
            self.advance(buf.len());
            self.check_present(op)?;
            let held = match self.pipe_held {
                Some(Some(until)) if Instant::now() >= until => {
                    self.pipe_held = None;
                    false
                }
                Some(_) => true,
                None => false,
            };
            if !held && self.fifo_len() >= buf.len() {
                break;
            }
            let stalled = self.run.as_ref().is_none_or(|r| r.stalled);
            if Instant::now() >= deadline || (stalled && !held && !self.spec.realtime) {
                return Err(FrontPanelError::Code { operation: op, code: OkErrorCode::Timeout });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        buf.copy_from_slice(&self.fifo[self.fifo_read..self.fifo_read + buf.len()]);
        self.fifo_read += buf.len();
        self.compact_fifo();
        Ok(buf.len())
    }

    fn write_pipe_in(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, FrontPanelError> {
        const OP: &str = "WriteToPipeIn";
        check_endpoint(OP, endpoint, "pipe-in", PIPE_IN_RANGE)?;
        self.check_present(OP)?;
        if endpoint != ep::PIPE_IN_MOSI {
            return Err(FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidEndpoint });
        }
        // USB 3 pipe-ins move whole 16-byte blocks.
        if !data.len().is_multiple_of(16) {
            return Err(FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidBlockSize });
        }
        for word in data.chunks_exact(4) {
            if let Some(slot) = self.mosi_pipe.get_mut(self.mosi_address) {
                *slot = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            }
            self.mosi_address += 1;
        }
        self.counters.mosi_bytes_loaded += data.len() as u64;
        Ok(data.len())
    }
}

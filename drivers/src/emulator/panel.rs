//! The emulated Rhythm FPGA behind the FrontPanel operations: wire-ins and triggers program
//! it, the SPI sequencer runs the command lists against the chip models on every port, and
//! the frames it assembles wait in a FIFO until the host reads the pipe.
//!
//! XDAQ with RHS headstages runs the RHS map ([`ep::rhs`]): command lists arrive through the
//! pipe-ins as 32-bit words, four aux slots loop over theirs, every stream is one RHS2116's.
//! Where the aux results land in its frames:
//!
//! * slot 0 (AuxCmd1): the result of the command at list index `k` is in the aux-0 word of the
//!   frame that sent it (frame `k` of a run whose list starts with it). This is where XDAQ's
//!   own software reads the ROM: KonteX's RHX fork (`rhxdatablock.cpp`, `getChipID`, changed
//!   from Intan's indices 57 and 59–61 to 56 and 58–60 for `READ` 255 and 253–251 sent at
//!   56 and 58–60) and pyxdaq (`datablock.py`, `device_id` and `device_name`, rows 56 and
//!   58–60). Intan's RHS controller has them one frame later (RHX `getChipID`, `print`:
//!   `RomOffset = 57`).
//! * slots 1–3: one frame after slot 0's of the same sample (RHX `fillFromUsbBuffer`: those
//!   results are "associated with a different data frame (t+1 compared to aux command 0)").
//!
//! Each sample, the 16 `CONVERT`s come first and the four aux slots after them (Intan's RHS2000
//! Rhythm Stim interface, `main.v`: channels 0–15 convert, 16–19 are the aux slots), so a
//! register an aux command changes acts on the next sample's conversions. What the aux slots
//! carry (`command_selector_stim`):
//!
//! * in stimulation command mode ([`ep::rhs::WIRE_IN_STIM_CMD_MODE`]), the stream's
//!   stimulation sequencer's writes ([`stim_sequencer`]), whatever the aux lists hold;
//! * otherwise each slot's list when the stream's bit of [`ep::rhs::WIRE_IN_AUX_ENABLE`] is
//!   set, and `READ(255)` when it is clear.
//!
//! The stimulation sequencers (one per data stream, 16 units each) are programmed through
//! [`ep::rhs::WIRE_IN_STIM_REG_ADDR`] and [`ep::rhs::WIRE_IN_STIM_REG_WORD`] and step once per
//! sample while the sequencer runs; their trigger bus is the TTL inputs (bits 0–15, the
//! simulated digital inputs), the analog-input thresholds (16–23, never crossed: not modeled)
//! and the manual triggers (24–31, [`ep::rhs::WIRE_IN_MANUAL_TRIGGERS`]). Every frame carries
//! each stream's stimulation-on, polarity, amplifier-settle and charge-recovery words as the
//! sequencer drives them that sample (`main.v` writes them to the FIFO after the last aux
//! slot). The global settle policy (`WireInGlobalSettleSelect`) is not modeled.
//!
//! The eight analog outputs (DACs) read back what each plays: 32768 (0 V) while disabled, the
//! manual value ([`ep::WIRE_IN_DAC_MANUAL`]) for the manual source, or the AC word of the
//! selected stream and channel this sample. Their gain and the audio noise suppression are
//! recorded, not applied.
//!
//! RHD boards on USB 3 (the recording controllers, XDAQ with RHD headstages) play their DACs
//! the same way, and the emulated board has DAC `n` cabled to analog input `n`: an enabled DAC
//! replaces that input's simulated signal with its code (both ±10.24 V offset binary). USB 2
//! boards record their DAC settings only.
//!
//! A wire-in update or trigger on a board running in real time first brings the sequencer up
//! to now, so that a change takes effect at the sample it was made at, as on hardware.
//!
//! ## External fast settle (RHD boards)
//!
//! As Intan's Rhythm firmware does it (`main.v`: `external_fast_settle`, `RAM_data_out_1`),
//! for the triggers of [`Interface::external_fast_settle_triggers`]: every sample the FPGA
//! latches the chosen TTL input (input 0 after power-up) with the TTL-in word of the frame, and
//! remembers the previous sample's. While enabled, aux slot 1's command (the first slot) of
//! every port is replaced by `WRITE(0, 0xfe)` (register 0 with fast settle) on a sample whose
//! input went high, by `WRITE(0, 0xde)` on one whose input went low, and a `WRITE(0, …)` of the
//! slot's own list has its fast-settle bit replaced by the input's level; the other slots pass
//! unchanged. In this model a sample's aux commands reach the chips before its conversions, so
//! the amplifiers are held on exactly the frames whose TTL word has the input high (from the
//! first rising edge after enabling). The TTL inputs are the simulated ones, with the spec's
//! `ttl-in` lines added ([`super::spec::TtlPattern`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chip::ChipModel;
use super::rhs_chip::RhsChipModel;
use stim_sequencer::StimSequencer;

#[path = "stim_sequencer.rs"]
pub mod stim_sequencer;
use super::spec::{EmulatorSpec, TtlPattern};
use super::world::{FrameFate, World};
use crate::frame::{BlockLayout, FrameBlock};
use crate::frontpanel::{
    check_endpoint, FrontPanel, FrontPanelError, OkErrorCode, PanelInfo, PIPE_IN_RANGE, PIPE_OUT_RANGE,
    TRIGGER_IN_RANGE, WIRE_IN_RANGE, WIRE_OUT_RANGE,
};
use crate::rhythm::endpoints::{self as ep, Interface};
use crate::rhythm::rhs::RhsCommand;
use crate::rhythm::{encode_with_extras, Board, ChipFamily, FrameExtras, FrameFormat, HeadstageChip, ANALOG_INPUTS};
use crate::sim::{SimConfig, SimulatedSource};
use crate::source::Source;

/// Firmware id the emulated board reports on wire-out 0x3e (the emulator's own: it is not
/// Intan's or KonteX's firmware).
pub const EMULATED_BOARD_ID: u32 = 0x0e_u32;
/// Firmware version on wire-out 0x3f.
pub const EMULATED_BOARD_VERSION: u32 = 1;

/// What external fast settle sends on the rising and falling edge of its TTL input: `WRITE(0,
/// 0xfe)` and `WRITE(0, 0xde)`, register 0 with and without fast settle (`main.v`: "Send
/// WRITE(0, 254) command to set fast settle", "WRITE(0, 222) ... to reset fast settle").
const EXT_FAST_SETTLE_ON: u16 = 0x80fe;
const EXT_FAST_SETTLE_OFF: u16 = 0x80de;
/// A `WRITE(0, …)` command's upper byte, and register 0's fast-settle bit.
const WRITE_REGISTER_0: u16 = 0x8000;
const FAST_SETTLE_BIT: u16 = 1 << 5;

/// Frames the sequencer assembles at a time.
const CHUNK_FRAMES: usize = 128;
/// How long a pipe read waits for frames that are not there (FrontPanel's default timeout
/// order of magnitude) before it fails with `Timeout`.
const PIPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first bytes of every Xilinx bitstream file (`.bit`): a 9-byte field of 0f f0 pairs.
const BITFILE_HEADER: [u8; 13] = [0x00, 0x09, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x00, 0x00, 0x01];

/// The simulated electrodes behind an emulated board at `rate_hz`: the configuration of the
/// [`SimulatedSource`] whose amplifier channels the chips sample, in port and MISO-line order
/// (an RHD2164's MISO A channels, then its MISO B channels). A run plays it from its frame 0.
pub fn signal_config(spec: &EmulatorSpec, rate_hz: f64) -> SimConfig {
    SimConfig {
        mode: spec.mode,
        amplifier_channels: spec.amplifier_channels().max(1),
        sample_rate_hz: rate_hz,
        seed: spec.seed,
        accelerated: true,
        frames_per_block: CHUNK_FRAMES,
        analog_in_channels: ANALOG_INPUTS,
        aux_channels: 0,
        digital_in_channels: 16,
        digital_out_channels: 16,
    }
}

/// Counts of what the emulated FPGA did, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmulatorCounters {
    /// Frames the sequencer produced.
    pub frames_generated: u64,
    /// Frames lost because the FIFO was full.
    pub frames_overflowed: u64,
    /// Frames removed by a `drop` fault.
    pub frames_dropped: u64,
    /// Frames whose magic a `corrupt` fault damaged.
    pub frames_corrupted: u64,
}

/// One port's chips, one per MISO line.
#[derive(Debug, Clone)]
struct Port {
    lines: [Option<ChipModel>; 2],
    /// XDAQ with RHS headstages: the RHS2116 on each MISO line.
    rhs_lines: [Option<RhsChipModel>; 2],
    cable_delay: u8,
}

/// The sequencer's run.
#[derive(Debug)]
struct Run {
    continuous: bool,
    /// Frames left in a bounded run.
    remaining: u64,
    /// Frames produced in this run.
    produced: u64,
    started: Instant,
    rate: f64,
    format: FrameFormat,
    /// For each enabled stream: (port, MISO line, double-data-rate word).
    streams: Vec<(usize, usize, bool)>,
    /// For each enabled stream, its number on the board (its enable bit).
    board_streams: Vec<usize>,
    signal: SimulatedSource,
    signal_block: FrameBlock,
    signal_used: usize,
    block: FrameBlock,
    extras: FrameExtras,
    /// Each aux slot's list index (RHD boards use the first three).
    aux_index: [usize; 4],
    /// Each port's aux results (slot × MISO line × MISO A/B) of the previous sample: the
    /// Rhythm frame carries them one sample late.
    pending_aux: [[[[u16; 2]; 2]; 3]; 8],
    /// RHS: each port's and MISO line's aux slot 1–3 results of the previous sample.
    rhs_pending: [[[u32; 3]; 2]; ep::rhs::PORTS],
    /// The board went away (an `unplug` fault): nothing more is produced.
    stalled: bool,
}

impl Run {
    /// The row of the simulated electrodes' next sample in `signal_block`, reading the next
    /// block of the signal when this one is used up, with the `ttl` lines added to its TTL
    /// inputs. The caller advances `signal_used`.
    fn next_signal_row(&mut self, ttl: &[TtlPattern]) -> usize {
        if self.signal_used == self.signal_block.frames {
            self.signal.read_block(&mut self.signal_block).expect("simulated source");
            self.signal_used = 0;
            drive_ttl_lines(&mut self.signal_block, ttl);
        }
        self.signal_used
    }
}

/// Adds the `ttl` lines to the TTL-in words of `block`'s frames.
fn drive_ttl_lines(block: &mut FrameBlock, ttl: &[TtlPattern]) {
    for f in 0..block.frames {
        let frame = block.frame_index[f];
        for t in ttl {
            if t.high_at(frame) {
                block.digital_in[f] |= 1 << t.line;
            }
        }
    }
}

/// The FPGA's external fast settle (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
struct ExternalFastSettle {
    enabled: bool,
    input: u8,
    /// The input's level this sample and the sample before.
    level: bool,
    previous: bool,
}

impl ExternalFastSettle {
    /// Latches the input from this sample's TTL-in word.
    fn sample(&mut self, ttl_in: u16) {
        self.previous = self.level;
        self.level = ttl_in & (1 << self.input) != 0;
    }

    /// Aux slot 1's command `word` as the FPGA sends it this sample.
    fn slot_1(&self, word: u16) -> u16 {
        if !self.enabled {
            word
        } else if self.level && !self.previous {
            EXT_FAST_SETTLE_ON
        } else if !self.level && self.previous {
            EXT_FAST_SETTLE_OFF
        } else if word & 0xff00 == WRITE_REGISTER_0 {
            (word & !FAST_SETTLE_BIT) | if self.level { FAST_SETTLE_BIT } else { 0 }
        } else {
            word
        }
    }
}

/// The emulated board, opened.
pub struct EmulatedPanel {
    spec: EmulatorSpec,
    interface: Interface,
    world: Arc<World>,
    /// Gone for good: the board was unplugged while this handle was open.
    dead: bool,
    staged: [u32; 32],
    wires: [u32; 32],
    wire_outs: [u32; 32],
    /// Command RAM: slot × bank × address.
    ram: Vec<u16>,
    /// The board runs the RHS map.
    rhs: bool,
    /// RHS: the aux slots' command lists, slot × address.
    rhs_ram: Vec<u32>,
    /// RHS: where the next pipe-in command goes.
    rhs_ram_address: usize,
    /// RHS: each aux slot's (loop index, end index).
    rhs_lengths: [(usize, usize); ep::rhs::AUX_SLOTS],
    rate: f64,
    clock_locked: bool,
    ports: Vec<Port>,
    run: Option<Run>,
    /// The signal at the current rate, built once per rate and cloned at each run start.
    pristine_signal: Option<(f64, SimulatedSource)>,
    fifo: Vec<u8>,
    fifo_read: usize,
    fifo_capacity_bytes: u64,
    frame_scratch: Vec<u8>,
    counters: EmulatorCounters,
    /// Whether the last run was a continuous one (faults count frames of those only).
    streaming_runs: u64,
    /// A `stall` fault holds the pipe: until this instant (`Some(None)`: for good).
    pipe_held: Option<Option<Instant>>,
    /// RHS: the stimulation sequencer of each data stream.
    sequencers: [StimSequencer; ep::rhs::MAX_STREAMS],
    /// USB 3: the pipe's block size in bytes, as its setup trigger set it
    /// ([`Interface::pipe_setup_triggers`]).
    pipe_block_bytes: Option<usize>,
    /// RHD boards: external fast settle.
    external_fast_settle: ExternalFastSettle,
}

impl std::fmt::Debug for EmulatedPanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedPanel").field("spec", &self.spec.to_string()).finish_non_exhaustive()
    }
}

impl EmulatedPanel {
    /// A freshly powered board as `spec` describes it, alone on its bus.
    pub fn new(spec: &EmulatorSpec) -> EmulatedPanel {
        EmulatedPanel::with_world(spec, Arc::new(World::default()))
    }

    /// A board sharing `world` (its presence and fired faults) with other handles.
    pub fn with_world(spec: &EmulatorSpec, world: Arc<World>) -> EmulatedPanel {
        let interface = spec.interface();
        let mut ports: Vec<Port> = (0..spec.port_count())
            .map(|_| Port { lines: [None, None], rhs_lines: [None, None], cable_delay: 0 })
            .collect();
        let electrodes = super::chip::electrodes(spec);
        let mut first = 0;
        for p in &spec.ports {
            ports[p.port].cable_delay = p.cable_delay;
            for (line, chip) in p.miso.iter().enumerate() {
                match chip {
                    Some(HeadstageChip::Rhd(chip)) => {
                        let own = electrodes[first..first + chip.amplifiers()].to_vec();
                        ports[p.port].lines[line] = Some(ChipModel::new(*chip, first).with_electrodes(own));
                        first += chip.amplifiers();
                    }
                    Some(HeadstageChip::Rhs(chip)) => {
                        let own = electrodes[first..first + chip.amplifiers()].to_vec();
                        ports[p.port].rhs_lines[line] = Some(RhsChipModel::new(*chip, first).with_electrodes(own));
                        first += chip.amplifiers();
                    }
                    None => {}
                }
            }
        }
        let fifo_words = interface.fifo_capacity_words();
        let mut panel = EmulatedPanel {
            spec: spec.clone(),
            interface,
            world,
            dead: false,
            staged: [0; 32],
            wires: [0; 32],
            wire_outs: [0; 32],
            ram: vec![0; ep::AUX_SLOTS * ep::COMMAND_BANKS * ep::COMMANDS_PER_BANK],
            rhs: spec.board.chip() == ChipFamily::Rhs,
            rhs_ram: vec![0; ep::rhs::AUX_SLOTS * ep::rhs::COMMANDS_PER_SLOT],
            rhs_ram_address: 0,
            rhs_lengths: [(0, 0); ep::rhs::AUX_SLOTS],
            rate: 30000.0,
            clock_locked: true,
            ports,
            run: None,
            pristine_signal: None,
            fifo: Vec::new(),
            fifo_read: 0,
            fifo_capacity_bytes: fifo_words * 2,
            frame_scratch: Vec::new(),
            counters: EmulatorCounters::default(),
            streaming_runs: 0,
            pipe_held: None,
            sequencers: Default::default(),
            pipe_block_bytes: None,
            external_fast_settle: ExternalFastSettle::default(),
        };
        panel.reset();
        panel
    }

    /// The spec this board plays.
    pub fn spec(&self) -> &EmulatorSpec {
        &self.spec
    }

    /// What the FPGA did so far.
    pub fn counters(&self) -> EmulatorCounters {
        self.counters
    }

    /// The sample rate the clock synthesizer is set to.
    pub fn sample_rate_hz(&self) -> f64 {
        self.rate
    }

    /// A chip's register as the chip holds it (`None`: nothing on that MISO line).
    pub fn chip_register(&self, port: usize, line: usize, register: u8) -> Option<u8> {
        self.ports.get(port)?.lines.get(line)?.as_ref().map(|c| c.register(register))
    }

    /// An RHS2116's register as the chip holds it (`None`: no RHS2116 on that MISO line).
    pub fn rhs_chip_register(&self, port: usize, line: usize, register: u8) -> Option<u16> {
        self.ports.get(port)?.rhs_lines.get(line)?.as_ref().map(|c| c.register(register))
    }

    /// RHS: register `address` (0–13) of stimulation sequencer unit `channel` of data stream
    /// `stream`, as programmed.
    pub fn stim_sequencer_register(&self, stream: usize, channel: usize, address: usize) -> Option<u16> {
        let seq = self.sequencers.get(stream).filter(|_| self.rhs && channel < 16 && address < 14)?;
        Some(seq.register(channel, address))
    }

    /// An RHS2116's triggered register as it acts (its value at the last `u` flag).
    pub fn rhs_chip_acting_register(&self, port: usize, line: usize, register: u8) -> Option<u16> {
        self.ports.get(port)?.rhs_lines.get(line)?.as_ref().map(|c| c.acting_register(register))
    }

    /// What DAC `dac` (0–7) plays: `None` while disabled, else the (stream, channel) its source
    /// wire selects (the manual value for the board's manual stream number).
    pub fn dac_source(&self, dac: usize) -> Option<(u32, u32)> {
        let wire = *ep::WIRE_IN_DAC_SOURCE.get(dac)?;
        self.dac_bits().decode(self.wires[usize::from(wire)])
    }

    /// The DACs' manual value, gain exponent and audio noise suppression, as set.
    pub fn dac_settings(&self) -> (u16, u32, u32) {
        let reset_run = self.wires[usize::from(ep::WIRE_IN_RESET_RUN)];
        (
            self.wires[usize::from(ep::WIRE_IN_DAC_MANUAL)] as u16,
            (reset_run & ep::DAC_GAIN_MASK) >> ep::DAC_GAIN_SHIFT,
            (reset_run & ep::DAC_NOISE_SUPPRESS_MASK) >> ep::DAC_NOISE_SUPPRESS_SHIFT,
        )
    }

    fn dac_bits(&self) -> ep::DacSourceBits {
        if self.rhs {
            ep::rhs::DAC_SOURCE
        } else {
            self.interface.dac_source()
        }
    }

    /// Each DAC's code this sample, given the frame's amplifier words (`amp`, signed, stream-
    /// major in the frame's stream order) and which board stream each frame stream is.
    fn dac_codes(
        sources: &[Option<(u32, u32)>; 8],
        manual_stream: u32,
        manual: u16,
        amp: &[i16],
        channels_per_stream: usize,
        frame_streams: &[usize],
    ) -> [Option<u16>; 8] {
        std::array::from_fn(|k| {
            let (stream, channel) = sources[k]?;
            if stream == manual_stream {
                return Some(manual);
            }
            let at = frame_streams.iter().position(|&s| s as u32 == stream)?;
            let channel = channel as usize;
            (channel < channels_per_stream).then(|| (amp[at * channels_per_stream + channel] as u16) ^ 0x8000)
        })
    }

    /// RHD boards: the TTL input external fast settle follows, if it is enabled.
    pub fn external_fast_settle(&self) -> Option<u8> {
        let e = self.external_fast_settle;
        e.enabled.then_some(e.input)
    }

    /// RHS: aux slot `slot`'s command list as uploaded, up to its end index.
    pub fn rhs_command_list(&self, slot: usize) -> Option<&[u32]> {
        let (_, end) = *self.rhs_lengths.get(slot)?;
        let base = slot * ep::rhs::COMMANDS_PER_SLOT;
        self.rhs.then(|| &self.rhs_ram[base..=base + end])
    }

    /// Power-on / reset state: command RAM cleared, FIFO emptied, 30 kS/s, sequencer stopped.
    fn reset(&mut self) {
        self.ram.iter_mut().for_each(|w| *w = 0);
        self.rhs_ram.iter_mut().for_each(|w| *w = 0);
        self.rhs_ram_address = 0;
        self.rhs_lengths = [(0, 0); ep::rhs::AUX_SLOTS];
        self.sequencers = Default::default();
        self.fifo.clear();
        self.fifo_read = 0;
        self.run = None;
        self.rate = 30000.0;
        self.clock_locked = true;
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

    fn max_time_step(&self) -> u64 {
        let (lo, hi) = self.interface.max_time_step();
        match hi {
            Some(hi) => {
                u64::from(self.wires[usize::from(lo)] & 0xffff)
                    | (u64::from(self.wires[usize::from(hi)] & 0xffff) << 16)
            }
            None => u64::from(self.wires[usize::from(lo)]),
        }
    }

    /// The enabled streams and the MISO word each carries.
    fn stream_sources(&self) -> Vec<(usize, usize, bool)> {
        let enabled = self.wires[usize::from(ep::WIRE_IN_DATA_STREAM_EN)];
        if self.rhs {
            return (0..ep::rhs::MAX_STREAMS)
                .filter(|s| enabled & (1 << s) != 0)
                .map(|s| {
                    let (port, line) = ep::rhs::stream_source(s);
                    (port, line, false)
                })
                .collect();
        }
        (0..self.interface.max_streams())
            .filter(|s| enabled & (1 << s) != 0)
            .map(|s| {
                let (line, ddr) = match self.interface.data_source_select() {
                    Some(sel) => {
                        let (wire, shift) = Interface::data_source_slot(s);
                        let code = (self.wires[usize::from(sel[wire])] >> shift) & 0xf;
                        ((code & 7) as usize, code >= 8)
                    }
                    None => Interface::usb3_stream_source(s),
                };
                (line / 2, line % 2, ddr)
            })
            .collect()
    }

    fn signal_at(&mut self, rate: f64) -> SimulatedSource {
        match &self.pristine_signal {
            Some((r, s)) if *r == rate => s.clone(),
            _ => {
                let s = SimulatedSource::new(signal_config(&self.spec, rate)).expect("emulator signal config is valid");
                self.pristine_signal = Some((rate, s.clone()));
                s
            }
        }
    }

    fn start_run(&mut self) {
        let streams = self.stream_sources();
        let enabled = self.wires[usize::from(ep::WIRE_IN_DATA_STREAM_EN)];
        let max_streams = if self.rhs { ep::rhs::MAX_STREAMS } else { self.interface.max_streams() };
        let board_streams: Vec<usize> = (0..max_streams).filter(|s| enabled & (1 << s) != 0).collect();
        let continuous = self.wires[usize::from(ep::WIRE_IN_RESET_RUN)] & ep::CONTINUOUS_RUN_BIT != 0;
        let remaining = if continuous { u64::MAX } else { self.max_time_step() };
        let Ok(format) = FrameFormat::new(self.spec.board, streams.len()) else {
            // No stream enabled: the sequencer runs but nothing reaches the FIFO.
            self.run = None;
            return;
        };
        let rate = self.rate;
        let mut signal = self.signal_at(rate);
        let mut signal_block = FrameBlock::new(signal.layout());
        signal.read_block(&mut signal_block).expect("simulated source");
        drive_ttl_lines(&mut signal_block, &self.spec.ttl_in);
        let layout = BlockLayout {
            amplifier_channels: format.amplifier_channels(),
            aux_channels: format.aux_channels(),
            analog_in_channels: ANALOG_INPUTS,
            frames_per_block: CHUNK_FRAMES,
        };
        if continuous {
            self.streaming_runs += 1;
        }
        self.run = Some(Run {
            continuous,
            remaining,
            produced: 0,
            started: Instant::now(),
            rate,
            format,
            streams,
            board_streams,
            signal,
            signal_block,
            signal_used: 0,
            block: FrameBlock::new(layout),
            extras: FrameExtras::new(&format, CHUNK_FRAMES),
            aux_index: [0; 4],
            pending_aux: [[[[0; 2]; 2]; 3]; 8],
            rhs_pending: [[[0; 3]; 2]; ep::rhs::PORTS],
            stalled: false,
        });
    }

    /// Whether a MISO word sampled with delay setting `setting` on a cable whose clean
    /// settings are `delay` and `delay + 1` arrives intact; otherwise the bits slip.
    fn through_cable(word: u16, setting: u32, delay: u8) -> u16 {
        // The same slip as a 32-bit word's, on a word in its upper half.
        (Self::through_cable_32(u32::from(word) << 16, setting, delay) >> 16) as u16
    }

    /// [`Self::through_cable`] for a 32-bit RHS result.
    fn through_cable_32(word: u32, setting: u32, delay: u8) -> u32 {
        let d = u32::from(delay);
        if setting == d || setting == d + 1 {
            word
        } else if setting < d {
            (word >> 1) | 0x8000_0000
        } else {
            word << 1
        }
    }

    /// Runs the sequencer up to `target` frames of the current run (or until it ends).
    fn produce_until(&mut self, target: u64) {
        while let Some(run) = &self.run {
            let due = target.min(run.produced.saturating_add(run.remaining.min(u64::MAX / 2)));
            if run.produced >= due {
                break;
            }
            let frames = ((due - run.produced) as usize).min(CHUNK_FRAMES);
            self.produce_chunk(frames);
        }
    }

    fn produce_chunk(&mut self, frames: usize) {
        let Some(mut run) = self.run.take() else { return };
        let delays = self.wires[usize::from(ep::WIRE_IN_MISO_DELAY)];
        let ttl_out = self.wires[usize::from(ep::WIRE_IN_TTL_OUT)] as u16;
        run.block.frames = frames;
        if self.rhs {
            self.assemble_rhs(&mut run, frames, delays, ttl_out);
        } else {
            self.assemble_rhd(&mut run, frames, delays, ttl_out);
        }
        self.frame_scratch.clear();
        encode_with_extras(&run.format, &run.block, &run.extras, &mut self.frame_scratch)
            .expect("block shaped for format");
        let bpf = run.format.bytes_per_frame();
        let mut scratch = std::mem::take(&mut self.frame_scratch);
        for f in 0..frames {
            let index = run.produced + f as u64;
            let bytes = &mut scratch[f * bpf..(f + 1) * bpf];
            if run.continuous {
                match self.fault_for_frame(&mut run, index) {
                    FrameFate::Keep => {}
                    FrameFate::Drop => {
                        self.counters.frames_dropped += 1;
                        continue;
                    }
                    FrameFate::Corrupt => {
                        bytes[0] ^= 0xff;
                        self.counters.frames_corrupted += 1;
                    }
                    FrameFate::Stalled => continue,
                }
            }
            if (self.fifo_len() + bpf) as u64 > self.fifo_capacity_bytes {
                self.counters.frames_overflowed += 1;
                continue;
            }
            self.fifo.extend_from_slice(bytes);
        }
        self.frame_scratch = scratch;
        self.counters.frames_generated += frames as u64;
        run.produced += frames as u64;
        run.remaining = run.remaining.saturating_sub(frames as u64);
        if run.remaining > 0 {
            self.run = Some(run);
        }
    }

    /// Assembles `frames` frames of an RHD board into `run.block`.
    fn assemble_rhd(&mut self, run: &mut Run, frames: usize, delays: u32, ttl_out: u16) {
        let n_streams = run.streams.len();
        let banks: [u32; 3] = ep::WIRE_IN_AUX_CMD_BANK.map(|w| self.wires[usize::from(w)]);
        let lengths: [(usize, usize); 3] = std::array::from_fn(|slot| {
            let ((le, ls, lm), (ee, es, em)) = self.interface.aux_length(slot);
            let lp = ((self.wires[usize::from(le)] >> ls) & lm) as usize;
            let end = ((self.wires[usize::from(ee)] >> es) & em) as usize;
            (lp, end)
        });
        let cps = 32;
        // USB 3 boards: DAC n is cabled to analog input n (see the module documentation).
        let loopback = self.interface == Interface::Usb3;
        let dac_bits = self.dac_bits();
        let dac_sources: [Option<(u32, u32)>; 8] = std::array::from_fn(|k| self.dac_source(k));
        let dac_manual = self.wires[usize::from(ep::WIRE_IN_DAC_MANUAL)] as u16;
        for f in 0..frames {
            let t = run.next_signal_row(&self.spec.ttl_in);
            let sig_ch = run.signal_block.layout().amplifier_channels;
            let electrodes = &run.signal_block.amplifier[t * sig_ch..(t + 1) * sig_ch];
            let electrode = |i: usize| electrodes.get(i).copied().unwrap_or(0);
            self.external_fast_settle.sample(run.signal_block.digital_in[t]);
            let fast_settle = self.external_fast_settle;
            // The aux commands of this sample, per port and slot. Their results reach the
            // host in the next frame (the first words of the next sample's SPI cycles), so
            // this frame carries the previous sample's: a command at list index k shows at
            // aux index k + 1 (RHX `getChipID` reads register 63, sent at index 18, at 19).
            let carried = run.pending_aux;
            for (p, port) in self.ports.iter_mut().enumerate() {
                for (slot, bank_word) in banks.iter().enumerate() {
                    let bank = ((bank_word >> (4 * p)) & 0xf) as usize;
                    let addr = run.aux_index[slot].min(ep::COMMANDS_PER_BANK - 1);
                    let mut word = self.ram[(slot * ep::COMMAND_BANKS + bank) * ep::COMMANDS_PER_BANK + addr];
                    if slot == 0 {
                        word = fast_settle.slot_1(word);
                    }
                    for line in 0..2 {
                        if let Some(chip) = port.lines[line].as_mut() {
                            let m = chip.command(word, electrode);
                            run.pending_aux[p][slot][line] = [m.a, m.b];
                        }
                    }
                }
                for chip in port.lines.iter_mut().flatten() {
                    chip.end_sample_commands(run.rate);
                }
            }
            for (index, &(loop_index, end)) in run.aux_index.iter_mut().zip(&lengths) {
                *index = if *index >= end { loop_index } else { *index + 1 };
            }
            let amp = &mut run.block.amplifier[f * n_streams * cps..(f + 1) * n_streams * cps];
            let aux = &mut run.block.aux[f * n_streams * 3..(f + 1) * n_streams * 3];
            for (s, &(p, line, ddr)) in run.streams.iter().enumerate() {
                let setting = (delays >> (4 * p)) & 0xf;
                let port = &mut self.ports[p];
                let cable = port.cable_delay;
                match port.lines[line].as_mut() {
                    Some(chip) => {
                        for c in 0..cps {
                            let m = chip.command(
                                crate::rhythm::rhd::RhdCommand::Convert { channel: c as u8, dsp: false }.word(),
                                electrode,
                            );
                            let word = if ddr { m.b } else { m.a };
                            amp[s * cps + c] = (Self::through_cable(word, setting, cable) ^ 0x8000) as i16;
                        }
                        for slot in 0..3 {
                            let word = carried[p][slot][line][ddr as usize];
                            aux[s * 3 + slot] = Self::through_cable(word, setting, cable);
                        }
                    }
                    None => {
                        amp[s * cps..(s + 1) * cps].iter_mut().for_each(|x| *x = 0x8000u16 as i16);
                        aux[s * 3..(s + 1) * 3].iter_mut().for_each(|x| *x = 0);
                    }
                }
            }
            let index = run.produced + f as u64;
            run.block.frame_index[f] = index;
            let a_n = ANALOG_INPUTS;
            run.block.analog_in[f * a_n..(f + 1) * a_n]
                .copy_from_slice(&run.signal_block.analog_in[t * a_n..(t + 1) * a_n]);
            run.block.digital_in[f] = run.signal_block.digital_in[t];
            run.block.digital_out[f] = ttl_out;
            if loopback {
                let codes = Self::dac_codes(
                    &dac_sources,
                    dac_bits.manual_stream,
                    dac_manual,
                    &run.block.amplifier[f * n_streams * cps..(f + 1) * n_streams * cps],
                    cps,
                    &run.board_streams,
                );
                for (input, code) in run.block.analog_in[f * a_n..(f + 1) * a_n].iter_mut().zip(codes) {
                    if let Some(code) = code {
                        *input = code;
                    }
                }
            }
            if run.format.board().has_device_timestamp() {
                run.extras.device_timestamp_us[f] = (index as f64 * 1e6 / run.rate) as u64;
            }
            run.signal_used += 1;
        }
    }

    /// Assembles `frames` frames of XDAQ with RHS headstages into `run.block` and
    /// `run.extras` (see the module documentation for the order of each sample's commands and
    /// where the aux results land).
    fn assemble_rhs(&mut self, run: &mut Run, frames: usize, delays: u32, ttl_out: u16) {
        let n_streams = run.streams.len();
        let cps = ChipFamily::Rhs.channels_per_stream();
        let aux_n = ChipFamily::Rhs.aux_per_stream();
        let amps = n_streams * cps;
        let aux_enable = self.wires[usize::from(ep::rhs::WIRE_IN_AUX_ENABLE)];
        let stim_mode = self.wires[usize::from(ep::rhs::WIRE_IN_STIM_CMD_MODE)] & 1 != 0;
        let reset_run = self.wires[usize::from(ep::WIRE_IN_RESET_RUN)];
        let settle_register = if reset_run & ep::rhs::AMP_SETTLE_MODE_BIT != 0 {
            crate::rhythm::rhs::REG_AMP_FAST_SETTLE
        } else {
            crate::rhythm::rhs::REG_AMP_FL_SELECT
        };
        let recovery_register = if reset_run & ep::rhs::CHARGE_RECOVERY_MODE_BIT != 0 {
            crate::rhythm::rhs::REG_CHARGE_RECOVERY_SWITCH
        } else {
            crate::rhythm::rhs::REG_CHARGE_RECOVERY_LIMITED
        };
        let manual_triggers = self.wires[usize::from(ep::rhs::WIRE_IN_MANUAL_TRIGGERS)] & 0xff;
        let dac_sources: [Option<(u32, u32)>; 8] = std::array::from_fn(|k| self.dac_source(k));
        let dac_manual = self.wires[usize::from(ep::WIRE_IN_DAC_MANUAL)] as u16;
        let lengths = self.rhs_lengths;
        let read_255 = RhsCommand::read(crate::rhythm::rhs::REG_CHIP_ID).word();
        for f in 0..frames {
            let t = run.next_signal_row(&self.spec.ttl_in);
            let sig_ch = run.signal_block.layout().amplifier_channels;
            let electrodes = &run.signal_block.amplifier[t * sig_ch..(t + 1) * sig_ch];
            let electrode = |i: usize| electrodes.get(i).copied().unwrap_or(0);
            // The sequencers step at the start of the sample.
            let triggers = u32::from(run.signal_block.digital_in[t]) | (manual_triggers << 24);
            for seq in self.sequencers.iter_mut() {
                seq.step(triggers);
            }
            // The 16 conversions.
            let amp = &mut run.block.amplifier[f * amps..(f + 1) * amps];
            let dc = &mut run.extras.dc_amplifier[f * amps..(f + 1) * amps];
            for (s, &(p, line, _)) in run.streams.iter().enumerate() {
                let setting = (delays >> (4 * p)) & 0xf;
                let port = &mut self.ports[p];
                let cable = port.cable_delay;
                match port.rhs_lines[line].as_mut() {
                    Some(chip) => {
                        for c in 0..cps {
                            let word = chip.command(RhsCommand::convert(c as u8).word(), electrode);
                            let word = Self::through_cable_32(word, setting, cable);
                            amp[s * cps + c] = ((word >> 16) as u16 ^ 0x8000) as i16;
                            dc[s * cps + c] = word as u16;
                        }
                    }
                    None => {
                        amp[s * cps..(s + 1) * cps].iter_mut().for_each(|x| *x = 0x8000u16 as i16);
                        dc[s * cps..(s + 1) * cps].iter_mut().for_each(|x| *x = 0);
                    }
                }
            }
            // Then the four aux slots: slot 0's result goes into this frame, slots 1-3's into
            // the next one.
            let carried = run.rhs_pending;
            let mut slot0 = [[0u32; 2]; ep::rhs::PORTS];
            for (p, port) in self.ports.iter_mut().enumerate() {
                for (line, chip) in port.rhs_lines.iter_mut().enumerate() {
                    let Some(chip) = chip.as_mut() else { continue };
                    let stream = 2 * p + line;
                    for slot in 0..ep::rhs::AUX_SLOTS {
                        let word = if stim_mode {
                            self.sequencers[stream].command(slot, settle_register, recovery_register)
                        } else if aux_enable & (1 << stream) != 0 {
                            self.rhs_ram[slot * ep::rhs::COMMANDS_PER_SLOT + run.aux_index[slot]]
                        } else {
                            read_255
                        };
                        let result = chip.command(word, electrode);
                        match slot {
                            0 => slot0[p][line] = result,
                            _ => run.rhs_pending[p][line][slot - 1] = result,
                        }
                    }
                    chip.end_sample(run.rate);
                }
            }
            for (index, &(loop_index, end)) in run.aux_index.iter_mut().zip(&lengths) {
                *index = if *index >= end { loop_index } else { *index + 1 };
            }
            let aux = &mut run.block.aux[f * n_streams * aux_n..(f + 1) * n_streams * aux_n];
            let aux_high = &mut run.extras.aux_high[f * n_streams * aux_n..(f + 1) * n_streams * aux_n];
            for (s, &(p, line, _)) in run.streams.iter().enumerate() {
                let setting = (delays >> (4 * p)) & 0xf;
                let cable = self.ports[p].cable_delay;
                if self.ports[p].rhs_lines[line].is_some() {
                    let results = [slot0[p][line], carried[p][line][0], carried[p][line][1], carried[p][line][2]];
                    for (slot, result) in results.into_iter().enumerate() {
                        let word = Self::through_cable_32(result, setting, cable);
                        aux[s * aux_n + slot] = word as u16;
                        aux_high[s * aux_n + slot] = (word >> 16) as u16;
                    }
                } else {
                    aux[s * aux_n..(s + 1) * aux_n].iter_mut().for_each(|x| *x = 0);
                    aux_high[s * aux_n..(s + 1) * aux_n].iter_mut().for_each(|x| *x = 0);
                }
                let seq = &self.sequencers[2 * p + line];
                let at = f * n_streams + s;
                run.extras.stim_on[at] = seq.stim_on;
                run.extras.stim_polarity[at] = seq.stim_polarity;
                run.extras.amp_settle[at] = seq.amp_settle;
                run.extras.charge_recovery[at] = seq.charge_recovery;
            }
            let index = run.produced + f as u64;
            run.block.frame_index[f] = index;
            let a_n = ANALOG_INPUTS;
            run.block.analog_in[f * a_n..(f + 1) * a_n]
                .copy_from_slice(&run.signal_block.analog_in[t * a_n..(t + 1) * a_n]);
            run.block.digital_in[f] = run.signal_block.digital_in[t];
            run.block.digital_out[f] = ttl_out;
            let dacs = crate::rhythm::ANALOG_OUTPUTS;
            let codes = Self::dac_codes(
                &dac_sources,
                ep::rhs::DAC_SOURCE.manual_stream,
                dac_manual,
                &run.block.amplifier[f * amps..(f + 1) * amps],
                cps,
                &run.board_streams,
            );
            for (out, code) in run.extras.analog_out[f * dacs..(f + 1) * dacs].iter_mut().zip(codes) {
                *out = code.unwrap_or(ep::DAC_ZERO_CODE as u16);
            }
            if run.format.board().has_device_timestamp() {
                run.extras.device_timestamp_us[f] = (index as f64 * 1e6 / run.rate) as u64;
            }
            run.signal_used += 1;
        }
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

    /// Brings the sequencer up to now: in real time, the frames whose time has come; free
    /// running, enough for `wanted_bytes` in the FIFO.
    fn advance(&mut self, wanted_bytes: usize) {
        let Some(run) = &self.run else { return };
        if self.spec.realtime {
            let target = (run.started.elapsed().as_secs_f64() * run.rate) as u64;
            self.produce_until(target);
        } else if !run.continuous {
            // A bounded run has nothing to wait for: it completes at once.
            let target = run.produced + run.remaining;
            self.produce_until(target);
        } else {
            let bpf = run.format.bytes_per_frame();
            let missing = wanted_bytes.saturating_sub(self.fifo_len());
            let target = run.produced + missing.div_ceil(bpf) as u64;
            self.produce_until(target);
        }
    }

    fn on_update_wire_ins(&mut self) {
        self.catch_up();
        let before = self.wires;
        self.wires = self.staged;
        let reset_run = usize::from(ep::WIRE_IN_RESET_RUN);
        if self.wires[reset_run] & ep::RESET_BIT != 0 && before[reset_run] & ep::RESET_BIT == 0 {
            self.reset();
        }
        // Leaving continuous mode ends a continuous run once it reaches the run length.
        let max = self.max_time_step();
        if self.wires[reset_run] & ep::CONTINUOUS_RUN_BIT == 0 {
            if let Some(run) = self.run.as_mut().filter(|r| r.continuous) {
                run.continuous = false;
                run.remaining = max.saturating_sub(run.produced);
                if run.remaining == 0 {
                    self.run = None;
                }
            }
        }
    }

    /// On a board running in real time, produces the frames whose time has come with the wires
    /// as they were, so that the change about to be made acts from now on.
    fn catch_up(&mut self) {
        if self.spec.realtime && self.run.as_ref().is_some_and(|r| !r.stalled) {
            self.advance(0);
        }
    }

    fn on_trigger(&mut self, endpoint: u8, bit: u8) {
        self.catch_up();
        if let Some([block, _burst]) = self.interface.pipe_setup_triggers() {
            // The block size arrives in 32-bit words; the RAM burst size is not modeled.
            if (endpoint, bit) == block {
                self.pipe_block_bytes = Some(4 * self.wires[usize::from(ep::WIRE_IN_MULTI_USE)] as usize);
                return;
            }
        }
        let (dcm_ep, dcm_bit) = self.interface.dcm_prog_trigger();
        if (endpoint, bit) == (dcm_ep, dcm_bit) {
            let rate = ep::rate_of_pll_word(self.wires[usize::from(ep::WIRE_IN_DATA_FREQ_PLL)]);
            match crate::rates::canonical_sample_rate(rate) {
                Some(r) => {
                    self.rate = r;
                    self.clock_locked = true;
                }
                // A clock the chips cannot run at never locks.
                None => self.clock_locked = false,
            }
            return;
        }
        if self.rhs {
            self.on_rhs_trigger(endpoint, bit);
            return;
        }
        let [enable, input] = self.interface.external_fast_settle_triggers();
        let multi_use = self.wires[usize::from(ep::WIRE_IN_MULTI_USE)];
        if (endpoint, bit) == enable {
            self.external_fast_settle.enabled = multi_use & 1 != 0;
            return;
        }
        if (endpoint, bit) == input {
            self.external_fast_settle.input = (multi_use & 0xf) as u8;
            return;
        }
        for slot in 0..ep::AUX_SLOTS {
            if (endpoint, bit) == self.interface.ram_write_trigger(slot) {
                let addr = (self.wires[usize::from(ep::WIRE_IN_CMD_RAM_ADDR)] as usize) % ep::COMMANDS_PER_BANK;
                let bank = (self.wires[usize::from(ep::WIRE_IN_CMD_RAM_BANK)] as usize) % ep::COMMAND_BANKS;
                self.ram[(slot * ep::COMMAND_BANKS + bank) * ep::COMMANDS_PER_BANK + addr] =
                    self.wires[usize::from(ep::WIRE_IN_CMD_RAM_DATA)] as u16;
                return;
            }
        }
        if (endpoint, bit) == (ep::TRIGGER_IN_SPI_START, 0) && self.clock_locked {
            self.start_run();
        }
    }

    /// The triggers of the RHS map other than the clock's.
    fn on_rhs_trigger(&mut self, endpoint: u8, bit: u8) {
        let multi_use = self.wires[usize::from(ep::WIRE_IN_MULTI_USE)] as usize;
        match (endpoint, bit) {
            (ep::rhs::TRIGGER_IN_RAM_ADDR_RESET, 0) => self.rhs_ram_address = 0,
            (ep::rhs::TRIGGER_IN_RAM_ADDR_RESET, ep::rhs::TRIGGER_IN_STIM_PROG_BIT) => {
                let address = self.wires[usize::from(ep::rhs::WIRE_IN_STIM_REG_ADDR)];
                let word = self.wires[usize::from(ep::rhs::WIRE_IN_STIM_REG_WORD)] as u16;
                let (module, channel, register) =
                    (((address >> 8) & 0x1f) as usize, ((address >> 4) & 0xf) as usize, (address & 0xf) as usize);
                // Modules 8-16 (the analog-out and digital-out sequencers) are not modeled.
                if let Some(seq) = self.sequencers.get_mut(module) {
                    seq.program(channel, register, word);
                }
            }
            (ep::TRIGGER_IN_SPI_START, ep::rhs::TRIGGER_IN_RESET_SEQUENCERS_BIT) if self.run.is_none() => {
                self.sequencers.iter_mut().for_each(StimSequencer::reset);
            }
            (ep::rhs::TRIGGER_IN_AUX_CMD_LENGTH, 0..=7) => {
                let slot = usize::from(bit % 4);
                let index = multi_use % ep::rhs::COMMANDS_PER_SLOT;
                if bit >= 4 {
                    self.rhs_lengths[slot].0 = index;
                } else {
                    self.rhs_lengths[slot].1 = index;
                }
            }
            (ep::TRIGGER_IN_SPI_START, 0) if self.clock_locked => self.start_run(),
            _ => {}
        }
    }

    /// An RHS command-list upload: 32-bit little-endian words into aux slot `slot` from the
    /// current RAM address on. The transfer must be a whole number of 16-byte blocks (RHX
    /// `uploadCommandList`: "all PipeIn transactions need to work with an integer multiple of
    /// 16 bytes" on the XEM7310); words past the slot's 8192 are dropped.
    fn write_rhs_commands(&mut self, slot: usize, data: &[u8]) -> Result<usize, FrontPanelError> {
        if !data.len().is_multiple_of(16) {
            return Err(FrontPanelError::Code { operation: "WriteToPipeIn", code: OkErrorCode::InvalidBlockSize });
        }
        for word in data.chunks_exact(4) {
            if self.rhs_ram_address < ep::rhs::COMMANDS_PER_SLOT {
                let word = u32::from_le_bytes(word.try_into().expect("4 bytes"));
                self.rhs_ram[slot * ep::rhs::COMMANDS_PER_SLOT + self.rhs_ram_address] = word;
            }
            self.rhs_ram_address += 1;
        }
        Ok(data.len())
    }

    fn compact_fifo(&mut self) {
        if self.fifo_read > 0 && self.fifo_read * 2 >= self.fifo.len() {
            self.fifo.drain(..self.fifo_read);
            self.fifo_read = 0;
        }
    }
}

impl FrontPanel for EmulatedPanel {
    fn info(&self) -> PanelInfo {
        PanelInfo {
            serial: self.spec.serial.clone(),
            model: self.spec.model().into(),
            device_id: board_label(self.spec.board).into(),
        }
    }

    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError> {
        const OP: &str = "ConfigureFPGA";
        self.check_present(OP)?;
        let bytes = std::fs::read(bitfile)
            .map_err(|_| FrontPanelError::Code { operation: OP, code: OkErrorCode::FileError })?;
        if !bytes.starts_with(&BITFILE_HEADER) {
            return Err(FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidBitstream });
        }
        self.reset();
        self.external_fast_settle = ExternalFastSettle::default();
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
        self.on_update_wire_ins();
        Ok(())
    }

    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError> {
        self.check_present("UpdateWireOuts")?;
        self.advance(0);
        let words = (self.fifo_len() / 2) as u32;
        let (lo, hi) = self.interface.fifo_words();
        match hi {
            Some(hi) => {
                self.wire_outs[usize::from(lo - 0x20)] = words & 0xffff;
                self.wire_outs[usize::from(hi - 0x20)] = words >> 16;
            }
            None => self.wire_outs[usize::from(lo - 0x20)] = words,
        }
        let running = self.run.is_some();
        self.wire_outs[usize::from(ep::WIRE_OUT_SPI_RUNNING - 0x20)] = running as u32;
        let ttl_in = self.run.as_ref().map_or(0, |r| {
            let t = r.signal_used.saturating_sub(1);
            u32::from(r.signal_block.digital_in[t])
        });
        self.wire_outs[usize::from(ep::WIRE_OUT_TTL_IN - 0x20)] = ttl_in;
        self.wire_outs[usize::from(ep::WIRE_OUT_DATA_CLK_LOCKED - 0x20)] =
            ep::DCM_PROG_DONE | if self.clock_locked { ep::DATA_CLOCK_LOCKED } else { 0 };
        self.wire_outs[usize::from(ep::WIRE_OUT_BOARD_MODE - 0x20)] = board_mode(self.spec.board);
        self.wire_outs[usize::from(ep::WIRE_OUT_BOARD_ID - 0x20)] = EMULATED_BOARD_ID;
        self.wire_outs[usize::from(ep::WIRE_OUT_BOARD_VERSION - 0x20)] = EMULATED_BOARD_VERSION;
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
        self.on_trigger(endpoint, bit);
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
            // A block size other than the one the FPGA was set to cannot be read; the Open
            // Ephys USB 3 firmware has no block size until its own trigger (0x5a) sets one.
            let programmed = match self.pipe_block_bytes {
                Some(p) => p == b,
                None => self.interface != Interface::OpenEphysUsb3,
            };
            if b == 0 || !buf.len().is_multiple_of(b) || !programmed {
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
            if held && Instant::now() >= deadline {
                return Err(FrontPanelError::Code { operation: op, code: OkErrorCode::Timeout });
            }
            let stalled = self.run.as_ref().is_none_or(|r| r.stalled);
            if Instant::now() >= deadline || (stalled && !self.spec.realtime) {
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
        if self.rhs {
            if let Some(slot) = ep::rhs::PIPE_IN_AUX_CMD.iter().position(|&e| e == endpoint) {
                return self.write_rhs_commands(slot, data);
            }
        }
        // RHD boards take their command lists through wire-ins; no other pipe-in is wired.
        Err(FrontPanelError::Code { operation: OP, code: OkErrorCode::InvalidEndpoint })
    }
}

/// The board's name in the FrontPanel device id.
fn board_label(board: Board) -> &'static str {
    match board {
        Board::RhdUsbInterface => "Emulated RHD USB interface",
        Board::OpenEphys => "Emulated Open Ephys board",
        Board::OpenEphysUsb3 => "Emulated Open Ephys board (USB 3)",
        Board::RhdController => "Emulated RHD controller",
        Board::RhsController => "Emulated RHS controller",
        Board::XdaqRhd(_) | Board::XdaqRhs(_) => "Emulated XDAQ",
    }
}

/// Board mode strapped on the board (wire-out 0x25).
pub fn board_mode(board: Board) -> u32 {
    let board = match board {
        Board::XdaqRhd(_) => Board::XdaqRhd(crate::rhythm::XdaqGeneration::One),
        Board::XdaqRhs(_) => Board::XdaqRhs(crate::rhythm::XdaqGeneration::One),
        other => other,
    };
    super::BOARD_MODES.iter().find(|(b, _)| *b == board).map_or(0, |(_, m)| *m)
}

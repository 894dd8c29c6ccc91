//! Where a Rhythm FPGA's registers sit among the FrontPanel endpoints.
//!
//! Two generations of Intan's Rhythm firmware put the same registers at slightly different
//! endpoints (Intan-RHX `Engine/API/Hardware/rhxcontroller.h`, enums `EndPoint`,
//! `EndPointRecord`, `EndPointUSB2`, `EndPointUSB3`, `EndPointRecordUSB2`, `EndPointRecordUSB3`):
//! [`Interface::Usb2`] (the RHD USB interface board, and the Open Ephys acquisition board,
//! which runs the same firmware) and [`Interface::Usb3`] (the 512/1024-channel recording
//! controllers, and XDAQ boards with RHD headstages, which speak the same map). The
//! constants here are the endpoints both share; [`Interface`] answers for the rest. XDAQ with
//! RHS headstages runs another map, in [`rhs`].
//!
//! The Open Ephys acquisition board's USB 3 version ([`Interface::OpenEphysUsb3`]) is neither
//! of Intan's two: Open Ephys's own USB 3 port of the USB 2 Rhythm firmware. Its driver
//! (open-ephys-plugins/acquisition-board, `Source/devices/opalkelly/rhythm-api/
//! rhd2000evalboard.h` and `.cpp`, class `Rhd2000EvalBoard` with its `usb3` flag; the same in
//! horizongir/rhythm.net `Rhythm.Net/Rhd2000EvalBoard.cs`) keeps the USB 2 enum `OkEndPoint`
//! whole for both versions: run length and FIFO level split into 16-bit halves, one wire-in
//! per aux slot's length and loop index, RAM writes on trigger 0x42, data sources chosen on
//! wires 0x12/0x13. What `usb3` changes: 16 streams, whose sources 8–15 sit in bits 16–31 of
//! the same two wires (`setDataSource`); a block-throttled pipe read in 1024-byte blocks
//! (`USB3_BLOCK_SIZE`, `readDataBlock`: `ReadFromBlockPipeOut`); the block and DDR burst sizes
//! set at reset through Open Ephys's trigger 0x5a, bits 16 and 17 (`resetBoard`,
//! `TrigInOpenEphys`); the throttle overridden by bit 16 of wire 0x00 while flushing
//! (`flush`); other DAC source bits (`enableDac`, `selectDacDataStream`). It is found by its
//! Opal Kelly module, an XEM6310-LX45 (`open`: `OK_PRODUCT_XEM6310LX45` sets `usb3`), and
//! its firmware reports board id 600 on wire-out 0x3e (`RHYTHM_BOARD_ID_USB3`, checked by
//! `uploadFpgaBitfile`); the sample clock is programmed as on every Rhythm board
//! (`setSampleRate`, [`pll_setting`]).

use super::format::Board;

/// Reset (bit 0), continuous run (bit 1), DSP settle (bit 2); USB 3: bit 16 overrides the
/// pipe's block throttle while flushing.
pub const WIRE_IN_RESET_RUN: u8 = 0x00;
/// Clock synthesizer `256 × M + D` (the FPGA clock is 100 MHz × M / D / 2).
pub const WIRE_IN_DATA_FREQ_PLL: u8 = 0x03;
/// MISO sampling delay, 4 bits per port (port A in bits 0–3).
pub const WIRE_IN_MISO_DELAY: u8 = 0x04;
/// Command RAM address, bank and data, latched into a slot by a RAM-write trigger.
pub const WIRE_IN_CMD_RAM_ADDR: u8 = 0x05;
pub const WIRE_IN_CMD_RAM_BANK: u8 = 0x06;
pub const WIRE_IN_CMD_RAM_DATA: u8 = 0x07;
/// Command bank of aux slots 1–3, 4 bits per port.
pub const WIRE_IN_AUX_CMD_BANK: [u8; 3] = [0x08, 0x09, 0x0a];
/// One enable bit per data stream.
pub const WIRE_IN_DATA_STREAM_EN: u8 = 0x14;
/// The 16 TTL outputs.
pub const WIRE_IN_TTL_OUT: u8 = 0x15;
/// DAC 1–8 source selection.
pub const WIRE_IN_DAC_SOURCE: [u8; 8] = [0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d];
/// Value of a DAC set to its manual source.
pub const WIRE_IN_DAC_MANUAL: u8 = 0x1e;
/// Argument of the configuration triggers.
pub const WIRE_IN_MULTI_USE: u8 = 0x1f;

/// Starts the SPI sequencer (bit 0).
pub const TRIGGER_IN_SPI_START: u8 = 0x41;

/// Bit 0: the sequencer is running.
pub const WIRE_OUT_SPI_RUNNING: u8 = 0x22;
/// The 16 TTL inputs.
pub const WIRE_OUT_TTL_IN: u8 = 0x23;
/// Bit 0: data clock locked; bit 1: clock programming done.
pub const WIRE_OUT_DATA_CLK_LOCKED: u8 = 0x24;
/// The 4-bit board mode strapped on the board.
pub const WIRE_OUT_BOARD_MODE: u8 = 0x25;
/// Firmware id and version.
pub const WIRE_OUT_BOARD_ID: u8 = 0x3e;
pub const WIRE_OUT_BOARD_VERSION: u8 = 0x3f;

/// The sample stream.
pub const PIPE_OUT_DATA: u8 = 0xa0;

/// Board id of the Open Ephys USB 3 firmware on [`WIRE_OUT_BOARD_ID`] (Open Ephys
/// `rhd2000evalboard.h`: `RHYTHM_BOARD_ID_USB3`; its USB 2 firmware reports
/// `RHYTHM_BOARD_ID_USB2` = 500).
pub const OPEN_EPHYS_USB3_BOARD_ID: u32 = 600;

/// Bits of [`WIRE_OUT_DATA_CLK_LOCKED`].
pub const DATA_CLOCK_LOCKED: u32 = 0x1;
pub const DCM_PROG_DONE: u32 = 0x2;

/// Bits of [`WIRE_IN_RESET_RUN`].
pub const RESET_BIT: u32 = 0x1;
pub const CONTINUOUS_RUN_BIT: u32 = 0x2;
pub const DSP_SETTLE_BIT: u32 = 0x4;
pub const PIPE_THROTTLE_OVERRIDE_BIT: u32 = 1 << 16;

/// Aux command slots of an RHD board, each with up to 1024 commands in each of 16 banks.
pub const AUX_SLOTS: usize = 3;
pub const COMMAND_BANKS: usize = 16;
pub const COMMANDS_PER_BANK: usize = 1024;

/// XDAQ running its RHS (stimulation/recording) firmware: the registers of Intan's RHS
/// stim/record controller (Intan-RHX `rhxcontroller.h`, `EndPointStimRecordUSB2`; pyxdaq
/// `constants.py`, class `RHS`) as KonteX's fork of RHX (kontex-neuro/Intan-RHX,
/// `EndPointStimRecordUSB3`, `uploadCommandList`, `selectAuxCommandLength`) and pyxdaq
/// (`xdaq.py`: `upload_auxcmd`, `set_auxcmd_length`, `enable_auxcmd_on_stream`) drive it.
///
/// What differs from the RHD map: four aux command slots of up to 8192 32-bit commands each
/// and no banks (`set_auxcmd_bank` does nothing in RHS mode), uploaded through pipe-ins, their
/// lengths set through a trigger; one data stream per MISO line; a wire-in enabling the aux
/// slots per stream. The sample clock, MISO delays, data-stream enables, TTL outputs and the
/// reset/run bits are where the RHD map has them.
pub mod rhs {
    use super::Interface;

    /// SPI ports with headstage connectors (A–D), two MISO lines each, one RHS2116 per line and
    /// no double data rate (RHX `maxNumSPIPorts` = 4 for `ControllerStimRecord`; pyxdaq
    /// `XDAQPorts.default(2, 1, False)`: 4 HDMI ports of 2 SPI lines with 1 chip each). The MISO
    /// delay of port `p` is nibble `p` of the MISO-delay wire (pyxdaq `scan_headstages` sets
    /// one delay per port in RHS mode).
    pub const PORTS: usize = 4;
    /// Data streams: stream `n` carries MISO line `n` (port `n / 2`, line `n % 2`) (RHX
    /// `findConnectedChips`: `enableDataStream(oldStream)` for an RHS2116 on MISO line
    /// `oldStream`; `maxNumDataStreams` = 8).
    pub const MAX_STREAMS: usize = 8;
    /// Bit 0: stimulation command mode (RHX `setStimCmdMode`; cleared by `initialize`).
    pub const WIRE_IN_STIM_CMD_MODE: u8 = 0x05;
    /// Bit 0: convert the DC amplifiers (RHX `enableDcAmpConvert`; set by `initialize`).
    pub const WIRE_IN_DC_AMP_CONVERT: u8 = 0x08;
    /// One bit per data stream (0–7): the aux command slots reach that stream's chip; a clear
    /// bit leaves the stream to the FPGA's automatic stimulation control (RHX
    /// `enableAuxCommandsOnAllStreams` writes 0xff).
    pub const WIRE_IN_AUX_ENABLE: u8 = 0x0c;
    /// Bit 0: the next pipe-in command goes to address 0 (sent before every upload).
    pub const TRIGGER_IN_RAM_ADDR_RESET: u8 = 0x42;
    /// Bit `slot`: the multi-use wire is aux slot `slot`'s end index; bit `slot + 4`: its loop
    /// index.
    pub const TRIGGER_IN_AUX_CMD_LENGTH: u8 = 0x45;
    /// The pipe-ins taking each aux slot's command list, 32-bit little-endian words (XRHX
    /// `PipeInAuxCmd1..4`; Intan's own controller splits the words over a pipe-in pair,
    /// 0x80/0x81 ..., which XDAQ's RHS firmware is not driven through).
    pub const PIPE_IN_AUX_CMD: [u8; 4] = [0x81, 0x83, 0x85, 0x87];
    /// Aux command slots.
    pub const AUX_SLOTS: usize = 4;
    /// Commands a slot holds (RHX `maxCommandLength` for `ControllerStimRecord`).
    pub const COMMANDS_PER_SLOT: usize = 8192;
    /// Uploads are padded to a whole number of 16 commands (XRHX `uploadCommandList` pads with
    /// zero words; pyxdaq `upload_auxcmd` pads too).
    pub const UPLOAD_COMMAND_MULTIPLE: usize = 16;
    /// The stimulation sequencers' programming port (RHX `programStimReg`; pyxdaq
    /// `StimSubsystem.program_reg`; Intan's RHS2000 Rhythm Stim interface `main.v`: `prog_address
    /// = ep06[3:0]`, `prog_channel = ep06[7:4]`, `prog_module = ep06[12:8]`, `prog_word =
    /// ep07`, `prog_trig = ep42trig[1]`): the address wire holds `module << 8 | channel << 4 |
    /// register`, the word wire the value, and bit 1 of trigger 0x42 writes it. Modules 0–7 are
    /// the stimulation sequencers of data streams 0–7, one unit per amplifier channel.
    pub const WIRE_IN_STIM_REG_ADDR: u8 = 0x06;
    pub const WIRE_IN_STIM_REG_WORD: u8 = 0x07;
    pub const TRIGGER_IN_STIM_PROG_BIT: u8 = 1;
    /// Bits 0–7: manual stimulation triggers 0–7 (RHX `setManualStimTrigger`; pyxdaq
    /// `StimSubsystem.trigger`). A sequencer's trigger source `24 + k` is manual trigger `k`
    /// (`main.v`: `triggers = {manual_triggers[7:0], ADC_triggers, TTL_in}`).
    pub const WIRE_IN_MANUAL_TRIGGERS: u8 = 0x12;
    /// The trigger source number of manual trigger 0.
    pub const MANUAL_TRIGGER_SOURCE: u16 = 24;
    /// Bits of [`super::WIRE_IN_RESET_RUN`] on the RHS map (`main.v`: `amp_settle_mode =
    /// ep00[3]`, `charge_recov_mode = ep00[4]`; RHX `setAmpSettleMode`,
    /// `setChargeRecoveryMode`): amplifier settle through register 10 (fast settle) instead of
    /// 12 (lower-cutoff select), and charge recovery through the switch (46) instead of the
    /// current-limited drivers (48).
    pub const AMP_SETTLE_MODE_BIT: u32 = 1 << 3;
    pub const CHARGE_RECOVERY_MODE_BIT: u32 = 1 << 4;
    /// Bit 1 of the SPI-start trigger resets the stimulation sequencers (RHX `resetSequencers`).
    pub const TRIGGER_IN_RESET_SEQUENCERS_BIT: u8 = 1;
    /// DAC source selection on the RHS map (`main.v`: `DAC_channel_sel = ep16[4:0]`,
    /// `DAC_stream_sel = ep16[8:5]`, `DAC_en = ep16[9]`; stream 8 is `DAC_manual`).
    pub const DAC_SOURCE: super::DacSourceBits =
        super::DacSourceBits { enable: 1 << 9, stream_shift: 5, stream_mask: 0xf, manual_stream: 8 };
    /// How frames leave the board: the run length is one 32-bit wire (0x01), the FIFO level one
    /// 32-bit wire-out of 16-bit words (0x20), the clock is reprogrammed by trigger 0x40 bit 0
    /// and the pipe is read in 1024-byte blocks, as on the USB 3 RHD controller (XRHX
    /// `setMaxTimeStep`, `numWordsInFifo` and `isRunning` treat `ControllerStimRecord` as
    /// `ControllerRecordUSB3`; pyxdaq `set_max_timestep` writes 0x01 whole).
    pub const TRANSPORT: Interface = Interface::Usb3;

    /// The (port, MISO line) data stream `stream` carries.
    pub const fn stream_source(stream: usize) -> (usize, usize) {
        (stream / 2, stream % 2)
    }
}

/// How a DAC source wire-in (`WIRE_IN_DAC_SOURCE[n]`) selects what DAC `n` plays: the
/// amplifier channel in bits 4–0, the data stream above it, an enable bit, and the stream
/// number that selects the manual value ([`WIRE_IN_DAC_MANUAL`]) instead (RHX `enableDac`,
/// `selectDacDataStream`, `selectDacDataChannel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DacSourceBits {
    pub enable: u32,
    pub stream_shift: u32,
    pub stream_mask: u32,
    pub manual_stream: u32,
}

/// A [`DacSourceBits::manual_stream`] that no source word selects: the firmware's manual
/// stream number is not known (the Open Ephys USB 3 board, whose DACs are not driven).
pub const NO_MANUAL_STREAM: u32 = u32::MAX;

impl DacSourceBits {
    /// Amplifier channel field.
    pub const CHANNEL_MASK: u32 = 0x1f;

    /// Every bit this source word uses.
    pub const fn mask(self) -> u32 {
        self.enable | (self.stream_mask << self.stream_shift) | Self::CHANNEL_MASK
    }

    /// The word selecting `stream`'s `channel` (or the manual value when `stream` is
    /// [`Self::manual_stream`]), enabled.
    pub const fn word(self, stream: u32, channel: u32) -> u32 {
        self.enable | ((stream & self.stream_mask) << self.stream_shift) | (channel & Self::CHANNEL_MASK)
    }

    /// What a source word selects: `None` when the DAC is disabled, else (stream, channel).
    pub const fn decode(self, word: u32) -> Option<(u32, u32)> {
        if word & self.enable == 0 {
            return None;
        }
        Some(((word >> self.stream_shift) & self.stream_mask, word & Self::CHANNEL_MASK))
    }
}

/// Bits 15–13 of [`WIRE_IN_RESET_RUN`]: the DACs' gain of 2^n for amplifier sources; bits
/// 12–6: the audio noise suppression of DACs 1 and 2 (RHX `setDacGain`, `setAudioNoiseSuppress`;
/// the same bits on every map).
pub const DAC_GAIN_SHIFT: u32 = 13;
pub const DAC_GAIN_MASK: u32 = 0x7 << DAC_GAIN_SHIFT;
pub const DAC_NOISE_SUPPRESS_SHIFT: u32 = 6;
pub const DAC_NOISE_SUPPRESS_MASK: u32 = 0x7f << DAC_NOISE_SUPPRESS_SHIFT;
/// DAC and ADC codes: offset binary, 0 V at 32768, ±10.24 V full scale (RHX
/// `setAnalogInTriggerThreshold`: `32768 × (V / 10.24) + 32768`; the analog inputs of the
/// controllers read back on the same scale, `readBoardAdcData`).
pub const DAC_ZERO_CODE: u32 = 32768;

/// The firmware generation behind a board, which places the registers that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// Rhythm over USB 2 (Opal Kelly XEM6010): up to 8 streams chosen among 16 MISO sources.
    Usb2,
    /// Rhythm over USB 3 (XEM6310, XDAQ): up to 32 streams, two per MISO line.
    Usb3,
    /// The Open Ephys acquisition board over USB 3 (XEM6310, `rhd2000_usb3.bit`): the USB 2
    /// map with 16 streams chosen among the 16 MISO sources and a block-throttled pipe (see
    /// the module documentation).
    OpenEphysUsb3,
}

impl Interface {
    /// The interface of an RHD board (`None` for RHS boards, whose map is another).
    pub const fn of(board: Board) -> Option<Interface> {
        match board {
            Board::RhdUsbInterface | Board::OpenEphys => Some(Interface::Usb2),
            Board::OpenEphysUsb3 => Some(Interface::OpenEphysUsb3),
            Board::RhdController | Board::XdaqRhd(_) => Some(Interface::Usb3),
            Board::RhsController | Board::XdaqRhs(_) => None,
        }
    }

    /// SPI ports (A, B, ...): 4 on USB 2, 8 on USB 3; 4 on the Open Ephys USB 3 board (its
    /// driver's `setCableDelay` and data sources cover ports A–D only).
    pub const fn ports(self) -> usize {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => 4,
            Interface::Usb3 => 8,
        }
    }

    /// Data streams the FIFO can carry.
    pub const fn max_streams(self) -> usize {
        match self {
            Interface::Usb2 => 8,
            Interface::OpenEphysUsb3 => 16,
            Interface::Usb3 => 32,
        }
    }

    /// Wire-ins holding the run length (`max time step`): USB 2 splits it into a low and a
    /// high 16-bit half.
    pub const fn max_time_step(self) -> (u8, Option<u8>) {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => (0x01, Some(0x02)),
            Interface::Usb3 => (0x01, None),
        }
    }

    /// Trigger (endpoint, bit) that reprograms the clock synthesizer.
    pub const fn dcm_prog_trigger(self) -> (u8, u8) {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => (0x40, 0),
            Interface::Usb3 => (0x40, 0),
        }
    }

    /// Trigger (endpoint, bit) that writes the staged command word into aux slot `slot`
    /// (0–2).
    pub const fn ram_write_trigger(self, slot: usize) -> (u8, u8) {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => (0x42, slot as u8),
            Interface::Usb3 => (0x40, 1 + slot as u8),
        }
    }

    /// Where aux slot `slot`'s loop index and end index go: (endpoint, shift, mask) each.
    /// USB 2 has a wire-in per slot; USB 3 packs the three slots 10 bits apart.
    pub const fn aux_length(self, slot: usize) -> ((u8, u32, u32), (u8, u32, u32)) {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => {
                ((0x0e + slot as u8, 0, 0x3ff), (0x0b + slot as u8, 0, 0x3ff))
            }
            Interface::Usb3 => ((0x0c, 10 * slot as u32, 0x3ff), (0x0b, 10 * slot as u32, 0x3ff)),
        }
    }

    /// The DAC source bits (RHX `enableDac`: enable 0x0200, 0x0800 on `ControllerRecordUSB3`;
    /// `selectDacDataStream`: stream mask 0x01e0, 0x07e0 on USB 3, stream 32 selecting
    /// `DacManual` there; the USB 2 Rhythm firmware plays `DAC_manual` for stream 8: Intan's
    /// Rhythm `main.v`, `case (DAC_stream_sel_1)`, and the Open Ephys `rhd2000evalboard.cpp`,
    /// `selectDacDataStream`: "setting stream to 8 selects DacManual1"). The Open Ephys USB 3
    /// firmware: enable 0x0400 and stream mask 0x03e0 (its `enableDac`, `selectDacDataStream`
    /// with `usb3`); no public source says which stream number plays its manual value, so it
    /// has none here ([`NO_MANUAL_STREAM`]) and its DACs are not driven.
    pub const fn dac_source(self) -> DacSourceBits {
        match self {
            Interface::OpenEphysUsb3 => {
                DacSourceBits { enable: 1 << 10, stream_shift: 5, stream_mask: 0x1f, manual_stream: NO_MANUAL_STREAM }
            }
            Interface::Usb2 => DacSourceBits { enable: 1 << 9, stream_shift: 5, stream_mask: 0xf, manual_stream: 8 },
            Interface::Usb3 => DacSourceBits { enable: 1 << 11, stream_shift: 5, stream_mask: 0x3f, manual_stream: 32 },
        }
    }

    /// The triggers (endpoint, bit) that take external fast settle's enable (bit 0) and then
    /// its TTL input (0–15) from the multi-use wire: RHX `enableExternalFastSettle` and
    /// `setExternalFastSettleChannel`, trigger 0x45 bits 0 and 1 on `ControllerRecordUSB2`
    /// (`TrigInExtFastSettle_R_USB2`), 0x40 bits 6 and 7 on `ControllerRecordUSB3`
    /// (`TrigInConfig_USB3`; the same in KonteX's RHX fork and pyxdaq
    /// `enable_external_fast_settle`, `set_external_fast_settle_channel` for XDAQ); the Open
    /// Ephys `Rhd2000EvalBoard` sends 0x45 bits 0 and 1 for both its boards (no `usb3` branch
    /// in either function). What the firmware does with them: Intan's Rhythm `main.v`
    /// (`external_fast_settle`, `RAM_data_out_1`), modelled in the emulator's panel.
    pub const fn external_fast_settle_triggers(self) -> [(u8, u8); 2] {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => [(0x45, 0), (0x45, 1)],
            Interface::Usb3 => [(0x40, 6), (0x40, 7)],
        }
    }

    /// USB 2 and the Open Ephys USB 3 board: the wire-ins choosing each stream's MISO source,
    /// 4 bits per stream ([`Self::data_source_slot`]).
    pub const fn data_source_select(self) -> Option<[u8; 2]> {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => Some([0x12, 0x13]),
            Interface::Usb3 => None,
        }
    }

    /// Where stream `stream`'s 4-bit source code sits: (index into
    /// [`Self::data_source_select`], bit shift). Streams 0–3 and 4–7 fill the low halves of the
    /// two wires, 8–11 and 12–15 their high halves (Open Ephys `setDataSource`).
    pub const fn data_source_slot(stream: usize) -> (usize, u32) {
        ((stream / 4) % 2, (4 * (stream % 4) + 16 * (stream / 8)) as u32)
    }

    /// The bits of the source-select wires this interface uses: 16 on USB 2 (the XEM6010's
    /// wires are 16 bits wide), 32 on the Open Ephys USB 3 board.
    pub const fn data_source_mask(self) -> u32 {
        match self {
            Interface::OpenEphysUsb3 => u32::MAX,
            _ => 0xffff,
        }
    }

    /// Wire-outs with the FIFO's fill in 16-bit words: (low, high half) on USB 2, one wire on
    /// USB 3.
    pub const fn fifo_words(self) -> (u8, Option<u8>) {
        match self {
            Interface::Usb2 | Interface::OpenEphysUsb3 => (0x20, Some(0x21)),
            Interface::Usb3 => (0x20, None),
        }
    }

    /// The pipe's block size in bytes (USB 3 reads are block-throttled, 1024 bytes a block:
    /// RHX `USB3BlockSize`; Open Ephys `USB3_BLOCK_SIZE`), or `None` for USB 2's plain pipe.
    pub const fn pipe_block_size(self) -> Option<usize> {
        match self {
            Interface::Usb2 => None,
            Interface::Usb3 | Interface::OpenEphysUsb3 => Some(1024),
        }
    }

    /// The triggers (endpoint, bit) that take the pipe's block size (in 32-bit words) and then
    /// the RAM burst size (32) from the multi-use wire after a reset: RHX `resetBoard`, 0x40
    /// bits 9 and 10; Open Ephys `resetBoard` with `usb3`, 0x5a bits 16 and 17
    /// (`TrigInOpenEphys`, `USB3_BLOCK_SIZE / 4`, `DDR_BLOCK_SIZE`). `None` on USB 2.
    pub const fn pipe_setup_triggers(self) -> Option<[(u8, u8); 2]> {
        match self {
            Interface::Usb2 => None,
            Interface::Usb3 => Some([(0x40, 9), (0x40, 10)]),
            Interface::OpenEphysUsb3 => Some([(0x5a, 16), (0x5a, 17)]),
        }
    }

    /// The FIFO between the sequencer and USB, in 16-bit words (Open Ephys
    /// `FIFO_CAPACITY_WORDS` for its USB 3 board).
    pub const fn fifo_capacity_words(self) -> u64 {
        match self {
            Interface::Usb2 => 16 * 1024 * 1024,
            Interface::Usb3 | Interface::OpenEphysUsb3 => 64 * 1024 * 1024,
        }
    }

    /// The MISO line (port × 2 + line) and whether it is the double-data-rate half (an
    /// RHD2164's MISO B) that USB 3 stream `stream` carries: two streams per MISO line.
    pub const fn usb3_stream_source(stream: usize) -> (usize, bool) {
        (stream / 2, stream % 2 == 1)
    }
}

/// USB 2's MISO source codes: `line` (port × 2 + line, 0–7) for the normal word, `line + 8`
/// for the double-data-rate word (RHX `BoardDataSource`: PortA1 = 0 ... PortD2 = 7,
/// PortA1Ddr = 8 ... PortD2Ddr = 15).
pub const fn usb2_source_code(line: usize, ddr: bool) -> u32 {
    (line + if ddr { 8 } else { 0 }) as u32
}

/// The (M, D) clock-synthesizer setting of each Intan sample rate (RHX
/// `RHXController::setSampleRate`): the FPGA runs at 100 MHz × M / D / 2 and one sample of
/// every channel takes 2800 of its clocks.
pub fn pll_setting(rate_hz: f64) -> Option<(u32, u32)> {
    const TABLE: [(f64, u32, u32); 17] = [
        (1000.0, 7, 125),
        (1250.0, 7, 100),
        (1500.0, 21, 250),
        (2000.0, 14, 125),
        (2500.0, 35, 250),
        (3000.0, 21, 125),
        (10000.0 / 3.0, 14, 75),
        (4000.0, 28, 125),
        (5000.0, 7, 25),
        (6250.0, 7, 20),
        (8000.0, 112, 250),
        (10000.0, 14, 25),
        (12500.0, 7, 10),
        (15000.0, 21, 25),
        (20000.0, 28, 25),
        (25000.0, 35, 25),
        (30000.0, 42, 25),
    ];
    TABLE.iter().find(|(r, _, _)| (r - rate_hz).abs() < 0.01).map(|&(_, m, d)| (m, d))
}

/// The sample rate a clock-synthesizer word `256 × M + D` runs at.
pub fn rate_of_pll_word(word: u32) -> f64 {
    let (m, d) = (f64::from(word >> 8), f64::from(word & 0xff));
    if d == 0.0 {
        return 0.0;
    }
    100e6 * m / d / 2.0 / 2800.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rates::INTAN_SAMPLE_RATES;

    #[test]
    fn every_intan_rate_has_a_clock_setting_that_runs_at_it() {
        for rate in INTAN_SAMPLE_RATES {
            let (m, d) = pll_setting(rate).unwrap();
            assert!((2..=256).contains(&m) && (1..=256).contains(&d));
            assert!((rate_of_pll_word(256 * m + d) - rate).abs() < 1e-6, "{rate}");
        }
        assert_eq!(pll_setting(44100.0), None);
    }

    #[test]
    fn open_ephys_usb3_sources_fill_both_halves_of_the_select_wires() {
        // Open Ephys `setDataSource`: streams 0-3 in wire 0x12 bits 0-15, 4-7 in 0x13 bits
        // 0-15, 8-11 in 0x12 bits 16-31, 12-15 in 0x13 bits 16-31.
        let slots: Vec<_> = (0..16).map(Interface::data_source_slot).collect();
        assert_eq!(slots[..4], [(0, 0), (0, 4), (0, 8), (0, 12)]);
        assert_eq!(slots[4..8], [(1, 0), (1, 4), (1, 8), (1, 12)]);
        assert_eq!(slots[8..12], [(0, 16), (0, 20), (0, 24), (0, 28)]);
        assert_eq!(slots[12..], [(1, 16), (1, 20), (1, 24), (1, 28)]);
        let oe = Interface::OpenEphysUsb3;
        assert_eq!((oe.ports(), oe.max_streams(), oe.data_source_mask()), (4, 16, u32::MAX));
        assert_eq!((Interface::Usb2.data_source_mask(), oe.pipe_block_size()), (0xffff, Some(1024)));
        assert_eq!(oe.dac_source().mask(), 0x0400 | 0x03e0 | 0x1f);
    }
}

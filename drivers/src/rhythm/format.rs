//! What one USB frame of a Rhythm-family board looks like: [`Board`], [`FrameFormat`] and the
//! byte offsets of every field ([`FrameOffsets`]).
//!
//! Every field is little endian. Words are 16 bits unless said otherwise.
//!
//! Intan boards (Intan-RHX, `Engine/API/Hardware/rhxdatablock.cpp`: `fillFromUsbBuffer`,
//! `dataBlockSizeInWords`, `headerMagicNumber`; the magic numbers in `rhxdatablock.h`):
//!
//! | field | RHD (`ControllerRecordUSB2`, `ControllerRecordUSB3`) | RHS (`ControllerStimRecord`) |
//! |---|---|---|
//! | magic | 8 bytes | 8 bytes |
//! | sample index | `u32` | `u32` |
//! | aux command results | 3 slots × streams words, slot-major | slots 1–3 × streams, 32-bit (low word: result) |
//! | amplifiers | 32 channels × streams words, channel-major | 16 channels × streams, 32-bit: DC word, AC word |
//! | aux slot 0 | — | streams × 32-bit |
//! | stimulation flags | — | stim on, polarity, amp settle, charge recovery: streams words each |
//! | filler | USB2: 1 word per stream; USB3: `streams % 4` words | none |
//! | analog outputs (DACs) | — | 8 words |
//! | analog inputs (ADCs) | 8 words | 8 words |
//! | TTL in, TTL out | 1 word each | 1 word each |
//!
//! "Channel-major" means the word of channel `c` of stream `s` is word `c × streams + s`: the
//! streams are interleaved channel by channel, as the FPGA samples every port at once. The
//! filler words are skipped by `fillFromUsbBuffer` and written as 0 by RHX's own emulator
//! (`Engine/API/Synthetic/synthdatablockgenerator.cpp`).
//!
//! The Open Ephys acquisition board runs Intan's Rhythm firmware and sends the same frame as
//! the RHD USB interface board: 36 words per stream (32 amplifiers, 3 aux, 1 filler), magic
//! `0xc691199927021942` (open-ephys plugin-GUI, `Plugins/RhythmNode/rhythm-api/rhd2000datablock.cpp`,
//! `calculateDataBlockSizeInWords` and `fillFromUsbBuffer`).
//!
//! Its USB 3 version (an Opal Kelly XEM6310 running Open Ephys's `rhd2000_usb3.bit`) keeps
//! that frame word for word, magic number and one filler word per stream included: the Open
//! Ephys acquisition-board plugin reads both versions with one `Rhd2000DataBlock` whose
//! `calculateDataBlockSizeInWords(numDataStreams, usb3, nSamples)` and `fillFromUsbBuffer` do
//! not depend on `usb3`, and one header magic (open-ephys-plugins/acquisition-board,
//! `Source/devices/opalkelly/AcqBoardOpalKelly.cpp`, `AcqBoardOpalKelly::run`, which walks
//! the frame field by field; plugin-GUI `rhd2000datablock.cpp` and `.h`,
//! `RHD2000_HEADER_MAGIC_NUMBER`). What USB 3 changes is how many streams a frame holds (16:
//! `MAX_NUM_DATA_STREAMS_USB3` in the plugin's `rhd2000evalboard.h`) and how frames leave the
//! board ([`endpoints::Interface::OpenEphysUsb3`](super::endpoints::Interface)).
//!
//! KonteX XDAQ boards (pyxdaq, `pyxdaq/datablock.py`: `DataBlock.get_dtype`, `get_sample_size`)
//! use the RHD controller's (USB3) and the RHS controller's magic numbers and field order, with
//! three differences: TTL in and TTL out are 32-bit; the RHD filler is `(streams + 2) % 4`
//! words and the RHS frame has 2 filler words after the stimulation flags (which keeps the
//! frame a multiple of 8 bytes with the wider TTL words); and boards that report the "Device
//! Timestamp" capability (`pyxdaq/xdaq.py`; gen 2 only, per the `Samples` documentation)
//! insert a `u64` timestamp in microseconds right after the filler.

use crate::frame::BlockLayout;

/// Magic number of the RHD USB interface board and the Open Ephys acquisition board (RHX
/// `HeaderRecordUSB2`).
pub const MAGIC_RHD_USB2: u64 = 0xc691_1999_2702_1942;
/// Magic number of the RHD 512/1024-channel recording controllers and XDAQ with RHD
/// headstages (RHX `HeaderRecordUSB3`, pyxdaq `_RHD_HEADER_MAGIC`).
pub const MAGIC_RHD_USB3: u64 = 0xd7a2_2aaa_3813_2a53;
/// Magic number of the RHS stim/record controller and XDAQ with RHS headstages (RHX
/// `HeaderStimRecordUSB2`, pyxdaq `_RHS_HEADER_MAGIC`).
pub const MAGIC_RHS: u64 = 0x8d54_2c8a_4971_2f0b;

/// Board analog inputs (ADCs) in every frame.
pub const ANALOG_INPUTS: usize = 8;
/// Board analog outputs (DACs) read back in every RHS frame.
pub const ANALOG_OUTPUTS: usize = 8;
/// Stimulation flag words per stream in an RHS frame: stim on, stim polarity, amp settle,
/// charge recovery (one bit per channel each).
pub const STIM_FLAG_WORDS: usize = 4;

/// The headstage chips a board talks to, which sets the per-stream layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChipFamily {
    /// RHD2000 recording chips: 32 amplifier channels and 3 aux command slots per stream.
    Rhd,
    /// RHS2116 stimulation/recording chips: 16 channels (each a DC and an AC word) and 4 aux
    /// command slots per stream, plus stimulation flags.
    Rhs,
}

impl ChipFamily {
    /// Amplifier channels per data stream (RHX `channelsPerStream`).
    pub const fn channels_per_stream(self) -> usize {
        match self {
            ChipFamily::Rhd => 32,
            ChipFamily::Rhs => 16,
        }
    }

    /// Aux command slots per data stream (RHX `numAuxChannels`).
    pub const fn aux_per_stream(self) -> usize {
        match self {
            ChipFamily::Rhd => 3,
            ChipFamily::Rhs => 4,
        }
    }
}

/// XDAQ generation, as far as its USB frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdaqGeneration {
    /// No device timestamp in the frame.
    One,
    /// A `u64` device timestamp in microseconds in every frame (pyxdaq reads it when the board
    /// reports the "Device Timestamp" capability).
    Two,
}

/// A board of the Rhythm family, as far as its USB frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Board {
    /// Intan RHD USB interface board (RHX `ControllerRecordUSB2`): up to 8 streams.
    RhdUsbInterface,
    /// Open Ephys acquisition board (Opal Kelly FPGA with Rhythm firmware): the RHD USB
    /// interface board's frame, up to 8 streams.
    OpenEphys,
    /// The Open Ephys acquisition board's USB 3 version (XEM6310, `rhd2000_usb3.bit`): the same
    /// frame, up to 16 streams (open-ephys-plugins/acquisition-board `rhd2000evalboard.h`:
    /// `MAX_NUM_DATA_STREAMS_USB3`).
    OpenEphysUsb3,
    /// Intan RHD 512- and 1024-channel recording controllers (RHX `ControllerRecordUSB3`): up to
    /// 32 streams.
    RhdController,
    /// Intan RHS stim/record controller (RHX `ControllerStimRecord`): up to 8 streams.
    RhsController,
    /// KonteX XDAQ with RHD headstages: up to 32 streams.
    XdaqRhd(XdaqGeneration),
    /// KonteX XDAQ with RHS headstages: up to 8 streams.
    XdaqRhs(XdaqGeneration),
}

impl Board {
    /// Every board, both XDAQ generations included.
    pub const ALL: [Board; 9] = [
        Board::RhdUsbInterface,
        Board::OpenEphys,
        Board::OpenEphysUsb3,
        Board::RhdController,
        Board::RhsController,
        Board::XdaqRhd(XdaqGeneration::One),
        Board::XdaqRhd(XdaqGeneration::Two),
        Board::XdaqRhs(XdaqGeneration::One),
        Board::XdaqRhs(XdaqGeneration::Two),
    ];

    /// The chips behind the board's data streams.
    pub const fn chip(self) -> ChipFamily {
        match self {
            Board::RhdUsbInterface
            | Board::OpenEphys
            | Board::OpenEphysUsb3
            | Board::RhdController
            | Board::XdaqRhd(_) => ChipFamily::Rhd,
            Board::RhsController | Board::XdaqRhs(_) => ChipFamily::Rhs,
        }
    }

    /// Most data streams the board delivers. Intan: RHX `maxNumDataStreams`
    /// (`Engine/API/Abstract/abstractrhxcontroller.cpp`: 8 over USB 2 and for RHS, 32 over
    /// USB 3). XDAQ: pyxdaq scans 32 RHD streams and 8 RHS streams (`test_cable_delay` in
    /// `pyxdaq/xdaq.py`) and benchmarks its parser up to the same counts. The Open Ephys USB 3
    /// board: 16 (`MAX_NUM_DATA_STREAMS_USB3`, Open Ephys `rhd2000evalboard.h`; `open` sets
    /// `MAX_NUM_DATA_STREAMS` to it for an XEM6310).
    pub const fn max_streams(self) -> usize {
        match self {
            Board::OpenEphysUsb3 => 16,
            Board::RhdUsbInterface | Board::OpenEphys | Board::RhsController | Board::XdaqRhs(_) => 8,
            Board::RhdController | Board::XdaqRhd(_) => 32,
        }
    }

    /// The magic number every frame starts with.
    pub const fn magic(self) -> u64 {
        match self {
            Board::RhdUsbInterface | Board::OpenEphys | Board::OpenEphysUsb3 => MAGIC_RHD_USB2,
            Board::RhdController | Board::XdaqRhd(_) => MAGIC_RHD_USB3,
            Board::RhsController | Board::XdaqRhs(_) => MAGIC_RHS,
        }
    }

    /// Filler words per frame for `streams` data streams (see the module documentation).
    pub const fn filler_words(self, streams: usize) -> usize {
        match self {
            Board::RhdUsbInterface | Board::OpenEphys | Board::OpenEphysUsb3 => streams,
            Board::RhdController => streams % 4,
            Board::XdaqRhd(_) => (streams + 2) % 4,
            Board::RhsController => 0,
            Board::XdaqRhs(_) => 2,
        }
    }

    /// Bytes of each TTL word: 2 on Intan and Open Ephys boards, 4 on XDAQ.
    pub const fn digital_word_bytes(self) -> usize {
        match self {
            Board::XdaqRhd(_) | Board::XdaqRhs(_) => 4,
            _ => 2,
        }
    }

    /// Whether every frame carries the XDAQ gen 2 device timestamp.
    pub const fn has_device_timestamp(self) -> bool {
        matches!(self, Board::XdaqRhd(XdaqGeneration::Two) | Board::XdaqRhs(XdaqGeneration::Two))
    }

    /// Frames per USB data block as the board's reference software reads them: 128 in RHX
    /// (`RHXDataBlock::samplesPerDataBlock`, the same for every controller type), 300 in the
    /// Open Ephys GUI for its USB 2 board (`SAMPLES_PER_DATA_BLOCK_USB2` in its
    /// `rhd2000datablock.h`; 256 for its USB 3 board, `SAMPLES_PER_DATA_BLOCK_USB3`, which is
    /// also its scan run, `INIT_STEP`), 128 for XDAQ (the samples pyxdaq
    /// acquires per block when it reads headstage ROMs; when streaming it takes whatever
    /// whole frames arrive). The frame layout does not depend on it: a block is just that many
    /// frames back to back.
    pub const fn samples_per_block(self) -> usize {
        match self {
            Board::OpenEphys => 300,
            Board::OpenEphysUsb3 => 256,
            _ => 128,
        }
    }

    /// A short stable name (`rhd-usb-interface`, `xdaq-rhd-gen2`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Board::RhdUsbInterface => "rhd-usb-interface",
            Board::OpenEphys => "open-ephys",
            Board::OpenEphysUsb3 => "open-ephys-usb3",
            Board::RhdController => "rhd-controller",
            Board::RhsController => "rhs-controller",
            Board::XdaqRhd(XdaqGeneration::One) => "xdaq-rhd-gen1",
            Board::XdaqRhd(XdaqGeneration::Two) => "xdaq-rhd-gen2",
            Board::XdaqRhs(XdaqGeneration::One) => "xdaq-rhs-gen1",
            Board::XdaqRhs(XdaqGeneration::Two) => "xdaq-rhs-gen2",
        }
    }

    /// The board a [`Board::name`] names.
    pub fn from_name(name: &str) -> Option<Board> {
        Board::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// A format that no board sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{board:?} delivers 1..={max} data streams, not {streams}")]
    Streams { board: Board, streams: usize, max: usize },
}

/// Byte offsets of the fields inside one frame (from the frame's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameOffsets {
    /// The 8-byte magic number (always 0).
    pub magic: usize,
    /// The `u32` sample index (always 8).
    pub sample_index: usize,
    /// The aux command results before the amplifiers: RHD slots 0–2 (16-bit), RHS slots 1–3
    /// (32-bit).
    pub aux: usize,
    /// The amplifier words.
    pub amplifier: usize,
    /// RHS: aux slot 0 (32-bit per stream), after the amplifiers.
    pub aux0: Option<usize>,
    /// RHS: the stimulation flags (4 × streams words).
    pub stim: Option<usize>,
    /// The filler words.
    pub filler: usize,
    /// XDAQ gen 2: the `u64` device timestamp (µs).
    pub device_timestamp: Option<usize>,
    /// RHS: the 8 analog output words.
    pub analog_out: Option<usize>,
    /// The 8 analog input words.
    pub analog_in: usize,
    /// TTL in (16- or 32-bit).
    pub digital_in: usize,
    /// TTL out (16- or 32-bit).
    pub digital_out: usize,
    /// Bytes in the frame.
    pub end: usize,
}

/// One board's USB frame with a given number of enabled data streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat {
    board: Board,
    streams: usize,
    offsets: FrameOffsets,
}

impl FrameFormat {
    /// The frame of `board` with `streams` enabled data streams.
    pub fn new(board: Board, streams: usize) -> Result<FrameFormat, FormatError> {
        let max = board.max_streams();
        if !(1..=max).contains(&streams) {
            return Err(FormatError::Streams { board, streams, max });
        }
        Ok(FrameFormat { board, streams, offsets: Self::compute_offsets(board, streams) })
    }

    fn compute_offsets(board: Board, n: usize) -> FrameOffsets {
        let chip = board.chip();
        let cps = chip.channels_per_stream();
        let mut at = 12;
        let aux = at;
        let (amplifier, aux0, stim);
        match chip {
            ChipFamily::Rhd => {
                at += 2 * 3 * n;
                amplifier = at;
                at += 2 * cps * n;
                aux0 = None;
                stim = None;
            }
            ChipFamily::Rhs => {
                at += 4 * 3 * n;
                amplifier = at;
                at += 4 * cps * n;
                aux0 = Some(at);
                at += 4 * n;
                stim = Some(at);
                at += 2 * STIM_FLAG_WORDS * n;
            }
        }
        let filler = at;
        at += 2 * board.filler_words(n);
        let device_timestamp = board.has_device_timestamp().then_some(at);
        if device_timestamp.is_some() {
            at += 8;
        }
        let analog_out = (chip == ChipFamily::Rhs).then_some(at);
        if analog_out.is_some() {
            at += 2 * ANALOG_OUTPUTS;
        }
        let analog_in = at;
        at += 2 * ANALOG_INPUTS;
        let w = board.digital_word_bytes();
        let digital_in = at;
        let digital_out = at + w;
        let end = at + 2 * w;
        FrameOffsets {
            magic: 0,
            sample_index: 8,
            aux,
            amplifier,
            aux0,
            stim,
            filler,
            device_timestamp,
            analog_out,
            analog_in,
            digital_in,
            digital_out,
            end,
        }
    }

    pub fn board(&self) -> Board {
        self.board
    }

    pub fn chip(&self) -> ChipFamily {
        self.board.chip()
    }

    /// Enabled data streams.
    pub fn streams(&self) -> usize {
        self.streams
    }

    pub fn channels_per_stream(&self) -> usize {
        self.chip().channels_per_stream()
    }

    pub fn aux_per_stream(&self) -> usize {
        self.chip().aux_per_stream()
    }

    /// Amplifier channels per frame: `streams × channels_per_stream`.
    pub fn amplifier_channels(&self) -> usize {
        self.streams * self.channels_per_stream()
    }

    /// Aux command results per frame: `streams × aux_per_stream`.
    pub fn aux_channels(&self) -> usize {
        self.streams * self.aux_per_stream()
    }

    pub fn magic(&self) -> u64 {
        self.board.magic()
    }

    pub fn filler_words(&self) -> usize {
        self.board.filler_words(self.streams)
    }

    pub fn offsets(&self) -> FrameOffsets {
        self.offsets
    }

    /// Bytes in one frame (one sample instant of every stream).
    pub fn bytes_per_frame(&self) -> usize {
        self.offsets.end
    }

    /// See [`Board::samples_per_block`].
    pub fn samples_per_block(&self) -> usize {
        self.board.samples_per_block()
    }

    /// The block layout the decoder fills in full: every amplifier channel, every aux command
    /// result, the 8 analog inputs.
    ///
    /// With 32 RHD streams that is 96 aux words per frame, more than
    /// [`BlockLayout::validate`] allows (64); a stream that does not need them decodes into a
    /// layout with `aux_channels: 0` (see [`decode`](fn@super::decode)).
    pub fn block_layout(&self, frames_per_block: usize) -> BlockLayout {
        BlockLayout {
            amplifier_channels: self.amplifier_channels(),
            aux_channels: self.aux_channels(),
            analog_in_channels: ANALOG_INPUTS,
            frames_per_block,
        }
    }

    /// Whether `layout` can be filled from (or encoded into) these frames: the amplifier
    /// channels and analog inputs must match, the aux lane must hold every aux result or none.
    pub fn check_layout(&self, layout: &BlockLayout) -> Result<(), LayoutMismatch> {
        if layout.amplifier_channels != self.amplifier_channels() {
            return Err(LayoutMismatch {
                lane: "amplifier_channels",
                format: self.amplifier_channels(),
                block: layout.amplifier_channels,
            });
        }
        if layout.aux_channels != 0 && layout.aux_channels != self.aux_channels() {
            return Err(LayoutMismatch {
                lane: "aux_channels",
                format: self.aux_channels(),
                block: layout.aux_channels,
            });
        }
        if layout.analog_in_channels != ANALOG_INPUTS {
            return Err(LayoutMismatch {
                lane: "analog_in_channels",
                format: ANALOG_INPUTS,
                block: layout.analog_in_channels,
            });
        }
        Ok(())
    }
}

/// A block whose layout does not fit the frame format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block has {lane} = {block}, the frame format has {format} (aux_channels may also be 0)")]
pub struct LayoutMismatch {
    /// The layout field that differs.
    pub lane: &'static str,
    /// What the format carries.
    pub format: usize,
    /// What the block has.
    pub block: usize,
}

//! The USB frame codec of the Rhythm-family boards: frames built by hand from the reference
//! software's layouts (Intan-RHX `rhxdatablock.cpp`, pyxdaq `datablock.py`), round trips for
//! every board, and what happens to corrupt, dropped and truncated data. A counting global
//! allocator (this file is its own test binary) checks that decoding never allocates.

mod common;

use ephysd_drivers::rhythm::{
    decode, decode_with_extras, encode, encode_with_extras, resync, Board, ChipFamily, DecodeError, FrameExtras,
    FrameFormat, XdaqGeneration, MAGIC_RHD_USB2, MAGIC_RHD_USB3, MAGIC_RHS,
};
use ephysd_drivers::{BlockLayout, FrameBlock};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

/// SplitMix64: test data from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn word(&mut self) -> u16 {
        self.next() as u16
    }
}

fn format(board: Board, streams: usize) -> FrameFormat {
    FrameFormat::new(board, streams).expect("valid format")
}

/// A block of `frames` random frames (of `capacity`) whose indices run on from `first`.
fn random_block(format: &FrameFormat, frames: usize, capacity: usize, first: u64, rng: &mut Rng) -> FrameBlock {
    let mut block = FrameBlock::new(format.block_layout(capacity));
    block.frames = frames;
    for (i, idx) in block.frame_index.iter_mut().enumerate() {
        *idx = first + i as u64;
    }
    block.amplifier.iter_mut().for_each(|v| *v = rng.word() as i16);
    block.aux.iter_mut().for_each(|v| *v = rng.word());
    block.analog_in.iter_mut().for_each(|v| *v = rng.word());
    block.digital_in.iter_mut().for_each(|v| *v = rng.word());
    block.digital_out.iter_mut().for_each(|v| *v = rng.word());
    block
}

fn random_extras(format: &FrameFormat, capacity: usize, rng: &mut Rng) -> FrameExtras {
    let mut x = FrameExtras::new(format, capacity);
    for lane in [
        &mut x.dc_amplifier,
        &mut x.aux_high,
        &mut x.stim_on,
        &mut x.stim_polarity,
        &mut x.amp_settle,
        &mut x.charge_recovery,
        &mut x.analog_out,
        &mut x.digital_in_high,
        &mut x.digital_out_high,
    ] {
        lane.iter_mut().for_each(|v| *v = rng.word());
    }
    x.device_timestamp_us.iter_mut().for_each(|v| *v = rng.next());
    x
}

/// The filled part of a block, for comparisons (a block's unfilled tail is whatever was there).
#[derive(Debug, PartialEq)]
struct Filled {
    frame_index: Vec<u64>,
    amplifier: Vec<i16>,
    aux: Vec<u16>,
    analog_in: Vec<u16>,
    digital_in: Vec<u16>,
    digital_out: Vec<u16>,
}

fn filled(b: &FrameBlock) -> Filled {
    let l = b.layout();
    let n = b.frames;
    Filled {
        frame_index: b.frame_index[..n].to_vec(),
        amplifier: b.amplifier[..n * l.amplifier_channels].to_vec(),
        aux: b.aux[..n * l.aux_channels].to_vec(),
        analog_in: b.analog_in[..n * l.analog_in_channels].to_vec(),
        digital_in: b.digital_in[..n].to_vec(),
        digital_out: b.digital_out[..n].to_vec(),
    }
}

/// Little-endian 16-bit words to bytes.
fn bytes_of(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn magic_words(magic: u64) -> [u16; 4] {
    [magic as u16, (magic >> 16) as u16, (magic >> 32) as u16, (magic >> 48) as u16]
}

// ---------------------------------------------------------------------------------------------
// Sizes and layouts from the reference software.

#[test]
fn frame_sizes_are_the_reference_softwares() {
    for n in 1..=32usize {
        // RHX `dataBlockSizeInWords` divided by `samplesPerDataBlock`, in bytes.
        let usb2 = 2 * (4 + 2 + n * (32 + 3 + 1) + 8 + 2);
        let usb3 = 2 * (4 + 2 + n * (32 + 3) + n % 4 + 8 + 2);
        let rhs = 2 * (4 + 2 + n * (2 * (16 + 4) + 4) + 8 + 8 + 2);
        // pyxdaq `get_sample_size(rhs, datastreams, device_timestamp)`.
        let xdaq_rhd = |ts: bool| 12 + 3 * n * 2 + 32 * n * 2 + 2 * ((n + 2) % 4) + 8 * ts as usize + 16 + 4 + 4;
        let xdaq_rhs =
            |ts: bool| 12 + 3 * n * 4 + n * 4 + 16 * n * 4 + 4 * n * 2 + 4 + 8 * ts as usize + 16 + 16 + 4 + 4;
        let expected = |board: Board| match board {
            Board::RhdUsbInterface | Board::OpenEphys | Board::OpenEphysUsb3 => usb2,
            Board::RhdController => usb3,
            Board::RhsController => rhs,
            Board::XdaqRhd(g) => xdaq_rhd(g == XdaqGeneration::Two),
            Board::XdaqRhs(g) => xdaq_rhs(g == XdaqGeneration::Two),
        };
        for board in Board::ALL {
            let Ok(f) = FrameFormat::new(board, n) else {
                assert!(n > board.max_streams(), "{board:?} refused {n} streams");
                continue;
            };
            assert_eq!(f.bytes_per_frame(), expected(board), "{board:?}, {n} streams");
            // Every frame is a whole number of 64-bit words, so frames stay aligned on the bus.
            assert_eq!(f.bytes_per_frame() % 8, 0, "{board:?}, {n} streams");
        }
    }
    // Figures printed by pyxdaq 0.8.0's `get_sample_size(False, 32, ts)`.
    assert_eq!(format(Board::XdaqRhd(XdaqGeneration::One), 32).bytes_per_frame(), 2280);
    assert_eq!(format(Board::XdaqRhd(XdaqGeneration::Two), 32).bytes_per_frame(), 2288);
    // The 1024-channel controller: 1136 words.
    assert_eq!(format(Board::RhdController, 32).bytes_per_frame(), 2272);
}

#[test]
fn boards_have_the_reference_softwares_magic_streams_and_blocks() {
    assert_eq!(Board::RhdUsbInterface.magic(), 0xc691199927021942);
    assert_eq!(Board::OpenEphys.magic(), 0xc691199927021942);
    assert_eq!(Board::OpenEphysUsb3.magic(), 0xc691199927021942);
    assert_eq!(Board::RhdController.magic(), 0xd7a22aaa38132a53);
    assert_eq!(Board::XdaqRhd(XdaqGeneration::Two).magic(), 0xd7a22aaa38132a53);
    assert_eq!(Board::RhsController.magic(), 0x8d542c8a49712f0b);
    assert_eq!(Board::XdaqRhs(XdaqGeneration::One).magic(), 0x8d542c8a49712f0b);
    for (board, max, chip) in [
        (Board::RhdUsbInterface, 8, ChipFamily::Rhd),
        (Board::OpenEphys, 8, ChipFamily::Rhd),
        (Board::OpenEphysUsb3, 16, ChipFamily::Rhd),
        (Board::RhdController, 32, ChipFamily::Rhd),
        (Board::RhsController, 8, ChipFamily::Rhs),
        (Board::XdaqRhd(XdaqGeneration::One), 32, ChipFamily::Rhd),
        (Board::XdaqRhs(XdaqGeneration::Two), 8, ChipFamily::Rhs),
    ] {
        assert_eq!(board.max_streams(), max);
        assert_eq!(board.chip(), chip);
        assert!(FrameFormat::new(board, 0).is_err());
        assert!(FrameFormat::new(board, max + 1).unwrap_err().to_string().contains(&format!("1..={max}")));
        assert_eq!(Board::from_name(board.name()), Some(board));
    }
    assert_eq!(Board::RhdController.samples_per_block(), 128);
    assert_eq!(Board::RhsController.samples_per_block(), 128);
    let f = format(Board::RhdController, 32);
    assert_eq!((f.amplifier_channels(), f.aux_channels()), (1024, 96));
    let f = format(Board::RhsController, 8);
    assert_eq!((f.amplifier_channels(), f.aux_channels()), (128, 32));
}

/// Two RHD streams on a recording controller, word by word in RHX `fillFromUsbBuffer`'s order.
#[test]
fn a_hand_built_rhd_frame_decodes_field_by_field() {
    let n = 2;
    let f = format(Board::RhdController, n);
    let mut words: Vec<u16> = magic_words(MAGIC_RHD_USB3).to_vec();
    words.extend([0x0304, 0x0102]); // sample index 0x01020304
    for slot in 0..3u16 {
        for s in 0..n as u16 {
            words.push(0xa000 + 16 * slot + s);
        }
    }
    let amp = |c: usize, s: usize| -> u16 {
        match (c, s) {
            (0, 0) => 0,      // most negative
            (31, 1) => 65535, // most positive
            _ => 32768 + 100 * s as u16 + c as u16,
        }
    };
    for c in 0..32 {
        for s in 0..n {
            words.push(amp(c, s));
        }
    }
    words.extend([0, 0]); // 2 % 4 filler words
    words.extend((0..8).map(|k| 1000 + k));
    words.extend([0xbeef, 0x1234]);
    let bytes = bytes_of(&words);
    assert_eq!(bytes.len(), f.bytes_per_frame());
    assert_eq!(&bytes[..8], &[0x53, 0x2a, 0x13, 0x38, 0xaa, 0x2a, 0xa2, 0xd7]);
    let o = f.offsets();
    assert_eq!(
        (o.sample_index, o.aux, o.amplifier, o.filler, o.analog_in, o.digital_in, o.digital_out),
        (8, 12, 24, 152, 156, 172, 174)
    );

    let mut block = FrameBlock::new(f.block_layout(4));
    let report = decode(&f, &bytes, &mut block, None).expect("decodes");
    assert_eq!((report.frames, report.gaps, report.next_index), (1, 0, Some(0x01020305)));
    assert_eq!(block.frames, 1);
    assert_eq!(block.frame_index[0], 0x01020304);
    for s in 0..n {
        for c in 0..32 {
            assert_eq!(i32::from(block.amplifier[s * 32 + c]), i32::from(amp(c, s)) - 32768, "stream {s} channel {c}");
        }
        for slot in 0..3 {
            assert_eq!(block.aux[s * 3 + slot], 0xa000 + 16 * slot as u16 + s as u16);
        }
    }
    assert_eq!((block.amplifier[0], block.amplifier[63]), (i16::MIN, i16::MAX));
    assert_eq!(block.amplifier[32 + 5], 105);
    assert_eq!(&block.analog_in[..8], &[1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007]);
    assert_eq!((block.digital_in[0], block.digital_out[0]), (0xbeef, 0x1234));

    let mut again = Vec::new();
    encode(&f, &block, &mut again).expect("encodes");
    assert_eq!(again, bytes);
}

/// The RHD USB interface board (and Open Ephys): one filler word per stream, its own magic.
#[test]
fn a_hand_built_usb_interface_board_frame_decodes() {
    for board in [Board::RhdUsbInterface, Board::OpenEphys] {
        let n = 3;
        let f = format(board, n);
        let mut words: Vec<u16> = magic_words(MAGIC_RHD_USB2).to_vec();
        words.extend([7, 0]);
        words.extend((0..3 * n as u16).map(|i| 0x100 + i));
        words.extend((0..32 * n as u16).map(|i| 32768 + i));
        words.extend([0, 0, 0]);
        words.extend((0..8).map(|k| 3000 + k));
        words.extend([1, 2]);
        let bytes = bytes_of(&words);
        assert_eq!(bytes.len(), f.bytes_per_frame());
        let mut block = FrameBlock::new(f.block_layout(1));
        decode(&f, &bytes, &mut block, Some(7)).expect("decodes");
        // Word c × 3 + s is channel c of stream s.
        assert_eq!(block.amplifier[2 * 32 + 4], (4 * 3 + 2) as i16);
        assert_eq!(block.aux[3 + 2], 0x100 + 2 * 3 + 1); // stream 1, slot 2
        assert_eq!((block.analog_in[7], block.digital_in[0], block.digital_out[0]), (3007, 1, 2));
    }
}

/// An RHS controller frame in RHX `fillFromUsbBuffer`'s order: aux slots 1–3 (32-bit), the
/// amplifiers as (DC, AC) pairs, aux slot 0, the four stimulation flag words, the DACs.
#[test]
fn a_hand_built_rhs_frame_decodes_field_by_field() {
    let n = 2;
    let f = format(Board::RhsController, n);
    let mut words: Vec<u16> = magic_words(MAGIC_RHS).to_vec();
    words.extend([0xffff, 0xffff]); // sample index u32::MAX
    for slot in 1..4u16 {
        for s in 0..n as u16 {
            words.extend([0x10 * slot + s, if slot == 2 { 0 } else { 0xffff }]);
        }
    }
    for c in 0..16u16 {
        for s in 0..n as u16 {
            words.extend([512 + c, 32768 + 100 * s + c]); // DC, then AC
        }
    }
    for s in 0..n as u16 {
        words.extend([0x0f00 + s, 0xffff]); // aux slot 0
    }
    for k in 0..4u16 {
        for s in 0..n as u16 {
            words.push(0x1000 * (k + 1) + s); // stim on, polarity, settle, charge recovery
        }
    }
    words.extend((0..8).map(|k| 40000 + k)); // DACs
    words.extend((0..8).map(|k| 2000 + k)); // ADCs
    words.extend([0x00aa, 0x0055]);
    let bytes = bytes_of(&words);
    assert_eq!(bytes.len(), f.bytes_per_frame());

    let mut block = FrameBlock::new(f.block_layout(2));
    let mut extras = FrameExtras::new(&f, 2);
    let report = decode_with_extras(&f, &bytes, &mut block, &mut extras, None).expect("decodes");
    assert_eq!(block.frame_index[0], u64::from(u32::MAX));
    assert_eq!(report.next_index, Some(1 << 32));
    for s in 0..n {
        for c in 0..16 {
            assert_eq!(block.amplifier[s * 16 + c], (100 * s + c) as i16);
            assert_eq!(extras.dc_amplifier[s * 16 + c], 512 + c as u16);
        }
        assert_eq!(block.aux[s * 4], 0x0f00 + s as u16);
        assert_eq!(extras.aux_high[s * 4], 0xffff);
        for slot in 1..4 {
            assert_eq!(block.aux[s * 4 + slot], 0x10 * slot as u16 + s as u16);
        }
        assert_eq!(extras.aux_high[s * 4 + 2], 0); // a READ result
        assert_eq!(extras.stim_on[s], 0x1000 + s as u16);
        assert_eq!(extras.stim_polarity[s], 0x2000 + s as u16);
        assert_eq!(extras.amp_settle[s], 0x3000 + s as u16);
        assert_eq!(extras.charge_recovery[s], 0x4000 + s as u16);
    }
    assert_eq!(&extras.analog_out[..8], &[40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007]);
    assert_eq!(block.analog_in[3], 2003);
    assert_eq!((block.digital_in[0], block.digital_out[0]), (0xaa, 0x55));

    let mut again = Vec::new();
    encode_with_extras(&f, &block, &extras, &mut again).expect("encodes");
    assert_eq!(again, bytes);
}

/// XDAQ gen 2 with one RHD stream, in pyxdaq `DataBlock.get_dtype`'s order: 3 filler words
/// ((1 + 2) % 4), the u64 device timestamp, the ADCs, 32-bit TTL in and out.
#[test]
fn a_hand_built_xdaq_gen2_frame_decodes() {
    let f = format(Board::XdaqRhd(XdaqGeneration::Two), 1);
    let mut words: Vec<u16> = magic_words(MAGIC_RHD_USB3).to_vec();
    words.extend([42, 0]);
    words.extend([1, 2, 3]);
    words.extend((0..32).map(|c| 32768 - c));
    words.extend([0, 0, 0]);
    words.extend([0x5678, 0x1234, 0xbc9a, 0x0def]); // 0x0def_bc9a_1234_5678 µs
    words.extend((0..8).map(|k| 32768 + k));
    words.extend([0x0001, 0x8000, 0x0002, 0x4000]); // TTL in 0x8000_0001, out 0x4000_0002
    let bytes = bytes_of(&words);
    assert_eq!(bytes.len(), f.bytes_per_frame());
    assert_eq!(f.offsets().device_timestamp, Some(12 + 6 + 64 + 6));
    let mut block = FrameBlock::new(f.block_layout(1));
    let mut extras = FrameExtras::new(&f, 1);
    decode_with_extras(&f, &bytes, &mut block, &mut extras, None).expect("decodes");
    assert_eq!(block.amplifier[5], -5);
    assert_eq!(&block.aux[..3], &[1, 2, 3]);
    assert_eq!(extras.device_timestamp_us[0], 0x0def_bc9a_1234_5678);
    assert_eq!((block.digital_in[0], extras.digital_in_high[0]), (0x0001, 0x8000));
    assert_eq!((block.digital_out[0], extras.digital_out_high[0]), (0x0002, 0x4000));
    let mut again = Vec::new();
    encode_with_extras(&f, &block, &extras, &mut again).expect("encodes");
    assert_eq!(again, bytes);
}

// ---------------------------------------------------------------------------------------------
// Round trips.

fn round_trip(f: &FrameFormat, frames: usize, seed: u64) {
    let mut rng = Rng(seed);
    let first = rng.next() >> 20;
    let block = random_block(f, frames, frames.max(1), first, &mut rng);
    let mut bytes = Vec::new();
    encode(f, &block, &mut bytes).expect("encodes");
    assert_eq!(bytes.len(), frames * f.bytes_per_frame());
    let mut back = FrameBlock::new(block.layout());
    let report = decode(f, &bytes, &mut back, Some(first)).expect("decodes");
    assert_eq!((report.frames, report.gaps, report.missing), (frames, 0, 0));
    assert_eq!(report.next_index, Some(first + frames as u64));
    assert_eq!(filled(&back), filled(&block), "{f:?}");
}

#[test]
fn rhd_round_trips_for_1_2_8_and_32_streams() {
    for streams in [1, 2, 8, 32] {
        round_trip(&format(Board::RhdController, streams), 128, streams as u64);
        round_trip(&format(Board::XdaqRhd(XdaqGeneration::Two), streams), 128, 100 + streams as u64);
    }
    for streams in [1, 2, 8] {
        round_trip(&format(Board::RhdUsbInterface, streams), 128, 200 + streams as u64);
    }
}

#[test]
fn rhs_round_trips_for_1_to_8_streams() {
    for streams in 1..=8 {
        round_trip(&format(Board::RhsController, streams), 128, 300 + streams as u64);
        round_trip(&format(Board::XdaqRhs(XdaqGeneration::One), streams), 16, 400 + streams as u64);
    }
}

/// Every byte of every format is accounted for: a board's bytes (filler words 0, as boards
/// send them) decode with extras and encode back to the same bytes.
#[test]
fn board_bytes_survive_decode_and_encode_with_extras() {
    let mut rng = Rng(7);
    for board in Board::ALL {
        for streams in [1, 3, board.max_streams()] {
            let f = format(board, streams);
            let frames = 5;
            let mut bytes: Vec<u8> = (0..frames * f.bytes_per_frame()).map(|_| rng.next() as u8).collect();
            let first = rng.next() as u32;
            for (i, frame) in bytes.chunks_exact_mut(f.bytes_per_frame()).enumerate() {
                frame[..8].copy_from_slice(&f.magic().to_le_bytes());
                frame[8..12].copy_from_slice(&first.wrapping_add(i as u32).to_le_bytes());
                let o = f.offsets();
                frame[o.filler..o.filler + 2 * f.filler_words()].fill(0);
            }
            let mut block = FrameBlock::new(f.block_layout(frames));
            let mut extras = FrameExtras::new(&f, frames);
            let report = decode_with_extras(&f, &bytes, &mut block, &mut extras, None).expect("decodes");
            assert_eq!((report.frames, report.gaps), (frames, 0));
            let mut again = Vec::new();
            encode_with_extras(&f, &block, &extras, &mut again).expect("encodes");
            assert_eq!(again, bytes, "{board:?} with {streams} streams");
        }
    }
}

#[test]
fn a_block_without_an_aux_lane_decodes_everything_else() {
    let f = format(Board::RhdController, 32);
    let mut rng = Rng(9);
    let block = random_block(&f, 64, 64, 0, &mut rng);
    let mut bytes = Vec::new();
    encode(&f, &block, &mut bytes).unwrap();
    // A pipeline that has no use for the aux words can leave their lane out.
    assert!(f.block_layout(64).validate().is_ok(), "32 streams of 3 aux words fit a block");
    let layout = BlockLayout { aux_channels: 0, ..f.block_layout(64) };
    assert!(layout.validate().is_ok());
    let mut lean = FrameBlock::new(layout);
    decode(&f, &bytes, &mut lean, None).unwrap();
    let (lean, full) = (filled(&lean), filled(&block));
    assert!(lean.aux.is_empty());
    assert_eq!(lean, Filled { aux: Vec::new(), ..full });
}

// ---------------------------------------------------------------------------------------------
// Corrupt, dropped and truncated data.

fn encoded(f: &FrameFormat, frames: usize, first: u64, seed: u64) -> (FrameBlock, Vec<u8>) {
    let block = random_block(f, frames, frames, first, &mut Rng(seed));
    let mut bytes = Vec::new();
    encode(f, &block, &mut bytes).unwrap();
    (block, bytes)
}

#[test]
fn a_corrupt_magic_number_fails_the_call_and_the_driver_resyncs_with_a_gap() {
    let f = format(Board::RhdController, 4);
    let bpf = f.bytes_per_frame();
    let (_, mut bytes) = encoded(&f, 10, 1000, 1);
    bytes[4 * bpf + 3] ^= 0x40;
    let mut block = FrameBlock::new(f.block_layout(10));
    decode(&f, &bytes[..2 * bpf], &mut block, Some(1000)).unwrap();
    assert_eq!(block.frames, 2);
    let err = decode(&f, &bytes, &mut block, Some(1000)).unwrap_err();
    let DecodeError::BadMagic { frame, offset, found, expected } = err.clone() else { panic!("{err:?}") };
    assert_eq!((frame, offset, expected), (4, 4 * bpf, MAGIC_RHD_USB3));
    assert_eq!(found, MAGIC_RHD_USB3 ^ (0x40 << 24));
    assert!(err.to_string().contains("frame 4"), "{err}");
    // No frames of the failed call are published.
    assert_eq!(block.frames, 0);

    // What a driver does: keep the intact frames, find whole frames again, carry on; the
    // corrupt frame is a gap of one.
    let good = decode(&f, &bytes[..offset], &mut block, Some(1000)).unwrap();
    assert_eq!((good.frames, good.gaps, good.next_index), (4, 0, Some(1004)));
    let at = resync(&f, &bytes, offset + 2).expect("whole frames follow");
    assert_eq!(at, 5 * bpf);
    let rest = decode(&f, &bytes[at..], &mut block, good.next_index).unwrap();
    assert_eq!((rest.frames, rest.gaps, rest.missing), (5, 1, 1));
    let gap = rest.first_gap.unwrap();
    assert_eq!((gap.frame, gap.expected, gap.found, gap.missing()), (0, 1004, 1005, 1));
}

#[test]
fn resync_needs_two_headers_one_frame_apart_or_the_end() {
    let f = format(Board::RhsController, 2);
    let bpf = f.bytes_per_frame();
    let (_, bytes) = encoded(&f, 3, 0, 2);
    assert_eq!(resync(&f, &bytes, 0), Some(0));
    assert_eq!(resync(&f, &bytes, 1), Some(bpf)); // rounded up to a whole word
    assert_eq!(resync(&f, &bytes, 2), Some(bpf));
    assert_eq!(resync(&f, &bytes, 2 * bpf), Some(2 * bpf)); // the last frame: ends exactly
    assert_eq!(resync(&f, &bytes[..3 * bpf - 2], 2 * bpf), None); // a partial last frame

    // A magic number inside the data that is not followed by another one frame later.
    let mut fake = bytes.clone();
    fake[100..108].copy_from_slice(&MAGIC_RHS.to_le_bytes());
    assert_eq!(resync(&f, &fake, 2), Some(bpf));
    assert_eq!(resync(&f, &vec![0u8; 10 * bpf], 0), None);
}

#[test]
fn a_dropped_frame_is_a_gap_with_the_right_count() {
    let f = format(Board::RhdController, 32);
    let bpf = f.bytes_per_frame();
    let (block, bytes) = encoded(&f, 20, 5000, 3);
    let mut cut = bytes[..7 * bpf].to_vec();
    cut.extend_from_slice(&bytes[10 * bpf..]); // frames 7, 8, 9 lost on the bus
    let mut out = FrameBlock::new(f.block_layout(20));
    let report = decode(&f, &cut, &mut out, Some(5000)).unwrap();
    assert_eq!((report.frames, report.gaps, report.missing), (17, 1, 3));
    let gap = report.first_gap.unwrap();
    assert_eq!((gap.frame, gap.expected, gap.found, gap.missing(), gap.is_backward()), (7, 5007, 5010, 3, false));
    assert_eq!(report.next_index, Some(5020));
    assert_eq!(out.count_gaps(Some(4999)), 1);
    assert_eq!(&out.frame_index[6..8], &[5006, 5010]);
    assert_eq!(out.amplifier_frame(7), block.amplifier_frame(10));

    // A gap at the seam between two calls, and two gaps in one call.
    let report = decode(&f, &bytes[2 * bpf..4 * bpf], &mut out, Some(5000)).unwrap();
    assert_eq!((report.gaps, report.missing, report.first_gap.unwrap().frame), (1, 2, 0));
    let mut twice = bytes[..bpf].to_vec();
    twice.extend_from_slice(&bytes[2 * bpf..3 * bpf]);
    twice.extend_from_slice(&bytes[5 * bpf..6 * bpf]);
    let report = decode(&f, &twice, &mut out, None).unwrap();
    assert_eq!((report.gaps, report.missing), (2, 3));
}

#[test]
fn a_restarted_counter_is_a_backward_gap_and_a_wrapping_one_is_not_a_gap() {
    let f = format(Board::RhdUsbInterface, 1);
    let mut block = FrameBlock::new(f.block_layout(4));
    block.frames = 4;
    block.frame_index[..4].copy_from_slice(&[u64::from(u32::MAX) - 1, u64::from(u32::MAX), 1 << 32, (1 << 32) + 1]);
    let mut bytes = Vec::new();
    encode(&f, &block, &mut bytes).unwrap();
    let mut out = FrameBlock::new(f.block_layout(4));
    let report = decode(&f, &bytes, &mut out, Some(u64::from(u32::MAX) - 1)).unwrap();
    assert_eq!(report.gaps, 0);
    assert_eq!(&out.frame_index[..4], &block.frame_index[..4]);

    block.frame_index[..4].copy_from_slice(&[100, 101, 0, 1]);
    bytes.clear();
    encode(&f, &block, &mut bytes).unwrap();
    let report = decode(&f, &bytes, &mut out, Some(100)).unwrap();
    let gap = report.first_gap.unwrap();
    assert_eq!((report.gaps, report.missing, gap.frame, gap.is_backward(), gap.missing()), (1, 0, 2, true, 0));
    assert_eq!(&out.frame_index[..4], &[100, 101, 0, 1]);
}

#[test]
fn a_truncated_buffer_names_the_bytes_expected_and_got() {
    let f = format(Board::RhdController, 8);
    let bpf = f.bytes_per_frame();
    let (_, bytes) = encoded(&f, 3, 0, 4);
    let mut block = FrameBlock::new(f.block_layout(3));
    let got = 2 * bpf + bpf / 2;
    let err = decode(&f, &bytes[..got], &mut block, None).unwrap_err();
    assert_eq!(err, DecodeError::Truncated { got, expected: 3 * bpf, bytes_per_frame: bpf });
    let msg = err.to_string();
    assert!(msg.contains(&got.to_string()) && msg.contains(&(3 * bpf).to_string()), "{msg}");
    assert_eq!(block.frames, 0);
    // Less than one frame.
    let err = decode(&f, &bytes[..10], &mut block, None).unwrap_err();
    assert_eq!(err, DecodeError::Truncated { got: 10, expected: bpf, bytes_per_frame: bpf });
    // Nothing at all is zero frames, not an error.
    assert_eq!(decode(&f, &[], &mut block, Some(3)).unwrap().next_index, Some(3));
}

#[test]
fn blocks_of_the_wrong_shape_or_size_are_refused() {
    let f = format(Board::RhdController, 2);
    let (_, bytes) = encoded(&f, 4, 0, 5);
    let mut small = FrameBlock::new(f.block_layout(3));
    assert_eq!(
        decode(&f, &bytes, &mut small, None).unwrap_err(),
        DecodeError::TooManyFrames { frames: 4, capacity: 3 }
    );
    let mut wrong = FrameBlock::new(BlockLayout { amplifier_channels: 32, ..f.block_layout(4) });
    let err = decode(&f, &bytes, &mut wrong, None).unwrap_err();
    assert!(err.to_string().contains("amplifier_channels = 32") && err.to_string().contains("64"), "{err}");
    let mut wrong = FrameBlock::new(BlockLayout { aux_channels: 3, ..f.block_layout(4) });
    assert!(decode(&f, &bytes, &mut wrong, None).is_err());
    let mut wrong = FrameBlock::new(BlockLayout { analog_in_channels: 2, ..f.block_layout(4) });
    assert!(encode(&f, &wrong, &mut Vec::new()).is_err());
    assert!(decode(&f, &bytes, &mut wrong, None).is_err());
    let mut block = FrameBlock::new(f.block_layout(4));
    let mut other = FrameExtras::new(&format(Board::RhsController, 2), 4);
    assert_eq!(decode_with_extras(&f, &bytes, &mut block, &mut other, None).unwrap_err(), DecodeError::Extras);
    let mut short = FrameExtras::new(&format(Board::XdaqRhd(XdaqGeneration::One), 2), 4);
    let xf = format(Board::XdaqRhd(XdaqGeneration::One), 2);
    let mut xb = FrameBlock::new(xf.block_layout(8));
    assert_eq!(decode_with_extras(&xf, &[], &mut xb, &mut short, None).unwrap_err(), DecodeError::Extras);
}

#[test]
fn decoding_never_allocates() {
    // The counter itself works.
    common::heap::counting(true);
    let v = std::hint::black_box(vec![1u8; 10]);
    common::heap::counting(false);
    drop(v);
    assert_eq!(common::heap::take_allocations(), 1);

    for board in Board::ALL {
        let f = format(board, board.max_streams());
        let (_, mut bytes) = encoded(&f, 128, 0, 6);
        let mut block = FrameBlock::new(f.block_layout(128));
        let mut extras = FrameExtras::new(&f, 128);
        let bpf = f.bytes_per_frame();
        common::heap::counting(true);
        let a = decode(&f, &bytes, &mut block, None).is_ok();
        let b = decode_with_extras(&f, &bytes[..64 * bpf], &mut block, &mut extras, Some(3)).is_ok();
        let c = decode(&f, &bytes[..bpf + 1], &mut block, None).is_err();
        common::heap::counting(false);
        bytes[5 * bpf] ^= 1;
        common::heap::counting(true);
        let d = decode(&f, &bytes, &mut block, None).is_err();
        let e = resync(&f, &bytes, 5 * bpf).is_some();
        common::heap::counting(false);
        assert!(a && b && c && d && e);
        assert_eq!(common::heap::take_allocations(), 0, "{board:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn any_format() -> impl Strategy<Value = FrameFormat> {
    (0..Board::ALL.len(), 1usize..=32).prop_map(|(b, s)| {
        let board = Board::ALL[b];
        format(board, 1 + (s - 1) % board.max_streams())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_the_identity(
        f in any_format(),
        frames in 0usize..12,
        spare in 0usize..3,
        first in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let capacity = frames + spare;
        let first = first >> 1; // room to count up without overflowing
        let block = random_block(&f, frames, capacity.max(1), first, &mut rng);
        let extras = random_extras(&f, capacity.max(1), &mut rng);
        let mut bytes = Vec::new();
        encode_with_extras(&f, &block, &extras, &mut bytes).unwrap();
        prop_assert_eq!(bytes.len(), frames * f.bytes_per_frame());

        let mut back = FrameBlock::new(block.layout());
        let mut back_extras = FrameExtras::new(&f, capacity.max(1));
        let report = decode_with_extras(&f, &bytes, &mut back, &mut back_extras, Some(first)).unwrap();
        prop_assert_eq!(report.gaps, 0);
        prop_assert_eq!(report.frames, frames);
        prop_assert_eq!(filled(&back), filled(&block));
        let per = |lane: &Vec<u16>| lane.len() / capacity.max(1);
        for (a, b) in [
            (&back_extras.dc_amplifier, &extras.dc_amplifier),
            (&back_extras.aux_high, &extras.aux_high),
            (&back_extras.stim_on, &extras.stim_on),
            (&back_extras.stim_polarity, &extras.stim_polarity),
            (&back_extras.amp_settle, &extras.amp_settle),
            (&back_extras.charge_recovery, &extras.charge_recovery),
            (&back_extras.analog_out, &extras.analog_out),
            (&back_extras.digital_in_high, &extras.digital_in_high),
            (&back_extras.digital_out_high, &extras.digital_out_high),
        ] {
            let n = frames * per(b);
            prop_assert_eq!(&a[..n], &b[..n]);
        }
        let n = back_extras.device_timestamp_us.len().min(frames);
        prop_assert_eq!(&back_extras.device_timestamp_us[..n], &extras.device_timestamp_us[..n]);

        // Without extras, the block alone survives too.
        let mut plain = Vec::new();
        encode(&f, &block, &mut plain).unwrap();
        let mut back = FrameBlock::new(block.layout());
        decode(&f, &plain, &mut back, Some(first)).unwrap();
        prop_assert_eq!(filled(&back), filled(&block));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        f in any_format(),
        bytes in proptest::collection::vec(any::<u8>(), 0..6000),
        magic_at_frames in any::<bool>(),
        expected in proptest::option::of(any::<u64>()),
        aux in any::<bool>(),
    ) {
        let mut bytes = bytes;
        let bpf = f.bytes_per_frame();
        if magic_at_frames {
            // Get past the magic check, to the fields behind it.
            for frame in bytes.chunks_mut(bpf).filter(|c| c.len() >= 8) {
                frame[..8].copy_from_slice(&f.magic().to_le_bytes());
            }
        }
        let layout = BlockLayout { aux_channels: if aux { f.aux_channels() } else { 0 }, ..f.block_layout(4) };
        let mut block = FrameBlock::new(layout);
        let mut extras = FrameExtras::new(&f, 4);
        let whole = bytes.len() / bpf * bpf;
        match decode_with_extras(&f, &bytes, &mut block, &mut extras, expected) {
            Ok(r) => {
                prop_assert_eq!(r.frames * bpf, bytes.len());
                prop_assert_eq!(block.frames, r.frames);
            }
            Err(DecodeError::Truncated { got, expected, .. }) => {
                prop_assert!(got % bpf != 0 && expected % bpf == 0 && expected > got);
            }
            Err(DecodeError::TooManyFrames { frames, .. }) => prop_assert!(frames > 4),
            Err(DecodeError::BadMagic { frame, .. }) => prop_assert!(!magic_at_frames && frame * bpf < whole),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        let _ = decode(&f, &bytes[..whole.min(4 * bpf)], &mut block, expected);
        let _ = resync(&f, &bytes, 0);
    }
}

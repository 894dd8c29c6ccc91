//! Arbitrary bytes into the Rhythm USB frame decoder, as each of a set of frame formats (every
//! board, the stream counts that change the filler) and as one format picked by the first byte.
//!
//! Checks, besides never panicking: a call that succeeds decoded exactly the whole frames it
//! was given; encoding what it decoded and decoding that again gives the same block and extras;
//! re-encoding gives back the input bytes, filler words aside; `resync` only ever points at a
//! whole frame that starts with the magic number.
//!
//!     cd drivers/fuzz && cargo +nightly fuzz run decode -- -max_total_time=60

#![no_main]

use ephysd_drivers::rhythm::{
    decode, decode_with_extras, encode_with_extras, resync, Board, DecodeError, FrameExtras, FrameFormat,
    XdaqGeneration,
};
use ephysd_drivers::{BlockLayout, FrameBlock};
use libfuzzer_sys::fuzz_target;

const CAPACITY: usize = 16;

const FORMATS: [(Board, usize); 11] = [
    (Board::RhdUsbInterface, 1),
    (Board::RhdUsbInterface, 2),
    (Board::RhdController, 1),
    (Board::RhdController, 2),
    (Board::RhdController, 4),
    (Board::RhsController, 1),
    (Board::RhsController, 2),
    (Board::XdaqRhd(XdaqGeneration::One), 1),
    (Board::XdaqRhd(XdaqGeneration::Two), 2),
    (Board::XdaqRhs(XdaqGeneration::One), 1),
    (Board::XdaqRhs(XdaqGeneration::Two), 1),
];

fn check(format: &FrameFormat, bytes: &[u8], expected: Option<u64>, keep_aux: bool) {
    let bpf = format.bytes_per_frame();
    let layout =
        BlockLayout { aux_channels: if keep_aux { format.aux_channels() } else { 0 }, ..format.block_layout(CAPACITY) };
    let mut block = FrameBlock::new(layout);
    let mut extras = FrameExtras::new(format, CAPACITY);

    // Plain decode agrees with decode_with_extras on the block.
    let plain = decode(format, bytes, &mut block, expected);
    let plain_block = block.clone();
    match decode_with_extras(format, bytes, &mut block, &mut extras, expected) {
        Ok(report) => {
            assert_eq!(plain.as_ref().ok(), Some(&report));
            assert_eq!(report.frames * bpf, bytes.len());
            assert_eq!(block.frames, report.frames);
            assert_eq!(block, plain_block);
            assert!(report.gaps <= report.frames);

            let mut again = Vec::new();
            encode_with_extras(format, &block, &extras, &mut again).expect("a decoded block encodes");
            let mut input = bytes.to_vec();
            let o = format.offsets();
            for frame in input.chunks_exact_mut(bpf) {
                frame[o.filler..o.filler + 2 * format.filler_words()].fill(0);
                if !keep_aux {
                    // Without an aux lane the aux results are encoded as 0 (their RHS high
                    // halves travel in the extras).
                    clear_aux_results(format, frame);
                }
            }
            assert_eq!(again, input);

            let mut block2 = FrameBlock::new(layout);
            let mut extras2 = FrameExtras::new(format, CAPACITY);
            let report2 = decode_with_extras(format, &again, &mut block2, &mut extras2, expected).expect("re-decodes");
            assert_eq!(report2, report);
            assert_eq!(&block2.frame_index[..report.frames], &block.frame_index[..report.frames]);
            assert_eq!(block2.amplifier_filled(), block.amplifier_filled());
            assert_eq!(extras2, extras);
        }
        Err(e) => {
            assert_eq!(block.frames, 0);
            assert_eq!(plain.as_ref().err(), Some(&e));
            match e {
                DecodeError::Truncated { got, expected, bytes_per_frame } => {
                    assert_eq!(got, bytes.len());
                    assert!(expected > got && expected % bytes_per_frame == 0);
                }
                DecodeError::BadMagic { offset, found, .. } => {
                    assert_eq!(offset % bpf, 0);
                    assert_ne!(found, format.magic());
                }
                DecodeError::TooManyFrames { frames, capacity } => assert!(frames > capacity),
                other => panic!("unexpected {other}"),
            }
        }
    }

    let mut from = 0;
    while let Some(at) = resync(format, bytes, from) {
        assert_eq!(at % 2, 0);
        assert!(at >= from && at + bpf <= bytes.len());
        assert_eq!(bytes[at..at + 8], format.magic().to_le_bytes());
        from = at + 2;
    }
}

fn clear_aux_results(format: &FrameFormat, frame: &mut [u8]) {
    let o = format.offsets();
    let n = format.streams();
    match o.aux0 {
        None => frame[o.aux..o.aux + 6 * n].fill(0),
        Some(aux0) => {
            for s in 0..3 * n {
                frame[o.aux + 4 * s..o.aux + 4 * s + 2].fill(0);
            }
            for s in 0..n {
                frame[aux0 + 4 * s..aux0 + 4 * s + 2].fill(0);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let expected = (pick & 0x80 != 0).then(|| u64::from(pick) << 24);
    for (board, streams) in FORMATS {
        let format = FrameFormat::new(board, streams).expect("valid format");
        check(&format, data, None, true);
        // The whole frames that fit, so long inputs get past the size checks too.
        let whole = (data.len() / format.bytes_per_frame()).min(CAPACITY) * format.bytes_per_frame();
        check(&format, &data[..whole], expected, pick & 1 == 0);
    }
    let board = Board::ALL[usize::from(pick) % Board::ALL.len()];
    let streams = 1 + usize::from(pick >> 3) % board.max_streams();
    let format = FrameFormat::new(board, streams).expect("valid format");
    check(&format, rest, expected, pick & 4 == 0);
});

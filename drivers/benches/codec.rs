//! Speed of the Rhythm USB frame codec.
//!
//! The goal: decoding a 1024-channel board (32 RHD streams) at 30 kHz at ≥ 100× real time. One
//! iteration decodes one second of frames (30 000, from bytes already in memory, 68 MB) into a
//! 128-frame block, block after block as a driver would, checking every magic number and
//! sample index; × real time is 1 s over the time per iteration. The bytes are far larger than
//! the caches, so this includes reading them from memory, as a driver reading fresh USB
//! buffers does.
//!
//! `hot` decodes the first 128 frames over and over instead (as many blocks as a second holds):
//! the bytes are in the cache, as those of a USB transfer the driver has just copied in are,
//! which leaves the decoder's own work.
//!
//! Also measured: the same for XDAQ gen 1 (the frame pyxdaq parses; `codec_side_by_side.py`
//! compares the two parsers), the RHS controller with every extra lane, and encoding (what a
//! board emulator does).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ephysd_drivers::rhythm::{
    decode, decode_with_extras, encode, encode_with_extras, Board, FrameExtras, FrameFormat, XdaqGeneration,
};
use ephysd_drivers::FrameBlock;

const RATE: usize = 30_000;
const BLOCK: usize = 128;

/// One second of frames of `format`: random samples, consecutive sample indices.
fn one_second(format: &FrameFormat) -> Vec<u8> {
    let mut block = FrameBlock::new(format.block_layout(BLOCK));
    let mut extras = FrameExtras::new(format, BLOCK);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut word = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u16
    };
    let mut bytes = Vec::with_capacity(RATE * format.bytes_per_frame());
    let mut next = 0u64;
    while next < RATE as u64 {
        let frames = BLOCK.min(RATE - next as usize);
        block.frames = frames;
        for i in 0..frames {
            block.frame_index[i] = next + i as u64;
        }
        block.amplifier.iter_mut().for_each(|v| *v = word() as i16);
        block.aux.iter_mut().for_each(|v| *v = word());
        block.analog_in.iter_mut().for_each(|v| *v = word());
        block.digital_in.iter_mut().for_each(|v| *v = word());
        extras.dc_amplifier.iter_mut().for_each(|v| *v = word() & 0x3ff);
        extras.stim_on.iter_mut().for_each(|v| *v = word());
        encode_with_extras(format, &block, &extras, &mut bytes).expect("block fits its format");
        next += frames as u64;
    }
    bytes
}

fn decode_second(c: &mut Criterion) {
    let mut group = c.benchmark_group("rhythm_decode_1s");
    group.sample_size(20);
    for (board, streams, with_extras, hot) in [
        (Board::RhdController, 32, false, false),
        (Board::RhdController, 32, false, true),
        (Board::XdaqRhd(XdaqGeneration::One), 32, false, false),
        (Board::RhsController, 8, true, false),
    ] {
        let format = FrameFormat::new(board, streams).expect("valid format");
        let bytes = one_second(&format);
        let bpf = format.bytes_per_frame();
        let mut block = FrameBlock::new(format.block_layout(BLOCK));
        let mut extras = FrameExtras::new(&format, BLOCK);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let id = format!("{}_{}ch_30kHz_{}f", board.name(), format.amplifier_channels(), BLOCK);
        let kind = match (with_extras, hot) {
            (true, _) => "with_extras",
            (false, true) => "hot",
            (false, false) => "block",
        };
        group.bench_function(BenchmarkId::new(kind, id), |b| {
            b.iter(|| {
                let mut next = Some(0);
                for chunk in bytes.chunks(BLOCK * bpf) {
                    let (chunk, expected) = if hot { (&bytes[..chunk.len()], None) } else { (chunk, next) };
                    let report = if with_extras {
                        decode_with_extras(&format, chunk, &mut block, &mut extras, expected)
                    } else {
                        decode(&format, chunk, &mut block, expected)
                    }
                    .expect("intact frames");
                    debug_assert_eq!(report.gaps, 0);
                    next = report.next_index;
                }
                black_box(&block.amplifier[0]);
                next
            })
        });
    }
    group.finish();
}

fn encode_second(c: &mut Criterion) {
    let mut group = c.benchmark_group("rhythm_encode_1s");
    group.sample_size(20);
    let format = FrameFormat::new(Board::RhdController, 32).expect("valid format");
    let bytes = one_second(&format);
    let mut blocks = Vec::new();
    for chunk in bytes.chunks(BLOCK * format.bytes_per_frame()) {
        let mut block = FrameBlock::new(format.block_layout(BLOCK));
        decode(&format, chunk, &mut block, None).expect("intact frames");
        blocks.push(block);
    }
    let mut out = Vec::with_capacity(bytes.len());
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("rhd-controller_1024ch_30kHz_128f", |b| {
        b.iter(|| {
            out.clear();
            for block in &blocks {
                encode(&format, block, &mut out).expect("block fits its format");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode_second, encode_second);
criterion_main!(benches);

//! Writes USB frames of a Rhythm-family board to a file, as the board would send them: random
//! samples in every field, consecutive sample indices. Used by `benches/codec_side_by_side.py`
//! and for the fuzz seed corpus.
//!
//! ```text
//! cargo run --release -p ephysd-drivers --example write_rhd_frames -- OUT \
//!     [--board rhd-controller] [--streams 32] [--frames 30000] [--first 0] [--seed 1]
//! ```
//!
//! Boards: rhd-usb-interface, open-ephys, open-ephys-usb3, rhd-controller, rhs-controller, xdaq-rhd-gen1,
//! xdaq-rhd-gen2, xdaq-rhs-gen1, xdaq-rhs-gen2. Prints the frame size in bytes.

use std::process::ExitCode;

use ephysd_drivers::rhythm::{encode_with_extras, Board, FrameExtras, FrameFormat};
use ephysd_drivers::FrameBlock;

const BLOCK: usize = 128;

struct Args {
    out: String,
    board: Board,
    streams: usize,
    frames: usize,
    first: u64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut args =
        Args { out: String::new(), board: Board::RhdController, streams: 32, frames: 30_000, first: 0, seed: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--board" => {
                let name = value()?;
                args.board = Board::from_name(&name).ok_or(format!("unknown board {name}"))?;
            }
            "--streams" => args.streams = value()?.parse().map_err(|e| format!("--streams: {e}"))?,
            "--frames" => args.frames = value()?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--first" => args.first = value()?.parse().map_err(|e| format!("--first: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => args.out = a,
        }
    }
    if args.out.is_empty() {
        return Err(
            "usage: write_rhd_frames OUT [--board NAME] [--streams N] [--frames N] [--first I] [--seed S]".into()
        );
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let format = match FrameFormat::new(args.board, args.streams) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // xorshift64*: reproducible from the seed.
    let mut state = args.seed.max(1);
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut block = FrameBlock::new(format.block_layout(BLOCK));
    let mut extras = FrameExtras::new(&format, BLOCK);
    let mut bytes = Vec::with_capacity(args.frames * format.bytes_per_frame());
    let mut done = 0;
    while done < args.frames {
        let frames = BLOCK.min(args.frames - done);
        block.frames = frames;
        for (i, idx) in block.frame_index[..frames].iter_mut().enumerate() {
            *idx = args.first + (done + i) as u64;
        }
        block.amplifier.iter_mut().for_each(|v| *v = next() as i16);
        for lane in [&mut block.aux, &mut block.analog_in, &mut block.digital_in, &mut block.digital_out] {
            lane.iter_mut().for_each(|v| *v = next() as u16);
        }
        for lane in [
            &mut extras.dc_amplifier,
            &mut extras.aux_high,
            &mut extras.stim_on,
            &mut extras.stim_polarity,
            &mut extras.amp_settle,
            &mut extras.charge_recovery,
            &mut extras.analog_out,
            &mut extras.digital_in_high,
            &mut extras.digital_out_high,
        ] {
            lane.iter_mut().for_each(|v| *v = next() as u16);
        }
        for (i, t) in extras.device_timestamp_us.iter_mut().enumerate() {
            // Microseconds at 30 kHz.
            *t = (args.first + (done + i) as u64) * 100 / 3;
        }
        encode_with_extras(&format, &block, &extras, &mut bytes).expect("block built for its format");
        done += frames;
    }
    if let Err(e) = std::fs::write(&args.out, &bytes) {
        eprintln!("cannot write {}: {e}", args.out);
        return ExitCode::FAILURE;
    }
    println!("{}", format.bytes_per_frame());
    ExitCode::SUCCESS
}

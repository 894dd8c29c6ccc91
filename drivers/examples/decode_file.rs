//! Decodes a file of Rhythm USB frames (in memory) block by block, timing itself, for
//! `benches/codec_side_by_side.py`.
//!
//! ```text
//! cargo run --release -p ephysd-drivers --example decode_file -- FILE \
//!     [--board rhd-controller] [--streams 32] [--block 128] [--repeat 20] [--hot] [--dump DIR]
//! ```
//!
//! Prints one JSON object: the best and median time of decoding the whole file, and of
//! decoding it and converting the amplifier samples to µV as `f32` (what pyxdaq's
//! `amplifier2uv` returns), block by block into a reused buffer. With `--hot`, the file's first
//! block of frames is decoded over and over instead (as many blocks as the file holds), so the
//! bytes are in the cache as a USB transfer that has just been copied in would be; the time is
//! still per file's worth of frames. `--dump DIR` also writes what
//! was decoded (little endian, frame-major): `frame_index.u64`, `amplifier.i16`, `aux.u16`,
//! `analog_in.u16`, `digital_in.u32`, `digital_out.u32` and, for XDAQ gen 2,
//! `device_timestamp.u64`, so another parser's output can be compared with ours.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ephysd_drivers::rhythm::{decode, decode_with_extras, Board, FrameExtras, FrameFormat};
use ephysd_drivers::{FrameBlock, AMPLIFIER_UV_PER_UNIT};

struct Args {
    file: String,
    board: Board,
    streams: usize,
    block: usize,
    repeat: usize,
    hot: bool,
    dump: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        file: String::new(),
        board: Board::RhdController,
        streams: 32,
        block: 128,
        repeat: 20,
        hot: false,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--board" => {
                let name = value()?;
                args.board = Board::from_name(&name).ok_or(format!("unknown board {name}"))?;
            }
            "--streams" => args.streams = value()?.parse().map_err(|e| format!("--streams: {e}"))?,
            "--block" => args.block = value()?.parse().map_err(|e| format!("--block: {e}"))?,
            "--repeat" => args.repeat = value()?.parse().map_err(|e| format!("--repeat: {e}"))?,
            "--dump" => args.dump = Some(value()?),
            "--hot" => args.hot = true,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => args.file = a,
        }
    }
    if args.file.is_empty() || args.block == 0 || args.repeat == 0 {
        return Err(
            "usage: decode_file FILE [--board NAME] [--streams N] [--block N] [--repeat N] [--hot] [--dump DIR]".into(),
        );
    }
    Ok(args)
}

/// Decodes every block of `bytes` (or, `hot`, its first block as many times), handing each to
/// `each`; returns the frames decoded.
fn decode_all(
    format: &FrameFormat,
    bytes: &[u8],
    hot: bool,
    block: &mut FrameBlock,
    mut each: impl FnMut(&FrameBlock),
) -> usize {
    let mut next = None;
    let mut frames = 0;
    let block_bytes = block.layout().frames_per_block * format.bytes_per_frame();
    for chunk in bytes.chunks(block_bytes) {
        let chunk = if hot { &bytes[..chunk.len().min(block_bytes)] } else { chunk };
        let report = decode(format, chunk, block, if hot { None } else { next }).expect("intact frames");
        assert_eq!(report.gaps, 0, "frames missing from the file");
        next = report.next_index;
        frames += report.frames;
        each(block);
    }
    frames
}

fn stats(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    (times[0].as_secs_f64(), times[times.len() / 2].as_secs_f64())
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
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let mut block = FrameBlock::new(format.block_layout(args.block));
    let mut uv = vec![0f32; args.block * format.amplifier_channels()];
    let scale = AMPLIFIER_UV_PER_UNIT as f32;

    let mut frames = 0;
    let (mut plain, mut with_uv) = (Vec::new(), Vec::new());
    for _ in 0..args.repeat {
        let t = Instant::now();
        frames = decode_all(&format, &bytes, args.hot, &mut block, |b| {
            std::hint::black_box(&b.amplifier[0]);
        });
        plain.push(t.elapsed());
        let t = Instant::now();
        decode_all(&format, &bytes, args.hot, &mut block, |b| {
            for (u, &a) in uv.iter_mut().zip(b.amplifier_filled()) {
                *u = f32::from(a) * scale;
            }
            std::hint::black_box(&uv[0]);
        });
        with_uv.push(t.elapsed());
    }
    let (plain_best, plain_median) = stats(plain);
    let (uv_best, uv_median) = stats(with_uv);

    if let Some(dir) = &args.dump {
        if let Err(e) = dump(&format, &bytes, args.block, dir) {
            eprintln!("cannot dump into {dir}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{{\"board\": \"{}\", \"streams\": {}, \"bytes_per_frame\": {}, \"frames\": {frames}, \"bytes\": {}, \
         \"block\": {}, \"repeat\": {}, \"hot\": {}, \"decode_best_s\": {plain_best}, \
         \"decode_median_s\": {plain_median}, \"decode_uv_best_s\": {uv_best}, \"decode_uv_median_s\": {uv_median}}}",
        format.board().name(),
        format.streams(),
        format.bytes_per_frame(),
        bytes.len(),
        args.block,
        args.repeat,
        args.hot,
    );
    ExitCode::SUCCESS
}

fn dump(format: &FrameFormat, bytes: &[u8], block_frames: usize, dir: &str) -> std::io::Result<()> {
    let mut block = FrameBlock::new(format.block_layout(block_frames));
    let mut extras = FrameExtras::new(format, block_frames);
    let (mut index, mut amp, mut aux, mut adc, mut din, mut dout, mut ts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut next = None;
    for chunk in bytes.chunks(block_frames * format.bytes_per_frame()) {
        let r = decode_with_extras(format, chunk, &mut block, &mut extras, next).map_err(std::io::Error::other)?;
        next = r.next_index;
        let (n, l) = (r.frames, block.layout());
        index.extend(block.frame_index[..n].iter().flat_map(|v| v.to_le_bytes()));
        amp.extend(block.amplifier_filled().iter().flat_map(|v| v.to_le_bytes()));
        aux.extend(block.aux[..n * l.aux_channels].iter().flat_map(|v| v.to_le_bytes()));
        adc.extend(block.analog_in[..n * l.analog_in_channels].iter().flat_map(|v| v.to_le_bytes()));
        let high = |lane: &Vec<u16>, i: usize| u32::from(lane.get(i).copied().unwrap_or(0)) << 16;
        for i in 0..n {
            din.extend((u32::from(block.digital_in[i]) | high(&extras.digital_in_high, i)).to_le_bytes());
            dout.extend((u32::from(block.digital_out[i]) | high(&extras.digital_out_high, i)).to_le_bytes());
        }
        ts.extend(extras.device_timestamp_us.iter().take(n).flat_map(|v| v.to_le_bytes()));
    }
    std::fs::create_dir_all(dir)?;
    let path = |name: &str| std::path::Path::new(dir).join(name);
    std::fs::write(path("frame_index.u64"), index)?;
    std::fs::write(path("amplifier.i16"), amp)?;
    std::fs::write(path("aux.u16"), aux)?;
    std::fs::write(path("analog_in.u16"), adc)?;
    std::fs::write(path("digital_in.u32"), din)?;
    std::fs::write(path("digital_out.u32"), dout)?;
    if format.board().has_device_timestamp() {
        std::fs::write(path("device_timestamp.u64"), ts)?;
    }
    Ok(())
}

//! Writes the amplifier samples an emulated board's electrodes carry, as the board streams
//! them (frame-major, channels in port and MISO-line order, little-endian int16), so a
//! recording made from the board can be checked frame for frame from another language:
//! `emulated_signal "<emulator spec>" <sample rate> <frames> <out file>`. A SmartBox Pro spec
//! (`board=sinaps-*`) gives its probe's pixels, shank 0 first, every pixel on.

use std::io::Write;

use ephysd_drivers::emulator::sinaps::sinaps_signal_config;
use ephysd_drivers::emulator::{signal_config, EmulatedBoardSpec};
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{FrameBlock, Source};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: emulated_signal \"<emulator spec>\" <sample rate> <frames> <out file>");
        std::process::exit(2);
    }
    let spec: EmulatedBoardSpec = args[1].parse().unwrap_or_else(|e| panic!("{e}"));
    let rate: f64 = args[2].parse().expect("sample rate");
    let frames: usize = args[3].parse().expect("frames");
    let (config, channels) = match &spec {
        EmulatedBoardSpec::Rhythm(s) => (signal_config(s, rate), s.amplifier_channels()),
        EmulatedBoardSpec::Sinaps(s) => (sinaps_signal_config(s, rate), s.probe_channels()),
    };
    let mut source = SimulatedSource::new(config).unwrap_or_else(|e| panic!("{e}"));
    let mut block = FrameBlock::new(source.layout());
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[4]).expect("out file"));
    let mut written = 0;
    while written < frames {
        source.read_block(&mut block).unwrap_or_else(|e| panic!("{e}"));
        let take = block.frames.min(frames - written);
        let width = block.layout().amplifier_channels;
        for f in 0..take {
            for &x in &block.amplifier[f * width..f * width + channels] {
                out.write_all(&x.to_le_bytes()).expect("write");
            }
        }
        written += take;
    }
}

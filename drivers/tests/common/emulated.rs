//! Comparing what the board driver streams with what the emulated board's electrodes carried.

use ephysd_drivers::emulator::{signal_config, EmulatorSpec};
use ephysd_drivers::rhythm::board::RhythmBoard;
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{FrameBlock, Source};

/// Reads `frames` frames from `source` and the same frames straight from the emulator's
/// signal at `rate`, and compares every amplifier sample, analog input and digital input, and
/// the frame indices (from 0, without gaps).
pub fn assert_source_matches_signal(spec: &EmulatorSpec, rate: f64, source: &mut dyn Source, frames: usize) {
    let mut block = FrameBlock::new(source.layout());
    let mut signal = SimulatedSource::new(signal_config(spec, rate)).unwrap();
    let mut truth = FrameBlock::new(signal.layout());
    let channels = source.layout().amplifier_channels;
    assert_eq!(channels, spec.amplifier_channels());
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let (mut got_din, mut want_din, mut got_ain, mut want_ain) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut index = Vec::new();
    while got.len() < frames * channels {
        source.read_block(&mut block).unwrap();
        got.extend_from_slice(block.amplifier_filled());
        got_din.extend_from_slice(&block.digital_in[..block.frames]);
        got_ain.extend_from_slice(&block.analog_in[..block.frames * 8]);
        index.extend_from_slice(&block.frame_index[..block.frames]);
    }
    while want.len() < got.len() {
        signal.read_block(&mut truth).unwrap();
        want.extend_from_slice(truth.amplifier_filled());
        want_din.extend_from_slice(&truth.digital_in[..truth.frames]);
        want_ain.extend_from_slice(&truth.analog_in[..truth.frames * 8]);
    }
    let n = got.len() / channels;
    assert_eq!(index, (0..n as u64).collect::<Vec<_>>(), "frame indices from 0 without gaps");
    for f in 0..n {
        assert_eq!(got[f * channels..(f + 1) * channels], want[f * channels..(f + 1) * channels], "frame {f}");
    }
    assert_eq!(got_din, want_din[..n]);
    assert_eq!(got_ain, want_ain[..n * 8]);
}

/// Starts `board`'s stream and compares `frames` of it with the emulator's signal.
pub fn assert_stream_matches_signal(spec: &EmulatorSpec, board: &mut RhythmBoard, frames: usize) {
    let rate = board.settings().sample_rate_hz;
    let mut source = board.start_stream().unwrap();
    assert_source_matches_signal(spec, rate, &mut source, frames);
}

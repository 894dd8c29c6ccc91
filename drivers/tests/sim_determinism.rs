//! The same configuration and seed give bit-identical streams, whatever the block size, and
//! frame indices count up from 0 without gaps.

use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

/// Every stream of the first `frames` frames, concatenated across blocks.
#[derive(Debug, PartialEq)]
struct Capture {
    index: Vec<u64>,
    amplifier: Vec<i16>,
    aux: Vec<u16>,
    analog_in: Vec<u16>,
    digital_in: Vec<u16>,
    digital_out: Vec<u16>,
}

fn capture(config: SimConfig, frames: usize) -> Capture {
    let mut source = SimulatedSource::new(config).unwrap();
    let layout = source.layout();
    let mut block = FrameBlock::new(layout);
    let mut c = Capture {
        index: vec![],
        amplifier: vec![],
        aux: vec![],
        analog_in: vec![],
        digital_in: vec![],
        digital_out: vec![],
    };
    while c.index.len() < frames {
        source.read_block(&mut block).unwrap();
        let n = block.frames;
        assert_eq!(n, layout.frames_per_block);
        c.index.extend_from_slice(&block.frame_index[..n]);
        c.amplifier.extend_from_slice(block.amplifier_filled());
        c.aux.extend_from_slice(&block.aux[..n * layout.aux_channels]);
        c.analog_in.extend_from_slice(&block.analog_in[..n * layout.analog_in_channels]);
        c.digital_in.extend_from_slice(&block.digital_in[..n]);
        c.digital_out.extend_from_slice(&block.digital_out[..n]);
    }
    c.index.truncate(frames);
    c.amplifier.truncate(frames * layout.amplifier_channels);
    c.aux.truncate(frames * layout.aux_channels);
    c.analog_in.truncate(frames * layout.analog_in_channels);
    c.digital_in.truncate(frames);
    c.digital_out.truncate(frames);
    c
}

fn config(mode: SimMode, channels: usize, rate: f64, frames_per_block: usize) -> SimConfig {
    SimConfig {
        mode,
        amplifier_channels: channels,
        sample_rate_hz: rate,
        frames_per_block,
        accelerated: true,
        seed: 7,
        ..SimConfig::default()
    }
}

#[test]
fn block_size_does_not_change_a_single_sample() {
    // 2.3 s at 30 kHz: crosses two spike-train epochs and thousands of LFP knots.
    let frames = 69_000;
    let a = capture(config(SimMode::Spikes, 64, 30000.0, 128), frames);
    let b = capture(config(SimMode::Spikes, 64, 30000.0, 100), frames);
    assert!(a == b, "frames_per_block 128 and 100 differ");
    let c = capture(config(SimMode::Spikes, 64, 30000.0, 1), 3_000);
    assert!(c.amplifier[..] == a.amplifier[..3_000 * 64]);
}

#[test]
fn block_size_does_not_matter_for_any_mode_or_rate() {
    for mode in SimMode::ALL {
        // At 1 kHz a 4096-frame block spans four epochs and is rendered in several chunks.
        let a = capture(config(mode, 13, 1000.0, 4096), 12_288);
        let b = capture(config(mode, 13, 1000.0, 97), 12_288);
        assert!(a == b, "{mode}: 1 kHz, 4096 vs 97 frames per block differ");
        let a = capture(config(mode, 70, 10000.0 / 3.0, 128), 8_000);
        let b = capture(config(mode, 70, 10000.0 / 3.0, 333), 8_000);
        assert!(a == b, "{mode}: 3333.33 Hz, 128 vs 333 frames per block differ");
    }
}

#[test]
fn same_seed_same_stream_other_seed_other_stream() {
    let a = capture(config(SimMode::Broadband, 32, 30000.0, 128), 6_000);
    let b = capture(config(SimMode::Broadband, 32, 30000.0, 128), 6_000);
    assert!(a == b);
    let other = capture(SimConfig { seed: 8, ..config(SimMode::Broadband, 32, 30000.0, 128) }, 6_000);
    let same = a.amplifier.iter().zip(&other.amplifier).filter(|(x, y)| x == y).count();
    assert!(same < a.amplifier.len() / 10, "{same} of {} samples equal across seeds", a.amplifier.len());
}

#[test]
fn frame_index_starts_at_zero_and_counts_every_frame() {
    let mut source = SimulatedSource::new(config(SimMode::Sine, 8, 30000.0, 128)).unwrap();
    let mut block = FrameBlock::new(source.layout());
    let mut previous = None;
    for b in 0..50u64 {
        source.read_block(&mut block).unwrap();
        assert_eq!(block.frame_index[0], b * 128);
        assert_eq!(block.count_gaps(previous), 0);
        previous = Some(block.frame_index[block.frames - 1]);
        assert_eq!(source.frames_produced(), (b + 1) * 128);
    }
}

#[test]
fn cloned_source_continues_identically() {
    let mut a = SimulatedSource::new(config(SimMode::Spikes, 16, 30000.0, 128)).unwrap();
    let mut block = FrameBlock::new(a.layout());
    for _ in 0..300 {
        a.read_block(&mut block).unwrap();
    }
    let mut b = a.clone();
    let mut block_b = FrameBlock::new(b.layout());
    for _ in 0..300 {
        a.read_block(&mut block).unwrap();
        b.read_block(&mut block_b).unwrap();
        assert_eq!(block, block_b);
    }
}

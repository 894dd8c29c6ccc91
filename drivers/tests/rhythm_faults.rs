//! Each fault the emulated board can inject gives its documented reaction in the RHD driver
//! (docs/OPERATIONS.md, "Board faults"): nothing is lost silently.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ephysd_drivers::emulator::{signal_config, EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, PanelProvider};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, RhythmBoard};
use ephysd_drivers::rhythm::Board;
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{DeviceError, FrameBlock, Source, SourceError};

fn board(provider: &EmulatorProvider) -> RhythmBoard {
    let panel: Box<dyn FrontPanel> = provider.open(None).unwrap();
    let settings = BoardSettings {
        board: Board::RhdController,
        name: "emulated controller".into(),
        sample_rate_hz: 30000.0,
        frames_per_block: 128,
        bitfile: None,
        ports: 8,
        free_running: !provider.spec().realtime,
    };
    bring_up(Arc::new(Mutex::new(panel)), settings).unwrap()
}

fn provider(text: &str) -> EmulatorProvider {
    EmulatorProvider::new(text.parse::<EmulatorSpec>().unwrap())
}

/// Reads until `frames` frames arrived; returns every frame's index and samples.
fn read(source: &mut dyn Source, frames: usize) -> (Vec<u64>, Vec<i16>) {
    let mut block = FrameBlock::new(source.layout());
    let (mut index, mut samples) = (Vec::new(), Vec::new());
    while index.len() < frames {
        source.read_block(&mut block).unwrap();
        index.extend_from_slice(&block.frame_index[..block.frames]);
        samples.extend_from_slice(block.amplifier_filled());
    }
    (index, samples)
}

/// The emulator's electrodes at each of `index`, for comparison.
fn truth(spec: &EmulatorSpec, index: &[u64]) -> Vec<i16> {
    let mut signal = SimulatedSource::new(signal_config(spec, 30000.0)).unwrap();
    let mut block = FrameBlock::new(signal.layout());
    let ch = spec.amplifier_channels();
    let mut all = Vec::new();
    while (all.len() / ch) as u64 <= *index.last().unwrap() {
        signal.read_block(&mut block).unwrap();
        all.extend_from_slice(block.amplifier_filled());
    }
    index.iter().flat_map(|&i| all[i as usize * ch..(i as usize + 1) * ch].to_vec()).collect()
}

fn jumps(index: &[u64]) -> Vec<(u64, u64)> {
    index.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1] - w[0] - 1)).collect()
}

#[test]
fn a_corrupted_frame_is_counted_skipped_and_shows_as_a_one_frame_gap() {
    let p = provider("pace=free ports=A:2164 faults=corrupt@1000");
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    let (index, samples) = read(&mut source, 3000);
    assert_eq!(jumps(&index), [(999, 1)], "frame 1000 is missing, nothing else");
    assert_eq!(samples, truth(p.spec(), &index), "every kept frame is the board's");
    assert_eq!((b.health().corrupt_reads(), b.health().frames_lost()), (1, 1));
}

#[test]
fn dropped_frames_are_a_gap_of_exactly_their_length() {
    let p = provider("pace=free ports=A:2132,B:2216 faults=drop@500+37");
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    let (index, samples) = read(&mut source, 2000);
    assert_eq!(jumps(&index), [(499, 37)]);
    assert_eq!(samples, truth(p.spec(), &index));
    assert_eq!((b.health().corrupt_reads(), b.health().frames_lost()), (0, 37));
}

#[test]
fn a_fifo_filling_up_is_a_warning_before_its_overflow_is_a_gap() {
    // 1024 channels fill the controller's 128 MiB FIFO in about 2 s when the host stops
    // reading (a host that is busy elsewhere).
    let p = provider(
        "pace=realtime ports=A:2164+2164,B:2164+2164,C:2164+2164,D:2164+2164,E:2164+2164,F:2164+2164,G:2164+2164,H:2164+2164",
    );
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    read(&mut source, 3000);
    std::thread::sleep(Duration::from_millis(1300));
    let (index, _) = read(&mut source, 3000);
    assert!(jumps(&index).is_empty(), "nothing lost yet");
    assert!(b.health().fifo_warnings() == 1 && b.health().fifo_peak_permille() >= 500, "{:?}", b.health());
    assert_eq!(b.health().frames_lost(), 0);
    std::thread::sleep(Duration::from_millis(2600));
    let (index, _) = read(&mut source, 90_000);
    let lost: u64 = jumps(&index).iter().map(|(_, n)| n).sum();
    assert!(lost > 10_000, "{lost} frames lost to the overflow");
    assert_eq!(b.health().frames_lost(), lost);
    assert!(b.health().fifo_peak_permille() >= 990, "{:?}", b.health());
}

#[test]
fn a_pipe_that_pauses_briefly_loses_nothing() {
    let p = provider("pace=realtime ports=A:2132 faults=stall@0.2+0.5");
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    let (index, samples) = read(&mut source, 30000);
    assert!(jumps(&index).is_empty());
    assert_eq!(samples, truth(p.spec(), &index));
}

#[test]
fn a_pipe_that_stops_for_good_ends_the_stream_as_stalled() {
    let p = provider("pace=realtime ports=A:2132 faults=stall@0.1");
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let start = Instant::now();
    let error = loop {
        if let Err(e) = source.read_block(&mut block) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the stall was never reported");
    };
    assert!(matches!(error, SourceError::Device(DeviceError::Stalled { .. })), "{error}");
    assert!(error.to_string().contains("stopped delivering data"), "{error}");
}

#[test]
fn an_unplugged_board_ends_the_stream_as_gone_and_opens_again_when_it_returns() {
    let p = provider("pace=free ports=A:2164 faults=unplug@0.05+0.5");
    let mut b = board(&p);
    let mut source = b.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let error = loop {
        if let Err(e) = source.read_block(&mut block) {
            break e;
        }
    };
    let SourceError::Device(device) = &error else { panic!("{error}") };
    assert!(device.is_gone(), "{error}");
    drop(source);
    match p.open(None) {
        Err(FrontPanelError::NotFound { attached, .. }) => assert_eq!(attached, "none"),
        other => panic!("opened while unplugged: {:?}", other.map(|_| ())),
    }
    std::thread::sleep(Duration::from_millis(600));
    let mut again = board(&p);
    let mut source = again.start_stream().unwrap();
    let (index, samples) = read(&mut source, 1000);
    assert_eq!(index[0], 0);
    assert_eq!(samples, truth(p.spec(), &index));
}

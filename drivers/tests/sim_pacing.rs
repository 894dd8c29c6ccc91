//! Real-time pacing (loosely: the machines running tests are shared, so only lower bounds and
//! generous upper bounds are asserted).

use std::time::{Duration, Instant};

use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

fn source(accelerated: bool) -> SimulatedSource {
    SimulatedSource::new(SimConfig {
        mode: SimMode::Spikes,
        amplifier_channels: 4,
        accelerated,
        ..SimConfig::default()
    })
    .unwrap()
}

#[test]
fn paced_blocks_take_at_least_their_duration() {
    let mut r = source(false);
    let mut block = FrameBlock::new(r.layout());
    let blocks = 71; // 71 × 128 frames = 0.303 s at 30 kHz
    let t0 = Instant::now();
    for _ in 0..blocks {
        r.read_block(&mut block).unwrap();
    }
    let elapsed = t0.elapsed();
    let produced = Duration::from_secs_f64((blocks * 128) as f64 / 30000.0);
    assert!(elapsed >= produced, "{elapsed:?} for {produced:?} of data");
    assert!(elapsed < produced * 5, "{elapsed:?} for {produced:?} of data");
}

#[test]
fn paced_frame_count_follows_the_wall_clock() {
    let mut r = source(false);
    let mut block = FrameBlock::new(r.layout());
    r.read_block(&mut block).unwrap();
    let t0 = Instant::now();
    let f0 = r.frames_produced();
    while t0.elapsed() < Duration::from_millis(500) {
        r.read_block(&mut block).unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let seconds_of_data = (r.frames_produced() - f0) as f64 / 30000.0;
    // Never ahead of the clock by more than a block; behind only by scheduling delays.
    assert!(seconds_of_data <= elapsed + 128.0 / 30000.0, "{seconds_of_data} s of data in {elapsed} s");
    assert!(seconds_of_data >= elapsed - 0.15, "{seconds_of_data} s of data in {elapsed} s");
}

#[test]
fn accelerated_source_does_not_sleep() {
    let mut r = source(true);
    let mut block = FrameBlock::new(r.layout());
    let t0 = Instant::now();
    for _ in 0..469 {
        r.read_block(&mut block).unwrap(); // 2 s of data
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?} for 2 s of data", t0.elapsed());
}

#[test]
fn a_late_reader_is_not_made_to_wait() {
    let mut r = source(false);
    let mut block = FrameBlock::new(r.layout());
    r.read_block(&mut block).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the consumer stalls for ~23 blocks
    let t0 = Instant::now();
    for _ in 0..10 {
        r.read_block(&mut block).unwrap(); // already due: returned without sleeping
    }
    assert!(t0.elapsed() < Duration::from_millis(60), "{:?}", t0.elapsed());
}

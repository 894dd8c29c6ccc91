//! `read_block` runs on the real-time acquisition thread and must not allocate. A counting
//! global allocator (this file is its own test binary) checks that, for every mode, including
//! across spike-train epoch boundaries where new trains are drawn.

mod common;

use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

#[test]
fn read_block_never_allocates() {
    // The counter itself works.
    common::heap::counting(true);
    let v = std::hint::black_box(vec![1u8; 10]);
    common::heap::counting(false);
    drop(v);
    assert_eq!(common::heap::take_allocations(), 1);

    for mode in SimMode::ALL {
        for (channels, rate, fpb) in [(64, 30000.0, 128), (16, 1000.0, 4096)] {
            let config = SimConfig {
                mode,
                amplifier_channels: channels,
                sample_rate_hz: rate,
                frames_per_block: fpb,
                accelerated: true,
                ..SimConfig::default()
            };
            let mut source = SimulatedSource::new(config).unwrap();
            let mut block = FrameBlock::new(source.layout());
            common::heap::counting(true);
            // ~2.5 s of data: crosses spike-train epochs.
            let blocks = (2.5 * rate / fpb as f64) as usize + 1;
            for _ in 0..blocks {
                source.read_block(&mut block).unwrap();
            }
            common::heap::counting(false);
            let n = common::heap::take_allocations();
            assert_eq!(n, 0, "{mode} {channels} ch @ {rate} Hz: {n} allocations in read_block");
        }
    }
}

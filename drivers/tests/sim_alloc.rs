//! `read_block` runs on the real-time acquisition thread and must not allocate. A counting
//! global allocator (this file is its own test binary) checks that, for every mode, including
//! across spike-train epoch boundaries where new trains are drawn.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_drivers::{FrameBlock, Source};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn read_block_never_allocates() {
    // The counter itself works.
    COUNTING.with(|c| c.set(true));
    let v = std::hint::black_box(vec![1u8; 10]);
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert_eq!(ALLOCATIONS.with(|a| a.replace(0)), 1);

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
            COUNTING.with(|c| c.set(true));
            // ~2.5 s of data: crosses spike-train epochs.
            let blocks = (2.5 * rate / fpb as f64) as usize + 1;
            for _ in 0..blocks {
                source.read_block(&mut block).unwrap();
            }
            COUNTING.with(|c| c.set(false));
            let n = ALLOCATIONS.with(|a| a.replace(0));
            assert_eq!(n, 0, "{mode} {channels} ch @ {rate} Hz: {n} allocations in read_block");
        }
    }
}

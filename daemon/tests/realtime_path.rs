//! The real-time path does not allocate, and a stalled acquisition thread stops the watchdog.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ephysd::acquisition::{Acquisition, ThreadPlacement};
use ephysd::core::watchdog::Liveness;
use ephysd::core::{PipelineCounters, PrimaryCache, WatchdogGate};
use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedRig};
use ephysd_drivers::{FrameBlock, Source};

/// Counts allocations made by the current thread, so other test threads cannot disturb it.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Forwarded rather than left to the default (alloc + memset), which would touch every
        // page and hide the page-fault behaviour tested below.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn source_to_cache_to_reader_allocates_nothing_per_block() {
    for mode in [SimMode::Spikes, SimMode::Broadband, SimMode::Sine, SimMode::Lfp] {
        let mut rig = SimulatedRig::new(SimConfig { mode, amplifier_channels: 256, accelerated: true, ..SimConfig::default() }).unwrap();
        let layout = rig.info().layout;
        let cache = PrimaryCache::new(layout, 20_000, 30_000.0);
        let mut block = FrameBlock::new(layout);
        let mut out = FrameBlock::new(layout);
        let mut reader = cache.reader_at_head();
        let counters = PipelineCounters::default();
        // Warm up: anything lazily initialised happens before measuring.
        rig.read_block(&mut block).unwrap();
        cache.publish(&block);
        reader.read(&cache, &mut out);

        let before = allocations();
        // 600 blocks of 128 frames: about 2.6 s of signal, many spikes, cache wrap-arounds.
        for _ in 0..600 {
            rig.read_block(&mut block).unwrap();
            let _ = block.count_gaps(Some(0));
            cache.publish(&block);
            PipelineCounters::add(&counters.frames_acquired, block.frames as u64);
            let r = reader.read(&cache, &mut out);
            assert_eq!(r.frames, block.frames);
        }
        assert_eq!(allocations() - before, 0, "{mode:?}: the real-time path allocated");
    }
}

/// Minor page faults taken by the calling thread so far.
fn thread_minor_faults() -> i64 {
    // SAFETY: getrusage writes one rusage struct, which is plain data.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage.ru_minflt
    }
}

#[test]
fn publishing_into_a_fresh_cache_takes_no_page_faults() {
    // One second of 1024 channels is 61 MB of ring: unfaulted, that is ~15 000 page faults
    // on the first pass alone.
    let mut rig = SimulatedRig::new(SimConfig { amplifier_channels: 1024, accelerated: true, ..SimConfig::default() }).unwrap();
    let layout = rig.info().layout;
    let mut block = FrameBlock::new(layout);
    rig.read_block(&mut block).unwrap();
    let cache = Arc::new(PrimaryCache::new(layout, 30_000, 30_000.0));
    let publisher = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            // Warm the thread's own stack and the block first.
            cache.publish(&block);
            let before = thread_minor_faults();
            // Well over one pass through the ring.
            for _ in 0..(2 * 30_000 / block.frames) {
                cache.publish(&block);
            }
            thread_minor_faults() - before
        })
    };
    let faults = publisher.join().unwrap();
    assert!(faults < 16, "the acquisition side took {faults} page faults filling the cache");
}

#[test]
fn a_stalled_acquisition_thread_withholds_watchdog_pings() {
    let counters = Arc::new(PipelineCounters::default());
    let (acquisition, _) = Acquisition::spawn(ThreadPlacement { core: None, fifo_priority: None }, Arc::clone(&counters)).unwrap();
    let beat = || counters.heartbeat.load(std::sync::atomic::Ordering::Relaxed);
    let mut gate = WatchdogGate::new(Duration::from_millis(300), beat(), Instant::now());

    // Alive: the idle thread beats every few tens of milliseconds.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(gate.check(beat(), Instant::now()), Liveness::Alive);

    acquisition.inject_stall(Duration::from_millis(1200));
    std::thread::sleep(Duration::from_millis(100));
    let frozen_at = beat();
    let mut stalled = false;
    let deadline = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < deadline {
        if matches!(gate.check(beat(), Instant::now()), Liveness::Stalled { .. }) {
            stalled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(stalled, "the gate kept pinging a frozen thread");
    assert_eq!(beat(), frozen_at, "the heartbeat moved during the stall");

    // And it recovers once the thread runs again.
    let deadline = Instant::now() + Duration::from_secs(3);
    while gate.check(beat(), Instant::now()) != Liveness::Alive {
        assert!(Instant::now() < deadline, "the gate did not recover after the stall ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

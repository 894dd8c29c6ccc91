//! The real-time path does not allocate or fault pages, and a stalled acquisition thread stops
//! the watchdog.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ephysd_drivers::sim::{SimConfig, SimMode};
use ephysd_drivers::{open, DeviceSpec, FrameBlock, StimPhase, StimPulse};
use ephysd_pipeline::detect::{DetectParams, DetectorStage, Spike};
use ephysd_pipeline::dsp::{design, FilterFamily, FilterKind, FilterPlan, FilterSpec, FilterStage};
use ephysd_pipeline::{
    Acquisition, EventRing, FilteredTap, Liveness, Pacing, PipelineCounters, PrimaryCache, Stage, StageBlock,
    StageChain, StreamId, StreamPlan, ThreadPlacement, WatchdogGate,
};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

/// A stage that runs on the acquisition thread and reports how many allocations that thread
/// has made so far, and how many blocks it has seen. It sees everything the real loop does
/// between two of its calls: reading the device, the other stages, publishing, counting,
/// polling for commands.
struct AllocationProbe {
    allocations: Arc<AtomicU64>,
    blocks: Arc<AtomicU64>,
}

impl Stage for AllocationProbe {
    fn name(&self) -> &str {
        "allocation probe"
    }
    fn process(&mut self, _: &mut StageBlock<'_>) {
        self.allocations.store(common::heap::allocations(), Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
    }
}

fn wait_for_blocks(blocks: &AtomicU64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while blocks.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "the stream stalled at {} blocks", blocks.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A Butterworth highpass over every channel.
fn highpass(channels: usize, cutoff_hz: f64) -> FilterPlan {
    let spec = FilterSpec { kind: FilterKind::Highpass { cutoff_hz }, family: FilterFamily::Butterworth, order: 2 };
    let mut plan = FilterPlan::new(channels);
    plan.filter(&(0..channels).collect::<Vec<_>>(), &design(&spec, 30_000.0).unwrap()).unwrap();
    plan
}

#[test]
fn the_acquisition_loop_with_stages_events_and_device_outputs_allocates_nothing_per_block() {
    let counters = Arc::new(PipelineCounters::default());
    let (acquisition, _) = Acquisition::spawn(ThreadPlacement::default(), Arc::clone(&counters)).unwrap();
    for (n, mode) in [SimMode::Spikes, SimMode::Broadband, SimMode::Sine, SimMode::Lfp].into_iter().enumerate() {
        let spec = DeviceSpec::Simulated(SimConfig {
            mode,
            amplifier_channels: 256,
            accelerated: true,
            ..SimConfig::default()
        });
        let mut device = open(&spec).unwrap();
        let layout = device.description().layout;
        let (cache, writer) = PrimaryCache::new(layout, 20_000, 30_000.0);
        let (allocations, blocks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        // The production chain: a recorded stage-1 filter, a stage-2 filter (empty at first,
        // so the filtered tap stands in the primary cache's place until it is set mid-stream
        // and starts its own cache), the filtered tap, the spike band, the detector; the probe
        // last, so it sees everything the others did.
        let (stage1, stage1_control) = FilterStage::new("stage-1 filter", highpass(256, 1.0));
        let (stage2, stage2_control) = FilterStage::new("stage-2 filter", FilterPlan::new(256));
        let (tap, filtered, _) = FilteredTap::new(layout, 20_000, Arc::clone(&cache));
        let (spike_band, band_control) = FilterStage::new("spike band", highpass(256, 300.0));
        let (spike_writer, ring) = EventRing::<Spike>::new(4096);
        let (detector, detector_control) =
            DetectorStage::new(256, 30_000.0, vec![DetectParams::default(); 256], spike_writer).unwrap();
        let stages: Vec<Box<dyn Stage>> = vec![
            Box::new(stage1),
            Box::new(stage2),
            Box::new(tap),
            Box::new(spike_band),
            Box::new(detector),
            Box::new(AllocationProbe { allocations: Arc::clone(&allocations), blocks: Arc::clone(&blocks) }),
        ];
        acquisition.start(StreamPlan {
            id: StreamId(n as u64),
            source: device.start_stream().unwrap(),
            cache: writer,
            stages: StageChain::new(layout, stages).with_write_back(1, Arc::new(AtomicU64::new(0))),
            pacing: Pacing::Device,
        });
        // Warm up, then measure about 2.6 s of signal (600 blocks of 128 frames), with cache
        // wrap-arounds, spikes, and stimulation pulses and digital outputs arriving meanwhile.
        wait_for_blocks(&blocks, 20);
        let before = allocations.load(Ordering::Relaxed);
        let pulse = StimPulse::new(
            3,
            &[StimPhase { duration_us: 200, current_ua: -20.0 }, StimPhase { duration_us: 200, current_ua: 20.0 }],
        )
        .unwrap();
        for word in 0..20u16 {
            device.control().stimulate(&pulse).unwrap();
            device.control().set_digital_out(word).unwrap();
            // Live changes: new filter plans and detection parameters, swapped in at block
            // boundaries (built and freed on this thread, never on the acquisition thread).
            if word % 5 == 0 {
                stage1_control.replace(highpass(256, 1.0 + f64::from(word))).unwrap();
                stage2_control.replace(highpass(256, 2.0 + f64::from(word))).unwrap();
                band_control.replace(highpass(256, 300.0 + f64::from(word))).unwrap();
                let shadow =
                    DetectParams { shadow_s: 0.001 + f64::from(word) as f32 * 1e-5, ..DetectParams::default() };
                detector_control.update((0..256).map(|c| (c, shadow.clone())).collect()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        wait_for_blocks(&blocks, 620);
        let after = allocations.load(Ordering::Relaxed);
        acquisition.stop();
        assert_eq!(after - before, 0, "{mode:?}: the acquisition thread allocated");
        assert!(cache.head() >= 620 * 128);
        let own = filtered.current();
        assert!(!Arc::ptr_eq(own, &cache), "{mode:?}: the stage-2 filter did not start the tap's cache");
        assert!(own.head() >= 620 * 128 && own.head() == cache.head(), "{mode:?}: {filtered:?}");
        if mode == SimMode::Spikes {
            assert!(ring.head() > 0, "{mode:?}: the detector emitted nothing");
        }
    }
    assert_eq!(counters.snapshot().source_errors, 0);
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
    let spec = DeviceSpec::Simulated(SimConfig { amplifier_channels: 1024, accelerated: true, ..SimConfig::default() });
    let mut source = open(&spec).unwrap().start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    source.read_block(&mut block).unwrap();
    let (_cache, mut writer) = PrimaryCache::new(source.layout(), 30_000, 30_000.0);
    let publisher = std::thread::spawn(move || {
        // Warm the thread's own stack and the block first.
        writer.publish(&block);
        let before = thread_minor_faults();
        // Well over one pass through the ring.
        for _ in 0..(2 * 30_000 / block.frames) {
            writer.publish(&block);
        }
        thread_minor_faults() - before
    });
    let faults = publisher.join().unwrap();
    assert!(faults < 16, "the acquisition side took {faults} page faults filling the cache");
}

#[test]
fn pushing_into_a_fresh_event_ring_takes_no_page_faults() {
    // 2^16 events of 40 words (a spike with its 75-sample snippet) is 20 MB of ring.
    #[derive(Clone, Copy)]
    struct Wide([u64; 40]);
    impl ephysd_pipeline::Event for Wide {
        const WORDS: usize = 40;
        fn encode(&self, words: &mut [u64]) {
            words.copy_from_slice(&self.0);
        }
        fn decode(words: &[u64]) -> Self {
            Wide(std::array::from_fn(|i| words[i]))
        }
    }
    let (mut writer, _ring) = EventRing::<Wide>::new(1 << 16);
    let faults = std::thread::spawn(move || {
        writer.push(&Wide([7; 40]));
        let before = thread_minor_faults();
        for i in 0..(1u64 << 17) {
            writer.push(&Wide([i; 40]));
        }
        thread_minor_faults() - before
    })
    .join()
    .unwrap();
    assert!(faults < 16, "pushing events took {faults} page faults");
}

#[test]
fn a_stalled_acquisition_thread_withholds_watchdog_pings() {
    let counters = Arc::new(PipelineCounters::default());
    let (acquisition, _) = Acquisition::spawn(ThreadPlacement::default(), Arc::clone(&counters)).unwrap();
    let beat = || counters.heartbeat.load(Ordering::Relaxed);
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

#[test]
fn fresh_processing_stages_take_no_page_faults() {
    // The production chain at 1024 channels, built on this thread and run on another, as the
    // control plane builds a stream and the acquisition thread runs it: the filtered cache
    // (61 MB), the spike ring, the detector's history, noise and pending tables, the filter
    // states must all be faulted in when built, not on the acquisition thread's first pass.
    let spec = DeviceSpec::Simulated(SimConfig { amplifier_channels: 1024, accelerated: true, ..SimConfig::default() });
    let mut source = open(&spec).unwrap().start_stream().unwrap();
    let layout = source.layout();
    let mut blocks: Vec<FrameBlock> = (0..8).map(|_| FrameBlock::new(layout)).collect();
    for b in &mut blocks {
        source.read_block(b).unwrap();
    }
    // The stage-1 filter here is not written back (as a stage-2 filter would not be), so the
    // tap fills its own cache from the first block.
    let (stage1, _c1) = FilterStage::new("stage-1 filter", highpass(1024, 1.0));
    let primary = PrimaryCache::new(layout, layout.frames_per_block, 30_000.0).0;
    let (tap, filtered, _) = FilteredTap::new(layout, 30_000, primary);
    let (band, _c2) = FilterStage::new("spike band", highpass(1024, 300.0));
    let (spike_writer, _ring) = EventRing::<Spike>::new(1 << 16);
    let (detector, _c3) =
        DetectorStage::new(1024, 30_000.0, vec![DetectParams::default(); 1024], spike_writer).unwrap();
    let stages: Vec<Box<dyn Stage>> = vec![Box::new(stage1), Box::new(tap), Box::new(band), Box::new(detector)];
    let mut chain = StageChain::new(layout, stages);
    let faults = std::thread::spawn(move || {
        // Warm the thread's own stack and the blocks first.
        for b in &mut blocks {
            let _ = std::hint::black_box(b.frames);
        }
        let before = thread_minor_faults();
        // Over one pass through the 1 s filtered cache, with the noise tracker's first sweeps.
        for i in 0..(2 * 30_000 / blocks[0].frames) {
            chain.run_block(&mut blocks[i % 8]);
        }
        thread_minor_faults() - before
    })
    .join()
    .unwrap();
    assert!(faults < 16, "the processing stages took {faults} page faults");
    assert!(filtered.current().head() >= 30_000, "the tap did not fill its own cache: {filtered:?}");
}

//! The board driver's read side runs on the real-time acquisition thread and must not
//! allocate: waiting for the FIFO, reading the pipe, decoding, compacting RHD2216 streams and
//! rebasing frame numbers. Measured end to end against the emulated board in process (the
//! emulator runs on the same thread, so it must not allocate in steady state either). The RHS
//! board streams in stimulation command mode and is stimulated from another thread meanwhile
//! (the control side may allocate; the read side, decoding the stimulation flags, may not).

mod common;

use std::sync::{Arc, Mutex};

use ephysd_drivers::emulator::{EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::{FrontPanel, PanelProvider};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings};
use ephysd_drivers::rhythm::Board;
use ephysd_drivers::{FrameBlock, Source, StimPhase, StimPulse};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

#[test]
fn reading_a_board_allocates_nothing_per_block() {
    // The counter itself works.
    common::heap::counting(true);
    let v = std::hint::black_box(vec![1u8; 10]);
    common::heap::counting(false);
    drop(v);
    assert_eq!(common::heap::take_allocations(), 1);

    for (board, text) in [
        (Board::RhdController, "board=rhd-controller pace=free ports=A:2164+2216,B:2132"),
        (Board::XdaqRhd(ephysd_drivers::rhythm::XdaqGeneration::Two), "board=xdaq-rhd-gen2 pace=free ports=C:2164"),
        (
            Board::XdaqRhs(ephysd_drivers::rhythm::XdaqGeneration::One),
            "board=xdaq-rhs-gen1 pace=free ports=A:2116+2116",
        ),
    ] {
        let spec: EmulatorSpec = text.parse().unwrap();
        let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec).open(None).unwrap();
        let settings = BoardSettings {
            board,
            name: text.into(),
            sample_rate_hz: 30000.0,
            frames_per_block: 100,
            bitfile: None,
            ports: if matches!(board, Board::XdaqRhs(_)) { 4 } else { 8 },
            free_running: true,
        };
        let mut b = bring_up(Arc::new(Mutex::new(panel)), settings).unwrap();
        let mut source = b.start_stream().unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stimulator = matches!(board, Board::XdaqRhs(_)).then(|| {
            let done = done.clone();
            std::thread::spawn(move || {
                let pulse = StimPulse::new(
                    5,
                    &[
                        StimPhase { duration_us: 100, current_ua: -1.0 },
                        StimPhase { duration_us: 100, current_ua: 1.0 },
                    ],
                )
                .unwrap();
                let mut pulses = 0;
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    ephysd_drivers::Control::stimulate(&mut b, &pulse).unwrap();
                    pulses += 1;
                }
                pulses
            })
        });
        let mut block = FrameBlock::new(source.layout());
        // Warm up: the emulator's FIFO and scratch buffers reach their working size.
        for _ in 0..300 {
            source.read_block(&mut block).unwrap();
        }
        common::heap::counting(true);
        for _ in 0..3000 {
            source.read_block(&mut block).unwrap();
        }
        common::heap::counting(false);
        done.store(true, std::sync::atomic::Ordering::Release);
        // Keep reading until the stimulating thread has seen the flag (it waits for frames).
        if let Some(t) = stimulator {
            while !t.is_finished() {
                source.read_block(&mut block).unwrap();
            }
            assert!(t.join().unwrap() > 0, "pulses delivered while measuring");
        }
        let n = common::heap::take_allocations();
        assert_eq!(n, 0, "{text}: {n} allocations over 3000 blocks");
    }
}

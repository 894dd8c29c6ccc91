//! Impedance measurement on the RHD board driver against the emulated board: every channel
//! reads its emulated electrode's true impedance at the test frequency, a broken-off
//! electrode reads as very large, a streaming board refuses, and streaming afterwards
//! delivers exactly the emulated signal again.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::emulated::assert_stream_matches_signal;
use ephysd_drivers::control::{Control, ControlError, Impedance};
use ephysd_drivers::emulator::chip::electrode_impedances;
use ephysd_drivers::emulator::{EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::{FrontPanel, PanelProvider};
use ephysd_drivers::rhythm::board::impedance::test_frequency;
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, RhythmBoard};
use ephysd_drivers::rhythm::Board;

fn board(text: &str, board: Board, rate: f64) -> (EmulatorSpec, RhythmBoard) {
    let spec: EmulatorSpec = text.parse().unwrap();
    let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec.clone()).open(None).unwrap();
    let settings = BoardSettings {
        board,
        name: format!("emulated {}", board.name()),
        sample_rate_hz: rate,
        frames_per_block: 128,
        bitfile: None,
        ports: if matches!(board, Board::RhdUsbInterface | Board::OpenEphys | Board::OpenEphysUsb3) { 4 } else { 8 },
        free_running: true,
    };
    (spec, bring_up(Arc::new(Mutex::new(panel)), settings).unwrap())
}

/// The largest magnitude error (relative) and phase error (degrees) of `measured` against the
/// emulator's electrodes at `frequency_hz`, skipping `skip`; asserts each channel is within 5 %
/// and 5°.
fn assert_reads_electrodes(
    spec: &EmulatorSpec,
    measured: &[Impedance],
    frequency_hz: f64,
    skip: &[usize],
) -> (f64, f64) {
    let truth = electrode_impedances(spec, frequency_hz);
    assert_eq!(measured.len(), truth.len());
    let (mut worst_magnitude, mut worst_phase) = (0.0f64, 0.0f64);
    for (z, want) in measured.iter().zip(&truth) {
        if skip.contains(&z.channel) {
            continue;
        }
        let magnitude = z.magnitude_ohms / want.magnitude_ohms() - 1.0;
        let phase = z.phase_degrees - want.phase_degrees();
        assert!(
            magnitude.abs() < 0.05 && phase.abs() < 5.0,
            "channel {}: measured {:.0} Ω {:.1}°, electrode {:.0} Ω {:.1}° ({spec})",
            z.channel,
            z.magnitude_ohms,
            z.phase_degrees,
            want.magnitude_ohms(),
            want.phase_degrees()
        );
        worst_magnitude = worst_magnitude.max(magnitude.abs());
        worst_phase = worst_phase.max(phase.abs());
    }
    (worst_magnitude, worst_phase)
}

#[test]
fn every_channel_of_mixed_chips_reads_its_electrode() {
    for (text, kind, rate) in [
        ("board=rhd-controller pace=free ports=A:2132+2164,B:2216,D:2164+2216 seed=11", Board::RhdController, 30000.0),
        (
            "board=rhd-usb-interface pace=free ports=A:2132+2216,C:2164 seed=4 mode=sim-broadband",
            Board::RhdUsbInterface,
            20000.0,
        ),
        (
            "board=xdaq-rhd-gen2 pace=free ports=B:2216+2132 seed=5 mode=sim-lfp",
            Board::XdaqRhd(ephysd_drivers::rhythm::XdaqGeneration::Two),
            25000.0,
        ),
        ("board=open-ephys-usb3 pace=free ports=A:2164,D:2132+2216 seed=6", Board::OpenEphysUsb3, 30000.0),
    ] {
        let (spec, mut b) = board(text, kind, rate);
        let measured = b.measure_impedance().unwrap();
        assert!(measured.iter().enumerate().all(|(i, z)| z.channel == i));
        let f = test_frequency(rate, 1000.0).hz;
        let (m, p) = assert_reads_electrodes(&spec, &measured, f, &[]);
        eprintln!("{text} at {rate} S/s, {f:.1} Hz: worst |Z| error {:.2} %, phase {p:.2}°", 100.0 * m);
    }
}

#[test]
fn the_frequency_is_the_closest_the_sample_rate_plays() {
    assert_eq!(test_frequency(30000.0, 1000.0).period, 30);
    assert_eq!(test_frequency(20000.0, 1000.0).hz, 1000.0);
    // At 1 kS/s 1 kHz is beyond fs/4: the closest playable is 250 Hz.
    assert_eq!(test_frequency(1000.0, 1000.0).hz, 250.0);
    let (spec, mut b) = board("board=rhd-controller pace=free ports=C:2132 seed=8", Board::RhdController, 3000.0);
    let measured = b.measure_impedance().unwrap();
    let (m, p) = assert_reads_electrodes(&spec, &measured, 750.0, &[]);
    eprintln!("3000 S/s, 750 Hz: worst |Z| error {:.2} %, phase {p:.2}°", 100.0 * m);
    let (spec, mut b) = board("board=rhd-controller pace=free ports=A:2164 seed=9", Board::RhdController, 30000.0);
    let measured = b.measure_impedance_at(250.0).unwrap();
    let (m, p) = assert_reads_electrodes(&spec, &measured, 250.0, &[]);
    eprintln!("30000 S/s, 250 Hz: worst |Z| error {:.2} %, phase {p:.2}°", 100.0 * m);
}

#[test]
fn a_broken_off_electrode_reads_as_very_large() {
    let (spec, mut b) = board(
        "board=rhd-controller pace=free ports=A:2164,B:2132 open=A:3,A:40,B:31 seed=2",
        Board::RhdController,
        30000.0,
    );
    let measured = b.measure_impedance().unwrap();
    let open = [3, 40, 64 + 31];
    for &c in &open {
        assert!(measured[c].magnitude_ohms > 50e6, "channel {c}: {:?}", measured[c]);
    }
    let largest_healthy =
        measured.iter().filter(|z| !open.contains(&z.channel)).map(|z| z.magnitude_ohms).fold(0.0, f64::max);
    assert!(largest_healthy < 2.2e6, "{largest_healthy}");
    assert_reads_electrodes(&spec, &measured, 1000.0, &open);
}

#[test]
fn a_streaming_board_refuses_and_measures_once_stopped() {
    let (spec, mut b) = board("board=rhd-controller pace=free ports=A:2132", Board::RhdController, 30000.0);
    let source = b.start_stream().unwrap();
    let e = b.measure_impedance().unwrap_err();
    assert!(matches!(e, ControlError::Streaming { .. }), "{e}");
    assert!(e.to_string().contains("cannot measure impedance while streaming; stop streaming first"), "{e}");
    drop(source);
    let measured = b.measure_impedance().unwrap();
    assert_reads_electrodes(&spec, &measured, 1000.0, &[]);
}

#[test]
fn streaming_after_a_measurement_is_exactly_the_emulated_signal() {
    let (spec, mut b) = board(
        "board=rhd-usb-interface pace=free ports=A:2164,B:2216+2132 mode=sim-sine seed=6",
        Board::RhdUsbInterface,
        30000.0,
    );
    assert_stream_matches_signal(&spec, &mut b, 1000);
    b.measure_impedance().unwrap();
    assert_stream_matches_signal(&spec, &mut b, 3000);
    b.measure_impedance().unwrap();
    assert_stream_matches_signal(&spec, &mut b, 1000);
}

#[test]
fn a_1024_channel_controller_measures_every_channel() {
    let (spec, mut b) = board(
        "board=rhd-controller pace=free ports=A:2164+2164,B:2164+2164,C:2164+2164,D:2164+2164,E:2164+2164,F:2164+2164,G:2164+2164,H:2164+2164 seed=21",
        Board::RhdController,
        30000.0,
    );
    let started = Instant::now();
    let measured = b.measure_impedance().unwrap();
    let took = started.elapsed();
    assert_eq!(measured.len(), 1024);
    let (m, p) = assert_reads_electrodes(&spec, &measured, 1000.0, &[]);
    eprintln!("1024 channels in {:.2} s: worst |Z| error {:.2} %, phase {p:.2}°", took.as_secs_f64(), 100.0 * m);
    assert_stream_matches_signal(&spec, &mut b, 500);
}

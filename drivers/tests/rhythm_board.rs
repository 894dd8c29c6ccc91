//! The RHD board driver brought up against the emulated board: the scan finds the emulated
//! chips and cable delays, and the stream delivers exactly the samples the emulator's
//! electrodes carried, frame for frame.

mod common;

use std::sync::{Arc, Mutex};

use common::emulated::assert_stream_matches_signal;
use ephysd_drivers::emulator::{EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::{FrontPanel, PanelProvider};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, SharedPanel};
use ephysd_drivers::rhythm::rhd::RhdChip;
use ephysd_drivers::rhythm::Board;

fn settings(board: Board, rate: f64, ports: usize) -> BoardSettings {
    BoardSettings {
        board,
        name: format!("emulated {}", board.name()),
        sample_rate_hz: rate,
        frames_per_block: 100,
        bitfile: None,
        ports,
        free_running: true,
    }
}

fn open(spec: &str) -> (EmulatorSpec, SharedPanel) {
    let spec: EmulatorSpec = spec.parse().unwrap();
    let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec.clone()).open(None).unwrap();
    (spec, Arc::new(Mutex::new(panel)))
}

#[test]
fn a_1024_channel_controller_is_found_and_streams_its_electrodes_frame_for_frame() {
    let (spec, panel) = open(
        "board=rhd-controller pace=free ports=A:2164+2164,B:2164+2164,C:2164+2164,D:2164+2164,E:2164+2164,F:2164+2164,G:2164+2164,H:2164+2164 \
         delays=A:0,B:2,C:4,D:6,E:8,F:10,G:12,H:14",
    );
    let mut board = bring_up(panel, settings(Board::RhdController, 30000.0, 8)).unwrap();
    assert_eq!(board.amplifier_channels(), 1024);
    assert_eq!(board.channels_per_port(), vec![128; 8]);
    assert!(board.chips().iter().all(|c| c.chip == RhdChip::Rhd2164));
    // Two clean delays per cable; an RHD2164 takes the later one.
    assert_eq!(board.delays(), &[1, 3, 5, 7, 9, 11, 13, 15]);
    assert_eq!(board.streams().len(), 32);
    assert_stream_matches_signal(&spec, &mut board, 3000);
}

#[test]
fn mixed_chips_on_a_usb2_board_are_found_with_their_channel_counts() {
    let (spec, panel) =
        open("board=rhd-usb-interface pace=free ports=A:2132+2216,C:2164 delays=A:5,C:9 mode=sim-sine seed=3");
    let mut board = bring_up(panel, settings(Board::RhdUsbInterface, 20000.0, 4)).unwrap();
    let found: Vec<_> = board.chips().iter().map(|c| (c.port, c.line, c.chip)).collect();
    assert_eq!(found, [(0, 0, RhdChip::Rhd2132), (0, 1, RhdChip::Rhd2216), (2, 0, RhdChip::Rhd2164)]);
    assert_eq!(board.channels_per_port(), vec![48, 0, 64, 0]);
    // The port's delay serves both lines: the later of their choices.
    assert_eq!(board.delays()[0], 5);
    assert_eq!(board.delays()[2], 10);
    assert_stream_matches_signal(&spec, &mut board, 2000);
}

#[test]
fn xdaq_and_open_ephys_boards_stream_through_the_same_driver() {
    for (board, text) in [
        (
            Board::XdaqRhd(ephysd_drivers::rhythm::XdaqGeneration::One),
            "board=xdaq-rhd-gen1 pace=free ports=A:2164,B:2132",
        ),
        (
            Board::XdaqRhd(ephysd_drivers::rhythm::XdaqGeneration::Two),
            "board=xdaq-rhd-gen2 pace=free ports=B:2164+2164",
        ),
        (Board::OpenEphys, "board=open-ephys pace=free ports=D:2132+2132"),
        (Board::OpenEphysUsb3, "board=open-ephys-usb3 pace=free ports=B:2164,D:2216+2132"),
    ] {
        let (spec, panel) = open(text);
        let mut board = bring_up(panel, settings(board, 30000.0, 4)).unwrap();
        assert_eq!(board.amplifier_channels(), spec.amplifier_channels(), "{text}");
        assert_stream_matches_signal(&spec, &mut board, 500);
    }
}

#[test]
fn a_board_with_nothing_plugged_in_says_so() {
    let (_, panel) = open("board=rhd-controller ports=");
    let e = bring_up(panel, settings(Board::RhdController, 30000.0, 8)).unwrap_err();
    assert!(e.to_string().contains("no headstage answered on ports ABCDEFGH"), "{e}");
}

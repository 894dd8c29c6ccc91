//! XDAQ with RHS headstages, as far as recording goes, brought up against the emulated board:
//! the scan finds the emulated RHS2116 chips and cable delays, the stream delivers exactly the
//! samples the emulator's electrodes carried (the AC amplifier words), frame for frame, and the
//! four `*-stim` backbones open as such boards through the device layer, able to stimulate.
//! Bring-up leaves the chips' stimulators disabled; stimulation itself is `rhs_stim.rs`'s.

mod common;

use std::sync::{Arc, Mutex};

use common::emulated::{assert_source_matches_signal, assert_stream_matches_signal};
use ephysd_drivers::emulator::{signal_config, EmulatedPanel, EmulatorProvider, EmulatorSpec, SPEC_ENV};
use ephysd_drivers::frontpanel::library::LibraryProvider;
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, OkErrorCode, PanelProvider};
use ephysd_drivers::rhythm::board::rhs_commands::{self, REGISTER_CONFIG_LEN};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, RhythmBoard, SharedPanel};
use ephysd_drivers::rhythm::endpoints as ep;
use ephysd_drivers::rhythm::rhs::{RhsChip, RhsCommand};
use ephysd_drivers::rhythm::{decode_with_extras, Board, FrameExtras, FrameFormat, HeadstageChip, XdaqGeneration};
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{ControlError, DeviceKeys, DeviceSpec, FrameBlock, Source, StimPhase, StimPulse};

const GEN1: Board = Board::XdaqRhs(XdaqGeneration::One);
const GEN2: Board = Board::XdaqRhs(XdaqGeneration::Two);

fn settings(board: Board, rate: f64) -> BoardSettings {
    BoardSettings {
        board,
        name: format!("emulated {}", board.name()),
        sample_rate_hz: rate,
        frames_per_block: 100,
        bitfile: None,
        ports: 4,
        free_running: true,
    }
}

fn open(spec: &str) -> (EmulatorSpec, SharedPanel) {
    let spec: EmulatorSpec = spec.parse().unwrap();
    let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec.clone()).open(None).unwrap();
    (spec, Arc::new(Mutex::new(panel)))
}

fn found(board: &RhythmBoard) -> Vec<(usize, usize, usize, HeadstageChip)> {
    board.streams().iter().map(|s| (s.board_stream, s.port, s.line, s.chip)).collect()
}

const RHS2116: HeadstageChip = HeadstageChip::Rhs(RhsChip::Rhs2116);

#[test]
fn the_scan_finds_every_rhs2116_and_its_cable_delay_and_the_stream_is_the_electrodes() {
    for (board, rate, text) in [
        (GEN1, 30000.0, "board=xdaq-rhs-gen1 pace=free ports=A:2116+2116,C:none+2116,D:2116 delays=A:0,C:7,D:14"),
        (GEN2, 20000.0, "board=xdaq-rhs-gen2 pace=free mode=sim-sine seed=3 ports=B:2116,D:2116+2116 delays=B:4,D:9"),
    ] {
        let (spec, panel) = open(text);
        let mut board = bring_up(panel, settings(board, rate)).unwrap();
        assert!(board.chips().is_empty(), "no RHD chips");
        assert_eq!(board.amplifier_channels(), spec.amplifier_channels(), "{text}");
        if board.settings().board == GEN1 {
            assert_eq!(found(&board), [(0, 0, 0, RHS2116), (1, 0, 1, RHS2116), (5, 2, 1, RHS2116), (6, 3, 0, RHS2116)]);
            assert_eq!(board.channels_per_port(), vec![32, 0, 16, 16]);
            // Two clean delays per cable: the first of them (RHX's choice for an RHS2116).
            assert_eq!(board.delays(), &[0, 0, 7, 14]);
        } else {
            assert_eq!(found(&board), [(2, 1, 0, RHS2116), (6, 3, 0, RHS2116), (7, 3, 1, RHS2116)]);
            assert_eq!(board.channels_per_port(), vec![0, 16, 0, 32]);
            assert_eq!(board.delays(), &[0, 4, 0, 9]);
        }
        assert!(board.streams().iter().all(|s| s.channels == 16 && !s.ddr));
        assert_stream_matches_signal(&spec, &mut board, 3000);
    }
}

#[test]
fn eight_headstage_chips_fill_the_eight_streams() {
    let (spec, panel) = open("board=xdaq-rhs-gen1 pace=free ports=A:2116+2116,B:2116+2116,C:2116+2116,D:2116+2116");
    let mut board = bring_up(panel, settings(GEN1, 30000.0)).unwrap();
    assert_eq!(board.amplifier_channels(), 128);
    assert_eq!(board.streams().iter().map(|s| s.board_stream).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    assert_eq!(board.delays(), &[3; 4]);
    assert_stream_matches_signal(&spec, &mut board, 1000);
}

#[test]
fn an_rhs_board_with_nothing_plugged_in_says_so() {
    let (_, panel) = open("board=xdaq-rhs-gen2 ports=");
    let e = bring_up(panel, settings(GEN2, 30000.0)).unwrap_err();
    assert!(e.to_string().contains("no headstage answered on ports ABCD"), "{e}");
}

#[test]
fn bring_up_programs_the_chips_for_recording_with_stimulation_disabled() {
    let spec: EmulatorSpec = "board=xdaq-rhs-gen1 pace=free ports=B:2116+2116".parse().unwrap();
    let emulated = Arc::new(Mutex::new(EmulatorProvider::new(spec).open_emulated().unwrap()));
    let panel: Box<dyn FrontPanel> = Box::new(emulated.clone());
    let mut board = bring_up(Arc::new(Mutex::new(panel)), settings(GEN1, 25000.0)).unwrap();
    let e = emulated.lock().unwrap();
    assert_eq!(e.sample_rate_hz(), 25000.0);
    assert_eq!(e.rhs_command_list(0).unwrap(), &rhs_commands::register_config(25000.0)[..]);
    assert_eq!(e.rhs_command_list(0).unwrap().len(), REGISTER_CONFIG_LEN);
    assert_eq!(e.rhs_command_list(1).unwrap(), &[RhsCommand::read(255).word()]);
    for line in 0..2 {
        let reg = |r| e.rhs_chip_register(1, line, r).unwrap();
        assert_eq!((reg(32), reg(33)), (0, 0), "stimulators disabled");
        assert_eq!((reg(8), reg(38)), (0xffff, 0xffff), "AC and DC amplifiers powered");
        assert_eq!(reg(1) & 0x1f, 0x10 | 12, "DSP offset removal near 1 Hz");
        assert_eq!((reg(4), reg(5), reg(6), reg(7)), (22, 23, 10, 0x032c), "7.5 kHz to 1 Hz");
        assert_eq!(reg(0), (3 << 6) | 5);
    }
    drop(e);
    let stim = StimPulse::new(0, &[StimPhase { duration_us: 100, current_ua: -10.0 }]).unwrap();
    // Stimulation acts on a running stream.
    let e = ephysd_drivers::Control::stimulate(&mut board, &stim).unwrap_err();
    assert!(matches!(e, ControlError::NotStreaming { .. }), "{e}");
    let e = ephysd_drivers::Control::measure_impedance(&mut board).unwrap_err();
    assert!(matches!(e, ControlError::Unsupported { .. }), "{e}");
}

/// Drives the emulated board's RHS map by hand: where the aux results of each slot land, what
/// the DC amplifier words, stimulation flags and analog outputs read.
#[test]
fn the_emulated_board_places_aux_results_where_xdaq_s_software_reads_them() {
    let spec: EmulatorSpec = "board=xdaq-rhs-gen2 pace=free ports=A:2116 delays=A:3".parse().unwrap();
    let mut p = EmulatorProvider::new(spec).open_emulated().unwrap();
    let write_list = |p: &mut EmulatedPanel, slot: usize, list: &[u32]| {
        let mut bytes: Vec<u8> = list.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.resize(64, 0);
        p.activate_trigger_in(ep::rhs::TRIGGER_IN_RAM_ADDR_RESET, 0).unwrap();
        assert_eq!(p.write_pipe_in(ep::rhs::PIPE_IN_AUX_CMD[slot], &bytes).unwrap(), 64);
        for (bit, value) in [(slot as u8 + 4, 0), (slot as u8, list.len() as u32 - 1)] {
            p.set_wire_in(ep::WIRE_IN_MULTI_USE, value, u32::MAX).unwrap();
            p.update_wire_ins().unwrap();
            p.activate_trigger_in(ep::rhs::TRIGGER_IN_AUX_CMD_LENGTH, bit).unwrap();
        }
    };
    let slot0 = [
        RhsCommand::write(5, 0x1234).word(),
        RhsCommand::read(5).word(),
        RhsCommand::read(255).word(),
        RhsCommand::read(251).word(),
    ];
    write_list(&mut p, 0, &slot0);
    write_list(&mut p, 1, &[RhsCommand::read(254).word()]);
    write_list(&mut p, 2, &[RhsCommand::read(253).word()]);
    write_list(&mut p, 3, &[RhsCommand::read(252).word()]);
    let e = p.write_pipe_in(ep::rhs::PIPE_IN_AUX_CMD[0], &[0; 12]).unwrap_err();
    assert!(matches!(e, FrontPanelError::Code { code: OkErrorCode::InvalidBlockSize, .. }), "{e}");
    let e = p.write_pipe_in(0x80, &[0; 16]).unwrap_err();
    assert!(matches!(e, FrontPanelError::Code { code: OkErrorCode::InvalidEndpoint, .. }), "{e}");
    const FRAMES: usize = 128;
    p.set_wire_in(ep::rhs::WIRE_IN_AUX_ENABLE, 0xff, 0xff).unwrap();
    p.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, 1, u32::MAX).unwrap();
    p.set_wire_in(ep::WIRE_IN_MISO_DELAY, 3, 0xffff).unwrap();
    p.set_wire_in(ep::rhs::TRANSPORT.max_time_step().0, FRAMES as u32, u32::MAX).unwrap();
    p.update_wire_ins().unwrap();
    p.activate_trigger_in(ep::TRIGGER_IN_SPI_START, 0).unwrap();
    let format = FrameFormat::new(GEN2, 1).unwrap();
    let mut bytes = vec![0u8; FRAMES * format.bytes_per_frame()];
    p.read_pipe_out(ep::PIPE_OUT_DATA, Some(1024), &mut bytes).unwrap();
    let mut block = FrameBlock::new(format.block_layout(FRAMES));
    let mut extras = FrameExtras::new(&format, FRAMES);
    decode_with_extras(&format, &bytes, &mut block, &mut extras, None).unwrap();
    let aux =
        |f: usize, slot: usize| (u32::from(extras.aux_high[f * 4 + slot]) << 16) | u32::from(block.aux[f * 4 + slot]);
    // Slot 0: the result of the command a frame sent, in that frame.
    for (f, want) in [0xffff_1234, 0x1234, 32, 0x494e, 0xffff_1234].into_iter().enumerate() {
        assert_eq!(aux(f, 0), want, "frame {f}, slot 0");
    }
    // Slots 1-3: one frame later.
    assert_eq!([aux(0, 1), aux(0, 2), aux(0, 3)], [0, 0, 0]);
    for f in 1..FRAMES {
        assert_eq!([aux(f, 1), aux(f, 2), aux(f, 3)], [16, 0x4e00, 0x5441], "frame {f}");
    }
    assert!(extras.dc_amplifier.iter().all(|&w| w == 512), "DC amplifiers at 0 V");
    assert!(extras.stim_on.iter().chain(&extras.stim_polarity).all(|&w| w == 0));
    assert!(extras.analog_out.iter().all(|&w| w == 0x8000));
    let timestamps: Vec<u64> = extras.device_timestamp_us[..3].to_vec();
    assert_eq!(timestamps, [0, 33, 66]);
}

#[test]
fn the_four_xdaq_stim_backbones_open_as_rhs_boards_that_record() {
    for (backbone, emulator) in [
        ("xdaq-one-stim", "ports=A:2116+2116 delays=A:6 pace=free"),
        ("xdaq-core-stim", "ports=D:2116 pace=free seed=9"),
        ("xdaq-gen2-one-stim", "ports=B:2116,C:2116+2116 pace=free mode=sim-lfp"),
        ("xdaq-gen2-core-stim", "ports=A:none+2116 delays=A:12 pace=free"),
    ] {
        let keys = DeviceKeys {
            backbone: backbone.into(),
            frontpanel: "emulated".into(),
            emulator: emulator.into(),
            ..DeviceKeys::default()
        };
        let spec = DeviceSpec::from_keys(&keys).unwrap();
        let DeviceSpec::Rhythm(r) = &spec else { panic!("{backbone}: a board") };
        let ephysd_drivers::spec::PanelSource::Emulated(emulated) = &r.panel else { panic!("emulated") };
        let emulated = emulated.clone();
        let mut device = ephysd_drivers::open(&spec).unwrap();
        let d = device.description().clone();
        assert_eq!(d.backbone, backbone);
        assert!(d.can_stimulate && !d.can_measure_impedance, "{backbone}");
        assert_eq!(d.layout.amplifier_channels, emulated.amplifier_channels(), "{backbone}");
        for p in &d.ports {
            assert_eq!(p.channels, emulated.port_channels(p.port), "{backbone} port {}", p.letter());
            assert!(p.headstage.starts_with("RHS2116 on MISO line"), "{}", p.headstage);
        }
        let mut source = device.start_stream().unwrap();
        assert_source_matches_signal(&emulated, 30000.0, &mut *source, 600);
    }
}

/// The same board through the production loading path: the emulator's copy of the vendor
/// library (`libokfp_emu.so`, built by `cargo build -p okfp-emu`), command lists crossing its
/// `WriteToPipeIn`.
#[test]
fn an_rhs_board_comes_up_through_the_vendor_library_path() {
    let text = "board=xdaq-rhs-gen1 serial=EMURHS0001 ports=A:2116,C:2116+2116 delays=C:8 seed=6 pace=free";
    // The only test of this binary that loads the library, so the only reader of the variable.
    std::env::set_var(SPEC_ENV, text);
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(std::path::Path::parent).expect("the test runs from target/<profile>/deps");
    let library = profile_dir.join("libokfp_emu.so");
    assert!(library.is_file(), "{} is missing: build it first: cargo build -p okfp-emu", library.display());
    let provider = LibraryProvider::load(&library).unwrap();
    let panel = provider.open(Some("EMURHS0001")).unwrap();
    assert_eq!(panel.info().model, "XEM7310A75");
    let mut board = bring_up(Arc::new(Mutex::new(panel)), settings(GEN1, 30000.0)).unwrap();
    assert_eq!(found(&board), [(0, 0, 0, RHS2116), (4, 2, 0, RHS2116), (5, 2, 1, RHS2116)]);
    assert_eq!(board.delays(), &[3, 0, 8, 0]);
    let spec: EmulatorSpec = text.parse().unwrap();
    assert_stream_matches_signal(&spec, &mut board, 1000);
}

/// Corrupt and dropped frames of an RHS board: counted, skipped, and a jump in the frame index
/// of exactly their length, as on RHD boards.
#[test]
fn corrupt_and_dropped_rhs_frames_are_counted_and_show_as_gaps() {
    let (spec, panel) = open("board=xdaq-rhs-gen2 pace=free ports=A:2116,C:2116+2116 faults=drop@500+37,corrupt@1500");
    let mut board = bring_up(panel, settings(GEN2, 30000.0)).unwrap();
    let mut source = board.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let (mut index, mut samples) = (Vec::new(), Vec::new());
    while index.len() < 3000 {
        source.read_block(&mut block).unwrap();
        index.extend_from_slice(&block.frame_index[..block.frames]);
        samples.extend_from_slice(block.amplifier_filled());
    }
    let jumps: Vec<(u64, u64)> =
        index.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1] - w[0] - 1)).collect();
    assert_eq!(jumps, [(499, 37), (1499, 1)]);
    let mut signal = SimulatedSource::new(signal_config(&spec, 30000.0)).unwrap();
    let mut truth = FrameBlock::new(signal.layout());
    let ch = spec.amplifier_channels();
    let mut all = Vec::new();
    while (all.len() / ch) as u64 <= *index.last().unwrap() {
        signal.read_block(&mut truth).unwrap();
        all.extend_from_slice(truth.amplifier_filled());
    }
    let want: Vec<i16> = index.iter().flat_map(|&i| all[i as usize * ch..(i as usize + 1) * ch].to_vec()).collect();
    assert_eq!(samples, want, "every kept frame is the board's");
    assert_eq!((board.health().corrupt_reads(), board.health().frames_lost()), (1, 38));
}

//! The Open Ephys acquisition board's USB 3 version (`device.backbone = "open-ephys-usb3"`)
//! brought up against the emulated board, in process and through the production loading path
//! (the emulator's `libokfp_emu.so`): the scan finds the emulated chips on its four ports, up
//! to 16 data streams are enabled through its source-select wires, and the stream delivers
//! exactly the samples the emulated electrodes carried, frame for frame.

mod common;

use std::sync::{Arc, Mutex};

use common::emulated::{assert_source_matches_signal, assert_stream_matches_signal};
use ephysd_drivers::emulator::{EmulatedPanel, EmulatorProvider, EmulatorSpec, SPEC_ENV};
use ephysd_drivers::frontpanel::library::LibraryProvider;
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, OkErrorCode, PanelProvider};
use ephysd_drivers::rhythm::board::catalog;
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, SharedPanel};
use ephysd_drivers::rhythm::endpoints::{self as ep, Interface};
use ephysd_drivers::rhythm::rhd::RhdChip;
use ephysd_drivers::rhythm::{Board, FrameFormat, MAGIC_RHD_USB2};
use ephysd_drivers::{ControlError, DeviceKeys, DeviceSpec, FrameBlock, Source};

/// Every MISO line of the four ports with an RHD2164: 16 data streams, the board's most.
const FULL: &str = "board=open-ephys-usb3 pace=free ports=A:2164+2164,B:2164+2164,C:2164+2164,D:2164+2164 \
                    delays=A:1,B:4,C:7,D:10 seed=11";

fn settings(rate: f64) -> BoardSettings {
    BoardSettings {
        board: Board::OpenEphysUsb3,
        name: "emulated Open Ephys USB 3".into(),
        sample_rate_hz: rate,
        frames_per_block: 100,
        bitfile: None,
        ports: 4,
        free_running: true,
    }
}

fn open(text: &str) -> (EmulatorSpec, SharedPanel) {
    let spec: EmulatorSpec = text.parse().unwrap();
    let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec.clone()).open(None).unwrap();
    (spec, Arc::new(Mutex::new(panel)))
}

#[test]
fn the_backbone_names_the_usb3_board_with_four_ports() {
    let model = catalog::model_of("open-ephys-usb3").unwrap().expect("a board");
    assert_eq!((model.board, model.ports), (Board::OpenEphysUsb3, 4));
    assert!(catalog::driven_backbones().contains(&"open-ephys-usb3"));
    assert_eq!(Interface::of(Board::OpenEphysUsb3), Some(Interface::OpenEphysUsb3));
    assert_eq!(Board::from_name("open-ephys-usb3"), Some(Board::OpenEphysUsb3));
}

#[test]
fn its_frame_is_the_usb2_boards_with_up_to_16_streams() {
    for n in 1..=16 {
        let usb3 = FrameFormat::new(Board::OpenEphysUsb3, n).unwrap();
        let usb2_words = 4 + 2 + n * 36 + 8 + 2; // Open Ephys `calculateDataBlockSizeInWords`.
        assert_eq!(usb3.bytes_per_frame(), 2 * usb2_words, "{n} streams");
        assert_eq!(usb3.magic(), MAGIC_RHD_USB2);
        assert_eq!(usb3.filler_words(), n);
        // Its reads (Open Ephys: 256 frames; the driver's: 128) are whole 1024-byte blocks.
        assert_eq!(128 * usb3.bytes_per_frame() % 1024, 0, "{n} streams");
        if n <= 8 {
            assert_eq!(usb3.offsets(), FrameFormat::new(Board::OpenEphys, n).unwrap().offsets());
        }
    }
    assert!(FrameFormat::new(Board::OpenEphysUsb3, 17).is_err());
    assert_eq!(Board::OpenEphysUsb3.samples_per_block(), 256);
}

#[test]
fn sixteen_streams_are_found_and_stream_their_electrodes_frame_for_frame() {
    let (spec, panel) = open(FULL);
    let mut board = bring_up(panel, settings(30000.0)).unwrap();
    assert_eq!(board.amplifier_channels(), 512);
    assert_eq!(board.channels_per_port(), vec![128; 4]);
    assert!(board.chips().iter().all(|c| c.chip == RhdChip::Rhd2164));
    // Two clean delays per cable; an RHD2164 takes the later one.
    assert_eq!(board.delays(), &[2, 5, 8, 11]);
    // Streams 8-15 take their sources from the high halves of the select wires.
    assert_eq!(board.streams().iter().map(|s| s.board_stream).collect::<Vec<_>>(), (0..16).collect::<Vec<_>>());
    assert_stream_matches_signal(&spec, &mut board, 2000);
}

#[test]
fn mixed_chips_are_found_with_their_channel_counts_at_any_intan_rate() {
    let (spec, panel) = open(
        "board=open-ephys-usb3 pace=free ports=A:2132+2216,C:2164,D:none+2132 delays=A:5,C:9 mode=sim-sine seed=3",
    );
    let mut board = bring_up(panel, settings(20000.0)).unwrap();
    let found: Vec<_> = board.chips().iter().map(|c| (c.port, c.line, c.chip)).collect();
    assert_eq!(
        found,
        [(0, 0, RhdChip::Rhd2132), (0, 1, RhdChip::Rhd2216), (2, 0, RhdChip::Rhd2164), (3, 1, RhdChip::Rhd2132)]
    );
    assert_eq!(board.channels_per_port(), vec![48, 0, 64, 32]);
    assert_stream_matches_signal(&spec, &mut board, 1500);
}

#[test]
fn its_pipe_reads_only_in_the_block_size_its_own_trigger_set() {
    let spec: EmulatorSpec = "board=open-ephys-usb3 pace=free ports=A:2132".parse().unwrap();
    let mut panel = EmulatedPanel::new(&spec);
    let mut buf = vec![0u8; 1024];
    let refused = |r: Result<usize, FrontPanelError>| {
        matches!(r, Err(FrontPanelError::Code { code: OkErrorCode::InvalidBlockSize, .. }))
    };
    assert!(refused(panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(1024), &mut buf)));
    // Intan's USB 3 block-size trigger is not this firmware's.
    panel.set_wire_in(ep::WIRE_IN_MULTI_USE, 256, u32::MAX).unwrap();
    panel.update_wire_ins().unwrap();
    panel.activate_trigger_in(0x40, 9).unwrap();
    assert!(refused(panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(1024), &mut buf)));
    let [(block_ep, block_bit), _] = Interface::OpenEphysUsb3.pipe_setup_triggers().unwrap();
    assert_eq!((block_ep, block_bit), (0x5a, 16));
    panel.activate_trigger_in(block_ep, block_bit).unwrap();
    // Now a 512-byte block is the wrong size, and a 1024-byte one only waits for data.
    assert!(refused(panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(512), &mut buf)));
    assert!(matches!(
        panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(1024), &mut buf),
        Err(FrontPanelError::Code { code: OkErrorCode::Timeout, .. })
    ));
}

#[test]
fn the_backbone_opens_through_the_device_layer_without_driving_dacs() {
    let keys = DeviceKeys {
        backbone: "open-ephys-usb3".into(),
        frontpanel: "emulated".into(),
        emulator: "ports=B:2164,D:2132 delays=B:6 pace=free seed=2".into(),
        ..DeviceKeys::default()
    };
    let spec = DeviceSpec::from_keys(&keys).unwrap();
    let DeviceSpec::Rhythm(r) = &spec else { panic!("a board") };
    let ephysd_drivers::spec::PanelSource::Emulated(emulated) = &r.panel else { panic!("emulated") };
    let emulated = emulated.clone();
    assert_eq!(emulated.board, Board::OpenEphysUsb3);
    let mut device = ephysd_drivers::open(&spec).unwrap();
    let d = device.description().clone();
    assert_eq!(d.backbone, "open-ephys-usb3");
    assert!(d.name.starts_with("Open Ephys acquisition board (USB 3)"), "{}", d.name);
    assert_eq!(d.analog_out_channels, 0);
    assert_eq!(d.layout.amplifier_channels, 96);
    assert_eq!(d.ports.iter().map(|p| (p.port, p.channels)).collect::<Vec<_>>(), [(1, 64), (3, 32)]);
    let e = device.control().set_analog_out(0, 1.0).unwrap_err();
    assert!(matches!(e, ControlError::Unsupported { .. }) && e.to_string().contains("Open Ephys USB 3"), "{e}");
    let mut source = device.start_stream().unwrap();
    assert_source_matches_signal(&emulated, 30000.0, &mut *source, 1000);
}

/// The production loading path: the emulator's copy of the vendor library, playing the USB 3
/// board (an XEM6310), brought up as in process and streaming the same frames.
#[test]
fn the_board_comes_up_through_the_vendor_library_as_in_process() {
    let text = "board=open-ephys-usb3 serial=EMUOE30001 ports=A:2164+2132,D:2216 delays=A:4,D:12 seed=8 pace=free";
    // The only test of this binary that loads the library, so the only reader of the variable.
    std::env::set_var(SPEC_ENV, text);
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(std::path::Path::parent).expect("the test runs from target/<profile>/deps");
    let library = profile_dir.join("libokfp_emu.so");
    assert!(library.is_file(), "{} is missing: build it first: cargo build -p okfp-emu", library.display());
    let provider = LibraryProvider::load(&library).unwrap();
    let lib = provider.open(None).unwrap();
    assert_eq!(lib.info().model, "XEM6310LX45");
    let shared = |panel: Box<dyn FrontPanel>| -> SharedPanel { Arc::new(Mutex::new(panel)) };
    let mut via_library = bring_up(shared(lib), settings(30000.0)).unwrap();
    let (spec, local) = open(text);
    let mut in_process = bring_up(local, settings(30000.0)).unwrap();
    assert_eq!(via_library.serial(), "EMUOE30001");
    assert_eq!(via_library.chips(), in_process.chips());
    assert_eq!(via_library.delays(), in_process.delays());
    assert_eq!(via_library.amplifier_channels(), spec.amplifier_channels());
    {
        let mut a = via_library.start_stream().unwrap();
        let mut b = in_process.start_stream().unwrap();
        let mut block_a = FrameBlock::new(a.layout());
        let mut block_b = FrameBlock::new(b.layout());
        for _ in 0..5 {
            a.read_block(&mut block_a).unwrap();
            b.read_block(&mut block_b).unwrap();
            assert_eq!(block_a.frame_index[..block_a.frames], block_b.frame_index[..block_b.frames]);
            assert_eq!(block_a.amplifier_filled(), block_b.amplifier_filled());
        }
    }
    assert_stream_matches_signal(&spec, &mut via_library, 1000);
}

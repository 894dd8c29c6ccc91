//! The vendor library backend, exercised through the emulator's build of the FrontPanel C
//! entry points (`libokfp_emu.so`, the `okfp-emu` crate): the library is loaded, resolved
//! and called exactly as Opal Kelly's `libokFrontPanel.so` is, and every answer is compared
//! with the same emulated board driven in process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use ephysd_drivers::emulator::{EmulatedPanel, EmulatorSpec, EMULATED_BOARD_ID, EMULATED_BOARD_VERSION, SPEC_ENV};
use ephysd_drivers::frontpanel::library::{LibraryError, LibraryProvider};
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, ListedPanel, OkErrorCode, PanelProvider};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, SharedPanel};
use ephysd_drivers::rhythm::endpoints as ep;
use ephysd_drivers::rhythm::{Board, FrameFormat, MAGIC_RHD_USB3};
use ephysd_drivers::{FrameBlock, Source};

/// The board every test of this binary plays (the environment is the process's, so all of
/// them set the same value).
const SPEC: &str = "board=rhd-controller serial=EMULIB0001 ports=A:2164,B:2132 delays=A:5,B:9 seed=5 pace=free";
const SERIAL: &str = "EMULIB0001";
/// The module of an RHD recording controller.
const MODEL: &str = "XEM6310LX45";
/// The USB 3 pipe's block size.
const BLOCK: usize = 1024;
/// For comparisons: the library must be built from the same emulator as this test.
const STALE: &str = "(if the emulator changed since libokfp_emu.so was built, rebuild it: cargo build -p okfp-emu)";

fn spec() -> EmulatorSpec {
    SPEC.parse().unwrap()
}

/// `target/<profile>/libokfp_emu.so`, next to this test's `target/<profile>/deps/<test>`.
fn emulator_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps");
    let library = profile_dir.join("libokfp_emu.so");
    assert!(
        library.is_file(),
        "{} is missing: build it first: cargo build -p okfp-emu (make test does)",
        library.display()
    );
    library
}

/// The emulator's library, loaded through the production path, playing [`SPEC`].
fn provider() -> LibraryProvider {
    static ENV: Once = Once::new();
    // Set once, before any library call reads it.
    ENV.call_once(|| std::env::set_var(SPEC_ENV, SPEC));
    LibraryProvider::load(&emulator_library()).unwrap()
}

fn open_both() -> (Box<dyn FrontPanel>, EmulatedPanel) {
    (provider().open(None).unwrap(), EmulatedPanel::new(&spec()))
}

/// Every wire-out, after an update.
fn wire_outs(panel: &mut dyn FrontPanel) -> Vec<u32> {
    panel.update_wire_outs().unwrap();
    (0x20..=0x3f).map(|e| panel.wire_out(e).unwrap()).collect()
}

/// A bounded run of `frames` frames of stream 0: reset, run length, stream enable, start.
fn start_run(panel: &mut dyn FrontPanel, frames: u32) {
    panel.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::RESET_BIT, ep::RESET_BIT).unwrap();
    panel.update_wire_ins().unwrap();
    panel.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::RESET_BIT | ep::CONTINUOUS_RUN_BIT).unwrap();
    panel.set_wire_in(0x01, frames, 0xffff_ffff).unwrap();
    panel.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, 1, 0xffff_ffff).unwrap();
    panel.update_wire_ins().unwrap();
    panel.activate_trigger_in(ep::TRIGGER_IN_SPI_START, 0).unwrap();
}

/// All of a run's bytes: whole blocks from the block-throttled pipe, the rest from the plain one.
fn read_run(panel: &mut dyn FrontPanel, bytes: usize) -> Vec<u8> {
    let mut data = vec![0u8; bytes];
    let blocks = bytes - bytes % BLOCK;
    assert_eq!(panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(BLOCK), &mut data[..blocks]).unwrap(), blocks);
    if blocks < bytes {
        assert_eq!(panel.read_pipe_out(ep::PIPE_OUT_DATA, None, &mut data[blocks..]).unwrap(), bytes - blocks);
    }
    data
}

#[test]
fn a_missing_library_names_its_path_and_what_to_install() {
    let path = Path::new("/nonexistent/okfp/libokFrontPanel.so");
    let e = LibraryProvider::load(path).unwrap_err();
    assert!(matches!(e, LibraryError::Load { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("/nonexistent/okfp/libokFrontPanel.so"), "{message}");
    assert!(message.contains("install Opal Kelly FrontPanel (libokFrontPanel.so)"), "{message}");
    assert!(message.contains("device.frontpanel_library"), "{message}");
    assert!(message.contains("cargo build -p okfp-emu"), "{message}");
    assert!(std::error::Error::source(&e).is_some(), "the loader's error is kept as the cause");
}

#[test]
fn a_library_without_the_frontpanel_entry_points_names_the_missing_one() {
    let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("libc.so.6 in /lib/x86_64-linux-gnu or /usr/lib/x86_64-linux-gnu");
    let e = LibraryProvider::load(libc).unwrap_err();
    match &e {
        LibraryError::MissingSymbol { path, symbol, .. } => {
            assert_eq!(path, libc);
            assert_eq!(*symbol, "okFrontPanel_Construct");
        }
        other => panic!("expected a missing symbol, got {other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains(&libc.display().to_string()) && message.contains("okFrontPanel_Construct"), "{message}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn the_library_lists_the_emulated_board() {
    let provider = provider();
    assert_eq!(provider.describe(), format!("FrontPanel library {}", emulator_library().display()));
    assert_eq!(provider.list().unwrap(), vec![ListedPanel { serial: SERIAL.into(), model: MODEL.into() }]);
}

#[test]
fn an_unknown_serial_is_not_found_and_names_the_attached_boards() {
    match provider().open(Some("NOSUCH")) {
        Err(FrontPanelError::NotFound { serial, attached }) => {
            assert_eq!(serial, "NOSUCH");
            assert_eq!(attached, SERIAL);
        }
        Err(other) => panic!("expected NotFound, got {other}"),
        Ok(_) => panic!("opened a board that is not attached"),
    }
}

#[test]
fn the_board_opens_by_serial_or_as_the_first_and_describes_itself_as_in_process() {
    let provider = provider();
    let in_process = EmulatedPanel::new(&spec()).info();
    assert_eq!(in_process.serial, SERIAL);
    assert_eq!(in_process.model, MODEL);
    for serial in [None, Some(SERIAL), Some("")] {
        let panel = provider.open(serial).unwrap();
        assert_eq!(panel.info(), in_process, "opened with {serial:?}");
    }
}

#[test]
fn wires_and_triggers_answer_as_in_process() {
    let (mut lib, mut local) = open_both();
    for panel in [&mut *lib, &mut local as &mut dyn FrontPanel] {
        panel.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::RESET_BIT, ep::RESET_BIT).unwrap();
        panel.update_wire_ins().unwrap();
        panel.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::RESET_BIT).unwrap();
        panel.set_wire_in(ep::WIRE_IN_TTL_OUT, 0xa5a5, 0xffff).unwrap();
        panel.update_wire_ins().unwrap();
    }
    let outs = wire_outs(&mut *lib);
    assert_eq!(outs, wire_outs(&mut local), "{STALE}");
    assert_eq!(outs[usize::from(ep::WIRE_OUT_BOARD_ID - 0x20)], EMULATED_BOARD_ID);
    assert_eq!(outs[usize::from(ep::WIRE_OUT_BOARD_VERSION - 0x20)], EMULATED_BOARD_VERSION);
    assert_ne!(outs[usize::from(ep::WIRE_OUT_DATA_CLK_LOCKED - 0x20)] & ep::DATA_CLOCK_LOCKED, 0, "clock locked");
    assert_eq!(outs[usize::from(ep::WIRE_OUT_SPI_RUNNING - 0x20)] & 1, 0, "sequencer idle");

    // A run started by the trigger shows on the wire-outs the same way in both.
    for panel in [&mut *lib, &mut local as &mut dyn FrontPanel] {
        start_run(panel, 128);
    }
    assert_eq!(wire_outs(&mut *lib), wire_outs(&mut local), "{STALE}");

    // Refusals cross the C boundary as the same codes.
    for panel in [&mut *lib, &mut local as &mut dyn FrontPanel] {
        assert!(matches!(panel.set_wire_in(0x20, 1, 1), Err(FrontPanelError::Endpoint { endpoint: 0x20, .. })));
        assert!(matches!(panel.wire_out(0x1f), Err(FrontPanelError::Endpoint { endpoint: 0x1f, .. })));
        assert!(matches!(panel.activate_trigger_in(0x3f, 0), Err(FrontPanelError::Endpoint { .. })));
        assert!(matches!(
            panel.activate_trigger_in(0x41, 32),
            Err(FrontPanelError::Code { code: OkErrorCode::InvalidParameter, .. })
        ));
        assert!(matches!(
            panel.write_pipe_in(0x80, &[0; 16]),
            Err(FrontPanelError::Code { code: OkErrorCode::InvalidEndpoint, .. })
        ));
    }
}

#[test]
fn a_pipe_read_is_byte_identical_to_in_process() {
    const FRAMES: usize = 128;
    let bytes = FRAMES * FrameFormat::new(Board::RhdController, 1).unwrap().bytes_per_frame();
    let (mut lib, mut local) = open_both();
    start_run(&mut *lib, FRAMES as u32);
    start_run(&mut local, FRAMES as u32);
    let got = read_run(&mut *lib, bytes);
    let want = read_run(&mut local, bytes);
    assert_eq!(&got[..8], &MAGIC_RHD_USB3.to_le_bytes(), "a frame starts the run");
    assert!(got == want, "the library's bytes differ from the in-process board's {STALE}");

    // The run is over: both time out, and the library's negative return is the same code.
    let mut more = vec![0u8; BLOCK];
    for panel in [&mut *lib, &mut local as &mut dyn FrontPanel] {
        assert!(matches!(
            panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(BLOCK), &mut more),
            Err(FrontPanelError::Code { code: OkErrorCode::Timeout, .. })
        ));
        assert!(matches!(
            panel.read_pipe_out(ep::PIPE_OUT_DATA, Some(BLOCK), &mut more[..BLOCK / 2]),
            Err(FrontPanelError::Code { code: OkErrorCode::InvalidBlockSize, .. })
        ));
        assert!(matches!(
            panel.read_pipe_out(0xa1, None, &mut more),
            Err(FrontPanelError::Code { code: OkErrorCode::InvalidEndpoint, .. })
        ));
    }
}

#[test]
fn configuring_the_fpga_goes_through_the_library() {
    let dir = std::env::temp_dir().join(format!("okfp-emu-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The start of a Xilinx bitstream file: a 9-byte field of 0f f0 pairs.
    let bitfile = dir.join("rhythm.bit");
    let mut content = vec![0x00, 0x09, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x00, 0x00, 0x01];
    content.extend_from_slice(&[0u8; 64]);
    std::fs::write(&bitfile, &content).unwrap();
    let not_a_bitfile = dir.join("notes.txt");
    std::fs::write(&not_a_bitfile, b"not a bitstream").unwrap();

    let (mut lib, mut local) = open_both();
    lib.configure_fpga(&bitfile).unwrap();
    local.configure_fpga(&bitfile).unwrap();
    let missing = dir.join("missing.bit");
    match lib.configure_fpga(&missing) {
        Err(FrontPanelError::Bitfile { path, reason }) => {
            assert_eq!(path, missing.display().to_string());
            assert!(reason.contains("FileError"), "{reason}");
        }
        other => panic!("expected a bitfile error, got {other:?}"),
    }
    match lib.configure_fpga(&not_a_bitfile) {
        Err(FrontPanelError::Bitfile { reason, .. }) => assert!(reason.contains("InvalidBitstream"), "{reason}"),
        other => panic!("expected a bitfile error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_board_driver_brings_the_board_up_through_the_library_as_in_process() {
    let settings = BoardSettings {
        board: Board::RhdController,
        name: "emulated RHD controller".into(),
        sample_rate_hz: 30000.0,
        frames_per_block: 100,
        bitfile: None,
        ports: 8,
        free_running: true,
    };
    let (lib, local) = open_both();
    let shared = |panel: Box<dyn FrontPanel>| -> SharedPanel { Arc::new(Mutex::new(panel)) };
    let mut via_library = bring_up(shared(lib), settings.clone()).unwrap_or_else(|e| panic!("{e} {STALE}"));
    let mut in_process = bring_up(shared(Box::new(local)), settings).unwrap();
    assert_eq!(via_library.serial(), SERIAL);
    assert_eq!(via_library.chips(), in_process.chips(), "{STALE}");
    assert_eq!(via_library.delays(), in_process.delays(), "{STALE}");
    assert_eq!(via_library.amplifier_channels(), 64 + 32);

    let mut a = via_library.start_stream().unwrap();
    let mut b = in_process.start_stream().unwrap();
    let mut block_a = FrameBlock::new(a.layout());
    let mut block_b = FrameBlock::new(b.layout());
    for _ in 0..5 {
        a.read_block(&mut block_a).unwrap();
        b.read_block(&mut block_b).unwrap();
        assert_eq!(block_a.frame_index[..block_a.frames], block_b.frame_index[..block_b.frames]);
        assert_eq!(block_a.amplifier_filled(), block_b.amplifier_filled(), "{STALE}");
    }
}

//! The SmartBox Pro with a SiNAPS probe, end to end against its emulated FPGA: bring-up of
//! every probe model in process and through the emulator's copy of the FrontPanel library
//! (the production loading path), streamed samples equal to the emulated pixels' frame for
//! frame, what the MOSI bank does to the probe, the status registers, flashing the FPGA (a
//! valid file works, a bad one is refused with nothing sent), faults as gaps, and a read side
//! that allocates nothing per block.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ephysd_drivers::emulator::sinaps::{
    sinaps_signal_config, SinapsEmulatorCounters, SinapsEmulatorProvider, SinapsEmulatorSpec, SinapsPanel,
    DEFAULT_FIRMWARE, EMULATED_PROBE_GENERATION,
};
use ephysd_drivers::emulator::SPEC_ENV;
use ephysd_drivers::frontpanel::library::LibraryProvider;
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, PanelInfo, PanelProvider};
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::sinaps::board::SinapsSettings;
use ephysd_drivers::sinaps::endpoints::{self as ep, mosi};
use ephysd_drivers::sinaps::{Bitfile, MosiBank, SinapsBoard, SinapsControl, SinapsError, SinapsModel};
use ephysd_drivers::{open, DeviceError, DeviceKeys, DeviceSpec, FrameBlock, Source};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

const RATE: f64 = 30000.0;

/// A FrontPanel device that forwards to an emulated box the test keeps a handle on, so it can
/// read what reached the FPGA.
struct Spy(Arc<Mutex<SinapsPanel>>);

impl Spy {
    fn panel(&self) -> MutexGuard<'_, SinapsPanel> {
        self.0.lock().unwrap()
    }
}

impl FrontPanel for Spy {
    fn info(&self) -> PanelInfo {
        self.panel().info()
    }
    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError> {
        self.panel().configure_fpga(bitfile)
    }
    fn set_wire_in(&mut self, endpoint: u8, value: u32, mask: u32) -> Result<(), FrontPanelError> {
        self.panel().set_wire_in(endpoint, value, mask)
    }
    fn update_wire_ins(&mut self) -> Result<(), FrontPanelError> {
        self.panel().update_wire_ins()
    }
    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError> {
        self.panel().update_wire_outs()
    }
    fn wire_out(&self, endpoint: u8) -> Result<u32, FrontPanelError> {
        self.panel().wire_out(endpoint)
    }
    fn activate_trigger_in(&mut self, endpoint: u8, bit: u8) -> Result<(), FrontPanelError> {
        self.panel().activate_trigger_in(endpoint, bit)
    }
    fn read_pipe_out(&mut self, endpoint: u8, block: Option<usize>, buf: &mut [u8]) -> Result<usize, FrontPanelError> {
        self.panel().read_pipe_out(endpoint, block, buf)
    }
    fn write_pipe_in(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, FrontPanelError> {
        self.panel().write_pipe_in(endpoint, data)
    }
}

fn model(channels: usize) -> SinapsModel {
    SinapsModel::from_channels(channels).unwrap()
}

fn settings(model: SinapsModel, bitfile: Option<PathBuf>) -> SinapsSettings {
    SinapsSettings {
        model,
        name: format!("emulated {}", model.backbone),
        sample_rate_hz: RATE,
        frames_per_block: 128,
        bitfile,
        free_running: true,
    }
}

/// A box playing `text`, brought up, with a handle on its FPGA.
fn spied(text: &str) -> (SinapsBoard, Arc<Mutex<SinapsPanel>>) {
    let spec: SinapsEmulatorSpec = text.parse().unwrap();
    let fpga = Arc::new(Mutex::new(SinapsPanel::new(&spec)));
    let board = SinapsBoard::bring_up(Box::new(Spy(Arc::clone(&fpga))), settings(spec.model, None)).unwrap();
    (board, fpga)
}

fn counters(fpga: &Arc<Mutex<SinapsPanel>>) -> SinapsEmulatorCounters {
    fpga.lock().unwrap().counters()
}

/// Reads `frames` frames from `source` and the same frames straight from the emulator's
/// signal; returns (streamed, expected) amplifier samples and checks frame numbers and
/// digital inputs.
fn stream_and_truth(spec: &SinapsEmulatorSpec, source: &mut dyn Source, frames: usize) -> (Vec<i16>, Vec<i16>) {
    let mut block = FrameBlock::new(source.layout());
    let mut signal = SimulatedSource::new(sinaps_signal_config(spec, RATE)).unwrap();
    let mut truth = FrameBlock::new(signal.layout());
    let (mut got, mut want, mut got_din, mut want_din, mut index) = (vec![], vec![], vec![], vec![], vec![]);
    while index.len() < frames {
        source.read_block(&mut block).unwrap();
        got.extend_from_slice(block.amplifier_filled());
        got_din.extend_from_slice(&block.digital_in[..block.frames]);
        index.extend_from_slice(&block.frame_index[..block.frames]);
    }
    while want_din.len() < index.len() {
        signal.read_block(&mut truth).unwrap();
        want.extend_from_slice(truth.amplifier_filled());
        want_din.extend_from_slice(&truth.digital_in[..truth.frames]);
    }
    assert_eq!(index, (0..index.len() as u64).collect::<Vec<_>>(), "frame indices from 0 without gaps");
    assert_eq!(got_din, want_din[..index.len()]);
    want.truncate(got.len());
    (got, want)
}

fn assert_streams_the_pixels(spec: &SinapsEmulatorSpec, source: &mut dyn Source, frames: usize) {
    let channels = spec.model.channels();
    assert_eq!(source.layout().amplifier_channels, channels);
    let (got, want) = stream_and_truth(spec, source, frames);
    for (f, (g, w)) in got.chunks(channels).zip(want.chunks(channels)).enumerate() {
        assert_eq!(g, w, "frame {f}");
    }
    let spread = got.iter().map(|&x| i64::from(x)).max().unwrap() - got.iter().map(|&x| i64::from(x)).min().unwrap();
    assert!(spread > 20, "a live signal, not a constant ({spread})");
}

#[test]
fn every_model_comes_up_in_process_and_streams_exactly_its_emulated_pixels() {
    for m in SinapsModel::ALL {
        let keys = DeviceKeys {
            backbone: m.backbone.into(),
            frontpanel: "emulated".into(),
            emulator: "seed=3 pace=free serial=SNPTEST001".into(),
            ..DeviceKeys::default()
        };
        let spec = DeviceSpec::from_keys(&keys).unwrap();
        let mut device = open(&spec).unwrap();
        let d = device.description().clone();
        assert_eq!(d.backbone, m.backbone);
        assert_eq!(d.name, format!("{} SNPTEST001", m.name));
        assert_eq!(d.amplifier_channels(), m.channels());
        assert_eq!(d.ports.len(), m.shanks);
        for (s, p) in d.ports.iter().enumerate() {
            assert_eq!((p.port, p.first_channel, p.channels), (s, s * 256, 256));
        }
        assert!(!d.can_stimulate && !d.can_measure_impedance && d.free_running);
        let status = device.control().sinaps().expect("a Sinaps device").status().unwrap();
        let want: Vec<u32> = (0..4).map(|s| if s < m.shanks { 256 } else { 0 }).collect();
        assert_eq!(status.active_pixels[..], want[..]);
        let emu: SinapsEmulatorSpec = format!("board={} seed=3 pace=free", m.emulator_board).parse().unwrap();
        let mut source = device.start_stream().unwrap();
        assert_streams_the_pixels(&emu, &mut *source, 1000);
        assert!(device.health().is_some());
    }
}

#[test]
fn every_model_comes_up_through_the_emulators_frontpanel_library_as_in_process() {
    let exe = std::env::current_exe().unwrap();
    let library = exe.parent().and_then(Path::parent).unwrap().join("libokfp_emu.so");
    assert!(library.is_file(), "{} is missing: cargo build -p okfp-emu", library.display());
    // One test sets the process's environment, for one model after another.
    for m in SinapsModel::ALL {
        let text = format!("board={} serial=SNPLIB0001 seed=8", m.emulator_board);
        std::env::set_var(SPEC_ENV, &text);
        let provider = LibraryProvider::load(&library).unwrap();
        let listed = provider.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].serial.as_str(), listed[0].model.as_str()), ("SNPLIB0001", "XEM7310A75"));
        let keys = DeviceKeys {
            backbone: m.backbone.into(),
            frontpanel: "library".into(),
            frontpanel_library: library.display().to_string(),
            serial: "SNPLIB0001".into(),
            ..DeviceKeys::default()
        };
        // The library's board runs in real time, as a real box does.
        let mut device = open(&DeviceSpec::from_keys(&keys).unwrap()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(device.description().amplifier_channels(), m.channels());
        let status = device.control().sinaps().unwrap().status().unwrap();
        assert_eq!((status.firmware.as_str(), status.probe_model as usize), (DEFAULT_FIRMWARE, m.channels()));
        let emu: SinapsEmulatorSpec = text.parse().unwrap();
        let mut source = device.start_stream().unwrap();
        assert_streams_the_pixels(&emu, &mut *source, 600);
    }
    std::env::remove_var(SPEC_ENV);
}

#[test]
fn the_status_registers_decode_what_the_fpga_holds_and_wire_outs_read_raw() {
    let (mut board, _fpga) = spied("board=sinaps-512 pace=free");
    let s = board.status().unwrap();
    assert!(!s.calibrating && s.calibration_progress == 0.0);
    assert_eq!(s.active_pixels, [256, 256, 0, 0]);
    assert!(s.vref_volts.iter().all(|&v| (v - 1.65).abs() < 1e-9), "{:?}", s.vref_volts);
    assert_eq!(s.shank_errors, [false; 4]);
    assert_eq!((s.host_counter, s.fpga_counter), (1, 1), "bring-up transmitted one bank");
    assert_eq!(s.firmware, DEFAULT_FIRMWARE);
    assert_eq!((s.probe_generation, s.probe_model), (EMULATED_PROBE_GENERATION, 512));
    assert!(s.clock_locked && s.probe_connected && !s.running);
    assert_eq!((s.design_id, s.map_version), (ep::DESIGN_ID, ep::MAP_VERSION));
    let flags = board.read_wire_out(i64::from(ep::WIRE_OUT_STATUS)).unwrap();
    assert_eq!(flags, ep::STATUS_CLOCK_LOCKED | ep::STATUS_PROBE_CONNECTED);
    assert_eq!(board.read_wire_out(0x3e).unwrap(), ep::DESIGN_ID);
    assert_eq!(board.read_wire_out(0x22).unwrap(), 256 | (256 << 16));
    for bad in [0x1f, 0x40, -1, 1 << 40] {
        let e = board.read_wire_out(bad).unwrap_err().to_string();
        assert_eq!(e, format!("wire_out_address = {bad}: allowed 32..=63 (the FrontPanel wire-outs 0x20..=0x3f)"));
    }
}

#[test]
fn a_mosi_bank_switches_pixels_sets_references_and_runs_a_calibration() {
    let text = "board=sinaps-512 seed=5 pace=free";
    let spec: SinapsEmulatorSpec = text.parse().unwrap();
    let (mut board, fpga) = spied(text);
    let mut vals = MosiBank::all_pixels(spec.model).to_register_vals();
    // Shank 0: pixels 0..=127 only; shank 1: every other pixel of its first mask only.
    for k in 4..8 {
        vals[mosi::PIXEL_MASK_FIRST + k] = 0;
    }
    for k in 0..8 {
        vals[mosi::PIXEL_MASK_FIRST + 8 + k] = if k == 0 { 0x5555_5555 } else { 0 };
    }
    vals[mosi::VREF_FIRST] = 12_000;
    vals[mosi::VREF_FIRST + 1] = 30_000;
    board.load_all_mosi(&vals).unwrap();
    // Loaded, not yet sent: the probe still runs the bring-up bank.
    assert_eq!(board.status().unwrap().active_pixels, [256, 256, 0, 0]);
    board.transmit_mosi().unwrap();
    let s = board.status().unwrap();
    assert_eq!(s.active_pixels, [128, 16, 0, 0]);
    assert!((s.vref_volts[0] - 1.2).abs() < 1e-9 && (s.vref_volts[1] - 3.0).abs() < 1e-9);
    assert_eq!((s.host_counter, s.fpga_counter), (2, 2));
    assert_eq!(fpga.lock().unwrap().bank().to_register_vals(), vals);

    // Pixels switched off read 0; the others carry the signal.
    let mut source = board.start_stream().unwrap();
    let (got, want) = stream_and_truth(&spec, &mut source, 300);
    for (g, w) in got.chunks(512).zip(want.chunks(512)) {
        for c in 0..512 {
            let on = if c < 256 { c < 128 } else { c < 256 + 32 && (c - 256) % 2 == 0 };
            assert_eq!(g[c], if on { w[c] } else { 0 }, "channel {c}");
        }
    }
    drop(source);

    // A calibration: running with its progress, then done.
    vals[mosi::CONTROL] = 1;
    board.load_all_mosi(&vals).unwrap();
    board.transmit_mosi().unwrap();
    let s = board.status().unwrap();
    assert!(s.calibrating && s.calibration_progress < 1.0, "{s:?}");
    std::thread::sleep(std::time::Duration::from_secs_f64(mosi::CALIBRATION_SECONDS * 0.5));
    let mid = board.status().unwrap();
    assert!(mid.calibrating && mid.calibration_progress > s.calibration_progress, "{mid:?}");
    std::thread::sleep(std::time::Duration::from_secs_f64(mosi::CALIBRATION_SECONDS * 0.6));
    let done = board.status().unwrap();
    assert!(!done.calibrating && done.calibration_progress == 1.0, "{done:?}");
}

#[test]
fn a_bad_mosi_bank_is_refused_naming_the_register_and_nothing_reaches_the_fpga() {
    let (mut board, fpga) = spied("board=sinaps-256 pace=free");
    let loaded = counters(&fpga).mosi_bytes_loaded;
    let good = MosiBank::all_pixels(model(256)).to_register_vals();
    let e = board.load_all_mosi(&good[..39]).unwrap_err();
    assert!(matches!(e, SinapsError::InvalidArgument { .. }), "{e:?}");
    assert!(e.to_string().starts_with("register_vals = 39 values: allowed exactly 40"), "{e}");
    let mut vals = good.clone();
    vals[3] = 40_000;
    assert_eq!(
        board.load_all_mosi(&vals).unwrap_err().to_string(),
        "register_vals[3] = 40000: allowed 0..=33000 (reference voltage FFC in 0.1 mV)"
    );
    let mut vals = good.clone();
    vals[mosi::PIXEL_MASK_FIRST + 8] = 1;
    let e = board.load_all_mosi(&vals).unwrap_err().to_string();
    assert!(e.starts_with("register_vals[16] = 1: allowed 0 (pixel enables of shank 1"), "{e}");
    assert_eq!(counters(&fpga).mosi_bytes_loaded, loaded, "nothing was sent");
    // The FPGA's own check: a bank loaded in part is not sent to the probe.
    {
        let mut p = fpga.lock().unwrap();
        p.activate_trigger_in(ep::TRIGGER_IN_MOSI, ep::TRIGGER_MOSI_ADDRESS_RESET).unwrap();
        p.write_pipe_in(ep::PIPE_IN_MOSI, &[0; 16]).unwrap();
    }
    let e = board.transmit_mosi().unwrap_err().to_string();
    assert!(e.contains("no MOSI register bank is loaded"), "{e}");
    assert_eq!(board.status().unwrap().active_pixels, [256, 0, 0, 0], "the probe kept its bank");
}

/// A directory of bitfiles for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ephysd-sinaps-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bitstream() -> Vec<u8> {
    let mut s = vec![0xff; 32];
    s.extend_from_slice(&[0x00, 0x00, 0x00, 0xbb, 0x11, 0x22, 0x00, 0x44, 0xff, 0xff, 0xff, 0xff]);
    s.extend_from_slice(&[0xaa, 0x99, 0x55, 0x66]);
    s.extend_from_slice(&[0x20; 64]);
    s
}

#[test]
fn flashing_a_valid_bitfile_runs_its_design_and_the_probe_comes_back() {
    let dir = scratch_dir("flash");
    let good = dir.join("sinaps_v2.bit");
    let design = "sinaps_lab_v2;UserID=0XFFFFFFFF;Version=2023.2";
    std::fs::write(&good, Bitfile::build(design, "7a75tfgg484", "2024/05/01", "10:00:00", &bitstream())).unwrap();
    let text = "board=sinaps-256 seed=2 pace=free";
    let (mut board, fpga) = spied(text);
    board.flash(&good).unwrap();
    assert_eq!(counters(&fpga).configure_attempts, 1);
    let s = board.status().unwrap();
    assert_eq!(s.firmware, design);
    assert_eq!(s.active_pixels, [256, 0, 0, 0], "the probe is brought up again");
    let spec: SinapsEmulatorSpec = text.parse().unwrap();
    let mut source = board.start_stream().unwrap();
    assert_streams_the_pixels(&spec, &mut source, 300);
    // Not while streaming.
    let e = board.flash(&good).unwrap_err();
    assert!(matches!(e, SinapsError::Streaming { .. }), "{e}");
    assert_eq!(counters(&fpga).configure_attempts, 1);
    drop(source);

    // At bring-up, from device.bitfile.
    let spec: SinapsEmulatorSpec = "board=sinaps-1024 pace=free".parse().unwrap();
    let panel = SinapsEmulatorProvider::new(spec.clone()).open(None).unwrap();
    let mut board = SinapsBoard::bring_up(panel, settings(spec.model, Some(good.clone()))).unwrap();
    assert_eq!(board.status().unwrap().firmware, design);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_kind_of_bad_bitfile_is_refused_naming_the_file_and_nothing_is_sent() {
    let dir = scratch_dir("bad");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let good = Bitfile::build("top", "7a75tfgg484", "2024/05/01", "10:00:00", &bitstream());
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 7);
    let mut no_sync = Bitfile::build("top", "7a75tfgg484", "2024/05/01", "10:00:00", &[0x20; 80]);
    no_sync.shrink_to_fit();
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.join("missing.bit"), "cannot be read"),
        (write("notes.bit", b"a text file, not a bitstream"), "not a Xilinx .bit file"),
        (write("truncated.bit", &truncated), "declares"),
        (write("nosync.bit", &no_sync), "no sync word"),
        (
            write("other_part.bit", &Bitfile::build("top", "7a200tfbg484", "d", "t", &bitstream())),
            "built for FPGA part 7a200tfbg484, but this board's FPGA is 7a75tfgg484",
        ),
        (write("binary_name.bit", &Bitfile::build("to\u{1}p", "7a75tfgg484", "d", "t", &bitstream())), "field 'a'"),
        (write("header_only.bit", &good[..20]), "field 'b' (part) is missing: the file ends before it"),
    ];
    let (mut board, fpga) = spied("board=sinaps-256 pace=free");
    for (path, problem) in &cases {
        let e = board.flash(path).unwrap_err();
        assert!(matches!(e, SinapsError::Bitfile(_)), "{e:?}");
        let message = e.to_string();
        assert!(message.starts_with(&format!("FPGA bitfile {}: ", path.display())), "{message}");
        assert!(message.contains(problem), "{message}");
    }
    assert_eq!(counters(&fpga).configure_attempts, 0, "no bad file reached the FPGA");
    assert_eq!(board.status().unwrap().firmware, DEFAULT_FIRMWARE);
    // At bring-up, a bad device.bitfile stops the open with the same message.
    let spec: SinapsEmulatorSpec = "board=sinaps-256 pace=free".parse().unwrap();
    let panel = SinapsEmulatorProvider::new(spec.clone()).open(None).unwrap();
    let e = SinapsBoard::bring_up(panel, settings(spec.model, Some(cases[3].0.clone()))).unwrap_err().to_string();
    assert!(e.contains("nosync.bit") && e.contains("no sync word"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_box_whose_probe_is_missing_or_another_model_is_refused_at_bring_up() {
    for (text, said) in [
        ("board=sinaps-256 probe=none pace=free", "no SiNAPS probe is connected"),
        ("board=sinaps-256 probe=512 pace=free", "the probe reports model 512"),
    ] {
        let spec: SinapsEmulatorSpec = text.parse().unwrap();
        let panel = SinapsEmulatorProvider::new(spec.clone()).open(None).unwrap();
        let e = SinapsBoard::bring_up(panel, settings(spec.model, None)).unwrap_err();
        assert!(matches!(e, DeviceError::SinapsBringUp { .. }), "{e:?}");
        assert!(e.to_string().contains(said), "{e}");
    }
}

#[test]
fn corrupt_and_dropped_frames_are_counted_and_are_gaps_never_merged() {
    let text = "board=sinaps-256 seed=6 pace=free faults=drop@1000+50,corrupt@3000";
    let spec: SinapsEmulatorSpec = text.parse().unwrap();
    let (mut board, _fpga) = spied(text);
    let health = Arc::clone(board.health());
    let mut source = board.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let mut signal = SimulatedSource::new(sinaps_signal_config(&spec, RATE)).unwrap();
    let mut truth = FrameBlock::new(signal.layout());
    let (mut index, mut got, mut want) = (vec![], vec![], vec![]);
    while index.len() < 5000 {
        source.read_block(&mut block).unwrap();
        index.extend_from_slice(&block.frame_index[..block.frames]);
        got.extend_from_slice(block.amplifier_filled());
    }
    while want.len() < (index[index.len() - 1] as usize + 1) * 256 {
        signal.read_block(&mut truth).unwrap();
        want.extend_from_slice(truth.amplifier_filled());
    }
    let jumps: Vec<(u64, u64)> =
        index.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0] + 1, w[1] - w[0] - 1)).collect();
    assert_eq!(jumps, [(1000, 50), (3000, 1)]);
    assert_eq!((health.frames_lost(), health.corrupt_reads()), (51, 1));
    for (row, &i) in index.iter().enumerate() {
        let i = i as usize;
        assert_eq!(got[row * 256..(row + 1) * 256], want[i * 256..(i + 1) * 256], "frame {i}");
    }
}

#[test]
fn reading_a_sinaps_box_allocates_nothing_per_block() {
    for text in ["board=sinaps-256 pace=free", "board=sinaps-1024 pace=free"] {
        let spec: SinapsEmulatorSpec = text.parse().unwrap();
        let panel = SinapsEmulatorProvider::new(spec.clone()).open(None).unwrap();
        let mut board = SinapsBoard::bring_up(panel, settings(spec.model, None)).unwrap();
        let mut source = board.start_stream().unwrap();
        let mut block = FrameBlock::new(source.layout());
        for _ in 0..300 {
            source.read_block(&mut block).unwrap();
        }
        common::heap::counting(true);
        for _ in 0..1000 {
            source.read_block(&mut block).unwrap();
        }
        common::heap::counting(false);
        let n = common::heap::take_allocations();
        assert_eq!(n, 0, "{text}: {n} allocations over 1000 blocks");
    }
}

#[test]
fn every_other_device_has_no_sinaps_operations() {
    let mut device = open(&DeviceSpec::from_keys(&DeviceKeys::default()).unwrap()).unwrap();
    assert!(device.control().sinaps().is_none());
}

#[test]
fn an_unplugged_box_ends_the_stream_as_gone_and_opens_again_once_back() {
    let keys = DeviceKeys {
        backbone: "smartbox-pro-sinaps-256".into(),
        frontpanel: "emulated".into(),
        emulator: "seed=9 serial=SNPUNPLUG1 faults=unplug@0.2+0.6".into(),
        ..DeviceKeys::default()
    };
    let spec = DeviceSpec::from_keys(&keys).unwrap();
    let mut device = open(&spec).unwrap();
    let mut source = device.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let mut frames = 0;
    let e = loop {
        match source.read_block(&mut block) {
            Ok(()) => frames += block.frames,
            Err(e) => break e,
        }
    };
    assert!(matches!(&e, ephysd_drivers::SourceError::Device(d) if d.is_gone()), "{e}");
    // The box went away at frame 6000 (0.2 s); frames it held then are lost with it.
    assert!((1..=6000).contains(&frames), "{frames} frames before the unplug at 0.2 s");
    drop(source);
    assert!(device.control().sinaps().unwrap().status().is_err(), "the box is gone");
    drop(device);
    let e = open(&spec).unwrap_err();
    assert!(matches!(e, DeviceError::Open { .. }), "{e}");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let mut device = open(&spec).unwrap();
    let mut source = device.start_stream().unwrap();
    for _ in 0..10 {
        source.read_block(&mut block).unwrap();
    }
}

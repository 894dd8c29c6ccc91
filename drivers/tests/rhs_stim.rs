//! Stimulation, analog outputs and fast settle of XDAQ with RHS headstages, end to end against
//! the emulated board: the driver programs the RHS2116s and the FPGA's stimulation sequencers
//! while a stream runs (read on another thread, as the acquisition thread reads it), and the
//! frames show what happened: the stimulation flags of exactly the pulsed channel for exactly
//! its phases, the artifact the current drives through the emulated electrode, the DAC words,
//! the amplifiers held at baseline.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ephysd_drivers::emulator::chip::{electrodes, Electrode, AMPLIFIER_LIMIT_UV};
use ephysd_drivers::emulator::rhs_chip::dc_code_volts;
use ephysd_drivers::emulator::{signal_config, EmulatedPanel, EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::FrontPanel;
use ephysd_drivers::rhythm::board::outputs::{dac_code, DacUse};
use ephysd_drivers::rhythm::board::stim::{StimOptions, StimRegister};
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, RhythmBoard};
use ephysd_drivers::rhythm::{rhs, Board, XdaqGeneration};
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{Control, ControlError, FrameBlock, Source, StimPhase, StimPulse, AMPLIFIER_UV_PER_UNIT};

const RATE: f64 = 30000.0;
const SPEC: &str = "board=xdaq-rhs-gen1 pace=free ports=A:2116+2116,C:2116 delays=C:6 seed=11";

fn settings() -> BoardSettings {
    BoardSettings {
        board: Board::XdaqRhs(XdaqGeneration::One),
        name: "emulated XDAQ (RHS)".into(),
        sample_rate_hz: RATE,
        frames_per_block: 100,
        bitfile: None,
        ports: 4,
        free_running: true,
    }
}

fn open(text: &str) -> (EmulatorSpec, Arc<Mutex<EmulatedPanel>>, RhythmBoard) {
    let spec: EmulatorSpec = text.parse().unwrap();
    let emulated = Arc::new(Mutex::new(EmulatorProvider::new(spec.clone()).open_emulated().unwrap()));
    let panel: Box<dyn FrontPanel> = Box::new(emulated.clone());
    let board = bring_up(Arc::new(Mutex::new(panel)), settings()).unwrap();
    (spec, emulated, board)
}

/// What a stream carried, frame by frame.
#[derive(Default)]
struct Recorded {
    channels: usize,
    streams: usize,
    index: Vec<u64>,
    amp: Vec<i16>,
    dc: Vec<u16>,
    stim_on: Vec<u16>,
    polarity: Vec<u16>,
    settle: Vec<u16>,
    recovery: Vec<u16>,
    dac: Vec<u16>,
}

impl Recorded {
    fn frames(&self) -> usize {
        self.index.len()
    }
    fn ac(&self, f: usize, ch: usize) -> i16 {
        self.amp[f * self.channels + ch]
    }
    fn dc(&self, f: usize, ch: usize) -> u16 {
        self.dc[f * self.channels + ch]
    }
    fn flag(lane: &[u16], streams: usize, f: usize, s: usize) -> u16 {
        lane[f * streams + s]
    }
}

/// Starts the board's stream, reads it on another thread while `act` runs on this one, and
/// `after` frames more once `act` is done.
fn record_while<T>(board: &mut RhythmBoard, after: usize, act: impl FnOnce(&mut RhythmBoard) -> T) -> (Recorded, T) {
    let mut source = board.start_stream().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let layout = source.layout();
            let mut block = FrameBlock::new(layout);
            let mut r = Recorded { channels: layout.amplifier_channels, ..Recorded::default() };
            let mut left = None;
            loop {
                source.read_block(&mut block).unwrap();
                let n = block.frames;
                let x = source.extras();
                r.streams = x.stim_on.len() / x.frames_per_block();
                r.index.extend_from_slice(&block.frame_index[..n]);
                r.amp.extend_from_slice(block.amplifier_filled());
                r.dc.extend_from_slice(&x.dc_amplifier[..n * r.channels]);
                r.stim_on.extend_from_slice(&x.stim_on[..n * r.streams]);
                r.polarity.extend_from_slice(&x.stim_polarity[..n * r.streams]);
                r.settle.extend_from_slice(&x.amp_settle[..n * r.streams]);
                r.recovery.extend_from_slice(&x.charge_recovery[..n * r.streams]);
                r.dac.extend_from_slice(&x.analog_out[..n * 8]);
                if left.is_none() && done.load(Ordering::Acquire) {
                    left = Some(after);
                }
                if let Some(l) = left.as_mut() {
                    if *l <= n {
                        break;
                    }
                    *l -= n;
                }
                assert!(r.frames() < 5_000_000, "the control side never finished");
            }
            r
        })
    };
    let out = act(board);
    done.store(true, Ordering::Release);
    (reader.join().unwrap(), out)
}

/// The emulator's simulated electrode signal, frame by frame (amplifier units).
fn signal(spec: &EmulatorSpec, frames: usize) -> Vec<i16> {
    let mut s = SimulatedSource::new(signal_config(spec, RATE)).unwrap();
    let mut b = FrameBlock::new(s.layout());
    let mut all = Vec::new();
    while all.len() < frames * spec.amplifier_channels() {
        s.read_block(&mut b).unwrap();
        all.extend_from_slice(b.amplifier_filled());
    }
    all
}

/// Frames (in stream order) where `lane`'s bit `bit` of stream `s` is set.
fn frames_with(lane: &[u16], streams: usize, s: usize, bit: usize) -> Vec<usize> {
    (0..lane.len() / streams).filter(|&f| Recorded::flag(lane, streams, f, s) & (1 << bit) != 0).collect()
}

fn pulse(channel: usize, phases: &[(u32, f32)]) -> StimPulse {
    let p: Vec<StimPhase> = phases.iter().map(|&(d, c)| StimPhase { duration_us: d, current_ua: c }).collect();
    StimPulse::new(channel, &p).unwrap()
}

/// The electrode of the channel among `channels` whose series resistance is lowest.
fn lowest_resistance(spec: &EmulatorSpec, channels: std::ops::Range<usize>) -> (usize, Electrode) {
    let all = electrodes(spec);
    channels.map(|c| (c, all[c])).min_by(|a, b| a.1.resistance_ohms.total_cmp(&b.1.resistance_ohms)).unwrap()
}

#[test]
fn a_pulse_flags_exactly_its_channel_for_exactly_its_phases_and_drives_its_electrode() {
    let (spec, emulated, mut board) = open(SPEC);
    assert_eq!(board.amplifier_channels(), 48);
    assert!(board.description(&dummy_rhythm_spec()).can_stimulate);
    // A channel of the second chip (stream 1), the one whose electrode has the lowest
    // resistance, so the artifact stays inside the AC amplifier's range.
    let (channel, electrode) = lowest_resistance(&spec, 16..32);
    let within = channel - 16;
    // 20 nA cathodic for 100 µs (3 samples), 10 nA anodic for 200 µs (6 samples): charge
    // balanced.
    let p = pulse(channel, &[(100, -0.02), (200, 0.01)]);
    let (rec, result) = record_while(&mut board, 2000, |b| b.stimulate(&p));
    result.unwrap();
    let streams = rec.streams;
    assert_eq!(streams, 3);
    // Exactly one channel of one stream flagged, for 3 + 6 frames in a row.
    for s in 0..streams {
        for bit in 0..16 {
            let on = frames_with(&rec.stim_on, streams, s, bit);
            if (s, bit) == (1, within) {
                assert_eq!(on.len(), 9, "{on:?}");
                assert_eq!(on[8] - on[0], 8, "contiguous: {on:?}");
            } else {
                assert!(on.is_empty(), "stream {s} channel {bit}: {on:?}");
            }
        }
    }
    let on = frames_with(&rec.stim_on, streams, 1, within);
    let positive = frames_with(&rec.polarity, streams, 1, within);
    assert_eq!(positive.iter().filter(|f| on.contains(f)).count(), 6, "the anodic phase");
    assert!(on[..3].iter().all(|f| !positive.contains(f)), "cathodic first");
    assert!(rec.settle.iter().chain(&rec.recovery).all(|&w| w == 0), "no settle or recovery asked");
    // The chip: stimulators enabled, a 10 nA step, the channel's magnitudes.
    {
        let e = emulated.lock().unwrap();
        let reg = |r| e.rhs_chip_register(0, 1, r).unwrap();
        assert_eq!((reg(32), reg(33)), (rhs::STIM_ENABLE_A, rhs::STIM_ENABLE_B));
        let step = rhs::STIM_STEPS[0];
        assert_eq!((reg(34), reg(35)), (step.step_register(), step.bias_register()));
        assert_eq!(reg(64 + within as u8), 0x8000 | 2);
        assert_eq!(reg(96 + within as u8), 0x8000 | 1);
        assert_eq!(e.rhs_chip_register(0, 0, 32), Some(0), "the other chips' stimulators stay disabled");
        assert_eq!(e.rhs_chip_register(2, 0, 32), Some(0));
        assert_eq!(e.stim_sequencer_register(1, within, StimRegister::EventEndStim as usize), Some(9));
    }
    // The artifact: the current acting in a frame is the one the sequencer's writes set in
    // the frame before (the conversions come first in each sample); the electrode reads
    // I·R plus the charge on its double layer.
    let truth = signal(&spec, rec.index.last().copied().unwrap() as usize + 1);
    let ch = spec.amplifier_channels();
    let dt = 1.0 / RATE;
    let current = |f: usize| -> f64 {
        if Recorded::flag(&rec.stim_on, streams, f, 1) & (1 << within) == 0 {
            0.0
        } else if Recorded::flag(&rec.polarity, streams, f, 1) & (1 << within) != 0 {
            10e-9
        } else {
            -20e-9
        }
    };
    let mut double_layer = 0.0;
    let mut checked = 0;
    for f in 1..rec.frames() {
        let acting = current(f - 1);
        let volts = acting * electrode.resistance_ohms + double_layer;
        double_layer += current(f) * dt / electrode.capacitance_farads;
        let sig = truth[rec.index[f] as usize * ch + channel];
        let uv = (f64::from(sig) * AMPLIFIER_UV_PER_UNIT + volts * 1e6).clamp(-AMPLIFIER_LIMIT_UV, AMPLIFIER_LIMIT_UV);
        let want = (uv / AMPLIFIER_UV_PER_UNIT).round() as i32;
        let got = i32::from(rec.ac(f, channel));
        assert!((got - want).abs() <= 1, "frame {f}: {got}, want {want} ({volts} V)");
        assert_eq!(rec.dc(f, channel), dc_code_volts(f64::from(sig) * AMPLIFIER_UV_PER_UNIT * 1e-6 + volts));
        if acting != 0.0 {
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
    // The first artifact sample: 20 nA through the electrode's resistance and one sample of
    // its double layer, within 2 %.
    let first = on[0] + 1;
    let sig = f64::from(truth[rec.index[first] as usize * ch + channel]) * AMPLIFIER_UV_PER_UNIT;
    let artifact_uv = f64::from(rec.ac(first, channel)) * AMPLIFIER_UV_PER_UNIT - sig;
    let want_uv = -20e-9 * (electrode.resistance_ohms + dt / electrode.capacitance_farads) * 1e6;
    assert!(want_uv.abs() > 50.0 && want_uv.abs() < AMPLIFIER_LIMIT_UV, "{want_uv} µV");
    assert!((artifact_uv / want_uv - 1.0).abs() < 0.02, "{artifact_uv} µV, want {want_uv} µV");
    // Every other channel carries its electrode alone.
    for f in 0..rec.frames() {
        for c in (0..ch).filter(|&c| c != channel) {
            assert_eq!(rec.ac(f, c), truth[rec.index[f] as usize * ch + c], "frame {f} channel {c}");
        }
    }
}

/// A `RhythmSpec` for `description` (only its backbone is read).
fn dummy_rhythm_spec() -> ephysd_drivers::spec::RhythmSpec {
    let keys = ephysd_drivers::DeviceKeys {
        backbone: "xdaq-one-stim".into(),
        frontpanel: "emulated".into(),
        emulator: "ports=A:2116 pace=free".into(),
        ..ephysd_drivers::DeviceKeys::default()
    };
    match ephysd_drivers::DeviceSpec::from_keys(&keys).unwrap() {
        ephysd_drivers::DeviceSpec::Rhythm(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn settle_and_recovery_windows_and_a_triphasic_pulse_show_in_the_flags() {
    let (_, _, mut board) = open(SPEC);
    // At 30 kS/s: settle from 100 µs (3 samples) before to 200 µs (6) after; recovery for
    // 300 µs (9) after.
    board.set_stim_options(StimOptions { amp_settle_us: Some((100, 200)), charge_recovery_us: Some(300) }).unwrap();
    let channel = 40; // the third chip (stream 2), its channel 8
    let p = pulse(channel, &[(100, 5.0), (100, -5.0), (100, 5.0)]);
    let (rec, result) = record_while(&mut board, 2000, |b| b.stimulate(&p));
    result.unwrap();
    let s = rec.streams;
    let on = frames_with(&rec.stim_on, s, 2, 8);
    let settle = frames_with(&rec.settle, s, 2, 8);
    let recovery = frames_with(&rec.recovery, s, 2, 8);
    let positive = frames_with(&rec.polarity, s, 2, 8);
    assert_eq!(on.len(), 9);
    assert_eq!(on[8] - on[0], 8);
    let pol: Vec<bool> = on.iter().map(|f| positive.contains(f)).collect();
    assert_eq!(pol, [true, true, true, false, false, false, true, true, true], "anodic, cathodic, anodic");
    // Settle: 3 frames before the pulse through 6 after it.
    assert_eq!(settle.first(), Some(&(on[0] - 3)));
    assert_eq!(settle.len(), 3 + 9 + 6);
    // Recovery: the 9 frames after the pulse.
    assert_eq!(recovery, (on[8] + 1..on[8] + 10).collect::<Vec<_>>());
    // Nothing else flagged.
    let total = |lane: &[u16]| lane.iter().map(|w| w.count_ones()).sum::<u32>();
    assert_eq!(total(&rec.stim_on), 9);
    assert_eq!(total(&rec.settle), 18);
    assert_eq!(total(&rec.recovery), 9);
}

#[test]
fn bad_pulses_and_bad_outputs_are_refused_naming_the_field() {
    let (_, _, mut board) = open(SPEC);
    let p = pulse(3, &[(100, -1.0), (100, 1.0)]);
    let e = board.stimulate(&p).unwrap_err();
    assert!(matches!(e, ControlError::NotStreaming { .. }), "{e}");
    let e = board.stimulate(&pulse(48, &[(100, 1.0)])).unwrap_err().to_string();
    assert!(e.starts_with("channel = 48") && e.contains("0..=47"), "{e}");
    let e = board.stimulate(&pulse(3, &[(100, 1.0), (100, 1.0)])).unwrap_err().to_string();
    assert!(e.starts_with("current_ua = ") && e.contains("alternating"), "{e}");
    let e = board.stimulate(&pulse(3, &[(10, 1.0)])).unwrap_err().to_string();
    assert!(e.starts_with("duration_us = 10") && e.contains("16.7 µs (one sample"), "{e}");
    let e = board.stimulate(&pulse(3, &[(100, 2000.0), (100, -2.0)])).unwrap_err().to_string();
    assert!(e.starts_with("current_ua = -2") && e.contains("step of 10 µA"), "{e}");
    let e = board.set_stim_options(StimOptions { amp_settle_us: Some((0, 200_000)), ..StimOptions::default() });
    assert!(e.unwrap_err().to_string().starts_with("amp_settle_after_us = 200000"));
    let e = board.set_analog_out(8, 0.0).unwrap_err().to_string();
    assert!(e.starts_with("output = 8") && e.contains("0..=7"), "{e}");
    for bad in [10.24, -10.25, f64::NAN, f64::INFINITY] {
        let e = board.set_analog_out(0, bad).unwrap_err().to_string();
        assert!(e.starts_with("volts = ") && e.contains("-10.24..=10.2396"), "{e}");
    }
    board.set_analog_out(0, 1.0).unwrap();
    let e = board.set_analog_out(1, 2.0).unwrap_err().to_string();
    assert!(e.starts_with("volts = 2") && e.contains("analog output 0"), "{e}");
    board.set_analog_out(1, 1.0).unwrap();
    let e = board.route_amplifier_to_dac(2, Some(48)).unwrap_err().to_string();
    assert!(e.starts_with("channel = 48"), "{e}");
    // Fast settle on an RHS board reprograms the chips through a running stream.
    let e = board.fast_settle(true).unwrap_err();
    assert!(matches!(e, ControlError::NotStreaming { .. }), "{e}");
    // The RHS firmware has no external (TTL) fast settle.
    let e = board.fast_settle_on_ttl(Some(3)).unwrap_err();
    assert!(matches!(e, ControlError::Unsupported { .. }) && e.to_string().contains("RHS"), "{e}");
}

#[test]
fn dac_levels_and_routed_amplifiers_reach_the_frames() {
    let (spec, emulated, mut board) = open(SPEC);
    board.set_analog_out(3, -2.5).unwrap();
    board.set_analog_out(6, -2.5).unwrap();
    board.route_amplifier_to_dac(5, Some(37)).unwrap();
    assert_eq!(board.analog_outputs()[5], Some(DacUse::Amplifier(37)));
    {
        let e = emulated.lock().unwrap();
        assert_eq!(e.dac_source(3), Some((8, 0)), "the manual stream");
        assert_eq!(e.dac_source(5), Some((4, 5)), "stream 4 (port C, MISO line 1), channel 5");
        assert_eq!(e.dac_source(0), None);
        assert_eq!(e.dac_settings(), (dac_code(-2.5), 0, 0));
    }
    let mut source = board.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let truth = signal(&spec, 1000);
    for _ in 0..5 {
        source.read_block(&mut block).unwrap();
        let x = source.extras();
        for f in 0..block.frames {
            let dac = &x.analog_out[f * 8..(f + 1) * 8];
            assert_eq!(dac[3], dac_code(-2.5));
            assert_eq!(dac[6], dac_code(-2.5));
            assert_eq!(dac[0], 0x8000, "disabled: 0 V");
            let i = block.frame_index[f] as usize;
            assert_eq!(dac[5], (truth[i * 48 + 37] as u16) ^ 0x8000, "the AC word of channel 37");
        }
    }
    drop(source);
    board.route_amplifier_to_dac(5, None).unwrap();
    assert_eq!(emulated.lock().unwrap().dac_source(5), None);
}

#[test]
fn fast_settle_holds_every_rhs_amplifier_at_baseline_until_released() {
    let (spec, emulated, mut board) = open(SPEC);
    let (rec, marks) = record_while(&mut board, 3000, |b| {
        b.fast_settle(true).unwrap();
        let on = emulated.lock().unwrap().rhs_chip_acting_register(0, 0, 10);
        b.wait_for_frames(1000, "hold").unwrap();
        b.fast_settle(false).unwrap();
        on
    });
    assert_eq!(marks, Some(0xffff));
    let ch = spec.amplifier_channels();
    let truth = signal(&spec, rec.index.last().copied().unwrap() as usize + 1);
    // A run of held frames (every channel at 0) of at least 1000, with the signal before and
    // after it.
    let held: Vec<bool> = (0..rec.frames()).map(|f| (0..ch).all(|c| rec.ac(f, c) == 0)).collect();
    let first = held.iter().position(|&h| h).expect("settled frames");
    let len = held[first..].iter().take_while(|&&h| h).count();
    assert!(len >= 1000, "{len} frames held");
    assert!(held[first + len..].iter().all(|&h| !h), "released");
    for f in (0..first).chain(first + len..rec.frames()) {
        for c in 0..ch {
            assert_eq!(rec.ac(f, c), truth[rec.index[f] as usize * ch + c], "frame {f} channel {c}");
        }
    }
    assert!(!board.fast_settle_on());
}

/// The same pulse on a board running in real time: the driver's waits count frames the
/// stream read, and the emulator applies each wire change at the sample it was made at.
#[test]
fn a_pulse_on_a_board_in_real_time_lasts_its_phases() {
    let text = SPEC.replace("pace=free", "pace=realtime");
    let (_, _, mut board) = open(&text);
    let p = pulse(3, &[(200, -1.0), (100, 2.0)]);
    let (rec, result) = record_while(&mut board, 3000, |b| b.stimulate(&p));
    result.unwrap();
    let on = frames_with(&rec.stim_on, rec.streams, 0, 3);
    assert_eq!(on.len(), 9, "{on:?}");
    assert_eq!(on[8] - on[0], 8);
    let positive = frames_with(&rec.polarity, rec.streams, 0, 3);
    assert_eq!(on.iter().filter(|f| positive.contains(f)).count(), 3);
    assert_eq!(rec.stim_on.iter().map(|w| w.count_ones()).sum::<u32>(), 9);
    // No frame lost on the way.
    assert!(rec.index.windows(2).all(|w| w[1] == w[0] + 1));
}

//! The analog outputs and the amplifiers' fast settle of the RHD boards, end to end against the
//! emulated board: a DAC level or a routed amplifier comes back on the analog input the
//! emulated board has cabled to that DAC (USB 3 boards), and fast settle holds every amplifier
//! at its baseline until it is released, or, on a TTL input, exactly while that input is high.
//! The USB 2 boards' DACs are refused.

mod common;

use std::sync::{Arc, Mutex};

use ephysd_drivers::emulator::{signal_config, EmulatorProvider, EmulatorSpec};
use ephysd_drivers::frontpanel::{FrontPanel, PanelProvider};
use ephysd_drivers::rhythm::board::outputs::dac_code;
use ephysd_drivers::rhythm::board::{bring_up, BoardSettings, RhythmBoard};
use ephysd_drivers::rhythm::Board;
use ephysd_drivers::sim::SimulatedSource;
use ephysd_drivers::{Control, ControlError, FrameBlock, Source};

const RATE: f64 = 20000.0;

fn open(board: Board, text: &str) -> (EmulatorSpec, RhythmBoard) {
    let spec: EmulatorSpec = text.parse().unwrap();
    let panel: Box<dyn FrontPanel> = EmulatorProvider::new(spec.clone()).open(None).unwrap();
    let settings = BoardSettings {
        board,
        name: text.into(),
        sample_rate_hz: RATE,
        frames_per_block: 128,
        bitfile: None,
        ports: 4,
        free_running: true,
    };
    (spec, bring_up(Arc::new(Mutex::new(panel)), settings).unwrap())
}

/// The emulator's simulated signal: amplifier and analog-input rows, frame by frame.
fn signal(spec: &EmulatorSpec, frames: usize) -> (Vec<i16>, Vec<u16>) {
    let mut s = SimulatedSource::new(signal_config(spec, RATE)).unwrap();
    let mut b = FrameBlock::new(s.layout());
    let (mut amp, mut ain) = (Vec::new(), Vec::new());
    while ain.len() < frames * 8 {
        s.read_block(&mut b).unwrap();
        amp.extend_from_slice(b.amplifier_filled());
        ain.extend_from_slice(&b.analog_in[..b.frames * 8]);
    }
    (amp, ain)
}

#[test]
fn a_dac_level_and_a_routed_amplifier_come_back_on_their_analog_inputs() {
    let (spec, mut board) = open(Board::RhdController, "board=rhd-controller pace=free ports=A:2132,B:2164");
    let ch = spec.amplifier_channels();
    assert_eq!(ch, 96);
    board.set_analog_out(2, -3.0).unwrap();
    board.set_analog_out(7, -3.0).unwrap();
    // Channel 70: the RHD2164's MISO B half (port B's streams are 2 and 3; 70 = 32 + 32 + 6).
    board.route_amplifier_to_dac(4, Some(70)).unwrap();
    let mut source = board.start_stream().unwrap();
    let mut block = FrameBlock::new(source.layout());
    let (amp, ain) = signal(&spec, 2000);
    for _ in 0..10 {
        source.read_block(&mut block).unwrap();
        for f in 0..block.frames {
            let i = block.frame_index[f] as usize;
            let got = &block.analog_in[f * 8..(f + 1) * 8];
            assert_eq!(got[2], dac_code(-3.0));
            assert_eq!(got[7], dac_code(-3.0));
            assert_eq!(got[4], (amp[i * ch + 70] as u16) ^ 0x8000, "frame {i}");
            for k in [0, 1, 3, 5, 6] {
                assert_eq!(got[k], ain[i * 8 + k], "analog input {k} keeps its signal");
            }
        }
    }
    // A new level while streaming reaches the input within the frames already queued.
    board.set_analog_out(2, 4.0).unwrap_err();
    board.route_amplifier_to_dac(7, None).unwrap();
    board.set_analog_out(2, 4.0).unwrap();
    let mut last = 0;
    for _ in 0..4 {
        source.read_block(&mut block).unwrap();
        last = block.analog_in[(block.frames - 1) * 8 + 2];
    }
    assert_eq!(last, dac_code(4.0));
    assert_eq!(board.description(&rhd_spec()).analog_out_channels, 8);
}

fn rhd_spec() -> ephysd_drivers::spec::RhythmSpec {
    let keys = ephysd_drivers::DeviceKeys {
        backbone: "intan-recording-controller-512".into(),
        frontpanel: "emulated".into(),
        emulator: "ports=A:2132 pace=free".into(),
        ..ephysd_drivers::DeviceKeys::default()
    };
    match ephysd_drivers::DeviceSpec::from_keys(&keys).unwrap() {
        ephysd_drivers::DeviceSpec::Rhythm(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn the_usb2_boards_dacs_are_refused() {
    let (_, mut board) = open(Board::RhdUsbInterface, "board=rhd-usb-interface pace=free ports=A:2132");
    let e = board.set_analog_out(0, 1.0).unwrap_err();
    assert!(matches!(e, ControlError::Unsupported { .. }) && e.to_string().contains("USB 2"), "{e}");
    assert_eq!(board.description(&rhd_spec()).analog_out_channels, 0);
}

#[test]
fn fast_settle_holds_every_rhd_amplifier_at_baseline_until_released() {
    for (board, text) in [
        (Board::RhdController, "board=rhd-controller pace=free ports=A:2164,C:2216 seed=4"),
        (Board::OpenEphys, "board=open-ephys pace=free ports=B:2132+2132 seed=4"),
    ] {
        let (spec, mut rhd) = open(board, text);
        let ch = spec.amplifier_channels();
        let mut source = rhd.start_stream().unwrap();
        let mut block = FrameBlock::new(source.layout());
        let (amp, _) = signal(&spec, 6000);
        let mut rows: Vec<(u64, bool)> = Vec::new();
        let mut read = |source: &mut dyn Source, blocks: usize, rows: &mut Vec<(u64, bool)>| {
            for _ in 0..blocks {
                source.read_block(&mut block).unwrap();
                for f in 0..block.frames {
                    let i = block.frame_index[f];
                    let row = &block.amplifier[f * ch..(f + 1) * ch];
                    let held = row.iter().all(|&x| x == 0);
                    if !held {
                        assert_eq!(row, &amp[i as usize * ch..(i as usize + 1) * ch], "{text}: frame {i}");
                    }
                    rows.push((i, held));
                }
            }
        };
        read(&mut source, 5, &mut rows);
        rhd.fast_settle(true).unwrap();
        assert!(rhd.fast_settle_on());
        read(&mut source, 15, &mut rows);
        rhd.fast_settle(false).unwrap();
        read(&mut source, 10, &mut rows);
        // One run of held frames: it starts within the FIFO's backlog and one pass of the
        // register list after the call, and ends as long after the release.
        let held: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| r.1).map(|(k, _)| k).collect();
        assert!(!held.is_empty(), "{text}");
        assert_eq!(held.last().unwrap() - held[0] + 1, held.len(), "{text}: one run");
        assert!(held[0] >= 5 * 128 && held[0] < 5 * 128 + 128 + 64 + 1, "{text}: {}", held[0]);
        assert!(held.len() > 15 * 128 - 256, "{text}: {}", held.len());
        assert!(*held.last().unwrap() < 20 * 128 + 128 + 64, "{text}: released");
    }
}

/// One frame as read: its index, its TTL-in word, and whether every amplifier was at baseline.
type Row = (u64, u16, bool);

/// Reads `blocks` blocks into `rows`, checking that every amplifier row not held is the signal.
fn read_rows(source: &mut dyn Source, blocks: usize, amp: &[i16], ch: usize, rows: &mut Vec<Row>) {
    let mut block = FrameBlock::new(source.layout());
    for _ in 0..blocks {
        source.read_block(&mut block).unwrap();
        for f in 0..block.frames {
            let i = block.frame_index[f];
            let row = &block.amplifier[f * ch..(f + 1) * ch];
            let held = row.iter().all(|&x| x == 0);
            if !held {
                assert_eq!(row, &amp[i as usize * ch..(i as usize + 1) * ch], "frame {i}");
            }
            rows.push((i, block.digital_in[f], held));
        }
    }
}

/// Frames of a call's effect that may have been produced before it (the FIFO's backlog).
const BACKLOG: usize = 256;

#[test]
fn a_ttl_input_holds_every_rhd_amplifier_at_baseline_exactly_while_it_is_high() {
    // TTL input 5 is high on frames 100..160 of every 300, input 2 on 0..50 of every 250.
    let ttl = "ttl-in=5:300:100+60,2:250:0+50";
    for (board, text) in [
        (Board::RhdController, format!("board=rhd-controller pace=free ports=A:2164,C:2216 seed=4 {ttl}")),
        (Board::OpenEphys, format!("board=open-ephys pace=free ports=B:2132+2132 seed=4 {ttl}")),
    ] {
        let (spec, mut rhd) = open(board, &text);
        let ch = spec.amplifier_channels();
        let e = rhd.fast_settle_on_ttl(Some(16)).unwrap_err();
        assert!(matches!(e, ControlError::OutOfRange { field: "input", .. }), "{e}");
        assert!(e.to_string().contains("input = 16") && e.to_string().contains("0..=15"), "{e}");
        let mut source = rhd.start_stream().unwrap();
        let (amp, _) = signal(&spec, 80 * 128);
        let mut rows: Vec<Row> = Vec::new();
        read_rows(&mut source, 5, &amp, ch, &mut rows);
        let on_at = rows.len();
        rhd.fast_settle_on_ttl(Some(5)).unwrap();
        assert_eq!(rhd.fast_settle_ttl_input(), Some(5));
        // The manual fast settle and the TTL one exclude each other.
        let e = rhd.fast_settle(true).unwrap_err();
        assert!(matches!(e, ControlError::Conflict { .. }) && e.to_string().contains("TTL input 5"), "{e}");
        read_rows(&mut source, 30, &amp, ch, &mut rows);
        let switch_at = rows.len();
        rhd.fast_settle_on_ttl(Some(2)).unwrap();
        read_rows(&mut source, 30, &amp, ch, &mut rows);
        let off_at = rows.len();
        rhd.fast_settle_on_ttl(None).unwrap();
        assert_eq!(rhd.fast_settle_ttl_input(), None);
        read_rows(&mut source, 10, &amp, ch, &mut rows);
        drop(source);

        let high = |k: usize, line: u32| rows[k].1 & (1 << line) != 0;
        assert!(rows.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{text}: no frame lost");
        // The TTL-in words carry the spec's lines.
        for (i, word, _) in &rows {
            assert_eq!(word & (1 << 5) != 0, (100..160).contains(&(i % 300)), "{text}: frame {i}");
            assert_eq!(word & (1 << 2) != 0, i % 250 < 50, "{text}: frame {i}");
        }
        assert!(rows[..on_at].iter().all(|r| !r.2), "{text}: nothing held before");
        // Input 5: from the first rising edge the firmware saw on, held exactly while high;
        // before it, only whole pulses (the firmware acts on edges), never a low frame.
        let rise = (on_at + BACKLOG..switch_at).find(|&k| high(k, 5) && !high(k - 1, 5)).unwrap();
        for (k, (i, _, held)) in rows.iter().enumerate().take(rise).skip(on_at) {
            assert!(!held || high(k, 5), "{text}: frame {i} held while input 5 is low");
        }
        let mut pulses = 0;
        for (k, (i, _, held)) in rows.iter().enumerate().take(switch_at).skip(rise) {
            assert_eq!(*held, high(k, 5), "{text}: frame {i} on input 5");
            pulses += usize::from(high(k, 5) && !high(k - 1, 5));
        }
        assert!(pulses >= 10, "{text}: {pulses} pulses");
        // Input 2 once the switch has reached the firmware: exactly its high frames.
        for (k, (i, _, held)) in rows.iter().enumerate().take(off_at).skip(switch_at + BACKLOG) {
            assert_eq!(*held, high(k, 2), "{text}: frame {i} on input 2");
        }
        assert!((switch_at + BACKLOG..off_at).filter(|&k| rows[k].2).count() >= 10 * 50, "{text}");
        // Off: within the backlog and one pass of the register list, nothing is held.
        assert!(rows[off_at + BACKLOG + 64..].iter().all(|r| !r.2), "{text}: released");
        // The manual fast settle works again.
        rhd.fast_settle(true).unwrap();
        rhd.fast_settle(false).unwrap();
    }
}

//! Electrode impedance, measured as Intan's software measures it (Intan-RHX
//! `Engine/Processing/impedancereader.cpp`, pyxdaq `impedance.py`).
//!
//! Each RHD chip has an impedance-check circuit: a DAC (register 6) whose voltage drives a
//! test current through a small capacitor (0.1, 1 or 10 pF, register 5 bits 4:3) into the
//! amplifier that register 7 selects. The voltage that current develops across the electrode
//! is read back through that amplifier's own samples:
//!
//! 1. the test frequency: a whole number of samples per period (`round(fs / f)`, 4 to 1024),
//!    so `f ≤ fs/4`; [`test_frequency`];
//! 2. aux slot 1 (the first, index 0), bank 1: one `WRITE(6, v)` per sample for one period of the sine,
//!    `v = round(128 sin(2π i / period) + 128)`, looping; aux slot 3, bank 3: the register
//!    list with the check on (DAC powered, the scale's capacitor, amplifier `select`);
//! 3. for each capacitor and each `select` (0–31, and 32–63 when an RHD2164's MISO B
//!    amplifiers are there), one bounded run of `128 × max(2, ⌈(periods + 2) · period / 128⌉)`
//!    frames with `periods = max(5, round(0.020 f))`; every chip measures its amplifier
//!    `select` at once. The 10 pF and 1 pF runs come first; a 0.1 pF run is made only for a
//!    `select` where some channel's 1 pF reading saturated, as its reading is used nowhere
//!    else (RHX runs all three);
//! 4. per channel and capacitor, the amplitude and phase of the test frequency over the last
//!    `periods` whole periods of the run: `I = mean(v cos Kt)`, `Q = mean(−v sin Kt)`,
//!    `K = 2π f / fs`, `|V| = 2 √(I² + Q²)`, `φ = atan2(Q, I)` (relative to the test current,
//!    the DAC sine's derivative);
//! 5. the capacitor whose reading is largest but below the amplifier's saturation voltage
//!    (and not 10 pF when the 1 pF reading is more than a fifth of it: the 10 pF one then
//!    saturated); `|Z| = |V| / (2π f · 0.6125 V · C)`;
//! 6. the phase advanced by `360° × 3 / period`: a DAC code reaches the electrode
//!    [`DAC_LATENCY_SAMPLES`] = 3 samples after the frame whose aux command wrote it (RHX adds
//!    the same; pyxdaq drops the first 3 samples instead; the emulated chips have the same
//!    latency), while the window's reference sine is the DAC list's, which starts with the
//!    run;
//! 7. the input's 15 pF shunt to ground factored out of the parallel combination.
//!
//! RHX also multiplies `|Z|` by `18 (f/fs)² + 1`, an empirical correction for the
//! amplifier's and ADC's bandwidth on real chips. It is not applied here: the emulated chips
//! (the only chips this driver has been measured against) model no amplifier bandwidth, and
//! the factor would bias every reading by 2 % at `f = fs/30`.
//!
//! Afterwards the streaming configuration is restored (aux slot 1 on its bank 0 list, aux
//! slot 3 on the streaming bank, continuous runs) and one pass of the streaming register list
//! is run, which switches the check off and puts the DAC back at mid-scale before any frame
//! reaches a stream.

use std::f64::consts::TAU;
use std::time::{Duration, Instant};

use super::bringup::{self, PanelResult, BANK_STREAMING, CONFIG_SLOT, HARDWARE_TIMEOUT};
use super::commands::{self, REGISTER_CONFIG_LEN};
use super::{lock, panel_error, RhythmBoard};
use crate::control::{ControlError, Impedance};
use crate::device::DeviceError;
use crate::frame::{BlockLayout, FrameBlock, AMPLIFIER_UV_PER_UNIT};
use crate::frontpanel::FrontPanel;
use crate::rhythm::endpoints::{self as ep, Interface};
use crate::rhythm::rhd::{self, RhdCommand};
use crate::rhythm::{decode, FrameFormat, ANALOG_INPUTS};

/// The test frequency asked for when none is given: 1 kHz, at which electrode impedances are
/// conventionally quoted.
pub const DEFAULT_FREQUENCY_HZ: f64 = 1000.0;
/// Samples between the frame whose aux command writes a DAC code and the first amplifier
/// sample carrying its effect (RHX `measureComplexAmplitude`'s phase correction).
pub const DAC_LATENCY_SAMPLES: usize = 3;
/// The DAC sine's amplitude: 128 codes of 1.225 V / 256.
pub const DAC_AMPLITUDE_V: f64 = 128.0 * 1.225 / 256.0;
/// The amplifier input's capacitance to ground, in parallel with the electrode (RHX
/// `factorOutParallelCapacitance`, RHD chips).
pub const SHUNT_CAPACITANCE_F: f64 = 15e-12;
/// The test capacitors from the smallest: register 5 bits 4:3 and the capacitance.
pub const TEST_CAPACITORS: [(u8, f64); 3] = [(0, 0.1e-12), (1, 1e-12), (3, 10e-12)];
/// Readings at or above this are saturated (below a fifth of the upper bandwidth), µV.
pub const SATURATION_UV: f64 = 5000.0;
/// The amplifiers' upper bandwidth the saturation voltage is figured for, Hz (pyxdaq's
/// default; the driver leaves the chips at their widest setting).
const UPPER_BANDWIDTH_HZ: f64 = 7500.0;

/// Aux slot (0-based) and bank of the DAC waveform.
const DAC_SLOT: usize = 0;
const DAC_BANK: u32 = 1;
/// Bank of aux slot 3 holding the register list with the check on.
const ZCHECK_BANK: u32 = 3;
/// Register 5 bits: check enabled, DAC powered; the capacitor goes in bits 4:3.
const ZCHECK_ENABLE: u8 = 0x01;
const ZCHECK_DAC_POWER: u8 = 0x40;
/// Index in the register list of `WRITE(r, …)` for register `r` (after two dummies).
const REGISTER_WRITES_AT: usize = 2;
/// Frames of the run that puts the streaming registers back: one pass of the list and more.
const RESTORE_FRAMES: usize = 2 * REGISTER_CONFIG_LEN;

/// A test frequency the board can play: a whole number of samples per period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestFrequency {
    /// Samples per period of the sine.
    pub period: usize,
    /// `fs / period`, Hz.
    pub hz: f64,
}

/// The playable frequency closest to `wanted_hz` at `rate_hz`: `round(fs / f)` samples per
/// period, at least 4 (`f ≤ fs/4`) and at most 1024 (the command RAM of a bank).
pub fn test_frequency(rate_hz: f64, wanted_hz: f64) -> TestFrequency {
    let period = (rate_hz / wanted_hz).round().clamp(4.0, ep::COMMANDS_PER_BANK as f64) as usize;
    TestFrequency { period, hz: rate_hz / period as f64 }
}

/// The run of one (capacitor, select) step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPlan {
    pub frequency: TestFrequency,
    /// Whole periods the amplitude is measured over.
    pub periods: usize,
    /// Frames of the run: a multiple of 128 covering two more periods than measured.
    pub frames: usize,
}

impl RunPlan {
    pub fn new(frequency: TestFrequency) -> RunPlan {
        let periods = ((0.020 * frequency.hz).round() as usize).max(5);
        let blocks = ((periods + 2) * frequency.period).div_ceil(128).max(2);
        RunPlan { frequency, periods, frames: 128 * blocks }
    }

    /// The first frame of the measured window: whole periods from the run's start, as late
    /// as the run allows (the settling at the start stays outside).
    pub fn window_start(&self) -> usize {
        (self.frames - self.periods * self.frequency.period) / self.frequency.period * self.frequency.period
    }
}

/// One period of the DAC sine: `WRITE(6, v)` per sample.
pub fn dac_list(period: usize) -> Vec<u16> {
    (0..period)
        .map(|i| {
            let v = (128.0 * (TAU * i as f64 / period as f64).sin() + 128.0 + 0.5).floor().clamp(0.0, 255.0);
            RhdCommand::Write { register: 6, value: v as u8 }.word()
        })
        .collect()
}

/// Register 5 with the check on through test capacitor `scale` (bits 4:3).
fn zcheck_register(scale: u8) -> u8 {
    ZCHECK_DAC_POWER | (scale << 3) | ZCHECK_ENABLE
}

/// The register list of the streaming bank with the check on (capacitor `scale`, amplifier
/// `select`); the DAC register's write becomes a dummy, as the DAC list owns it.
pub fn zcheck_register_list(rate_hz: f64, scale: u8, select: u8) -> Vec<u16> {
    let mut list = commands::register_config(rate_hz, false);
    list[REGISTER_WRITES_AT + 5] = RhdCommand::Write { register: 5, value: zcheck_register(scale) }.word();
    list[REGISTER_WRITES_AT + 6] = RhdCommand::Read { register: rhd::REG_CHIP_ID }.word();
    list[REGISTER_WRITES_AT + 7] = RhdCommand::Write { register: 7, value: select }.word();
    list
}

/// Amplitude (µV) and phase (degrees, relative to the test current) of the test frequency in
/// `samples` (amplifier units, one per frame of the run), over `plan`'s window.
pub fn complex_amplitude(samples: impl Fn(usize) -> i16, plan: &RunPlan) -> (f64, f64) {
    let period = plan.frequency.period;
    let start = plan.window_start();
    let n = plan.periods * period;
    let (mut i_sum, mut q_sum) = (0.0, 0.0);
    for t in start..start + n {
        let v = f64::from(samples(t)) * AMPLIFIER_UV_PER_UNIT;
        let angle = TAU * (t % period) as f64 / period as f64;
        i_sum += v * angle.cos();
        q_sum -= v * angle.sin();
    }
    let (i, q) = (i_sum / n as f64, q_sum / n as f64);
    (2.0 * i.hypot(q), q.atan2(i).to_degrees())
}

/// The amplifier's saturation voltage at `frequency_hz`, µV (RHX
/// `approximateSaturationVoltage`).
pub fn saturation_uv(frequency_hz: f64) -> f64 {
    if frequency_hz < 0.2 * UPPER_BANDWIDTH_HZ {
        SATURATION_UV
    } else {
        SATURATION_UV / (1.0 + (3.3333 * frequency_hz / UPPER_BANDWIDTH_HZ).powi(4)).sqrt()
    }
}

/// The impedance from one channel's readings through each of [`TEST_CAPACITORS`] (|V| µV,
/// phase degrees): the capacitor chosen, the magnitude from the test current, the phase
/// latency corrected, the shunt factored out. Returns (|Z| ohms, phase degrees).
pub fn impedance_from_readings(readings: &[(f64, f64); 3], plan: &RunPlan) -> (f64, f64) {
    let f = plan.frequency.hz;
    let saturation = saturation_uv(f);
    let mut best = (0..3).rev().find(|&k| readings[k].0 < saturation).unwrap_or(0);
    if best == 2 && readings[1].0 / readings[2].0 > 0.2 {
        best = 1;
    }
    let (volts_uv, phase) = readings[best];
    let current = TAU * f * DAC_AMPLITUDE_V * TEST_CAPACITORS[best].1;
    let magnitude = 1e-6 * volts_uv / current;
    let phase = (phase + 360.0 * DAC_LATENCY_SAMPLES as f64 / plan.frequency.period as f64).to_radians();
    // Z measured = Z ∥ 1/(jωCp): Z = 1 / (1/Z measured − jωCp).
    let (r, x) = (magnitude * phase.cos(), magnitude * phase.sin());
    let c = TAU * f * SHUNT_CAPACITANCE_F;
    let cx = c * (r * r + x * x);
    let den = c * cx + 2.0 * c * x + 1.0;
    let (r, x) = (r / den, (x + cx) / den);
    (r.hypot(x), x.atan2(r).to_degrees())
}

/// Measures every amplifier channel's electrode at the playable frequency closest to
/// `wanted_hz`. The board must not be streaming.
pub(super) fn measure(board: &mut RhythmBoard, wanted_hz: f64) -> Result<Vec<Impedance>, ControlError> {
    // A RhythmSource holds a reference to the board's panel for as long as it lives; the
    // board holds the only other one.
    if std::sync::Arc::strong_count(&board.panel) > 1 {
        return Err(ControlError::Streaming { device: board.settings.name.clone(), what: "measure impedance" });
    }
    let plan = RunPlan::new(test_frequency(board.settings.sample_rate_hz, wanted_hz));
    let measured = run_steps(board, &plan);
    let restored = restore(board);
    let readings = measured?;
    restored?;
    Ok(readings
        .iter()
        .enumerate()
        .map(|(channel, r)| {
            let (magnitude_ohms, phase_degrees) = impedance_from_readings(r, &plan);
            Impedance { channel, magnitude_ohms, phase_degrees }
        })
        .collect())
}

fn io(board: &RhythmBoard) -> impl Fn(crate::frontpanel::FrontPanelError) -> ControlError + '_ {
    |e| ControlError::Device(panel_error(&board.settings.name, "measure impedance", e))
}

/// Writes `word` at `address` of aux slot `slot`'s bank `bank`.
fn write_command(
    p: &mut dyn FrontPanel,
    interface: Interface,
    slot: usize,
    bank: u32,
    address: usize,
    word: u16,
) -> PanelResult<()> {
    let (trigger, bit) = interface.ram_write_trigger(slot);
    p.set_wire_in(ep::WIRE_IN_CMD_RAM_DATA, u32::from(word), u32::MAX)?;
    p.set_wire_in(ep::WIRE_IN_CMD_RAM_ADDR, address as u32, u32::MAX)?;
    p.set_wire_in(ep::WIRE_IN_CMD_RAM_BANK, bank, u32::MAX)?;
    p.update_wire_ins()?;
    p.activate_trigger_in(trigger, bit)
}

/// Empties the FIFO and leaves continuous mode, so the next run is a bounded one.
fn quiet(p: &mut dyn FrontPanel, interface: Interface) -> PanelResult<()> {
    super::stream::flush(p, interface)?;
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::CONTINUOUS_RUN_BIT)?;
    p.update_wire_ins()
}

/// Runs the sequencer for the run length set (`frames`) and reads its frames into `bytes`.
fn run_once(board: &RhythmBoard, frames: usize, bytes: &mut [u8]) -> Result<(), ControlError> {
    let io = io(board);
    let started = Instant::now();
    lock(&board.panel).activate_trigger_in(ep::TRIGGER_IN_SPI_START, 0).map_err(&io)?;
    // The run's own length, then the hardware timeout.
    let deadline = started + Duration::from_secs_f64(frames as f64 / board.settings.sample_rate_hz) + HARDWARE_TIMEOUT;
    let finished = loop {
        let done = bringup::wait_for(&board.panel, ep::WIRE_OUT_SPI_RUNNING, |v| v & 1 == 0).map_err(&io)?;
        if done || Instant::now() >= deadline {
            break done;
        }
    };
    let mut p = lock(&board.panel);
    let have = bringup::fifo_words(&mut **p, board.interface).map_err(&io)?;
    if !finished || have < (bytes.len() / 2) as u64 {
        return Err(ControlError::Device(DeviceError::Stalled {
            device: board.settings.name.clone(),
            waited_ms: started.elapsed().as_millis() as u64,
        }));
    }
    p.read_pipe_out(ep::PIPE_OUT_DATA, board.interface.pipe_block_size(), bytes).map_err(&io)?;
    Ok(())
}

/// Every (capacitor, select) run; per channel, the reading through each capacitor.
fn run_steps(board: &RhythmBoard, plan: &RunPlan) -> Result<Vec<[(f64, f64); 3]>, ControlError> {
    let io = io(board);
    let interface = board.interface;
    let rate = board.settings.sample_rate_hz;
    let format = FrameFormat::new(board.settings.board, board.streams.len()).map_err(|e| {
        ControlError::Device(DeviceError::Io {
            device: board.settings.name.clone(),
            operation: "measure impedance",
            source: std::io::Error::other(e),
        })
    })?;
    {
        let mut p = lock(&board.panel);
        let p = &mut **p;
        (|| {
            quiet(p, interface)?;
            bringup::set_run_length(p, interface, plan.frames as u32)?;
            let dac = dac_list(plan.frequency.period);
            bringup::upload(p, interface, DAC_SLOT, DAC_BANK, &dac)?;
            bringup::select_length(p, interface, DAC_SLOT, 0, dac.len() as u32 - 1)?;
            bringup::select_bank(p, DAC_SLOT, DAC_BANK)?;
            bringup::upload(p, interface, CONFIG_SLOT, ZCHECK_BANK, &zcheck_register_list(rate, 0, 0))?;
            bringup::select_bank(p, CONFIG_SLOT, ZCHECK_BANK)
        })()
        .map_err(&io)?;
    }
    let streams = &board.streams;
    // Output channel of each stream's first kept word.
    let first: Vec<usize> = streams
        .iter()
        .scan(0, |at, s| {
            let here = *at;
            *at += s.channels;
            Some(here)
        })
        .collect();
    let selects = streams.iter().map(|s| if s.ddr { 32 + s.channels } else { s.channels }).max().unwrap_or(0);
    let mut readings = vec![[(0.0, 0.0); 3]; board.amplifier_channels()];
    let mut bytes = vec![0u8; plan.frames * format.bytes_per_frame()];
    let mut block = FrameBlock::new(BlockLayout {
        amplifier_channels: format.amplifier_channels(),
        aux_channels: 0,
        analog_in_channels: ANALOG_INPUTS,
        frames_per_block: plan.frames,
    });
    let width = format.amplifier_channels();
    // The channels each select measures: (output channel, amplifier word in the frame).
    let measured: Vec<Vec<(usize, usize)>> = (0..selects)
        .map(|select| {
            streams
                .iter()
                .enumerate()
                .filter_map(|(s, stream)| {
                    // An RHD2164's MISO B stream carries amplifiers 32–63 of its chip.
                    let c = if stream.ddr { select.checked_sub(32)? } else { select };
                    (c < stream.channels).then_some((first[s] + c, s * 32 + c))
                })
                .collect()
        })
        .collect();
    let saturation = saturation_uv(plan.frequency.hz);
    // 10 pF and 1 pF for every select; 0.1 pF only where a 1 pF reading saturated, the one
    // case its reading is used.
    let steps = [2, 1, 0].into_iter().flat_map(|k| (0..selects).map(move |select| (k, select)));
    for (k, select) in steps {
        if k == 0 && measured[select].iter().all(|&(channel, _)| readings[channel][1].0 < saturation) {
            continue;
        }
        {
            let mut p = lock(&board.panel);
            let p = &mut **p;
            let r5 = RhdCommand::Write { register: 5, value: zcheck_register(TEST_CAPACITORS[k].0) }.word();
            let r7 = RhdCommand::Write { register: 7, value: select as u8 }.word();
            write_command(p, interface, CONFIG_SLOT, ZCHECK_BANK, REGISTER_WRITES_AT + 5, r5)
                .and_then(|_| write_command(p, interface, CONFIG_SLOT, ZCHECK_BANK, REGISTER_WRITES_AT + 7, r7))
                .map_err(&io)?;
        }
        run_once(board, plan.frames, &mut bytes)?;
        decode(&format, &bytes, &mut block, None).map_err(|e| {
            ControlError::Device(DeviceError::Io {
                device: board.settings.name.clone(),
                operation: "measure impedance",
                source: std::io::Error::other(e),
            })
        })?;
        for &(channel, word) in &measured[select] {
            readings[channel][k] = complex_amplitude(|t| block.amplifier[t * width + word], plan);
        }
    }
    Ok(readings)
}

/// The streaming configuration as bring-up leaves it, and the chips' registers with it.
fn restore(board: &RhythmBoard) -> Result<(), ControlError> {
    let io = io(board);
    let interface = board.interface;
    let aux_inputs = commands::aux_inputs().len() as u32;
    let format = FrameFormat::new(board.settings.board, board.streams.len()).ok();
    {
        let mut p = lock(&board.panel);
        let p = &mut **p;
        (|| {
            quiet(p, interface)?;
            bringup::select_length(p, interface, DAC_SLOT, 0, aux_inputs - 1)?;
            bringup::select_bank(p, DAC_SLOT, 0)?;
            bringup::select_bank(p, CONFIG_SLOT, BANK_STREAMING)?;
            bringup::set_run_length(p, interface, RESTORE_FRAMES as u32)
        })()
        .map_err(&io)?;
    }
    // One pass of the streaming register list: the check off, the DAC at mid-scale.
    if let Some(format) = format {
        let mut bytes = vec![0u8; RESTORE_FRAMES * format.bytes_per_frame()];
        run_once(board, RESTORE_FRAMES, &mut bytes)?;
    }
    let mut p = lock(&board.panel);
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::CONTINUOUS_RUN_BIT, ep::CONTINUOUS_RUN_BIT)
        .and_then(|_| p.update_wire_ins())
        .map_err(&io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_covers_two_periods_more_than_it_measures_in_whole_usb_blocks() {
        let plan = RunPlan::new(test_frequency(30000.0, 1000.0));
        assert_eq!((plan.frequency.period, plan.periods, plan.frames, plan.window_start()), (30, 20, 768, 150));
        let plan = RunPlan::new(test_frequency(1000.0, 1000.0));
        assert_eq!((plan.frequency.period, plan.frequency.hz, plan.periods, plan.frames), (4, 250.0, 5, 256));
        assert_eq!(test_frequency(30000.0, 1.0).period, 1024);
    }

    #[test]
    fn the_dac_list_is_one_period_of_the_sine_around_mid_scale() {
        let value = |w: u16| w as u8;
        let list = dac_list(4);
        assert_eq!(list.iter().map(|&w| value(w)).collect::<Vec<_>>(), [128, 255, 128, 0]);
        assert!(list.iter().all(|&w| w >> 8 == 0x86), "WRITE(6, …)");
        let list = dac_list(30);
        assert_eq!(value(list[0]), 128);
        assert_eq!(value(list[15]), 128);
        let mean = list.iter().map(|&w| f64::from(value(w))).sum::<f64>() / 30.0;
        assert!((mean - 128.0).abs() < 0.1, "{mean}");
    }

    #[test]
    fn the_register_list_turns_the_check_on_and_leaves_the_dac_to_its_list() {
        let list = zcheck_register_list(30000.0, 3, 45);
        assert_eq!(list[REGISTER_WRITES_AT + 5], RhdCommand::Write { register: 5, value: 0x59 }.word());
        assert_eq!(list[REGISTER_WRITES_AT + 7], RhdCommand::Write { register: 7, value: 45 }.word());
        assert!(list.iter().all(|&w| !matches!(RhdCommand::from_word(w), Some(RhdCommand::Write { register: 6, .. }))));
        assert_eq!(list.len(), REGISTER_CONFIG_LEN);
    }

    /// The readings an electrode of `r` + `x` ohms gives through each capacitor: the
    /// electrode in parallel with the shunt, the phase late by the DAC latency, the
    /// saturated ones at 6 mV.
    fn readings_of(r: f64, x: f64, plan: &RunPlan) -> [(f64, f64); 3] {
        let w = TAU * plan.frequency.hz;
        let d = r * r + x * x;
        let (g, b) = (r / d, -x / d + w * SHUNT_CAPACITANCE_F);
        let (nr, nx) = (g / (g * g + b * b), -b / (g * g + b * b));
        let late = 360.0 * DAC_LATENCY_SAMPLES as f64 / plan.frequency.period as f64;
        TEST_CAPACITORS.map(|(_, c)| {
            let v = w * DAC_AMPLITUDE_V * c * nr.hypot(nx) * 1e6;
            (v.min(6000.0), nx.atan2(nr).to_degrees() - late)
        })
    }

    #[test]
    fn the_impedance_comes_from_the_largest_unsaturated_capacitor_without_the_shunt() {
        let plan = RunPlan::new(test_frequency(30000.0, 1000.0));
        for (r, x) in [(90e3, -50e3), (300e3, -400e3), (1.5e6, -1.2e6), (50e6, -300e6)] {
            let (magnitude, phase) = impedance_from_readings(&readings_of(r, x, &plan), &plan);
            assert!((magnitude / r.hypot(x) - 1.0).abs() < 1e-9, "{r} {x}: {magnitude}");
            assert!((phase - x.atan2(r).to_degrees()).abs() < 1e-6, "{r} {x}: {phase}");
        }
        // A 10 pF reading under the limit is not taken when the 1 pF one is more than a fifth
        // of it (the 10 pF one saturated into a smaller reading).
        let readings = [(40.0, -60.0), (400.0, -60.0), (1500.0, -10.0)];
        let (magnitude, _) = impedance_from_readings(&readings, &plan);
        let through_1pf = 1e-6 * 400.0 / (TAU * 1000.0 * DAC_AMPLITUDE_V * 1e-12);
        assert!((magnitude / through_1pf - 1.0).abs() < 0.1, "{magnitude} {through_1pf}");
    }

    #[test]
    fn the_saturation_voltage_falls_above_a_fifth_of_the_bandwidth() {
        assert_eq!(saturation_uv(1000.0), 5000.0);
        assert!(saturation_uv(2000.0) < 5000.0 && saturation_uv(4000.0) < saturation_uv(2000.0));
    }
}

//! A model of one RHS2116 chip as its SPI port sees it: a register file with the ROM that
//! identifies it, amplifiers that sample the simulated electrodes, and the current stimulators
//! that drive those electrodes.
//!
//! Each call answers one 32-bit command (see [`rhs`]) with the 32-bit result; the FPGA model
//! places the results in frames.
//!
//! * `CONVERT(c)`, `c` < 16: the AC amplifier's word is the simulated electrode's sample
//!   (offset binary, or two's complement when register 1 bit 6 asks for it: RHX
//!   `getRHSRegisterValue`, `twosComp << 6`), 0.195 µV per unit as on RHD chips, plus the
//!   voltage stimulation leaves on the electrode (below), clipped at ±[`AMPLIFIER_LIMIT_UV`]
//!   as the RHD model clips. The DC amplifier's word is derived from the same voltage with
//!   RHX's scale for DC amplifier codes (`rhxdatareader.cpp`: `−0.01923 V × (code − 512)`):
//!   `round(512 − v / 0.01923 V)`, clamped to its 10 bits; the simulated signal alone is far
//!   inside one 19.23 mV step, so at rest the word is 512 (0 V). The result packs the DC word
//!   in the low half and the AC word in the high half, the order the USB frame carries them in
//!   (DC word first, little endian). Channels 16–63 are no amplifier: 0.
//! * `READ(r)`: the register in the low half, zeros above.
//! * `WRITE(r, d)`: all ones above; the low half echoes `d`, as RHD2000 chips echo a write
//!   (the sources establish only the all-ones upper half for the RHS2116). RAM registers
//!   ([`rhs::is_ram_register`]) keep what is written, except the read-only 40 (compliance
//!   monitor) and 50 (fault-current detector), which stay 0. Writes elsewhere, the ROM
//!   included, change nothing.
//! * `CALIBRATE`, `CLEAR` and words that are no command: 0.
//! * The triggered registers ([`rhs::is_triggered_register`]: fast settle, lower-cutoff
//!   select, stimulation on, polarity, the charge-recovery switches and the 32 current
//!   registers) act with the value they held when the last command carrying the `u` flag
//!   arrived (RHX sets `u` on the last write of its stimulation list; the FPGA on its
//!   charge-recovery write every sample in stimulation command mode).
//!
//! ## Stimulation
//!
//! With registers 32 and 33 holding their enabling values ([`rhs::STIM_ENABLE_A`],
//! [`rhs::STIM_ENABLE_B`]), registers 34 and 35 one of Intan's steps ([`rhs::STIM_STEPS`]; any
//! other setting drives no current) and channel `c`'s stimulation-on bit set, the channel
//! drives `step × magnitude` into its electrode: the positive register's magnitude (96 + c)
//! with its polarity bit set, the negative one's (64 + c) without. The trim byte is stored,
//! not applied. The electrode is the series resistance and double-layer capacitance of
//! [`super::chip::Electrode`]: a conversion reads `I·R + V_dl`, and after each sample's
//! commands the double layer charges by `I·Δt/C`. While a channel's charge-recovery switch
//! (46) or current-limited recovery (48) is on and no current flows, the double layer
//! discharges through the electrode, `V_dl ← V_dl·exp(−Δt/RC)` (the limit current and target
//! voltage of registers 36 and 37 are stored, not applied). The charge stays on the double
//! layer otherwise; the AC path's high-pass corners (registers 4–7, 1) are not modeled.
//!
//! ## Amplifier settle
//!
//! Register 10 (fast settle) holds channel `c`'s AC output at its baseline (0) while its bit
//! acts; the DC word is not held. Register 12 (lower-cutoff select) is stored, not applied.
//!
//! Not modeled: the compliance monitor and fault-current detector (they read 0), the DC
//! amplifiers' power switches, the on-chip DSP high-pass, amplifier bandwidth, the impedance
//! check, and the power-on values of the RAM registers (the model starts them at 0). The ROM's
//! die revision (register 254, high byte) is not given by the sources; the model reports 0.

use super::chip::{Electrode, AMPLIFIER_LIMIT_UV};
use crate::frame::AMPLIFIER_UV_PER_UNIT;
use crate::rhythm::rhs::{self, RhsChip, RhsCommand, StimStep};

/// Volts per DC amplifier code step (RHX `rhxdatareader.cpp`: `−0.01923 × (code − 512)`).
pub const DC_VOLTS_PER_CODE: f64 = 0.01923;
/// The DC amplifier code of 0 V.
pub const DC_ZERO_CODE: u16 = 512;
/// The die revision the model's ROM reports (register 254, high byte).
pub const DIE_REVISION: u8 = 0;

/// One RHS2116 on one MISO line.
#[derive(Debug, Clone)]
pub struct RhsChipModel {
    chip: RhsChip,
    registers: [u16; 256],
    /// The triggered registers as they act: `registers` as they were at the last `u` flag.
    acting: [u16; 256],
    /// Index of the chip's first amplifier among the simulated electrodes.
    first_channel: usize,
    /// The electrode of each amplifier (empty: no electrodes, stimulation drives nothing).
    electrodes: Vec<Electrode>,
    /// The voltage on each electrode's double layer, volts.
    double_layer: [f64; 16],
}

impl RhsChipModel {
    pub fn new(chip: RhsChip, first_channel: usize) -> RhsChipModel {
        let mut registers = [0u16; 256];
        for (&r, &w) in rhs::REG_COMPANY.iter().zip(&rhs::ROM_COMPANY) {
            registers[usize::from(r)] = w;
        }
        registers[usize::from(rhs::REG_DIE_AND_AMPLIFIERS)] =
            u16::from_be_bytes([DIE_REVISION, chip.amplifiers() as u8]);
        registers[usize::from(rhs::REG_CHIP_ID)] = chip.chip_id();
        RhsChipModel {
            chip,
            registers,
            acting: registers,
            first_channel,
            electrodes: Vec::new(),
            double_layer: [0.0; 16],
        }
    }

    /// The chip with `electrodes` on its amplifier inputs (channel order).
    pub fn with_electrodes(mut self, electrodes: Vec<Electrode>) -> RhsChipModel {
        self.electrodes = electrodes;
        self
    }

    /// A triggered register as it acts (its value at the last `u` flag).
    pub fn acting_register(&self, r: u8) -> u16 {
        self.acting[usize::from(r)]
    }

    /// The current channel `c` drives into its electrode now, amperes (positive: anodic).
    pub fn stim_current(&self, c: usize) -> f64 {
        let enabled = self.registers[usize::from(rhs::REG_STIM_ENABLE_A)] == rhs::STIM_ENABLE_A
            && self.registers[usize::from(rhs::REG_STIM_ENABLE_B)] == rhs::STIM_ENABLE_B;
        let bit = 1u16 << c;
        if !enabled || self.acting[usize::from(rhs::REG_STIM_ON)] & bit == 0 {
            return 0.0;
        }
        let Some(step) = StimStep::from_registers(
            self.registers[usize::from(rhs::REG_STIM_STEP)],
            self.registers[usize::from(rhs::REG_STIM_BIAS)],
        ) else {
            return 0.0;
        };
        let amps =
            |register: u8| f64::from(self.acting[usize::from(register) + c] & 0xff) * f64::from(step.nanoamps) * 1e-9;
        if self.acting[usize::from(rhs::REG_STIM_POLARITY)] & bit != 0 {
            amps(rhs::REG_POS_CURRENT)
        } else {
            -amps(rhs::REG_NEG_CURRENT)
        }
    }

    /// The voltage stimulation puts on channel `c`'s amplifier input now, volts: `I·R + V_dl`.
    pub fn electrode_volts(&self, c: usize) -> f64 {
        let Some(e) = self.electrodes.get(c) else { return 0.0 };
        self.stim_current(c) * e.resistance_ohms + self.double_layer[c]
    }

    /// Ends one sample (`rate_hz` samples per second) after its commands: each stimulating
    /// channel charges its electrode's double layer for one sample; a recovering one
    /// discharges it. Costs a few register tests while nothing stimulates.
    pub fn end_sample(&mut self, rate_hz: f64) {
        let recovering = self.acting[usize::from(rhs::REG_CHARGE_RECOVERY_SWITCH)]
            | self.acting[usize::from(rhs::REG_CHARGE_RECOVERY_LIMITED)];
        let stimulating = self.acting[usize::from(rhs::REG_STIM_ON)];
        if (recovering | stimulating) == 0 {
            return;
        }
        let dt = 1.0 / rate_hz;
        for c in 0..self.electrodes.len().min(16) {
            let e = self.electrodes[c];
            let current = self.stim_current(c);
            if current != 0.0 {
                self.double_layer[c] += current * dt / e.capacitance_farads;
            } else if recovering & (1 << c) != 0 {
                self.double_layer[c] *= (-dt / (e.resistance_ohms * e.capacitance_farads)).exp();
            }
        }
    }

    /// Latches the triggered registers (a command carried the `u` flag).
    fn update_triggered(&mut self) {
        for r in 0..=255u8 {
            if rhs::is_triggered_register(r) {
                self.acting[usize::from(r)] = self.registers[usize::from(r)];
            }
        }
    }

    pub fn chip(&self) -> RhsChip {
        self.chip
    }

    pub fn first_channel(&self) -> usize {
        self.first_channel
    }

    /// The chip's register `r` as last written (RAM) or fixed (ROM).
    pub fn register(&self, r: u8) -> u16 {
        self.registers[usize::from(r)]
    }

    /// Whether register 1 asks for two's-complement results instead of offset binary.
    fn twos_complement(&self) -> bool {
        self.registers[1] & 0x40 != 0
    }

    /// Answers one MOSI word. `electrode(i)` is the simulated signal of electrode `i` at this
    /// sample, in amplifier units (0.195 µV).
    pub fn command(&mut self, word: u32, electrode: impl Fn(usize) -> i16) -> u32 {
        let command = RhsCommand::from_word(word);
        let result = match command {
            Some(RhsCommand::Convert { channel, .. }) => {
                let c = usize::from(channel);
                if c >= self.chip.amplifiers() {
                    return 0;
                }
                let signal = electrode(self.first_channel + c);
                let stim = self.electrode_volts(c);
                let (ac_units, dc) = if stim == 0.0 {
                    (signal, dc_code(signal))
                } else {
                    let uv = f64::from(signal) * AMPLIFIER_UV_PER_UNIT + stim * 1e6;
                    let limit = AMPLIFIER_LIMIT_UV;
                    ((uv.clamp(-limit, limit) / AMPLIFIER_UV_PER_UNIT).round() as i16, dc_code_volts(uv * 1e-6))
                };
                let settling = self.acting[usize::from(rhs::REG_AMP_FAST_SETTLE)] & (1 << c) != 0;
                let ac_units = if settling { 0 } else { ac_units };
                let ac = if self.twos_complement() { ac_units as u16 } else { (ac_units as u16) ^ 0x8000 };
                (u32::from(ac) << 16) | u32::from(dc)
            }
            Some(RhsCommand::Read { register, .. }) => {
                (u32::from(rhs::READ_RESULT_HIGH) << 16) | u32::from(self.registers[usize::from(register)])
            }
            Some(RhsCommand::Write { register, value, .. }) => {
                let read_only = register == rhs::REG_COMPLIANCE_MONITOR || register == rhs::REG_FAULT_CURRENT;
                if rhs::is_ram_register(register) && !read_only {
                    self.registers[usize::from(register)] = value;
                }
                (u32::from(rhs::WRITE_RESULT_HIGH) << 16) | u32::from(value)
            }
            Some(RhsCommand::Calibrate) | Some(RhsCommand::Clear) | None => 0,
        };
        let u = match command {
            Some(RhsCommand::Convert { u, .. })
            | Some(RhsCommand::Read { u, .. })
            | Some(RhsCommand::Write { u, .. }) => u,
            _ => false,
        };
        if u {
            self.update_triggered();
        }
        result
    }
}

/// The DC amplifier's code for an electrode at `sample` (amplifier units).
pub fn dc_code(sample: i16) -> u16 {
    dc_code_volts(f64::from(sample) * AMPLIFIER_UV_PER_UNIT * 1e-6)
}

/// The DC amplifier's code for an electrode at `volts`, clamped to its 10 bits.
pub fn dc_code_volts(volts: f64) -> u16 {
    (f64::from(DC_ZERO_CODE) - volts / DC_VOLTS_PER_CODE).round().clamp(0.0, 1023.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chip: &mut RhsChipModel, r: u8) -> u32 {
        chip.command(RhsCommand::read(r).word(), |_| 0)
    }

    #[test]
    fn the_chip_identifies_itself_and_keeps_what_is_written() {
        let mut chip = RhsChipModel::new(RhsChip::Rhs2116, 0);
        let company: Vec<u8> = (251..=253).flat_map(|r| (read(&mut chip, r) as u16).to_be_bytes()).collect();
        assert_eq!(&company, b"INTAN\0");
        assert_eq!(read(&mut chip, 255), 32);
        assert_eq!(read(&mut chip, 254) & 0xff, 16);
        assert_eq!(chip.command(RhsCommand::write(8, 0xffff).word(), |_| 0), 0xffff_ffff);
        assert_eq!(chip.command(RhsCommand::write(7, 0x032c).word(), |_| 0), 0xffff_032c);
        assert_eq!(read(&mut chip, 7), 0x032c);
        chip.command(RhsCommand::write(255, 9).word(), |_| 0);
        chip.command(RhsCommand::write(40, 5).word(), |_| 0);
        chip.command(RhsCommand::write(9, 5).word(), |_| 0);
        assert_eq!((read(&mut chip, 255), read(&mut chip, 40), read(&mut chip, 9)), (32, 0, 0));
        assert_eq!(chip.command(RhsCommand::Clear.word(), |_| 0), 0);
    }

    #[test]
    fn convert_returns_the_electrode_on_the_ac_word_and_zero_volts_on_the_dc_word() {
        let mut chip = RhsChipModel::new(RhsChip::Rhs2116, 32);
        let r = chip.command(RhsCommand::convert(5).word(), |i| i as i16 - 100);
        assert_eq!(r >> 16, u32::from(((37 - 100) as i16 as u16) ^ 0x8000));
        assert_eq!(r & 0xffff, 512);
        chip.command(RhsCommand::write(1, 0x40).word(), |_| 0);
        let r = chip.command(RhsCommand::convert(5).word(), |_| -3);
        assert_eq!(r >> 16, u32::from((-3i16) as u16));
        assert_eq!(chip.command(RhsCommand::convert(16).word(), |_| 7), 0);
        assert_eq!((dc_code(i16::MAX), dc_code(i16::MIN)), (512, 512));
    }

    #[test]
    fn an_enabled_stimulator_drives_its_electrode_once_the_u_flag_arrives() {
        let e = Electrode { resistance_ohms: 100e3, capacitance_farads: 1e-9 };
        let mut chip = RhsChipModel::new(RhsChip::Rhs2116, 0).with_electrodes(vec![e; 16]);
        let step = rhs::STIM_STEPS[0];
        for (r, v) in [
            (32, rhs::STIM_ENABLE_A),
            (33, rhs::STIM_ENABLE_B),
            (34, step.step_register()),
            (35, step.bias_register()),
            (64 + 2, 0x8000 | 20),
            (42, 1 << 2),
        ] {
            chip.command(RhsCommand::write(r, v).word(), |_| 0);
        }
        assert_eq!(chip.stim_current(2), 0.0, "not before the u flag");
        chip.command(RhsCommand::Write { register: 44, value: 0, u: true, m: false }.word(), |_| 0);
        assert!((chip.stim_current(2) + 200e-9).abs() < 1e-15);
        // -200 nA into 100 kΩ: -20 mV, clipped on the AC word, read by the DC word.
        let r = chip.command(RhsCommand::convert(2).word(), |_| 0);
        assert_eq!(((r >> 16) as u16 ^ 0x8000) as i16, -(AMPLIFIER_LIMIT_UV / AMPLIFIER_UV_PER_UNIT).round() as i16);
        assert_eq!(r & 0xffff, 513);
        chip.end_sample(10000.0);
        // 200 nA for 100 µs on 1 nF: -20 mV on the double layer.
        assert!((chip.electrode_volts(2) + 0.040).abs() < 1e-9, "{}", chip.electrode_volts(2));
        // Fast settle holds the AC word at baseline.
        chip.command(RhsCommand::Write { register: 10, value: 1 << 2, u: true, m: false }.word(), |_| 0);
        let r = chip.command(RhsCommand::convert(2).word(), |_| 7);
        assert_eq!((r >> 16) as u16, 0x8000);
        // Charge recovery drains the double layer.
        chip.command(RhsCommand::write(42, 0).word(), |_| 0);
        chip.command(RhsCommand::Write { register: 46, value: 1 << 2, u: true, m: false }.word(), |_| 0);
        for _ in 0..100 {
            chip.end_sample(10000.0);
        }
        assert!(chip.electrode_volts(2).abs() < 1e-6);
    }
}

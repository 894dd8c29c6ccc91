//! A model of one RHS2116 chip as its SPI port sees it, as far as recording goes: a register
//! file with the ROM that identifies it, and amplifiers that sample the simulated electrodes.
//!
//! Each call answers one 32-bit command (see [`rhs`]) with the 32-bit result; the FPGA model
//! places the results in frames.
//!
//! * `CONVERT(c)`, `c` < 16: the AC amplifier's word is the simulated electrode's sample
//!   (offset binary, or two's complement when register 1 bit 6 asks for it: RHX
//!   `getRHSRegisterValue`, `twosComp << 6`), 0.195 µV per unit as on RHD chips. The DC
//!   amplifier's word is derived from the same sample with RHX's scale for DC amplifier codes
//!   (`rhxdatareader.cpp`: `−0.01923 V × (code − 512)`): `round(512 − v / 0.01923 V)`. The
//!   simulated signal is a few millivolts at most around 0 V, far inside one 19.23 mV step, so
//!   the word is 512 (0 V), an electrode at rest. The result packs the DC word in the low
//!   half and the AC word in the high half, the order the USB frame carries them in (DC word
//!   first, little endian). Channels 16–63 are no amplifier: 0.
//! * `READ(r)`: the register in the low half, zeros above.
//! * `WRITE(r, d)`: all ones above; the low half echoes `d`, as RHD2000 chips echo a write
//!   (the sources establish only the all-ones upper half for the RHS2116). RAM registers
//!   ([`rhs::is_ram_register`]) keep what is written, except the read-only 40 (compliance
//!   monitor) and 50 (fault-current detector), which stay 0: nothing stimulates, nothing trips
//!   them. Writes elsewhere, the ROM included, change nothing.
//! * `CALIBRATE`, `CLEAR` and words that are no command: 0.
//!
//! Not modeled: stimulation (the stimulators, their triggered registers' `u`-flag update,
//! charge recovery, the compliance monitor), amplifier settle, the DC amplifiers' own signal
//! path and power switches, the on-chip DSP high-pass, amplifier bandwidth, the impedance
//! check, and the power-on values of the RAM registers (the model starts them at 0). The ROM's
//! die revision (register 254, high byte) is not given by the sources; the model reports 0.

use crate::frame::AMPLIFIER_UV_PER_UNIT;
use crate::rhythm::rhs::{self, RhsChip, RhsCommand};

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
    /// Index of the chip's first amplifier among the simulated electrodes.
    first_channel: usize,
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
        RhsChipModel { chip, registers, first_channel }
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
        match RhsCommand::from_word(word) {
            Some(RhsCommand::Convert { channel, .. }) => {
                let c = usize::from(channel);
                if c >= self.chip.amplifiers() {
                    return 0;
                }
                let sample = electrode(self.first_channel + c);
                let ac = if self.twos_complement() { sample as u16 } else { (sample as u16) ^ 0x8000 };
                (u32::from(ac) << 16) | u32::from(dc_code(sample))
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
        }
    }
}

/// The DC amplifier's code for an electrode at `sample` (amplifier units).
pub fn dc_code(sample: i16) -> u16 {
    let volts = f64::from(sample) * AMPLIFIER_UV_PER_UNIT * 1e-6;
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
}

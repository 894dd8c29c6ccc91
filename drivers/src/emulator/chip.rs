//! A model of one RHD2000 chip as its SPI port sees it: a register file with the ROM that
//! identifies it, and an ADC that samples the simulated electrodes.
//!
//! Each call answers one command in place; the FPGA model places the answers in frames as
//! the Rhythm FPGA does (amplifier words in their own frame, aux results one frame later: see
//! [`rhd`](crate::rhythm::rhd)). An RHD2164 answers on both MISO lines at once: channel `c` on
//! MISO A and `c + 32` on MISO B, and each line reads back its own register-59 marker.

use crate::rhythm::rhd::{self, RhdChip, RhdCommand};

/// The supply sensor's reading for 3.3 V (74.8 µV per code: RHX `rhxdatareader`).
const SUPPLY_CODE: u16 = 44_118;
/// An idle auxiliary input: mid-scale.
const AUX_IDLE_CODE: u16 = 32_768;
/// The temperature sensor's reading (its absolute value depends on the sensor switch
/// sequence; the model gives a constant).
const TEMPERATURE_CODE: u16 = 29_000;

/// The words a chip puts on its two MISO lines for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Miso {
    pub a: u16,
    pub b: u16,
}

/// One chip on one port.
#[derive(Debug, Clone)]
pub struct ChipModel {
    chip: RhdChip,
    registers: [u8; 64],
    /// Index of the chip's first amplifier among the simulated electrodes.
    first_channel: usize,
}

impl ChipModel {
    pub fn new(chip: RhdChip, first_channel: usize) -> ChipModel {
        let mut registers = [0u8; 64];
        let company = usize::from(rhd::REG_COMPANY);
        registers[company..company + 5].copy_from_slice(&rhd::ROM_COMPANY);
        let name = usize::from(rhd::REG_CHIP_NAME);
        registers[name..name + chip.name().len()].copy_from_slice(chip.name().as_bytes());
        registers[usize::from(rhd::REG_DIE_REVISION)] = 0;
        registers[usize::from(rhd::REG_UNIPOLAR)] = chip.unipolar() as u8;
        registers[usize::from(rhd::REG_AMPLIFIERS)] = chip.amplifiers() as u8;
        registers[usize::from(rhd::REG_CHIP_ID)] = chip.chip_id();
        ChipModel { chip, registers, first_channel }
    }

    pub fn chip(&self) -> RhdChip {
        self.chip
    }

    pub fn first_channel(&self) -> usize {
        self.first_channel
    }

    /// The chip's register `r` as last written (RAM) or fixed (ROM).
    pub fn register(&self, r: u8) -> u8 {
        self.registers[usize::from(r & 0x3f)]
    }

    /// Whether register 4 asks for two's-complement ADC results instead of offset binary.
    fn twos_complement(&self) -> bool {
        self.registers[4] & 0x40 != 0
    }

    /// Answers one MOSI word. `electrode(i)` is the simulated signal of electrode `i` at this
    /// sample, in amplifier units (0.195 µV).
    pub fn command(&mut self, word: u16, electrode: impl Fn(usize) -> i16) -> Miso {
        match RhdCommand::from_word(word) {
            Some(RhdCommand::Convert { channel, .. }) => {
                let c = usize::from(channel);
                let amplifiers_per_line = self.chip.amplifiers().min(32);
                let code = |x: i16| if self.twos_complement() { x as u16 } else { (x as u16) ^ 0x8000 };
                let sample = |line_offset: usize| -> u16 {
                    if c < amplifiers_per_line {
                        code(electrode(self.first_channel + line_offset + c))
                    } else if (rhd::AUX_INPUT_CHANNEL..rhd::AUX_INPUT_CHANNEL + 3).contains(&channel) {
                        AUX_IDLE_CODE
                    } else if channel == rhd::SUPPLY_SENSOR_CHANNEL {
                        SUPPLY_CODE
                    } else if channel == rhd::TEMPERATURE_SENSOR_CHANNEL {
                        TEMPERATURE_CODE
                    } else {
                        0
                    }
                };
                let a = sample(0);
                let b = if self.chip == RhdChip::Rhd2164 { sample(32) } else { a };
                Miso { a, b }
            }
            Some(RhdCommand::Write { register, value }) => {
                // Registers 0-17 are RAM; writes elsewhere are ignored by the chip but echoed.
                if register <= 17 {
                    self.registers[usize::from(register)] = value;
                }
                let echo = 0xff00 | u16::from(value);
                Miso { a: echo, b: echo }
            }
            Some(RhdCommand::Read { register }) => {
                let value = u16::from(self.registers[usize::from(register)]);
                if register == rhd::REG_MISO_MARKER && self.chip == RhdChip::Rhd2164 {
                    Miso { a: rhd::MISO_A_MARKER.into(), b: rhd::MISO_B_MARKER.into() }
                } else {
                    Miso { a: value, b: value }
                }
            }
            Some(RhdCommand::Calibrate) | Some(RhdCommand::Clear) | None => Miso { a: 0x0000, b: 0x0000 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chip_identifies_itself_and_keeps_what_is_written() {
        let mut chip = ChipModel::new(RhdChip::Rhd2164, 0);
        let read = |chip: &mut ChipModel, r: u8| chip.command(RhdCommand::Read { register: r }.word(), |_| 0);
        let company: Vec<u8> = (40..45).map(|r| read(&mut chip, r).a as u8).collect();
        assert_eq!(&company, b"INTAN");
        assert_eq!(read(&mut chip, 63).a, 4);
        assert_eq!(read(&mut chip, 62).a, 64);
        assert_eq!(read(&mut chip, 59), Miso { a: 53, b: 58 });
        assert_eq!(chip.command(RhdCommand::Write { register: 3, value: 0x5a }.word(), |_| 0).a, 0xff5a);
        assert_eq!(read(&mut chip, 3).a, 0x5a);
        chip.command(RhdCommand::Write { register: 63, value: 9 }.word(), |_| 0);
        assert_eq!(read(&mut chip, 63).a, 4, "ROM is not writable");
    }

    #[test]
    fn convert_samples_the_electrodes_of_each_line() {
        let mut chip = ChipModel::new(RhdChip::Rhd2164, 100);
        let m = chip.command(RhdCommand::Convert { channel: 5, dsp: false }.word(), |i| i as i16 - 200);
        assert_eq!(m, Miso { a: ((105 - 200) as i16 as u16) ^ 0x8000, b: ((137 - 200) as i16 as u16) ^ 0x8000 });
        chip.command(RhdCommand::Write { register: 4, value: 0x40 }.word(), |_| 0);
        let m = chip.command(RhdCommand::Convert { channel: 5, dsp: false }.word(), |_| -3);
        assert_eq!(m.a, (-3i16) as u16);
        let mut small = ChipModel::new(RhdChip::Rhd2216, 0);
        assert_eq!(small.command(RhdCommand::Convert { channel: 20, dsp: false }.word(), |_| 7).a, 0);
    }
}

//! The RHD2000 chips' side of the SPI link: command words, what each returns, and the ROM
//! every chip identifies itself with.
//!
//! Facts from Intan's RHD2000 series datasheet as the reference software uses them
//! (Intan-RHX `Engine/API/Hardware/rhxregisters.cpp`: `createRhdCommand`; `rhxdatablock.cpp`:
//! `getChipID`; `rhxglobals.h`: the chip ids and register-59 markers):
//!
//! | command | word | returns |
//! |---|---|---|
//! | `CONVERT(c)` | `00cccccc 0000000h` | the ADC result of channel `c`, offset binary; `h` runs the chip's DSP offset removal |
//! | `CALIBRATE` | `01010101 00000000` | nothing useful; the next 9 commands must be dummies |
//! | `CLEAR` | `01101010 00000000` | nothing useful; clears the ADC calibration |
//! | `WRITE(r, d)` | `10rrrrrr dddddddd` | `11111111 dddddddd` |
//! | `READ(r)` | `11rrrrrr 00000000` | `00000000` then the register's 8 bits |
//!
//! The chip answers each command two commands later. The Rhythm FPGA files each amplifier's
//! word under the `CONVERT` that asked for it; the results of a sample's three aux commands
//! arrive during the next sample, so frame `t + 1` carries the aux results of the commands
//! sent at sample `t` (RHX `getChipID` reads register 63, requested at list index 18, at aux
//! index 19).

/// ROM registers 40–44 hold the company name.
pub const ROM_COMPANY: [u8; 5] = *b"INTAN";
/// The first of the company-name registers.
pub const REG_COMPANY: u8 = 40;
/// The first of the eight chip-name registers (48–55).
pub const REG_CHIP_NAME: u8 = 48;
/// Register 59: on an RHD2164, which MISO line answered (the chip's two lines carry
/// different values here).
pub const REG_MISO_MARKER: u8 = 59;
/// Register 60: die revision.
pub const REG_DIE_REVISION: u8 = 60;
/// Register 61: 1 for unipolar amplifiers, 0 for bipolar.
pub const REG_UNIPOLAR: u8 = 61;
/// Register 62: number of amplifiers.
pub const REG_AMPLIFIERS: u8 = 62;
/// Register 63: Intan's chip id.
pub const REG_CHIP_ID: u8 = 63;

/// Register 59 as read on an RHD2164's MISO A line (RHX `Register59MISOA`).
pub const MISO_A_MARKER: u8 = 53;
/// Register 59 as read on an RHD2164's MISO B line (RHX `Register59MISOB`).
pub const MISO_B_MARKER: u8 = 58;

/// Channel the `CONVERT` of the chip's supply-voltage sensor addresses.
pub const SUPPLY_SENSOR_CHANNEL: u8 = 48;
/// Channel of the temperature sensor.
pub const TEMPERATURE_SENSOR_CHANNEL: u8 = 49;
/// First auxiliary ADC input channel (32, 33, 34: AUX1–3).
pub const AUX_INPUT_CHANNEL: u8 = 32;

/// An RHD2000 chip model, as its ROM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RhdChip {
    /// 32 unipolar amplifiers.
    Rhd2132,
    /// 16 bipolar (differential) amplifiers.
    Rhd2216,
    /// 64 unipolar amplifiers over two MISO lines (double data rate).
    Rhd2164,
}

impl RhdChip {
    pub const ALL: [RhdChip; 3] = [RhdChip::Rhd2132, RhdChip::Rhd2216, RhdChip::Rhd2164];

    /// ROM register 63 (RHX `ChipType`: RHD2132 = 1, RHD2216 = 2, RHD2164 = 4).
    pub const fn chip_id(self) -> u8 {
        match self {
            RhdChip::Rhd2132 => 1,
            RhdChip::Rhd2216 => 2,
            RhdChip::Rhd2164 => 4,
        }
    }

    /// The chip with ROM id `id`.
    pub fn from_chip_id(id: u16) -> Option<RhdChip> {
        RhdChip::ALL.into_iter().find(|c| u16::from(c.chip_id()) == id)
    }

    /// Amplifier channels.
    pub const fn amplifiers(self) -> usize {
        match self {
            RhdChip::Rhd2132 => 32,
            RhdChip::Rhd2216 => 16,
            RhdChip::Rhd2164 => 64,
        }
    }

    /// Data streams the chip fills: two for the RHD2164 (MISO A and B), one otherwise.
    pub const fn streams(self) -> usize {
        match self {
            RhdChip::Rhd2164 => 2,
            _ => 1,
        }
    }

    /// Register 61.
    pub const fn unipolar(self) -> bool {
        !matches!(self, RhdChip::Rhd2216)
    }

    /// The product name (`RHD2132`, ...), as in ROM registers 48–55.
    pub const fn name(self) -> &'static str {
        match self {
            RhdChip::Rhd2132 => "RHD2132",
            RhdChip::Rhd2216 => "RHD2216",
            RhdChip::Rhd2164 => "RHD2164",
        }
    }
}

/// One RHD2000 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RhdCommand {
    /// Sample channel `channel` (0–63); `dsp` runs the offset-removal filter this time.
    Convert {
        channel: u8,
        dsp: bool,
    },
    Calibrate,
    Clear,
    Write {
        register: u8,
        value: u8,
    },
    Read {
        register: u8,
    },
}

impl RhdCommand {
    /// The 16-bit word sent on MOSI.
    pub const fn word(self) -> u16 {
        match self {
            RhdCommand::Convert { channel, dsp } => ((channel as u16 & 0x3f) << 8) | dsp as u16,
            RhdCommand::Calibrate => 0x5500,
            RhdCommand::Clear => 0x6a00,
            RhdCommand::Write { register, value } => 0x8000 | ((register as u16 & 0x3f) << 8) | value as u16,
            RhdCommand::Read { register } => 0xc000 | ((register as u16 & 0x3f) << 8),
        }
    }

    /// The command a MOSI word carries (`None`: not a valid RHD2000 command).
    pub const fn from_word(word: u16) -> Option<RhdCommand> {
        let register = ((word >> 8) & 0x3f) as u8;
        match word >> 14 {
            0b00 => {
                if word & 0x00fe != 0 {
                    return None;
                }
                Some(RhdCommand::Convert { channel: register, dsp: word & 1 == 1 })
            }
            0b01 => match word {
                0x5500 => Some(RhdCommand::Calibrate),
                0x6a00 => Some(RhdCommand::Clear),
                _ => None,
            },
            0b10 => Some(RhdCommand::Write { register, value: word as u8 }),
            _ => {
                if word & 0xff != 0 {
                    return None;
                }
                Some(RhdCommand::Read { register })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_word() {
        let mut cmds = vec![RhdCommand::Calibrate, RhdCommand::Clear];
        for r in 0..64u8 {
            cmds.push(RhdCommand::Read { register: r });
            cmds.push(RhdCommand::Write { register: r, value: r.wrapping_mul(37) });
            cmds.push(RhdCommand::Convert { channel: r, dsp: r % 2 == 0 });
        }
        for c in cmds {
            assert_eq!(RhdCommand::from_word(c.word()), Some(c), "{:04x}", c.word());
        }
        assert_eq!(RhdCommand::Read { register: 63 }.word(), 0xff00);
        assert_eq!(RhdCommand::Write { register: 5, value: 0xa5 }.word(), 0x85a5);
        assert_eq!(RhdCommand::Convert { channel: 31, dsp: true }.word(), 0x1f01);
        assert_eq!(RhdCommand::from_word(0x5501), None);
        assert_eq!(RhdCommand::from_word(0xc001), None);
    }

    #[test]
    fn chip_ids_name_their_chips() {
        for c in RhdChip::ALL {
            assert_eq!(RhdChip::from_chip_id(c.chip_id().into()), Some(c));
        }
        assert_eq!(RhdChip::from_chip_id(3), None);
    }
}

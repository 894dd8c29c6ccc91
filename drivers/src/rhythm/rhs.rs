//! The RHS2116 stimulation/recording chips' side of the SPI link: 32-bit command words, what
//! each returns, and the ROM every chip identifies itself with.
//!
//! Facts from Intan's RHS2116 as the reference software uses them (Intan-RHX
//! `Engine/API/Hardware/rhxregisters.cpp`: the four `createRHXCommand` overloads for
//! `ControllerStimRecord`; `Engine/API/Abstract/abstractrhxcontroller.cpp`: `printCommandList`;
//! `rhxdatablock.cpp`: `getChipID`, `print`, `fillFromUsbBuffer`; pyxdaq
//! `resources/config/isa_rhs.json`):
//!
//! | command | word (bit 31 first) | hex |
//! |---|---|---|
//! | `CONVERT(c)` | `00umdh00 00cccccc` + 16 zero bits | `h << 26 \| c << 16` |
//! | `CALIBRATE` | `01010101` + 24 zero bits | `0x55000000` |
//! | `CLEAR` | `01101010` + 24 zero bits | `0x6a000000` |
//! | `WRITE(r, d)` | `10um0000 rrrrrrrr` + 16 data bits | `0x80000000 \| r << 16 \| d` |
//! | `READ(r)` | `11um0000 rrrrrrrr` + 16 zero bits | `0xc0000000 \| r << 16` |
//!
//! The flag bits: `u` (bit 29), `m` (28), `d` (27), `h` (26), as `printCommandList` decodes
//! them. RHX sets `u` on the last `WRITE` of a list that updates the stimulation registers
//! ("update all triggered registers"), `m` on the `WRITE` that clears register 40 (the
//! compliance monitor) and on `READ(255)` as its compliance-monitor reset (`0xd0ff0000`), and
//! `h` through `CONVERT`'s second argument. RHX never sets `d`.
//!
//! Every result is 32 bits. A `CONVERT` returns two 16-bit words, the DC amplifier's and the
//! AC amplifier's; the USB frame carries the DC word first (`fillFromUsbBuffer`; pyxdaq
//! `Samples.amp[..., 0]` is DC, `[..., 1]` AC). For a register command the top 16 bits are
//! all ones after a `WRITE` and all zeros after a `READ` (the comment in
//! `fillFromUsbBuffer`, which tells a read of register 40 by it); a `READ` returns the
//! register's 16 bits in the low half.
//!
//! Registers are 16 bits wide, at 8-bit addresses. The ROM, read at the end of RHX's register
//! list (`createCommandListRHSRegisterConfig`: `READ` 255, 254, 253, 252, 251) and checked by
//! `getChipID`:
//!
//! | register | high byte | low byte |
//! |---|---|---|
//! | 251 | `I` | `N` |
//! | 252 | `T` | `A` |
//! | 253 | `N` | 0 |
//! | 254 | die revision | number of amplifiers (16) |
//! | 255 | chip id: 32 (RHX `RHS2116Chip`, pyxdaq `HeadstageChipID.RHS2116`) | |

/// ROM registers 251–253 hold the company name, two characters each (high byte first).
pub const REG_COMPANY: [u8; 3] = [251, 252, 253];
/// The company name as registers 251–253 read: `IN`, `TA`, `N` and a zero byte.
pub const ROM_COMPANY: [u16; 3] = [u16::from_be_bytes(*b"IN"), u16::from_be_bytes(*b"TA"), u16::from_be_bytes(*b"N\0")];
/// Register 254: die revision (high byte) and number of amplifiers (low byte).
pub const REG_DIE_AND_AMPLIFIERS: u8 = 254;
/// Register 255: Intan's chip id.
pub const REG_CHIP_ID: u8 = 255;
/// Register 40: the compliance monitor, read only (cleared by a `WRITE` with the `m` flag).
pub const REG_COMPLIANCE_MONITOR: u8 = 40;
/// Register 50: fault-current detector, read only.
pub const REG_FAULT_CURRENT: u8 = 50;

/// The top 16 bits of a `WRITE`'s result.
pub const WRITE_RESULT_HIGH: u16 = 0xffff;
/// The top 16 bits of a `READ`'s result.
pub const READ_RESULT_HIGH: u16 = 0x0000;

/// The registers RHX writes and reads back as the chip's RAM
/// (`createCommandListRHSRegisterConfig`): 0–8, 10, 12, 32–38, 40–50 (even), 64–79 and 96–111.
/// Of these, 40 and 50 are read only.
pub fn is_ram_register(register: u8) -> bool {
    matches!(register, 0..=8 | 10 | 12 | 32..=38 | 40 | 42 | 44 | 46 | 48 | 50 | 64..=79 | 96..=111)
}

/// Registers 32 and 33: the stimulators are enabled only while they hold these two values
/// (RHX `RHXRegisters::setStimEnable(true)`: `stimEnableA = 0xaaaa`, `stimEnableB = 0x00ff`;
/// `setStimEnable(false)` writes 0 to both).
pub const REG_STIM_ENABLE_A: u8 = 32;
pub const REG_STIM_ENABLE_B: u8 = 33;
pub const STIM_ENABLE_A: u16 = 0xaaaa;
pub const STIM_ENABLE_B: u16 = 0x00ff;
/// Register 34: the stimulation current DAC's step size, `sel3 << 13 | sel2 << 7 | sel1`;
/// register 35: the stimulator bias voltages, `pbias << 4 | nbias` (RHX `getRHSRegisterValue`).
pub const REG_STIM_STEP: u8 = 34;
pub const REG_STIM_BIAS: u8 = 35;
/// Register 10: amplifier fast settle, one bit per channel; 12: amplifier lower-cutoff select
/// (the 1 kHz corner of register 6 while set) (RHX `getRHSRegisterValue`: `ampFastSettle`,
/// `ampFLSelect`).
pub const REG_AMP_FAST_SETTLE: u8 = 10;
pub const REG_AMP_FL_SELECT: u8 = 12;
/// Registers 42, 44, 46, 48: stimulation on, polarity (1 = positive current), charge-recovery
/// switch and current-limited charge recovery, one bit per channel (RHX `getRHSRegisterValue`:
/// `stimOn`, `stimPol`, `chargeRecoverySwitch`, `cLChargeRecoveryEn`).
pub const REG_STIM_ON: u8 = 42;
pub const REG_STIM_POLARITY: u8 = 44;
pub const REG_CHARGE_RECOVERY_SWITCH: u8 = 46;
pub const REG_CHARGE_RECOVERY_LIMITED: u8 = 48;
/// Registers 64–79: channel `c`'s negative current, trim (high byte) and magnitude in steps
/// (low byte); 96–111 the positive current (RHX `getRHSRegisterValue`: `negCurrentTrim`,
/// `negCurrentMag`, `posCurrentTrim`, `posCurrentMag`). A trim of 0x80 is no trim (RHX
/// `setPosStimMagnitude` stores `trim + 128`).
pub const REG_NEG_CURRENT: u8 = 64;
pub const REG_POS_CURRENT: u8 = 96;
pub const NO_TRIM: u16 = 0x80;

/// The registers that take a written value only when a command with the `u` flag arrives
/// (RHX `createCommandListRHSRegisterConfig`: "update all triggered registers with last WRITE
/// command", the `u` on its write of register 111; the FPGA sets `u` on its charge-recovery
/// write every sample in stimulation command mode: Intan's RHS2000 Rhythm Stim interface
/// `main.v`, `command_selector_stim`): amplifier fast settle and lower-cutoff select, the four
/// stimulation control registers and the 32 current registers.
pub fn is_triggered_register(register: u8) -> bool {
    matches!(register, 10 | 12 | 42 | 44 | 46 | 48 | 64..=79 | 96..=111)
}

/// One stimulation step size of the RHS2116's current DAC and the register fields that select
/// it (RHX `RHXRegisters::setStimStepSize` and `stimStepSizeToDouble`; pyxdaq
/// `RHSDriver.setStimStepSize`, the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StimStep {
    /// The step, nA.
    pub nanoamps: u32,
    pub sel1: u16,
    pub sel2: u16,
    pub sel3: u16,
    pub pbias: u16,
    pub nbias: u16,
}

impl StimStep {
    /// Register 34's value.
    pub const fn step_register(self) -> u16 {
        (self.sel3 << 13) | (self.sel2 << 7) | self.sel1
    }

    /// Register 35's value.
    pub const fn bias_register(self) -> u16 {
        (self.pbias << 4) | self.nbias
    }

    /// The step registers 34 and 35 select (`None`: a setting that is none of Intan's steps).
    pub fn from_registers(r34: u16, r35: u16) -> Option<StimStep> {
        STIM_STEPS.into_iter().find(|s| s.step_register() == r34 && s.bias_register() == r35)
    }
}

/// Largest magnitude code of a current register (8 bits: 0–255 steps).
pub const MAX_STIM_MAGNITUDE: u16 = 255;

/// Intan's ten stimulation step sizes, finest first.
pub const STIM_STEPS: [StimStep; 10] = [
    StimStep { nanoamps: 10, sel1: 64, sel2: 19, sel3: 3, pbias: 6, nbias: 6 },
    StimStep { nanoamps: 20, sel1: 40, sel2: 40, sel3: 1, pbias: 7, nbias: 7 },
    StimStep { nanoamps: 50, sel1: 64, sel2: 40, sel3: 0, pbias: 7, nbias: 7 },
    StimStep { nanoamps: 100, sel1: 30, sel2: 20, sel3: 0, pbias: 7, nbias: 7 },
    StimStep { nanoamps: 200, sel1: 25, sel2: 10, sel3: 0, pbias: 8, nbias: 8 },
    StimStep { nanoamps: 500, sel1: 101, sel2: 3, sel3: 0, pbias: 9, nbias: 9 },
    StimStep { nanoamps: 1000, sel1: 98, sel2: 1, sel3: 0, pbias: 10, nbias: 10 },
    StimStep { nanoamps: 2000, sel1: 94, sel2: 0, sel3: 0, pbias: 11, nbias: 11 },
    StimStep { nanoamps: 5000, sel1: 38, sel2: 0, sel3: 0, pbias: 14, nbias: 14 },
    StimStep { nanoamps: 10000, sel1: 15, sel2: 0, sel3: 0, pbias: 15, nbias: 15 },
];

/// An RHS chip model, as its ROM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RhsChip {
    /// 16 amplifier channels, each with a DC and an AC amplifier and a current stimulator.
    Rhs2116,
}

impl RhsChip {
    pub const ALL: [RhsChip; 1] = [RhsChip::Rhs2116];

    /// ROM register 255 (RHX `ChipType`: RHS2116 = 32).
    pub const fn chip_id(self) -> u16 {
        match self {
            RhsChip::Rhs2116 => 32,
        }
    }

    /// The chip with ROM id `id`.
    pub fn from_chip_id(id: u16) -> Option<RhsChip> {
        RhsChip::ALL.into_iter().find(|c| c.chip_id() == id)
    }

    /// Amplifier channels: one data stream of 16 (RHX `channelsPerStream` for
    /// `ControllerStimRecord`).
    pub const fn amplifiers(self) -> usize {
        match self {
            RhsChip::Rhs2116 => 16,
        }
    }

    /// The product name.
    pub const fn name(self) -> &'static str {
        match self {
            RhsChip::Rhs2116 => "RHS2116",
        }
    }
}

/// One RHS2116 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RhsCommand {
    /// Sample amplifier `channel` (the field holds 0–63; the RHS2116 has 0–15), with the flag
    /// bits as sent.
    Convert {
        channel: u8,
        u: bool,
        m: bool,
        d: bool,
        h: bool,
    },
    Calibrate,
    Clear,
    Write {
        register: u8,
        value: u16,
        u: bool,
        m: bool,
    },
    Read {
        register: u8,
        u: bool,
        m: bool,
    },
}

impl RhsCommand {
    /// `CONVERT(channel)` without flags, as RHX's list-building sends it.
    pub const fn convert(channel: u8) -> RhsCommand {
        RhsCommand::Convert { channel, u: false, m: false, d: false, h: false }
    }

    /// `READ(register)` without flags.
    pub const fn read(register: u8) -> RhsCommand {
        RhsCommand::Read { register, u: false, m: false }
    }

    /// `WRITE(register, value)` without flags.
    pub const fn write(register: u8, value: u16) -> RhsCommand {
        RhsCommand::Write { register, value, u: false, m: false }
    }

    /// The 32-bit word sent on MOSI.
    pub const fn word(self) -> u32 {
        const fn flags(u: bool, m: bool) -> u32 {
            ((u as u32) << 29) | ((m as u32) << 28)
        }
        match self {
            RhsCommand::Convert { channel, u, m, d, h } => {
                flags(u, m) | ((d as u32) << 27) | ((h as u32) << 26) | ((channel as u32 & 0x3f) << 16)
            }
            RhsCommand::Calibrate => 0x5500_0000,
            RhsCommand::Clear => 0x6a00_0000,
            RhsCommand::Write { register, value, u, m } => {
                0x8000_0000 | flags(u, m) | ((register as u32) << 16) | value as u32
            }
            RhsCommand::Read { register, u, m } => 0xc000_0000 | flags(u, m) | ((register as u32) << 16),
        }
    }

    /// The command a MOSI word carries (`None`: not a valid RHS2116 command).
    pub const fn from_word(word: u32) -> Option<RhsCommand> {
        let u = word & (1 << 29) != 0;
        let m = word & (1 << 28) != 0;
        let register = (word >> 16) as u8;
        match word >> 30 {
            0b00 => {
                // `00umdh00 00cccccc` and 16 zero bits.
                if word & 0x03c0_ffff != 0 {
                    return None;
                }
                let d = word & (1 << 27) != 0;
                let h = word & (1 << 26) != 0;
                Some(RhsCommand::Convert { channel: register & 0x3f, u, m, d, h })
            }
            0b01 => match word {
                0x5500_0000 => Some(RhsCommand::Calibrate),
                0x6a00_0000 => Some(RhsCommand::Clear),
                _ => None,
            },
            0b10 => {
                if word & 0x0f00_0000 != 0 {
                    return None;
                }
                Some(RhsCommand::Write { register, value: word as u16, u, m })
            }
            _ => {
                if word & 0x0f00_ffff != 0 {
                    return None;
                }
                Some(RhsCommand::Read { register, u, m })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_word() {
        let mut cmds = vec![RhsCommand::Calibrate, RhsCommand::Clear];
        for r in 0..=255u8 {
            let (u, m) = (r % 3 == 0, r % 5 == 0);
            cmds.push(RhsCommand::Read { register: r, u, m });
            cmds.push(RhsCommand::Write { register: r, value: u16::from(r).wrapping_mul(997), u, m });
        }
        for c in 0..64u8 {
            cmds.push(RhsCommand::Convert { channel: c, u: c % 2 == 0, m: c % 3 == 0, d: c % 5 == 0, h: c % 7 == 0 });
        }
        for c in cmds {
            assert_eq!(RhsCommand::from_word(c.word()), Some(c), "{:08x}", c.word());
        }
    }

    #[test]
    fn words_are_those_intan_s_software_sends() {
        // RHX createRHXCommand and its comments.
        assert_eq!(RhsCommand::read(255).word(), 0xc0ff_0000);
        assert_eq!(RhsCommand::Read { register: 255, u: false, m: true }.word(), 0xd0ff_0000);
        assert_eq!(RhsCommand::write(1, 0x1234).word(), 0x8001_1234);
        assert_eq!(RhsCommand::Write { register: 40, value: 0, u: false, m: true }.word(), 0x9028_0000);
        assert_eq!(RhsCommand::Write { register: 111, value: 0x80, u: true, m: false }.word(), 0xa06f_0080);
        assert_eq!(RhsCommand::convert(15).word(), 0x000f_0000);
        assert_eq!(RhsCommand::Convert { channel: 3, u: false, m: false, d: false, h: true }.word(), 0x0403_0000);
        assert_eq!(RhsCommand::Calibrate.word(), 0x5500_0000);
        assert_eq!(RhsCommand::Clear.word(), 0x6a00_0000);
        assert_eq!(RhsCommand::from_word(0x5500_0001), None);
        assert_eq!(RhsCommand::from_word(0xc0ff_0001), None);
        assert_eq!(RhsCommand::from_word(0x0100_0000), None);
        assert_eq!(RhsCommand::from_word(0x8100_0000), None);
    }

    #[test]
    fn the_rom_spells_intan_and_names_the_chip() {
        let bytes: Vec<u8> = ROM_COMPANY.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(&bytes, b"INTAN\0");
        assert_eq!(RhsChip::from_chip_id(32), Some(RhsChip::Rhs2116));
        assert_eq!(RhsChip::from_chip_id(4), None);
        assert_eq!(RhsChip::Rhs2116.amplifiers(), 16);
        assert!(is_ram_register(0) && is_ram_register(12) && is_ram_register(48) && is_ram_register(111));
        assert!(!is_ram_register(9) && !is_ram_register(41) && !is_ram_register(251) && !is_ram_register(80));
    }
}

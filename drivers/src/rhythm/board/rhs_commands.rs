//! The aux command lists the driver uploads to XDAQ with RHS headstages, and where their
//! results land.
//!
//! Every sample, the RHS sequencer sends each RHS2116 16 `CONVERT`s and one command from each
//! of four aux slots. The driver's lists, as Intan's software sets them up for the RHS
//! controller (Intan-RHX `Engine/Processing/controllerinterface.cpp`,
//! `updateChipCommandLists`):
//!
//! * slot 0 (AuxCmd1), [`register_config`]: RHX's `createCommandListRHSRegisterConfig` without
//!   the stimulation parameters (`updateStimParams = false`), looping: two dummies, the RAM
//!   registers written, the ROM read (registers 255, 254, 253, 252, 251), 56 registers read
//!   back, `CLEAR` (RHX clears the ADC calibration of an RHS2116 instead of calibrating it),
//!   ten dummies: 128 commands. Bring-up reads the ROM results to find chips and cable delays.
//! * slots 1–3: dummies, `READ` 255, 254 and 253 (RHX uploads 8192 of each and leaves their
//!   length at a single command).
//!
//! The registers written are RHX's defaults for recording (`setDefaultRHSSettings`), except
//! that stimulation stays disabled: registers 32 and 33 hold 0 (RHX `setStimEnable(false)`;
//! `0xaaaa` and `0x00ff` would enable the stimulators), and the stimulation-current and
//! charge-recovery registers (34–37, 64–79, 96–111) are not written, as in RHX's list without
//! stimulation parameters.
//!
//! To stimulate, the driver runs [`register_config_with`] instead on the chip concerned: RHX's
//! list with the stimulation parameters (`updateStimParams = true`), the stimulators enabled
//! and the chip's [`RhsChipSettings`] (step, currents, fast settle).

use crate::rhythm::rhs::{self, RhsChip, RhsCommand, StimStep};

/// Commands in the register-configuration list.
pub const REGISTER_CONFIG_LEN: usize = 128;
/// Index of the first ROM read (register 255, the chip id); registers 254–251 follow.
pub const ROM_READ_AT: usize = 56;
/// ROM registers read, in order, from [`ROM_READ_AT`].
pub const ROM_READ_ORDER: [u8; 5] = [255, 254, 253, 252, 251];
/// Index of the first register read back.
pub const READ_BACK_AT: usize = ROM_READ_AT + ROM_READ_ORDER.len();
/// Registers read back, in order, from [`READ_BACK_AT`] (RHX's read-back list).
pub const READ_BACK_ORDER: [u8; 56] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 32, 33, 34, 35, 36, 37, 38, 40, 42, 44, 46, 48, 50, 64, 65, 66, 67, 68, 69, 70,
    71, 72, 73, 74, 75, 76, 77, 78, 79, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
];
/// Index of the `CLEAR`.
pub const CLEAR_AT: usize = READ_BACK_AT + READ_BACK_ORDER.len();

/// Frames between a slot-0 command and the frame whose aux-0 word carries its result, on XDAQ:
/// none (KonteX's RHX fork, `getChipID`, reads register 255, requested at index 56, at aux
/// index 56, and registers 253–251 at 58–60; pyxdaq `datablock.py` reads the same rows).
/// Intan's own RHS controller delivers it one frame later (RHX `getChipID`: 57, 59–61).
pub const RESULT_FRAME_OFFSET: usize = 0;

/// Register 1: DSP offset removal enabled (bit 4), weak MISO (bit 7), auxiliary digital
/// outputs 1 and 2 high impedance (bits 8 and 10); the cutoff code goes in bits 3:0 (RHX
/// `getRHSRegisterValue`, `setDefaultRHSSettings`).
const REGISTER_1_FLAGS: u16 = (1 << 10) | (1 << 8) | (1 << 7) | (1 << 4);
/// Register 2: impedance-check DAC powered (bit 6), check off, 0.1 pF scale (RHX
/// `setDefaultRHSSettings`).
const REGISTER_2: u16 = 1 << 6;
/// Registers 4 and 5: the RH1 and RH2 DACs for a 7.5 kHz upper bandwidth (RH1 DAC1 = 22, RH2
/// DAC1 = 23, both DAC2 = 0): what RHX `setUpperBandwidth(7500.0)` computes (pyxdaq
/// `IntanHeadstage._upper_bw_reg(7500)` gives the same).
const REGISTER_4: u16 = 22;
const REGISTER_5: u16 = 23;
/// Registers 6 and 7: the RL DACs of the lower bandwidth used while amplifiers settle (A,
/// 1 kHz: DAC1 = 10) and in normal operation (B, 1 Hz: DAC1 = 44, DAC2 = 6), as RHX
/// `setLowerBandwidth(1000.0, 1)` and `setLowerBandwidth(1.0, 0)` compute them (pyxdaq
/// `_lower_bw_reg`, the same).
const REGISTER_6: u16 = 10;
const REGISTER_7: u16 = (6 << 7) | 44;
/// Every AC amplifier powered (register 8), every DC amplifier powered (register 38).
const ALL_AMPLIFIERS: u16 = 0xffff;

/// What the driver keeps of one RHS2116's registers beyond recording: what the stimulation and
/// amplifier-settle writes of [`register_config_with`] hold (RHX keeps the same in its
/// `RHXRegisters` instance per controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RhsChipSettings {
    /// Registers 32 and 33 hold the enabling values.
    pub stim_enabled: bool,
    /// The current DAC's step (registers 34 and 35).
    pub step: StimStep,
    /// Per channel, the positive and negative current magnitudes in steps (registers 96–111 and
    /// 64–79, untrimmed).
    pub positive: [u16; 16],
    pub negative: [u16; 16],
    /// Register 10: amplifier fast settle on every channel.
    pub fast_settle: bool,
}

impl Default for RhsChipSettings {
    /// The state bring-up leaves: stimulators disabled, no currents, the finest step, no fast
    /// settle.
    fn default() -> Self {
        RhsChipSettings {
            stim_enabled: false,
            step: rhs::STIM_STEPS[0],
            positive: [0; 16],
            negative: [0; 16],
            fast_settle: false,
        }
    }
}

/// Register 36: the charge-recovery target DAC at 0 V (RHX `setChargeRecoveryTargetVoltage(0)`:
/// `round(v / (1.225 V / 128)) + 128`).
pub const CHARGE_RECOVERY_DAC_0V: u16 = 128;
/// Register 37: the charge-recovery current limit of 10 nA (RHX `setChargeRecoveryCurrentLimit(
/// CurrentLimit10nA)`: sel1 = 50, sel2 = 15, sel3 = 0, packed as register 34 is), RHX's default.
pub const CHARGE_RECOVERY_LIMIT_10NA: u16 = (15 << 7) | 50;

/// The RAM registers the list writes and their values at `rate_hz`, in the list's order.
/// Register 40 (the read-only compliance monitor) is cleared by a `WRITE` with the `m` flag,
/// which is not among them.
pub fn ram_registers(rate_hz: f64) -> [(u8, u16); 17] {
    ram_registers_with(rate_hz, &RhsChipSettings::default())
}

/// [`ram_registers`] with `settings`' stimulation enable and fast settle.
pub fn ram_registers_with(rate_hz: f64, settings: &RhsChipSettings) -> [(u8, u16); 17] {
    let (mux_bias, adc_buffer_bias) = adc_biases(rate_hz);
    let (enable_a, enable_b) = if settings.stim_enabled { (rhs::STIM_ENABLE_A, rhs::STIM_ENABLE_B) } else { (0, 0) };
    let fast_settle = if settings.fast_settle { 0xffff } else { 0 };
    [
        (0, (adc_buffer_bias << 6) | mux_bias),
        (1, REGISTER_1_FLAGS | dsp_cutoff_code(rate_hz, 1.0)),
        (2, REGISTER_2),
        (4, REGISTER_4),
        (5, REGISTER_5),
        (6, REGISTER_6),
        (7, REGISTER_7),
        (8, ALL_AMPLIFIERS),
        // Amplifier fast settle (off unless asked) and the lower-bandwidth select off on every
        // channel.
        (10, fast_settle),
        (12, 0),
        // Stimulation disabled unless used.
        (32, enable_a),
        (33, enable_b),
        (38, ALL_AMPLIFIERS),
        // Stimulation on, polarity, charge-recovery switch, current-limited charge recovery:
        // off on every channel.
        (42, 0),
        (44, 0),
        (46, 0),
        (48, 0),
    ]
}

/// The MUX bias and ADC buffer bias the RHS2116 needs at `rate_hz` (RHX
/// `setSamplingParameters` for `ControllerStimRecord`; pyxdaq `RHSDriver._sample_rate_reg`).
fn adc_biases(rate_hz: f64) -> (u16, u16) {
    match rate_hz {
        r if r < 6001.0 => (40, 32),
        r if r < 7001.0 => (40, 16),
        r if r < 8751.0 => (40, 8),
        r if r < 11001.0 => (32, 8),
        r if r < 14001.0 => (26, 8),
        r if r < 17501.0 => (18, 4),
        r if r < 22001.0 => (16, 3),
        _ => (5, 3),
    }
}

/// The DSP offset-removal cutoff code (1–15) closest to `cutoff_hz` on a logarithmic scale:
/// code `n` puts the high-pass at `fs / 2π × ln(2ⁿ / (2ⁿ − 1))` (RHX `setDspCutoffFreq`).
fn dsp_cutoff_code(rate_hz: f64, cutoff_hz: f64) -> u16 {
    let cutoff = |n: i32| rate_hz / std::f64::consts::TAU * (2f64.powi(n) / (2f64.powi(n) - 1.0)).ln();
    let distance = |n: i32| (cutoff(n).log10() - cutoff_hz.log10()).abs();
    (1..=15).min_by(|&a, &b| distance(a).total_cmp(&distance(b))).unwrap_or(1) as u16
}

/// The slot-0 register-configuration list at `rate_hz`.
pub fn register_config(rate_hz: f64) -> Vec<u32> {
    build_register_config(rate_hz, &RhsChipSettings::default(), false)
}

/// The slot-0 list that also writes the stimulation parameters, RHX's
/// `createCommandListRHSRegisterConfig(updateStimParams = true)`: registers 34–37 in the four
/// places the recording list leaves to dummies, the 32 current registers (64–79, then 96–111),
/// the last of them with the `u` flag so that every triggered register takes its value.
pub fn register_config_with(rate_hz: f64, settings: &RhsChipSettings) -> Vec<u32> {
    build_register_config(rate_hz, settings, true)
}

/// The stimulation-parameter registers of `settings` in [`register_config_with`]'s order:
/// 34–37, then the current registers 64–79 and 96–111.
pub fn stim_registers(settings: &RhsChipSettings) -> Vec<(u8, u16)> {
    let mut out = vec![
        (rhs::REG_STIM_STEP, settings.step.step_register()),
        (rhs::REG_STIM_BIAS, settings.step.bias_register()),
        (36, CHARGE_RECOVERY_DAC_0V),
        (37, CHARGE_RECOVERY_LIMIT_10NA),
    ];
    let current = |magnitude: u16| (rhs::NO_TRIM << 8) | magnitude;
    out.extend((0..16u8).map(|c| (rhs::REG_NEG_CURRENT + c, current(settings.negative[usize::from(c)]))));
    out.extend((0..16u8).map(|c| (rhs::REG_POS_CURRENT + c, current(settings.positive[usize::from(c)]))));
    out
}

fn build_register_config(rate_hz: f64, settings: &RhsChipSettings, update_stim: bool) -> Vec<u32> {
    let dummy = RhsCommand::read(rhs::REG_CHIP_ID).word();
    let mut list = vec![dummy, dummy];
    let registers = ram_registers_with(rate_hz, settings);
    let stim = stim_registers(settings);
    // RHX's order: 0-2, 4-8, 10, 12, 32, 33, four places for 34-37, 38, the compliance
    // monitor's clear, 42-48, 32 places for the stimulation currents.
    let (before, after) = registers.split_at(13);
    list.extend(before.iter().take(12).map(|&(r, v)| RhsCommand::write(r, v).word()));
    if update_stim {
        list.extend(stim[..4].iter().map(|&(r, v)| RhsCommand::write(r, v).word()));
    } else {
        list.extend([dummy; 4]);
    }
    let (r38, v38) = before[12];
    list.push(RhsCommand::write(r38, v38).word());
    list.push(RhsCommand::Write { register: rhs::REG_COMPLIANCE_MONITOR, value: 0, u: false, m: true }.word());
    list.extend(after.iter().map(|&(r, v)| RhsCommand::write(r, v).word()));
    if update_stim {
        let currents = &stim[4..];
        let (last, rest) = currents.split_last().expect("32 current registers");
        list.extend(rest.iter().map(|&(r, v)| RhsCommand::write(r, v).word()));
        list.push(RhsCommand::Write { register: last.0, value: last.1, u: true, m: false }.word());
    } else {
        list.extend([dummy; 32]);
    }
    debug_assert_eq!(list.len(), ROM_READ_AT);
    list.extend(ROM_READ_ORDER.iter().map(|&r| RhsCommand::read(r).word()));
    list.extend(READ_BACK_ORDER.iter().map(|&r| RhsCommand::read(r).word()));
    debug_assert_eq!(list.len(), CLEAR_AT);
    list.push(RhsCommand::Clear.word());
    list.extend([dummy; 10]);
    debug_assert_eq!(list.len(), REGISTER_CONFIG_LEN);
    list
}

/// The dummy list of aux slot `slot` (1–3): `READ` 255, 254 or 253 (RHX
/// `createCommandListDummy`), one upload's worth.
pub fn dummies(slot: usize) -> Vec<u32> {
    vec![
        RhsCommand::read(255 - (slot as u8).saturating_sub(1)).word();
        crate::rhythm::endpoints::rhs::UPLOAD_COMMAND_MULTIPLE
    ]
}

/// What one MISO line answered to one pass of the register-configuration list, read from the
/// slot-0 results of the frames that ran it (`results[i]`: the 32-bit result of command `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomReading {
    pub chip_id: u16,
    /// Register 254's low byte.
    pub amplifiers: u8,
    /// Registers 251–253 read `INTAN` as `READ` results (upper halves zero).
    pub intact: bool,
    /// Every register written reads back what was written.
    pub ram_matches: bool,
}

impl RomReading {
    pub fn read(results: &[u32], rate_hz: f64) -> Option<RomReading> {
        let rom = results.get(ROM_READ_AT..READ_BACK_AT)?;
        let back = results.get(READ_BACK_AT..CLEAR_AT)?;
        let read = |w: u32| ((w >> 16) as u16 == rhs::READ_RESULT_HIGH).then_some(w as u16);
        let company: Option<Vec<u16>> = rom[2..5].iter().rev().map(|&w| read(w)).collect();
        let intact = company.is_some_and(|c| c == rhs::ROM_COMPANY);
        let read_back = |register: u8| {
            let at = READ_BACK_ORDER.iter().position(|&r| r == register)?;
            read(back[at])
        };
        let ram_matches = ram_registers(rate_hz).iter().all(|&(r, v)| read_back(r) == Some(v));
        Some(RomReading {
            chip_id: read(rom[0]).unwrap_or(u16::MAX),
            amplifiers: read(rom[1]).map_or(0, |w| w as u8),
            intact,
            ram_matches,
        })
    }

    /// The chip, when the reading is a whole, valid one: `INTAN`, a known chip id, its
    /// amplifier count and the RAM read back as written.
    pub fn chip(&self) -> Option<RhsChip> {
        let chip = RhsChip::from_chip_id(self.chip_id)?;
        (self.intact && self.ram_matches && usize::from(self.amplifiers) == chip.amplifiers()).then_some(chip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_intan_s_without_stimulation_parameters() {
        let list = register_config(30000.0);
        assert_eq!(list.len(), REGISTER_CONFIG_LEN);
        // RHX createCommandListRHSRegisterConfig: READ 255 at 56, READ 251 at 60, CLEAR at 117.
        assert_eq!(list[56], 0xc0ff_0000);
        assert_eq!(list[60], 0xc0fb_0000);
        assert_eq!(list[CLEAR_AT], 0x6a00_0000);
        assert_eq!(CLEAR_AT, 117);
        assert_eq!(list[2], RhsCommand::write(0, (3 << 6) | 5).word());
        assert_eq!(list[13], RhsCommand::write(33, 0).word());
        assert_eq!(&list[14..18], &[0xc0ff_0000; 4]);
        assert_eq!(list[18], RhsCommand::write(38, 0xffff).word());
        assert_eq!(list[19], 0x9028_0000);
        assert_eq!(list[23], RhsCommand::write(48, 0).word());
        assert!(list[24..56].iter().chain(&list[118..]).all(|&w| w == 0xc0ff_0000));
        assert_eq!(list[READ_BACK_AT + 55], RhsCommand::read(111).word());
        // Nothing in it enables stimulation.
        for w in &list {
            if let Some(RhsCommand::Write { register: 32 | 33, value, .. }) = RhsCommand::from_word(*w) {
                assert_eq!(value, 0);
            }
        }
    }

    #[test]
    fn registers_follow_the_sample_rate() {
        let reg = |rate: f64, r: u8| ram_registers(rate).iter().find(|x| x.0 == r).unwrap().1;
        assert_eq!(reg(30000.0, 0), (3 << 6) | 5);
        assert_eq!(reg(1000.0, 0), (32 << 6) | 40);
        // RHX's closest code on a log scale: 12 at 30 kS/s (1.17 Hz), 7 at 1 kS/s (1.25 Hz).
        assert_eq!(reg(30000.0, 1) & 0xf, 12);
        assert_eq!(reg(1000.0, 1) & 0xf, 7);
        assert_eq!(reg(30000.0, 7), 0x032c);
    }

    #[test]
    fn a_reading_needs_intan_the_chip_id_and_the_registers_written() {
        let list = register_config(20000.0);
        // A chip answering every READ with its register and every WRITE with ones above.
        let mut regs = [0u16; 256];
        regs[251..=255].copy_from_slice(&[0x494e, 0x5441, 0x4e00, 16, 32]);
        let results: Vec<u32> = list
            .iter()
            .map(|&w| match RhsCommand::from_word(w) {
                Some(RhsCommand::Write { register, value, m: false, .. }) => {
                    regs[usize::from(register)] = value;
                    0xffff_0000 | u32::from(value)
                }
                Some(RhsCommand::Read { register, .. }) => u32::from(regs[usize::from(register)]),
                _ => 0xffff_0000,
            })
            .collect();
        let good = RomReading::read(&results, 20000.0).unwrap();
        assert_eq!(good.chip(), Some(RhsChip::Rhs2116));
        let mut slipped = results.clone();
        slipped[ROM_READ_AT + 4] >>= 1;
        assert_eq!(RomReading::read(&slipped, 20000.0).unwrap().chip(), None);
        let mut stale = results.clone();
        stale[READ_BACK_AT] ^= 1;
        assert_eq!(RomReading::read(&stale, 20000.0).unwrap().chip(), None);
        assert_eq!(RomReading::read(&results[..100], 20000.0), None);
    }
}

//! The auxiliary command lists the driver uploads to an RHD board, and where their results
//! land.
//!
//! Every sample, the Rhythm sequencer sends each port 32 `CONVERT`s and one command from
//! each of three aux slots, stepping through a list per slot (looping at its end). The
//! driver's lists:
//!
//! * slot 3, [`register_config`]: two dummies, the 18 RAM registers written, the ROM read
//!   back (chip id, amplifier count, polarity, die revision, the MISO marker, the chip name
//!   and `INTAN`), the RAM read back, then a `CALIBRATE` (or, in the streaming bank, a
//!   dummy) and dummies. Bring-up reads the ROM results to find chips and cable delays.
//! * slot 1, [`aux_inputs`]: the three auxiliary inputs and the supply sensor.
//! * slot 2, [`temperature`]: the temperature sensor.

use crate::rhythm::rhd::{self, RhdCommand};

/// Commands in the register-configuration list.
pub const REGISTER_CONFIG_LEN: usize = 64;
/// Index of the first ROM read; its result is register 63 (the chip id).
pub const ROM_READ_START: usize = 20;
/// ROM registers read, in order, from [`ROM_READ_START`].
pub const ROM_READ_ORDER: [u8; 18] = [63, 62, 61, 60, 59, 48, 49, 50, 51, 52, 53, 54, 55, 40, 41, 42, 43, 44];
/// Index of the first RAM read-back (registers 0–17).
pub const RAM_READ_START: usize = ROM_READ_START + ROM_READ_ORDER.len();
/// Index of the `CALIBRATE` (in the calibrating bank).
pub const CALIBRATE_AT: usize = RAM_READ_START + 18;

/// Values of RAM registers 0–17 for a board running at `rate_hz` (the RHD2000 datasheet's
/// register map): ADC reference and comparator settings, the ADC buffer and MUX biases the
/// sampling speed needs, weak MISO drive, offset-binary results, the DSP offset-removal
/// high-pass at about 1 Hz, the amplifier bandwidth, and every amplifier powered.
pub fn ram_registers(rate_hz: f64) -> [u8; 18] {
    let (adc_buffer_bias, mux_bias) = adc_biases(rate_hz);
    let mut r = [0u8; 18];
    // ADC reference bandwidth 3, amplifier fast settle off, amplifier Vref on, comparator
    // bias 3, comparator select 2.
    r[0] = 0b1101_1110;
    // Supply sense on.
    r[1] = 0x40 | adc_buffer_bias;
    r[2] = mux_bias;
    // MUX load 0, temperature sensor enabled, auxout high impedance.
    r[3] = 0b0000_0110;
    // Weak MISO, offset binary, DSP offset removal on.
    r[4] = 0x80 | 0x10 | dsp_cutoff_code(rate_hz, 1.0);
    // Impedance check off, its DAC at mid-scale.
    r[5] = 0;
    r[6] = 128;
    r[7] = 0;
    let bw = bandwidth_registers();
    r[8..14].copy_from_slice(&bw);
    r[14..18].copy_from_slice(&[0xff; 4]);
    r
}

/// ADC buffer and MUX bias for the chip's total conversion rate (35 conversions per sample):
/// faster sampling needs more bias current (RHD2000 datasheet, registers 1 and 2).
fn adc_biases(rate_hz: f64) -> (u8, u8) {
    let conversions = rate_hz * 35.0;
    match conversions {
        c if c <= 120_000.0 => (32, 40),
        c if c <= 140_000.0 => (16, 40),
        c if c <= 175_000.0 => (8, 40),
        c if c <= 220_000.0 => (8, 32),
        c if c <= 280_000.0 => (8, 26),
        c if c <= 350_000.0 => (4, 18),
        c if c <= 440_000.0 => (3, 16),
        c if c <= 525_000.0 => (3, 7),
        _ => (2, 4),
    }
}

/// The DSP offset-removal cutoff code (1–15) closest to `cutoff_hz`: code `n` puts the
/// high-pass at `fs / 2π × ln(2ⁿ / (2ⁿ − 1))`.
fn dsp_cutoff_code(rate_hz: f64, cutoff_hz: f64) -> u8 {
    let cutoff = |n: i32| rate_hz / std::f64::consts::TAU * (2f64.powi(n) / (2f64.powi(n) - 1.0)).ln();
    (1..=15).min_by(|&a, &b| (cutoff(a) - cutoff_hz).abs().total_cmp(&(cutoff(b) - cutoff_hz).abs())).unwrap_or(1) as u8
}

/// Registers 8–13: the on-chip amplifier bandwidth DACs (RH1, RH2, RL). Left at the chip's
/// widest setting the driver knows to be safe: RH1/RH2 DACs at 0 with their off-chip bits
/// clear, RL at its lowest DAC codes. The bandwidth is not yet computed from a requested
/// band.
fn bandwidth_registers() -> [u8; 6] {
    [0, 0, 0, 0, 0, 0]
}

/// Register 0's amplifier fast-settle bit: while set, every amplifier is held at its baseline
/// (RHX `getRHDRegisterValue`, register 0: `ampFastSettle[0] << 5`; `setFastSettle`: "drive
/// amplifiers to baseline if enabled").
pub const AMP_FAST_SETTLE_BIT: u8 = 1 << 5;

/// The register-configuration list: `calibrate` puts a `CALIBRATE` at [`CALIBRATE_AT`]
/// (bring-up), otherwise a dummy there (streaming).
pub fn register_config(rate_hz: f64, calibrate: bool) -> Vec<u16> {
    register_config_with(rate_hz, calibrate, false)
}

/// The streaming list with the amplifiers' fast settle on: RHX uploads this third version of
/// its register list to AuxCmd3's bank 2 and selects that bank on every port while its "fast
/// settle" is on, bank 1 again when it is off (`controllerinterface.cpp`: "Upload version with
/// fast settle enabled to AuxCmd3 RAM Bank 2"; `enableFastSettle`). Its read-back of register
/// 0 shows the bit set.
pub fn register_config_fast_settle(rate_hz: f64) -> Vec<u16> {
    register_config_with(rate_hz, false, true)
}

/// The streaming list for external (TTL) fast settle: the same list with register 0 left
/// alone (its write replaced by a dummy). The Rhythm firmware sets and clears register 0's
/// fast-settle bit itself through aux slot 1 on the edges of the chosen TTL input and
/// overrides that bit in slot 1's own register-0 writes only (Intan's Rhythm `main.v`,
/// `RAM_data_out_1`); this slot's write, which the firmware leaves as it is, would release
/// the amplifiers during a long pulse. RHX keeps its usual list (`enableExternalFastSettle`).
pub fn register_config_ttl_fast_settle(rate_hz: f64) -> Vec<u16> {
    let mut list = register_config_with(rate_hz, false, false);
    let dummy = RhdCommand::Read { register: rhd::REG_CHIP_ID }.word();
    for word in list.iter_mut() {
        if matches!(RhdCommand::from_word(*word), Some(RhdCommand::Write { register: 0, .. })) {
            *word = dummy;
        }
    }
    list
}

fn register_config_with(rate_hz: f64, calibrate: bool, fast_settle: bool) -> Vec<u16> {
    let dummy = RhdCommand::Read { register: rhd::REG_CHIP_ID }.word();
    let mut list = vec![dummy, dummy];
    let mut registers = ram_registers(rate_hz);
    if fast_settle {
        registers[0] |= AMP_FAST_SETTLE_BIT;
    }
    for (register, value) in registers.into_iter().enumerate() {
        list.push(RhdCommand::Write { register: register as u8, value }.word());
    }
    debug_assert_eq!(list.len(), ROM_READ_START);
    list.extend(ROM_READ_ORDER.iter().map(|&register| RhdCommand::Read { register }.word()));
    list.extend((0..18).map(|register| RhdCommand::Read { register }.word()));
    debug_assert_eq!(list.len(), CALIBRATE_AT);
    list.push(if calibrate { RhdCommand::Calibrate.word() } else { dummy });
    list.resize(REGISTER_CONFIG_LEN, dummy);
    list
}

/// Slot 1: the auxiliary inputs AUX1–3 and the supply sensor, round robin.
pub fn aux_inputs() -> Vec<u16> {
    let c = |channel| RhdCommand::Convert { channel, dsp: false }.word();
    vec![
        c(rhd::AUX_INPUT_CHANNEL),
        c(rhd::AUX_INPUT_CHANNEL + 1),
        c(rhd::AUX_INPUT_CHANNEL + 2),
        c(rhd::SUPPLY_SENSOR_CHANNEL),
    ]
}

/// Slot 2: the temperature sensor.
pub fn temperature() -> Vec<u16> {
    vec![RhdCommand::Convert { channel: rhd::TEMPERATURE_SENSOR_CHANNEL, dsp: false }.word()]
}

/// What one MISO line answered to one pass of the register-configuration list, read from
/// the aux slot 3 results of the frames that ran it (`results[i]` for command `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomReading {
    pub chip_id: u16,
    pub amplifiers: u16,
    pub miso_marker: u16,
    /// The name registers hold "RHD…" and the company registers "INTAN".
    pub intact: bool,
    /// The RAM read back equals what was written.
    pub ram_matches: bool,
}

impl RomReading {
    pub fn read(results: &[u16], rate_hz: f64) -> Option<RomReading> {
        let rom = results.get(ROM_READ_START..RAM_READ_START)?;
        let ram = results.get(RAM_READ_START..RAM_READ_START + 18)?;
        let byte = |w: u16| if w >> 8 == 0 { Some(w as u8) } else { None };
        let name: Option<Vec<u8>> = rom[5..13].iter().map(|&w| byte(w)).collect();
        let company: Option<Vec<u8>> = rom[13..18].iter().map(|&w| byte(w)).collect();
        let intact = name.is_some_and(|n| n.starts_with(b"RHD")) && company.is_some_and(|c| c == rhd::ROM_COMPANY);
        let written = ram_registers(rate_hz);
        let ram_matches = ram.iter().zip(written).all(|(&got, want)| got == u16::from(want));
        Some(RomReading { chip_id: rom[0], amplifiers: rom[1], miso_marker: rom[4], intact, ram_matches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_list_reads_the_rom_where_the_driver_looks() {
        let list = register_config(30000.0, true);
        assert_eq!(list.len(), REGISTER_CONFIG_LEN);
        assert_eq!(list[ROM_READ_START], RhdCommand::Read { register: 63 }.word());
        assert_eq!(list[ROM_READ_START + 13], RhdCommand::Read { register: 40 }.word());
        assert_eq!(list[CALIBRATE_AT], RhdCommand::Calibrate.word());
        assert_ne!(register_config(30000.0, false)[CALIBRATE_AT], RhdCommand::Calibrate.word());
        // Nine commands after CALIBRATE before the list comes round to a write again.
        const { assert!(REGISTER_CONFIG_LEN - CALIBRATE_AT - 1 + 2 >= 9) };
    }

    #[test]
    fn the_ttl_fast_settle_list_leaves_register_0_alone() {
        let streaming = register_config(30000.0, false);
        let ttl = register_config_ttl_fast_settle(30000.0);
        let writes_0 = |l: &[u16]| {
            l.iter()
                .filter(|w| matches!(RhdCommand::from_word(**w), Some(RhdCommand::Write { register: 0, .. })))
                .count()
        };
        assert_eq!((writes_0(&streaming), writes_0(&ttl)), (1, 0));
        let differ = streaming.iter().zip(&ttl).filter(|(a, b)| a != b).count();
        assert_eq!((ttl.len(), differ), (streaming.len(), 1));
    }

    #[test]
    fn the_dsp_cutoff_is_near_one_hertz_at_every_rate() {
        for rate in crate::rates::INTAN_SAMPLE_RATES {
            let n = dsp_cutoff_code(rate, 1.0);
            let fc = rate / std::f64::consts::TAU * (2f64.powi(n.into()) / (2f64.powi(n.into()) - 1.0)).ln();
            assert!((0.5..2.0).contains(&fc) || n == 15, "{rate}: code {n} gives {fc} Hz");
        }
    }
}

//! A model of one RHD2000 chip as its SPI port sees it: a register file with the ROM that
//! identifies it, an ADC that samples the simulated electrodes, and the impedance-check
//! circuit that drives a test current into one electrode.
//!
//! Each call answers one command in place; the FPGA model places the answers in frames as
//! the Rhythm FPGA does (amplifier words in their own frame, aux results one frame later: see
//! [`rhd`](crate::rhythm::rhd)). An RHD2164 answers on both MISO lines at once: channel `c` on
//! MISO A and `c + 32` on MISO B, and each line reads back its own register-59 marker.
//!
//! ## Electrodes and the impedance check
//!
//! Every amplifier input has an [`Electrode`]: a series resistance and a double-layer
//! capacitance to the reference, drawn from the spec's seed ([`electrodes`]), plus the
//! [`SHUNT_CAPACITANCE_F`] from the input to ground that every real input has. With register
//! 5's impedance check on (bit 0, with its DAC powered, bit 6), the amplifier that register 7
//! selects (0–63; on an RHD2164, 32–63 are the MISO B amplifiers) receives the test current
//! `C × dV/dt` through the capacitor register 5 bits 4:3 choose (0 = 0.1 pF, 1 = 1 pF,
//! 3 = 10 pF; code 2, which Intan does not use, is taken as 10 pF), where `V` is the DAC of
//! register 6 (code 128 = 0 V, [`ZCHECK_DAC_VOLTS_PER_CODE`]). Its sample then carries the
//! neural signal plus the voltage that current develops across the electrode in parallel with
//! the shunt, clipped at the amplifier's ±[`AMPLIFIER_LIMIT_UV`].
//!
//! * The DAC codes are taken as samples of the smooth waveform they encode: the response is
//!   the bilinear (Tustin) discretization of `V(s) = s·C·Z(s)·V_dac(s)`, one first-order
//!   step per sample, prewarped to the DAC's fundamental (the samples between its upward
//!   crossings of mid-scale). A sine DAC is answered with the exact steady state at its own
//!   frequency, without delay or amplitude error (until its period has been seen, at
//!   `fs/π·tan(π f/fs)`, 0.4 % above `f` at `f = fs/30`). A real chip's staircase DAC and
//!   amplifier bandwidth shape the response further; the model does not, so the vendor's
//!   empirical bandwidth correction has nothing to correct here.
//! * The neural signal goes on under the test voltage, as it does on a real electrode: a
//!   signal at the test frequency (`sim-sine` puts a 100 µV 1 kHz tone on every eighth
//!   channel) adds to the reading.
//! * A DAC code reaches the electrode [`ZCHECK_LATENCY_SAMPLES`] samples after the frame
//!   whose aux command wrote it, the latency Intan's software corrects the measured phase for
//!   on real boards (RHX `impedancereader.cpp`: 3 samples).
//! * The test capacitor is an ideal current source: the electrode's voltage does not load it
//!   (at most 5 mV against the DAC's 0.6 V). Register 5's dummy load (bit 5), connect-all
//!   (bit 2) and polarity (bit 1) bits are stored, not modeled: an RHD2216's electrode is its
//!   amplifier's + input.
//! * Nothing runs while the check is off; turning it off, or changing the selected amplifier
//!   or capacitor, starts the next measurement from rest.
//!
//! ## Fast settle
//!
//! While register 0's fast-settle bit (bit 5) is set, every amplifier reads its baseline (0),
//! whatever its electrode carries; the auxiliary inputs and sensors are not held.

use super::spec::EmulatorSpec;
use crate::frame::AMPLIFIER_UV_PER_UNIT;
use crate::rhythm::rhd::{self, RhdChip, RhdCommand};

/// The supply sensor's reading for 3.3 V (74.8 µV per code: RHX `rhxdatareader`).
const SUPPLY_CODE: u16 = 44_118;
/// An idle auxiliary input: mid-scale.
const AUX_IDLE_CODE: u16 = 32_768;
/// The temperature sensor's reading (its absolute value depends on the sensor switch
/// sequence; the model gives a constant).
const TEMPERATURE_CODE: u16 = 29_000;

/// Capacitance from each amplifier input to ground (pads, wiring, the input itself), which an
/// impedance measurement sees in parallel with the electrode (RHX
/// `factorOutParallelCapacitance` removes 15 pF for RHD chips).
pub const SHUNT_CAPACITANCE_F: f64 = 15e-12;
/// Volts per Zcheck DAC code around mid-scale (128): 128 codes make 0.6125 V.
pub const ZCHECK_DAC_VOLTS_PER_CODE: f64 = 1.225 / 256.0;
/// Samples from the frame whose aux command writes a Zcheck DAC code to the first amplifier
/// sample that carries its effect.
pub const ZCHECK_LATENCY_SAMPLES: usize = 3;
/// The amplifier's linear input range: an impedance-check voltage beyond it clips, µV.
pub const AMPLIFIER_LIMIT_UV: f64 = 5000.0;
/// Capacitance left at the amplifier input of an `open` (broken-off) electrode, farads.
pub const OPEN_ELECTRODE_CAPACITANCE_F: f64 = 1e-12;

/// The frequency at which [`electrodes`] spreads the electrodes' impedances, Hz.
const SPREAD_AT_HZ: f64 = 1000.0;
/// |Z| at [`SPREAD_AT_HZ`]: log-uniform between these, ohms.
const MAGNITUDE_RANGE_OHMS: (f64, f64) = (100e3, 2e6);
/// Phase at [`SPREAD_AT_HZ`]: uniform between these, degrees.
const PHASE_RANGE_DEGREES: (f64, f64) = (-80.0, -20.0);
/// Keys the electrode stream of the seed (apart from the signal's streams).
const ELECTRODE_STREAM: u64 = 0x656c_6563_7472_6f64;

/// Register 0's amplifier fast-settle bit: while set, every amplifier's output is held at its
/// baseline (RHX `getRHDRegisterValue`: `ampFastSettle[0] << 5`; `setFastSettle`: "drive
/// amplifiers to baseline").
const AMP_FAST_SETTLE: u8 = 0x20;
/// Register 5 bits.
const ZCHECK_ENABLE: u8 = 0x01;
const ZCHECK_DAC_POWER: u8 = 0x40;

/// An electrode as its amplifier input sees it: a series resistance (tissue spreading
/// resistance and track) and the double-layer capacitance of its interface, to the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Electrode {
    pub resistance_ohms: f64,
    pub capacitance_farads: f64,
}

/// A complex impedance, ohms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComplexImpedance {
    pub resistance_ohms: f64,
    /// Negative for a capacitive impedance.
    pub reactance_ohms: f64,
}

impl ComplexImpedance {
    pub fn magnitude_ohms(&self) -> f64 {
        self.resistance_ohms.hypot(self.reactance_ohms)
    }

    pub fn phase_degrees(&self) -> f64 {
        self.reactance_ohms.atan2(self.resistance_ohms).to_degrees()
    }
}

impl Electrode {
    /// The electrode of `magnitude_ohms` and `phase_degrees` (−90 < φ < 0) at `frequency_hz`.
    pub fn with_impedance(magnitude_ohms: f64, phase_degrees: f64, frequency_hz: f64) -> Electrode {
        let phase = phase_degrees.to_radians();
        Electrode {
            resistance_ohms: magnitude_ohms * phase.cos(),
            capacitance_farads: 1.0 / (std::f64::consts::TAU * frequency_hz * magnitude_ohms * -phase.sin()),
        }
    }

    /// The electrode's own impedance at `frequency_hz` (without the input's shunt).
    pub fn impedance(&self, frequency_hz: f64) -> ComplexImpedance {
        ComplexImpedance {
            resistance_ohms: self.resistance_ohms,
            reactance_ohms: -1.0 / (std::f64::consts::TAU * frequency_hz * self.capacitance_farads),
        }
    }
}

/// The electrode of every amplifier channel of the board `spec` describes, in port and
/// MISO-line order (an RHD2164's MISO A channels, then its MISO B channels), the order of
/// [`signal_config`](super::signal_config)'s channels and of the driver's streams. At 1 kHz
/// their |Z| spreads log-uniformly over 100 kΩ–2 MΩ and their phase uniformly over −80° to
/// −20°, from the spec's seed; `open` channels keep only a stray 1 pF.
pub fn electrodes(spec: &EmulatorSpec) -> Vec<Electrode> {
    let mut all: Vec<Electrode> = (0..spec.amplifier_channels())
        .map(|i| {
            let (lo, hi) = MAGNITUDE_RANGE_OHMS;
            let magnitude = lo * (hi / lo).powf(unit_draw(&[spec.seed, ELECTRODE_STREAM, i as u64, 0]));
            let (lo, hi) = PHASE_RANGE_DEGREES;
            let phase = lo + (hi - lo) * unit_draw(&[spec.seed, ELECTRODE_STREAM, i as u64, 1]);
            Electrode::with_impedance(magnitude, phase, SPREAD_AT_HZ)
        })
        .collect();
    for &(port, channel) in &spec.open {
        if let Some(i) = spec.electrode_index(port, channel) {
            all[i] = Electrode { resistance_ohms: 0.0, capacitance_farads: OPEN_ELECTRODE_CAPACITANCE_F };
        }
    }
    all
}

/// Each electrode's true impedance at `frequency_hz`, in the order of [`electrodes`].
pub fn electrode_impedances(spec: &EmulatorSpec, frequency_hz: f64) -> Vec<ComplexImpedance> {
    electrodes(spec).iter().map(|e| e.impedance(frequency_hz)).collect()
}

/// The impedance check while it runs: the configuration its filter was set up for, the DAC
/// codes on their way to the electrode, and the filter's state.
#[derive(Debug, Clone)]
struct Zcheck {
    /// Registers 5 and 7 and the sample rate the filter was set up for.
    key: (u8, u8, u64),
    /// The amplifier driven (`None`: register 7 selects no amplifier of this chip).
    target: Option<usize>,
    /// Its electrode and the test capacitance.
    circuit: Option<(Electrode, f64)>,
    /// The last `ZCHECK_LATENCY_SAMPLES + 1` DAC codes, a ring; `next` is the oldest.
    codes: [u8; ZCHECK_LATENCY_SAMPLES + 1],
    next: usize,
    /// The DAC's period: samples between its upward crossings of mid-scale (`period`, 0 until
    /// two were seen; `since_up` counts from the last).
    last_code: u8,
    seen_up: bool,
    since_up: u32,
    period: u32,
    /// `y[n] = b0·u[n] + b1·u[n−1] − a1·y[n−1]`, `u` in volts at the DAC, `y` in µV.
    b0: f64,
    b1: f64,
    a1: f64,
    u_prev: f64,
    y_prev: f64,
    /// This sample's test voltage, amplifier units (0.195 µV).
    units: f64,
}

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
    /// The electrode of each amplifier (empty: no electrodes, the check drives nothing).
    electrodes: Vec<Electrode>,
    zcheck: Option<Box<Zcheck>>,
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
        ChipModel { chip, registers, first_channel, electrodes: Vec::new(), zcheck: None }
    }

    /// The chip with `electrodes` on its amplifiers (amplifier order: MISO A, then MISO B).
    pub fn with_electrodes(mut self, electrodes: Vec<Electrode>) -> ChipModel {
        self.electrodes = electrodes;
        self
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

    /// Ends the aux commands of one sample (`rate_hz` samples per second): with the impedance
    /// check on, steps the test voltage this sample's conversions carry. Costs one register
    /// test while the check is off.
    pub fn end_sample_commands(&mut self, rate_hz: f64) {
        let r5 = self.registers[5];
        if r5 & (ZCHECK_ENABLE | ZCHECK_DAC_POWER) != ZCHECK_ENABLE | ZCHECK_DAC_POWER {
            self.zcheck = None;
            return;
        }
        self.step_zcheck(r5, rate_hz);
    }

    fn step_zcheck(&mut self, r5: u8, rate_hz: f64) {
        let key = (r5, self.registers[7], rate_hz.to_bits());
        let code = self.registers[6];
        if self.zcheck.as_ref().is_none_or(|z| z.key != key) {
            // The DAC kept running: its period is still known.
            let period = self.zcheck.as_ref().map_or(0, |z| z.period);
            self.zcheck = Some(Box::new(self.zcheck_at_rest(key, code, rate_hz, period)));
        }
        let z = self.zcheck.as_mut().expect("set above");
        z.since_up += 1;
        if z.last_code < 128 && code >= 128 {
            if z.seen_up && z.since_up != z.period {
                z.period = z.since_up;
                (z.b0, z.b1, z.a1) = coefficients(z.circuit, rate_hz, z.period);
            }
            z.seen_up = true;
            z.since_up = 0;
        }
        z.last_code = code;
        z.codes[z.next] = code;
        z.next = (z.next + 1) % z.codes.len();
        let u = dac_volts(z.codes[z.next]);
        let y = z.b0 * u + z.b1 * z.u_prev - z.a1 * z.y_prev;
        z.u_prev = u;
        z.y_prev = y;
        z.units = y / AMPLIFIER_UV_PER_UNIT;
    }

    /// The check just switched to `key`, the DAC resting at `code` (its period `period`, 0:
    /// not known): the filter of the selected electrode in its steady state for a constant
    /// DAC.
    fn zcheck_at_rest(&self, key: (u8, u8, u64), code: u8, rate_hz: f64, period: u32) -> Zcheck {
        let (r5, select, _) = key;
        let target = usize::from(select & 0x3f);
        let electrode = self.electrodes.get(target).filter(|_| target < self.chip.amplifiers());
        let test_capacitance = match (r5 >> 3) & 3 {
            0 => 0.1e-12,
            1 => 1e-12,
            _ => 10e-12,
        };
        let circuit = electrode.map(|e| (*e, test_capacitance));
        let (b0, b1, a1) = coefficients(circuit, rate_hz, period);
        let u = dac_volts(code);
        Zcheck {
            key,
            target: electrode.map(|_| target),
            circuit,
            codes: [code; ZCHECK_LATENCY_SAMPLES + 1],
            next: 0,
            last_code: code,
            seen_up: false,
            since_up: 0,
            period,
            b0,
            b1,
            a1,
            u_prev: u,
            // The DC gain: (b0 + b1) / (1 + a1).
            y_prev: (b0 + b1) / (1.0 + a1) * u,
            units: 0.0,
        }
    }

    /// The test voltage on amplifier `amplifier` this sample, amplifier units, if the check
    /// drives it.
    fn zcheck_units(&self, amplifier: usize) -> Option<f64> {
        self.zcheck.as_ref().filter(|z| z.target == Some(amplifier)).map(|z| z.units)
    }

    /// Answers one MOSI word. `electrode(i)` is the simulated signal of electrode `i` at this
    /// sample, in amplifier units (0.195 µV).
    pub fn command(&mut self, word: u16, electrode: impl Fn(usize) -> i16) -> Miso {
        match RhdCommand::from_word(word) {
            Some(RhdCommand::Convert { channel, .. }) => {
                let c = usize::from(channel);
                let amplifiers_per_line = self.chip.amplifiers().min(32);
                let code = |x: i16| if self.twos_complement() { x as u16 } else { (x as u16) ^ 0x8000 };
                let settling = self.registers[0] & AMP_FAST_SETTLE != 0;
                let sample = |line_offset: usize| -> u16 {
                    if c < amplifiers_per_line && settling {
                        code(0)
                    } else if c < amplifiers_per_line {
                        let signal = electrode(self.first_channel + line_offset + c);
                        match self.zcheck_units(line_offset + c) {
                            None => code(signal),
                            Some(test) => {
                                let limit = AMPLIFIER_LIMIT_UV / AMPLIFIER_UV_PER_UNIT;
                                code((f64::from(signal) + test).clamp(-limit, limit).round() as i16)
                            }
                        }
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

/// The test-voltage filter of `circuit` (electrode, test capacitance; `None`: nothing driven)
/// at `rate_hz`: `H(s) = s·Ct·Z(s)` with `Z = (R + 1/sC) ∥ 1/sCp`, which is
/// `Ct/(C + Cp) · (1 + sτ1)/(1 + sτ2)`, `τ1 = RC`, `τ2 = RC·Cp/(C + Cp)`, through the bilinear
/// map `s = k (1 − z⁻¹)/(1 + z⁻¹)`. `k = 2fs` maps frequency `f` to `fs/π·tan(π f/fs)`; with the
/// DAC's period known (`period` ≥ 3 samples), `k` is chosen so that the DAC's fundamental maps
/// to itself. Returns `(b0, b1, a1)` of `y[n] = b0·u[n] + b1·u[n−1] − a1·y[n−1]`, `u` in volts
/// and `y` in µV.
fn coefficients(circuit: Option<(Electrode, f64)>, rate_hz: f64, period: u32) -> (f64, f64, f64) {
    let Some((e, test_capacitance)) = circuit else { return (0.0, 0.0, 0.0) };
    let (r, c, cp) = (e.resistance_ohms, e.capacitance_farads, SHUNT_CAPACITANCE_F);
    let gain = test_capacitance / (c + cp) * 1e6;
    let (tau1, tau2) = (r * c, r * c * cp / (c + cp));
    let k = if period >= 3 {
        let w = std::f64::consts::TAU / f64::from(period);
        rate_hz * w / (w / 2.0).tan()
    } else {
        2.0 * rate_hz
    };
    let d = 1.0 + k * tau2;
    (gain * (1.0 + k * tau1) / d, gain * (1.0 - k * tau1) / d, (1.0 - k * tau2) / d)
}

/// A uniform draw in [0, 1) keyed by `key` (SplitMix64 over the key's words).
fn unit_draw(key: &[u64]) -> f64 {
    let splitmix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let h = key.iter().fold(0x6a09_e667_f3bc_c908u64, |h, &k| splitmix(h ^ k));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The DAC's output for `code`, volts from mid-scale.
fn dac_volts(code: u8) -> f64 {
    (f64::from(code) - 128.0) * ZCHECK_DAC_VOLTS_PER_CODE
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

    /// Runs `samples` samples of a DAC sine of `period` samples (written each sample, as the
    /// aux list does) with the check on through capacitor `scale` at amplifier `select`, and
    /// returns each sample's MISO A and B words of `CONVERT(channel)`, signed.
    fn run_check(
        chip: &mut ChipModel,
        scale: u8,
        select: u8,
        channel: u8,
        period: usize,
        samples: usize,
    ) -> Vec<(i16, i16)> {
        let write = |r, v| RhdCommand::Write { register: r, value: v }.word();
        chip.command(write(5, 0x41 | (scale << 3)), |_| 0);
        chip.command(write(7, select), |_| 0);
        (0..samples)
            .map(|t| {
                let v = (128.0 * (std::f64::consts::TAU * (t % period) as f64 / period as f64).sin() + 128.5).floor();
                chip.command(write(6, v.clamp(0.0, 255.0) as u8), |_| 0);
                chip.end_sample_commands(30000.0);
                let m = chip.command(RhdCommand::Convert { channel, dsp: false }.word(), |_| 0);
                ((m.a ^ 0x8000) as i16, (m.b ^ 0x8000) as i16)
            })
            .collect()
    }

    /// Amplitude (µV) and phase (degrees, against the DAC sine's derivative) over the last
    /// `periods` periods of `x`.
    fn phasor(x: &[i16], period: usize, periods: usize) -> (f64, f64) {
        let n = period * periods;
        let start = (x.len() - n) / period * period;
        let (mut i, mut q) = (0.0, 0.0);
        for (t, &v) in x.iter().enumerate().skip(start).take(n) {
            let a = std::f64::consts::TAU * (t % period) as f64 / period as f64;
            i += f64::from(v) * AMPLIFIER_UV_PER_UNIT * a.cos();
            q -= f64::from(v) * AMPLIFIER_UV_PER_UNIT * a.sin();
        }
        (2.0 * (i / n as f64).hypot(q / n as f64), q.atan2(i).to_degrees())
    }

    #[test]
    fn the_check_drives_the_selected_amplifier_through_its_electrode_and_shunt() {
        let electrodes: Vec<Electrode> =
            (0..64).map(|i| Electrode::with_impedance(200e3 + 10e3 * i as f64, -60.0, 1000.0)).collect();
        let mut chip = ChipModel::new(RhdChip::Rhd2164, 0).with_electrodes(electrodes.clone());
        // Amplifier 37 is MISO B channel 5; MISO A channel 5 stays quiet.
        let words = run_check(&mut chip, 1, 37, 5, 30, 900);
        let a: Vec<i16> = words.iter().map(|w| w.0).collect();
        let b: Vec<i16> = words.iter().map(|w| w.1).collect();
        assert!(a.iter().all(|&x| x == 0));
        let (amplitude, phase) = phasor(&b, 30, 20);
        // The node: the electrode in parallel with the shunt, at f = fs/30 = 1 kHz.
        let z = electrodes[37].impedance(1000.0);
        let w = std::f64::consts::TAU * 1000.0;
        let (g, b_) = {
            let d = z.resistance_ohms.powi(2) + z.reactance_ohms.powi(2);
            (z.resistance_ohms / d, -z.reactance_ohms / d + w * SHUNT_CAPACITANCE_F)
        };
        let node = (g / (g * g + b_ * b_), -b_ / (g * g + b_ * b_));
        let want = w * 1e-12 * 0.6125 * node.0.hypot(node.1) * 1e6;
        let want_phase = node.1.atan2(node.0).to_degrees() - 360.0 * ZCHECK_LATENCY_SAMPLES as f64 / 30.0;
        assert!((amplitude / want - 1.0).abs() < 0.005, "{amplitude} µV, want {want}");
        assert!((phase - want_phase).abs() < 0.3, "{phase}°, want {want_phase}°");
        // Switched off, the amplifier carries its signal alone at once.
        chip.command(RhdCommand::Write { register: 5, value: 0 }.word(), |_| 0);
        chip.end_sample_commands(30000.0);
        let m = chip.command(RhdCommand::Convert { channel: 5, dsp: false }.word(), |i| i as i16);
        assert_eq!(m, Miso { a: 5 ^ 0x8000, b: 37 ^ 0x8000 });
    }

    #[test]
    fn too_much_test_current_clips_at_the_amplifier_limit() {
        let mut chip =
            ChipModel::new(RhdChip::Rhd2132, 0)
                .with_electrodes(vec![Electrode::with_impedance(1e6, -70.0, 1000.0); 32]);
        // 10 pF into 1 MΩ would be about 38 mV.
        let words = run_check(&mut chip, 3, 2, 2, 30, 300);
        let limit = (AMPLIFIER_LIMIT_UV / AMPLIFIER_UV_PER_UNIT).round() as i16;
        let peak = words[100..].iter().map(|w| w.0.abs()).max().unwrap();
        assert_eq!(peak, limit);
    }

    #[test]
    fn electrodes_spread_as_documented_and_open_ones_are_open() {
        let spec: EmulatorSpec = "ports=A:2164+2132,B:2216 open=B:4 seed=3".parse().unwrap();
        let all = electrode_impedances(&spec, 1000.0);
        assert_eq!(all.len(), 112);
        for (i, z) in all.iter().enumerate() {
            if i == 100 {
                assert!(z.magnitude_ohms() > 150e6 && (z.phase_degrees() + 90.0).abs() < 1e-9, "{z:?}");
            } else {
                assert!((100e3..2e6).contains(&z.magnitude_ohms()), "{i}: {z:?}");
                assert!((-80.0..-20.0).contains(&z.phase_degrees()), "{i}: {z:?}");
            }
        }
        let other: EmulatorSpec = "ports=A:2164+2132,B:2216 seed=4".parse().unwrap();
        assert_ne!(electrodes(&spec)[0], electrodes(&other)[0], "another seed, other electrodes");
    }
}

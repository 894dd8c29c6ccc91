//! The hot loop: one cascade of biquads per channel, many channels at once.
//!
//! Samples arrive frame-major (one value per channel, frame after frame), so the loop runs
//! frame by frame and, inside, over channels: consecutive channels are consecutive in memory
//! and independent, so they run side by side as vector operations. Channels go in groups of
//! `LANES`; the coefficients and states are kept as structure of arrays per group (for each
//! section: the group's `d`s, then its `c2`s, …, then each state), so a group reads one
//! contiguous stretch of memory. Every channel runs the same number of sections (shorter
//! cascades are padded with identity sections), so the loop has no branch. A group runs all
//! its sections while its samples are in registers: the signal is read and written once per
//! frame whatever the number of sections.
//!
//! A group is 32 channels, four AVX2 registers, although one register holds eight: each
//! section's output feeds the next through a chain of about seven dependent operations, and
//! four independent chains keep the processor busy where one would leave it waiting (with
//! groups of 8, eight sections ran at half the per-section speed of one).
//!
//! The groups are processed in tiles sized so a tile's coefficients and states stay in the
//! L1 cache across all the frames of a block. The loop is plain Rust on fixed-size arrays,
//! which the compiler vectorises with SSE everywhere and, in copies compiled for AVX2 and for
//! AVX-512 and chosen at run time, with 256- and 512-bit registers (the latter about 10 %
//! faster on this project's AMD development machine, whose AVX-512 runs in 256-bit halves).
//! All copies do the same operations in the same order (no fused multiply-add), so results
//! are identical on every x86-64 machine.
//!
//! # Why not direct form in `f32`
//!
//! Each section runs as a trapezoidal state-variable filter (Zavalishin's topology-preserving
//! transform, in Simper's formulation) rather than the transposed direct form II that
//! [`sosfilt`](super::sosfilt) uses in `f64`. Both realise exactly the same transfer function;
//! they differ in rounding. Direct-form coefficients near a pole close to z = 1 (a 1 Hz
//! highpass, a 60 Hz notch, a 100 Hz lowpass at 30 kHz) are numbers like −1.99958 whose
//! meaning lies in their last digits: rounded to `f32` they describe a different filter
//! (against scipy, a 1 Hz highpass was off by 6 % of the signal, a 60 Hz notch by 0.25 %).
//! The state-variable form's coefficients are small numbers (`g = tan(π·f/fs)`) that `f32`
//! keeps to full relative precision, and the same cases come within a few 1e-6 of the
//! signal. It costs 16 operations per sample and section instead of 9.
//!
//! Each section of [`Sos`](super::Sos) is converted exactly (in `f64`): its denominator
//! `1 + a1/z + a2/z²` mapped back through the bilinear transform gives the analog
//! `s² + k·s + 1` at prewarped frequency `g`, its numerator the three output mixing gains.
//! Every stable section converts (`g` and `k` are positive inside the stability triangle).

use crate::stage::scale_units;

/// Channels processed side by side: four AVX2 registers of `f32`.
const LANES: usize = 32;
/// Coefficients per section and channel: d c2 g (the state recursion) and m0 m1 m2 (the
/// output mix of input, band and low outputs).
const COEFFICIENTS: usize = 6;
/// State words per section and channel: the two trapezoidal integrators.
const STATES: usize = 2;
/// Floats per section and group: coefficients, then states, each `LANES` wide.
const SECTION_FLOATS: usize = (COEFFICIENTS + STATES) * LANES;
/// Floats of coefficients and state a tile may take: 16 KiB, half of a small L1 data cache.
const TILE_FLOATS: usize = 4096;
/// States below this magnitude are set to zero after each block. A filter whose input goes
/// to exact zero (a disconnected channel) decays into subnormal numbers, which cost a hundred
/// times as much to compute on x86; no signal in µV comes near 1e-30.
const FLUSH_BELOW: f32 = 1e-30;

/// The identity section: no recursion, output = input.
const IDENTITY: [f32; COEFFICIENTS] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// The state-variable coefficients `[d, c2, g, m0, m1, m2]` of a stable section
/// `[b0, b1, b2, 1, a1, a2]`.
///
/// Simper's recursion has `v1 = c1·ic1 + c2·(x − ic2)` with `c1 = 1/(1 + g·(g + k))`. For
/// a low or narrow section `c1` is 1 − 1e-4 or so, and rounding it to `f32` loses the damping
/// (a 0.5 Hz-wide 60 Hz notch came out 1e-4 of the signal off scipy). The loop uses
/// `v1 = ic1 + (c2·(x − ic2) − d·ic1)` with `d = 1 − c1` instead, a small number `f32`
/// keeps exactly enough (the same notch: 2e-6).
pub(crate) fn state_variable(section: &[f64; 6]) -> [f64; COEFFICIENTS] {
    let [b0, b1, b2, _, a1, a2] = *section;
    // The denominator at z = −1, twice (1 − a2), and at z = 1: the analog denominator is
    // A·w² + B·w + C with w = (z − 1)/(z + 1). All positive when stable.
    let (a, b, c) = (1.0 - a1 + a2, 2.0 * (1.0 - a2), 1.0 + a1 + a2);
    let g = (c / a).sqrt();
    let k = b / (a * c).sqrt();
    let damping = g * (g + k);
    let c1 = 1.0 / (1.0 + damping);
    let m0 = (b0 - b1 + b2) / a;
    let m1 = 2.0 * (b0 - b2) * g / c - m0 * k;
    let m2 = (b0 + b1 + b2) / c - m0;
    [damping / (1.0 + damping), g * c1, g, m0, m1, m2]
}

/// The cascades of the channels `lo..lo + width`, compiled for the real-time loop.
#[derive(Debug, Clone)]
pub(crate) struct Bank {
    lo: usize,
    width: usize,
    sections: usize,
    /// Groups per tile.
    tile: usize,
    /// `[group][section][coefficients then states][lane]`, a group being `LANES` channels
    /// (the last one padded with identity lanes).
    data: Vec<f32>,
    /// `[section][channel]`: the section's input when the channel's input is a constant 1 and
    /// the cascade is at rest (the product of the DC gains of the sections before it).
    rest_level: Vec<f32>,
    /// `[channel]`: gain at 0 Hz.
    dc_gain: Vec<f32>,
    /// `[channel]`: the outputs of the last frame processed.
    last_output: Vec<f32>,
    /// Whether this CPU runs the AVX2 copy of the loop.
    avx2: bool,
    /// Whether this CPU runs the AVX-512 copy of the loop.
    avx512: bool,
}

impl Bank {
    /// A bank for `cascades`, one per channel of the plan (empty: not filtered). The bank
    /// spans the channels from the first filtered to the last.
    pub(crate) fn new(cascades: &[Vec<[f64; 6]>]) -> Bank {
        let lo = cascades.iter().position(|c| !c.is_empty()).unwrap_or(0);
        let hi = cascades.iter().rposition(|c| !c.is_empty()).map_or(lo, |i| i + 1);
        let width = hi - lo;
        let sections = cascades.iter().map(Vec::len).max().unwrap_or(0);
        let groups = width.div_ceil(LANES);
        let mut bank = Bank {
            lo,
            width,
            sections,
            tile: (TILE_FLOATS / (SECTION_FLOATS * sections.max(1))).max(1),
            data: crate::prefault::prefaulted(groups * sections * SECTION_FLOATS, 0.0).into_vec(),
            rest_level: crate::prefault::prefaulted(sections * width, 0.0).into_vec(),
            dc_gain: vec![1.0; width],
            last_output: crate::prefault::prefaulted(width, 0.0).into_vec(),
            avx2: avx2_available(),
            avx512: avx512_available(),
        };
        for i in 0..groups * LANES {
            // Levels from the coefficients as they will run, rounded to f32.
            let cascade = cascades.get(lo + i).filter(|_| i < width).map_or(&[][..], Vec::as_slice);
            let mut level = 1.0f64;
            for s in 0..sections {
                let c = cascade.get(s).map_or(IDENTITY, |c| state_variable(c).map(|v| v as f32));
                for (k, &v) in c.iter().enumerate() {
                    let at = bank.at(s, k, i);
                    bank.data[at] = v;
                }
                if i < width {
                    bank.rest_level[s * width + i] = level as f32;
                }
                // At rest the band output is 0 and the low output equals the input.
                level *= f64::from(c[3]) + f64::from(c[5]);
            }
            if i < width {
                bank.dc_gain[i] = level as f32;
            }
        }
        bank
    }

    /// Index in `data` of word `k` (coefficients, then states) of section `s` for the bank's
    /// `i`-th channel.
    fn at(&self, s: usize, k: usize, i: usize) -> usize {
        (i / LANES * self.sections + s) * SECTION_FLOATS + k * LANES + i % LANES
    }

    /// Filters the bank's channels of every frame of `samples` (frame-major, `channels` per
    /// frame) in place, continuing from the state the previous call left.
    pub(crate) fn process(&mut self, samples: &mut [f32], channels: usize) {
        self.dispatch(InPlace, samples, channels);
    }

    /// Like [`process`](Self::process) on `units` (16-bit samples, frame-major like
    /// `samples`) times `scale`, writing every channel of `samples`: the bank's filtered, the
    /// others converted. The conversion happens as each value is loaded, so the block is
    /// read and written once instead of converted in one pass and filtered in another; the
    /// results are those of converting first (`f32::from(unit) * scale`), bit for bit.
    pub(crate) fn process_units(&mut self, units: &[i16], scale: f32, samples: &mut [f32], channels: usize) {
        let frames = samples.len().min(units.len()) / channels;
        let (samples, units) = (&mut samples[..frames * channels], &units[..frames * channels]);
        // A bank with nothing to filter converts every channel.
        let (lo, hi) = if self.width == 0 || self.sections == 0 { (0, 0) } else { (self.lo, self.lo + self.width) };
        if lo > 0 || hi < channels {
            for (out, units) in samples.chunks_exact_mut(channels).zip(units.chunks_exact(channels)) {
                scale_units(&mut out[..lo], &units[..lo], scale);
                scale_units(&mut out[hi..], &units[hi..], scale);
            }
        }
        self.dispatch(Units { units, scale }, samples, channels);
    }

    /// Runs the loop over the frames of `samples`, taking the input from `input`, in the copy
    /// compiled for what the processor has.
    fn dispatch<I: Input>(&mut self, input: I, samples: &mut [f32], channels: usize) {
        let frames = samples.len() / channels;
        if self.width == 0 || self.sections == 0 || frames == 0 {
            return;
        }
        let samples = &mut samples[..frames * channels];
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            // SAFETY: the CPU has AVX-512F (checked when the bank was built).
            unsafe { self.run_avx512(input, samples, channels) };
        } else if self.avx2 {
            // SAFETY: the CPU has AVX2 (checked when the bank was built).
            unsafe { self.run_avx2(input, samples, channels) };
        } else {
            self.run(input, samples, channels);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.run(input, samples, channels);

        let (lo, w) = (self.lo, self.width);
        self.last_output.copy_from_slice(&samples[(frames - 1) * channels + lo..][..w]);
        for section in self.data.chunks_exact_mut(SECTION_FLOATS) {
            for z in &mut section[COEFFICIENTS * LANES..] {
                *z = if z.abs() < FLUSH_BELOW { 0.0 } else { *z };
            }
        }
    }

    /// [`run`](Self::run) compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2<I: Input>(&mut self, input: I, samples: &mut [f32], channels: usize) {
        self.run(input, samples, channels);
    }

    /// [`run`](Self::run) compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<I: Input>(&mut self, input: I, samples: &mut [f32], channels: usize) {
        self.run(input, samples, channels);
    }

    /// The loop: tile by tile, frame by frame, group by group, all sections of a group.
    #[inline(always)]
    fn run<I: Input>(&mut self, input: I, samples: &mut [f32], channels: usize) {
        let stride = self.sections * SECTION_FLOATS;
        let (lo, w) = (self.lo, self.width);
        for (t, tile) in self.data.chunks_mut(self.tile * stride).enumerate() {
            let first = t * self.tile * LANES;
            let last = (first + self.tile * LANES).min(w);
            for (f, frame) in samples.chunks_exact_mut(channels).enumerate() {
                let at = f * channels + lo + first;
                let mut lanes = frame[lo + first..lo + last].chunks_exact_mut(LANES);
                let mut groups = tile.chunks_exact_mut(stride);
                for (g, (x, group)) in (&mut lanes).zip(&mut groups).enumerate() {
                    let x: &mut [f32; LANES] = x.try_into().expect("LANES wide");
                    input.load_group(at + g * LANES, x);
                    cascade(x, group);
                }
                let rest = lanes.into_remainder();
                if let (false, Some(group)) = (rest.is_empty(), groups.next()) {
                    input.load(at + (last - first - rest.len()), rest);
                    let mut x = [0.0; LANES];
                    x[..rest.len()].copy_from_slice(rest);
                    cascade(&mut x, group);
                    rest.copy_from_slice(&x[..rest.len()]);
                }
            }
        }
    }

    /// Sets the state for a switch from `old` (the bank in the same position of the plan
    /// being replaced, if any) given `frame`, the bank's input of the last frame: a channel
    /// whose cascade is unchanged keeps its state exactly; any other starts at rest for its
    /// last input (the state-variable equivalent of scipy's `sosfilt_zi(sos) * x0`: each
    /// section's low integrator at the section's input, the band integrator at 0). Leaves in
    /// `frame` what the bank's output is at that moment, for the steps after it.
    pub(crate) fn prime(&mut self, old: Option<&Bank>, frame: &mut [f32]) {
        let w = self.width;
        for i in 0..w {
            let ch = self.lo + i;
            let kept = old.and_then(|old| {
                let j = ch.checked_sub(old.lo).filter(|&j| j < old.width)?;
                let same = (0..self.sections.max(old.sections)).all(|s| self.section(s, i) == old.section(s, j));
                same.then_some((old, j))
            });
            for s in 0..self.sections {
                for k in 0..STATES {
                    let at = self.at(s, COEFFICIENTS + k, i);
                    self.data[at] = match kept {
                        Some((old, j)) if s < old.sections => old.data[old.at(s, COEFFICIENTS + k, j)],
                        Some(_) => 0.0,
                        None if k == 1 => self.rest_level[s * w + i] * frame[ch],
                        None => 0.0,
                    };
                }
            }
            frame[ch] = match kept {
                Some((old, j)) => old.last_output[j],
                None => self.dc_gain[i] * frame[ch],
            };
        }
    }

    /// Coefficients of section `s` for the bank's `i`-th channel; identity past the end.
    fn section(&self, s: usize, i: usize) -> [f32; COEFFICIENTS] {
        if s >= self.sections {
            return IDENTITY;
        }
        std::array::from_fn(|k| self.data[self.at(s, k, i)])
    }
}

/// Where the loop takes a group's input from: the samples it filters in place, or 16-bit
/// units it converts as it loads them. A type per source, so each loop is compiled for one.
trait Input: Copy {
    /// Puts the input values `at..at + x.len()` (indices into the frame-major block) into
    /// `x`, which is where the output of those values goes.
    fn load(self, at: usize, x: &mut [f32]);

    /// [`load`](Self::load) for a whole group, with its width known to the compiler (which
    /// then converts it in a few vector instructions rather than value by value).
    fn load_group(self, at: usize, x: &mut [f32; LANES]);
}

/// The input is the output buffer itself.
#[derive(Clone, Copy)]
struct InPlace;

impl Input for InPlace {
    #[inline(always)]
    fn load(self, _at: usize, _x: &mut [f32]) {}

    #[inline(always)]
    fn load_group(self, _at: usize, _x: &mut [f32; LANES]) {}
}

/// The input is 16-bit units times a scale.
#[derive(Clone, Copy)]
struct Units<'a> {
    units: &'a [i16],
    scale: f32,
}

impl Input for Units<'_> {
    #[inline(always)]
    fn load(self, at: usize, x: &mut [f32]) {
        scale_units(x, &self.units[at..at + x.len()], self.scale);
    }

    #[inline(always)]
    fn load_group(self, at: usize, x: &mut [f32; LANES]) {
        let units: &[i16; LANES] = self.units[at..at + LANES].try_into().expect("LANES wide");
        for l in 0..LANES {
            x[l] = f32::from(units[l]) * self.scale;
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn avx512_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_available() -> bool {
    false
}

/// All sections of one group of channels, trapezoidal state-variable form, per section:
/// `v1 = ic1 + (c2·(x − ic2) − d·ic1); v2 = ic2 + g·v1; ic1 = 2·v1 − ic1; ic2 = 2·v2 − ic2;
/// y = m0·x + m1·v1 + m2·v2`. Fixed-size arrays: no bounds checks, one vector operation per
/// line.
#[inline(always)]
fn cascade(x: &mut [f32; LANES], group: &mut [f32]) {
    let mut v = *x;
    for section in group.chunks_exact_mut(SECTION_FLOATS) {
        let (c, z) = section.split_at_mut(COEFFICIENTS * LANES);
        let c: [&[f32; LANES]; COEFFICIENTS] =
            std::array::from_fn(|k| c[k * LANES..(k + 1) * LANES].try_into().expect("LANES wide"));
        let (ic1, ic2) = z.split_at_mut(LANES);
        let ic1: &mut [f32; LANES] = ic1.try_into().expect("LANES wide");
        let ic2: &mut [f32; LANES] = ic2.try_into().expect("LANES wide");
        let [d, c2, g, m0, m1, m2] = c;
        for l in 0..LANES {
            let v0 = v[l];
            let v1 = ic1[l] + (c2[l] * (v0 - ic2[l]) - d[l] * ic1[l]);
            let v2 = ic2[l] + g[l] * v1;
            ic1[l] = v1 + v1 - ic1[l];
            ic2[l] = v2 + v2 - ic2[l];
            v[l] = m0[l] * v0 + m1[l] * v1 + m2[l] * v2;
        }
    }
    *x = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGHPASS: [f64; 6] =
        [0.9565432255568767, -1.9130864511137533, 0.9565432255568767, 1.0, -1.911197067426073, 0.9149758348014336];

    /// The recursion of [`sections`] in f64, for one channel.
    fn run_state_variable(section: &[f64; 6], x: &[f64]) -> Vec<f64> {
        let [d, c2, g, m0, m1, m2] = state_variable(section);
        let (mut ic1, mut ic2) = (0.0, 0.0);
        x.iter()
            .map(|&v0| {
                let v1 = ic1 + (c2 * (v0 - ic2) - d * ic1);
                let v2 = ic2 + g * v1;
                ic1 = 2.0 * v1 - ic1;
                ic2 = 2.0 * v2 - ic2;
                m0 * v0 + m1 * v1 + m2 * v2
            })
            .collect()
    }

    #[test]
    fn the_state_variable_form_has_the_transfer_function_of_the_section() {
        let sections = [
            HIGHPASS,
            // cheby1(3, 1, 500, fs=25000): a real pole with a pole at the origin, then a pair.
            [1.1464638065965843e-04, 2.2929276131931686e-04, 1.1464638065965843e-04, 1.0, -0.939693796443536, 0.0],
            [1.0, 1.0, 0.0, 1.0, -1.92471452041444, 0.9399230892048553],
            // iirnotch(60, 30, fs=30000)
            [0.999790604342423, -1.9994233301584798, 0.999790604342423, 1.0, -1.9994233301584798, 0.9995812086848459],
            // Two real poles, one zero, b0 = 0.
            [0.0, 1.0, -0.5, 1.0, -0.3, -0.4],
        ];
        let x: Vec<f64> =
            (0..2000).map(|i| ((i * 7919) % 1000) as f64 - 500.0 + if i == 0 { 1e3 } else { 0.0 }).collect();
        for section in sections {
            let mut expected = x.clone();
            crate::dsp::sosfilt(&crate::dsp::Sos::new(vec![section]).unwrap(), &mut expected);
            let got = run_state_variable(&section, &x);
            let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-9 * scale, "{section:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn the_bank_spans_the_filtered_channels_and_pads_short_cascades_with_identity() {
        let cascades = vec![vec![], vec![HIGHPASS, HIGHPASS], vec![], vec![HIGHPASS], vec![]];
        let bank = Bank::new(&cascades);
        assert_eq!((bank.lo, bank.width, bank.sections), (1, 3, 2));
        assert_eq!(bank.section(1, 0), bank.section(0, 0));
        assert_ne!(bank.section(0, 0), IDENTITY);
        assert_eq!(bank.section(0, 1), IDENTITY);
        assert_eq!(bank.section(1, 2), IDENTITY);
        assert_eq!(bank.section(3, 0), IDENTITY);
    }

    #[test]
    fn channels_between_filtered_ones_pass_unchanged() {
        let cascades = vec![vec![HIGHPASS], vec![], vec![HIGHPASS]];
        let mut bank = Bank::new(&cascades);
        let mut samples: Vec<f32> = (0..30).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let before = samples.clone();
        bank.process(&mut samples, 3);
        for (a, b) in samples.iter().zip(&before).skip(1).step_by(3) {
            assert_eq!(a, b);
        }
        assert_ne!(samples[3], before[3]);
    }

    #[test]
    fn a_state_that_decays_to_almost_nothing_is_flushed_to_zero() {
        let mut bank = Bank::new(&[vec![HIGHPASS]]);
        let mut samples = vec![1.0f32; 16];
        bank.process(&mut samples, 1);
        let states = |bank: &mut Bank| -> Vec<f32> {
            bank.data.chunks_exact(SECTION_FLOATS).flat_map(|s| s[COEFFICIENTS * LANES..].to_vec()).collect()
        };
        assert!(states(&mut bank).iter().any(|&z| z != 0.0));
        for section in bank.data.chunks_exact_mut(SECTION_FLOATS) {
            section[COEFFICIENTS * LANES..].iter_mut().for_each(|z| *z *= 1e-35);
        }
        let mut zeros = vec![0.0f32; 16];
        bank.process(&mut zeros, 1);
        assert!(states(&mut bank).iter().all(|&z| z == 0.0));
    }
}

//! IIR filter design: what the user asks for ([`FilterSpec`]) becomes second-order sections
//! ([`Sos`]) with the coefficients scipy.signal computes for the same request.
//!
//! Matching scipy section by section, not just in response, is the point: a lab checks a
//! recording's filter settings against `butter`/`cheby1`/`iirnotch` and re-filters offline, and
//! any difference they find must be rounding, not a different design. So the steps are scipy's,
//! in its order: analog prototype (`buttap`, `cheb1ap`), frequency prewarping at the internal
//! sample rate 2 (`iirfilter`), the `lp2*_zpk` transform, `bilinear_zpk`, then `zpk2sos` with
//! its default `'nearest'` pairing (`pairing.rs`).

use std::f64::consts::PI;

use super::complex::Complex;
use super::pairing::zpk2sos;
use super::sos::Sos;

/// Highest order accepted. Order 8 already gives 48 dB/octave; higher orders are numerically
/// fragile in single precision and no recording needs them.
pub const MAX_ORDER: u32 = 8;

/// Largest Chebyshev passband ripple accepted, dB. Beyond a few dB a Chebyshev filter distorts
/// the passband more than it sharpens the edge; the bound keeps the design finite.
pub const MAX_RIPPLE_DB: f64 = 40.0;

/// The frequency response asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterKind {
    /// Passes below `cutoff_hz`.
    Lowpass {
        /// −3 dB (Butterworth) or ripple-edge (Chebyshev) frequency, Hz.
        cutoff_hz: f64,
    },
    /// Passes above `cutoff_hz`.
    Highpass {
        /// −3 dB (Butterworth) or ripple-edge (Chebyshev) frequency, Hz.
        cutoff_hz: f64,
    },
    /// Passes between `low_hz` and `high_hz`; order N gives 2N poles, as scipy.
    Bandpass {
        /// Lower edge, Hz.
        low_hz: f64,
        /// Upper edge, Hz.
        high_hz: f64,
    },
    /// Stops between `low_hz` and `high_hz`; order N gives 2N poles, as scipy.
    Bandstop {
        /// Lower edge, Hz.
        low_hz: f64,
        /// Upper edge, Hz.
        high_hz: f64,
    },
    /// scipy's `iirnotch`: one biquad, −3 dB width `bandwidth_hz` (Q = centre / bandwidth).
    /// Ignores the spec's family and order.
    Notch {
        /// Frequency removed, Hz (50 or 60 for mains).
        centre_hz: f64,
        /// Width between the −3 dB points, Hz.
        bandwidth_hz: f64,
    },
}

/// The analog prototype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterFamily {
    /// Maximally flat passband (scipy `butter`).
    Butterworth,
    /// Equiripple passband, steeper edge (scipy `cheby1`).
    ChebyshevI {
        /// Peak-to-peak passband ripple, dB.
        ripple_db: f64,
    },
}

/// A filter request: response, prototype and order (1 to [`MAX_ORDER`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSpec {
    /// The response.
    pub kind: FilterKind,
    /// The prototype; ignored by [`FilterKind::Notch`].
    pub family: FilterFamily,
    /// Prototype order; ignored by [`FilterKind::Notch`].
    pub order: u32,
}

/// Why a request cannot be designed. Each names the field and the range it must be in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DesignError {
    /// The sample rate is not a positive finite number.
    #[error("sample_rate_hz {value} must be above 0 and finite")]
    SampleRate {
        /// The rate given.
        value: f64,
    },
    /// A frequency is outside (0, Nyquist).
    #[error("{field} {value} must be above 0 and below the Nyquist frequency {nyquist_hz} Hz")]
    Frequency {
        /// `cutoff_hz`, `low_hz`, `high_hz`, `centre_hz` or `bandwidth_hz`.
        field: &'static str,
        /// The value given.
        value: f64,
        /// Half the sample rate.
        nyquist_hz: f64,
    },
    /// A band's edges are not in order.
    #[error("low_hz ({low_hz}) must be below high_hz ({high_hz})")]
    BandEdges {
        /// The lower edge given.
        low_hz: f64,
        /// The upper edge given.
        high_hz: f64,
    },
    /// The order is outside 1 to [`MAX_ORDER`].
    #[error("order {value} must be 1 to {MAX_ORDER}")]
    Order {
        /// The order given.
        value: u32,
    },
    /// The Chebyshev ripple is outside (0, [`MAX_RIPPLE_DB`]].
    #[error("ripple_db {value} must be above 0 and at most {MAX_RIPPLE_DB} dB")]
    Ripple {
        /// The ripple given.
        value: f64,
    },
    /// Hand-made sections: none given.
    #[error("sections must hold at least one section")]
    NoSections,
    /// Hand-made sections: a coefficient is NaN or infinite, or a0 is not 1.
    #[error("section {section} must be finite with a0 = 1 (b0 b1 b2 1 a1 a2)")]
    Section {
        /// Index of the offending section.
        section: usize,
    },
    /// A section has a pole on or outside the unit circle: hand-made sections that are
    /// unstable, or a valid request whose poles land there in double precision (an extremely
    /// narrow band at a high sample rate, say).
    #[error("section {section} has a pole on or outside the unit circle: the filter would be unstable")]
    Unstable {
        /// Index of the offending section.
        section: usize,
    },
}

/// Designs `spec` for `sample_rate_hz`. Returns the same sections, in the same order, as
/// scipy's `butter`/`cheby1(..., output='sos', fs=fs)` or `iirnotch(w0, Q, fs)`.
pub fn design(spec: &FilterSpec, sample_rate_hz: f64) -> Result<Sos, DesignError> {
    if !(sample_rate_hz > 0.0 && sample_rate_hz.is_finite()) {
        return Err(DesignError::SampleRate { value: sample_rate_hz });
    }
    let nyquist_hz = sample_rate_hz / 2.0;
    let frequency = |field: &'static str, value: f64| {
        if value > 0.0 && value < nyquist_hz {
            Ok(value / nyquist_hz)
        } else {
            Err(DesignError::Frequency { field, value, nyquist_hz })
        }
    };
    if let FilterKind::Notch { centre_hz, bandwidth_hz } = spec.kind {
        frequency("centre_hz", centre_hz)?;
        frequency("bandwidth_hz", bandwidth_hz)?;
        return Sos::checked(vec![iirnotch(centre_hz, centre_hz / bandwidth_hz, sample_rate_hz)]);
    }
    // Checked in the order of the fields of the spec, so the first error is the first field.
    let band = |low_hz: f64, high_hz: f64| -> Result<[f64; 2], DesignError> {
        let low = frequency("low_hz", low_hz)?;
        let high = frequency("high_hz", high_hz)?;
        if low < high {
            Ok([low, high])
        } else {
            Err(DesignError::BandEdges { low_hz, high_hz })
        }
    };
    let wn = match spec.kind {
        FilterKind::Lowpass { cutoff_hz } | FilterKind::Highpass { cutoff_hz } => {
            let w = frequency("cutoff_hz", cutoff_hz)?;
            [w, w]
        }
        FilterKind::Bandpass { low_hz, high_hz } | FilterKind::Bandstop { low_hz, high_hz } => band(low_hz, high_hz)?,
        FilterKind::Notch { .. } => unreachable!("handled above"),
    };
    if !(1..=MAX_ORDER).contains(&spec.order) {
        return Err(DesignError::Order { value: spec.order });
    }
    let n = spec.order as usize;
    let (z, p, k) = match spec.family {
        FilterFamily::Butterworth => buttap(n),
        FilterFamily::ChebyshevI { ripple_db } => {
            if !(ripple_db > 0.0 && ripple_db <= MAX_RIPPLE_DB) {
                return Err(DesignError::Ripple { value: ripple_db });
            }
            cheb1ap(n, ripple_db)
        }
    };
    // iirfilter designs at an internal sample rate of 2 (frequencies normalised to Nyquist)
    // and prewarps so the digital edges land exactly on the requested frequencies.
    const FS: f64 = 2.0;
    let warp = |w: f64| 2.0 * FS * (PI * w / FS).tan();
    let (z, p, k) = match spec.kind {
        FilterKind::Lowpass { .. } => lp2lp((z, p, k), warp(wn[0])),
        FilterKind::Highpass { .. } => lp2hp((z, p, k), warp(wn[0])),
        FilterKind::Bandpass { .. } | FilterKind::Bandstop { .. } => {
            let (lo, hi) = (warp(wn[0]), warp(wn[1]));
            let (bw, wo) = (hi - lo, (lo * hi).sqrt());
            if matches!(spec.kind, FilterKind::Bandpass { .. }) {
                lp2bp((z, p, k), wo, bw)
            } else {
                lp2bs((z, p, k), wo, bw)
            }
        }
        FilterKind::Notch { .. } => unreachable!("handled above"),
    };
    let (z, p, k) = bilinear((z, p, k), FS);
    Sos::checked(zpk2sos(z, p, k).ok_or(DesignError::Unstable { section: 0 })?)
}

/// Zeros, poles, gain.
type Zpk = (Vec<Complex>, Vec<Complex>, f64);

/// Butterworth analog prototype (scipy `buttap`): poles evenly spaced on the left unit
/// semicircle, the middle one exactly real for odd orders.
fn buttap(n: usize) -> Zpk {
    let p = prototype_angles(n)
        .map(|m| {
            // As numpy evaluates `-exp(1j * pi * m / (2 * N))`, complex arithmetic included.
            let arg = Complex::new(0.0, PI) * Complex::real(m) / Complex::real(2.0 * n as f64);
            -(Complex::cis(arg.im) * arg.re.exp())
        })
        .collect();
    (Vec::new(), p, 1.0)
}

/// Chebyshev type I analog prototype (scipy `cheb1ap`): poles on an ellipse, gain set so the
/// passband peaks at 0 dB.
fn cheb1ap(n: usize, ripple_db: f64) -> Zpk {
    let eps = (10f64.powf(0.1 * ripple_db) - 1.0).sqrt();
    let mu = 1.0 / n as f64 * (1.0 / eps).asinh();
    let p: Vec<Complex> = prototype_angles(n).map(|m| -Complex::new(mu, PI * m / (2 * n) as f64).sinh()).collect();
    let mut k = Complex::product(p.iter().map(|&p| -p)).re;
    if n.is_multiple_of(2) {
        k /= (1.0 + eps * eps).sqrt();
    }
    (Vec::new(), p, k)
}

/// numpy's `arange(-N + 1, N, 2)`.
fn prototype_angles(n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| (2 * i) as f64 - (n as f64 - 1.0))
}

/// scipy `lp2lp_zpk`: scales the cutoff to `wo`.
fn lp2lp((z, p, k): Zpk, wo: f64) -> Zpk {
    let degree = p.len() - z.len();
    let scale = |v: &Vec<Complex>| v.iter().map(|&x| Complex::real(wo) * x).collect::<Vec<_>>();
    (scale(&z), scale(&p), k * wo.powf(degree as f64))
}

/// scipy `lp2hp_zpk`: inverts about the unit circle and scales to `wo`; zeros at infinity
/// move to the origin.
fn lp2hp((z, p, k): Zpk, wo: f64) -> Zpk {
    let degree = p.len() - z.len();
    let invert = |v: &Vec<Complex>| v.iter().map(|&x| Complex::real(wo) / x).collect::<Vec<_>>();
    let mut z_hp = invert(&z);
    z_hp.extend(std::iter::repeat_n(Complex::ZERO, degree));
    let gain = Complex::product(z.iter().map(|&x| -x)) / Complex::product(p.iter().map(|&x| -x));
    (z_hp, invert(&p), k * gain.re)
}

/// Each root shifted from baseband to ±`wo`: `r ± sqrt(r² − wo²)`, all `+` first.
fn shift_to_band(v: &[Complex], wo: f64) -> Vec<Complex> {
    let root = |x: Complex| (x.square() - Complex::real(wo * wo)).sqrt();
    let mut out: Vec<Complex> = v.iter().map(|&x| x + root(x)).collect();
    out.extend(v.iter().map(|&x| x - root(x)));
    out
}

/// scipy `lp2bp_zpk`: lowpass to bandpass centred on `wo` with width `bw`.
fn lp2bp((z, p, k): Zpk, wo: f64, bw: f64) -> Zpk {
    let degree = p.len() - z.len();
    let half = |v: &Vec<Complex>| v.iter().map(|&x| x * Complex::real(bw) / Complex::real(2.0)).collect::<Vec<_>>();
    let mut z_bp = shift_to_band(&half(&z), wo);
    z_bp.extend(std::iter::repeat_n(Complex::ZERO, degree));
    (z_bp, shift_to_band(&half(&p), wo), k * bw.powf(degree as f64))
}

/// scipy `lp2bs_zpk`: lowpass to bandstop centred on `wo` with width `bw`; zeros at infinity
/// move to ±j·wo.
fn lp2bs((z, p, k): Zpk, wo: f64, bw: f64) -> Zpk {
    let degree = p.len() - z.len();
    let invert = |v: &Vec<Complex>| v.iter().map(|&x| Complex::real(bw / 2.0) / x).collect::<Vec<_>>();
    let mut z_bs = shift_to_band(&invert(&z), wo);
    z_bs.extend(std::iter::repeat_n(Complex::new(0.0, wo), degree));
    z_bs.extend(std::iter::repeat_n(Complex::new(-0.0, -wo), degree));
    let gain = Complex::product(z.iter().map(|&x| -x)) / Complex::product(p.iter().map(|&x| -x));
    (z_bs, shift_to_band(&invert(&p), wo), k * gain.re)
}

/// scipy `bilinear_zpk`: s → z with `s = 2·fs·(z − 1)/(z + 1)`; zeros at infinity go to
/// Nyquist (z = −1).
fn bilinear((z, p, k): Zpk, fs: f64) -> Zpk {
    let degree = p.len() - z.len();
    let fs2 = Complex::real(2.0 * fs);
    let map = |v: &Vec<Complex>| v.iter().map(|&x| (fs2 + x) / (fs2 - x)).collect::<Vec<_>>();
    let mut z_z = map(&z);
    z_z.extend(std::iter::repeat_n(Complex::real(-1.0), degree));
    let gain = Complex::product(z.iter().map(|&x| fs2 - x)) / Complex::product(p.iter().map(|&x| fs2 - x));
    (z_z, map(&p), k * gain.re)
}

/// scipy `iirnotch(w0, Q, fs)`: one biquad with zeros on the unit circle at `w0`.
fn iirnotch(w0_hz: f64, q: f64, fs: f64) -> [f64; 6] {
    let w0 = 2.0 * w0_hz / fs;
    let bw = w0 / q * PI;
    let w0 = w0 * PI;
    let beta = (bw / 2.0).tan();
    let gain = 1.0 / (1.0 + beta);
    [gain, gain * (-2.0 * w0.cos()), gain, 1.0, -2.0 * gain * w0.cos(), 2.0 * gain - 1.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: FilterKind, order: u32) -> FilterSpec {
        FilterSpec { kind, family: FilterFamily::Butterworth, order }
    }

    #[test]
    fn butterworth_prototype_poles_are_on_the_unit_circle_and_the_middle_one_is_real() {
        let (_, p, k) = buttap(3);
        assert_eq!(k, 1.0);
        assert!(p.iter().all(|p| (p.abs() - 1.0).abs() < 1e-15 && p.re < 0.0));
        assert_eq!(p[1].im, 0.0);
        assert_eq!(p[1].re, -1.0);
    }

    #[test]
    fn chebyshev_prototype_dc_gain_is_zero_db_for_odd_and_minus_ripple_for_even_orders() {
        for (n, ripple) in [(3, 1.0), (4, 1.0), (5, 0.5), (2, 3.0)] {
            let (_, p, k) = cheb1ap(n, ripple);
            let dc = k / Complex::product(p.iter().map(|&p| -p)).re;
            let expected = if n.is_multiple_of(2) { 10f64.powf(-ripple / 20.0) } else { 1.0 };
            assert!((dc - expected).abs() < 1e-12, "order {n}: {dc} vs {expected}");
        }
    }

    #[test]
    fn each_invalid_field_is_named_with_its_range() {
        let hp = |cutoff_hz| spec(FilterKind::Highpass { cutoff_hz }, 2);
        let e = design(&hp(20_000.0), 30_000.0).unwrap_err();
        assert_eq!(e.to_string(), "cutoff_hz 20000 must be above 0 and below the Nyquist frequency 15000 Hz");
        assert!(matches!(design(&hp(f64::NAN), 30_000.0), Err(DesignError::Frequency { field: "cutoff_hz", .. })));
        assert!(matches!(design(&hp(0.0), 30_000.0), Err(DesignError::Frequency { field: "cutoff_hz", .. })));
        assert_eq!(design(&hp(300.0), f64::INFINITY).unwrap_err(), DesignError::SampleRate { value: f64::INFINITY });
        let e = design(&spec(FilterKind::Lowpass { cutoff_hz: 300.0 }, 9), 30_000.0).unwrap_err();
        assert_eq!(e.to_string(), "order 9 must be 1 to 8");
        let e = design(&spec(FilterKind::Bandpass { low_hz: 500.0, high_hz: 300.0 }, 2), 30_000.0).unwrap_err();
        assert!(e.to_string().starts_with("low_hz (500) must be below high_hz (300)"), "{e}");
        let e = design(&spec(FilterKind::Bandstop { low_hz: 500.0, high_hz: f64::INFINITY }, 2), 30_000.0);
        assert!(matches!(e, Err(DesignError::Frequency { field: "high_hz", .. })));
        let cheby = FilterSpec {
            kind: FilterKind::Lowpass { cutoff_hz: 300.0 },
            family: FilterFamily::ChebyshevI { ripple_db: 0.0 },
            order: 2,
        };
        assert_eq!(design(&cheby, 30_000.0).unwrap_err().to_string(), "ripple_db 0 must be above 0 and at most 40 dB");
        let notch = spec(FilterKind::Notch { centre_hz: 60.0, bandwidth_hz: -1.0 }, 0);
        assert!(matches!(design(&notch, 30_000.0), Err(DesignError::Frequency { field: "bandwidth_hz", .. })));
    }

    #[test]
    fn a_notch_ignores_order_and_family() {
        let notch = |order| spec(FilterKind::Notch { centre_hz: 50.0, bandwidth_hz: 2.0 }, order);
        let sos = design(&notch(0), 25_000.0).unwrap();
        assert_eq!(sos.sections().len(), 1);
        assert_eq!(sos, design(&notch(99), 25_000.0).unwrap());
    }
}

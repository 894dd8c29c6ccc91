//! Zeros, poles and gain to second-order sections: scipy's `zpk2sos` with its default digital
//! pairing, `'nearest'`.
//!
//! Which pole goes with which zero, and in which order the sections run, changes every
//! coefficient without changing the filter. Following scipy's choice exactly is what lets a
//! design be compared with scipy's section by section. scipy's rule, and the reason for it:
//! poles nearest the unit circle (the highest gain peaks) are paired first with their nearest
//! zeros, which partly cancel them, and are placed last so that earlier sections cannot
//! overflow on their resonance.

use super::complex::Complex;

/// scipy's tolerance for "this root is real" in `_cplxreal`: 100 machine epsilons, relative.
const REAL_TOLERANCE: f64 = 100.0 * f64::EPSILON;

/// Sections for zeros `z`, poles `p` and gain `k`, in scipy's order. `None` if the roots do
/// not come in conjugate pairs (never for the designs of this module).
pub(crate) fn zpk2sos(mut z: Vec<Complex>, mut p: Vec<Complex>, k: f64) -> Option<Vec<[f64; 6]>> {
    if z.is_empty() && p.is_empty() {
        return Some(vec![[k, 0.0, 0.0, 1.0, 0.0, 0.0]]);
    }
    // As many poles as zeros, padded at the origin, and an even number of each.
    let n = z.len().max(p.len());
    z.resize(n, Complex::ZERO);
    p.resize(n, Complex::ZERO);
    let n_sections = n.div_ceil(2);
    if !n.is_multiple_of(2) {
        z.push(Complex::ZERO);
        p.push(Complex::ZERO);
    }
    // One of each conjugate pair (positive imaginary part), then the real roots.
    let mut z = cplxreal(z)?;
    let mut p = cplxreal(p)?;

    let mut sos = vec![[0.0; 6]; n_sections];
    // The "worst" pole (nearest the unit circle) is placed last, and so on backwards.
    for si in (0..n_sections).rev() {
        let p1 = p.remove(idx_worst(&p)?);
        let reals_left = p.iter().filter(|x| x.is_real()).count();
        sos[si] = if p1.is_real() && reals_left == 0 {
            // The last real pole: pair with the nearest real zero, pad with the origin.
            let z1 = z.remove(nearest(&z, p1, Which::Real)?);
            section(&[z1, Complex::ZERO], &[p1, Complex::ZERO])
        } else if p.len() + 1 == z.len()
            && !p1.is_real()
            && reals_left == 1
            && z.iter().filter(|x| x.is_real()).count() == 1
        {
            // One real pole and one real zero are left to pair with each other: this complex
            // pole must take a complex zero.
            let z1 = z.remove(nearest(&z, p1, Which::Complex)?);
            section(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                let reals: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_real()).collect();
                let worst = idx_worst(&reals.iter().map(|&i| p[i]).collect::<Vec<_>>())?;
                p.remove(reals[worst])
            } else {
                p1.conj()
            };
            if z.is_empty() {
                section(&[], &[p1, p2])
            } else {
                let z1 = z.remove(nearest(&z, p1, Which::Any)?);
                if !z1.is_real() {
                    section(&[z1, z1.conj()], &[p1, p2])
                } else if z.is_empty() {
                    section(&[z1], &[p1, p2])
                } else {
                    let z2 = z.remove(nearest(&z, p1, Which::Real)?);
                    section(&[z1, z2], &[p1, p2])
                }
            }
        };
    }
    for b in &mut sos[0][..3] {
        *b *= k;
    }
    Some(sos)
}

/// Index of the root nearest the unit circle; the first of equals, as numpy's `argmin`.
fn idx_worst(p: &[Complex]) -> Option<usize> {
    let distance = |x: &Complex| (1.0 - x.abs()).abs();
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in p.iter().enumerate() {
        let d = distance(x);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Real,
    Complex,
    Any,
}

/// Index of the root in `from` nearest `to` among those of the kind asked for (scipy's
/// `_nearest_real_complex_idx`).
fn nearest(from: &[Complex], to: Complex, which: Which) -> Option<usize> {
    let mut order: Vec<usize> = (0..from.len()).collect();
    order.sort_by(|&a, &b| (from[a] - to).abs().total_cmp(&(from[b] - to).abs()));
    order.into_iter().find(|&i| match which {
        Which::Any => true,
        Which::Real => from[i].is_real(),
        Which::Complex => !from[i].is_real(),
    })
}

/// One section from up to two zeros and two poles, unit gain: `b = poly(z)` and
/// `a = poly(p)`, each right-aligned in its three slots (scipy's `_single_zpksos`).
fn section(z: &[Complex], p: &[Complex]) -> [f64; 6] {
    let mut sos = [0.0; 6];
    let b = poly(z);
    let a = poly(p);
    sos[3 - b.len()..3].copy_from_slice(&b);
    sos[6 - a.len()..6].copy_from_slice(&a);
    sos
}

/// Monic polynomial with the given roots, highest power first; real because roots come real
/// or in conjugate pairs (numpy's `poly`).
fn poly(roots: &[Complex]) -> Vec<f64> {
    let mut c = vec![Complex::ONE];
    for &r in roots {
        // Convolve with [1, -r].
        let mut next = c.clone();
        next.push(Complex::ZERO);
        for i in 0..c.len() {
            next[i + 1] = next[i + 1] + (-r) * c[i];
        }
        c = next;
    }
    c.into_iter().map(|x| x.re).collect()
}

/// scipy's `_cplxreal`: the complex roots (one of each conjugate pair, imaginary part
/// positive, sorted by real part then imaginary part), followed by the real roots (sorted).
/// Conjugates are averaged so that rounding cannot leave a pair slightly unmatched.
fn cplxreal(mut z: Vec<Complex>) -> Option<Vec<Complex>> {
    // Sort by real part, then magnitude of imaginary part (stable, as numpy's lexsort).
    z.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.abs().total_cmp(&b.im.abs())));
    let is_real = |x: &Complex| x.im.abs() <= REAL_TOLERANCE * x.abs();
    let reals: Vec<Complex> = z.iter().filter(|x| is_real(x)).map(|x| Complex::real(x.re)).collect();
    let mut zp: Vec<Complex> = z.iter().filter(|x| !is_real(x) && x.im > 0.0).copied().collect();
    let mut zn: Vec<Complex> = z.iter().filter(|x| !is_real(x) && x.im < 0.0).copied().collect();
    if zp.len() != zn.len() {
        return None;
    }
    // Runs of (nearly) equal real part are sorted by imaginary part.
    let mut start = 0;
    while start < zp.len() {
        let mut stop = start;
        while stop + 1 < zp.len() && zp[stop + 1].re - zp[stop].re <= REAL_TOLERANCE * zp[stop].abs() {
            stop += 1;
        }
        for run in [&mut zp[start..=stop], &mut zn[start..=stop]] {
            run.sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
        }
        start = stop + 1;
    }
    let mut out = Vec::with_capacity(zp.len() + reals.len());
    for (a, b) in zp.iter().zip(&zn) {
        if (*a - b.conj()).abs() > REAL_TOLERANCE * b.abs() {
            return None;
        }
        out.push((*a + b.conj()) / Complex::real(2.0));
    }
    out.extend(reals);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conjugate_pairs_are_reduced_to_one_root_each_and_reals_come_last_sorted() {
        let z = vec![
            Complex::real(0.5),
            Complex::new(0.1, -0.2),
            Complex::real(-0.5),
            Complex::new(0.1, 0.2 + 1e-17),
            Complex::new(0.3, 1e-20),
        ];
        let out = cplxreal(z).unwrap();
        assert_eq!(out.len(), 4);
        assert!((out[0] - Complex::new(0.1, 0.2)).abs() < 1e-16);
        assert_eq!(&out[1..], &[Complex::real(-0.5), Complex::real(0.3), Complex::real(0.5)]);
        assert!(cplxreal(vec![Complex::new(0.1, 0.2)]).is_none());
    }

    #[test]
    fn a_pole_pair_and_its_zeros_become_one_section_with_the_gain_in_front() {
        let p = Complex::new(0.5, 0.5);
        let sos = zpk2sos(vec![Complex::real(-1.0); 2], vec![p, p.conj()], 0.25).unwrap();
        assert_eq!(sos, vec![[0.25, 0.5, 0.25, 1.0, -1.0, 0.5]]);
    }

    #[test]
    fn an_odd_order_is_padded_with_a_pole_and_a_zero_at_the_origin() {
        let sos = zpk2sos(vec![Complex::real(1.0)], vec![Complex::real(0.9)], 1.0).unwrap();
        assert_eq!(sos, vec![[1.0, -1.0, 0.0, 1.0, -0.9, 0.0]]);
    }
}

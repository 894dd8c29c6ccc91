//! A minimal complex number for filter design.
//!
//! The crate takes no numeric dependencies, and design needs only a handful of operations. Each
//! follows the formula numpy uses (Smith's division, the principal square root), so designs
//! agree with scipy's to the last few bits rather than merely to the same filter.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// `re + i·im`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Complex {
    pub re: f64,
    pub im: f64,
}

impl Complex {
    pub const ZERO: Complex = Complex { re: 0.0, im: 0.0 };
    pub const ONE: Complex = Complex { re: 1.0, im: 0.0 };

    pub const fn new(re: f64, im: f64) -> Self {
        Complex { re, im }
    }

    pub const fn real(re: f64) -> Self {
        Complex { re, im: 0.0 }
    }

    pub fn conj(self) -> Self {
        Complex { re: self.re, im: -self.im }
    }

    /// `|z|`, through `hypot` as numpy's `abs`.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// Whether the imaginary part is exactly zero (numpy's `isreal`).
    pub fn is_real(self) -> bool {
        self.im == 0.0
    }

    /// `exp(i·theta)`.
    pub fn cis(theta: f64) -> Self {
        Complex { re: theta.cos(), im: theta.sin() }
    }

    /// `sinh(z)`.
    pub fn sinh(self) -> Self {
        Complex { re: self.re.sinh() * self.im.cos(), im: self.re.cosh() * self.im.sin() }
    }

    /// `z·z`, as numpy computes `z**2`.
    pub fn square(self) -> Self {
        self * self
    }

    /// The principal square root (branch cut on the negative real axis, sign of the imaginary
    /// part kept), as C's `csqrt`.
    pub fn sqrt(self) -> Self {
        let (x, y) = (self.re, self.im);
        if x == 0.0 && y == 0.0 {
            return Complex { re: 0.0, im: y };
        }
        let t = ((x.abs() + x.hypot(y)) / 2.0).sqrt();
        if x >= 0.0 {
            Complex { re: t, im: y / (2.0 * t) }
        } else {
            Complex { re: y.abs() / (2.0 * t), im: t.copysign(y) }
        }
    }

    /// The product of `items`, left to right (numpy's `prod`), 1 when empty.
    pub fn product(items: impl IntoIterator<Item = Complex>) -> Self {
        items.into_iter().fold(Complex::ONE, |acc, z| acc * z)
    }
}

impl Add for Complex {
    type Output = Complex;
    fn add(self, o: Complex) -> Complex {
        Complex { re: self.re + o.re, im: self.im + o.im }
    }
}

impl Sub for Complex {
    type Output = Complex;
    fn sub(self, o: Complex) -> Complex {
        Complex { re: self.re - o.re, im: self.im - o.im }
    }
}

impl Neg for Complex {
    type Output = Complex;
    fn neg(self) -> Complex {
        Complex { re: -self.re, im: -self.im }
    }
}

impl Mul for Complex {
    type Output = Complex;
    fn mul(self, o: Complex) -> Complex {
        Complex { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }
}

impl Mul<f64> for Complex {
    type Output = Complex;
    fn mul(self, k: f64) -> Complex {
        Complex { re: self.re * k, im: self.im * k }
    }
}

impl Div for Complex {
    type Output = Complex;
    /// Smith's algorithm, as numpy divides complex numbers: no overflow from squaring the
    /// divisor.
    fn div(self, o: Complex) -> Complex {
        let (ar, ai, br, bi) = (self.re, self.im, o.re, o.im);
        if br.abs() >= bi.abs() {
            if br == 0.0 && bi == 0.0 {
                return Complex { re: ar / br.abs(), im: ai / br.abs() };
            }
            let rat = bi / br;
            let scl = 1.0 / (br + bi * rat);
            Complex { re: (ar + ai * rat) * scl, im: (ai - ar * rat) * scl }
        } else {
            let rat = br / bi;
            let scl = 1.0 / (bi + br * rat);
            Complex { re: (ar * rat + ai) * scl, im: (ai * rat - ar) * scl }
        }
    }
}

impl Div<f64> for Complex {
    type Output = Complex;
    fn div(self, k: f64) -> Complex {
        Complex { re: self.re / k, im: self.im / k }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Complex, b: Complex) -> bool {
        (a - b).abs() <= 1e-15 * (1.0 + b.abs())
    }

    #[test]
    fn arithmetic_agrees_with_the_textbook_formulas() {
        let a = Complex::new(1.5, -2.0);
        let b = Complex::new(-0.25, 3.0);
        assert!(close(a * b, Complex::new(1.5 * -0.25 + 6.0, 4.5 + 0.5)));
        assert!(close((a / b) * b, a));
        assert!(close(Complex::new(2.0, 1e-300) / Complex::new(1e-300, 1.0), Complex::new(1e-300, -2.0)));
        assert!(close(a.sqrt().square(), a));
        assert!(close(b.sqrt().square(), b));
        assert!(close(Complex::new(-4.0, 0.0).sqrt(), Complex::new(0.0, 2.0)));
        assert!(close(Complex::new(-4.0, -0.0).sqrt(), Complex::new(0.0, -2.0)));
        assert!(close(Complex::cis(std::f64::consts::FRAC_PI_2), Complex::new(0.0, 1.0)));
        assert!(close(Complex::new(0.0, std::f64::consts::FRAC_PI_2).sinh(), Complex::new(0.0, 1.0)));
        assert_eq!(Complex::product([]), Complex::ONE);
    }
}

//! The simulator's own small deterministic random number generator.
//!
//! The simulated device promises bit-identical output for a given configuration and seed, and regenerates
//! ground truth hours later from nothing but `(seed, unit, epoch)`. That needs a generator
//! whose stream is fixed by this crate rather than by a dependency's version, that can be
//! keyed cheaply by several integers, and that is fast enough to seed once per unit per
//! epoch. A SplitMix64 hash for keying plus xoshiro256++ for the stream fits all three.

/// Distinct keys for the independent random streams, so that e.g. the noise tables and the
/// unit population never share a stream even for the same seed.
pub(crate) mod stream {
    pub const UNITS: u64 = 0x756e_6974_735f_5f31;
    pub const TRAIN: u64 = 0x7472_6169_6e5f_5f32;
    pub const NOISE: u64 = 0x6e6f_6973_655f_5f33;
    pub const LFP: u64 = 0x6c66_705f_5f5f_5f34;
    pub const SINE: u64 = 0x7369_6e65_5f5f_5f35;
}

/// One SplitMix64 step: a strong 64-bit mixer, used to hash keys into seeds.
#[inline]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a sequence of integers into one well-mixed 64-bit value.
#[inline]
pub(crate) fn hash_key(parts: &[u64]) -> u64 {
    let mut h = 0x6a09_e667_f3bc_c908u64;
    for &p in parts {
        h = splitmix64(h ^ p);
    }
    h
}

/// xoshiro256++: small state, fast, good statistical quality, and its output is defined by
/// the algorithm alone (so recordings made by one version replay identically in the next).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator keyed by several integers (e.g. seed, stream, unit, epoch).
    pub fn from_key(parts: &[u64]) -> Self {
        let mut z = hash_key(parts);
        let mut s = [0u64; 4];
        for v in &mut s {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *v = splitmix64(z);
        }
        // An all-zero state would be stuck at zero; splitmix never yields four zeros, but be
        // explicit about the invariant.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of resolution.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Log-uniform in [lo, hi): small values as likely per octave as large ones, which is
    /// how firing rates and spike amplitudes are spread in real recordings.
    #[inline]
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }

    /// Uniform integer in [0, n) (n > 0), by multiply-shift (bias below 2^-32 for our n).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Uniform integer in lo..=hi.
    #[inline]
    pub fn range_inclusive(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal by Box–Muller (one of the pair; simplicity beats speed here, since it
    /// only runs while building tables).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Two independent standard normals (Marsaglia's polar method: one logarithm and no
    /// trigonometry per pair, about a third of the cost of two [`normal`](Self::normal) calls).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        loop {
            let x = 2.0 * self.unit() - 1.0;
            let y = 2.0 * self.unit() - 1.0;
            let s = x * x + y * y;
            // Points outside the unit disc (about 21 %) and the origin are redrawn.
            if s > 0.0 && s < 1.0 {
                let factor = (-2.0 * s.ln() / s).sqrt();
                return (x * factor, y * factor);
            }
        }
    }

    /// Exponential with the given mean.
    #[inline]
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(key: &[u64]) -> Vec<u64> {
        let mut r = Rng::from_key(key);
        (0..4).map(|_| r.next_u64()).collect()
    }

    #[test]
    fn keyed_streams_are_reproducible_and_distinct() {
        assert_eq!(first(&[1, 2, 3]), first(&[1, 2, 3]));
        assert_ne!(first(&[1, 2, 3]), first(&[1, 2, 4]));
        assert_ne!(first(&[1, 2, 3]), first(&[1, 3, 2]));
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = Rng::from_key(&[9]);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn normal_pairs_are_unit_variance_and_uncorrelated() {
        let mut r = Rng::from_key(&[11]);
        let n = 100_000;
        let (mut s, mut s2, mut cross) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let (a, b) = r.normal_pair();
            s += a + b;
            s2 += a * a + b * b;
            cross += a * b;
        }
        let mean = s / (2 * n) as f64;
        let var = s2 / (2 * n) as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        assert!((cross / n as f64).abs() < 0.01, "{}", cross / n as f64);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::from_key(&[5]);
        for n in [1u64, 2, 7, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }
}

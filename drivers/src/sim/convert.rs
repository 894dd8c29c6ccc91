//! Float-to-integer conversion for the hot paths.
//!
//! Rust's `as` casts saturate and map NaN to 0, which is safe but makes LLVM emit a compare and
//! branch per value, so loops containing them do not vectorise; `round` is a libm call. The
//! simulator converts a value per channel per LFP knot and per spike sample, so it uses the
//! classic "magic number" conversion instead: adding 1.5 × 2^23 leaves the integer part in the
//! low mantissa bits (rounded to nearest, ties to even), read back through the bit pattern.
//! Branch-free, vectorisable, deterministic, and safe for any input (out-of-range values are
//! clamped first; NaN gives an arbitrary but harmless integer).

/// 1.5 × 2^23: for |v| < 2^22, `v + MAGIC` has unit spacing and the integer sits in the low
/// mantissa bits.
const MAGIC: f32 = 12_582_912.0;
/// Bit pattern of `MAGIC`.
const MAGIC_BITS: i32 = 0x4B40_0000;
/// Largest magnitude converted exactly.
pub(crate) const ROUND_LIMIT: f32 = 4_000_000.0;

/// `v` rounded to the nearest integer (ties to even), clamped to ±[`ROUND_LIMIT`].
#[inline(always)]
pub(crate) fn round_i32(v: f32) -> i32 {
    let v = v.clamp(-ROUND_LIMIT, ROUND_LIMIT);
    (v + MAGIC).to_bits() as i32 - MAGIC_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_round_ties_even() {
        for v in [-3.5f32, -2.5, -1.49, -0.5, 0.0, 0.49, 0.5, 1.5, 2.5, 1234.7, -98765.2, 3_999_999.0] {
            assert_eq!(round_i32(v), v.round_ties_even() as i32, "{v}");
        }
        assert_eq!(round_i32(1e9), ROUND_LIMIT as i32);
        assert_eq!(round_i32(-1e9), -ROUND_LIMIT as i32);
    }
}

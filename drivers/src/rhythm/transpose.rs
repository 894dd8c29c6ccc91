//! The RHD amplifier words between the USB order (channel-major: channel `c` of stream `s` is
//! word `c × streams + s`) and the frame block's order (stream-major: `s × 32 + c`), with the
//! offset-binary ↔ two's-complement flip of the top bit on the way. This is nearly all of the
//! decoder's work, so on x86-64 it moves 8 × 8 tiles of words with SSE2 (part of the x86-64
//! baseline, so nothing is detected at run time); streams beyond a multiple of 8 and other
//! architectures take the scalar path, which gives identical results.

/// Channels per RHD stream.
const CPS: usize = 32;

/// The flip between offset binary (0 at 32768) and two's complement (0 at 0).
const FLIP: u16 = 0x8000;

/// Decodes `streams × 32` amplifier words from `src` (little-endian bytes, USB order) into
/// `dst` (stream-major, signed).
#[inline]
pub(super) fn rhd_amplifiers_from_usb(src: &[u8], streams: usize, dst: &mut [i16]) {
    let src = &src[..2 * CPS * streams];
    let dst = &mut dst[..CPS * streams];
    let tiled = tiled_streams(streams);
    #[cfg(target_arch = "x86_64")]
    for c0 in (0..CPS).step_by(8) {
        for s0 in (0..tiled).step_by(8) {
            // SAFETY: the tile reads words (c0 + k) × streams + s0 .. + 8 for k < 8, all below
            // 32 × streams (s0 + 8 <= streams), i.e. inside `src`; it writes words
            // (s0 + j) × 32 + c0 .. + 8 for j < 8, inside `dst` (32 × streams words).
            unsafe {
                sse2::tile(
                    src.as_ptr().add(2 * (c0 * streams + s0)),
                    2 * streams,
                    dst.as_mut_ptr().add(s0 * CPS + c0).cast::<u8>(),
                    2 * CPS,
                );
            }
        }
    }
    for c in 0..CPS {
        let row = &src[2 * c * streams..2 * (c + 1) * streams];
        for s in tiled..streams {
            dst[s * CPS + c] = (u16::from_le_bytes([row[2 * s], row[2 * s + 1]]) ^ FLIP) as i16;
        }
    }
}

/// Encodes `streams × 32` amplifier samples from `src` (stream-major, signed) into `dst`
/// (little-endian bytes, USB order).
#[inline]
pub(super) fn rhd_amplifiers_to_usb(src: &[i16], streams: usize, dst: &mut [u8]) {
    let src = &src[..CPS * streams];
    let dst = &mut dst[..2 * CPS * streams];
    let tiled = tiled_streams(streams);
    #[cfg(target_arch = "x86_64")]
    for s0 in (0..tiled).step_by(8) {
        for c0 in (0..CPS).step_by(8) {
            // SAFETY: reads samples (s0 + k) × 32 + c0 .. + 8 for k < 8, inside `src`; writes
            // words (c0 + j) × streams + s0 .. + 8 for j < 8, inside `dst` (s0 + 8 <= streams).
            unsafe {
                sse2::tile(
                    src.as_ptr().add(s0 * CPS + c0).cast::<u8>(),
                    2 * CPS,
                    dst.as_mut_ptr().add(2 * (c0 * streams + s0)),
                    2 * streams,
                );
            }
        }
    }
    for s in tiled..streams {
        for c in 0..CPS {
            let w = (src[s * CPS + c] as u16 ^ FLIP).to_le_bytes();
            let at = 2 * (c * streams + s);
            dst[at] = w[0];
            dst[at + 1] = w[1];
        }
    }
}

/// Asks for `bytes` to be brought into the cache ahead of use (a hint; nothing on other
/// architectures). The frames arrive from memory far larger than the cache, and the tiles read
/// 8 cache lines at a time, which the hardware prefetcher alone does not keep ahead of.
#[inline]
pub(super) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint that never faults; the address is inside `bytes`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Streams handled by whole 8 × 8 tiles (none without SSE2).
#[cfg(target_arch = "x86_64")]
#[inline]
fn tiled_streams(streams: usize) -> usize {
    streams - streams % 8
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn tiled_streams(_streams: usize) -> usize {
    0
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_set1_epi16, _mm_storeu_si128, _mm_unpackhi_epi16, _mm_unpackhi_epi32,
        _mm_unpackhi_epi64, _mm_unpacklo_epi16, _mm_unpacklo_epi32, _mm_unpacklo_epi64, _mm_xor_si128,
    };

    /// Transposes an 8 × 8 tile of 16-bit words and flips each word's top bit: row `k` of the
    /// source (8 words at `src + k × src_stride` bytes) becomes column `k` of the destination
    /// (rows at `dst + j × dst_stride` bytes). Host and USB words are both little endian.
    ///
    /// # Safety
    /// The 8 source rows and 8 destination rows of 16 bytes each must be readable and
    /// writable respectively; no alignment is needed.
    #[inline(always)]
    pub(super) unsafe fn tile(src: *const u8, src_stride: usize, dst: *mut u8, dst_stride: usize) {
        // SAFETY: the caller guarantees the 8 rows of 16 bytes are readable.
        let r: [__m128i; 8] =
            std::array::from_fn(|k| unsafe { _mm_loadu_si128(src.add(k * src_stride).cast::<__m128i>()) });
        let a0 = _mm_unpacklo_epi16(r[0], r[1]);
        let a1 = _mm_unpackhi_epi16(r[0], r[1]);
        let a2 = _mm_unpacklo_epi16(r[2], r[3]);
        let a3 = _mm_unpackhi_epi16(r[2], r[3]);
        let a4 = _mm_unpacklo_epi16(r[4], r[5]);
        let a5 = _mm_unpackhi_epi16(r[4], r[5]);
        let a6 = _mm_unpacklo_epi16(r[6], r[7]);
        let a7 = _mm_unpackhi_epi16(r[6], r[7]);
        let b0 = _mm_unpacklo_epi32(a0, a2);
        let b1 = _mm_unpackhi_epi32(a0, a2);
        let b2 = _mm_unpacklo_epi32(a1, a3);
        let b3 = _mm_unpackhi_epi32(a1, a3);
        let b4 = _mm_unpacklo_epi32(a4, a6);
        let b5 = _mm_unpackhi_epi32(a4, a6);
        let b6 = _mm_unpacklo_epi32(a5, a7);
        let b7 = _mm_unpackhi_epi32(a5, a7);
        let flip = _mm_set1_epi16(0x8000u16 as i16);
        let t = [
            _mm_unpacklo_epi64(b0, b4),
            _mm_unpackhi_epi64(b0, b4),
            _mm_unpacklo_epi64(b1, b5),
            _mm_unpackhi_epi64(b1, b5),
            _mm_unpacklo_epi64(b2, b6),
            _mm_unpackhi_epi64(b2, b6),
            _mm_unpacklo_epi64(b3, b7),
            _mm_unpackhi_epi64(b3, b7),
        ];
        for (j, t) in t.into_iter().enumerate() {
            // SAFETY: the caller guarantees the 8 destination rows of 16 bytes are writable.
            unsafe { _mm_storeu_si128(dst.add(j * dst_stride).cast::<__m128i>(), _mm_xor_si128(t, flip)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar definition, for every stream count (tiles and remainders).
    #[test]
    fn tiles_and_remainders_match_the_definition_both_ways() {
        for streams in 1..=32 {
            let words: Vec<u16> =
                (0..CPS * streams).map(|i| (i as u16).wrapping_mul(40503).wrapping_add(streams as u16)).collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut samples = vec![0i16; CPS * streams];
            rhd_amplifiers_from_usb(&bytes, streams, &mut samples);
            for s in 0..streams {
                for c in 0..CPS {
                    assert_eq!(samples[s * CPS + c], (words[c * streams + s] ^ FLIP) as i16, "{streams} streams");
                }
            }
            let mut back = vec![0u8; bytes.len()];
            rhd_amplifiers_to_usb(&samples, streams, &mut back);
            assert_eq!(back, bytes, "{streams} streams");
        }
    }
}

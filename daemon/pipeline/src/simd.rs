//! Hot loops compiled twice: once for the x86-64 baseline (SSE2) and once for AVX2, the copy
//! chosen at run time by what the processor has.
//!
//! The loops themselves are plain Rust over slices that the compiler vectorizes; compiled
//! with AVX2 enabled it uses 256-bit registers and the instructions that widen 16-bit
//! integers in one step, which roughly halves their time on the processors that have it
//! (every x86-64 machine sold for a rig in the last decade). Both copies perform the same
//! operations in the same order, so their results are identical; other architectures get
//! the baseline copy alone.

/// Defines `fn $name` whose body is compiled for the baseline and, on x86-64, again with AVX2
/// enabled; each call runs the AVX2 copy when the processor has it (a cached flag test).
macro_rules! with_avx2 {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the processor has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use with_avx2;

#[cfg(test)]
mod tests {
    with_avx2! {
        /// A loop the compiler vectorizes, for the test.
        fn widen_and_scale(out: &mut [f32], input: &[i16], scale: f32) {
            for (o, &v) in out.iter_mut().zip(input) {
                *o = f32::from(v) * scale;
            }
        }
    }

    #[test]
    fn the_dispatched_copy_computes_what_the_plain_loop_computes() {
        let input: Vec<i16> = (0..1000).map(|i| (i * 7919 % 65536 - 32768) as i16).collect();
        let mut out = vec![0.0; 1000];
        widen_and_scale(&mut out, &input, 0.195);
        for (o, &v) in out.iter().zip(&input) {
            assert_eq!(*o, f32::from(v) * 0.195);
        }
    }
}

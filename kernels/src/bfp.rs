//! Block-floating-point activation quantization (SPEC §3).
//!
//! A linear layer's input is an `i32` vector in Q12 ([`crate::ACT_FRAC`]). Each
//! block of 8 consecutive channels becomes eight `i8` mantissas `m` and one
//! 4-bit exponent `e in [0, 15]`, meaning `x ≈ m * 2^e` (still in Q12 units).

use crate::error::{check_len, check_multiple};
use crate::round::round_shift;
use crate::{KernelError, GROUP};

/// Largest block exponent (4 bits).
pub const BFP_EXP_MAX: u8 = 15;

/// One block: 8 mantissas sharing one shift exponent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BfpBlock {
    /// Mantissas, `[-128, 127]`.
    pub m: [i8; GROUP],
    /// Exponent, `[0, 15]`.
    pub e: u8,
}

// SAFETY: `BfpBlock` is `repr(C)` with nine 1-byte fields (size 9, align 1, no
// padding), and every bit pattern is a valid value of it.
#[allow(unsafe_code)]
unsafe impl bytemuck::Zeroable for BfpBlock {}
// SAFETY: as above; it is `Copy` and `'static`.
#[allow(unsafe_code)]
unsafe impl bytemuck::Pod for BfpBlock {}

/// Quantizes one block (SPEC §3.1).
///
/// `e` is the smallest value in `0..=15` for which every
/// `round_shift(x_i, e)` (round half up) lies in `[-128, 127]`; the mantissas are
/// those shifted values. If even `e = 15` does not fit (some `x >= 127.5 · 2^15`
/// or `x < -128.5 · 2^15`), the mantissas saturate to `[-128, 127]` at `e = 15`.
///
/// Equivalently, with `hi = max x_i` and `lo = min x_i`: `e` is the smallest with
/// `hi < 127.5 · 2^e` and `lo >= -128.5 · 2^e`.
#[inline]
pub fn quantize_block(x: &[i32; GROUP]) -> BfpBlock {
    let hi = x.iter().copied().max().unwrap_or(0) as i64;
    let lo = x.iter().copied().min().unwrap_or(0) as i64;
    let mut e = 0u8;
    while e < BFP_EXP_MAX && (round_shift(hi, e as u32) > 127 || round_shift(lo, e as u32) < -128) {
        e += 1;
    }
    let mut m = [0i8; GROUP];
    for (mi, &xi) in m.iter_mut().zip(x) {
        *mi = round_shift(xi as i64, e as u32).clamp(-128, 127) as i8;
    }
    BfpBlock { m, e }
}

/// Quantizes a vector (or `T` vectors back to back): `x.len() == 8 * out.len()`
/// (SPEC §3.1).
pub fn quantize_bfp(x: &[i32], out: &mut [BfpBlock]) -> Result<(), KernelError> {
    check_multiple("bfp input length", x.len(), GROUP)?;
    check_len("bfp output blocks", x.len() / GROUP, out.len())?;
    for (blk, chunk) in out.iter_mut().zip(x.chunks_exact(GROUP)) {
        let arr: &[i32; GROUP] = chunk.try_into().expect("chunks_exact yields 8");
        *blk = quantize_block(arr);
    }
    Ok(())
}

/// The Q12 value a block stands for: `m_i << e` (SPEC §3.2).
pub fn dequantize_block(b: &BfpBlock) -> [i64; GROUP] {
    core::array::from_fn(|i| (b.m[i] as i64) << b.e)
}

#[cfg(test)]
mod tests {
    use super::*;

    use edgedecoding_testkit::Lcg;

    /// Oracle: the definition read literally, exponent by exponent, with
    /// exact rational rounding.
    fn oracle(x: &[i32; 8]) -> BfpBlock {
        let r = |v: i32, e: u32| -> i64 {
            (2 * v as i128 + (1i128 << e)).div_euclid(2i128 << e) as i64
        };
        for e in 0..=15u32 {
            if x.iter().all(|&v| (-128..=127).contains(&r(v, e))) {
                return BfpBlock {
                    m: core::array::from_fn(|i| r(x[i], e) as i8),
                    e: e as u8,
                };
            }
        }
        BfpBlock {
            m: core::array::from_fn(|i| r(x[i], 15).clamp(-128, 127) as i8),
            e: 15,
        }
    }

    #[test]
    fn every_16_bit_value_in_a_block() {
        // each value alone (others zero) and as the block maximum with a
        // negative partner: covers every threshold of every exponent up to 2^16.
        for v in i16::MIN as i32 * 2..=i16::MAX as i32 * 2 {
            let x = [v, 0, 1, -1, 0, 0, 0, 0];
            assert_eq!(quantize_block(&x), oracle(&x), "v={v}");
            let y = [3, -v / 3, v, 0, 0, 0, 0, v / 2];
            assert_eq!(quantize_block(&y), oracle(&y), "v={v}");
        }
    }

    #[test]
    fn random_extremes_and_saturation() {
        let mut rng = Lcg(3);
        let specials = [
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i32::MAX,
            i32::MIN,
            127 << 15,
            (127 << 15) + (1 << 14),
            -(128 << 15) - (1 << 14) - 1,
        ];
        for k in 0..200_000 {
            let bits = (rng.next() % 32) as u32;
            let x: [i32; 8] = core::array::from_fn(|_| {
                if rng.next() % 4 == 0 {
                    specials[(rng.next() % specials.len() as u64) as usize]
                } else {
                    ((rng.next() as i64 % (1i64 << bits).max(1)) - (1i64 << bits) / 2) as i32
                }
            });
            let b = quantize_block(&x);
            assert_eq!(b, oracle(&x), "case {k} x={x:?}");
            // error bound vs real value: half a step unless saturated (e = 15)
            if b.e < 15 {
                for i in 0..8 {
                    let err = ((b.m[i] as i64) << b.e) - x[i] as i64;
                    assert!(2 * err.abs() <= 1i64 << b.e);
                }
            }
        }
        let all_max = quantize_block(&[i32::MAX; 8]);
        assert_eq!(all_max, BfpBlock { m: [127; 8], e: 15 });
        let all_min = quantize_block(&[i32::MIN; 8]);
        assert_eq!(
            all_min,
            BfpBlock {
                m: [-128; 8],
                e: 15
            }
        );
        assert_eq!(quantize_block(&[0; 8]), BfpBlock { m: [0; 8], e: 0 });
    }

    #[test]
    fn vector_shape_errors() {
        let mut out = [BfpBlock::default(); 2];
        assert_eq!(
            quantize_bfp(&[0; 15], &mut out).unwrap_err(),
            KernelError::NotMultiple {
                what: "bfp input length",
                value: 15,
                of: 8
            }
        );
        assert_eq!(
            quantize_bfp(&[0; 24], &mut out).unwrap_err(),
            KernelError::Length {
                what: "bfp output blocks",
                expected: 3,
                got: 2
            }
        );
        assert!(quantize_bfp(&[0; 16], &mut out).is_ok());
    }
}

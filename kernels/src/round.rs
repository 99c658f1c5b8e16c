//! Rounding, shifting and saturating primitives (SPEC §1).
//!
//! There is one rounding rule in the whole contract: **round half up**, i.e.
//! toward +infinity, `floor(x / 2^s + 1/2)`. It is what the accelerator's
//! `((t >> (s-1)) + 1) >> 1` computes with arithmetic shifts, so ties go up for
//! positive and negative values alike (`-2.5 -> -2`, `2.5 -> 3`).

/// `floor(x / 2^s + 1/2)`: divide by `2^s`, ties toward +infinity (SPEC §1.1).
///
/// Exact for every `i64` and every `s`; for `s >= 64` the result is `0`
/// (|x / 2^s| <= 1/2 and a tie at -1/2 rounds up to 0).
#[inline(always)]
pub const fn round_shift(x: i64, s: u32) -> i64 {
    if s == 0 {
        x
    } else if s >= 64 {
        0
    } else {
        // Same value as the hardware's ((x >> (s-1)) + 1) >> 1, written so that it
        // cannot overflow at i64::MAX: (y + 1) >> 1 == (y >> 1) + (y & 1).
        (x >> s) + ((x >> (s - 1)) & 1)
    }
}

/// Multiply by `2^-k` with the rounding of [`round_shift`] for `k >= 0`, and by
/// `2^|k|` for `k < 0`, saturating to the `i64` range (SPEC §1.1).
#[inline]
pub const fn shift_round_sat(x: i64, k: i32) -> i64 {
    if k >= 0 {
        round_shift(x, k as u32)
    } else {
        let l = k.unsigned_abs();
        if x == 0 {
            0
        } else if l >= 63 {
            if x > 0 {
                i64::MAX
            } else {
                i64::MIN
            }
        } else {
            let lim = i64::MAX >> l;
            if x > lim {
                i64::MAX
            } else if x < -lim - 1 {
                i64::MIN
            } else {
                x << l
            }
        }
    }
}

/// Clamp to `[-2^(bits-1), 2^(bits-1) - 1]` (SPEC §1.3). `bits` in 1..=63.
#[inline(always)]
pub const fn sat_bits(x: i64, bits: u32) -> i64 {
    let hi = (1i64 << (bits - 1)) - 1;
    let lo = -hi - 1;
    if x > hi {
        hi
    } else if x < lo {
        lo
    } else {
        x
    }
}

/// Saturating narrow to `i8` (SPEC §1.3).
#[inline(always)]
pub const fn sat_i8(x: i64) -> i8 {
    sat_bits(x, 8) as i8
}

/// Saturating narrow to `i16` (SPEC §1.3).
#[inline(always)]
pub const fn sat_i16(x: i64) -> i16 {
    sat_bits(x, 16) as i16
}

/// Saturating narrow to `i32` (SPEC §1.3).
#[inline(always)]
pub const fn sat_i32(x: i64) -> i32 {
    sat_bits(x, 32) as i32
}

/// `floor(sqrt(n))` for every `u64` (SPEC §1.4). Bit-by-bit (restoring)
/// square root: 32 iterations of compare and subtract, no multiplier.
pub const fn isqrt_u64(n: u64) -> u64 {
    let mut rem = n as u128;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << 62;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root as u64
}

/// `floor(a / b)` rounded half up instead: `floor(a / b + 1/2)` for `b > 0`
/// (SPEC §1.1). Used only by the offline quantizer and the lm_head derivation.
#[inline]
pub const fn div_round(a: i64, b: i64) -> i64 {
    // floor((2a + b) / 2b); 2a cannot overflow for the |a| < 2^61 the callers use.
    (2 * a + b).div_euclid(2 * b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent oracle: exact rational rounding with i128.
    fn oracle_round_shift(x: i64, s: u32) -> i64 {
        if s >= 100 {
            return 0;
        }
        let d = 1i128 << s;
        // floor(x/d + 1/2) = floor((2x + d) / 2d)
        (2 * x as i128 + d).div_euclid(2 * d) as i64
    }

    #[test]
    fn round_shift_exhaustive_16_bit() {
        for x in i16::MIN..=i16::MAX {
            for s in 0..=17 {
                assert_eq!(
                    round_shift(x as i64, s),
                    oracle_round_shift(x as i64, s),
                    "x={x} s={s}"
                );
            }
        }
    }

    #[test]
    fn round_shift_ties_go_up() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 -> 3
        assert_eq!(round_shift(-5, 1), -2); // -2.5 -> -2
        assert_eq!(round_shift(-1, 1), 0); // -0.5 -> 0
        assert_eq!(round_shift(1, 1), 1); // 0.5 -> 1
        assert_eq!(round_shift(-3, 1), -1); // -1.5 -> -1
    }

    #[test]
    fn round_shift_extremes() {
        let xs = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for &x in &xs {
            for s in 0..=70 {
                assert_eq!(round_shift(x, s), oracle_round_shift(x, s), "x={x} s={s}");
            }
        }
        // around every power of two
        for p in 0..62 {
            for d in -2i64..=2 {
                for sign in [-1i64, 1] {
                    let x = sign * ((1i64 << p) + d);
                    for s in [0, 1, 2, p as u32, p as u32 + 1, 63] {
                        assert_eq!(round_shift(x, s), oracle_round_shift(x, s), "x={x} s={s}");
                    }
                }
            }
        }
    }

    #[test]
    fn shift_round_sat_left_and_right() {
        assert_eq!(shift_round_sat(3, -2), 12);
        assert_eq!(shift_round_sat(7, 1), 4);
        assert_eq!(shift_round_sat(i64::MAX / 2 + 1, -1), i64::MAX);
        assert_eq!(shift_round_sat(i64::MIN / 2 - 1, -1), i64::MIN);
        assert_eq!(shift_round_sat(i64::MIN / 2, -1), i64::MIN);
        assert_eq!(shift_round_sat(-1, -70), i64::MIN);
        assert_eq!(shift_round_sat(0, -70), 0);
        for x in -1000i64..1000 {
            for l in 0..40 {
                assert_eq!(shift_round_sat(x, -l), x * (1 << l));
            }
        }
    }

    #[test]
    fn saturation_exhaustive_16_bit() {
        for x in (i16::MIN as i64 - 300)..=(i16::MAX as i64 + 300) {
            assert_eq!(sat_i8(x) as i64, x.clamp(-128, 127));
            assert_eq!(sat_i16(x) as i64, x.clamp(-32768, 32767));
            assert_eq!(sat_i32(x) as i64, x);
        }
        assert_eq!(sat_i32(i64::MAX), i32::MAX);
        assert_eq!(sat_i32(i64::MIN), i32::MIN);
    }

    #[test]
    fn isqrt_exhaustive_small_and_edges() {
        for n in 0u64..=(1 << 20) {
            let r = isqrt_u64(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "n={n}");
        }
        for p in 0..64u32 {
            for d in [-1i64, 0, 1] {
                let n = ((1u128 << p) as i128 + d as i128).clamp(0, u64::MAX as i128) as u64;
                let r = isqrt_u64(n) as u128;
                assert!(r * r <= n as u128 && (r + 1) * (r + 1) > n as u128, "n={n}");
            }
        }
        assert_eq!(isqrt_u64(u64::MAX), u32::MAX as u64);
    }

    #[test]
    fn div_round_matches_oracle() {
        for a in -500i64..500 {
            for b in 1i64..40 {
                let want = (2 * a as i128 + b as i128).div_euclid(2 * b as i128) as i64;
                assert_eq!(div_round(a, b), want);
                // half up: exact halves go toward +inf
                let f = a as f64 / b as f64;
                assert!((div_round(a, b) as f64 - f).abs() <= 0.5);
            }
        }
    }
}

//! Weight quantization to the APoT format (SPEC §2.2–§2.4).
//!
//! The heart is [`search_group`], an integer-only exhaustive search over the 36
//! distinct exponent pairs. It serves both the offline quantizer of float
//! checkpoints (`quantize_row_f32`, feature `offline`: float used only to turn
//! weights into integers, deterministically) and the lm_head derivation from the 10-bit
//! embedding ([`crate::lm_head`], integer only).

use crate::format::{ApotGroup, CODE_MAX, CODE_MIN, EXP_MAX};
use crate::round::div_round;
use crate::GROUP;

/// Largest positive multiple of a unit a group can represent: `15 * (2^7 + 2^7)`.
pub const GROUP_MAX_MAG: i64 = CODE_MAX as i64 * 256;

/// Fractional bits of the fixed-point targets the float quantizer searches on.
pub const QUANT_FRAC: u32 = 16;

/// Best group for integer targets `t` (SPEC §2.3).
///
/// For every pair `0 <= s1 <= s2 <= 7` (36 distinct scales, each sum of two powers
/// of two has exactly one such pair) the step is `d = (2^s1 + 2^s2) * unit`, codes
/// are `clamp(floor(t_i / d + 1/2), -16, 15)` and the error is
/// `sum (t_i - q_i * d)^2`, exact in `i128`. The pair with the least error wins;
/// ties go to the smaller scale. A group whose targets are all zero gets
/// `s1 = s2 = 0` and zero codes. Requires `unit >= 1` and `|t_i| < 2^40`.
///
/// The search skips a pair as soon as its partial error exceeds the best so
/// far; this changes nothing but speed (the test `fast_search_equals_definition`
/// compares it with [`search_group_naive`]).
pub fn search_group(t: &[i64; GROUP], unit: i64) -> ApotGroup {
    if unit < 1 || !(unit as u64).is_power_of_two() {
        // the fast path below relies on a power-of-two unit; any other unit is
        // served by the definition itself
        return search_group_naive(t, unit.max(1));
    }
    if t.iter().all(|&v| v == 0) {
        return ApotGroup::default();
    }
    let ul = unit.trailing_zeros();
    // Visit the largest-magnitude target first: its error alone prunes most pairs.
    let mut order: [usize; GROUP] = core::array::from_fn(|i| i);
    order.sort_unstable_by_key(|&i| core::cmp::Reverse(t[i].unsigned_abs()));
    let amax = t[order[0]].unsigned_abs() as i64;
    // Error of pair (s1, s2), or None as soon as it exceeds `bound`.
    let eval = |s1: u8, s2: u8, bound: i128| -> Option<(i128, [i8; GROUP])> {
        let scale = (1i64 << s1) + (1i64 << s2);
        let d = scale << ul;
        // 2d = 2^(s1 + ul + 1) * k with k odd (or k = 2 when s1 == s2)
        let k = scale >> s1;
        let sh = s1 as u32 + ul + 1;
        let mut codes = [0i8; GROUP];
        let mut err: i128 = 0;
        for &i in &order {
            let ti = t[i];
            // floor((2t + d) / 2d) = floor(floor((2t + d) / 2^sh) / k)
            let q = div_small((2 * ti + d) >> sh, k).clamp(CODE_MIN as i64, CODE_MAX as i64);
            codes[i] = q as i8;
            let e = (ti - q * d) as i128;
            err += e * e;
            if err > bound {
                return None;
            }
        }
        Some((err, codes))
    };
    // Seed with the smallest scale that does not clip the largest target: it is
    // usually the winner, so the other 35 pairs are pruned early.
    let (seed1, seed2) = SCALES_ASC
        .iter()
        .map(|&(_, a, b)| (a, b))
        .find(|&(a, b)| CODE_MAX as i64 * (((1i64 << a) + (1i64 << b)) << ul) >= amax)
        .unwrap_or((EXP_MAX, EXP_MAX));
    let (mut best_err, codes) = eval(seed1, seed2, i128::MAX).unwrap_or((i128::MAX, [0; GROUP]));
    let mut best = ApotGroup {
        codes,
        s1: seed1,
        s2: seed2,
    };
    let mut best_scale = best.scale() as i64;
    for &(scale, s1, s2) in SCALES_ASC.iter() {
        if (s1, s2) == (seed1, seed2) {
            continue;
        }
        if let Some((err, codes)) = eval(s1, s2, best_err) {
            // order-independent rule: least error, then smaller scale
            if err < best_err || (err == best_err && scale < best_scale) {
                best_err = err;
                best_scale = scale;
                best = ApotGroup { codes, s1, s2 };
            }
        }
    }
    best
}

/// The 36 pairs `s1 <= s2` as `(scale, s1, s2)`, by increasing scale.
const SCALES_ASC: [(i64, u8, u8); 36] = {
    let mut out = [(0i64, 0u8, 0u8); 36];
    let mut n = 0;
    let mut s1 = 0;
    while s1 < 8 {
        let mut s2 = s1;
        while s2 < 8 {
            out[n] = ((1i64 << s1) + (1i64 << s2), s1 as u8, s2 as u8);
            n += 1;
            s2 += 1;
        }
        s1 += 1;
    }
    // insertion sort by scale (scales are distinct)
    let mut i = 1;
    while i < 36 {
        let mut j = i;
        while j > 0 && out[j - 1].0 > out[j].0 {
            let tmp = out[j - 1];
            out[j - 1] = out[j];
            out[j] = tmp;
            j -= 1;
        }
        i += 1;
    }
    out
};

/// `floor(a / k)` for the divisors `k = 1 + 2^j` (and 2) that occur above;
/// constant divisors let the compiler use multiplications.
#[inline(always)]
fn div_small(a: i64, k: i64) -> i64 {
    match k {
        2 => a.div_euclid(2),
        3 => a.div_euclid(3),
        5 => a.div_euclid(5),
        9 => a.div_euclid(9),
        17 => a.div_euclid(17),
        33 => a.div_euclid(33),
        65 => a.div_euclid(65),
        129 => a.div_euclid(129),
        _ => a.div_euclid(k),
    }
}

/// [`search_group`] written literally from its definition, with a division per
/// code and no pruning. Any `unit >= 1`. Kept as the oracle of the fast search.
pub fn search_group_naive(t: &[i64; GROUP], unit: i64) -> ApotGroup {
    let mut best = ApotGroup::default();
    let mut best_err = i128::MAX;
    let mut best_scale = i64::MAX;
    for s1 in 0..=EXP_MAX {
        for s2 in s1..=EXP_MAX {
            let scale = (1i64 << s1) + (1i64 << s2);
            let d = scale * unit;
            let mut codes = [0i8; GROUP];
            let mut err: i128 = 0;
            for (c, &ti) in codes.iter_mut().zip(t) {
                let q = div_round(ti, d).clamp(CODE_MIN as i64, CODE_MAX as i64);
                *c = q as i8;
                let e = (ti - q * d) as i128;
                err += e * e;
            }
            if err < best_err || (err == best_err && scale < best_scale) {
                best_err = err;
                best_scale = scale;
                best = ApotGroup { codes, s1, s2 };
            }
        }
    }
    best
}

/// Exponent rule of SPEC §2.2 for an integer magnitude: smallest `e` with
/// `3840 * 2^e >= m`, for `1 <= m < 2^40` (returns 0 for `m <= 0`).
pub const fn row_exp_for_int(m: i64) -> i32 {
    if m <= 0 {
        return 0;
    }
    let mut e: i32 = -12; // 3840 * 2^-12 < 1 <= m
    loop {
        let fits = if e >= 0 {
            GROUP_MAX_MAG << e >= m
        } else {
            GROUP_MAX_MAG >= m << (-e)
        };
        if fits {
            return e;
        }
        e += 1;
    }
}

/// Exponent rule of SPEC §2.2 for a real magnitude: smallest integer `e` with
/// `3840 * 2^e >= m`. Exact (powers of two are exact in `f64`).
#[cfg(feature = "offline")]
pub fn row_exp_for_f64(m: f64) -> i32 {
    if m.is_nan() || m <= 0.0 || !m.is_finite() {
        return 0;
    }
    let mut e = 0i32;
    // 3840 * 2^e computed exactly with libm::ldexp.
    while libm::ldexp(GROUP_MAX_MAG as f64, e) < m {
        e += 1;
    }
    while e > -1000 && libm::ldexp(GROUP_MAX_MAG as f64, e - 1) >= m {
        e -= 1;
    }
    e
}

/// Range of row exponents the offline quantizer emits; rows whose exponent
/// falls outside are clamped (tiny rows underflow to zero codes, which is what
/// their weights round to anyway).
pub const ROW_EXP_MIN: i32 = -100;
/// See [`ROW_EXP_MIN`].
pub const ROW_EXP_MAX: i32 = 100;

/// Quantizes one row of float weights (SPEC §2.4): the row is
/// `w[..8 * out.len()]` (missing weights count as 0, extra ones are ignored).
/// Returns the row exponent.
///
/// 1. `e_row` = [`row_exp_for_f64`] of the largest `|w|` (0 for an all-zero row).
/// 2. Targets `t_i = round_half_away(w_i * 2^(16 - e_row))` in `f64`, exact
///    except for that one rounding, so the result does not depend on the platform.
/// 3. Every group: [`search_group`] with `unit = 2^16`.
///
/// Non-finite weights are treated as zero (the converter rejects them earlier).
#[cfg(feature = "offline")]
pub fn quantize_row_f32(w: &[f32], out: &mut [ApotGroup]) -> i8 {
    let m = w
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
    let e = row_exp_for_f64(m).clamp(ROW_EXP_MIN, ROW_EXP_MAX);
    for (g, grp) in out.iter_mut().enumerate() {
        let mut t = [0i64; GROUP];
        for (i, ti) in t.iter_mut().enumerate() {
            let v = w.get(g * GROUP + i).copied().unwrap_or(0.0);
            let v = if v.is_finite() { f64::from(v) } else { 0.0 };
            let x = libm::round(libm::ldexp(v, QUANT_FRAC as i32 - e));
            *ti = x.clamp(-((1u64 << 40) as f64), (1u64 << 40) as f64) as i64;
        }
        *grp = search_group(&t, 1 << QUANT_FRAC);
    }
    e as i8
}

/// Dequantized value of one weight, for tests and the float reference only.
#[cfg(feature = "offline")]
pub fn dequant(q: i8, s1: u8, s2: u8, e_row: i8) -> f64 {
    f64::from(q) * ((1u32 << s1) + (1u32 << s2)) as f64 * libm::ldexp(1.0, i32::from(e_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every (s1, s2) ordered pair and every code vector lane
    /// independently, in f64: the optimum error must match exactly.
    fn oracle_best_err(t: &[i64; 8], unit: i64) -> i128 {
        let mut best = i128::MAX;
        for s1 in 0..8 {
            for s2 in 0..8 {
                let d = ((1i64 << s1) + (1i64 << s2)) * unit;
                let mut err = 0i128;
                for &ti in t {
                    // best code by trying all 32
                    let e = (-16..=15)
                        .map(|q| ((ti - q * d) as i128).pow(2))
                        .min()
                        .unwrap();
                    err += e;
                }
                best = best.min(err);
            }
        }
        best
    }

    fn err_of(t: &[i64; 8], g: &ApotGroup, unit: i64) -> i128 {
        let d = g.scale() as i64 * unit;
        t.iter()
            .zip(&g.codes)
            .map(|(&ti, &q)| ((ti - q as i64 * d) as i128).pow(2))
            .sum()
    }

    use edgedecoding_testkit::Lcg;

    #[test]
    fn search_is_optimal_on_random_and_edge_groups() {
        let mut rng = Lcg(7);
        let mut cases = 0;
        for unit in [1i64, 4, 1 << 16] {
            for k in 0..3000 {
                let mag = [1i64, 20, 300, 3840, 4000][k % 5] * unit;
                let mut t = [0i64; 8];
                for v in t.iter_mut() {
                    *v = (rng.next() % (2 * mag as u64 + 1)) as i64 - mag;
                }
                if k % 97 == 0 {
                    t = [0; 8];
                }
                if k % 89 == 0 {
                    t = [mag; 8];
                }
                if k % 83 == 0 {
                    t = [-mag; 8];
                }
                let g = search_group(&t, unit);
                assert!(g.s1 <= g.s2);
                assert_eq!(
                    err_of(&t, &g, unit),
                    oracle_best_err(&t, unit),
                    "t={t:?} unit={unit}"
                );
                cases += 1;
            }
        }
        assert_eq!(cases, 9000);
    }

    #[test]
    fn fast_search_equals_definition() {
        let mut rng = Lcg(1234);
        for k in 0..200_000 {
            let unit = [1i64, 2, 1 << 16][k % 3];
            let mag = [1i64, 3, 20, 300, 3840, 5000, 1 << 20][k % 7] * unit;
            let mut t = [0i64; 8];
            for v in t.iter_mut() {
                *v = (rng.next() % (2 * mag as u64 + 1)) as i64 - mag;
            }
            if k % 13 == 0 {
                t[k % 8] = 0;
                t[(k + 3) % 8] = mag;
            }
            if k % 17 == 0 {
                let v = t[0];
                t = [v; 8];
            }
            assert_eq!(
                search_group(&t, unit),
                search_group_naive(&t, unit),
                "t={t:?} unit={unit}"
            );
        }
    }

    #[test]
    fn zero_group_and_ties() {
        let g = search_group(&[0; 8], 1);
        assert_eq!(
            g,
            ApotGroup {
                codes: [0; 8],
                s1: 0,
                s2: 0
            }
        );
        // t = 6 everywhere: exact with scale 2 (q=3), 3 is not a scale, 6 = 2+4 (q=1):
        // both error 0 -> smaller scale (2) wins.
        let g = search_group(&[6; 8], 1);
        assert_eq!((g.s1, g.s2, g.codes[0]), (0, 0, 3));
    }

    #[test]
    #[cfg(feature = "offline")]
    fn row_exponent_rule() {
        assert_eq!(row_exp_for_f64(3840.0), 0);
        assert_eq!(row_exp_for_f64(3840.5), 1);
        assert_eq!(row_exp_for_f64(1920.0), -1);
        assert_eq!(row_exp_for_f64(1919.0), -1);
        assert_eq!(row_exp_for_f64(0.1), -15); // 3840 * 2^-15 = 0.117
        assert_eq!(row_exp_for_f64(0.0), 0);
        for k in -40..40 {
            let m = 3840.0 * libm::ldexp(1.0, k);
            assert_eq!(row_exp_for_f64(m), k);
            assert_eq!(row_exp_for_f64(m * 1.0000001), k + 1);
        }
        for m in 1i64..100_000 {
            let e = row_exp_for_int(m);
            assert_eq!(e, row_exp_for_f64(m as f64), "m={m}");
        }
    }

    /// Quantization error of random rows against f64: each group's squared error
    /// is at most that of the smallest scale that does not clip the group, whose
    /// per-weight error is at most half its step (SPEC §2.4).
    #[test]
    #[cfg(feature = "offline")]
    fn float_row_error_bound() {
        let mut rng = Lcg(99);
        for _ in 0..500 {
            let w: [f32; 64] =
                core::array::from_fn(|_| ((rng.next() % 20001) as f32 - 10000.0) * 1e-5);
            let mut gs = [ApotGroup::default(); 8];
            let e = quantize_row_f32(&w, &mut gs);
            for (g, grp) in gs.iter().enumerate() {
                let ws = &w[g * 8..g * 8 + 8];
                let gmax = ws.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
                let unit = libm::ldexp(1.0, e as i32);
                let d_nc = (0..8u32)
                    .flat_map(|a| (a..8).map(move |b| ((1u32 << a) + (1u32 << b)) as f64))
                    .filter(|s| 15.0 * s * unit >= gmax)
                    .fold(f64::MAX, f64::min)
                    * unit;
                let bound = 8.0 * (d_nc / 2.0 + unit / 65536.0).powi(2);
                let err: f64 = (0..8)
                    .map(|i| (dequant(grp.codes[i], grp.s1, grp.s2, e) - ws[i] as f64).powi(2))
                    .sum();
                assert!(err <= bound, "err {err} bound {bound}");
            }
        }
    }
}

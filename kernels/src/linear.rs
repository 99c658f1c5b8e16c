//! The linear layer: APoT weights x block-floating-point activations (SPEC §4).

use core::ops::Range;

use crate::bfp::{BfpBlock, BFP_EXP_MAX};
use crate::error::{check_len, check_range};
use crate::format::ApotWeights;
use crate::round::{sat_i32, shift_round_sat};
use crate::{KernelError, ACT_FRAC, GROUP, TOKENS_PER_PASS};

/// Widest input accepted by [`linear`]: 1023 groups keep the accumulator in
/// 48 signed bits.
pub const MAX_COLS: usize = 8184;

/// Smallest allowed output fraction (`out_frac`) of [`linear`].
pub const OUT_FRAC_MIN: u32 = 0;
/// Largest allowed output fraction of [`linear`].
pub const OUT_FRAC_MAX: u32 = 30;

/// The 48-bit accumulator of one (token, output row) (SPEC §4.1):
///
/// ```text
/// p_g   = sum_{i<8} m[g][i] * q[r][g][i]               |p_g| <= 8*128*16 = 2^14  (16 bits)
/// acc   = sum_g ((p_g << s1) + (p_g << s2)) << e_g      |term| <= 2^14*2^8*2^15 = 2^37
/// ```
///
/// `|acc| <= (cols/8) * 2^37`, which is below `2^47` (a signed 48-bit
/// accumulator) for `cols <= 8184` (1023 groups), the largest width accepted.
#[inline(always)]
pub fn group_term(b: &BfpBlock, codes: &[i8; GROUP], s1: u8, s2: u8) -> i64 {
    let mut p: i32 = 0;
    for i in 0..GROUP {
        p += b.m[i] as i32 * codes[i] as i32;
    }
    let p = p as i64;
    ((p << s1) + (p << s2)) << b.e
}

/// Rescales one accumulator to the output format (SPEC §4.2):
/// `y = sat_i32(shift_round_sat(acc, 12 - out_frac - e_row) + bias)`.
///
/// `acc` is in units of `2^(e_row - 12)`; `y` is in `Q(out_frac)`. The bias is
/// given in the output format; adding it after the shift equals adding
/// `bias << k` to the accumulator before it when `k >= 0` (exact for integer
/// `bias`).
#[inline(always)]
pub fn rescale(acc: i64, e_row: i8, out_frac: u32, bias: i32) -> i32 {
    let k = ACT_FRAC as i32 - out_frac as i32 - e_row as i32;
    sat_i32(shift_round_sat(acc, k).saturating_add(bias as i64))
}

/// `y[t][r] = rescale(sum_c x[t][c] * w[r][c]) + bias[r]` for `T` tokens
/// (SPEC §4). The scalar reference: the optimized kernels must equal it.
///
/// * `x`: `T * cols/8` blocks, token-major (`x[t * cols/8 + g]`), every block
///   exponent `<= 15`.
/// * `bias`: `rows` values in `Q(out_frac)`, or `None`.
/// * `out_frac`: fractional bits of the output, `[0, 30]`.
/// * `out`: `T * rows` values, token-major.
///
/// Weights are read once per pass of up to 8 tokens, like the accelerator; the
/// arithmetic of each token is independent of `T` and of its slot.
pub fn linear<W: ApotWeights + ?Sized>(
    w: &W,
    x: &[BfpBlock],
    bias: Option<&[i32]>,
    out_frac: u32,
    out: &mut [i32],
) -> Result<(), KernelError> {
    linear_rows(w, x, bias, out_frac, 0..w.rows(), out)
}

/// [`linear`] restricted to output rows `rows` (for splitting a matrix over
/// threads): `out` holds `T * rows.len()` values, token-major, row `r` of token
/// `t` at `t * rows.len() + (r - rows.start)`. Identical values to [`linear`].
pub fn linear_rows<W: ApotWeights + ?Sized>(
    w: &W,
    x: &[BfpBlock],
    bias: Option<&[i32]>,
    out_frac: u32,
    rows: Range<usize>,
    out: &mut [i32],
) -> Result<(), KernelError> {
    let cols = w.cols();
    crate::error::check_multiple("cols", cols, GROUP)?;
    let groups = cols / GROUP;
    check_range(
        "out_frac",
        out_frac as i64,
        OUT_FRAC_MIN as i64,
        OUT_FRAC_MAX as i64,
    )?;
    check_range("cols", cols as i64, GROUP as i64, MAX_COLS as i64)?;
    if rows.start > rows.end || rows.end > w.rows() {
        return Err(KernelError::Param {
            what: "row range end",
            value: rows.end as i64,
            min: rows.start as i64,
            max: w.rows() as i64,
        });
    }
    crate::error::check_multiple("activation blocks", x.len(), groups)?;
    let tokens = x.len() / groups;
    let nr = rows.len();
    check_len("output", tokens * nr, out.len())?;
    if let Some(b) = bias {
        check_len("bias", w.rows(), b.len())?;
    }
    if let Some(b) = x.iter().find(|b| b.e > BFP_EXP_MAX) {
        return Err(KernelError::Param {
            what: "bfp exponent",
            value: b.e as i64,
            min: 0,
            max: BFP_EXP_MAX as i64,
        });
    }
    for t0 in (0..tokens).step_by(TOKENS_PER_PASS) {
        let nt = (tokens - t0).min(TOKENS_PER_PASS);
        for r in rows.clone() {
            let (e_row, ctx) = w.row(r);
            let mut acc = [0i64; TOKENS_PER_PASS];
            for g in 0..groups {
                let grp = w.group(r, g, ctx);
                for (t, a) in acc.iter_mut().enumerate().take(nt) {
                    *a += group_term(&x[(t0 + t) * groups + g], &grp.codes, grp.s1, grp.s2);
                }
            }
            let b = bias.map_or(0, |b| b[r]);
            for (t, &a) in acc.iter().enumerate().take(nt) {
                out[(t0 + t) * nr + (r - rows.start)] = rescale(a, e_row, out_frac, b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfp::quantize_bfp;
    use crate::format::{pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix};

    use edgedecoding_testkit::Lcg;

    const R: usize = 6;
    const C: usize = 32;

    struct Case {
        codes: [u8; packed_codes_len(R, C)],
        exps: [u8; packed_exps_len(R, C)],
        row_exps: [i8; R],
        groups: [[ApotGroup; C / 8]; R],
    }

    fn random_case(rng: &mut Lcg, extreme: bool) -> Case {
        let mut c = Case {
            codes: [0; packed_codes_len(R, C)],
            exps: [0; packed_exps_len(R, C)],
            row_exps: [0; R],
            groups: [[ApotGroup::default(); C / 8]; R],
        };
        for r in 0..R {
            c.row_exps[r] = -((rng.next() % 20) as i8);
            for g in 0..C / 8 {
                let grp = if extreme {
                    ApotGroup {
                        codes: [if rng.next() % 2 == 0 { -16 } else { 15 }; 8],
                        s1: 7,
                        s2: 7,
                    }
                } else {
                    ApotGroup {
                        codes: core::array::from_fn(|_| (rng.next() % 32) as i8 - 16),
                        s1: (rng.next() % 8) as u8,
                        s2: (rng.next() % 8) as u8,
                    }
                };
                c.groups[r][g] = grp;
                pack_group(&mut c.codes, &mut c.exps, r * (C / 8) + g, &grp).unwrap();
            }
        }
        c
    }

    /// Oracle: exact real-valued product in i128 from dequantized operands,
    /// then the rounding rule written as a rational.
    fn oracle(c: &Case, x: &[BfpBlock], r: usize, out_frac: u32, bias: i32) -> i32 {
        let mut acc: i128 = 0;
        for g in 0..C / 8 {
            let grp = &c.groups[r][g];
            for i in 0..8 {
                let xv = (x[g].m[i] as i128) << x[g].e;
                let wv = grp.codes[i] as i128 * grp.scale() as i128;
                acc += xv * wv;
            }
        }
        // y = acc * 2^(e_row - 12 + out_frac)
        let k = 12 - out_frac as i32 - c.row_exps[r] as i32;
        let y = if k >= 0 {
            (2 * acc + (1i128 << k)).div_euclid(2i128 << k)
        } else {
            acc << -k
        };
        (y + bias as i128).clamp(i32::MIN as i128, i32::MAX as i128) as i32
    }

    #[test]
    fn matches_exact_oracle_for_any_token_count() {
        let mut rng = Lcg(11);
        let mut checked = 0;
        for case in 0..300 {
            let c = random_case(&mut rng, case % 10 == 0);
            let w = ApotMatrix::new(R, C, &c.codes, &c.exps, &c.row_exps).unwrap();
            let tokens = 1 + case % 11; // crosses the 8-token pass boundary
            let mut xs = [0i32; 11 * C];
            for v in xs.iter_mut() {
                *v = if case % 10 == 0 {
                    [i32::MAX, i32::MIN, 0, -1][(rng.next() % 4) as usize]
                } else {
                    (rng.next() % (1 << 20)) as i32 - (1 << 19)
                };
            }
            let mut blocks = [BfpBlock::default(); 11 * C / 8];
            quantize_bfp(&xs[..tokens * C], &mut blocks[..tokens * C / 8]).unwrap();
            let bias: [i32; R] = core::array::from_fn(|_| (rng.next() % 20000) as i32 - 10000);
            let out_frac = (rng.next() % 16) as u32;
            let mut out = [0i32; 11 * R];
            linear(
                &w,
                &blocks[..tokens * C / 8],
                Some(&bias),
                out_frac,
                &mut out[..tokens * R],
            )
            .unwrap();
            // any split of the rows gives the same values
            let split = 1 + case % (R - 1);
            let mut lo = [0i32; 11 * R];
            let mut hi = [0i32; 11 * R];
            linear_rows(
                &w,
                &blocks[..tokens * C / 8],
                Some(&bias),
                out_frac,
                0..split,
                &mut lo[..tokens * split],
            )
            .unwrap();
            linear_rows(
                &w,
                &blocks[..tokens * C / 8],
                Some(&bias),
                out_frac,
                split..R,
                &mut hi[..tokens * (R - split)],
            )
            .unwrap();
            for t in 0..tokens {
                for r in 0..R {
                    let v = if r < split {
                        lo[t * split + r]
                    } else {
                        hi[t * (R - split) + r - split]
                    };
                    assert_eq!(v, out[t * R + r]);
                }
            }
            for t in 0..tokens {
                // the same token alone gives the same row
                let mut solo = [0i32; R];
                linear(
                    &w,
                    &blocks[t * C / 8..(t + 1) * C / 8],
                    Some(&bias),
                    out_frac,
                    &mut solo,
                )
                .unwrap();
                for r in 0..R {
                    let want = oracle(
                        &c,
                        &blocks[t * C / 8..(t + 1) * C / 8],
                        r,
                        out_frac,
                        bias[r],
                    );
                    assert_eq!(out[t * R + r], want, "case {case} t {t} r {r}");
                    assert_eq!(solo[r], want);
                    checked += 1;
                }
            }
        }
        assert!(checked > 5000);
    }

    #[test]
    fn accumulator_bound_at_extremes() {
        // all mantissas -128 at e = 15, all codes -16, scale 256: the largest
        // magnitude a group can produce, over 8192 columns, stays below 2^47.
        let b = BfpBlock {
            m: [-128; 8],
            e: 15,
        };
        let t = group_term(&b, &[-16; 8], 7, 7);
        assert_eq!(t, 1i64 << 37);
        assert!((t as i128) * (MAX_COLS as i128 / 8) < 1i128 << 47);
        assert!((t as i128) * (MAX_COLS as i128 / 8 + 1) >= 1i128 << 47);
    }

    #[test]
    fn shape_and_param_errors() {
        let codes = [0u8; packed_codes_len(2, 16)];
        let exps = [0u8; packed_exps_len(2, 16)];
        let w = ApotMatrix::new(2, 16, &codes, &exps, &[0, 0]).unwrap();
        let x = [BfpBlock::default(); 2];
        let mut out = [0i32; 2];
        assert!(linear(&w, &x, None, 12, &mut out).is_ok());
        assert_eq!(
            linear(&w, &x[..1], None, 12, &mut out).unwrap_err(),
            KernelError::NotMultiple {
                what: "activation blocks",
                value: 1,
                of: 2
            }
        );
        assert_eq!(
            linear(&w, &x, None, 31, &mut out).unwrap_err(),
            KernelError::Param {
                what: "out_frac",
                value: 31,
                min: 0,
                max: 30
            }
        );
        assert_eq!(
            linear(&w, &x, Some(&[1]), 12, &mut out).unwrap_err(),
            KernelError::Length {
                what: "bias",
                expected: 2,
                got: 1
            }
        );
        assert_eq!(
            linear(&w, &x, None, 12, &mut out[..1]).unwrap_err(),
            KernelError::Length {
                what: "output",
                expected: 2,
                got: 1
            }
        );
        let bad = [BfpBlock { m: [0; 8], e: 16 }; 2];
        assert_eq!(
            linear(&w, &bad, None, 12, &mut out).unwrap_err(),
            KernelError::Param {
                what: "bfp exponent",
                value: 16,
                min: 0,
                max: 15
            }
        );
        assert_eq!(
            linear_rows(&w, &x, None, 12, 1..3, &mut out[..1]).unwrap_err(),
            KernelError::Param {
                what: "row range end",
                value: 3,
                min: 1,
                max: 2
            }
        );
        let mut one = [0i32; 1];
        assert!(linear_rows(&w, &x, None, 12, 1..2, &mut one).is_ok());
    }
}

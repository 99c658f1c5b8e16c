//! The lm_head derived from the tied 10-bit embedding, integer only (SPEC §2.5).
//!
//! The classifier weights are not stored: each embedding row (10-bit codes,
//! one per-tensor exponent `emb_exp`) is turned into APoT codes with the same
//! group search as the weights, entirely in integers, so the host, the
//! accelerator's loader and this reference derive identical bits.

use crate::embedding::{EMB_EXP_RANGE, EMB_MAX, EMB_MIN};
use crate::error::{check_len, check_multiple, check_range};
use crate::format::{ApotGroup, ApotWeights};
use crate::quant::{row_exp_for_int, search_group};
use crate::{KernelError, GROUP};

/// Derivation of one row (SPEC §2.5):
///
/// 1. `M = max_i |c_i|` over the row's codes. `M = 0`: every group is
///    `s1 = s2 = 0`, codes 0, and `e_row = emb_exp`.
/// 2. `eh = row_exp_for_int(M)`: smallest `eh` with `3840 · 2^eh >= M`. For
///    10-bit codes `1 <= M <= 512`, so `eh in [-11, -2]` (always negative).
/// 3. Each group: targets `t_i = c_i << -eh`, `search_group(t, unit = 1)`.
/// 4. `e_row = eh + emb_exp`: the head weight is `q · (2^s1 + 2^s2) · 2^e_row`.
///
/// Returns `(e_row, eh)`.
pub fn derive_head_row_exp(row: &[i16], emb_exp: i32) -> (i8, i32) {
    let m = row
        .iter()
        .map(|&c| (clamp10(c) as i64).abs())
        .max()
        .unwrap_or(0);
    if m == 0 {
        return (emb_exp as i8, 0);
    }
    let eh = row_exp_for_int(m);
    ((eh + emb_exp) as i8, eh)
}

/// Codes outside the 10-bit range are clamped, as in [`crate::embedding::embed_row`]
/// (valid model files never contain them).
#[inline(always)]
fn clamp10(c: i16) -> i16 {
    c.clamp(EMB_MIN, EMB_MAX)
}

/// Step 3 of [`derive_head_row_exp`] for one group of 8 codes.
#[inline]
pub fn derive_head_group(codes: &[i16], eh: i32) -> ApotGroup {
    // eh <= -2 for 10-bit codes (M <= 512 < 3840 / 4), so the shift is exact
    let sh = (-eh).max(0) as u32;
    let t: [i64; GROUP] = core::array::from_fn(|i| (clamp10(codes[i]) as i64) << sh);
    if t.iter().all(|&v| v == 0) {
        return ApotGroup::default();
    }
    search_group(&t, 1)
}

/// Derives a whole row into `out` (`row.len() / 8` groups); returns `e_row`.
pub fn derive_head_row(
    row: &[i16],
    emb_exp: i32,
    out: &mut [ApotGroup],
) -> Result<i8, KernelError> {
    check_range(
        "emb_exp",
        emb_exp as i64,
        EMB_EXP_RANGE.0 as i64,
        EMB_EXP_RANGE.1 as i64,
    )?;
    check_multiple("embedding row", row.len(), GROUP)?;
    check_len("derived groups", row.len() / GROUP, out.len())?;
    let (e_row, eh) = derive_head_row_exp(row, emb_exp);
    for (g, grp) in out.iter_mut().enumerate() {
        *grp = derive_head_group(&row[g * GROUP..(g + 1) * GROUP], eh);
    }
    Ok(e_row)
}

/// The lm_head as an [`ApotWeights`] source that derives each row from the
/// embedding when the linear kernel reads it: no second copy of the weights.
/// Optionally restricted to a list of kept rows (pruned vocabulary).
#[derive(Clone, Copy, Debug)]
pub struct DerivedHead<'a> {
    emb: &'a [i16],
    cols: usize,
    emb_exp: i32,
    keep: Option<&'a [u32]>,
    rows: usize,
}

impl<'a> DerivedHead<'a> {
    /// `emb` is `vocab x cols` codes (`cols % 8 == 0`). With `keep`, head row `r`
    /// is embedding row `keep[r]`; every kept id must be `< vocab`.
    pub fn new(
        emb: &'a [i16],
        cols: usize,
        emb_exp: i32,
        keep: Option<&'a [u32]>,
    ) -> Result<Self, KernelError> {
        check_range(
            "emb_exp",
            emb_exp as i64,
            EMB_EXP_RANGE.0 as i64,
            EMB_EXP_RANGE.1 as i64,
        )?;
        check_multiple("embedding width", cols, GROUP)?;
        check_multiple("embedding length", emb.len(), cols)?;
        let vocab = emb.len() / cols;
        let rows = match keep {
            Some(k) => {
                if let Some(&bad) = k.iter().find(|&&id| id as usize >= vocab) {
                    return Err(KernelError::Param {
                        what: "kept id",
                        value: bad as i64,
                        min: 0,
                        max: vocab as i64 - 1,
                    });
                }
                k.len()
            }
            None => vocab,
        };
        Ok(Self {
            emb,
            cols,
            emb_exp,
            keep,
            rows,
        })
    }

    fn emb_row(&self, r: usize) -> &'a [i16] {
        let src = self.keep.map_or(r, |k| k[r] as usize);
        &self.emb[src * self.cols..(src + 1) * self.cols]
    }
}

impl ApotWeights for DerivedHead<'_> {
    type Row = i32;
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn row(&self, r: usize) -> (i8, i32) {
        derive_head_row_exp(self.emb_row(r), self.emb_exp)
    }
    fn group(&self, r: usize, g: usize, eh: i32) -> ApotGroup {
        derive_head_group(&self.emb_row(r)[g * GROUP..(g + 1) * GROUP], eh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real value of one weight (the f64 oracle of SPEC §2.1).
    fn dequant(q: i8, s1: u8, s2: u8, e_row: i8) -> f64 {
        f64::from(q) * ((1u32 << s1) + (1u32 << s2)) as f64 * libm::ldexp(1.0, i32::from(e_row))
    }

    /// Every 10-bit code value appears in a group. What the docs promise,
    /// checked element by element against the f64 oracle: a weight whose code
    /// is not at the clamp (−16 or 15) is the nearest multiple of its group's
    /// step (within half a step), and a group whose values are exactly
    /// representable by some `(s1, s2)` (found by brute force) is reproduced
    /// exactly.
    #[test]
    fn derivation_error_bound_every_code() {
        let emb_exp = -11;
        let mut worst_rel = 0.0f64;
        let mut exact_groups = 0;
        for c in -512i16..=511 {
            // row: the code, its neighbours, the row maximum 511 elsewhere
            let row = [c, c / 2, -c, 0, 1, -1, c / 3, 7, 511, 0, 0, 0, 0, 0, 0, 0];
            let mut gs = [ApotGroup::default(); 2];
            let e_row = derive_head_row(&row, emb_exp, &mut gs).unwrap();
            for (g, grp) in gs.iter().enumerate() {
                let step = grp.scale() as f64 * libm::ldexp(1.0, e_row as i32);
                let want: [f64; 8] =
                    core::array::from_fn(|i| row[g * 8 + i] as f64 * libm::ldexp(1.0, emb_exp));
                let mut group_err = 0.0f64;
                for i in 0..8 {
                    let got = dequant(grp.codes[i], grp.s1, grp.s2, e_row);
                    let err = (got - want[i]).abs();
                    group_err = group_err.max(err);
                    worst_rel = worst_rel.max(err / libm::ldexp(512.0, emb_exp));
                    if grp.codes[i] > -16 && grp.codes[i] < 15 {
                        assert!(
                            err <= 0.5 * step + 1e-12,
                            "c={c} i={i}: {err} > half of {step}"
                        );
                    }
                }
                // representable by some scale at this row exponent: exact
                let representable = (0..8u8).any(|s1| {
                    (s1..8).any(|s2| {
                        let st =
                            ((1u32 << s1) + (1u32 << s2)) as f64 * libm::ldexp(1.0, e_row as i32);
                        want.iter().all(|&w| {
                            let q = w / st;
                            q == libm::round(q) && (-16.0..=15.0).contains(&q)
                        })
                    })
                });
                if representable {
                    exact_groups += 1;
                    assert_eq!(group_err, 0.0, "c={c}: representable group not exact");
                }
            }
        }
        assert!(worst_rel < 0.05, "{worst_rel}");
        assert!(
            exact_groups >= 16,
            "only {exact_groups} exactly representable groups"
        );
    }

    #[test]
    fn derived_head_equals_precomputed_rows() {
        let mut emb = [0i16; 5 * 16];
        let mut seed = 3u64;
        for v in emb.iter_mut() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = ((seed >> 40) % 1024) as i16 - 512;
        }
        emb[16..32].fill(0); // an all-zero row
        let keep = [4u32, 1, 0];
        let h = DerivedHead::new(&emb, 16, -10, Some(&keep)).unwrap();
        assert_eq!(h.rows(), 3);
        for (r, &src) in keep.iter().enumerate() {
            let mut gs = [ApotGroup::default(); 2];
            let e = derive_head_row(&emb[src as usize * 16..][..16], -10, &mut gs).unwrap();
            let (e2, ctx) = h.row(r);
            assert_eq!(e, e2);
            for g in 0..2 {
                assert_eq!(h.group(r, g, ctx), gs[g]);
            }
        }
        assert!(DerivedHead::new(&emb, 16, -10, Some(&[5])).is_err());
        assert!(DerivedHead::new(&emb[..70], 16, -10, None).is_err());
    }
}

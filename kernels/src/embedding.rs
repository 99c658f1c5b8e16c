//! Embedding lookup: 10-bit codes into the Q12 residual (SPEC §9.2).

use crate::error::{check_len, check_range};
use crate::round::shift_round_sat;
use crate::{KernelError, ACT_FRAC};

/// Smallest embedding code (10-bit signed).
pub const EMB_MIN: i16 = -512;
/// Largest embedding code.
pub const EMB_MAX: i16 = 511;

/// Allowed range of the per-tensor embedding exponent.
pub const EMB_EXP_RANGE: (i32, i32) = (-30, 8);

/// `out_i = shift(code_i, 12 + emb_exp)`: a left shift when `12 + emb_exp >= 0`
/// (exact: `|code| <= 512`, `512 << 20` fits `i32`), else a rounding right shift
/// (SPEC §9.2). The real value of a code is `code · 2^emb_exp`. Codes outside
/// `[-512, 511]` are clamped (the model file rejects them earlier).
pub fn embed_row(row: &[i16], emb_exp: i32, out: &mut [i32]) -> Result<(), KernelError> {
    check_len("embedding output", row.len(), out.len())?;
    check_range(
        "emb_exp",
        emb_exp as i64,
        EMB_EXP_RANGE.0 as i64,
        EMB_EXP_RANGE.1 as i64,
    )?;
    let k = -(ACT_FRAC as i32 + emb_exp);
    for (o, &c) in out.iter_mut().zip(row) {
        *o = shift_round_sat(c.clamp(EMB_MIN, EMB_MAX) as i64, k) as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_every_exponent() {
        let row: std::vec::Vec<i16> = (EMB_MIN..=EMB_MAX).collect();
        let mut out = std::vec![0i32; row.len()];
        for e in EMB_EXP_RANGE.0..=EMB_EXP_RANGE.1 {
            embed_row(&row, e, &mut out).unwrap();
            for (&c, &o) in row.iter().zip(&out) {
                let want = c as f64 * libm::ldexp(1.0, e + 12);
                assert!((o as f64 - want).abs() <= 0.5, "c={c} e={e}");
                if e + 12 >= 0 {
                    assert_eq!(o as f64, want);
                }
            }
        }
        assert!(embed_row(&row, 9, &mut out).is_err());
    }
}

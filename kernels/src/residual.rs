//! Residual add (SPEC §9.1).

use crate::error::check_len;
use crate::KernelError;

/// `acc_i = sat_i32(acc_i + delta_i)`, both Q12 (SPEC §9.1).
pub fn residual_add(acc: &mut [i32], delta: &[i32]) -> Result<(), KernelError> {
    check_len("residual delta", acc.len(), delta.len())?;
    for (a, &d) in acc.iter_mut().zip(delta) {
        *a = a.saturating_add(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_sum_exhaustive_corners() {
        let vals = [
            i32::MIN,
            i32::MIN + 1,
            -1,
            0,
            1,
            i32::MAX - 1,
            i32::MAX,
            12345,
            -98765,
        ];
        for &a in &vals {
            for &b in &vals {
                let mut x = [a];
                residual_add(&mut x, &[b]).unwrap();
                assert_eq!(
                    x[0] as i64,
                    (a as i64 + b as i64).clamp(i32::MIN as i64, i32::MAX as i64)
                );
            }
        }
        assert!(residual_add(&mut [0, 0], &[1]).is_err());
    }
}

//! Integer RMSNorm (SPEC §5).

use crate::error::{check_len, check_range};
use crate::round::{isqrt_u64, round_shift, sat_i32};
use crate::KernelError;

/// `round(1e-6 * 2^40)`: Qwen2's epsilon in the Q40 unit of the mean square
/// (1e-6 * 2^40 = 1099511.6; the test `eps_constant` checks it).
pub const EPS_1E6_Q40: u64 = 1_099_512;

/// Largest gamma fraction: gammas are `i16` in `Q(gamma_frac)`.
pub const GAMMA_FRAC_MAX: u32 = 15;

/// `y_i = x_i / sqrt(mean(x^2) + eps) * gamma_i` (SPEC §5).
///
/// * `x`: `n` values, Q12 `i32`, any value (`1 <= n <= 2^16`).
/// * `gamma`: `n` values, `i16` in `Q(gamma_frac)`, `gamma_frac <= 15`.
/// * `eps_q40`: epsilon in units of `2^-40`, `[2^20, 2^40]` ([`EPS_1E6_Q40`]).
/// * `out`: `n` values, Q12 `i32`, saturated.
///
/// Steps (all exact integer operations):
/// 1. `ss = sum x_i^2` (at most `2^78`); `m = floor(ss · 2^16 / n) + eps`, the mean
///    square in Q40 (`< 2^79`, 80-bit unsigned).
/// 2. Normalize: `b = bit length of m`, `k = floor((b - 29) / 2)`
///    (`k in [-4, 25]` since `2^20 <= m < 2^79`), `mn = m >> 2k` (truncating)
///    if `k >= 0`, else `m << -2k`; `mn in [2^28, 2^30)`.
/// 3. `inv = isqrt(floor(2^60 / mn))`, `inv in [2^15, 2^16]`:
///    `1 / sqrt(m · 2^-40) ≈ inv · 2^(-10 - k)`.
/// 4. `y_i = sat_i32(round_shift(x_i * gamma_i * inv, 10 + gamma_frac + k))`;
///    `|x · gamma · inv| <= 2^31 · 2^15 · 2^16 = 2^62` fits `i64`, and the shift
///    is at least `10 - 4 = 6`.
pub fn rmsnorm(
    x: &[i32],
    gamma: &[i16],
    gamma_frac: u32,
    eps_q40: u64,
    out: &mut [i32],
) -> Result<(), KernelError> {
    let n = x.len();
    check_range("rmsnorm length", n as i64, 1, 1 << 16)?;
    check_len("gamma", n, gamma.len())?;
    check_len("rmsnorm output", n, out.len())?;
    check_range("gamma_frac", gamma_frac as i64, 0, GAMMA_FRAC_MAX as i64)?;
    check_range("eps_q40", eps_q40 as i64, 1 << 20, 1 << 40)?;
    let (inv, k) = inv_rms(x, eps_q40);
    let shift = (10 + gamma_frac as i32 + k) as u32;
    for ((o, &xi), &g) in out.iter_mut().zip(x).zip(gamma) {
        *o = sat_i32(round_shift(xi as i64 * g as i64 * inv as i64, shift));
    }
    Ok(())
}

/// Steps 1–3 of [`rmsnorm`]: returns `(inv, k)` with
/// `1 / sqrt(mean(x^2)·2^-24 + eps·2^-40) ≈ inv · 2^(-10-k)`.
pub fn inv_rms(x: &[i32], eps_q40: u64) -> (u64, i32) {
    let ss: u128 = x.iter().map(|&v| (v as i64 * v as i64) as u128).sum();
    let m: u128 = (ss << 16) / x.len() as u128 + eps_q40 as u128;
    let b = 128 - m.leading_zeros() as i32;
    let k = (b - 29).div_euclid(2);
    let mn = if k >= 0 {
        (m >> (2 * k)) as u64
    } else {
        (m << (-2 * k)) as u64
    };
    let inv = isqrt_u64((1u64 << 60) / mn);
    (inv, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    use edgedecoding_testkit::Lcg;

    #[test]
    fn eps_constant() {
        assert_eq!(EPS_1E6_Q40, libm::round(1e-6 * 1099511627776.0) as u64);
    }

    /// `inv_rms` itself over its whole domain: mean squares `m` of every bit
    /// length from `eps = 2^20` to the largest (`n` values of `i32::MIN`:
    /// `2^78 + eps`), both epsilon extremes. Checked against an independent
    /// oracle: `m` summed in `i128`, the integer square root recomputed from
    /// `f64` with exact correction, and `inv · 2^(-10-k)` within `2^-14`
    /// relative of the real `1 / sqrt(m · 2^-40)`.
    #[test]
    fn inv_rms_over_its_domain() {
        let mut rng = Lcg(79);
        let mut seen_bits = [false; 80];
        let mut cases: std::vec::Vec<(std::vec::Vec<i32>, u64)> = std::vec::Vec::new();
        for j in 0..=31u32 {
            for v in [1i64 << j, (1i64 << j) - 1, 3i64 << j.saturating_sub(1)] {
                let v = v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                for n in [1usize, 3, 896] {
                    for eps in [1u64 << 20, EPS_1E6_Q40, 1u64 << 40] {
                        cases.push((std::vec![v; n], eps));
                        cases.push((std::vec![-v; n], eps));
                    }
                }
            }
        }
        for eps in [1u64 << 20, 1u64 << 40] {
            cases.push((std::vec![i32::MIN; 896], eps));
            cases.push((std::vec![0; 7], eps));
        }
        for _ in 0..3000 {
            let n = 1 + (rng.next() % 64) as usize;
            let bits = 1 + (rng.next() % 32) as u32;
            let x = (0..n)
                .map(|_| ((rng.next() % (1u64 << bits)) as i64 - (1i64 << (bits - 1))) as i32)
                .collect();
            cases.push((x, (1u64 << 20) + rng.next() % ((1u64 << 40) - (1 << 20))));
        }
        for (x, eps) in &cases {
            let (inv, k) = inv_rms(x, *eps);
            // the mean square in Q40, exactly
            let ss: i128 = x.iter().map(|&v| v as i128 * v as i128).sum();
            let m = ((ss << 16) / x.len() as i128 + *eps as i128) as u128;
            assert!((1 << 20..=(1u128 << 78) + (1 << 40)).contains(&m));
            seen_bits[128 - m.leading_zeros() as usize] = true;
            // normalisation: mn = m · 2^(-2k) in [2^28, 2^30), truncated
            assert!((-4..=25).contains(&k), "k {k}");
            let mn = if k >= 0 { m >> (2 * k) } else { m << (-2 * k) };
            assert!((1u128 << 28..1u128 << 30).contains(&mn), "mn {mn}");
            // inv = floor(sqrt(floor(2^60 / mn))), from f64 and corrected
            let q = (1u128 << 60) / mn;
            let mut r = (q as f64).sqrt() as u128;
            while r * r > q {
                r -= 1;
            }
            while (r + 1) * (r + 1) <= q {
                r += 1;
            }
            assert_eq!(inv as u128, r, "m {m}");
            assert!((1 << 15..=1 << 16).contains(&inv));
            // against the real value
            let real = 1.0 / ((m as f64) * 2f64.powi(-40)).sqrt();
            let got = inv as f64 * 2f64.powi(-10 - k);
            assert!(
                ((got - real) / real).abs() < 2f64.powi(-14),
                "m {m}: {got} vs {real}"
            );
        }
        // every bit length of m from 21 (eps = 2^20) to 79 occurred
        assert!(seen_bits[21..=79].iter().all(|&s| s), "{seen_bits:?}");
    }

    /// f64 oracle: relative error of every output below 2^-13 plus half an output
    /// LSB, on random vectors spanning the whole i32 range and adversarial ones.
    #[test]
    fn matches_f64_within_bound() {
        let mut rng = Lcg(5);
        let mut worst_rel = 0.0f64;
        for case in 0..2000 {
            let n = [1usize, 7, 64, 896][case % 4];
            let bits = (rng.next() % 31) as u32 + 1;
            let mut x = [0i32; 896];
            let mut g = [0i16; 896];
            for i in 0..n {
                x[i] = ((rng.next() % (1u64 << bits)) as i64 - (1i64 << (bits - 1))) as i32;
                g[i] = ((rng.next() % 65536) as i64 - 32768) as i16;
            }
            match case % 7 {
                0 => x[..n].fill(i32::MIN),
                1 => x[..n].fill(0),
                2 => x[..n].fill(i32::MAX),
                3 => {
                    x[..n].fill(0);
                    x[0] = 1;
                }
                _ => {}
            }
            let gf = (rng.next() % 16) as u32;
            let mut out = [0i32; 896];
            rmsnorm(&x[..n], &g[..n], gf, EPS_1E6_Q40, &mut out[..n]).unwrap();
            let ms: f64 = x[..n]
                .iter()
                .map(|&v| (v as f64 / 4096.0).powi(2))
                .sum::<f64>()
                / n as f64;
            let r = 1.0 / (ms + 1e-6).sqrt();
            for i in 0..n {
                let want = x[i] as f64 / 4096.0 * r * g[i] as f64 / (1u64 << gf) as f64 * 4096.0;
                let sat = want.clamp(i32::MIN as f64, i32::MAX as f64);
                let err = (out[i] as f64 - sat).abs();
                let bound = sat.abs() * 2f64.powi(-13) + 0.5 + 1e-9;
                assert!(
                    err <= bound,
                    "case {case} i {i}: got {} want {want} bound {bound}",
                    out[i]
                );
                if sat.abs() > 1e4 {
                    worst_rel = worst_rel.max(err / sat.abs());
                }
            }
        }
        assert!(worst_rel < 2f64.powi(-13));
    }

    #[test]
    fn errors() {
        let mut o = [0i32; 2];
        assert_eq!(
            rmsnorm(&[], &[], 8, EPS_1E6_Q40, &mut []).unwrap_err(),
            KernelError::Param {
                what: "rmsnorm length",
                value: 0,
                min: 1,
                max: 65536
            }
        );
        assert_eq!(
            rmsnorm(&[1, 2], &[1], 8, EPS_1E6_Q40, &mut o).unwrap_err(),
            KernelError::Length {
                what: "gamma",
                expected: 2,
                got: 1
            }
        );
        assert_eq!(
            rmsnorm(&[1, 2], &[1, 1], 16, EPS_1E6_Q40, &mut o).unwrap_err(),
            KernelError::Param {
                what: "gamma_frac",
                value: 16,
                min: 0,
                max: 15
            }
        );
        assert_eq!(
            rmsnorm(&[1, 2], &[1, 1], 8, 0, &mut o).unwrap_err(),
            KernelError::Param {
                what: "eps_q40",
                value: 0,
                min: 1048576,
                max: 1099511627776
            }
        );
        assert!(rmsnorm(&[1, 2], &[1, 1], 8, EPS_1E6_Q40, &mut o).is_ok());
    }
}

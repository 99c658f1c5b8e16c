//! Rotary position embedding, "rotate half" pairing (SPEC §6).

#[cfg(feature = "offline")]
use crate::error::check_range;
use crate::error::{check_len, check_multiple};
use crate::round::{round_shift, sat_i16};
use crate::KernelError;

/// Fractional bits of the cos/sin tables: `i16` in Q14, `[-16384, 16384]`.
pub const ROPE_FRAC: u32 = 14;

/// Fills the cos and sin tables for positions `0..positions` (SPEC §6.1): the
/// recipe of the RoPE ROM.
///
/// Layout: `cos[p * half + i]`, `sin[p * half + i]`, `half = head_dim / 2`.
/// Entry: `round_half_away(cos(p * theta^(-2i/head_dim)) * 2^14)` computed in
/// `f64` with `libm` (`pow`, `cos`, `sin`, `round`), so every platform builds
/// the same table. This is table construction, offline (feature `offline`):
/// the converter stores its output in the model file (`rope_rom`, FORMAT §3),
/// and the decoder reads that ROM; it never runs this.
#[cfg(feature = "offline")]
pub fn build_rope_table(
    theta: u32,
    head_dim: usize,
    positions: usize,
    cos: &mut [i16],
    sin: &mut [i16],
) -> Result<(), KernelError> {
    check_range("head_dim", head_dim as i64, 2, 1024)?;
    check_multiple("head_dim", head_dim, 2)?;
    check_range("theta", theta as i64, 2, u32::MAX as i64)?;
    let half = head_dim / 2;
    check_len("cos table", positions * half, cos.len())?;
    check_len("sin table", positions * half, sin.len())?;
    for i in 0..half {
        let inv_freq = libm::pow(theta as f64, -((2 * i) as f64) / head_dim as f64);
        for p in 0..positions {
            let a = p as f64 * inv_freq;
            cos[p * half + i] = libm::round(libm::cos(a) * (1 << ROPE_FRAC) as f64) as i16;
            sin[p * half + i] = libm::round(libm::sin(a) * (1 << ROPE_FRAC) as f64) as i16;
        }
    }
    Ok(())
}

/// Rotates `n_heads` heads of `head_dim` values in place (SPEC §6.2), with the
/// table row of one position (`half` cos and `half` sin values):
///
/// ```text
/// a = x[i], b = x[i + half]                  (i < half, per head)
/// x[i]        = sat_i16(round_shift(a*cos_i - b*sin_i, 14))
/// x[i + half] = sat_i16(round_shift(b*cos_i + a*sin_i, 14))
/// ```
///
/// `|a*cos - b*sin| <= 2 * 2^15 * 2^14 = 2^30`: the sum fits `i32`. The rotation
/// can grow a component by up to `sqrt(2)`, so values beyond `±23170`
/// may saturate; the K/Q formats leave that headroom (SPEC §9).
pub fn rope_apply(
    x: &mut [i16],
    head_dim: usize,
    cos: &[i16],
    sin: &[i16],
) -> Result<(), KernelError> {
    check_multiple("head_dim", head_dim, 2)?;
    check_multiple("rope input", x.len(), head_dim)?;
    let half = head_dim / 2;
    check_len("cos row", half, cos.len())?;
    check_len("sin row", half, sin.len())?;
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let a = head[i] as i64;
            let b = head[i + half] as i64;
            let c = cos[i] as i64;
            let s = sin[i] as i64;
            head[i] = sat_i16(round_shift(a * c - b * s, ROPE_FRAC));
            head[i + half] = sat_i16(round_shift(b * c + a * s, ROPE_FRAC));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "offline")]
    fn table_entries_match_f64_and_are_in_range() {
        const P: usize = 1024;
        const H: usize = 32;
        let mut cos = [0i16; P * H];
        let mut sin = [0i16; P * H];
        build_rope_table(1_000_000, 64, P, &mut cos, &mut sin).unwrap();
        let mut worst = 0.0f64;
        for p in 0..P {
            for i in 0..H {
                let a = p as f64 * (1e6f64).powf(-(2.0 * i as f64) / 64.0);
                let ce = (cos[p * H + i] as f64 / 16384.0 - a.cos()).abs();
                let se = (sin[p * H + i] as f64 / 16384.0 - a.sin()).abs();
                worst = worst.max(ce).max(se);
                assert!(cos[p * H + i].abs() <= 16384 && sin[p * H + i].abs() <= 16384);
            }
        }
        // half an LSB of Q14 plus f64 noise of std's pow/cos vs libm's
        assert!(worst <= 0.5 / 16384.0 + 1e-9, "worst {worst}");
        // position 0 is the identity
        assert!(cos[..H].iter().all(|&c| c == 16384) && sin[..H].iter().all(|&s| s == 0));
    }

    #[test]
    #[cfg(feature = "offline")]
    fn rotation_matches_f64() {
        let mut cos = [0i16; 200 * 8];
        let mut sin = [0i16; 200 * 8];
        build_rope_table(10_000, 16, 200, &mut cos, &mut sin).unwrap();
        let mut seed = 1u64;
        let mut worst = 0.0f64;
        for p in 0..200 {
            let mut x = [0i16; 32];
            for v in x.iter_mut() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = ((seed >> 33) % 32768) as i16 - 16384;
            }
            let orig = x;
            rope_apply(&mut x, 16, &cos[p * 8..p * 8 + 8], &sin[p * 8..p * 8 + 8]).unwrap();
            for h in 0..2 {
                for i in 0..8 {
                    let a = orig[h * 16 + i] as f64;
                    let b = orig[h * 16 + i + 8] as f64;
                    let ang = p as f64 * 10000f64.powf(-(2.0 * i as f64) / 16.0);
                    let x0 = a * ang.cos() - b * ang.sin();
                    let x1 = b * ang.cos() + a * ang.sin();
                    let e0 = (x[h * 16 + i] as f64 - x0).abs();
                    let e1 = (x[h * 16 + i + 8] as f64 - x1).abs();
                    worst = worst.max(e0).max(e1);
                }
            }
        }
        // table error (2 * 16384 * 2^-15 = 1 LSB) + output rounding (0.5 LSB)
        assert!(worst <= 1.5 + 1e-9, "worst {worst}");
    }

    #[test]
    fn saturates_at_extremes() {
        let mut x = [i16::MAX, i16::MAX];
        // 45 degrees: (a - b) * c, (a + b) * c with c = s = 11585
        rope_apply(&mut x, 2, &[11585], &[11585]).unwrap();
        assert_eq!(x, [0, i16::MAX]);
        let mut y = [i16::MIN, i16::MIN];
        rope_apply(&mut y, 2, &[11585], &[11585]).unwrap();
        assert_eq!(y, [0, i16::MIN]);
    }
}

//! GGML tensor types and their dequantization to f32.
//!
//! Block layouts follow ggml (`ggml-common.h` / `ggml-quants.c`); every value is
//! computed with the same f32 operations in the same order as the reference
//! (`gguf.quants` in Python and `dequantize_row_*` in C): scales are converted
//! from f16 exactly, products are never fused, so results are bit-exact.

use core::fmt;

/// A GGML tensor type (the `type` field of a GGUF tensor info).
#[allow(non_camel_case_types)] // ggml's names
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// Blocks of 32: f16 scale, 32 signed 8-bit codes.
    Q8_0,
    /// Blocks of 32: f16 scale, 4-bit codes offset by 8.
    Q4_0,
    /// Blocks of 32: f16 scale and min, 4-bit codes.
    Q4_1,
    /// Blocks of 32: f16 scale, 5-bit codes offset by 16.
    Q5_0,
    /// Blocks of 32: f16 scale and min, 5-bit codes.
    Q5_1,
    /// Super-blocks of 256: 8 sub-blocks of 32 with 6-bit scales and mins, 4-bit codes.
    Q4_K,
    /// Super-blocks of 256: like Q4_K with a fifth bit per code.
    Q5_K,
    /// Super-blocks of 256: 16 sub-blocks of 16 with 8-bit scales, 6-bit codes.
    Q6_K,
    /// Any other type id (parsed, not dequantized).
    Other(u32),
}

/// Names of the GGML type ids (ggml.h), for messages.
const NAMES: &[(u32, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (4, "Q4_2 (removed)"),
    (5, "Q4_3 (removed)"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (30, "BF16"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (39, "MXFP4"),
];

impl GgmlType {
    /// The type of a GGML type id.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    /// The GGML type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
            Self::Other(id) => id,
        }
    }

    /// The ggml name (`"Q4_K"`), or `"unknown"` for an id ggml does not define.
    pub fn name(self) -> &'static str {
        let id = self.id();
        NAMES
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("unknown", |(_, n)| n)
    }

    /// `(values per block, bytes per block)` of the types this crate
    /// dequantizes; `None` for the others.
    pub fn block(self) -> Option<(usize, usize)> {
        Some(match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q8_0 => (32, 34),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q4_K => (256, 144),
            Self::Q5_K => (256, 176),
            Self::Q6_K => (256, 210),
            Self::Other(_) => return None,
        })
    }

    /// Whether [`dequantize`] supports this type.
    pub fn is_supported(self) -> bool {
        self.block().is_some()
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (type id {})", self.name(), self.id())
    }
}

/// Why [`dequantize`] refused its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The type is not one this crate dequantizes.
    Unsupported(GgmlType),
    /// `out.len()` is not a whole number of blocks, or `src.len()` does not
    /// hold exactly that many blocks.
    Length {
        /// The type.
        ty: GgmlType,
        /// Bytes given.
        src: usize,
        /// Values asked for.
        out: usize,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::Unsupported(t) => write!(f, "tensor type {t} is not supported"),
            QuantError::Length { ty, src, out } => write!(
                f,
                "{src} bytes of {ty} do not hold exactly {out} values in whole blocks"
            ),
        }
    }
}

impl std::error::Error for QuantError {}

/// Bytes that `n` values of `ty` occupy (`None`: unsupported type, `n` not a
/// whole number of blocks, or overflow).
pub fn bytes_for(ty: GgmlType, n: u64) -> Option<u64> {
    let (bs, sz) = ty.block()?;
    if n % bs as u64 != 0 {
        return None;
    }
    (n / bs as u64).checked_mul(sz as u64)
}

/// Exact IEEE half -> single conversion (subnormals, infinities, NaN payloads).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // subnormal: man * 2^-24, renormalized
            let mut e = 113u32; // 127 - 15 + 1
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
    } else if exp == 31 {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// bfloat16 -> f32 (exact: the high half of the f32 bits).
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[inline]
fn le16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

#[inline]
fn half(b: &[u8], i: usize) -> f32 {
    f16_to_f32(le16(b, i))
}

/// Scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K super-block
/// (`get_scale_min_k4` in ggml).
#[inline]
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Runs `f` on each `S`-byte block of `src` and its `B` outputs.
#[inline(always)]
fn blocks<const S: usize, const B: usize>(
    src: &[u8],
    out: &mut [f32],
    f: impl Fn(&[u8; S], &mut [f32; B]),
) {
    for (b, y) in src.chunks_exact(S).zip(out.chunks_exact_mut(B)) {
        // the chunks have exactly these sizes: the conversions always succeed
        if let (Ok(b), Ok(y)) = (<&[u8; S]>::try_from(b), <&mut [f32; B]>::try_from(y)) {
            f(b, y);
        }
    }
}

/// Dequantizes `out.len()` values of type `ty` from `src` (exactly that many
/// whole blocks), bit-exact with ggml and `gguf.quants`.
pub fn dequantize(ty: GgmlType, src: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let (bs, sz) = ty.block().ok_or(QuantError::Unsupported(ty))?;
    if out.len() % bs != 0 || (out.len() / bs).checked_mul(sz) != Some(src.len()) {
        return Err(QuantError::Length {
            ty,
            src: src.len(),
            out: out.len(),
        });
    }
    match ty {
        GgmlType::F32 => blocks::<4, 1>(src, out, |b, y| y[0] = f32::from_le_bytes(*b)),
        GgmlType::F16 => blocks::<2, 1>(src, out, |b, y| y[0] = f16_to_f32(u16::from_le_bytes(*b))),
        GgmlType::BF16 => {
            blocks::<2, 1>(src, out, |b, y| y[0] = bf16_to_f32(u16::from_le_bytes(*b)))
        }
        GgmlType::Q8_0 => blocks::<34, 32>(src, out, |b, y| {
            let d = half(b, 0);
            for j in 0..32 {
                y[j] = (b[2 + j] as i8) as f32 * d;
            }
        }),
        GgmlType::Q4_0 => blocks::<18, 32>(src, out, |b, y| {
            let d = half(b, 0);
            for j in 0..16 {
                let q = b[2 + j];
                y[j] = d * ((q & 0x0f) as i32 - 8) as f32;
                y[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
            }
        }),
        GgmlType::Q4_1 => blocks::<20, 32>(src, out, |b, y| {
            let (d, m) = (half(b, 0), half(b, 2));
            for j in 0..16 {
                let q = b[4 + j];
                y[j] = d * (q & 0x0f) as f32 + m;
                y[j + 16] = d * (q >> 4) as f32 + m;
            }
        }),
        GgmlType::Q5_0 => blocks::<22, 32>(src, out, |b, y| {
            let d = half(b, 0);
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            for j in 0..16 {
                let q = b[6 + j];
                let lo = (q & 0x0f) as u32 | (((qh >> j) & 1) << 4);
                let hi = (q >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
                y[j] = d * (lo as i32 - 16) as f32;
                y[j + 16] = d * (hi as i32 - 16) as f32;
            }
        }),
        GgmlType::Q5_1 => blocks::<24, 32>(src, out, |b, y| {
            let (d, m) = (half(b, 0), half(b, 2));
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            for j in 0..16 {
                let q = b[8 + j];
                let lo = (q & 0x0f) as u32 | (((qh >> j) & 1) << 4);
                let hi = (q >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
                y[j] = d * lo as f32 + m;
                y[j + 16] = d * hi as f32 + m;
            }
        }),
        GgmlType::Q4_K => blocks::<144, 256>(src, out, |b, y| {
            let (d, dmin) = (half(b, 0), half(b, 2));
            let sc = &b[4..16];
            for j in 0..4 {
                let (s1, m1) = scale_min_k4(2 * j, sc);
                let (s2, m2) = scale_min_k4(2 * j + 1, sc);
                let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                for l in 0..32 {
                    let q = b[16 + 32 * j + l];
                    y[64 * j + l] = d1 * (q & 0x0f) as f32 - m1;
                    y[64 * j + 32 + l] = d2 * (q >> 4) as f32 - m2;
                }
            }
        }),
        GgmlType::Q5_K => blocks::<176, 256>(src, out, |b, y| {
            let (d, dmin) = (half(b, 0), half(b, 2));
            let sc = &b[4..16];
            for j in 0..4 {
                let (s1, m1) = scale_min_k4(2 * j, sc);
                let (s2, m2) = scale_min_k4(2 * j + 1, sc);
                let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
                for l in 0..32 {
                    let (q, h) = (b[48 + 32 * j + l], b[16 + l]);
                    let h1 = ((h >> (2 * j)) & 1) << 4;
                    let h2 = ((h >> (2 * j + 1)) & 1) << 4;
                    y[64 * j + l] = d1 * ((q & 0x0f) | h1) as f32 - m1;
                    y[64 * j + 32 + l] = d2 * ((q >> 4) | h2) as f32 - m2;
                }
            }
        }),
        GgmlType::Q6_K => blocks::<210, 256>(src, out, |b, y| {
            let d = half(b, 208);
            let mut ds = [0.0f32; 16];
            for (k, v) in ds.iter_mut().enumerate() {
                *v = d * (b[192 + k] as i8) as f32;
            }
            for h in 0..2 {
                for l in 0..32 {
                    let (a, c, qh) = (b[64 * h + l], b[64 * h + 32 + l], b[128 + 32 * h + l]);
                    let q = [
                        (a & 0x0f) | ((qh & 3) << 4),
                        (c & 0x0f) | (((qh >> 2) & 3) << 4),
                        (a >> 4) | (((qh >> 4) & 3) << 4),
                        (c >> 4) | (((qh >> 6) & 3) << 4),
                    ];
                    for (u, &qu) in q.iter().enumerate() {
                        let e = 128 * h + 32 * u + l;
                        y[e] = ds[e / 16] * (qu as i32 - 32) as f32;
                    }
                }
            }
        }),
        GgmlType::Other(_) => return Err(QuantError::Unsupported(ty)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every half, against the definition computed in f64.
    #[test]
    fn f16_exhaustive() {
        for h in 0..=u16::MAX {
            let got = f16_to_f32(h);
            let s = if h & 0x8000 != 0 { -1.0f64 } else { 1.0 };
            let e = ((h >> 10) & 0x1f) as i32;
            let m = (h & 0x3ff) as f64;
            if e == 31 {
                if m == 0.0 {
                    assert_eq!(got, (s * f64::INFINITY) as f32);
                } else {
                    assert!(got.is_nan());
                    assert_eq!(got.to_bits() >> 13 & 0x3ff, (h & 0x3ff) as u32);
                }
                continue;
            }
            let want = if e == 0 {
                s * m * 2f64.powi(-24)
            } else {
                s * (1024.0 + m) * 2f64.powi(e - 25)
            };
            assert_eq!(got.to_bits(), (want as f32).to_bits(), "half {h:#06x}");
        }
    }

    #[test]
    fn type_ids_round_trip() {
        for id in 0..64 {
            assert_eq!(GgmlType::from_id(id).id(), id);
        }
        assert_eq!(GgmlType::from_id(10).name(), "Q2_K");
        assert_eq!(GgmlType::from_id(99).name(), "unknown");
        assert!(!GgmlType::from_id(10).is_supported());
    }

    #[test]
    fn lengths_are_checked() {
        let mut out = [0.0f32; 32];
        assert!(dequantize(GgmlType::Q8_0, &[0; 33], &mut out).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 34], &mut out[..31]).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 34], &mut out).is_ok());
        assert_eq!(
            dequantize(GgmlType::Other(10), &[], &mut []),
            Err(QuantError::Unsupported(GgmlType::Other(10)))
        );
        assert_eq!(bytes_for(GgmlType::Q4_K, 512), Some(288));
        assert_eq!(bytes_for(GgmlType::Q4_K, 100), None);
        assert_eq!(bytes_for(GgmlType::F32, u64::MAX), None);
    }
}

//! The 5-bit APoT weight format and its packed storage (SPEC §2).
//!
//! A weight matrix has `rows` outputs and `cols` inputs (`cols % 8 == 0`). Each
//! (row, group of 8 consecutive inputs) holds eight 5-bit signed codes
//! `q in [-16, 15]` and two 3-bit exponents `s1, s2 in [0, 7]`; each row holds an
//! exponent `e_row: i8`. The real weight is
//!
//! ```text
//! w[r][c] = q[r][c] * (2^s1[r][g] + 2^s2[r][g]) * 2^e_row[r],   g = c / 8
//! ```
//!
//! Packed storage (the `.edq` payload and the input of the reference kernel):
//! * codes: one little-endian bit stream, 5 bits per code, two's complement,
//!   least significant bit first, row-major (`bit offset = 5 * (r * cols + c)`);
//!   a group of 8 codes is exactly 5 bytes and starts on a byte boundary;
//! * exponents: one bit stream, 3 bits per exponent, `s1` then `s2` per group,
//!   groups row-major (`bit offset = 6 * (r * cols/8 + g)`), padded with zero
//!   bits to a whole byte;
//! * row exponents: one `i8` per row.
//!
//! That is `5 + 6/8 + 8/cols` bits per weight (5.76 for `cols = 896`).

use crate::error::{check_len, check_multiple, check_range};
use crate::{KernelError, GROUP};

/// Smallest 5-bit code.
pub const CODE_MIN: i8 = -16;
/// Largest 5-bit code.
pub const CODE_MAX: i8 = 15;
/// Largest 3-bit group exponent.
pub const EXP_MAX: u8 = 7;

/// One (row, group) of an APoT matrix, unpacked: 8 codes and two exponents.
/// `repr(C)` (10 bytes: `codes[8]`, `s1`, `s2`) so the C ABI can lend arrays
/// of groups to the kernels without copying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ApotGroup {
    /// Codes in `[-16, 15]`.
    pub codes: [i8; GROUP],
    /// First exponent, `[0, 7]`.
    pub s1: u8,
    /// Second exponent, `[0, 7]`.
    pub s2: u8,
}

impl ApotGroup {
    /// The group scale `2^s1 + 2^s2`, in `[2, 256]`.
    #[inline(always)]
    pub const fn scale(&self) -> i32 {
        (1 << self.s1) + (1 << self.s2)
    }
}

/// Anything the linear kernel can read APoT weights from: the packed matrix of
/// a `.edq` file, a repacked copy, or the lm_head derived on the fly from the
/// embedding ([`crate::lm_head::DerivedHead`]).
pub trait ApotWeights {
    /// Output rows.
    fn rows(&self) -> usize;
    /// Input columns (a multiple of 8).
    fn cols(&self) -> usize;
    /// Per-row context computed once before the row's groups are read
    /// (`()` for stored matrices; the row's exponent for a derived head).
    type Row: Copy;
    /// `e_row` of row `r` and its context.
    fn row(&self, r: usize) -> (i8, Self::Row);
    /// Group `g` of row `r`; codes in range, exponents in `[0, 7]`.
    fn group(&self, r: usize, g: usize, row: Self::Row) -> ApotGroup;
}

/// Bytes of the packed code stream of a `rows x cols` matrix.
pub const fn packed_codes_len(rows: usize, cols: usize) -> usize {
    rows * cols * 5 / 8
}

/// Bytes of the packed exponent stream of a `rows x cols` matrix.
pub const fn packed_exps_len(rows: usize, cols: usize) -> usize {
    (rows * (cols / GROUP) * 6).div_ceil(8)
}

/// A packed APoT matrix borrowed from memory (flash, a memory map, a file
/// buffer). Construction validates the lengths; reads cannot fail afterwards.
#[derive(Clone, Copy, Debug)]
pub struct ApotMatrix<'a> {
    rows: usize,
    cols: usize,
    codes: &'a [u8],
    exps: &'a [u8],
    row_exps: &'a [i8],
}

impl<'a> ApotMatrix<'a> {
    /// Wraps packed streams; checks `cols % 8 == 0` and every length.
    pub fn new(
        rows: usize,
        cols: usize,
        codes: &'a [u8],
        exps: &'a [u8],
        row_exps: &'a [i8],
    ) -> Result<Self, KernelError> {
        check_multiple("cols", cols, GROUP)?;
        check_len("packed codes", packed_codes_len(rows, cols), codes.len())?;
        check_len("packed exponents", packed_exps_len(rows, cols), exps.len())?;
        check_len("row exponents", rows, row_exps.len())?;
        Ok(Self {
            rows,
            cols,
            codes,
            exps,
            row_exps,
        })
    }

    /// The packed code stream.
    pub fn codes(&self) -> &'a [u8] {
        self.codes
    }
    /// The packed exponent stream.
    pub fn exps(&self) -> &'a [u8] {
        self.exps
    }
    /// The row exponents.
    pub fn row_exps(&self) -> &'a [i8] {
        self.row_exps
    }
}

impl ApotWeights for ApotMatrix<'_> {
    #[inline(always)]
    fn rows(&self) -> usize {
        self.rows
    }
    #[inline(always)]
    fn cols(&self) -> usize {
        self.cols
    }
    type Row = ();
    #[inline(always)]
    fn row(&self, r: usize) -> (i8, ()) {
        (self.row_exps[r], ())
    }
    #[inline(always)]
    fn group(&self, r: usize, g: usize, _: ()) -> ApotGroup {
        let gi = r * (self.cols / GROUP) + g;
        let b = &self.codes[gi * 5..gi * 5 + 5];
        let bits = u64::from(b[0])
            | u64::from(b[1]) << 8
            | u64::from(b[2]) << 16
            | u64::from(b[3]) << 24
            | u64::from(b[4]) << 32;
        let mut codes = [0i8; GROUP];
        for (i, c) in codes.iter_mut().enumerate() {
            *c = sign_extend5(((bits >> (5 * i)) & 31) as u8);
        }
        let (s1, s2) = read_exp_pair(self.exps, gi);
        ApotGroup { codes, s1, s2 }
    }
}

/// Two's-complement 5-bit field to `i8`.
#[inline(always)]
pub const fn sign_extend5(v: u8) -> i8 {
    ((v << 3) as i8) >> 3
}

#[inline(always)]
fn read_exp_pair(exps: &[u8], gi: usize) -> (u8, u8) {
    let bit = gi * 6;
    let byte = bit / 8;
    let lo = u16::from(exps[byte]);
    let hi = if byte + 1 < exps.len() {
        u16::from(exps[byte + 1])
    } else {
        0
    };
    let v = ((lo | hi << 8) >> (bit % 8)) & 63;
    ((v & 7) as u8, (v >> 3) as u8)
}

/// Packs one group into the streams at group index `gi` (`r * cols/8 + g`).
/// The streams must be zeroed beforehand (the exponent bits are OR-ed in).
/// Codes outside `[-16, 15]` or exponents above 7 are an error.
pub fn pack_group(
    codes_out: &mut [u8],
    exps_out: &mut [u8],
    gi: usize,
    grp: &ApotGroup,
) -> Result<(), KernelError> {
    for &c in &grp.codes {
        check_range("code", c as i64, CODE_MIN as i64, CODE_MAX as i64)?;
    }
    check_range("s1", grp.s1 as i64, 0, EXP_MAX as i64)?;
    check_range("s2", grp.s2 as i64, 0, EXP_MAX as i64)?;
    if codes_out.len() < gi * 5 + 5 {
        return Err(KernelError::Length {
            what: "packed codes",
            expected: gi * 5 + 5,
            got: codes_out.len(),
        });
    }
    let need = (gi * 6 + 6).div_ceil(8);
    if exps_out.len() < need {
        return Err(KernelError::Length {
            what: "packed exponents",
            expected: need,
            got: exps_out.len(),
        });
    }
    let mut bits = 0u64;
    for (i, &c) in grp.codes.iter().enumerate() {
        bits |= u64::from((c as u8) & 31) << (5 * i);
    }
    codes_out[gi * 5..gi * 5 + 5].copy_from_slice(&bits.to_le_bytes()[..5]);
    let v = u16::from(grp.s1) | u16::from(grp.s2) << 3;
    let bit = gi * 6;
    let byte = bit / 8;
    let sh = v << (bit % 8);
    exps_out[byte] |= sh as u8;
    if sh >> 8 != 0 {
        exps_out[byte + 1] |= (sh >> 8) as u8;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extend_every_code() {
        for q in CODE_MIN..=CODE_MAX {
            assert_eq!(sign_extend5((q as u8) & 31), q);
        }
    }

    /// Every code in every lane and every exponent pair in every group phase
    /// survives pack -> unpack, and neighbours are not disturbed.
    #[test]
    fn pack_unpack_exhaustive() {
        let rows = 4;
        let cols = 40; // 5 groups per row: all four 6-bit phases of the exponent stream
        let ng = rows * cols / GROUP;
        let mut case = 0usize;
        for q in CODE_MIN..=CODE_MAX {
            for s1 in 0..=EXP_MAX {
                for s2 in 0..=EXP_MAX {
                    let mut codes = [0u8; packed_codes_len(4, 40)];
                    let mut exps = [0u8; packed_exps_len(4, 40)];
                    let mut groups = [ApotGroup::default(); 20];
                    for (gi, grp) in groups.iter_mut().enumerate() {
                        for lane in 0..GROUP {
                            // a different code per lane, q in lane (gi % 8)
                            let v = ((q as i32 + 3 * lane as i32 + gi as i32 + 16).rem_euclid(32)
                                - 16) as i8;
                            grp.codes[lane] = if lane == gi % 8 { q } else { v };
                        }
                        grp.s1 = ((s1 as usize + gi) % 8) as u8;
                        grp.s2 = ((s2 as usize + 2 * gi) % 8) as u8;
                        pack_group(&mut codes, &mut exps, gi, grp).unwrap();
                    }
                    let m = ApotMatrix::new(rows, cols, &codes, &exps, &[0; 4]).unwrap();
                    for gi in 0..ng {
                        assert_eq!(m.group(gi / 5, gi % 5, ()), groups[gi]);
                    }
                    case += 1;
                }
            }
        }
        assert_eq!(case, 32 * 64);
    }

    #[test]
    fn bits_per_weight() {
        let bits = (packed_codes_len(896, 896) + packed_exps_len(896, 896) + 896) as f64 * 8.0
            / (896.0 * 896.0);
        assert!((bits - 5.7589).abs() < 1e-3, "{bits}");
    }

    #[test]
    fn rejects_bad_values_and_shapes() {
        let mut c = [0u8; 5];
        let mut e = [0u8; 1];
        let mut g = ApotGroup::default();
        g.codes[3] = 16;
        assert!(matches!(
            pack_group(&mut c, &mut e, 0, &g),
            Err(KernelError::Param { what: "code", .. })
        ));
        g.codes[3] = 0;
        g.s2 = 8;
        assert_eq!(
            pack_group(&mut c, &mut e, 0, &g).unwrap_err(),
            KernelError::Param {
                what: "s2",
                value: 8,
                min: 0,
                max: 7
            }
        );
        assert_eq!(
            ApotMatrix::new(1, 12, &[0; 7], &[0; 1], &[0]).unwrap_err(),
            KernelError::NotMultiple {
                what: "cols",
                value: 12,
                of: 8
            }
        );
        assert_eq!(
            ApotMatrix::new(1, 8, &[0; 4], &[0; 1], &[0]).unwrap_err(),
            KernelError::Length {
                what: "packed codes",
                expected: 5,
                got: 4
            }
        );
        assert_eq!(
            ApotMatrix::new(1, 8, &[0; 5], &[0; 1], &[0; 2]).unwrap_err(),
            KernelError::Length {
                what: "row exponents",
                expected: 1,
                got: 2
            }
        );
    }
}

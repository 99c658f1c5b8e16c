//! The linear layer on a repacked, SIMD-friendly weight layout (SPEC §4.4),
//! bit-identical to [`crate::linear::linear`].
//!
//! Repacking reorders the same codes, scales and row exponents into panels of
//! 16 rows: one 96-byte record per (panel, group of 8 inputs):
//!
//! ```text
//! [0, 64)   nibbles: byte 4*l + j = ((q[r][8g+j] + 16) & 15) | ((q[r][8g+4+j] + 16) & 15) << 4
//!                     for lane l in 0..16 (row r = 16*panel + l), j in 0..4
//! [64, 72)  u64 LE:  bit 4*l + j = (q[r][8g+j] + 16) >> 4          (fifth bit, codes 0..3)
//! [72, 80)  u64 LE:  bit 4*l + j = (q[r][8g+4+j] + 16) >> 4        (fifth bit, codes 4..7)
//! [80, 96)  u8:      scale[r][g] - 1 = 2^s1 + 2^s2 - 1, in [1, 255]
//! ```
//!
//! 6 bits per weight; rows beyond the matrix (padding to 16) hold code 0 and
//! scale 1. Codes are stored offset by 16 (unsigned 5 bits) so a u8 x i8 dot
//! product instruction can use them:
//! `sum_i m_i q_i = sum_i m_i (q_i + 16) - 16 sum_i m_i`.
//!
//! The arithmetic is the one of SPEC §4.1 — per group `p = sum m q`,
//! `acc += (p * scale) << e` — evaluated exactly in integers; only the order of
//! the (exact, non-overflowing) additions differs, so every backend gives the
//! reference's bits. Backends: AVX-512 (F, BW, VNNI), chosen at run time with
//! `cpufeatures`, and a portable scalar one; tests compare both with
//! [`crate::linear::linear`].

use core::ops::Range;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::attention::{exp_weight, AttnParams, MAX_LEN};
use crate::bfp::{BfpBlock, BFP_EXP_MAX};
use crate::error::{check_len, check_range};
use crate::format::ApotWeights;
use crate::linear::{rescale, MAX_COLS, OUT_FRAC_MAX, OUT_FRAC_MIN};
use crate::round::{round_shift, sat_i32, shift_round_sat};
use crate::{KernelError, GROUP, TOKENS_PER_PASS};

/// Rows per panel.
pub const PANEL: usize = 16;
/// Bytes per (panel, group) record.
pub const RECORD: usize = 96;

/// Bytes of the repacked data of a `rows x cols` matrix.
pub const fn repacked_len(rows: usize, cols: usize) -> usize {
    rows.div_ceil(PANEL) * (cols / GROUP) * RECORD
}

/// Repacks any APoT weights (a stored matrix or the derived lm_head) into
/// `data` (`repacked_len` bytes) and `row_exps` (`rows` values).
pub fn repack<W: ApotWeights + ?Sized>(
    w: &W,
    data: &mut [u8],
    row_exps: &mut [i8],
) -> Result<(), KernelError> {
    repack_panels(w, 0..w.rows().div_ceil(PANEL), data, row_exps)
}

/// [`repack`] for panels `panels` only (to split the work over threads):
/// `data` holds those panels' records, `row_exps` their rows.
pub fn repack_panels<W: ApotWeights + ?Sized>(
    w: &W,
    panels: Range<usize>,
    data: &mut [u8],
    row_exps: &mut [i8],
) -> Result<(), KernelError> {
    let (rows, cols) = (w.rows(), w.cols());
    crate::error::check_multiple("cols", cols, GROUP)?;
    let groups = cols / GROUP;
    if panels.end > rows.div_ceil(PANEL) || panels.start > panels.end {
        return Err(KernelError::Param {
            what: "panel range end",
            value: panels.end as i64,
            min: 0,
            max: rows.div_ceil(PANEL) as i64,
        });
    }
    let r0 = panels.start * PANEL;
    let r1 = (panels.end * PANEL).min(rows);
    check_len("repacked data", panels.len() * groups * RECORD, data.len())?;
    check_len(
        "repacked row exponents",
        r1.saturating_sub(r0),
        row_exps.len(),
    )?;
    data.fill(0);
    for (pi, p) in panels.clone().enumerate() {
        for lane in 0..PANEL {
            let r = p * PANEL + lane;
            if r >= rows {
                for g in 0..groups {
                    let rec = &mut data[(pi * groups + g) * RECORD..][..RECORD];
                    rec[80 + lane] = 1; // scale 2 - 1, codes 0 (stored 16: nibble 0, fifth bit 1)
                    for j in 0..4 {
                        rec[64 + (4 * lane + j) / 8] |= 1 << ((4 * lane + j) % 8);
                        rec[72 + (4 * lane + j) / 8] |= 1 << ((4 * lane + j) % 8);
                    }
                }
                continue;
            }
            let (e, ctx) = w.row(r);
            row_exps[r - r0] = e;
            for g in 0..groups {
                let grp = w.group(r, g, ctx);
                let rec = &mut data[(pi * groups + g) * RECORD..][..RECORD];
                for j in 0..4 {
                    let a = (grp.codes[j] + 16) as u8;
                    let b = (grp.codes[j + 4] + 16) as u8;
                    let k = 4 * lane + j;
                    rec[k] = (a & 15) | (b & 15) << 4;
                    rec[64 + k / 8] |= (a >> 4) << (k % 8);
                    rec[72 + k / 8] |= (b >> 4) << (k % 8);
                }
                rec[80 + lane] = (grp.scale() - 1) as u8;
            }
        }
    }
    Ok(())
}

/// A repacked matrix borrowed from memory.
#[derive(Clone, Copy, Debug)]
pub struct Repacked<'a> {
    rows: usize,
    cols: usize,
    data: &'a [u8],
    row_exps: &'a [i8],
}

impl<'a> Repacked<'a> {
    /// Wraps repacked data; checks lengths.
    pub fn new(
        rows: usize,
        cols: usize,
        data: &'a [u8],
        row_exps: &'a [i8],
    ) -> Result<Self, KernelError> {
        crate::error::check_multiple("cols", cols, GROUP)?;
        check_range("cols", cols as i64, GROUP as i64, MAX_COLS as i64)?;
        check_len("repacked data", repacked_len(rows, cols), data.len())?;
        check_len("repacked row exponents", rows, row_exps.len())?;
        Ok(Self {
            rows,
            cols,
            data,
            row_exps,
        })
    }
    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Number of 16-row panels.
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }
}

/// One activation group prepared for the dot-product instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Prepared {
    /// Mantissas 0..4 as little-endian bytes.
    pub lo: u32,
    /// Mantissas 4..8.
    pub hi: u32,
    /// `16 * sum m`.
    pub msum16: i32,
    /// The block exponent.
    pub e: u32,
}

/// Prepares BFP blocks (any number of tokens) for [`linear_fast`].
pub fn prepare(x: &[BfpBlock], out: &mut [Prepared]) -> Result<(), KernelError> {
    check_len("prepared blocks", x.len(), out.len())?;
    if let Some(b) = x.iter().find(|b| b.e > BFP_EXP_MAX) {
        return Err(KernelError::Param {
            what: "bfp exponent",
            value: b.e as i64,
            min: 0,
            max: BFP_EXP_MAX as i64,
        });
    }
    for (o, b) in out.iter_mut().zip(x) {
        let u = |k: usize| {
            u32::from_le_bytes([
                b.m[k] as u8,
                b.m[k + 1] as u8,
                b.m[k + 2] as u8,
                b.m[k + 3] as u8,
            ])
        };
        *o = Prepared {
            lo: u(0),
            hi: u(4),
            msum16: 16 * b.m.iter().map(|&v| v as i32).sum::<i32>(),
            e: b.e as u32,
        };
    }
    Ok(())
}

/// Which implementation [`linear_fast`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable scalar code.
    Scalar,
    /// AVX-512 F + BW + VNNI (x86_64).
    Avx512Vnni,
}

// AVX-512 F and BW, including the OS's support for the zmm state (XGETBV),
// come from `cpufeatures`; it has no VNNI flag, read from CPUID leaf 7 below.
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx512bw_cpu, "avx512f", "avx512bw");

#[cfg(target_arch = "x86_64")]
fn has_vnni() -> bool {
    // CPUID leaf 7, sub-leaf 0, ECX bit 11: AVX512_VNNI.
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    max_leaf >= 7 && (core::arch::x86_64::__cpuid_count(7, 0).ecx >> 11) & 1 == 1
}

/// 0: not yet detected, 1: scalar, 2: AVX-512 VNNI.
static DETECTED: AtomicU8 = AtomicU8::new(0);

impl Isa {
    /// The best implementation this CPU supports (detected once, then cached).
    pub fn detect() -> Self {
        match DETECTED.load(Ordering::Relaxed) {
            1 => return Isa::Scalar,
            2 => return Isa::Avx512Vnni,
            _ => {}
        }
        #[allow(unused_mut)]
        let mut isa = Isa::Scalar;
        #[cfg(target_arch = "x86_64")]
        {
            if avx512bw_cpu::get() && has_vnni() {
                isa = Isa::Avx512Vnni;
            }
        }
        DETECTED.store(
            if isa == Isa::Avx512Vnni { 2 } else { 1 },
            Ordering::Relaxed,
        );
        isa
    }
}

/// `out = linear(w, x)` for the panels `panels` (SPEC §4.4), identical to
/// [`crate::linear::linear_rows`] over rows `16*panels.start ..
/// min(16*panels.end, rows)`.
///
/// * `x`: `T * cols/8` prepared groups ([`prepare`]), token-major;
/// * `bias`: `rows` values or `None`;
/// * `out`: `T * n` values, token-major, `n` = rows in the panel range.
///
/// `isa` must be supported by the CPU: pass [`Isa::detect`]'s result (an
/// unsupported request falls back to [`Isa::Scalar`]).
pub fn linear_fast(
    isa: Isa,
    w: &Repacked<'_>,
    x: &[Prepared],
    bias: Option<&[i32]>,
    out_frac: i32,
    panels: Range<usize>,
    out: &mut [i32],
) -> Result<(), KernelError> {
    let groups = w.cols / GROUP;
    check_range(
        "out_frac",
        out_frac as i64,
        OUT_FRAC_MIN as i64,
        OUT_FRAC_MAX as i64,
    )?;
    if panels.start > panels.end || panels.end > w.panels() {
        return Err(KernelError::Param {
            what: "panel range end",
            value: panels.end as i64,
            min: panels.start as i64,
            max: w.panels() as i64,
        });
    }
    crate::error::check_multiple("prepared blocks", x.len(), groups)?;
    let tokens = x.len() / groups;
    let r0 = panels.start * PANEL;
    let r1 = (panels.end * PANEL).min(w.rows);
    let n = r1.saturating_sub(r0);
    check_len("output", tokens * n, out.len())?;
    if let Some(b) = bias {
        check_len("bias", w.rows, b.len())?;
    }
    if let Some(p) = x.iter().find(|p| p.e > BFP_EXP_MAX as u32) {
        return Err(KernelError::Param {
            what: "bfp exponent",
            value: p.e as i64,
            min: 0,
            max: BFP_EXP_MAX as i64,
        });
    }
    let isa = if isa == Isa::Avx512Vnni && Isa::detect() != Isa::Avx512Vnni {
        Isa::Scalar
    } else {
        isa
    };
    for t0 in (0..tokens).step_by(TOKENS_PER_PASS) {
        let nt = (tokens - t0).min(TOKENS_PER_PASS);
        let xt = &x[t0 * groups..(t0 + nt) * groups];
        for p in panels.clone() {
            let rec = &w.data[p * groups * RECORD..(p + 1) * groups * RECORD];
            let mut acc = [[0i64; PANEL]; TOKENS_PER_PASS];
            match isa {
                Isa::Scalar => panel_scalar(rec, xt, nt, groups, &mut acc),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni => avx512::panel(rec, xt, nt, groups, &mut acc),
                #[cfg(not(target_arch = "x86_64"))]
                Isa::Avx512Vnni => panel_scalar(rec, xt, nt, groups, &mut acc),
            }
            for lane in 0..PANEL {
                let r = p * PANEL + lane;
                if r >= w.rows {
                    break;
                }
                let b = bias.map_or(0, |b| b[r]);
                for (t, a) in acc.iter().enumerate().take(nt) {
                    out[(t0 + t) * n + (r - r0)] = rescale(a[lane], w.row_exps[r], out_frac, b);
                }
            }
        }
    }
    Ok(())
}

/// Portable evaluation of one panel from the repacked record layout.
fn panel_scalar(
    rec: &[u8],
    x: &[Prepared],
    nt: usize,
    groups: usize,
    acc: &mut [[i64; PANEL]; TOKENS_PER_PASS],
) {
    for g in 0..groups {
        let r = &rec[g * RECORD..(g + 1) * RECORD];
        let m0 = u64::from_le_bytes(r[64..72].try_into().unwrap_or([0; 8]));
        let m1 = u64::from_le_bytes(r[72..80].try_into().unwrap_or([0; 8]));
        for lane in 0..PANEL {
            let mut c = [0i32; GROUP];
            for j in 0..4 {
                let k = 4 * lane + j;
                c[j] = (r[k] & 15) as i32 | (((m0 >> k) & 1) as i32) << 4;
                c[j + 4] = (r[k] >> 4) as i32 | (((m1 >> k) & 1) as i32) << 4;
            }
            let scale = r[80 + lane] as i64 + 1;
            for t in 0..nt {
                let xp = &x[t * groups + g];
                let lo = xp.lo.to_le_bytes();
                let hi = xp.hi.to_le_bytes();
                let mut raw = 0i32;
                for j in 0..4 {
                    raw += c[j] * (lo[j] as i8) as i32 + c[j + 4] * (hi[j] as i8) as i32;
                }
                let p = (raw - xp.msum16) as i64;
                acc[t][lane] += (p * scale) << xp.e;
            }
        }
    }
}

/// [`crate::attention::attention`] for query heads `heads` only, with SIMD
/// dot products (SPEC §7.5): identical outputs.
///
/// * `weights`: scratch of at least `len` `u32` (holds the Q23 softmax weights,
///   then the Q15 probabilities, instead of recomputing them);
/// * `out`: `heads.len() * head_dim` values.
///
/// Exactness of the shortcuts: a pair sum `a*b + c*d` of `i16` lies in
/// `(-2^31, 2^31]`; its only value outside `i32` is `+2^31` (all four
/// `-32768`), which wraps to `i32::MIN`, a value no pair can produce, so
/// subtracting 1 (wrapping) before widening and adding it back is exact. The
/// weighted sum fits `i32`: `sum p_j <= 2^15 + (len + 1) / 2 <= 2^16` and
/// `|v| <= 2^15`, and only `-2^31` reaches the bound.
pub fn attention_fast(
    isa: Isa,
    p: &AttnParams,
    q: &[i16],
    k_cache: &[i16],
    v_cache: &[i16],
    len: usize,
    heads: Range<usize>,
    scores: &mut [i64],
    weights: &mut [u32],
    out: &mut [i32],
) -> Result<(), KernelError> {
    p.validate()?;
    check_range("attention length", len as i64, 1, MAX_LEN as i64)?;
    let hd = p.head_dim;
    let kv_dim = p.n_kv_heads * hd;
    check_len("q", p.n_heads * hd, q.len())?;
    if heads.start > heads.end || heads.end > p.n_heads {
        return Err(KernelError::Param {
            what: "head range end",
            value: heads.end as i64,
            min: heads.start as i64,
            max: p.n_heads as i64,
        });
    }
    check_len("attention output", heads.len() * hd, out.len())?;
    for (what, c) in [("k cache", k_cache), ("v cache", v_cache)] {
        if c.len() < len * kv_dim {
            return Err(KernelError::Length {
                what,
                expected: len * kv_dim,
                got: c.len(),
            });
        }
    }
    if scores.len() < len {
        return Err(KernelError::Length {
            what: "scores scratch",
            expected: len,
            got: scores.len(),
        });
    }
    if weights.len() < len {
        return Err(KernelError::Length {
            what: "weights scratch",
            expected: len,
            got: weights.len(),
        });
    }
    let isa = if isa == Isa::Avx512Vnni && Isa::detect() != Isa::Avx512Vnni {
        Isa::Scalar
    } else {
        isa
    };
    let simd = cfg!(target_arch = "x86_64") && isa == Isa::Avx512Vnni && hd % 32 == 0 && hd <= 256;
    let group = p.n_heads / p.n_kv_heads;
    let score_frac = p.q_frac + p.k_frac + p.score_shift();
    let out_shift = 15 + p.v_frac as i32 - p.out_frac as i32;
    for (hi, h) in heads.enumerate() {
        let kh = h / group;
        let qh = &q[h * hd..(h + 1) * hd];
        let k0 = &k_cache[kh * hd..];
        let v0 = &v_cache[kh * hd..];
        let o = &mut out[hi * hd..(hi + 1) * hd];
        if simd {
            #[cfg(target_arch = "x86_64")]
            avx512::scores(qh, k0, kv_dim, len, &mut scores[..len]);
        } else {
            for (j, s) in scores[..len].iter_mut().enumerate() {
                *s = qh
                    .iter()
                    .zip(&k0[j * kv_dim..j * kv_dim + hd])
                    .map(|(&a, &b)| a as i64 * b as i64)
                    .sum();
            }
        }
        // the softmax of SPEC §7.2, weights stored instead of recomputed
        let mx = scores[..len].iter().copied().max().unwrap_or(0);
        let mut sum = 0u64;
        for (w, &s) in weights[..len].iter_mut().zip(&scores[..len]) {
            let e = exp_weight((mx as i128 - s as i128).min(1 << 40) as i64, score_frac);
            *w = e as u32;
            sum += e;
        }
        let r = (1u64 << 62) / sum;
        for w in weights[..len].iter_mut() {
            *w = round_shift((*w as u64 * r) as i64, 47) as u32;
        }
        if simd {
            #[cfg(target_arch = "x86_64")]
            avx512::weighted_sum(&weights[..len], v0, kv_dim, hd, o, out_shift);
        } else {
            for (d, od) in o.iter_mut().enumerate() {
                let mut acc: i32 = 0;
                for (j, &pj) in weights[..len].iter().enumerate() {
                    acc += pj as i32 * v0[j * kv_dim + d] as i32;
                }
                *od = sat_i32(shift_round_sat(acc as i64, out_shift));
            }
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use core::arch::x86_64::*;

    use super::{Prepared, PANEL, RECORD};
    use crate::round::{sat_i32, shift_round_sat};
    use crate::TOKENS_PER_PASS;

    /// One panel, all groups, `nt <= 8` tokens.
    pub(super) fn panel(
        rec: &[u8],
        x: &[Prepared],
        nt: usize,
        groups: usize,
        acc: &mut [[i64; PANEL]; TOKENS_PER_PASS],
    ) {
        assert!(rec.len() >= groups * RECORD && x.len() >= nt * groups && nt <= TOKENS_PER_PASS);
        // SAFETY: the caller (`linear_fast`) only selects this backend when
        // `Isa::detect()` reports AVX-512 F, BW and VNNI; the slice lengths
        // the kernel reads are asserted above.
        unsafe { panel_impl(rec, x, nt, groups, acc) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panel_impl(
        rec: &[u8],
        x: &[Prepared],
        nt: usize,
        groups: usize,
        acc: &mut [[i64; PANEL]; TOKENS_PER_PASS],
    ) {
        let zero = _mm512_setzero_si512();
        let mut lo_acc = [zero; TOKENS_PER_PASS];
        let mut hi_acc = [zero; TOKENS_PER_PASS];
        let nib = _mm512_set1_epi8(15);
        let bit5 = _mm512_set1_epi8(16);
        let one = _mm512_set1_epi32(1);
        for g in 0..groups {
            let r = rec.as_ptr().add(g * RECORD);
            // SAFETY (all loads): `r` points at a full 96-byte record inside `rec`.
            let nibbles = _mm512_loadu_si512(r as *const __m512i);
            let k0 = core::ptr::read_unaligned(r.add(64) as *const u64);
            let k1 = core::ptr::read_unaligned(r.add(72) as *const u64);
            let c0 = _mm512_and_si512(nibbles, nib);
            let c1 = _mm512_and_si512(_mm512_srli_epi16(nibbles, 4), nib);
            let c0 = _mm512_mask_add_epi8(c0, k0, c0, bit5);
            let c1 = _mm512_mask_add_epi8(c1, k1, c1, bit5);
            let scale = _mm512_add_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128(r.add(80) as *const __m128i)),
                one,
            );
            for t in 0..nt {
                let xp = x.get_unchecked(t * groups + g);
                let raw = _mm512_dpbusd_epi32(zero, c0, _mm512_set1_epi32(xp.lo as i32));
                let raw = _mm512_dpbusd_epi32(raw, c1, _mm512_set1_epi32(xp.hi as i32));
                let p = _mm512_sub_epi32(raw, _mm512_set1_epi32(xp.msum16));
                // |p| <= 2^14, scale <= 256: the product fits i32 exactly
                let ps = _mm512_mullo_epi32(p, scale);
                // widen in-lane: 64-bit lane k holds rows 2k (low half) and 2k+1
                // (high half); arithmetic shifts sign-extend each (no cross-lane ops)
                let cnt = _mm512_set1_epi64(xp.e as i64);
                let even =
                    _mm512_sllv_epi64(_mm512_srai_epi64::<32>(_mm512_slli_epi64::<32>(ps)), cnt);
                let odd = _mm512_sllv_epi64(_mm512_srai_epi64::<32>(ps), cnt);
                lo_acc[t] = _mm512_add_epi64(lo_acc[t], even);
                hi_acc[t] = _mm512_add_epi64(hi_acc[t], odd);
            }
        }
        for t in 0..nt {
            let mut even = [0i64; 8];
            let mut odd = [0i64; 8];
            _mm512_storeu_si512(even.as_mut_ptr() as *mut __m512i, lo_acc[t]);
            _mm512_storeu_si512(odd.as_mut_ptr() as *mut __m512i, hi_acc[t]);
            for k in 0..8 {
                acc[t][2 * k] = even[k];
                acc[t][2 * k + 1] = odd[k];
            }
        }
    }

    /// `scores[j] = sum_d q[d] * k[j * stride + d]` for `hd = q.len()`, a
    /// multiple of 32 (SPEC §7.5).
    pub(super) fn scores(q: &[i16], k: &[i16], stride: usize, len: usize, scores: &mut [i64]) {
        let hd = q.len();
        assert!(
            hd % 32 == 0 && scores.len() >= len && (len == 0 || k.len() >= (len - 1) * stride + hd)
        );
        // SAFETY: only called when `Isa::detect()` reported AVX-512 (F, BW);
        // every load below reads `hd` values at `j * stride`, inside `k` by the
        // assertion, and `hd` values of `q`.
        unsafe { scores_impl(q, k, stride, len, scores) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn scores_impl(q: &[i16], k: &[i16], stride: usize, len: usize, scores: &mut [i64]) {
        let hd = q.len();
        let one = _mm512_set1_epi32(1);
        for (j, s) in scores[..len].iter_mut().enumerate() {
            let kj = k.as_ptr().add(j * stride);
            let mut acc = _mm512_setzero_si512();
            for c in (0..hd).step_by(32) {
                let qv = _mm512_loadu_si512(q.as_ptr().add(c) as *const __m512i);
                let kv = _mm512_loadu_si512(kj.add(c) as *const __m512i);
                // pair sums in (-2^31, 2^31]; +2^31 wraps to i32::MIN: x - 1 (wrapping) is exact
                let m = _mm512_sub_epi32(_mm512_madd_epi16(qv, kv), one);
                acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(m)));
                acc = _mm512_add_epi64(
                    acc,
                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(m)),
                );
            }
            // add back the 1 subtracted from each of the hd/2 pair sums
            *s = _mm512_reduce_add_epi64(acc) + (hd / 2) as i64;
        }
    }

    /// `o[d] = sat_i32(shift_round_sat(sum_j p_j * v[j * stride + d], shift))`,
    /// `hd = o.len()` a multiple of 16, the sum exact in `i32` (SPEC §7.5).
    pub(super) fn weighted_sum(
        p: &[u32],
        v: &[i16],
        stride: usize,
        hd: usize,
        o: &mut [i32],
        shift: i32,
    ) {
        let len = p.len();
        assert!(
            hd % 16 == 0
                && hd <= 256
                && o.len() == hd
                && (len == 0 || v.len() >= (len - 1) * stride + hd)
        );
        // SAFETY: only called when `Isa::detect()` reported AVX-512 (F, BW);
        // loads read `hd` values at `j * stride`, inside `v` by the assertion.
        unsafe { weighted_sum_impl(p, v, stride, hd, o, shift) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn weighted_sum_impl(
        p: &[u32],
        v: &[i16],
        stride: usize,
        hd: usize,
        o: &mut [i32],
        shift: i32,
    ) {
        let mut acc = [_mm512_setzero_si512(); 16];
        let nc = hd / 16;
        for (j, &pj) in p.iter().enumerate() {
            let pv = _mm512_set1_epi32(pj as i32);
            let vj = v.as_ptr().add(j * stride);
            for c in 0..nc {
                let vv =
                    _mm512_cvtepi16_epi32(_mm256_loadu_si256(vj.add(16 * c) as *const __m256i));
                acc[c] = _mm512_add_epi32(acc[c], _mm512_mullo_epi32(vv, pv));
            }
        }
        let mut tmp = [0i32; 16];
        for c in 0..nc {
            _mm512_storeu_si512(tmp.as_mut_ptr() as *mut __m512i, acc[c]);
            for (i, &t) in tmp.iter().enumerate() {
                o[16 * c + i] = sat_i32(shift_round_sat(t as i64, shift));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfp::quantize_bfp;
    use crate::format::{pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix};
    use crate::linear::linear;
    use std::vec;
    use std::vec::Vec;

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
    }

    fn random_matrix(
        rng: &mut Lcg,
        rows: usize,
        cols: usize,
        extreme: bool,
    ) -> (Vec<u8>, Vec<u8>, Vec<i8>) {
        let mut codes = vec![0u8; packed_codes_len(rows, cols)];
        let mut exps = vec![0u8; packed_exps_len(rows, cols)];
        let mut rexp = vec![0i8; rows];
        for r in 0..rows {
            rexp[r] = -((rng.next() % 24) as i8);
            for g in 0..cols / 8 {
                let grp = match (extreme, rng.next() % 4) {
                    (true, 0) => ApotGroup {
                        codes: [-16; 8],
                        s1: 7,
                        s2: 7,
                    },
                    (true, 1) => ApotGroup {
                        codes: [15; 8],
                        s1: 7,
                        s2: 7,
                    },
                    (_, 2) => ApotGroup::default(),
                    _ => ApotGroup {
                        codes: core::array::from_fn(|_| (rng.next() % 32) as i8 - 16),
                        s1: (rng.next() % 8) as u8,
                        s2: (rng.next() % 8) as u8,
                    },
                };
                pack_group(&mut codes, &mut exps, r * (cols / 8) + g, &grp).unwrap();
            }
        }
        (codes, exps, rexp)
    }

    /// Every backend equals the scalar reference on random and extreme
    /// weights and activations, any token count, any panel split, rows not a
    /// multiple of 16.
    #[test]
    fn fast_equals_reference() {
        let mut rng = Lcg(42);
        let isas = [Isa::Scalar, Isa::detect()];
        for case in 0..60 {
            let rows = [16usize, 37, 64, 130, 5][case % 5];
            let cols = [8usize, 64, 896, 256, 24, 40][case % 6];
            let extreme = case % 3 == 0;
            let (c, e, r) = random_matrix(&mut rng, rows, cols, extreme);
            let m = ApotMatrix::new(rows, cols, &c, &e, &r).unwrap();
            let mut data = vec![0u8; repacked_len(rows, cols)];
            let mut rexp = vec![0i8; rows];
            repack(&m, &mut data, &mut rexp).unwrap();
            let fast = Repacked::new(rows, cols, &data, &rexp).unwrap();
            let tokens = 1 + case % 11;
            let xs: Vec<i32> = (0..tokens * cols)
                .map(|_| match (extreme, rng.next() % 6) {
                    (true, 0) => i32::MAX,
                    (true, 1) => i32::MIN,
                    (true, 2) => 0,
                    _ => (rng.next() % (1 << 24)) as i32 - (1 << 23),
                })
                .collect();
            let mut blocks = vec![BfpBlock::default(); tokens * cols / 8];
            quantize_bfp(&xs, &mut blocks).unwrap();
            let mut prep = vec![Prepared::default(); blocks.len()];
            prepare(&blocks, &mut prep).unwrap();
            let bias: Vec<i32> = (0..rows)
                .map(|_| (rng.next() % 100000) as i32 - 50000)
                .collect();
            let out_frac = (rng.next() % 20) as i32;
            let mut want = vec![0i32; tokens * rows];
            linear(&m, &blocks, Some(&bias), out_frac, &mut want).unwrap();
            for isa in isas {
                let mut got = vec![0i32; tokens * rows];
                linear_fast(
                    isa,
                    &fast,
                    &prep,
                    Some(&bias),
                    out_frac,
                    0..fast.panels(),
                    &mut got,
                )
                .unwrap();
                assert_eq!(got, want, "case {case} {isa:?}");
                // split over panels
                if fast.panels() > 1 {
                    let s = fast.panels() / 2;
                    let n0 = (s * 16).min(rows);
                    let mut a = vec![0i32; tokens * n0];
                    let mut b = vec![0i32; tokens * (rows - n0)];
                    linear_fast(isa, &fast, &prep, Some(&bias), out_frac, 0..s, &mut a).unwrap();
                    linear_fast(
                        isa,
                        &fast,
                        &prep,
                        Some(&bias),
                        out_frac,
                        s..fast.panels(),
                        &mut b,
                    )
                    .unwrap();
                    for t in 0..tokens {
                        assert_eq!(&a[t * n0..(t + 1) * n0], &want[t * rows..t * rows + n0]);
                        assert_eq!(
                            &b[t * (rows - n0)..(t + 1) * (rows - n0)],
                            &want[t * rows + n0..(t + 1) * rows]
                        );
                    }
                }
            }
        }
    }

    /// Fast attention equals the reference on random, extreme (all -32768,
    /// all 32767) and long inputs, for GQA and head dims with and without SIMD.
    #[test]
    fn attention_fast_equals_reference() {
        use crate::attention::attention;
        let mut rng = Lcg(7);
        for case in 0..80 {
            let (nh, nkv, hd) = [(14, 2, 64), (4, 2, 16), (2, 1, 256), (4, 4, 64)][case % 4];
            let p = AttnParams {
                n_heads: nh,
                n_kv_heads: nkv,
                head_dim: hd,
                q_frac: (rng.next() % 16) as u32,
                k_frac: (rng.next() % 16) as u32,
                v_frac: (rng.next() % 16) as u32,
                out_frac: (rng.next() % 31) as u32,
            };
            let len = [1usize, 2, 17, 192, 1024, 3000][case % 6];
            let kvd = nkv * hd;
            let gen = |rng: &mut Lcg, n: usize| -> Vec<i16> {
                (0..n)
                    .map(|_| match case % 5 {
                        0 => i16::MIN,
                        1 => {
                            if rng.next() % 2 == 0 {
                                i16::MIN
                            } else {
                                i16::MAX
                            }
                        }
                        2 => (rng.next() % 64) as i16 - 32,
                        _ => (rng.next() % 65536) as u16 as i16,
                    })
                    .collect()
            };
            let q = gen(&mut rng, nh * hd);
            let k = gen(&mut rng, len * kvd);
            let v = gen(&mut rng, len * kvd);
            let mut s = vec![0i64; len];
            let mut pr = vec![0u16; len];
            let mut want = vec![0i32; nh * hd];
            attention(&p, &q, &k, &v, len, &mut s, &mut pr, &mut want).unwrap();
            for isa in [Isa::Scalar, Isa::detect()] {
                let mut w = vec![0u32; len];
                let mut got = vec![0i32; nh * hd];
                attention_fast(isa, &p, &q, &k, &v, len, 0..nh, &mut s, &mut w, &mut got).unwrap();
                assert_eq!(got, want, "case {case} {isa:?}");
                // a sub-range of heads
                let h0 = nh / 2;
                let mut part = vec![0i32; (nh - h0) * hd];
                attention_fast(isa, &p, &q, &k, &v, len, h0..nh, &mut s, &mut w, &mut part)
                    .unwrap();
                assert_eq!(part, want[h0 * hd..]);
            }
        }
    }

    #[test]
    fn repacked_bits_per_weight_and_errors() {
        assert_eq!(repacked_len(896, 896) * 8, 896 * 896 * 6);
        assert!(Repacked::new(16, 8, &[0; 95], &[0; 16]).is_err());
        let data = [0u8; 96];
        let w = Repacked::new(16, 8, &data, &[0; 16]).unwrap();
        let x = [Prepared::default()];
        let mut out = [0i32; 16];
        assert!(linear_fast(Isa::Scalar, &w, &x, None, 12, 0..2, &mut out).is_err());
        assert!(linear_fast(Isa::Scalar, &w, &x, None, 12, 0..1, &mut out[..15]).is_err());
        assert!(linear_fast(
            Isa::Scalar,
            &w,
            &[Prepared { e: 16, ..x[0] }],
            None,
            12,
            0..1,
            &mut out
        )
        .is_err());
        assert!(linear_fast(Isa::Scalar, &w, &x, None, 12, 0..1, &mut out).is_ok());
    }
}

//! The CPU fast path (SPEC §4.4, §7.5): the linear layer on a repacked,
//! SIMD-friendly weight layout and attention with SIMD dot products, both
//! bit-identical to the scalar reference ([`crate::linear::linear`],
//! [`crate::attention::attention`]).
//!
//! * [`layout`]: the repacked records (6 bits per weight) and [`repack`];
//! * [`plan`]: activations prepared for the kernels and the plan that keeps
//!   the accumulation in 32-bit lanes;
//! * `scalar`, `avx512`: the backends, chosen by [`Isa`] — one place decides
//!   what the CPU runs ([`Isa::detect`], [`Isa::supported`]); every SIMD entry
//!   point checks the features itself and reports `false` when absent.
//!
//! The arithmetic is SPEC §4.1's, evaluated exactly in integers; only the
//! order of exact additions differs, so every backend gives the reference's
//! bits (tests in `tests.rs`, and `model/tests/decoder.rs` end to end).

use core::ops::Range;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::attention::{check_attention, check_scratch, softmax_q15_stored, AttnParams};
use crate::error::{check_len, check_range};
use crate::linear::{rescale, OUT_FRAC_MAX, OUT_FRAC_MIN};
use crate::round::{sat_i32, shift_round_sat};
use crate::KernelError;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod layout;
pub mod plan;
mod scalar;
#[cfg(test)]
mod tests;

pub use layout::{pairs, repack, repack_panels, repacked_len, Repacked, PANEL, RECORD};
pub use plan::{plan_len, prepare, prepared_len, PairAct, Prepared, TOKEN_BLOCK};

/// Which implementation the fast kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable scalar code (every CPU).
    Scalar,
    /// AVX2 (x86_64 without AVX-512): `vpmaddubsw`/`vpmaddwd` dot products.
    Avx2,
    /// AVX2 with AVX-VNNI (256-bit `vpdpbusd`/`vpdpwssd`).
    Avx2Vnni,
    /// AVX-512 F + BW + VNNI (x86_64).
    Avx512Vnni,
}

// AVX2 and AVX-512 F/BW, including the OS's support for the ymm/zmm state
// (XGETBV), come from `cpufeatures`; it has no VNNI flags, read from CPUID
// leaf 7 below.
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx2_cpu, "avx2");
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx512bw_cpu, "avx512f", "avx512bw");

#[cfg(target_arch = "x86_64")]
fn cpuid7(sub: u32) -> Option<core::arch::x86_64::CpuidResult> {
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    (max_leaf >= 7).then(|| core::arch::x86_64::__cpuid_count(7, sub))
}

/// CPUID leaf 7, sub-leaf 0, ECX bit 11: AVX512_VNNI.
#[cfg(target_arch = "x86_64")]
fn has_avx512_vnni() -> bool {
    cpuid7(0).is_some_and(|r| (r.ecx >> 11) & 1 == 1)
}

/// CPUID leaf 7, sub-leaf 1, EAX bit 4: AVX-VNNI (VEX-encoded).
#[cfg(target_arch = "x86_64")]
fn has_avx_vnni() -> bool {
    cpuid7(1).is_some_and(|r| (r.eax >> 4) & 1 == 1)
}

/// Bit `i` set: `Isa::ALL[i]` is supported; bit 7: detection done.
static DETECTED: AtomicU8 = AtomicU8::new(0);

impl Isa {
    /// Every implementation, portable first, best last.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx2Vnni, Isa::Avx512Vnni];

    /// Its name as the `--isa` option and `EDGEDECODING_ISA` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx2Vnni => "avx2vnni",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// The implementation named `s` ([`Isa::name`]).
    pub fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == s)
    }

    fn mask() -> u8 {
        let m = DETECTED.load(Ordering::Relaxed);
        if m & 0x80 != 0 {
            return m;
        }
        #[allow(unused_mut)]
        let mut m = 0x80 | 1;
        #[cfg(target_arch = "x86_64")]
        {
            if avx2_cpu::get() {
                m |= 2;
                if has_avx_vnni() {
                    m |= 4;
                }
            }
            if avx512bw_cpu::get() && has_avx512_vnni() {
                m |= 8;
            }
        }
        DETECTED.store(m, Ordering::Relaxed);
        m
    }

    /// Whether this CPU can run `self` (detected once, then cached).
    pub fn supported(self) -> bool {
        let i = Isa::ALL.iter().position(|&i| i == self).unwrap_or(0);
        Isa::mask() >> i & 1 == 1
    }

    /// The best implementation this CPU supports.
    pub fn detect() -> Self {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.supported())
            .unwrap_or(Isa::Scalar)
    }

    /// `self` if supported, else [`Isa::Scalar`].
    pub fn or_scalar(self) -> Self {
        if self.supported() {
            self
        } else {
            Isa::Scalar
        }
    }
}

/// `out = linear(w, x)` for the panels `panels` (SPEC §4.4), identical to
/// [`crate::linear::linear_rows`] over rows `16*panels.start ..
/// min(16*panels.end, rows)`.
///
/// * `x`: the inputs of `T` tokens, [`prepare`]d for `w.cols()` columns;
/// * `bias`: `rows` values or `None`;
/// * `out`: `T * n` values, token-major, `n` = rows in the panel range.
///
/// An `isa` the CPU lacks runs the portable code.
pub fn linear_fast(
    isa: Isa,
    w: &Repacked<'_>,
    x: &Prepared<'_>,
    bias: Option<&[i32]>,
    out_frac: u32,
    panels: Range<usize>,
    out: &mut [i32],
) -> Result<(), KernelError> {
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
    check_len("prepared pairs", pairs(w.cols()), x.pairs)?;
    let tokens = x.tokens;
    let r0 = panels.start * PANEL;
    let r1 = (panels.end * PANEL).min(w.rows());
    let n = r1.saturating_sub(r0);
    check_len("output", tokens * n, out.len())?;
    if let Some(b) = bias {
        check_len("bias", w.rows(), b.len())?;
    }
    for p in panels {
        let recs = w.panel(p);
        for b in 0..tokens.div_ceil(TOKEN_BLOCK) {
            let (acts, flags, nt) = x.block(b);
            let mut acc = [[0i64; PANEL]; TOKEN_BLOCK];
            #[cfg(target_arch = "x86_64")]
            let done = match isa {
                Isa::Scalar => false,
                Isa::Avx2 => avx2::panel(false, recs, acts, flags, nt, &mut acc),
                Isa::Avx2Vnni => avx2::panel(true, recs, acts, flags, nt, &mut acc),
                Isa::Avx512Vnni => avx512::panel(recs, acts, flags, nt, &mut acc),
            };
            #[cfg(not(target_arch = "x86_64"))]
            let done = false;
            if !done {
                scalar::panel(recs, acts, flags, nt, &mut acc);
            }
            for lane in 0..PANEL {
                let r = p * PANEL + lane;
                if r >= w.rows() {
                    break;
                }
                let bi = bias.map_or(0, |b| b[r]);
                for (t, a) in acc.iter().enumerate().take(nt) {
                    out[(b * TOKEN_BLOCK + t) * n + (r - r0)] =
                        rescale(a[lane], w.row_exps[r], out_frac, bi);
                }
            }
        }
    }
    Ok(())
}

/// Scratch of [`attention_fast`] for contexts up to `len` positions:
/// `(scores i64, weights u32, probs u16)` element counts.
pub const fn attention_scratch(len: usize) -> (usize, usize, usize) {
    (len, len, len)
}

/// [`crate::attention::attention`] for query heads `heads` only, with SIMD
/// dot products (SPEC §7.5): identical outputs.
///
/// * `scores`, `weights`, `probs`: scratch of at least `len` values each;
/// * `out`: `heads.len() * head_dim` values.
///
/// Exactness of the shortcuts: a pair sum `a*b + c*d` of `i16` lies in
/// `(-2^31, 2^31]`; its only value outside `i32` is `+2^31` (all four
/// `-32768`), which wraps to `i32::MIN`, a value no pair can produce, so
/// subtracting 1 (wrapping) before widening and adding it back is exact. The
/// weighted sum fits `i32`: `sum p_j <= 2^15 + (len + 1) / 2 <= 2^16` and
/// `|v| <= 2^15`, and only `-2^31` reaches the bound.
#[allow(clippy::too_many_arguments)]
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
    probs: &mut [u16],
    out: &mut [i32],
) -> Result<(), KernelError> {
    if heads.start > heads.end || heads.end > p.n_heads {
        return Err(KernelError::Param {
            what: "head range end",
            value: heads.end as i64,
            min: heads.start as i64,
            max: p.n_heads as i64,
        });
    }
    let hd = p.head_dim;
    let kv_dim = p.n_kv_heads * hd;
    check_attention(p, q, k_cache, v_cache, len, heads.len() * hd, out.len())?;
    check_scratch(
        len,
        &[
            ("scores scratch", scores.len()),
            ("weights scratch", weights.len()),
            ("probs scratch", probs.len()),
        ],
    )?;
    let simd = isa == Isa::Avx512Vnni && hd % 32 == 0 && hd <= 256;
    let group = p.n_heads / p.n_kv_heads;
    let score_frac = p.q_frac + p.k_frac + p.score_shift();
    let out_shift = 15 + p.v_frac as i32 - p.out_frac as i32;
    for (hi, h) in heads.enumerate() {
        let kh = h / group;
        let qh = &q[h * hd..(h + 1) * hd];
        let k0 = &k_cache[kh * hd..];
        let v0 = &v_cache[kh * hd..];
        let o = &mut out[hi * hd..(hi + 1) * hd];
        #[cfg(target_arch = "x86_64")]
        let done = simd && avx512::scores(qh, k0, kv_dim, len, &mut scores[..len]);
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        if !done {
            for (j, s) in scores[..len].iter_mut().enumerate() {
                *s = qh
                    .iter()
                    .zip(&k0[j * kv_dim..j * kv_dim + hd])
                    .map(|(&a, &b)| a as i64 * b as i64)
                    .sum();
            }
        }
        softmax_q15_stored(&scores[..len], score_frac, weights, &mut probs[..len])?;
        #[cfg(target_arch = "x86_64")]
        let done = simd && avx512::weighted_sum(&probs[..len], v0, kv_dim, o, out_shift);
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        if !done {
            for (d, od) in o.iter_mut().enumerate() {
                let mut acc: i32 = 0;
                for (j, &pj) in probs[..len].iter().enumerate() {
                    acc += pj as i32 * v0[j * kv_dim + d] as i32;
                }
                *od = sat_i32(shift_round_sat(acc as i64, out_shift));
            }
        }
    }
    Ok(())
}

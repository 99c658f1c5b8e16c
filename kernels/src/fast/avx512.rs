//! AVX-512 (F, BW, VNNI) kernels: the linear panel (SPEC §4.4) and the
//! attention dot products (SPEC §7.5). Every entry point checks the CPU
//! features itself before calling `#[target_feature]` code.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::fast::layout::{MASKS, PANEL, RECORD, SCALES};
use crate::fast::plan::{PairAct, FLUSH, SPLIT, TOKEN_BLOCK};
use crate::fast::Isa;
use crate::round::{sat_i32, shift_round_sat};

/// One panel (`recs`: its `flags.len()` records), `nt <= 8` tokens of one
/// block; `false` (nothing done) if the CPU lacks AVX-512 VNNI.
pub(crate) fn panel(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    nt: usize,
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) -> bool {
    let np = flags.len();
    if !Isa::Avx512Vnni.supported() {
        return false;
    }
    assert!(recs.len() >= np * RECORD && acts.len() >= nt * np && nt <= TOKEN_BLOCK);
    // SAFETY: the CPU supports AVX-512 F, BW and VNNI (checked above); every
    // load reads inside `recs` (np records) or `acts` (nt * np entries), as
    // asserted; `acc` is written through safe indexing.
    unsafe {
        match nt {
            1 => panel_impl::<1>(recs, acts, flags, acc),
            2 => panel_impl::<2>(recs, acts, flags, acc),
            3 => panel_impl::<3>(recs, acts, flags, acc),
            4 => panel_impl::<4>(recs, acts, flags, acc),
            5 => panel_impl::<5>(recs, acts, flags, acc),
            6 => panel_impl::<6>(recs, acts, flags, acc),
            7 => panel_impl::<7>(recs, acts, flags, acc),
            _ => panel_impl::<8>(recs, acts, flags, acc),
        }
    }
    true
}

#[inline(always)]
unsafe fn codes(r: *const u8, h: usize) -> (__m512i, __m512i) {
    let nib = _mm512_set1_epi8(15);
    let bit5 = _mm512_set1_epi8(16);
    let n = _mm512_loadu_si512(r.add(64 * h) as *const __m512i);
    let k0 = core::ptr::read_unaligned(r.add(MASKS + 16 * h) as *const u64);
    let k1 = core::ptr::read_unaligned(r.add(MASKS + 16 * h + 8) as *const u64);
    let c0 = _mm512_and_si512(n, nib);
    let c1 = _mm512_and_si512(_mm512_srli_epi16::<4>(n), nib);
    (
        _mm512_mask_add_epi8(c0, k0, c0, bit5),
        _mm512_mask_add_epi8(c1, k1, c1, bit5),
    )
}

/// `p = Σ m·(q+16) − 16·Σ m` per lane: the correction is the accumulator's start.
#[inline(always)]
unsafe fn dot(c: (__m512i, __m512i), lo: u32, hi: u32, nmsum16: i32) -> __m512i {
    let p = _mm512_dpbusd_epi32(
        _mm512_set1_epi32(nmsum16),
        c.0,
        _mm512_set1_epi32(lo as i32),
    );
    _mm512_dpbusd_epi32(p, c.1, _mm512_set1_epi32(hi as i32))
}

/// Adds the 16 `i64` values `(v as i64) << s` of an `i32` vector to `lo`/`hi` (lanes 0..8, 8..16).
#[inline(always)]
unsafe fn widen_add(v: __m512i, s: u32, lo: &mut __m512i, hi: &mut __m512i) {
    let cnt = _mm_cvtsi32_si128(s as i32);
    let a = _mm512_sll_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)), cnt);
    let b = _mm512_sll_epi64(
        _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(v)),
        cnt,
    );
    *lo = _mm512_add_epi64(*lo, a);
    *hi = _mm512_add_epi64(*hi, b);
}

/// Software prefetch distance in the record stream (measured on the 2-vCPU
/// Xeon: the hardware prefetcher alone left decode at ~60 % of the read
/// bandwidth).
const PREFETCH: usize = 8 * RECORD;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn panel_impl<const NT: usize>(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) {
    let np = flags.len();
    let zero = _mm512_setzero_si512();
    let mut a32 = [zero; NT];
    let mut a64lo = [zero; NT];
    let mut a64hi = [zero; NT];
    let one16 = _mm512_set1_epi16(1);
    for (j, &f) in flags.iter().enumerate() {
        let r = recs.as_ptr().add(j * RECORD);
        // the weights are streamed once per token block: ask for the records
        // PREFETCH bytes ahead (a hint; addresses past the end are not read)
        let ahead = r.wrapping_add(PREFETCH) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(ahead);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(128));
        let ca = codes(r, 0);
        let cb = codes(r, 1);
        // i16 lanes 2l, 2l+1: scale of groups a, b for row l, in [2, 256]
        let sc = _mm512_add_epi16(
            _mm512_cvtepu8_epi16(_mm256_loadu_si256(r.add(SCALES) as *const __m256i)),
            one16,
        );
        if f & SPLIT == 0 {
            for t in 0..NT {
                let x = &*acts.as_ptr().add(t * np + j);
                let pa = dot(ca, x.lo[0], x.hi[0], x.nmsum16[0]);
                let pb = dot(cb, x.lo[1], x.hi[1], x.nmsum16[1]);
                // |p| <= 2^14: i16 pairs (p_a, p_b) per row
                let pk = _mm512_mask_blend_epi16(0xAAAA_AAAA, pa, _mm512_slli_epi32::<16>(pb));
                // scale << d <= 2^14 (d <= 6)
                let s = _mm512_sllv_epi16(sc, _mm512_set1_epi32(x.shift as i32));
                a32[t] = _mm512_dpwssd_epi32(a32[t], pk, s);
            }
            if f & FLUSH != 0 {
                for t in 0..NT {
                    let x = &*acts.as_ptr().add(t * np + j);
                    widen_add(a32[t], x.base, &mut a64lo[t], &mut a64hi[t]);
                    a32[t] = zero;
                }
            }
        } else {
            let mask16 = _mm512_set1_epi32(0xffff);
            let sa = _mm512_and_si512(sc, mask16);
            let sb = _mm512_srli_epi32::<16>(sc);
            for t in 0..NT {
                let x = &*acts.as_ptr().add(t * np + j);
                // |p · scale| <= 2^22 fits i32; the shifted term is summed in i64
                let ta = _mm512_mullo_epi32(dot(ca, x.lo[0], x.hi[0], x.nmsum16[0]), sa);
                let tb = _mm512_mullo_epi32(dot(cb, x.lo[1], x.hi[1], x.nmsum16[1]), sb);
                widen_add(ta, x.shift & 0xffff, &mut a64lo[t], &mut a64hi[t]);
                widen_add(tb, x.shift >> 16, &mut a64lo[t], &mut a64hi[t]);
            }
        }
    }
    for t in 0..NT {
        let mut v = [0i64; PANEL];
        _mm512_storeu_si512(v.as_mut_ptr() as *mut __m512i, a64lo[t]);
        _mm512_storeu_si512(v.as_mut_ptr().add(8) as *mut __m512i, a64hi[t]);
        acc[t] = v;
    }
}

/// `scores[j] = Σ_d q[d] · k[j·stride + d]` for `hd = q.len()`, a multiple of
/// 32 (SPEC §7.5); `false` (nothing done) without AVX-512 BW.
pub(crate) fn scores(q: &[i16], k: &[i16], stride: usize, len: usize, scores: &mut [i64]) -> bool {
    let hd = q.len();
    if !Isa::Avx512Vnni.supported() {
        return false;
    }
    assert!(
        hd % 32 == 0 && scores.len() >= len && (len == 0 || k.len() >= (len - 1) * stride + hd)
    );
    // SAFETY: AVX-512 F and BW are present (checked above); every load reads
    // `hd` values at `j * stride`, inside `k` by the assertion, and `hd` of `q`.
    unsafe { scores_impl(q, k, stride, len, scores) };
    true
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

/// `o[d] = sat_i32(shift_round_sat(Σ_j p_j · v[j·stride + d], shift))`,
/// `hd = o.len()` a multiple of 16 and at most 256, the sum exact in `i32`
/// (SPEC §7.5); `false` (nothing done) without AVX-512 F.
pub(crate) fn weighted_sum(p: &[u16], v: &[i16], stride: usize, o: &mut [i32], shift: i32) -> bool {
    let (len, hd) = (p.len(), o.len());
    if !Isa::Avx512Vnni.supported() {
        return false;
    }
    assert!(hd % 16 == 0 && hd <= 256 && (len == 0 || v.len() >= (len - 1) * stride + hd));
    // SAFETY: AVX-512 F and BW are present (checked above); loads read `hd`
    // values at `j * stride`, inside `v` by the assertion.
    unsafe { weighted_sum_impl(p, v, stride, o, shift) };
    true
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn weighted_sum_impl(p: &[u16], v: &[i16], stride: usize, o: &mut [i32], shift: i32) {
    let hd = o.len();
    let mut acc = [_mm512_setzero_si512(); 16];
    let nc = hd / 16;
    for (j, &pj) in p.iter().enumerate() {
        let pv = _mm512_set1_epi32(pj as i32);
        let vj = v.as_ptr().add(j * stride);
        for (c, a) in acc.iter_mut().enumerate().take(nc) {
            let vv = _mm512_cvtepi16_epi32(_mm256_loadu_si256(vj.add(16 * c) as *const __m256i));
            *a = _mm512_add_epi32(*a, _mm512_mullo_epi32(vv, pv));
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

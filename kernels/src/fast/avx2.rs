//! AVX2 kernels for CPUs without AVX-512: the linear panel of SPEC §4.4 in
//! 256-bit lanes (rows 0–7 and 8–15 of a panel in two passes), with the
//! AVX-VNNI dot products when the CPU has them (`Isa::Avx2Vnni`) or
//! `vpmaddubsw`/`vpmaddwd` otherwise (`Isa::Avx2`). Same plan, same exact
//! integer sums as the other backends. Every entry point checks the CPU
//! features itself.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::fast::layout::{MASKS, PANEL, RECORD, SCALES};
use crate::fast::plan::{PairAct, FLUSH, SPLIT, TOKEN_BLOCK};
use crate::fast::Isa;

/// One panel (`recs`: its `flags.len()` records), `nt <= 8` tokens of one
/// block; `false` (nothing done) if the CPU lacks what `vnni` asks for.
pub(crate) fn panel(
    vnni: bool,
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    nt: usize,
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) -> bool {
    let np = flags.len();
    let isa = if vnni { Isa::Avx2Vnni } else { Isa::Avx2 };
    if !isa.supported() {
        return false;
    }
    assert!(recs.len() >= np * RECORD && acts.len() >= nt * np && nt <= TOKEN_BLOCK);
    macro_rules! go {
        ($nt:literal) => {
            // SAFETY: the CPU supports AVX2 (and AVX-VNNI when `vnni`), checked
            // above; every load reads inside `recs` (np records) or `acts`
            // (nt * np entries), as asserted; `acc` is written by safe indexing.
            unsafe {
                if vnni {
                    panel_vnni::<$nt>(recs, acts, flags, acc)
                } else {
                    panel_avx2::<$nt>(recs, acts, flags, acc)
                }
            }
        };
    }
    match nt {
        1 => go!(1),
        2 => go!(2),
        3 => go!(3),
        4 => go!(4),
        5 => go!(5),
        6 => go!(6),
        7 => go!(7),
        _ => go!(8),
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn panel_vnni<const NT: usize>(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) {
    body::<NT, true>(recs, acts, flags, acc)
}

#[target_feature(enable = "avx2")]
unsafe fn panel_avx2<const NT: usize>(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) {
    body::<NT, false>(recs, acts, flags, acc)
}

/// The 32 bits `bits` as 32 bytes of 16 (bit set) or 0.
#[inline(always)]
unsafe fn bits_to_16(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    // byte k takes source byte k / 8 (shuffles stay within 128-bit halves)
    let sel = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let b = _mm256_and_si256(_mm256_shuffle_epi8(v, sel), bit);
    _mm256_and_si256(_mm256_cmpeq_epi8(b, bit), _mm256_set1_epi8(16))
}

/// Codes `q + 16` of group `g`, rows `8h..8h+8`: (codes 0..4, codes 4..8).
#[inline(always)]
unsafe fn codes(r: *const u8, g: usize, h: usize) -> (__m256i, __m256i) {
    let nib = _mm256_set1_epi8(15);
    let n = _mm256_loadu_si256(r.add(64 * g + 32 * h) as *const __m256i);
    let m = r.add(MASKS + 16 * g);
    let k0 = core::ptr::read_unaligned(m.add(4 * h) as *const u32);
    let k1 = core::ptr::read_unaligned(m.add(8 + 4 * h) as *const u32);
    let c0 = _mm256_add_epi8(_mm256_and_si256(n, nib), bits_to_16(k0));
    let c1 = _mm256_add_epi8(
        _mm256_and_si256(_mm256_srli_epi16::<4>(n), nib),
        bits_to_16(k1),
    );
    (c0, c1)
}

/// `p = Σ m·(q+16) − 16·Σ m` per lane (8 rows).
#[inline(always)]
unsafe fn dot<const VNNI: bool>(c: (__m256i, __m256i), lo: u32, hi: u32, nmsum16: i32) -> __m256i {
    let (l, h) = (_mm256_set1_epi32(lo as i32), _mm256_set1_epi32(hi as i32));
    if VNNI {
        let p = _mm256_dpbusd_avx_epi32(_mm256_set1_epi32(nmsum16), c.0, l);
        _mm256_dpbusd_avx_epi32(p, c.1, h)
    } else {
        // u8 x i8 pair sums: |2 · 31 · 128| < 2^15, so vpmaddubsw never saturates,
        // and the two halves' sum stays within 4 · 31 · 128 < 2^15
        let s = _mm256_add_epi16(_mm256_maddubs_epi16(c.0, l), _mm256_maddubs_epi16(c.1, h));
        _mm256_add_epi32(
            _mm256_madd_epi16(s, _mm256_set1_epi16(1)),
            _mm256_set1_epi32(nmsum16),
        )
    }
}

/// Adds the 8 values `(v as i64) << s` of an `i32` vector to `a` (lanes 0..4, 4..8).
#[inline(always)]
unsafe fn widen_add(v: __m256i, s: u32, a: &mut [__m256i; 2]) {
    let cnt = _mm_cvtsi32_si128(s as i32);
    let lo = _mm256_sll_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)), cnt);
    let hi = _mm256_sll_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v)), cnt);
    a[0] = _mm256_add_epi64(a[0], lo);
    a[1] = _mm256_add_epi64(a[1], hi);
}

#[inline(always)]
unsafe fn body<const NT: usize, const VNNI: bool>(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) {
    let np = flags.len();
    let zero = _mm256_setzero_si256();
    let one16 = _mm256_set1_epi16(1);
    for h in 0..2 {
        let mut a32 = [zero; NT];
        let mut a64 = [[zero; 2]; NT];
        for (j, &f) in flags.iter().enumerate() {
            let r = recs.as_ptr().add(j * RECORD);
            if h == 0 {
                _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(8 * RECORD) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(8 * RECORD + 64) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(8 * RECORD + 128) as *const i8);
            }
            let ca = codes(r, 0, h);
            let cb = codes(r, 1, h);
            // i16 lanes 2l, 2l+1: scales of groups a, b for row 8h + l, in [2, 256]
            let sc = _mm256_add_epi16(
                _mm256_cvtepu8_epi16(_mm_loadu_si128(r.add(SCALES + 16 * h) as *const __m128i)),
                one16,
            );
            if f & SPLIT == 0 {
                for t in 0..NT {
                    let x = &*acts.as_ptr().add(t * np + j);
                    let pa = dot::<VNNI>(ca, x.lo[0], x.hi[0], x.nmsum16[0]);
                    let pb = dot::<VNNI>(cb, x.lo[1], x.hi[1], x.nmsum16[1]);
                    let pk = _mm256_blend_epi16::<0xAA>(pa, _mm256_slli_epi32::<16>(pb));
                    // scale << d as a multiply by 2^d (d <= 6: fits i16)
                    let (da, db) = (x.shift & 0xffff, x.shift >> 16);
                    let mult = _mm256_set1_epi32(((1u32 << da) | (1u32 << db) << 16) as i32);
                    let s = _mm256_mullo_epi16(sc, mult);
                    a32[t] = if VNNI {
                        _mm256_dpwssd_avx_epi32(a32[t], pk, s)
                    } else {
                        _mm256_add_epi32(a32[t], _mm256_madd_epi16(pk, s))
                    };
                }
                if f & FLUSH != 0 {
                    for t in 0..NT {
                        let x = &*acts.as_ptr().add(t * np + j);
                        widen_add(a32[t], x.base, &mut a64[t]);
                        a32[t] = zero;
                    }
                }
            } else {
                let sa = _mm256_and_si256(sc, _mm256_set1_epi32(0xffff));
                let sb = _mm256_srli_epi32::<16>(sc);
                for t in 0..NT {
                    let x = &*acts.as_ptr().add(t * np + j);
                    // |p · scale| <= 2^22 fits i32; the shifted term is summed in i64
                    let ta =
                        _mm256_mullo_epi32(dot::<VNNI>(ca, x.lo[0], x.hi[0], x.nmsum16[0]), sa);
                    let tb =
                        _mm256_mullo_epi32(dot::<VNNI>(cb, x.lo[1], x.hi[1], x.nmsum16[1]), sb);
                    widen_add(ta, x.shift & 0xffff, &mut a64[t]);
                    widen_add(tb, x.shift >> 16, &mut a64[t]);
                }
            }
        }
        for t in 0..NT {
            let mut v = [0i64; 8];
            _mm256_storeu_si256(v.as_mut_ptr() as *mut __m256i, a64[t][0]);
            _mm256_storeu_si256(v.as_mut_ptr().add(4) as *mut __m256i, a64[t][1]);
            acc[t][8 * h..8 * h + 8].copy_from_slice(&v);
        }
    }
}

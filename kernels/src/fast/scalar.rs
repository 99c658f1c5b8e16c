//! Portable evaluation of one panel from the repacked layout, following the
//! same plan as the SIMD kernels (the plan's `i32` bound is asserted in debug
//! builds, so the tests check it on every case they run).

use crate::fast::layout::{MASKS, PANEL, RECORD, SCALES};
use crate::fast::plan::{PairAct, FLUSH, SPLIT, TOKEN_BLOCK};

/// Code `i` (0..8) of lane `lane`, group `h` of a record, plus 16.
fn code(rec: &[u8], h: usize, lane: usize, i: usize) -> i32 {
    let k = 4 * lane + i % 4;
    let nib = rec[64 * h + k] >> (4 * (i / 4)) & 15;
    let m = MASKS + 16 * h + 8 * (i / 4);
    let bit = rec[m + k / 8] >> (k % 8) & 1;
    (nib | bit << 4) as i32
}

/// `p = Σ m·q` of lane `lane`, group `h`.
fn dot(rec: &[u8], h: usize, lane: usize, a: &PairAct) -> i32 {
    let lo = a.lo[h].to_le_bytes();
    let hi = a.hi[h].to_le_bytes();
    let mut p = a.nmsum16[h];
    for i in 0..4 {
        p += code(rec, h, lane, i) * lo[i] as i8 as i32;
        p += code(rec, h, lane, i + 4) * hi[i] as i8 as i32;
    }
    p
}

/// One panel (`recs`: its records), `nt <= 8` tokens of one block.
pub(crate) fn panel(
    recs: &[u8],
    acts: &[PairAct],
    flags: &[u8],
    nt: usize,
    acc: &mut [[i64; PANEL]; TOKEN_BLOCK],
) {
    let np = flags.len();
    let mut lane32 = [[0i64; PANEL]; TOKEN_BLOCK];
    for (j, &f) in flags.iter().enumerate() {
        let rec = &recs[j * RECORD..(j + 1) * RECORD];
        for t in 0..nt {
            let a = &acts[t * np + j];
            for lane in 0..PANEL {
                let sa = rec[SCALES + 2 * lane] as i64 + 1;
                let sb = rec[SCALES + 2 * lane + 1] as i64 + 1;
                let (pa, pb) = (dot(rec, 0, lane, a) as i64, dot(rec, 1, lane, a) as i64);
                let (xa, xb) = (a.shift & 0xffff, a.shift >> 16);
                if f & SPLIT != 0 {
                    acc[t][lane] += ((pa * sa) << xa) + ((pb * sb) << xb);
                } else {
                    let l = &mut lane32[t][lane];
                    *l += pa * (sa << xa) + pb * (sb << xb);
                    debug_assert!(i32::try_from(*l).is_ok(), "plan bound broken");
                    if f & FLUSH != 0 {
                        acc[t][lane] += *l << a.base;
                        *l = 0;
                    }
                }
            }
        }
    }
}

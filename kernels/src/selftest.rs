//! A fixed, seeded workload through every public kernel, folded into one 64-bit
//! FNV-1a hash.
//!
//! The same function runs in an ordinary `std` test process and in the
//! freestanding executable of `no_std-check/` (no libc, no C runtime, its own
//! `_start`): equal hashes show that the kernels compute the same bits without
//! `std` (`model/tests/no_std_freestanding.rs`).
//!
//! * `no_std`, no heap, no `unsafe`; every buffer is a small stack array (a few
//!   KiB in all).
//! * Inputs come from a seeded SplitMix64 generator plus fixed adversarial
//!   values: extremes, saturation, rounding ties, zero groups, error paths.
//! * Only kernel **outputs** are hashed (values written, values returned and
//!   errors returned), never the inputs, so a seed change that changes the
//!   hash shows that the hash depends on what the kernels computed.
//! * Nothing here panics on the fixed workload: a kernel error is folded into
//!   the hash like any other output (and counted, see the unit tests).
//! * Integer only, like the decoder: [`workload_hash`] contains no floating
//!   point at all (the freestanding check disassembles it). The offline float
//!   code — the float quantizer and the RoPE ROM recipe — has its own workload,
//!   [`offline_workload_hash`] (feature `offline`), run by the std tests only.

use crate::argmax::argmax_i32;
use crate::attention::{attention, softmax_q15, AttnParams, SCORE_FRAC_MAX};
use crate::bfp::{dequantize_block, quantize_bfp, quantize_block, BfpBlock};
use crate::embedding::embed_row;
use crate::format::{
    pack_group, packed_codes_len, packed_exps_len, sign_extend5, ApotGroup, ApotMatrix, ApotWeights,
};
use crate::linear::{group_term, linear, linear_rows, rescale};
use crate::lm_head::{derive_head_group, derive_head_row, derive_head_row_exp, DerivedHead};
#[cfg(feature = "offline")]
use crate::quant::{dequant, quantize_row_f32, row_exp_for_f64};
use crate::quant::{row_exp_for_int, search_group, search_group_naive};
use crate::residual::residual_add;
use crate::rmsnorm::{inv_rms, rmsnorm, EPS_1E6_Q40};
#[cfg(feature = "offline")]
use crate::rope::build_rope_table;
use crate::rope::rope_apply;
use crate::round::{
    div_round, isqrt_u64, round_shift, sat_bits, sat_i16, sat_i32, sat_i8, shift_round_sat,
};
use crate::silu::{sigmoid_q15, silu_q12, swiglu};
use crate::tables::{EXP2_NEG_Q15, SIGMOID_Q15};
use crate::{KernelError, GROUP};

/// 64-bit FNV-1a. Every multi-byte value is fed little-endian, so the hash is
/// the same on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64 {
    state: u64,
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv64 {
    /// FNV-1a 64-bit offset basis.
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    /// FNV-1a 64-bit prime.
    pub const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A fresh hasher.
    pub const fn new() -> Self {
        Self {
            state: Self::OFFSET_BASIS,
        }
    }

    /// The hash of everything written so far.
    pub const fn finish(&self) -> u64 {
        self.state
    }

    /// Feeds one byte.
    #[inline]
    pub fn write_u8(&mut self, b: u8) {
        self.state = (self.state ^ u64::from(b)).wrapping_mul(Self::PRIME);
    }

    /// Feeds bytes as they are.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }

    /// Feeds a `u16`, little-endian.
    pub fn write_u16(&mut self, v: u16) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds a `u32`, little-endian.
    pub fn write_u32(&mut self, v: u32) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds a `u64`, little-endian.
    pub fn write_u64(&mut self, v: u64) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds an `i8`.
    pub fn write_i8(&mut self, v: i8) {
        self.write_u8(v as u8);
    }

    /// Feeds an `i16`, little-endian two's complement.
    pub fn write_i16(&mut self, v: i16) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds an `i32`, little-endian two's complement.
    pub fn write_i32(&mut self, v: i32) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds an `i64`, little-endian two's complement.
    pub fn write_i64(&mut self, v: i64) {
        self.write_bytes(&v.to_le_bytes());
    }

    /// Feeds a `usize` as a `u64` (same hash on 32- and 64-bit targets).
    pub fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    /// Feeds a `bool` as one byte.
    pub fn write_bool(&mut self, v: bool) {
        self.write_u8(u8::from(v));
    }

    /// Feeds the IEEE-754 bits of an `f64`.
    pub fn write_f64(&mut self, v: f64) {
        self.write_u64(v.to_bits());
    }

    /// Feeds a string, length first (so `("ab", "c")` and `("a", "bc")` differ).
    pub fn write_str(&mut self, s: &str) {
        self.write_usize(s.len());
        self.write_bytes(s.as_bytes());
    }

    /// Feeds a slice of `i8`, length first.
    pub fn write_i8s(&mut self, xs: &[i8]) {
        self.write_usize(xs.len());
        for &x in xs {
            self.write_i8(x);
        }
    }

    /// Feeds a slice of `i16`, length first.
    pub fn write_i16s(&mut self, xs: &[i16]) {
        self.write_usize(xs.len());
        for &x in xs {
            self.write_i16(x);
        }
    }

    /// Feeds a slice of `u16`, length first.
    pub fn write_u16s(&mut self, xs: &[u16]) {
        self.write_usize(xs.len());
        for &x in xs {
            self.write_u16(x);
        }
    }

    /// Feeds a slice of `i32`, length first.
    pub fn write_i32s(&mut self, xs: &[i32]) {
        self.write_usize(xs.len());
        for &x in xs {
            self.write_i32(x);
        }
    }

    /// Feeds a slice of `i64`, length first.
    pub fn write_i64s(&mut self, xs: &[i64]) {
        self.write_usize(xs.len());
        for &x in xs {
            self.write_i64(x);
        }
    }
}

/// FNV-1a 64 of a byte string.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.write_bytes(bytes);
    h.finish()
}

/// Combines the hashes of several workloads (kernels, model, ...) into the one
/// value the freestanding check prints as `hash=0x...` and compares with
/// `EDGEDECODING_EXPECTED_HASH`. Order and count matter.
pub fn combine(hashes: &[u64]) -> u64 {
    let mut h = Fnv64::new();
    h.write_str("edgedecoding-combined-v1");
    h.write_usize(hashes.len());
    for &x in hashes {
        h.write_u64(x);
    }
    h.finish()
}

/// Seed of [`workload_hash`].
pub const DEFAULT_SEED: u64 = 0x5eed_ed6e_dec0_d111;

/// The kernels' workload with the fixed seed [`DEFAULT_SEED`].
pub fn workload_hash() -> u64 {
    workload_hash_with_seed(DEFAULT_SEED)
}

/// The kernels' workload with any seed: the random inputs change with the seed,
/// the adversarial ones do not.
pub fn workload_hash_with_seed(seed: u64) -> u64 {
    run(seed).h.finish()
}

/// The offline float code's workload (feature `offline`): the float quantizer
/// and the RoPE ROM recipe, with the fixed seed [`DEFAULT_SEED`]. Not part of
/// [`workload_hash`], so that hash is the same with and without the feature.
#[cfg(feature = "offline")]
pub fn offline_workload_hash() -> u64 {
    offline_run(DEFAULT_SEED).h.finish()
}

/// SplitMix64: tiny, full-period, well-mixed for any seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi` for `hi - lo < 2^62`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Signed value of `bits` random bits (`1..=64`), two's complement.
    fn signed_bits(&mut self, bits: u32) -> i64 {
        let v = self.next_u64();
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }

    /// An `i32` of a random width, so that every magnitude is exercised.
    fn any_i32(&mut self) -> i32 {
        let bits = 1 + self.below(32) as u32;
        self.signed_bits(bits) as i32
    }

    /// An `i16` of a random width.
    fn any_i16(&mut self) -> i16 {
        let bits = 1 + self.below(16) as u32;
        self.signed_bits(bits) as i16
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The state of one run: the hash, the generator and a count of kernel calls
/// whose outcome (Ok or Err) was not the intended one.
struct Run {
    h: Fnv64,
    rng: Rng,
    calls: u32,
    unexpected: u32,
}

impl Run {
    fn section(&mut self, name: &str) {
        self.h.write_str(name);
    }

    fn hash_error(&mut self, e: &KernelError) {
        match *e {
            KernelError::Length {
                what,
                expected,
                got,
            } => {
                self.h.write_u8(1);
                self.h.write_str(what);
                self.h.write_usize(expected);
                self.h.write_usize(got);
            }
            KernelError::NotMultiple { what, value, of } => {
                self.h.write_u8(2);
                self.h.write_str(what);
                self.h.write_usize(value);
                self.h.write_usize(of);
            }
            KernelError::Param {
                what,
                value,
                min,
                max,
            } => {
                self.h.write_u8(3);
                self.h.write_str(what);
                self.h.write_i64(value);
                self.h.write_i64(min);
                self.h.write_i64(max);
            }
        }
    }

    fn outcome<T>(&mut self, r: &Result<T, KernelError>, want_ok: bool) {
        self.calls += 1;
        match r {
            Ok(_) => {
                self.h.write_u8(0);
                if !want_ok {
                    self.unexpected += 1;
                }
            }
            Err(e) => {
                self.hash_error(e);
                if want_ok {
                    self.unexpected += 1;
                }
            }
        }
    }

    /// A call that must succeed; returns whether it did.
    fn ok<T>(&mut self, r: Result<T, KernelError>) -> Option<T> {
        self.outcome(&r, true);
        r.ok()
    }

    /// A call that must be refused.
    fn err<T>(&mut self, r: Result<T, KernelError>) {
        self.outcome(&r, false);
    }

    fn group(&mut self, g: &ApotGroup) {
        self.h.write_i8s(&g.codes);
        self.h.write_u8(g.s1);
        self.h.write_u8(g.s2);
        self.h.write_i32(g.scale());
    }

    fn block(&mut self, b: &BfpBlock) {
        self.h.write_i8s(&b.m);
        self.h.write_u8(b.e);
    }

    fn index(&mut self, i: Option<usize>) {
        match i {
            None => self.h.write_u8(0xff),
            Some(i) => {
                self.h.write_u8(1);
                self.h.write_usize(i);
            }
        }
    }
}

fn run(seed: u64) -> Run {
    let mut run = Run {
        h: Fnv64::new(),
        rng: Rng(seed),
        calls: 0,
        unexpected: 0,
    };
    run.section("edgedecoding-kernels-selftest-v1");
    round_section(&mut run);
    tables_section(&mut run);
    bfp_section(&mut run);
    linear_section(&mut run);
    lm_head_section(&mut run);
    quant_section(&mut run);
    rmsnorm_section(&mut run);
    rope_section(&mut run);
    softmax_section(&mut run);
    attention_section(&mut run);
    silu_section(&mut run);
    residual_section(&mut run);
    embedding_section(&mut run);
    argmax_section(&mut run);
    pipeline_section(&mut run);
    // the bookkeeping is an output too: a call that silently changed from Ok to
    // Err changes the hash even if the error were hashed like an Ok.
    run.h.write_u32(run.calls);
    run.h.write_u32(run.unexpected);
    run
}

#[cfg(feature = "offline")]
fn offline_run(seed: u64) -> Run {
    let mut run = Run {
        h: Fnv64::new(),
        rng: Rng(seed),
        calls: 0,
        unexpected: 0,
    };
    run.section("edgedecoding-kernels-offline-selftest-v1");
    quant_float_section(&mut run);
    rope_table_section(&mut run);
    run.h.write_u32(run.calls);
    run.h.write_u32(run.unexpected);
    run
}

const I64_EDGES: [i64; 20] = [
    i64::MIN,
    i64::MIN + 1,
    -(1 << 62),
    -(1 << 32) - 1,
    i32::MIN as i64,
    -65536,
    -5,
    -3,
    -2,
    -1,
    0,
    1,
    2,
    3,
    5,
    i32::MAX as i64,
    1 << 32,
    1 << 62,
    i64::MAX - 1,
    i64::MAX,
];

const I32_EDGES: [i32; 14] = [
    i32::MIN,
    i32::MIN + 1,
    -(1 << 24),
    -32769,
    -32768,
    -1,
    0,
    1,
    32767,
    32768,
    1 << 24,
    i32::MAX - 1,
    i32::MAX,
    12345,
];

fn round_section(run: &mut Run) {
    run.section("round");
    const SHIFTS: [u32; 15] = [
        0,
        1,
        2,
        3,
        12,
        15,
        31,
        32,
        33,
        62,
        63,
        64,
        65,
        200,
        u32::MAX,
    ];
    const KS: [i32; 15] = [
        i32::MIN,
        -100,
        -64,
        -63,
        -62,
        -40,
        -12,
        -1,
        0,
        1,
        12,
        40,
        63,
        64,
        i32::MAX,
    ];
    const BITS: [u32; 10] = [1, 2, 8, 15, 16, 31, 32, 33, 62, 63];
    let mut xs = [0i64; I64_EDGES.len() + 24];
    xs[..I64_EDGES.len()].copy_from_slice(&I64_EDGES);
    for x in xs[I64_EDGES.len()..].iter_mut() {
        let bits = 1 + run.rng.below(64) as u32;
        *x = run.rng.signed_bits(bits);
    }
    for &x in &xs {
        for &s in &SHIFTS {
            run.h.write_i64(round_shift(x, s));
        }
        for &k in &KS {
            run.h.write_i64(shift_round_sat(x, k));
        }
        for &b in &BITS {
            run.h.write_i64(sat_bits(x, b));
        }
        run.h.write_i8(sat_i8(x));
        run.h.write_i16(sat_i16(x));
        run.h.write_i32(sat_i32(x));
        run.h.write_u64(isqrt_u64(x as u64));
    }
    // isqrt around perfect squares and at the top of the range
    let r = 0xffff_ffffu64;
    for n in [
        0,
        1,
        2,
        3,
        4,
        15,
        16,
        17,
        r * r - 1,
        r * r,
        r * r + 1,
        u64::MAX - 1,
        u64::MAX,
        1 << 62,
        (1 << 62) - 1,
        1 << 63,
    ] {
        run.h.write_u64(isqrt_u64(n));
    }
    for _ in 0..32 {
        let sh = run.rng.below(64) as u32;
        let n = run.rng.next_u64() >> sh;
        run.h.write_u64(isqrt_u64(n));
    }
    // div_round: exact halves go up
    for (a, b) in [
        (5, 2),
        (-5, 2),
        (-1, 2),
        (1, 2),
        (-3, 2),
        (7, 7),
        (0, 9),
        (-7, 14),
    ] {
        run.h.write_i64(div_round(a, b));
    }
    for _ in 0..32 {
        let a = run.rng.signed_bits(61);
        let b = 1 + run.rng.below(1 << 60) as i64;
        run.h.write_i64(div_round(a, b));
        let small = run.rng.range(1, 40);
        run.h.write_i64(div_round(a >> 30, small));
    }
    for v in 0..=255u8 {
        run.h.write_i8(sign_extend5(v));
    }
}

fn tables_section(run: &mut Run) {
    run.section("tables");
    run.h.write_u16s(&EXP2_NEG_Q15);
    run.h.write_u16s(&SIGMOID_Q15);
}

fn bfp_section(run: &mut Run) {
    run.section("bfp");
    const FIXED: [[i32; GROUP]; 12] = [
        [0; GROUP],
        [i32::MAX; GROUP],
        [i32::MIN; GROUP],
        [127, -128, 0, 1, -1, 2, -2, 64],
        [128, 0, 0, 0, 0, 0, 0, 0],
        [255, -255, 0, 0, 0, 0, 0, 0],
        [-257, 3, 0, 0, 0, 0, 0, 0],
        [127 << 15, -(128 << 15), 0, 0, 1, -1, 0, 0],
        [(127 << 15) + (1 << 14), 0, 0, 0, 0, 0, 0, 0],
        [-(128 << 15) - (1 << 14) - 1, 0, 0, 0, 0, 0, 0, 0],
        [1, -1, 1, -1, 1, -1, 1, -1],
        [i32::MAX, i32::MIN, 0, -1, 1, 3, -3, 4095],
    ];
    for x in &FIXED {
        let b = quantize_block(x);
        run.block(&b);
        run.h.write_i64s(&dequantize_block(&b));
    }
    for _ in 0..48 {
        let mut x = [0i32; GROUP];
        let bits = 1 + run.rng.below(32) as u32;
        for v in x.iter_mut() {
            *v = if run.rng.below(5) == 0 {
                run.rng.pick(&I32_EDGES)
            } else {
                run.rng.signed_bits(bits) as i32
            };
        }
        let b = quantize_block(&x);
        run.block(&b);
        run.h.write_i64s(&dequantize_block(&b));
    }
    // a vector of 5 blocks, then the shape errors
    let mut x = [0i32; 5 * GROUP];
    for v in x.iter_mut() {
        *v = run.rng.any_i32();
    }
    x[8..16].copy_from_slice(&FIXED[1]);
    let mut out = [BfpBlock::default(); 5];
    run.ok(quantize_bfp(&x, &mut out));
    for b in &out {
        run.block(b);
    }
    run.err(quantize_bfp(&x[..15], &mut out[..2]));
    run.err(quantize_bfp(&x[..24], &mut out[..2]));
    run.ok(quantize_bfp(&[], &mut []));
}

const MR: usize = 6;
const MC: usize = 32;
const MG: usize = MC / GROUP;

/// An APoT test matrix built with `pack_group`.
struct Packed {
    codes: [u8; packed_codes_len(MR, MC)],
    exps: [u8; packed_exps_len(MR, MC)],
    row_exps: [i8; MR],
}

fn build_matrix(run: &mut Run) -> Packed {
    let mut p = Packed {
        codes: [0; packed_codes_len(MR, MC)],
        exps: [0; packed_exps_len(MR, MC)],
        row_exps: [0; MR],
    };
    for r in 0..MR {
        p.row_exps[r] = match r {
            4 => i8::MIN,
            5 => i8::MAX,
            _ => run.rng.range(-20, 2) as i8,
        };
        for g in 0..MG {
            let grp = match (r, g) {
                // the largest magnitudes, both signs
                (0, _) => ApotGroup {
                    codes: if g % 2 == 0 {
                        [-16; GROUP]
                    } else {
                        [15, -16, 15, -16, 15, -16, 15, -16]
                    },
                    s1: 7,
                    s2: 7,
                },
                // zero groups, with and without exponents
                (1, 0) => ApotGroup::default(),
                (1, 1) => ApotGroup {
                    codes: [0; GROUP],
                    s1: 7,
                    s2: 3,
                },
                _ => ApotGroup {
                    codes: core::array::from_fn(|_| run.rng.range(-16, 15) as i8),
                    s1: run.rng.below(8) as u8,
                    s2: run.rng.below(8) as u8,
                },
            };
            run.ok(pack_group(&mut p.codes, &mut p.exps, r * MG + g, &grp));
        }
    }
    p
}

fn linear_section(run: &mut Run) {
    run.section("format");
    for (rows, cols) in [(896, 896), (1, 8), (3, 40), (5, 8), (0, 16)] {
        run.h.write_usize(packed_codes_len(rows, cols));
        run.h.write_usize(packed_exps_len(rows, cols));
    }
    // pack_group refusals
    {
        let mut c = [0u8; 10];
        let mut e = [0u8; 2];
        let mut g = ApotGroup::default();
        g.codes[3] = 16;
        run.err(pack_group(&mut c, &mut e, 0, &g));
        g.codes[3] = -17;
        run.err(pack_group(&mut c, &mut e, 0, &g));
        g.codes[3] = -16;
        g.s1 = 8;
        run.err(pack_group(&mut c, &mut e, 0, &g));
        g.s1 = 0;
        g.s2 = 8;
        run.err(pack_group(&mut c, &mut e, 0, &g));
        g.s2 = 7;
        run.err(pack_group(&mut c, &mut e, 2, &g));
        run.err(pack_group(&mut c, &mut e[..1], 1, &g));
        run.ok(pack_group(&mut c, &mut e, 1, &g));
        run.h.write_bytes(&c);
        run.h.write_bytes(&e);
    }
    let p = build_matrix(run);
    run.h.write_bytes(&p.codes);
    run.h.write_bytes(&p.exps);
    run.err(ApotMatrix::new(MR, MC + 4, &p.codes, &p.exps, &p.row_exps));
    run.err(ApotMatrix::new(MR, MC, &p.codes[1..], &p.exps, &p.row_exps));
    run.err(ApotMatrix::new(MR, MC, &p.codes, &p.exps[1..], &p.row_exps));
    run.err(ApotMatrix::new(MR, MC, &p.codes, &p.exps, &p.row_exps[1..]));
    let Some(w) = run.ok(ApotMatrix::new(MR, MC, &p.codes, &p.exps, &p.row_exps)) else {
        return;
    };
    run.h.write_usize(w.rows());
    run.h.write_usize(w.cols());
    run.h.write_usize(w.codes().len());
    run.h.write_usize(w.exps().len());
    run.h.write_i8s(w.row_exps());
    for r in 0..MR {
        let (e, ctx) = w.row(r);
        run.h.write_i8(e);
        for g in 0..MG {
            let grp = w.group(r, g, ctx);
            run.group(&grp);
        }
    }

    run.section("linear");
    // direct: the extreme group term and the rescale of extreme accumulators
    let ext = BfpBlock {
        m: [-128; GROUP],
        e: 15,
    };
    run.h.write_i64(group_term(&ext, &[-16; GROUP], 7, 7));
    run.h.write_i64(group_term(&ext, &[15; GROUP], 7, 0));
    run.h
        .write_i64(group_term(&BfpBlock::default(), &[15; GROUP], 0, 0));
    for acc in [i64::MIN, -(1 << 47), -1, 0, 1, 2048, 1 << 37, i64::MAX] {
        for e_row in [i8::MIN, -20, -1, 0, 3, i8::MAX] {
            for out_frac in [0, 12, 30] {
                for bias in [i32::MIN, -1, 0, 7, i32::MAX] {
                    run.h.write_i32(rescale(acc, e_row, out_frac, bias));
                }
            }
        }
    }

    // 11 tokens: crosses the 8-token pass boundary
    const T: usize = 11;
    let mut xs = [0i32; T * MC];
    for (t, tok) in xs.chunks_exact_mut(MC).enumerate() {
        match t {
            0 => tok.fill(i32::MAX),
            1 => tok.fill(0),
            2 => {
                for (i, v) in tok.iter_mut().enumerate() {
                    *v = if i % 2 == 0 { i32::MIN } else { i32::MAX };
                }
            }
            3 => tok.fill(i32::MIN),
            _ => {
                let bits = 1 + run.rng.below(24) as u32;
                for v in tok.iter_mut() {
                    *v = run.rng.signed_bits(bits) as i32;
                }
            }
        }
    }
    let mut blocks = [BfpBlock::default(); T * MG];
    run.ok(quantize_bfp(&xs, &mut blocks));
    let mut bias = [0i32; MR];
    for b in bias.iter_mut() {
        *b = run.rng.range(-10_000, 10_000) as i32;
    }
    bias[1] = i32::MAX;
    bias[2] = i32::MIN;
    let mut out = [0i32; T * MR];
    for out_frac in [0, 12, 30] {
        for tokens in [1, 8, 9, T] {
            out.fill(0x5a5a_5a5a);
            run.ok(linear(
                &w,
                &blocks[..tokens * MG],
                Some(&bias),
                out_frac,
                &mut out[..tokens * MR],
            ));
            run.h.write_i32s(&out[..tokens * MR]);
        }
        run.ok(linear(&w, &blocks, None, out_frac, &mut out));
        run.h.write_i32s(&out);
    }
    // each token alone equals its slot in the batch: hash the lone outputs too
    for t in 0..T {
        let mut solo = [0i32; MR];
        run.ok(linear(
            &w,
            &blocks[t * MG..(t + 1) * MG],
            Some(&bias),
            12,
            &mut solo,
        ));
        run.h.write_i32s(&solo);
    }
    // row ranges (the thread split): every split, hashed piece by piece
    for split in 0..=MR {
        for (range, out_frac) in [(0..split, 12), (split..MR, 12), (split..MR, 30)] {
            let n = T * range.len();
            out.fill(0x5a5a_5a5a);
            run.ok(linear_rows(
                &w,
                &blocks,
                Some(&bias),
                out_frac,
                range,
                &mut out[..n],
            ));
            run.h.write_i32s(&out[..n]);
        }
    }
    run.ok(linear_rows(&w, &blocks[..MG], None, 0, 5..6, &mut out[..1]));
    run.h.write_i32(out[0]);
    run.err(linear_rows(
        &w,
        &blocks,
        None,
        12,
        2..MR + 1,
        &mut out[..T * (MR - 1)],
    ));
    run.err(linear_rows(
        &w,
        &blocks[..MG],
        None,
        12,
        1..3,
        &mut out[..1],
    ));
    // refusals
    let mut bad = blocks;
    bad[MG + 1].e = 16; // a block exponent beyond 4 bits
    run.err(linear(&w, &bad, None, 12, &mut out));
    run.err(linear(&w, &blocks, None, 31, &mut out));
    run.err(linear(&w, &blocks[..MG + 1], None, 12, &mut out[..MR]));
    run.err(linear(&w, &blocks[..MG], None, 12, &mut out[..MR - 1]));
    run.err(linear(
        &w,
        &blocks[..MG],
        Some(&bias[..2]),
        12,
        &mut out[..MR],
    ));
    if let Some(empty) = run.ok(ApotMatrix::new(2, 0, &[], &[], &[0, 0])) {
        run.err(linear(&empty, &[], None, 12, &mut out[..0]));
    }
    if let Some(wide) = run.ok(ApotMatrix::new(0, 8192, &[], &[], &[])) {
        run.err(linear(&wide, &[], None, 12, &mut out[..0]));
    }
    if let Some(widest) = run.ok(ApotMatrix::new(0, 8184, &[], &[], &[])) {
        run.ok(linear(&widest, &[], None, 12, &mut out[..0]));
    }
}

const EV: usize = 6;
const EC: usize = 32;

fn embedding_table(run: &mut Run) -> [i16; EV * EC] {
    let mut emb = [0i16; EV * EC];
    for v in emb.iter_mut() {
        *v = run.rng.range(-512, 511) as i16;
    }
    let row = |r: usize| r * EC..(r + 1) * EC;
    emb[row(1)].fill(0); // an all-zero row
    for v in emb[row(2)].iter_mut() {
        *v = run.rng.range(-3, 3) as i16;
    }
    emb[2 * EC + 17] = 511; // one large code in a row of small ones
    emb[3 * EC] = -512;
    emb[3 * EC + 1] = 511;
    emb[4 * EC..4 * EC + 8].fill(0); // a zero group
    emb[4 * EC + 8..4 * EC + 16].fill(6); // ties between scales
    emb[row(5)].fill(-512);
    emb
}

fn lm_head_section(run: &mut Run) {
    run.section("lm_head");
    let emb = embedding_table(run);
    for emb_exp in [-11, -10, 0, 8] {
        for r in 0..EV {
            let row = &emb[r * EC..(r + 1) * EC];
            let mut gs = [ApotGroup::default(); EC / GROUP];
            if let Some(e_row) = run.ok(derive_head_row(row, emb_exp, &mut gs)) {
                run.h.write_i8(e_row);
            }
            for g in &gs {
                run.group(g);
            }
            let (e_row, eh) = derive_head_row_exp(row, emb_exp);
            run.h.write_i8(e_row);
            run.h.write_i32(eh);
        }
    }
    for eh in [-12, -7, -3, 0, 5] {
        let g = derive_head_group(&emb[3 * EC..3 * EC + GROUP], eh);
        run.group(&g);
    }
    let mut gs = [ApotGroup::default(); EC / GROUP];
    run.err(derive_head_row(&emb[..12], -10, &mut gs[..1]));
    run.err(derive_head_row(&emb[..EC], -10, &mut gs[..3]));
    run.err(DerivedHead::new(&emb, EC, -10, Some(&[0, 6])));
    run.err(DerivedHead::new(&emb, 12, -10, None));
    run.err(DerivedHead::new(&emb[..EC + 8], EC, -10, None));

    // the derived head read by the linear kernel, full and pruned vocabulary
    const T: usize = 3;
    let mut hidden = [0i32; T * EC];
    for v in hidden.iter_mut() {
        *v = run.rng.signed_bits(20) as i32;
    }
    hidden[..EC].fill(1 << 20); // a token that saturates nothing but is large
    let mut blocks = [BfpBlock::default(); T * EC / GROUP];
    run.ok(quantize_bfp(&hidden, &mut blocks));
    let keep = [5u32, 0, 3, 3, 1];
    for keep in [None, Some(&keep[..])] {
        let Some(head) = run.ok(DerivedHead::new(&emb, EC, -10, keep)) else {
            continue;
        };
        run.h.write_usize(head.rows());
        run.h.write_usize(head.cols());
        for r in 0..head.rows() {
            let (e, ctx) = head.row(r);
            run.h.write_i8(e);
            for g in 0..EC / GROUP {
                run.group(&head.group(r, g, ctx));
            }
        }
        let rows = head.rows();
        let mut logits = [0i32; T * EV];
        for out_frac in [0, 12, 20] {
            run.ok(linear(
                &head,
                &blocks,
                None,
                out_frac,
                &mut logits[..T * rows],
            ));
            run.h.write_i32s(&logits[..T * rows]);
            for t in 0..T {
                run.index(argmax_i32(&logits[t * rows..(t + 1) * rows]));
            }
        }
    }
}

fn quant_section(run: &mut Run) {
    run.section("quant");
    const TOP: i64 = (1 << 40) - 1;
    const FIXED: [[i64; GROUP]; 8] = [
        [0; GROUP],
        [6; GROUP],
        [-6; GROUP],
        [TOP; GROUP],
        [-TOP; GROUP],
        [TOP, -TOP, 0, 1, -1, 2, -2, 3],
        [3840, -3840, 3841, -3841, 1920, -1920, 0, 1],
        [1, 0, 0, 0, 0, 0, 0, 0],
    ];
    // the fast search (power-of-two units) and the literal one (any unit)
    for t in &FIXED {
        for unit in [1, 4, 1 << 16] {
            run.group(&search_group(t, unit));
            run.group(&search_group_naive(t, unit));
        }
        run.group(&search_group_naive(t, 3));
    }
    for k in 0..60 {
        let unit = [1i64, 4, 1 << 16][k % 3];
        let mag = [1i64, 20, 300, 3840, 4000][k % 5] * unit;
        let t: [i64; GROUP] = core::array::from_fn(|_| run.rng.range(-mag, mag));
        run.group(&search_group(&t, unit));
        run.group(&search_group_naive(&t, unit));
        run.group(&search_group_naive(&t, 3 + k as i64));
    }
    for m in [
        -5,
        0,
        1,
        2,
        3839,
        3840,
        3841,
        7680,
        7681,
        1 << 30,
        1 << 39,
        TOP,
    ] {
        run.h.write_i32(row_exp_for_int(m));
    }
}

/// The float quantizer (offline): exponent rule of real magnitudes, float rows
/// with non-finite, zero, extreme, subnormal and half-step entries.
#[cfg(feature = "offline")]
fn quant_float_section(run: &mut Run) {
    run.section("quant-float");
    for m in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        -1.0,
        5e-324,
        1e-300,
        0.1,
        1919.0,
        1920.0,
        3840.0,
        3840.5,
        1e300,
        f64::MAX,
    ] {
        run.h.write_i32(row_exp_for_f64(m));
    }
    // float rows: random, with non-finite entries, zero, extreme, short and long
    let mut w = [0.0f32; 40];
    for case in 0..8 {
        for v in w.iter_mut() {
            *v = (run.rng.range(-10_000, 10_000) as f32) * 1e-5;
        }
        match case {
            1 => {
                w[0] = f32::NAN;
                w[9] = f32::INFINITY;
                w[17] = f32::NEG_INFINITY;
            }
            2 => w.fill(0.0),
            3 => {
                w[3] = f32::MAX;
                w[4] = f32::MIN_POSITIVE;
                w[5] = -f32::MAX;
            }
            4 => w.fill(1e-40), // subnormal
            5 => {
                // targets exactly on a half step
                for (i, v) in w.iter_mut().enumerate() {
                    *v = (i as f32 - 20.0) * 0.5;
                }
            }
            _ => {}
        }
        let n = [32, 32, 32, 32, 32, 32, 20, 40][case];
        let mut gs = [ApotGroup::default(); 4];
        let e = quantize_row_f32(&w[..n], &mut gs);
        run.h.write_i8(e);
        for g in &gs {
            run.group(g);
            for &q in &g.codes {
                run.h.write_f64(dequant(q, g.s1, g.s2, e));
            }
        }
    }
    for (q, s1, s2, e) in [
        (-16, 7, 7, i8::MAX),
        (15, 0, 0, i8::MIN),
        (0, 3, 1, 0),
        (1, 0, 7, -12),
    ] {
        run.h.write_f64(dequant(q, s1, s2, e));
    }
}

fn rmsnorm_section(run: &mut Run) {
    run.section("rmsnorm");
    const N: usize = 64;
    let mut x = [0i32; N];
    let mut gamma = [0i16; N];
    let mut out = [0i32; N];
    for case in 0..16 {
        let n = [16, 1, 7, N][case % 4];
        let bits = 1 + run.rng.below(32) as u32;
        for v in x.iter_mut() {
            *v = run.rng.signed_bits(bits) as i32;
        }
        for g in gamma.iter_mut() {
            *g = run.rng.next_u64() as i16;
        }
        gamma[0] = i16::MIN;
        gamma[n - 1] = i16::MAX;
        match case % 8 {
            0 => x.fill(i32::MIN),
            1 => x.fill(i32::MAX),
            2 => x.fill(0),
            3 => {
                x.fill(0);
                x[0] = 1;
            }
            4 => {
                for (i, v) in x.iter_mut().enumerate() {
                    *v = if i % 2 == 0 { i32::MIN } else { i32::MAX };
                }
            }
            _ => {}
        }
        let gamma_frac = (case % 16) as u32;
        let eps = [EPS_1E6_Q40, 1 << 20, 1 << 40][case % 3];
        let (inv, k) = inv_rms(&x[..n], eps);
        run.h.write_u64(inv);
        run.h.write_i32(k);
        run.ok(rmsnorm(
            &x[..n],
            &gamma[..n],
            gamma_frac,
            eps,
            &mut out[..n],
        ));
        run.h.write_i32s(&out[..n]);
    }
    run.err(rmsnorm(&[], &[], 8, EPS_1E6_Q40, &mut []));
    run.err(rmsnorm(&x[..2], &gamma[..1], 8, EPS_1E6_Q40, &mut out[..2]));
    run.err(rmsnorm(&x[..2], &gamma[..2], 8, EPS_1E6_Q40, &mut out[..3]));
    run.err(rmsnorm(
        &x[..2],
        &gamma[..2],
        16,
        EPS_1E6_Q40,
        &mut out[..2],
    ));
    run.err(rmsnorm(
        &x[..2],
        &gamma[..2],
        8,
        (1 << 20) - 1,
        &mut out[..2],
    ));
    run.err(rmsnorm(
        &x[..2],
        &gamma[..2],
        8,
        (1 << 40) + 1,
        &mut out[..2],
    ));
}

/// The RoPE ROM of the integer workload: `build_rope_table(10_000, 16, 8)`,
/// stored like the model's (SPEC §6.1); `rope_rom_is_its_recipe` checks it.
const ROPE_HD: usize = 16;
const ROPE_P: usize = 8;
const ROPE_COS: [i16; ROPE_P * ROPE_HD / 2] = [
    16384, 16384, 16384, 16384, 16384, 16384, 16384, 16384, 8852, 15572, 16302, 16376, 16383,
    16384, 16384, 16384, -6818, 13215, 16057, 16351, 16381, 16384, 16384, 16384, -16220, 9548,
    15652, 16310, 16377, 16383, 16384, 16384, -10709, 4934, 15091, 16253, 16371, 16383, 16384,
    16384, 4648, -169, 14378, 16180, 16364, 16382, 16384, 16384, 15731, -5256, 13522, 16090, 16355,
    16381, 16384, 16384, 12352, -9821, 12531, 15984, 16344, 16380, 16384, 16384,
];
const ROPE_SIN: [i16; ROPE_P * ROPE_HD / 2] = [
    0, 0, 0, 0, 0, 0, 0, 0, 13787, 5095, 1636, 518, 164, 52, 16, 5, 14898, 9685, 3255, 1036, 328,
    104, 33, 10, 2312, 13314, 4842, 1552, 491, 155, 49, 16, -12399, 15623, 6380, 2067, 655, 207,
    66, 21, -15711, 16383, 7855, 2580, 819, 259, 82, 26, -4578, 15518, 9251, 3090, 982, 311, 98,
    31, 10764, 13114, 10555, 3597, 1146, 363, 115, 36,
];

/// The RoPE ROM recipe (offline): tables of several shapes and its refusals.
#[cfg(feature = "offline")]
fn rope_table_section(run: &mut Run) {
    run.section("rope-table");
    const HD: usize = ROPE_HD;
    const P: usize = ROPE_P;
    let mut cos = [0i16; P * HD / 2];
    let mut sin = [0i16; P * HD / 2];
    for (theta, hd, pos) in [(1_000_000, 8, 5), (10_000, 2, 3), (u32::MAX, 4, 2)] {
        let n = pos * hd / 2;
        run.ok(build_rope_table(
            theta,
            hd,
            pos,
            &mut cos[..n],
            &mut sin[..n],
        ));
        run.h.write_i16s(&cos[..n]);
        run.h.write_i16s(&sin[..n]);
    }
    run.err(build_rope_table(10_000, 3, 1, &mut cos[..1], &mut sin[..1]));
    run.err(build_rope_table(10_000, 0, 1, &mut [], &mut []));
    run.err(build_rope_table(10_000, 2048, 0, &mut [], &mut []));
    run.err(build_rope_table(1, 16, 1, &mut cos[..8], &mut sin[..8]));
    run.err(build_rope_table(
        10_000,
        16,
        1,
        &mut cos[..7],
        &mut sin[..8],
    ));
    run.err(build_rope_table(
        10_000,
        16,
        1,
        &mut cos[..8],
        &mut sin[..9],
    ));
    run.ok(build_rope_table(10_000, HD, P, &mut cos, &mut sin));
    run.h.write_i16s(&cos);
    run.h.write_i16s(&sin);
}

fn rope_section(run: &mut Run) {
    run.section("rope");
    const HD: usize = ROPE_HD;
    const P: usize = ROPE_P;
    let (cos, sin) = (&ROPE_COS, &ROPE_SIN);

    let mut base = [0i16; 4 * HD];
    for v in base.iter_mut() {
        *v = run.rng.any_i16();
    }
    base[..HD].fill(i16::MAX);
    base[HD..2 * HD].fill(i16::MIN);
    let half = HD / 2;
    for p in 0..P {
        let mut x = base;
        run.ok(rope_apply(
            &mut x,
            HD,
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        ));
        run.h.write_i16s(&x);
    }
    // 45 degrees saturates, the extreme table entries of an arbitrary i16 table
    for (a, b, c, s) in [
        (i16::MAX, i16::MAX, 11585, 11585),
        (i16::MIN, i16::MIN, 11585, 11585),
        (i16::MIN, i16::MAX, i16::MIN, i16::MIN),
        (i16::MAX, i16::MIN, 16384, 0),
        (3, -3, -16384, 16384),
    ] {
        let mut x = [a, b];
        run.ok(rope_apply(&mut x, 2, &[c], &[s]));
        run.h.write_i16s(&x);
    }
    let mut x = base;
    run.err(rope_apply(&mut x, 3, &cos[..1], &sin[..1]));
    run.err(rope_apply(&mut x[..24], 16, &cos[..8], &sin[..8]));
    run.err(rope_apply(&mut x, HD, &cos[..7], &sin[..8]));
    run.err(rope_apply(&mut x, HD, &cos[..8], &sin[..9]));
    run.h.write_i16s(&x); // refused calls leave x untouched
}

fn softmax_section(run: &mut Run) {
    run.section("softmax");
    const L: usize = 1024;
    let mut s = [0i64; L];
    let mut p = [0u16; L];
    for case in 0..24 {
        let len = [1usize, 2, 3, 16, 64, 200][case % 6];
        let frac = run.rng.below(SCORE_FRAC_MAX as u64 + 1) as u32;
        let spread = 1i64 << (frac + run.rng.below(5) as u32);
        for v in s[..len].iter_mut() {
            *v = run.rng.range(-spread, spread);
        }
        match case % 8 {
            0 => s[..len].fill(7),
            1 => {
                s[..len].fill(i64::MIN / 2);
                s[len / 2] = i64::MAX / 2;
            }
            2 => s[..len].fill(i64::MAX),
            3 => {
                s[..len].fill(0);
                s[0] = 1;
                s[len - 1] = 1; // tie for the maximum
            }
            4 => {
                s[..len].fill(i64::MIN);
                s[len - 1] = i64::MAX;
            }
            5 => s[..len].fill(i64::MIN),
            _ => {}
        }
        run.ok(softmax_q15(&s[..len], frac, &mut p[..len]));
        run.h.write_u16s(&p[..len]);
    }
    // a long row of equal scores: 2^15 / 1024 = 32 each
    s.fill(-3);
    run.ok(softmax_q15(&s, 0, &mut p));
    run.h.write_u16s(&p);
    for (j, v) in s.iter_mut().enumerate() {
        *v = (j as i64 % 37) << 20;
    }
    run.ok(softmax_q15(&s, SCORE_FRAC_MAX, &mut p));
    run.h.write_u16s(&p);
    run.err(softmax_q15(&[], 0, &mut []));
    run.err(softmax_q15(&s[..4], 0, &mut p[..3]));
    run.err(softmax_q15(&s[..4], 37, &mut p[..4]));
}

fn attention_section(run: &mut Run) {
    run.section("attention");
    const MAXLEN: usize = 12;
    const KV: usize = MAXLEN * 2 * 64;
    let gqa = AttnParams {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        q_frac: 8,
        k_frac: 8,
        v_frac: 10,
        out_frac: 12,
    };
    let mqa = AttnParams {
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        q_frac: 15,
        k_frac: 15,
        v_frac: 15,
        out_frac: 30,
    };
    let mha = AttnParams {
        n_heads: 2,
        n_kv_heads: 2,
        head_dim: 64,
        q_frac: 0,
        k_frac: 0,
        v_frac: 0,
        out_frac: 30,
    };
    let mut q = [0i16; 128];
    let mut k = [0i16; KV];
    let mut v = [0i16; KV];
    let mut scores = [0i64; MAXLEN];
    let mut probs = [0u16; MAXLEN];
    let mut out = [0i32; 128];
    for (ci, prm) in [gqa, mqa, mha].iter().enumerate() {
        run.h.write_u32(prm.score_shift());
        run.ok(prm.validate());
        let qn = prm.n_heads * prm.head_dim;
        let kvd = prm.n_kv_heads * prm.head_dim;
        for case in 0..6 {
            let len = [1, 7, MAXLEN][case % 3];
            let amp = [64i64, 4096, 32767][(case + ci) % 3];
            for x in q[..qn]
                .iter_mut()
                .chain(k[..len * kvd].iter_mut())
                .chain(v[..len * kvd].iter_mut())
            {
                *x = run.rng.range(-amp - 1, amp) as i16;
            }
            match case {
                3 => {
                    // every score equal and as large as possible
                    q[..qn].fill(i16::MIN);
                    k[..len * kvd].fill(i16::MIN);
                }
                4 => {
                    v[..len * kvd].fill(i16::MIN);
                    q[..qn].fill(i16::MAX);
                }
                5 => v[..len * kvd].fill(i16::MAX),
                _ => {}
            }
            out.fill(0x5a5a_5a5a);
            run.ok(attention(
                prm,
                &q[..qn],
                &k[..len * kvd],
                &v[..len * kvd],
                len,
                &mut scores,
                &mut probs,
                &mut out[..qn],
            ));
            run.h.write_i32s(&out[..qn]);
            run.h.write_u16s(&probs[..len]); // the last head's probabilities
        }
    }
    // a longer cache than len: only positions 0..len are read
    let qn = 64;
    run.ok(attention(
        &gqa,
        &q[..qn],
        &k,
        &v,
        5,
        &mut scores,
        &mut probs,
        &mut out[..qn],
    ));
    run.h.write_i32s(&out[..qn]);
    // refusals
    for bad in [
        AttnParams {
            head_dim: 32,
            ..gqa
        },
        AttnParams {
            n_kv_heads: 3,
            ..gqa
        },
        AttnParams { n_heads: 0, ..gqa },
        AttnParams { q_frac: 16, ..gqa },
        AttnParams { v_frac: 16, ..gqa },
        AttnParams {
            out_frac: 31,
            ..gqa
        },
        AttnParams {
            n_kv_heads: 8,
            ..gqa
        },
    ] {
        run.err(bad.validate());
        run.h.write_u32(bad.score_shift());
    }
    let kvd = 32;
    let mut attn = |run: &mut Run,
                    qn: usize,
                    kl: usize,
                    vl: usize,
                    len: usize,
                    sl: usize,
                    pl: usize,
                    on: usize| {
        run.err(attention(
            &gqa,
            &q[..qn],
            &k[..kl],
            &v[..vl],
            len,
            &mut scores[..sl],
            &mut probs[..pl],
            &mut out[..on],
        ));
    };
    attn(run, 64, 4 * kvd, 4 * kvd, 0, 4, 4, 64);
    attn(run, 64, 3 * kvd, 4 * kvd, 4, 4, 4, 64);
    attn(run, 64, 4 * kvd, 3 * kvd, 4, 4, 4, 64);
    attn(run, 64, 4 * kvd, 4 * kvd, 4, 3, 4, 64);
    attn(run, 64, 4 * kvd, 4 * kvd, 4, 4, 3, 64);
    attn(run, 63, 4 * kvd, 4 * kvd, 4, 4, 4, 64);
    attn(run, 64, 4 * kvd, 4 * kvd, 4, 4, 4, 65);
}

fn silu_section(run: &mut Run) {
    run.section("silu");
    let mut x = -40_000;
    while x < 40_000 {
        run.h.write_i32(sigmoid_q15(x));
        run.h.write_i32(silu_q12(x));
        x += 97;
    }
    for &x in &I32_EDGES {
        run.h.write_i32(sigmoid_q15(x));
        run.h.write_i32(silu_q12(x));
    }
    for _ in 0..64 {
        let x = run.rng.any_i32();
        run.h.write_i32(sigmoid_q15(x));
        run.h.write_i32(silu_q12(x));
    }
    const N: usize = 32;
    let mut gate = [0i32; N];
    let mut up = [0i32; N];
    for (g, u) in gate.iter_mut().zip(up.iter_mut()) {
        *g = run.rng.any_i32();
        *u = run.rng.any_i32();
    }
    gate[..4].copy_from_slice(&[i32::MAX, i32::MAX, i32::MIN, i32::MIN]);
    up[..4].copy_from_slice(&[i32::MAX, i32::MIN, i32::MAX, i32::MIN]);
    let mut out = [0i32; N];
    run.ok(swiglu(&gate, &up, &mut out));
    run.h.write_i32s(&out);
    run.err(swiglu(&gate, &up[..N - 1], &mut out));
    run.err(swiglu(&gate, &up, &mut out[..N - 1]));
}

fn residual_section(run: &mut Run) {
    run.section("residual");
    const N: usize = I32_EDGES.len();
    for &a in &I32_EDGES {
        let mut acc = [a; N];
        run.ok(residual_add(&mut acc, &I32_EDGES));
        run.h.write_i32s(&acc);
    }
    let mut acc = [0i32; 16];
    let mut delta = [0i32; 16];
    for (a, d) in acc.iter_mut().zip(delta.iter_mut()) {
        *a = run.rng.any_i32();
        *d = run.rng.any_i32();
    }
    run.ok(residual_add(&mut acc, &delta));
    run.h.write_i32s(&acc);
    run.err(residual_add(&mut acc, &delta[..15]));
}

fn embedding_section(run: &mut Run) {
    run.section("embedding");
    let mut row = [0i16; 24];
    for c in row.iter_mut() {
        *c = run.rng.range(-512, 511) as i16;
    }
    row[..8].copy_from_slice(&[-512, 511, 0, -1, 1, i16::MIN, i16::MAX, 512]);
    let mut out = [0i32; 24];
    for emb_exp in -30..=8 {
        run.ok(embed_row(&row, emb_exp, &mut out));
        run.h.write_i32s(&out);
    }
    run.err(embed_row(&row, -31, &mut out));
    run.err(embed_row(&row, 9, &mut out));
    run.err(embed_row(&row, 0, &mut out[..23]));
}

fn argmax_section(run: &mut Run) {
    run.section("argmax");
    run.index(argmax_i32(&[]));
    run.index(argmax_i32(&[i32::MIN]));
    run.index(argmax_i32(&[i32::MIN; 9]));
    run.index(argmax_i32(&[1, 5, 5, 2]));
    run.index(argmax_i32(&[1, 2, 3, i32::MAX, i32::MAX]));
    run.index(argmax_i32(&[-3, -1, -1]));
    let mut v = [0i32; 50];
    for case in 0..40 {
        let n = 1 + case % 50;
        for x in v[..n].iter_mut() {
            *x = if case % 2 == 0 {
                run.rng.range(-3, 3) as i32 // many ties
            } else {
                run.rng.any_i32()
            };
        }
        run.index(argmax_i32(&v[..n]));
    }
}

/// A miniature greedy decoder without attention: embedding, RMSNorm, SwiGLU,
/// residual, RMSNorm, the derived lm_head, argmax, next token. Chains the
/// kernels the way the model does, so formats flow from one into the next.
fn pipeline_section(run: &mut Run) {
    run.section("pipeline");
    let emb = embedding_table(run);
    let emb_exp = -10;
    let mut gamma = [0i16; EC];
    for g in gamma.iter_mut() {
        *g = run.rng.range(1 << 12, 3 << 12) as i16;
    }
    let Some(head) = run.ok(DerivedHead::new(&emb, EC, emb_exp, None)) else {
        return;
    };
    let mut token = run.rng.below(EV as u64) as usize;
    for _ in 0..6 {
        run.h.write_usize(token);
        let mut x = [0i32; EC];
        run.ok(embed_row(
            &emb[token * EC..(token + 1) * EC],
            emb_exp,
            &mut x,
        ));
        let mut h = [0i32; EC];
        run.ok(rmsnorm(&x, &gamma, 13, EPS_1E6_Q40, &mut h));
        let mut f = [0i32; EC];
        run.ok(swiglu(&h, &x, &mut f));
        run.ok(residual_add(&mut x, &f));
        run.ok(rmsnorm(&x, &gamma, 13, EPS_1E6_Q40, &mut h));
        let mut blocks = [BfpBlock::default(); EC / GROUP];
        run.ok(quantize_bfp(&h, &mut blocks));
        let mut logits = [0i32; EV];
        run.ok(linear(&head, &blocks, None, 12, &mut logits));
        run.h.write_i32s(&logits);
        token = argmax_i32(&logits).unwrap_or(0);
    }
    run.h.write_usize(token);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv64::new();
        h.write_i64(-2);
        assert_eq!(h.finish(), fnv1a64(&(-2i64).to_le_bytes()));
    }

    #[test]
    fn deterministic_and_output_dependent() {
        let a = workload_hash();
        assert_eq!(a, workload_hash());
        assert_eq!(a, workload_hash_with_seed(DEFAULT_SEED));
        // only outputs are hashed: other inputs must give other outputs
        let b = workload_hash_with_seed(DEFAULT_SEED ^ 1);
        assert_ne!(a, b);
        assert_eq!(b, workload_hash_with_seed(DEFAULT_SEED ^ 1));
        assert_ne!(a, workload_hash_with_seed(0));
    }

    /// Every call meant to succeed succeeded and every refusal was refused:
    /// the workload really exercises the kernels rather than their checks.
    #[test]
    fn every_call_has_the_intended_outcome() {
        let seeds = [DEFAULT_SEED, 0, 1, u64::MAX];
        for seed in seeds.into_iter().chain((0..64).map(|i| fnv1a64(&[i]))) {
            let r = run(seed);
            assert_eq!(r.unexpected, 0, "seed {seed:#x}");
            assert!(r.calls > 300, "{}", r.calls);
        }
    }

    /// The offline workload: deterministic, seed dependent, every call with its
    /// intended outcome.
    #[test]
    #[cfg(feature = "offline")]
    fn offline_workload_runs_as_intended() {
        assert_eq!(offline_workload_hash(), offline_workload_hash());
        assert_ne!(offline_workload_hash(), workload_hash());
        for seed in [DEFAULT_SEED, 0, 1, u64::MAX] {
            let r = offline_run(seed);
            assert_eq!(r.unexpected, 0, "seed {seed:#x}");
            assert!(r.calls >= 10, "{}", r.calls);
        }
        assert_ne!(offline_run(0).h, offline_run(1).h);
    }

    /// The integer workload's RoPE ROM is what the recipe builds.
    #[test]
    #[cfg(feature = "offline")]
    fn rope_rom_is_its_recipe() {
        let mut cos = [0i16; ROPE_P * ROPE_HD / 2];
        let mut sin = [0i16; ROPE_P * ROPE_HD / 2];
        build_rope_table(10_000, ROPE_HD, ROPE_P, &mut cos, &mut sin).unwrap();
        assert_eq!((cos, sin), (ROPE_COS, ROPE_SIN));
    }

    #[test]
    fn combine_depends_on_order_and_count() {
        assert_ne!(combine(&[1, 2]), combine(&[2, 1]));
        assert_ne!(combine(&[1]), combine(&[1, 0]));
        assert_ne!(combine(&[]), combine(&[0]));
        assert_eq!(combine(&[7, 9]), combine(&[7, 9]));
    }
}

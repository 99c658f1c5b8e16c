//! Cases of every kernel operator: seeded random cases plus edge cases
//! (saturation, all-zero groups, maximum magnitudes, argmax ties, rounding
//! ties, longest softmax rows, first and last context positions). Every golden
//! output is computed by the kernel of `edgedecoding-kernels` named in the
//! case's operator (docs/VECTORS.md §3 lists the files of each operator).
//!
//! Shapes are the accelerator's (Qwen2.5-0.5B: hidden 896, 14/2 heads of 64,
//! RoPE theta 1e6, 1024 positions) wherever a case is about a shape; they do not
//! depend on the model the suite is generated for.

use anyhow::Result;
use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::attention::{attention, softmax_q15, AttnParams, MAX_LEN};
use edgedecoding_kernels::bfp::{quantize_bfp, BfpBlock};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_kernels::linear::{linear, MAX_COLS};
use edgedecoding_kernels::lm_head::derive_head_row;
use edgedecoding_kernels::residual::residual_add;
use edgedecoding_kernels::rmsnorm::{rmsnorm, EPS_1E6_Q40};
use edgedecoding_kernels::rope::{build_rope_table, rope_apply};
use edgedecoding_kernels::round::{isqrt_u64, round_shift, shift_round_sat};
use edgedecoding_kernels::silu::{sigmoid_q15, silu_q12, swiglu};
use edgedecoding_kernels::GROUP;

use crate::hw::{pack_image, split_halves, HALF_BYTES};
use crate::rng::Gen;
use crate::suite::Case;

/// A case builder: all cases of one operator for a seed.
pub type Builder = fn(u64) -> Result<Vec<Case>>;

/// Every operator with its builder, in suite order.
pub const OPERATORS: [(&str, Builder); 15] = [
    ("round_shift", round_shift_cases),
    ("shift_round_sat", shift_round_sat_cases),
    ("isqrt", isqrt_cases),
    ("bfp_quantize", bfp_cases),
    ("linear", linear_cases),
    ("lm_head_derive", lm_head_cases),
    ("rmsnorm", rmsnorm_cases),
    ("rope", rope_cases),
    ("softmax", softmax_cases),
    ("attention", attention_cases),
    ("silu", silu_cases),
    ("swiglu", swiglu_cases),
    ("residual_add", residual_cases),
    ("embed", embed_cases),
    ("argmax", argmax_cases),
];

/// Qwen2.5-0.5B hidden size.
const QWEN_HIDDEN: usize = 896;
/// RoPE of Qwen2.5-0.5B.
const QWEN_THETA: u32 = 1_000_000;
const QWEN_HEAD_DIM: usize = 64;
/// The long-context bitstream's context.
const QWEN_CTX: usize = 1024;

// ---------------------------------------------------------------- primitives

fn round_shift_case(name: &str, xs: &[i64], ss: &[u8]) -> Case {
    let y: Vec<i64> = xs
        .iter()
        .zip(ss)
        .map(|(&x, &s)| round_shift(x, s as u32))
        .collect();
    let n = xs.len();
    let mut c = Case::op("round_shift", name);
    c.param("n", n);
    c.input("x", xs, &[n], "[i] int64");
    c.input("s", ss, &[n], "[i] shift, 0..=70 (s >= 64 gives 0)")
        .bits(7);
    c.output(
        "y",
        &y,
        &[n],
        "[i] floor(x / 2^s + 1/2), ties toward +inf (SPEC 1.1)",
    );
    c
}

fn round_shift_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    // SPEC §1.1 examples
    let ex: [(i64, u8); 8] = [
        (5, 1),
        (-5, 1),
        (1, 1),
        (-1, 1),
        (-3, 1),
        (6, 2),
        (-6, 2),
        (-7, 2),
    ];
    let (xs, ss): (Vec<i64>, Vec<u8>) = ex.iter().copied().unzip();
    out.push(round_shift_case("spec_examples", &xs, &ss));
    // exact ties x = (2k+1) 2^(s-1): all round up
    let (mut xs, mut ss) = (vec![], vec![]);
    for s in 1..=40u8 {
        for k in [-1000i64, -3, -2, -1, 0, 1, 2, 999] {
            xs.push((2 * k + 1) << (s - 1));
            ss.push(s);
        }
    }
    out.push(round_shift_case("ties", &xs, &ss));
    // extremes of x and s
    let (mut xs, mut ss) = (vec![], vec![]);
    for x in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
        for s in [0u8, 1, 2, 31, 32, 62, 63, 64, 65, 70] {
            xs.push(x);
            ss.push(s);
        }
    }
    for p in 0..62 {
        for d in -1i64..=1 {
            for sign in [-1i64, 1] {
                let x = sign * ((1i64 << p) + d);
                for s in [p as u8, p as u8 + 1] {
                    xs.push(x);
                    ss.push(s);
                }
            }
        }
    }
    out.push(round_shift_case("extremes", &xs, &ss));
    let mut g = Gen::new(seed, "round_shift/random");
    let (mut xs, mut ss) = (vec![], vec![]);
    for _ in 0..2048 {
        let bits = g.below(64) as u32;
        xs.push((g.u64() as i64) >> (63 - bits.min(63)));
        ss.push(g.below(66) as u8);
    }
    out.push(round_shift_case("random", &xs, &ss));
    Ok(out)
}

fn shift_round_sat_case(name: &str, xs: &[i64], ks: &[i8]) -> Case {
    let y: Vec<i64> = xs
        .iter()
        .zip(ks)
        .map(|(&x, &k)| shift_round_sat(x, k as i32))
        .collect();
    let n = xs.len();
    let mut c = Case::op("shift_round_sat", name);
    c.param("n", n);
    c.input("x", xs, &[n], "[i] int64");
    c.input(
        "k",
        ks,
        &[n],
        "[i] int8 in [-70, 70]: k >= 0 rounding right shift, k < 0 saturating left shift",
    );
    c.output("y", &y, &[n], "[i] x * 2^-k (SPEC 1.1)");
    c
}

fn shift_round_sat_cases(seed: u64) -> Result<Vec<Case>> {
    let (mut xs, mut ks) = (vec![], vec![]);
    for x in [
        i64::MIN,
        i64::MIN / 2 - 1,
        i64::MIN / 2,
        -3,
        -1,
        0,
        1,
        3,
        i64::MAX / 2,
        i64::MAX / 2 + 1,
        i64::MAX,
    ] {
        for k in [
            -70i8, -64, -63, -62, -33, -32, -2, -1, 0, 1, 2, 32, 62, 63, 64, 70,
        ] {
            xs.push(x);
            ks.push(k);
        }
    }
    let mut out = vec![shift_round_sat_case("extremes", &xs, &ks)];
    let mut g = Gen::new(seed, "shift_round_sat/random");
    let (mut xs, mut ks) = (vec![], vec![]);
    for _ in 0..2048 {
        let bits = g.below(64) as u32;
        xs.push((g.u64() as i64) >> (63 - bits.min(63)));
        ks.push(g.range(-70, 70) as i8);
    }
    out.push(shift_round_sat_case("random", &xs, &ks));
    Ok(out)
}

fn isqrt_case(name: &str, ns: &[u64]) -> Case {
    let r: Vec<u64> = ns.iter().map(|&n| isqrt_u64(n)).collect();
    let n = ns.len();
    let mut c = Case::op("isqrt", name);
    c.param("n", n);
    c.input("n", ns, &[n], "[i] uint64");
    c.output("r", &r, &[n], "[i] floor(sqrt(n)) (SPEC 1.4)");
    c
}

fn isqrt_cases(seed: u64) -> Result<Vec<Case>> {
    let small: Vec<u64> = (0..=1024).collect();
    let mut pw = vec![u64::MAX];
    for p in 0..64 {
        let v = 1u64 << p;
        pw.extend([v - 1, v, v + 1]);
    }
    let mut g = Gen::new(seed, "isqrt");
    // RMSNorm's domain: (2^30, 2^32]
    let dom: Vec<u64> = (0..1024)
        .map(|_| (1u64 << 30) + 1 + g.below(3 << 30))
        .collect();
    let rnd: Vec<u64> = (0..1024).map(|_| g.u64() >> g.below(64)).collect();
    Ok(vec![
        isqrt_case("small", &small),
        isqrt_case("powers", &pw),
        isqrt_case("rmsnorm_domain", &dom),
        isqrt_case("random", &rnd),
    ])
}

// ---------------------------------------------------------------- BFP

fn bfp_case(name: &str, x: &[i32], tokens: usize) -> Result<Case> {
    let ch = x.len() / tokens;
    let mut b = vec![BfpBlock::default(); x.len() / GROUP];
    quantize_bfp(x, &mut b)?;
    let m: Vec<i8> = b.iter().flat_map(|b| b.m).collect();
    let e: Vec<u8> = b.iter().map(|b| b.e).collect();
    let mut c = Case::op("bfp_quantize", name);
    c.param("tokens", tokens).param("channels", ch);
    c.input("x", x, &[tokens, ch], "[token][channel] int32 Q12");
    c.output(
        "m",
        &m,
        &[tokens, ch],
        "[token][channel] int8 mantissa (SPEC 3.1)",
    );
    c.output(
        "e",
        &e,
        &[tokens, ch / GROUP],
        "[token][block of 8 channels] exponent 0..=15",
    )
    .bits(4);
    Ok(c)
}

fn bfp_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "bfp/random");
    let x: Vec<i32> = (0..8 * 256)
        .map(|i| {
            let bits = ((i / 8) * 7 % 31) as u32 + 1; // magnitude per block
            g.range(-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1) as i32
        })
        .collect();
    out.push(bfp_case("random", &x, 8)?);
    // every exponent threshold: the largest value that fits e, the smallest that
    // needs e + 1, for the maximum and for the minimum (64 blocks)
    let mut x = Vec::new();
    for e in 0..16u32 {
        let (hi_fit, lo_fit) = if e == 0 {
            (127i64, -128i64)
        } else {
            ((255i64 << (e - 1)) - 1, -(257i64 << (e - 1)))
        };
        for (k, v) in [hi_fit, hi_fit + 1, lo_fit, lo_fit - 1]
            .into_iter()
            .enumerate()
        {
            let mut blk: [i64; 8] = core::array::from_fn(|i| g.range(-3, 3) * i as i64);
            blk[(e as usize + k) % 8] = v;
            x.extend(
                blk.iter()
                    .map(|&v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            );
        }
    }
    out.push(bfp_case("thresholds", &x, 8)?);
    out.push(bfp_case("all_zero", &[0; 8 * 64], 8)?);
    // saturation at e = 15: x >= 127.5 * 2^15 or x < -128.5 * 2^15
    let s = [
        i32::MAX,
        i32::MIN,
        4_177_920,
        4_177_919,
        -4_210_688,
        -4_210_689,
        1 << 30,
        -(1 << 30),
    ];
    let mut x = Vec::new();
    for k in 0..64 {
        let mut blk = [0i32; 8];
        for (i, v) in blk.iter_mut().enumerate() {
            *v = if (i + k) % 3 == 0 {
                s[(i + k) % s.len()]
            } else {
                g.range(-1 << 20, 1 << 20) as i32
            };
        }
        x.extend(blk);
    }
    out.push(bfp_case("saturation", &x, 8)?);
    // rounding ties of the mantissas: the block max fixes e, the other lanes are
    // odd multiples of 2^(e-1)
    let mut x = Vec::new();
    for k in 0..64usize {
        let e = 1 + (k % 15) as i64;
        let mut blk = [0i32; 8];
        blk[0] = 100 << e;
        for (i, v) in blk.iter_mut().enumerate().skip(1) {
            let odd = 2 * (i as i64 - 4) + 1 + (k as i64 % 5) * 8 * if k % 2 == 0 { 1 } else { -1 };
            *v = (odd << (e - 1)) as i32;
        }
        x.extend(blk);
    }
    out.push(bfp_case("ties", &x, 8)?);
    Ok(out)
}

// ---------------------------------------------------------------- linear

/// The weights of a linear case, unpacked.
struct Weights {
    rows: usize,
    cols: usize,
    groups: Vec<ApotGroup>,
    rexp: Vec<i8>,
}

fn linear_case(
    name: &str,
    w: &Weights,
    x: &[i32],
    tokens: usize,
    bias: Option<&[i32]>,
    out_frac: u32,
) -> Result<Case> {
    let (rows, cols) = (w.rows, w.cols);
    let gpr = cols / GROUP;
    let mut codes = vec![0u8; packed_codes_len(rows, cols)];
    let mut exps = vec![0u8; packed_exps_len(rows, cols)];
    for (gi, grp) in w.groups.iter().enumerate() {
        pack_group(&mut codes, &mut exps, gi, grp)?;
    }
    let m = ApotMatrix::new(rows, cols, &codes, &exps, &w.rexp)?;
    let mut blocks = vec![BfpBlock::default(); tokens * gpr];
    quantize_bfp(x, &mut blocks)?;
    let mut y = vec![0i32; tokens * rows];
    linear(&m, &blocks, bias, out_frac, &mut y)?;
    let img = pack_image(&m, 1);
    let (lo, hi) = split_halves(&img);
    let q: Vec<i8> = w.groups.iter().flat_map(|g| g.codes).collect();
    let s1: Vec<u8> = w.groups.iter().map(|g| g.s1).collect();
    let s2: Vec<u8> = w.groups.iter().map(|g| g.s2).collect();
    let xm: Vec<i8> = blocks.iter().flat_map(|b| b.m).collect();
    let xe: Vec<u8> = blocks.iter().map(|b| b.e).collect();
    let mut c = Case::op("linear", name);
    c.param("rows", rows)
        .param("cols", cols)
        .param("tokens", tokens)
        .param("out_frac", out_frac)
        .param("has_bias", u8::from(bias.is_some()));
    c.input(
        "x",
        x,
        &[tokens, cols],
        "[token][channel] int32 Q12 (the BFP blocks below are quantize_bfp of it)",
    );
    c.input(
        "x_m",
        &xm,
        &[tokens, cols],
        "[token][channel] int8 BFP mantissa",
    );
    c.input(
        "x_e",
        &xe,
        &[tokens, gpr],
        "[token][group] BFP exponent 0..=15",
    )
    .bits(4);
    c.input(
        "w_codes",
        &codes,
        &[codes.len()],
        "SPEC 2.1 packed 5-bit code stream, row-major, LSB first",
    );
    c.input(
        "w_exps",
        &exps,
        &[exps.len()],
        "SPEC 2.1 packed exponent stream: 6-bit field (s1 | s2 << 3) per (row, group), LSB first",
    );
    c.input("w_rexp", &w.rexp, &[rows], "[row] int8 row exponent e_row");
    c.input(
        "w_q",
        &q,
        &[rows, cols],
        "[row][channel] 5-bit code, unpacked",
    )
    .bits(5);
    c.input("w_s1", &s1, &[rows, gpr], "[row][group] s1, unpacked")
        .bits(3);
    c.input("w_s2", &s2, &[rows, gpr], "[row][group] s2, unpacked")
        .bits(3);
    c.input(
        "w_hw_lo",
        &lo,
        &[lo.len() / HALF_BYTES, HALF_BYTES],
        "DDR image (VECTORS 5) port 0: bytes 0..16 of every 256-bit word",
    );
    c.input(
        "w_hw_hi",
        &hi,
        &[hi.len() / HALF_BYTES, HALF_BYTES],
        "DDR image (VECTORS 5) port 1: bytes 16..32 of every 256-bit word",
    );
    if let Some(b) = bias {
        c.input("bias", b, &[rows], "[row] int32 in Q(out_frac)");
    }
    c.output(
        "y",
        &y,
        &[tokens, rows],
        "[token][row] int32 in Q(out_frac) (SPEC 4)",
    );
    Ok(c)
}

fn random_weights(g: &mut Gen, rows: usize, cols: usize, rexp: (i64, i64)) -> Weights {
    let groups = (0..rows * cols / GROUP)
        .map(|_| {
            let (a, b) = (g.below(8) as u8, g.below(8) as u8);
            ApotGroup {
                codes: core::array::from_fn(|_| g.gauss(6.0, -16, 15) as i8),
                s1: a.min(b),
                s2: a.max(b),
            }
        })
        .collect();
    Weights {
        rows,
        cols,
        groups,
        rexp: (0..rows).map(|_| g.range(rexp.0, rexp.1) as i8).collect(),
    }
}

/// Q12 activations: Gaussian with a per-token scale and a few outlier channels.
fn random_act(g: &mut Gen, tokens: usize, cols: usize) -> Vec<i32> {
    let mut x = Vec::with_capacity(tokens * cols);
    for t in 0..tokens {
        let sigma = 4096.0 * [0.05, 0.5, 1.0, 3.0, 20.0][t % 5];
        for c in 0..cols {
            let s = if c % 61 == 7 { sigma * 30.0 } else { sigma };
            x.push(g.gauss(s, -(1 << 24), 1 << 24) as i32);
        }
    }
    x
}

fn linear_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "linear");
    // random shapes: (name, rows, cols, tokens, out_frac, bias)
    for (name, rows, cols, tokens, of, bias) in [
        ("rand_16x64", 16, 64, 8, 12, true),
        ("rand_20x136_pad", 20, 136, 8, 8, false),
        ("rand_64x256", 64, 256, 8, 12, true),
        ("rand_8x32_t1", 8, 32, 1, 12, true),
        ("rand_40x96_t3", 40, 96, 3, 10, false),
        ("rand_24x128_t11", 24, 128, 11, 12, true),
        ("rand_32x64_frac0", 32, 64, 8, 0, true),
        ("rand_32x64_frac30", 32, 64, 8, 30, false),
    ] {
        let w = random_weights(
            &mut g,
            rows,
            cols,
            if of == 30 { (-30, -20) } else { (-16, -6) },
        );
        let x = random_act(&mut g, tokens, cols);
        let b: Vec<i32> = (0..rows)
            .map(|_| g.gauss(20000.0, -(1 << 30), 1 << 30) as i32)
            .collect();
        out.push(linear_case(
            name,
            &w,
            &x,
            tokens,
            bias.then_some(&b[..]),
            of,
        )?);
    }
    // the largest accumulator: 1023 groups of m = -128 (e = 15) times q = -16 at
    // scale 256: acc = 1023 * 2^37 < 2^47. Saturates at out_frac 12, e_row 0.
    let (rows, cols) = (8, MAX_COLS);
    let mk = |q: i8, rexp: i8| Weights {
        rows,
        cols,
        groups: (0..rows * cols / GROUP)
            .map(|i| ApotGroup {
                codes: [if (i / (cols / GROUP)) & 1 == 0 { q } else { 15 }; 8],
                s1: 7,
                s2: 7,
            })
            .collect(),
        rexp: vec![rexp; rows],
    };
    let x: Vec<i32> = (0..8 * cols)
        .map(|i| {
            if (i / cols) % 2 == 0 {
                -128 << 15
            } else {
                127 << 15
            }
        })
        .collect();
    out.push(linear_case(
        "max_acc_saturate",
        &mk(-16, 0),
        &x,
        8,
        None,
        12,
    )?);
    let mut w = mk(-16, 0);
    for (r, e) in w.rexp.iter_mut().enumerate() {
        *e = -(20 + 3 * r as i8); // k = 12 - 0 - e_row = 32 .. 53: fits int32
    }
    out.push(linear_case("max_acc_shift", &w, &x, 8, None, 0)?);
    // negative k (left shift): e_row > 12 - out_frac; exact for small sums,
    // saturating for large ones, bias added after
    let mut w = random_weights(&mut g, 16, 64, (1, 20));
    w.rexp[0] = 40;
    w.rexp[1] = 127;
    w.rexp[2] = -128;
    let mut x = random_act(&mut g, 8, 64);
    for v in x.iter_mut().take(64) {
        *v = g.range(-2, 2) as i32; // token 0: tiny inputs
    }
    let b: Vec<i32> = (0..16)
        .map(|i| [i32::MAX, i32::MIN, 0, 12345][i % 4])
        .collect();
    out.push(linear_case("left_shift_saturate", &w, &x, 8, Some(&b), 12)?);
    // all-zero groups: zero activation blocks and zero weight groups; bias only
    let mut w = random_weights(&mut g, 16, 64, (-12, -8));
    for (i, grp) in w.groups.iter_mut().enumerate() {
        if i % 3 == 0 {
            *grp = ApotGroup::default();
        }
    }
    let mut x = random_act(&mut g, 8, 64);
    for (i, v) in x.iter_mut().enumerate() {
        if (i / 8) % 2 == 0 || i / 64 == 7 {
            *v = 0;
        }
    }
    let b: Vec<i32> = (0..16).map(|i| i * 1000 - 8000).collect();
    out.push(linear_case("zero_groups", &w, &x, 8, Some(&b), 12)?);
    // rounding ties of the output shift: one nonzero lane, scale 2 (s1 = s2 = 0),
    // acc = 2 q m, k = 2: y = q m / 2, ties for odd q m (-2.5 -> -2, 2.5 -> 3)
    let rows = 32;
    let w = Weights {
        rows,
        cols: 8,
        groups: (0..rows)
            .map(|r| {
                let mut c = [0i8; 8];
                c[0] = r as i8 - 16;
                ApotGroup {
                    codes: c,
                    s1: 0,
                    s2: 0,
                }
            })
            .collect(),
        rexp: vec![0; rows],
    };
    let x: Vec<i32> = (0..8)
        .flat_map(|t| {
            let mut blk = [0i32; 8];
            blk[0] = [1, -1, 3, -3, 5, -5, 127, -128][t];
            blk
        })
        .collect();
    out.push(linear_case("rounding_ties", &w, &x, 8, None, 10)?);
    Ok(out)
}

// ---------------------------------------------------------------- lm_head

fn lm_head_case(name: &str, emb: &[i16], cols: usize, emb_exp: i32) -> Result<Case> {
    let rows = emb.len() / cols;
    let gpr = cols / GROUP;
    let mut groups = vec![ApotGroup::default(); rows * gpr];
    let mut erow = vec![0i8; rows];
    for r in 0..rows {
        erow[r] = derive_head_row(
            &emb[r * cols..(r + 1) * cols],
            emb_exp,
            &mut groups[r * gpr..(r + 1) * gpr],
        )?;
    }
    let q: Vec<i8> = groups.iter().flat_map(|g| g.codes).collect();
    let s1: Vec<u8> = groups.iter().map(|g| g.s1).collect();
    let s2: Vec<u8> = groups.iter().map(|g| g.s2).collect();
    let mut c = Case::op("lm_head_derive", name);
    c.param("rows", rows)
        .param("cols", cols)
        .param("emb_exp", emb_exp);
    c.input(
        "emb",
        emb,
        &[rows, cols],
        "[row][channel] 10-bit embedding code in int16",
    )
    .bits(10);
    c.output(
        "q",
        &q,
        &[rows, cols],
        "[row][channel] derived 5-bit code (SPEC 2.5)",
    )
    .bits(5);
    c.output("s1", &s1, &[rows, gpr], "[row][group] s1").bits(3);
    c.output("s2", &s2, &[rows, gpr], "[row][group] s2").bits(3);
    c.output("e_row", &erow, &[rows], "[row] e_row = eh + emb_exp");
    Ok(c)
}

/// Squared errors of the 36 scales of the group search for targets `t`
/// (unit 1), per-lane codes rounded half up and clamped — SPEC 2.3 literally.
fn scale_errors(t: &[i64; 8]) -> Vec<i128> {
    let mut v = Vec::with_capacity(36);
    for s1 in 0..8 {
        for s2 in s1..8 {
            let d = (1i64 << s1) + (1i64 << s2);
            let e: i128 = t
                .iter()
                .map(|&x| {
                    let q = (2 * x + d).div_euclid(2 * d).clamp(-16, 15);
                    ((x - q * d) as i128).pow(2)
                })
                .sum();
            v.push(e);
        }
    }
    v
}

fn lm_head_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "lm_head");
    let cols = 256;
    let emb: Vec<i16> = (0..32 * cols)
        .map(|i| {
            let s = [10.0, 40.0, 120.0, 300.0][(i / cols) % 4];
            g.gauss(s, -512, 511) as i16
        })
        .collect();
    out.push(lm_head_case("random", &emb, cols, -11)?);
    // every code value, rows of 64 (16 rows hold -512..=511 once)
    let every: Vec<i16> = (-512i16..=511).collect();
    out.push(lm_head_case("every_code", &every, 64, -11)?);
    // each breakpoint of the row exponent table (M = 1 .. 512)
    let mut emb = Vec::new();
    for m in [
        1i16, 2, 3, 4, 7, 8, 15, 16, 30, 31, 60, 61, 120, 121, 240, 241, 480, 481, 511, -512,
    ] {
        // every other value strictly inside (-|m|, |m|), then m itself once
        let a = m.unsigned_abs() as i64 - 1;
        let mut row: Vec<i16> = (0..64).map(|_| g.range(-a, a) as i16).collect();
        row[g.below(64) as usize] = m;
        emb.extend(row);
    }
    out.push(lm_head_case("row_exponent_breakpoints", &emb, 64, -9)?);
    // all-zero row and rows with all-zero groups
    let mut emb = vec![0i16; 4 * 64];
    for (i, v) in emb.iter_mut().enumerate().skip(64) {
        if (i / 8) % 2 == 1 {
            *v = g.range(-200, 200) as i16;
        }
    }
    out.push(lm_head_case("zero_rows_and_groups", &emb, 64, -11)?);
    // ties of the group search: groups whose least squared error is reached by
    // two or more scales (the smaller scale must win). Row max 100 (eh = -5)
    // sits in lane 0 of group 0.
    let mut emb = Vec::new();
    let mut found = 0;
    let mut row: Vec<i16> = vec![100, 0, 0, 0, 0, 0, 0, 0];
    let mut tries = 0;
    while found < 8 * 7 && tries < 2_000_000 {
        tries += 1;
        let amp = [3i64, 6, 12, 25, 50, 100][g.below(6) as usize];
        let c: [i16; 8] = core::array::from_fn(|_| g.range(-amp, amp) as i16);
        let t: [i64; 8] = core::array::from_fn(|i| (c[i] as i64) << 5);
        let errs = scale_errors(&t);
        let min = *errs.iter().min().expect("36 scales");
        if errs.iter().filter(|&&e| e == min).count() >= 2 {
            row.extend(c);
            found += 1;
            if row.len() == 64 {
                emb.append(&mut row);
                row = vec![100, 0, 0, 0, 0, 0, 0, 0];
            }
        }
    }
    out.push(lm_head_case("search_ties", &emb, 64, -11)?);
    Ok(out)
}

// ---------------------------------------------------------------- RMSNorm

fn rmsnorm_case(name: &str, x: &[i32], gamma: &[i16], gamma_frac: u32, eps: u64) -> Result<Case> {
    let n = gamma.len();
    let tokens = x.len() / n;
    let mut y = vec![0i32; x.len()];
    for t in 0..tokens {
        rmsnorm(
            &x[t * n..(t + 1) * n],
            gamma,
            gamma_frac,
            eps,
            &mut y[t * n..(t + 1) * n],
        )?;
    }
    let mut c = Case::op("rmsnorm", name);
    c.param("n", n)
        .param("tokens", tokens)
        .param("gamma_frac", gamma_frac)
        .param("eps_q40", eps);
    c.input("x", x, &[tokens, n], "[token][channel] int32 Q12");
    c.input("gamma", gamma, &[n], "[channel] int16 Q(gamma_frac)");
    c.output(
        "y",
        &y,
        &[tokens, n],
        "[token][channel] int32 Q12, each token normalized alone (SPEC 5)",
    );
    Ok(c)
}

fn rmsnorm_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "rmsnorm");
    let gam = |g: &mut Gen, n: usize| -> Vec<i16> {
        (0..n)
            .map(|_| g.gauss(4000.0, -30000, 30000) as i16 + 2000)
            .collect()
    };
    let act = |g: &mut Gen, n: usize, t: usize| -> Vec<i32> {
        (0..n * t)
            .map(|i| {
                let s = 4096.0 * [0.01, 0.3, 1.0, 8.0, 60.0, 400.0, 0.001, 2.0][(i / n) % 8];
                let s = if i % n == 62 { s * 50.0 } else { s };
                g.gauss(s, i32::MIN as i64, i32::MAX as i64) as i32
            })
            .collect()
    };
    let gm = gam(&mut g, 256);
    let x = act(&mut g, 256, 8);
    out.push(rmsnorm_case("random_256", &x, &gm, 12, EPS_1E6_Q40)?);
    let gm = gam(&mut g, QWEN_HIDDEN);
    let x = act(&mut g, QWEN_HIDDEN, 8);
    out.push(rmsnorm_case("qwen_896", &x, &gm, 14, EPS_1E6_Q40)?);
    out.push(rmsnorm_case(
        "all_zero",
        &vec![0; 8 * 64],
        &gam(&mut g, 64),
        12,
        EPS_1E6_Q40,
    )?);
    let mut x = vec![0i32; 8 * 64];
    for t in 0..8 {
        x[t * 64 + t] = [1, -1, 2, 7, -100, 4096, 1, -1][t];
    }
    out.push(rmsnorm_case(
        "one_lsb",
        &x,
        &gam(&mut g, 64),
        12,
        EPS_1E6_Q40,
    )?);
    // extremes: i32 rows (largest sum of squares), i16 gammas at frac 0 -> saturation
    let mut x = Vec::new();
    for t in 0..8 {
        for i in 0..64 {
            x.push(match t {
                0 => i32::MAX,
                1 => i32::MIN,
                2 => {
                    if i % 2 == 0 {
                        i32::MAX
                    } else {
                        i32::MIN
                    }
                }
                3 => {
                    if i == 0 {
                        i32::MAX
                    } else {
                        0
                    }
                }
                4 => {
                    if i == 5 {
                        i32::MIN
                    } else {
                        1
                    }
                }
                5 => (i - 32) << 24,
                _ => g.range(i32::MIN as i64, i32::MAX as i64) as i32,
            });
        }
    }
    let gm: Vec<i16> = (0..64)
        .map(|i| [i16::MAX, i16::MIN, 1, -1, 0, 12345][i % 6])
        .collect();
    out.push(rmsnorm_case("extremes_frac0", &x, &gm, 0, EPS_1E6_Q40)?);
    out.push(rmsnorm_case("extremes_frac15", &x, &gm, 15, EPS_1E6_Q40)?);
    let x: Vec<i32> = vec![0, 1, -1, 4096, -4096, i32::MAX, i32::MIN, 12345];
    out.push(rmsnorm_case("n1", &x, &[16384], 14, EPS_1E6_Q40)?);
    let x = act(&mut g, 64, 8);
    out.push(rmsnorm_case(
        "eps_min",
        &x.iter().map(|v| v / 4096).collect::<Vec<_>>(),
        &gam(&mut g, 64),
        12,
        1 << 20,
    )?);
    out.push(rmsnorm_case("eps_max", &x, &gam(&mut g, 64), 12, 1 << 40)?);
    let n = 1 << 16;
    let x = act(&mut g, n, 1);
    out.push(rmsnorm_case(
        "longest",
        &x,
        &gam(&mut g, n),
        13,
        EPS_1E6_Q40,
    )?);
    Ok(out)
}

// ---------------------------------------------------------------- RoPE

fn rope_case(
    name: &str,
    x: &[i16],
    pos: &[u32],
    head_dim: usize,
    theta: u32,
    ctx: usize,
) -> Result<Case> {
    let half = head_dim / 2;
    let mut cos = vec![0i16; ctx * half];
    let mut sin = vec![0i16; ctx * half];
    build_rope_table(theta, head_dim, ctx, &mut cos, &mut sin)?;
    let tokens = pos.len();
    let w = x.len() / tokens;
    let mut y = x.to_vec();
    let (mut cr, mut sr) = (Vec::new(), Vec::new());
    for (t, &p) in pos.iter().enumerate() {
        let p = p as usize;
        let (c, s) = (
            &cos[p * half..(p + 1) * half],
            &sin[p * half..(p + 1) * half],
        );
        rope_apply(&mut y[t * w..(t + 1) * w], head_dim, c, s)?;
        cr.extend_from_slice(c);
        sr.extend_from_slice(s);
    }
    let mut c = Case::op("rope", name);
    c.param("tokens", tokens)
        .param("heads", w / head_dim)
        .param("head_dim", head_dim)
        .param("theta", theta)
        .param("table_positions", ctx);
    c.input(
        "x",
        x,
        &[tokens, w],
        "[token][head * head_dim + dim] int16 (any Q format)",
    );
    c.input("pos", pos, &[tokens], "[token] position");
    c.input(
        "cos",
        &cr,
        &[tokens, half],
        "[token][i] table row of the token's position, Q14 (rom/rope_cos)",
    );
    c.input(
        "sin",
        &sr,
        &[tokens, half],
        "[token][i] table row of the token's position, Q14 (rom/rope_sin)",
    );
    c.output(
        "y",
        &y,
        &[tokens, w],
        "[token][head * head_dim + dim] int16, rotate-half pairs (i, i + head_dim/2) (SPEC 6.2)",
    );
    Ok(c)
}

fn rope_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "rope");
    let w = 14 * QWEN_HEAD_DIM;
    let rnd = |g: &mut Gen, n: usize, a: i64| -> Vec<i16> {
        (0..n).map(|_| g.range(-a, a) as i16).collect()
    };
    let x = rnd(&mut g, 8 * w, 20000);
    out.push(rope_case(
        "first_positions",
        &x,
        &(0..8).collect::<Vec<u32>>(),
        QWEN_HEAD_DIM,
        QWEN_THETA,
        QWEN_CTX,
    )?);
    let x = rnd(&mut g, 8 * w, 20000);
    let last: Vec<u32> = (QWEN_CTX as u32 - 8..QWEN_CTX as u32).collect();
    out.push(rope_case(
        "last_positions",
        &x,
        &last,
        QWEN_HEAD_DIM,
        QWEN_THETA,
        QWEN_CTX,
    )?);
    let x = rnd(&mut g, 8 * w, 23170);
    let pos: Vec<u32> = (0..8).map(|_| g.below(QWEN_CTX as u64) as u32).collect();
    out.push(rope_case(
        "random_positions",
        &x,
        &pos,
        QWEN_HEAD_DIM,
        QWEN_THETA,
        QWEN_CTX,
    )?);
    let x: Vec<i16> = (0..8 * w)
        .map(|i| [i16::MAX, i16::MIN, i16::MAX, i16::MAX, i16::MIN, i16::MIN][(i * 7 + i / 64) % 6])
        .collect();
    let pos: Vec<u32> = vec![1, 2, 3, 100, 500, 777, 1000, 1023];
    out.push(rope_case(
        "saturation",
        &x,
        &pos,
        QWEN_HEAD_DIM,
        QWEN_THETA,
        QWEN_CTX,
    )?);
    // a small head (the tiny model's: 4 heads of 16, theta 1e4)
    let x = rnd(&mut g, 8 * 64, 30000);
    out.push(rope_case(
        "head_dim16_theta1e4",
        &x,
        &[0, 1, 5, 17, 33, 40, 62, 63],
        16,
        10_000,
        64,
    )?);
    Ok(out)
}

// ---------------------------------------------------------------- softmax

fn softmax_case(name: &str, scores: &[i64], len: usize, frac: u32) -> Result<Case> {
    let rows = scores.len() / len;
    let mut p = vec![0u16; scores.len()];
    for r in 0..rows {
        softmax_q15(
            &scores[r * len..(r + 1) * len],
            frac,
            &mut p[r * len..(r + 1) * len],
        )?;
    }
    let mut c = Case::op("softmax", name);
    c.param("rows", rows)
        .param("len", len)
        .param("score_frac", frac);
    c.input(
        "scores",
        scores,
        &[rows, len],
        "[row][j] int64 Q(score_frac)",
    );
    c.output(
        "probs",
        &p,
        &[rows, len],
        "[row][j] uint16 Q15 in [0, 32768] (SPEC 7.2)",
    )
    .bits(16);
    Ok(c)
}

fn softmax_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "softmax");
    // SPEC §7.4 worked example
    out.push(softmax_case(
        "spec_7_4",
        &[524288, 262144, -1048576, 524288, -4718592],
        5,
        19,
    )?);
    for (name, len, frac, sigma) in [
        ("len1", 1usize, 19u32, 4.0f64),
        ("len3", 3, 19, 2.0),
        ("len64", 64, 19, 3.0),
        ("len192_fast_ctx", 192, 24, 4.0),
        ("len1024_long_ctx", 1024, 19, 4.0),
        ("frac0", 64, 0, 3.0),
        ("frac35_max", 64, 35, 3.0),
    ] {
        let s: Vec<i64> = (0..8 * len)
            .map(|i| {
                let sc = sigma * [0.1, 1.0, 4.0, 16.0][(i / len) % 4];
                (g.normal() * sc * (1u64 << frac) as f64).round() as i64
            })
            .collect();
        out.push(softmax_case(name, &s, len, frac)?);
    }
    // ties for the maximum and all-equal rows
    let mut s = Vec::new();
    for r in 0..8 {
        for j in 0..64 {
            s.push(match r {
                0 => 7,
                1 => {
                    if j == 0 || j == 63 {
                        1 << 19
                    } else {
                        0
                    }
                }
                2 => (j as i64 % 4) << 18,
                _ => g.range(-3, 3) << 19,
            });
        }
    }
    out.push(softmax_case("ties", &s, 64, 19)?);
    // extreme scores: one-hot with huge distances (d clamped at 2^40), all MAX
    let mut s = Vec::new();
    for r in 0..4 {
        for j in 0..16 {
            s.push(match r {
                0 => {
                    if j == 5 {
                        i64::MAX / 2
                    } else {
                        i64::MIN / 2
                    }
                }
                1 => i64::MAX,
                2 => {
                    if j % 2 == 0 {
                        i64::MIN
                    } else {
                        i64::MAX
                    }
                }
                _ => {
                    if j == 0 {
                        0
                    } else {
                        -(1i64 << 40) + j as i64
                    }
                }
            });
        }
    }
    out.push(softmax_case("extremes", &s, 16, 19)?);
    // the exp2 cutoff: u = (mx - s) log2(e) in Q8 around 25 * 256 (n = 24 kept, 25 dropped)
    let s: Vec<i64> = (0..256)
        .map(|j| {
            if j == 0 {
                0
            } else {
                -((16.5 + j as f64 * 0.006) * (1 << 19) as f64) as i64
            }
        })
        .collect();
    out.push(softmax_case("exp2_cutoff", &s, 256, 19)?);
    // the contract's longest row: 65536 equal scores (each 2^15/2^16 -> 1) and a random one
    let mut s = vec![5i64; MAX_LEN];
    s.extend((0..MAX_LEN).map(|_| (g.normal() * 3.0 * (1 << 19) as f64) as i64));
    out.push(softmax_case("longest_65536", &s, MAX_LEN, 19)?);
    Ok(out)
}

// ---------------------------------------------------------------- attention

fn attention_case(
    name: &str,
    p: &AttnParams,
    q: &[i16],
    k: &[i16],
    v: &[i16],
    len: usize,
) -> Result<Case> {
    let mut scores = vec![0i64; len];
    let mut probs = vec![0u16; len];
    let mut o = vec![0i32; p.n_heads * p.head_dim];
    attention(p, q, k, v, len, &mut scores, &mut probs, &mut o)?;
    let kvd = p.n_kv_heads * p.head_dim;
    let mut c = Case::op("attention", name);
    c.param("n_heads", p.n_heads)
        .param("n_kv_heads", p.n_kv_heads)
        .param("head_dim", p.head_dim)
        .param("q_frac", p.q_frac)
        .param("k_frac", p.k_frac)
        .param("v_frac", p.v_frac)
        .param("out_frac", p.out_frac)
        .param("len", len);
    c.input(
        "q",
        q,
        &[p.n_heads * p.head_dim],
        "[head * head_dim + dim] int16 Q(q_frac), after RoPE",
    );
    c.input(
        "k_cache",
        &k[..len * kvd],
        &[len, kvd],
        "[position][kv_head * head_dim + dim] int16 Q(k_frac), after RoPE",
    );
    c.input(
        "v_cache",
        &v[..len * kvd],
        &[len, kvd],
        "[position][kv_head * head_dim + dim] int16 Q(v_frac)",
    );
    c.output("out", &o, &[p.n_heads * p.head_dim], "[head * head_dim + dim] int32 Q(out_frac) (SPEC 7.3); head h reads kv head h / (n_heads / n_kv_heads)");
    Ok(c)
}

fn attention_cases(seed: u64) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut g = Gen::new(seed, "attention");
    let qwen = AttnParams {
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        q_frac: 8,
        k_frac: 8,
        v_frac: 10,
        out_frac: 12,
    };
    let rnd = |g: &mut Gen, n: usize, s: f64| -> Vec<i16> {
        (0..n).map(|_| g.gauss(s, -32768, 32767) as i16).collect()
    };
    for (name, len, sq, sk, sv) in [
        ("qwen_first_position", 1usize, 300.0, 1000.0, 1000.0),
        ("qwen_len37", 37, 300.0, 1000.0, 1000.0),
        ("qwen_peaked", 200, 2000.0, 6000.0, 1000.0),
        ("qwen_last_position_1024", QWEN_CTX, 300.0, 1000.0, 1000.0),
    ] {
        let q = rnd(&mut g, 14 * 64, sq);
        let k = rnd(&mut g, len * 128, sk);
        let v = rnd(&mut g, len * 128, sv);
        out.push(attention_case(name, &qwen, &q, &k, &v, len)?);
    }
    let small = AttnParams {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        q_frac: 10,
        k_frac: 9,
        v_frac: 12,
        out_frac: 12,
    };
    let (q, k, v) = (
        rnd(&mut g, 64, 2000.0),
        rnd(&mut g, 20 * 32, 2000.0),
        rnd(&mut g, 20 * 32, 3000.0),
    );
    out.push(attention_case("small_gqa", &small, &q, &k, &v, 20)?);
    let mha = AttnParams {
        n_kv_heads: 4,
        ..small
    };
    let (q, k, v) = (
        rnd(&mut g, 64, 2000.0),
        rnd(&mut g, 9 * 64, 2000.0),
        rnd(&mut g, 9 * 64, 3000.0),
    );
    out.push(attention_case("mha", &mha, &q, &k, &v, 9)?);
    // extremes: full-scale q and k (largest scores), v at the rails
    let ext = AttnParams {
        q_frac: 15,
        k_frac: 15,
        v_frac: 15,
        ..qwen
    };
    let rail = |g: &mut Gen, n: usize| -> Vec<i16> {
        (0..n)
            .map(|_| if g.one_in(2) { i16::MAX } else { i16::MIN })
            .collect()
    };
    let (q, k, v) = (
        rail(&mut g, 896),
        rail(&mut g, 64 * 128),
        rail(&mut g, 64 * 128),
    );
    out.push(attention_case("extremes", &ext, &q, &k, &v, 64)?);
    // output saturation: v_frac 0, out_frac 30 -> a left shift by 15
    let sat = AttnParams {
        v_frac: 0,
        out_frac: 30,
        ..qwen
    };
    let (q, k, v) = (
        rnd(&mut g, 896, 300.0),
        rnd(&mut g, 16 * 128, 1000.0),
        rail(&mut g, 16 * 128),
    );
    out.push(attention_case("out_saturation", &sat, &q, &k, &v, 16)?);
    Ok(out)
}

// ---------------------------------------------------------------- SiLU, SwiGLU, residual, embedding, argmax

fn silu_case(name: &str, x: &[i32]) -> Case {
    let s: Vec<i32> = x.iter().map(|&v| sigmoid_q15(v)).collect();
    let y: Vec<i32> = x.iter().map(|&v| silu_q12(v)).collect();
    let n = x.len();
    let mut c = Case::op("silu", name);
    c.param("n", n);
    c.input("x", x, &[n], "[i] int32 Q12");
    c.output(
        "sigmoid",
        &s,
        &[n],
        "[i] int32 Q15 in [0, 32768] (SPEC 8.1)",
    )
    .bits(17);
    c.output("silu", &y, &[n], "[i] int32 Q12 (SPEC 8.2)");
    c
}

fn silu_cases(seed: u64) -> Result<Vec<Case>> {
    let sweep: Vec<i32> = (-9 * 4096..9 * 4096).collect();
    let mut g = Gen::new(seed, "silu");
    let mut ext = vec![
        i32::MIN,
        i32::MIN + 1,
        -32769,
        -32768,
        -32767,
        -1,
        0,
        1,
        32767,
        32768,
        32769,
        i32::MAX - 1,
        i32::MAX,
    ];
    ext.extend((0..243).map(|_| g.range(i32::MIN as i64, i32::MAX as i64) as i32));
    Ok(vec![
        silu_case("sweep_pm9", &sweep),
        silu_case("extremes", &ext),
    ])
}

fn swiglu_case(name: &str, gate: &[i32], up: &[i32]) -> Result<Case> {
    let mut y = vec![0i32; gate.len()];
    swiglu(gate, up, &mut y)?;
    let n = gate.len();
    let mut c = Case::op("swiglu", name);
    c.param("n", n);
    c.input("gate", gate, &[n], "[i] int32 Q12");
    c.input("up", up, &[n], "[i] int32 Q12");
    c.output(
        "y",
        &y,
        &[n],
        "[i] int32 Q12: sat_i32(round_shift(silu(gate) * up, 12)) (SPEC 8.3)",
    );
    Ok(c)
}

fn swiglu_cases(seed: u64) -> Result<Vec<Case>> {
    let mut g = Gen::new(seed, "swiglu");
    let n = 8 * 768;
    let gate: Vec<i32> = (0..n)
        .map(|_| g.gauss(4096.0 * 3.0, -(1 << 20), 1 << 20) as i32)
        .collect();
    let up: Vec<i32> = (0..n)
        .map(|_| g.gauss(4096.0 * 2.0, -(1 << 22), 1 << 22) as i32)
        .collect();
    let mut out = vec![swiglu_case("random", &gate, &up)?];
    let ex = [
        i32::MIN,
        -1 << 24,
        -32768,
        -1,
        0,
        1,
        32767,
        1 << 24,
        i32::MAX,
    ];
    let (mut ga, mut ua) = (vec![], vec![]);
    for &a in &ex {
        for &b in &ex {
            ga.push(a);
            ua.push(b);
        }
    }
    out.push(swiglu_case("extremes", &ga, &ua)?);
    // ties: up = 2048 halves silu(gate): ties for odd silu
    let ga: Vec<i32> = (0..512).map(|i| i * 37 - 9000).collect();
    let ua: Vec<i32> = (0..512)
        .map(|i| if i % 2 == 0 { 2048 } else { -2048 })
        .collect();
    out.push(swiglu_case("rounding_ties", &ga, &ua)?);
    Ok(out)
}

fn residual_case(name: &str, acc: &[i32], d: &[i32], tokens: usize) -> Result<Case> {
    let mut y = acc.to_vec();
    residual_add(&mut y, d)?;
    let n = acc.len() / tokens;
    let mut c = Case::op("residual_add", name);
    c.param("tokens", tokens).param("channels", n);
    c.input("acc", acc, &[tokens, n], "[token][channel] int32 Q12");
    c.input("delta", d, &[tokens, n], "[token][channel] int32 Q12");
    c.output(
        "y",
        &y,
        &[tokens, n],
        "[token][channel] sat_i32(acc + delta) (SPEC 9.1)",
    );
    Ok(c)
}

fn residual_cases(seed: u64) -> Result<Vec<Case>> {
    let mut g = Gen::new(seed, "residual");
    let a: Vec<i32> = (0..8 * 256)
        .map(|_| g.gauss(4096.0 * 50.0, i32::MIN as i64, i32::MAX as i64) as i32)
        .collect();
    let d: Vec<i32> = (0..8 * 256)
        .map(|_| g.gauss(4096.0 * 5.0, i32::MIN as i64, i32::MAX as i64) as i32)
        .collect();
    let mut out = vec![residual_case("random", &a, &d, 8)?];
    let ex = [
        i32::MIN,
        i32::MIN + 1,
        -1,
        0,
        1,
        i32::MAX - 1,
        i32::MAX,
        1 << 30,
    ];
    let (mut a, mut d) = (vec![], vec![]);
    for &x in &ex {
        for &y in &ex {
            a.push(x);
            d.push(y);
        }
    }
    out.push(residual_case("saturation", &a, &d, 8)?);
    Ok(out)
}

fn embed_case(name: &str, codes: &[i16], emb_exp: i32, bits: u32) -> Result<Case> {
    let mut y = vec![0i32; codes.len()];
    embed_row(codes, emb_exp, &mut y)?;
    let n = codes.len();
    let mut c = Case::op("embed", name);
    c.param("n", n).param("emb_exp", emb_exp);
    c.input(
        "codes",
        codes,
        &[n],
        "[i] embedding code in int16 (10-bit; clamped to [-512, 511])",
    )
    .bits(bits);
    c.output(
        "y",
        &y,
        &[n],
        "[i] int32 Q12: code * 2^(12 + emb_exp), rounding right shift when negative (SPEC 9.2)",
    );
    Ok(c)
}

fn embed_cases(_seed: u64) -> Result<Vec<Case>> {
    let every: Vec<i16> = (-512i16..=511).collect();
    let mut out = Vec::new();
    for e in [-30, -14, -13, -12, -11, -5, 0, 8] {
        out.push(embed_case(
            &format!("every_code_exp{}", e.to_string().replace('-', "m")),
            &every,
            e,
            10,
        )?);
    }
    let clamp: Vec<i16> = vec![i16::MIN, -1000, -513, -512, 511, 512, 1000, i16::MAX];
    out.push(embed_case("clamp", &clamp, -11, 16)?);
    Ok(out)
}

fn argmax_case(name: &str, x: &[i32], n: usize) -> Case {
    let rows = x.len() / n;
    let idx: Vec<u32> = (0..rows)
        .map(|r| argmax_i32(&x[r * n..(r + 1) * n]).unwrap_or(0) as u32)
        .collect();
    let mut c = Case::op("argmax", name);
    c.param("rows", rows).param("n", n);
    c.input("x", x, &[rows, n], "[row][i] int32");
    c.output(
        "idx",
        &idx,
        &[rows],
        "[row] index of the maximum, lowest index on ties (SPEC 10)",
    );
    c
}

fn argmax_cases(seed: u64) -> Result<Vec<Case>> {
    let mut g = Gen::new(seed, "argmax");
    let mut out = Vec::new();
    let x: Vec<i32> = (0..8 * 256)
        .map(|_| g.gauss(4096.0 * 4.0, i32::MIN as i64, i32::MAX as i64) as i32)
        .collect();
    out.push(argmax_case("random", &x, 256));
    let x: Vec<i32> = (0..8 * 64).map(|_| g.range(-3, 3) as i32).collect();
    out.push(argmax_case("many_ties", &x, 64));
    let mut x = Vec::new();
    for r in 0..8 {
        for i in 0..64 {
            x.push(match r {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => 0,
                3 => {
                    if i == 63 {
                        i32::MAX
                    } else {
                        i32::MAX - 1
                    }
                }
                4 => {
                    if i == 0 {
                        i32::MIN + 1
                    } else {
                        i32::MIN
                    }
                }
                5 => {
                    if i == 31 || i == 32 {
                        5
                    } else {
                        -5
                    }
                }
                6 => i / 8,
                _ => -i,
            });
        }
    }
    out.push(argmax_case("edges", &x, 64));
    // a pruned vocabulary row (37984 logits) with the maximum tied at two places
    let n = 37984;
    let mut x: Vec<i32> = (0..2 * n)
        .map(|_| g.gauss(4096.0 * 3.0, -(1 << 28), 1 << 28) as i32)
        .collect();
    let m = *x.iter().max().unwrap_or(&0) + 1;
    x[20000] = m;
    x[30000] = m;
    x[n + n - 1] = m + 7;
    out.push(argmax_case("pruned_vocab_37984", &x, n));
    Ok(out)
}

//! Measures every kernel against an `f64` model of the real-valued function it
//! stands for, and prints a markdown table (quoted in `docs/SPEC.md`).
//!
//! ```text
//! cargo run -p edgedecoding-kernels --release --example measure_errors
//! ```
//!
//! Deterministic: one 64-bit LCG, Gaussian samples by Box-Muller with `libm`.
//! "LSB" is one unit of the kernel's output integer. Runs in a few seconds.

use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::attention::{attention, softmax_q15, AttnParams, LOG2E_Q16};
use edgedecoding_kernels::bfp::{quantize_bfp, quantize_block, BfpBlock};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_kernels::linear::linear;
use edgedecoding_kernels::lm_head::derive_head_row;
use edgedecoding_kernels::quant::{dequant, quantize_row_f32};
use edgedecoding_kernels::residual::residual_add;
use edgedecoding_kernels::rmsnorm::{rmsnorm, EPS_1E6_Q40};
use edgedecoding_kernels::rope::{build_rope_table, rope_apply};
use edgedecoding_kernels::round::{div_round, isqrt_u64, round_shift, shift_round_sat};
use edgedecoding_kernels::silu::{sigmoid_q15, silu_q12, swiglu};
use edgedecoding_kernels::GROUP;
use std::time::Instant;

// ---------------------------------------------------------------- helpers

struct Rng {
    s: u64,
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Rng {
            s: seed,
            spare: None,
        }
    }
    /// 53 good bits of a 64-bit LCG (Knuth's MMIX constants).
    fn next(&mut self) -> u64 {
        self.s = self
            .s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.s >> 11
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform integer in `[lo, hi]`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }
    /// Uniform in `(0, 1]`.
    fn unit(&mut self) -> f64 {
        (self.next() + 1) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal by Box-Muller (libm `log`, `sqrt`, `cos`, `sin`).
    fn gauss(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1 = self.unit();
        let u2 = self.unit();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let a = 2.0 * core::f64::consts::PI * u2;
        self.spare = Some(r * libm::sin(a));
        r * libm::cos(a)
    }
}

/// One line of the table.
struct Line {
    op: &'static str,
    cases: u64,
    abs_real: String,
    abs_lsb: String,
    rel: String,
    cond: String,
}

fn e3(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.3e}")
    }
}

fn f3(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

fn q12(v: f64) -> i32 {
    libm::round(v * 4096.0).clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

fn db(signal: f64, noise: f64) -> f64 {
    10.0 * libm::log10(signal / noise)
}

// ---------------------------------------------------------------- §1

fn m_round(out: &mut Vec<Line>) {
    // round_shift: exhaustive i16 x s in 0..=17.
    let (mut cases, mut mism, mut ties, mut tie_down) = (0u64, 0u64, 0u64, 0u64);
    let mut worst = 0.0f64;
    for x in i16::MIN..=i16::MAX {
        for s in 0..=17u32 {
            let x = x as i64;
            let r = round_shift(x, s);
            let d = 1i128 << s;
            let exact = (2 * x as i128 + d).div_euclid(2 * d) as i64;
            mism += (r != exact) as u64;
            let real = x as f64 / d as f64; // exact in f64
            let e = (r as f64 - real).abs();
            worst = worst.max(e);
            if s > 0 && (x & ((1 << s) - 1)) == 1 << (s - 1) {
                ties += 1;
                tie_down += ((r as f64) < real) as u64;
            }
            cases += 1;
        }
    }
    out.push(Line {
        op: "round_shift",
        cases,
        abs_real: f3(worst),
        abs_lsb: f3(worst),
        rel: "—".into(),
        cond: format!(
            "exhaustive x ∈ i16, s ∈ [0,17], vs x/2^s; {mism} mismatches vs floor((2x+2^s)/2^(s+1)); \
             {ties} exact ties, {tie_down} rounded down"
        ),
    });

    // shift_round_sat: random i64 x k ∈ [-70, 70] against an i128 oracle.
    let mut rng = Rng::new(1);
    let (mut cases, mut mism) = (0u64, 0u64);
    for n in 0..2_000_000u64 {
        let bits = rng.below(64) as u32;
        let mut x = (rng.next() << 11 | rng.next()) as i64;
        x >>= 63 - bits.min(63);
        if n % 1000 == 0 {
            x = [i64::MIN, i64::MAX, 0, -1, 1][(n / 1000 % 5) as usize];
        }
        let k = rng.int(-70, 70) as i32;
        let want: i128 = if k >= 0 {
            if k >= 100 {
                0
            } else {
                let d = 1i128 << k;
                (2 * x as i128 + d).div_euclid(2 * d)
            }
        } else {
            let l = -k;
            if x == 0 {
                0
            } else if l >= 64 {
                if x > 0 {
                    i64::MAX as i128
                } else {
                    i64::MIN as i128
                }
            } else {
                ((x as i128) << l).clamp(i64::MIN as i128, i64::MAX as i128)
            }
        };
        mism += (shift_round_sat(x, k) as i128 != want) as u64;
        cases += 1;
    }
    out.push(Line {
        op: "shift_round_sat",
        cases,
        abs_real: "0".into(),
        abs_lsb: "0".into(),
        rel: "—".into(),
        cond: format!("random i64 (all magnitudes, extremes), k ∈ [-70,70]; {mism} mismatches vs exact rounding / saturation in i128"),
    });

    // div_round vs exact rational.
    let (mut cases, mut mism) = (0u64, 0u64);
    let mut worst = 0.0f64;
    for _ in 0..2_000_000u64 {
        let a = rng.int(-(1 << 40), 1 << 40);
        let bb = rng.int(0, 20);
        let b = rng.int(1, 1 << bb);
        let r = div_round(a, b);
        let want = (2 * a as i128 + b as i128).div_euclid(2 * b as i128) as i64;
        mism += (r != want) as u64;
        // |r - a/b| in exact rationals: |r*b - a| / b
        worst = worst.max((r as i128 * b as i128 - a as i128).unsigned_abs() as f64 / b as f64);
        cases += 1;
    }
    out.push(Line {
        op: "div_round",
        cases,
        abs_real: f3(worst),
        abs_lsb: f3(worst),
        rel: "—".into(),
        cond: format!("|a| ≤ 2^40, b ∈ [1, 2^20]; vs a/b; {mism} mismatches vs floor((2a+b)/2b)"),
    });

    // isqrt: exhaustive below 2^22, random u64, every power of two ± 1.
    let (mut cases, mut mism) = (0u64, 0u64);
    let check = |n: u64| -> bool {
        let r = isqrt_u64(n) as u128;
        r * r <= n as u128 && (r + 1) * (r + 1) > n as u128
    };
    for n in 0..(1u64 << 22) {
        mism += !check(n) as u64;
        cases += 1;
    }
    for _ in 0..1_000_000 {
        let n = (rng.next() << 11) ^ rng.next();
        let n = n >> rng.below(64);
        mism += !check(n) as u64;
        cases += 1;
    }
    for p in 0..64 {
        for d in [-1i128, 0, 1] {
            let n = ((1i128 << p) + d).clamp(0, u64::MAX as i128) as u64;
            mism += !check(n) as u64;
            cases += 1;
        }
    }
    out.push(Line {
        op: "isqrt_u64",
        cases,
        abs_real: "0".into(),
        abs_lsb: "0".into(),
        rel: "—".into(),
        cond: format!("exhaustive n < 2^22, random u64, 2^p±1; {mism} results ≠ floor(sqrt(n))"),
    });
}

// ---------------------------------------------------------------- §3

fn m_bfp(out: &mut Vec<Line>) {
    let mut rng = Rng::new(2);
    let (mut cases, mut sat) = (0u64, 0u64);
    let (mut worst_step, mut worst_rel, mut worst_real) = (0.0f64, 0.0f64, 0.0f64);
    let mut worst_real_small = 0.0f64;
    for n in 0..1_000_000u64 {
        // Q12 inputs: Gaussian with a random scale 2^-12 .. 2^10 (real), one
        // outlier lane in a quarter of the blocks.
        let scale = libm::ldexp(1.0, rng.int(-12, 4) as i32);
        let mut x: [i32; GROUP] = core::array::from_fn(|_| q12(rng.gauss() * scale));
        if n % 4 == 0 {
            let l = rng.below(8) as usize;
            x[l] = q12(rng.gauss() * scale * 20.0);
        }
        if n % 1000 == 0 {
            x = [[0; 8], [127; 8], [128; 8], [-128; 8], [-129; 8], [255; 8]]
                [(n / 1000 % 6) as usize];
        }
        let b = quantize_block(&x);
        cases += 1;
        let big = x.iter().map(|v| (*v as i64).abs()).max().unwrap();
        if b.e == 15
            && x.iter()
                .any(|&v| !(-128 * (1 << 15) - (1 << 14)..127 * (1 << 15) + (1 << 14)).contains(&v))
        {
            sat += 1;
            continue;
        }
        for i in 0..GROUP {
            let err = (((b.m[i] as i64) << b.e) - x[i] as i64).abs() as f64;
            worst_step = worst_step.max(err / libm::ldexp(1.0, b.e as i32));
            worst_real = worst_real.max(err / 4096.0);
            if big < 1 << 14 {
                worst_real_small = worst_real_small.max(err / 4096.0);
            }
            if big > 0 {
                worst_rel = worst_rel.max(err / big as f64);
            }
        }
    }
    out.push(Line {
        op: "quantize_block (BFP)",
        cases,
        abs_real: format!("{} ({} if max|x| < 4.0)", e3(worst_real), e3(worst_real_small)),
        abs_lsb: format!("{} × 2^e", f3(worst_step)),
        rel: format!("{} of block max|x|", e3(worst_rel)),
        cond: format!(
            "blocks of 8 Q12 values, Gaussian × 2^[-12,4] real, 1/4 with a 20× outlier, edge blocks; \
             {sat} saturated blocks (|x| ≥ 127.5·2^15) excluded"
        ),
    });
}

// ---------------------------------------------------------------- §2

/// Row statistics of a quantizer: (sum w^2, sum err^2, max |err| / rowmax,
/// sum (err / rowmax)^2, count, max |err| / 2^e_row).
#[derive(Default)]
struct QStats {
    sw2: f64,
    se2: f64,
    max_rel: f64,
    srel2: f64,
    n: u64,
    max_unit: f64,
}

impl QStats {
    fn add_row(&mut self, w: &[f64], deq: &[f64], e_row: i32) {
        let rowmax = w.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (a, b) in w.iter().zip(deq) {
            let e = (a - b).abs();
            self.sw2 += a * a;
            self.se2 += e * e;
            if rowmax > 0.0 {
                self.max_rel = self.max_rel.max(e / rowmax);
                self.srel2 += (e / rowmax) * (e / rowmax);
            }
            self.max_unit = self.max_unit.max(e / libm::ldexp(1.0, e_row));
            self.n += 1;
        }
    }
    fn line(&self, op: &'static str, cond: String) -> Line {
        Line {
            op,
            cases: self.n,
            abs_real: "—".into(),
            abs_lsb: format!("{} × 2^e_row", f3(self.max_unit)),
            rel: format!(
                "max {} / RMS {} of row max; SNR {:.2} dB",
                e3(self.max_rel),
                e3(libm::sqrt(self.srel2 / self.n as f64)),
                db(self.sw2, self.se2)
            ),
            cond,
        }
    }
}

fn m_apot(out: &mut Vec<Line>) {
    let mut rng = Rng::new(3);
    const C: usize = 896;
    for (name, outl) in [
        ("quantize_row_f32 (APoT)", false),
        ("quantize_row_f32 (APoT)", true),
    ] {
        let mut st = QStats::default();
        for _ in 0..2000 {
            let sigma = libm::ldexp(1.0, rng.int(-8, 0) as i32) * 0.05;
            let w: Vec<f32> = (0..C)
                .map(|_| {
                    let mut v = rng.gauss() * sigma;
                    if outl && rng.below(200) == 0 {
                        v *= 10.0;
                    }
                    v as f32
                })
                .collect();
            let mut gs = vec![ApotGroup::default(); C / GROUP];
            let e = quantize_row_f32(&w, &mut gs);
            let wf: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let deq: Vec<f64> = (0..C)
                .map(|c| {
                    let g = &gs[c / GROUP];
                    dequant(g.codes[c % GROUP], g.s1, g.s2, e)
                })
                .collect();
            st.add_row(&wf, &deq, e as i32);
        }
        out.push(st.line(
            name,
            if outl {
                "2000 rows × 896 f32, N(0, σ²) with 0.5 % of weights ×10 (outliers)".into()
            } else {
                "2000 rows × 896 f32, N(0, σ²), σ = 0.05·2^[-8,0]".into()
            },
        ));
    }
}

fn m_lm_head(out: &mut Vec<Line>) {
    let mut rng = Rng::new(4);
    const C: usize = 896;
    let emb_exp = -11; // 511 · 2^-11 = 0.2495, the real embedding's max is 0.248
    let mut st = QStats::default();
    let mut rows = 0;
    for r in 0..4000 {
        // real embedding: N(0, 0.02²) with rare large entries, 10-bit codes
        let mut row: Vec<i16> = (0..C)
            .map(|_| {
                let mut v = rng.gauss() * 0.02;
                if rng.below(1000) == 0 {
                    v *= 8.0;
                }
                libm::round(libm::ldexp(v, -emb_exp)).clamp(-512.0, 511.0) as i16
            })
            .collect();
        if r < 2 {
            // every code value once (two rows of 512)
            for (i, v) in row.iter_mut().enumerate().take(512) {
                *v = (i as i32 - 512 + 512 * r) as i16;
            }
        }
        let mut gs = vec![ApotGroup::default(); C / GROUP];
        let e_row = derive_head_row(&row, emb_exp, &mut gs).unwrap();
        let w: Vec<f64> = row
            .iter()
            .map(|&c| libm::ldexp(c as f64, emb_exp))
            .collect();
        let deq: Vec<f64> = (0..C)
            .map(|c| {
                let g = &gs[c / GROUP];
                dequant(g.codes[c % GROUP], g.s1, g.s2, e_row)
            })
            .collect();
        st.add_row(&w, &deq, e_row as i32);
        rows += 1;
    }
    out.push(st.line(
        "lm_head derive_head_row",
        format!(
            "{rows} rows × 896 10-bit codes, emb_exp = -11, N(0, 0.02²) + 0.1 % ×8, clipped; \
             2 rows hold every code; vs code·2^emb_exp"
        ),
    ));
}

// ---------------------------------------------------------------- §4

struct Packed {
    codes: Vec<u8>,
    exps: Vec<u8>,
    row_exps: Vec<i8>,
    groups: Vec<ApotGroup>,
    w: Vec<f32>,
}

fn make_matrix(rng: &mut Rng, rows: usize, cols: usize, sigma: f64) -> Packed {
    let mut p = Packed {
        codes: vec![0; packed_codes_len(rows, cols)],
        exps: vec![0; packed_exps_len(rows, cols)],
        row_exps: vec![0; rows],
        groups: vec![ApotGroup::default(); rows * cols / GROUP],
        w: vec![0.0; rows * cols],
    };
    for r in 0..rows {
        for c in 0..cols {
            let mut v = rng.gauss() * sigma;
            if rng.below(500) == 0 {
                v *= 6.0;
            }
            p.w[r * cols + c] = v as f32;
        }
        let g0 = r * cols / GROUP;
        p.row_exps[r] = quantize_row_f32(
            &p.w[r * cols..(r + 1) * cols],
            &mut p.groups[g0..g0 + cols / GROUP],
        );
        for g in 0..cols / GROUP {
            pack_group(&mut p.codes, &mut p.exps, g0 + g, &p.groups[g0 + g]).unwrap();
        }
    }
    p
}

fn m_linear(out: &mut Vec<Line>) {
    let mut rng = Rng::new(5);
    // (name, rows, cols, weight sigma, input sigma)
    let shapes = [
        (256usize, 896usize, 0.03f64, 1.0f64),
        (256, 896, 0.01, 4.0),
        (128, 4864, 0.02, 0.5),
        (256, 896, 0.05, 0.25),
    ];
    let tokens = 64;
    let mut n = 0u64;
    let (mut wa, mut wb, mut wc) = (0.0f64, 0.0f64, 0.0f64);
    let (mut sy2, mut sea2) = (0.0f64, 0.0f64);
    let mut worst_rel_a = 0.0f64;
    for (si, &(rows, cols, ws, xs)) in shapes.iter().enumerate() {
        let p = make_matrix(&mut rng, rows, cols, ws);
        let m = ApotMatrix::new(rows, cols, &p.codes, &p.exps, &p.row_exps).unwrap();
        // real inputs: Gaussian, 4 outlier channels ×30 (Qwen-like)
        let outl: Vec<usize> = (0..4).map(|_| rng.below(cols as u64) as usize).collect();
        let xr: Vec<f64> = (0..tokens * cols)
            .map(|i| {
                let v = rng.gauss() * xs;
                if outl.contains(&(i % cols)) {
                    v * 30.0
                } else {
                    v
                }
            })
            .collect();
        let xq: Vec<i32> = xr.iter().map(|&v| q12(v)).collect();
        let mut blocks = vec![BfpBlock::default(); tokens * cols / GROUP];
        quantize_bfp(&xq, &mut blocks).unwrap();
        let bias: Option<Vec<i32>> =
            (si % 2 == 0).then(|| (0..rows).map(|_| q12(rng.gauss() * 0.5)).collect());
        let mut y = vec![0i32; tokens * rows];
        linear(&m, &blocks, bias.as_deref(), 12, &mut y).unwrap();
        // per-set RMS of the real output, for the relative column
        let mut ys = vec![0.0f64; tokens * rows];
        for t in 0..tokens {
            for r in 0..rows {
                let b = bias.as_ref().map_or(0.0, |b| b[r] as f64 / 4096.0);
                let mut ya = 0.0f64; // original real operands
                let mut yc = 0.0f64; // Q12 inputs (before BFP) × dequantized weights
                let mut acc: i128 = 0; // dequantized operands, exact
                for c in 0..cols {
                    let g = &p.groups[(r * cols + c) / GROUP];
                    ya += xr[t * cols + c] * p.w[r * cols + c] as f64;
                    let wq = dequant(g.codes[c % GROUP], g.s1, g.s2, p.row_exps[r]);
                    yc += xq[t * cols + c] as f64 / 4096.0 * wq;
                    let blk = &blocks[(t * cols + c) / GROUP];
                    acc += ((blk.m[c % GROUP] as i128) << blk.e)
                        * (g.codes[c % GROUP] as i128 * g.scale() as i128);
                }
                ya += b;
                yc += b;
                // acc is in units of 2^(e_row - 12): exact in f64 (|acc| < 2^47)
                let yb = libm::ldexp(acc as f64, p.row_exps[r] as i32 - 12) + b;
                let got = y[t * rows + r] as f64 / 4096.0;
                wa = wa.max((got - ya).abs());
                wb = wb.max((got - yb).abs());
                wc = wc.max((got - yc).abs());
                sy2 += ya * ya;
                sea2 += (got - ya) * (got - ya);
                ys[t * rows + r] = ya;
                n += 1;
            }
        }
        let rms = libm::sqrt(ys.iter().map(|v| v * v).sum::<f64>() / ys.len() as f64);
        for t in 0..tokens {
            for r in 0..rows {
                let got = y[t * rows + r] as f64 / 4096.0;
                worst_rel_a = worst_rel_a.max((got - ys[t * rows + r]).abs() / rms);
            }
        }
    }
    let cond = "4 matrices (256×896 ×3, 128×4864), weights N(0,σ²) + 0.2 % ×6 quantized by \
                quantize_row_f32, 64 tokens each, inputs N(0,σ²) with 4 channels ×30, Q12 → BFP, \
                bias on 2 of 4, out_frac 12";
    out.push(Line {
        op: "linear vs real operands",
        cases: n,
        abs_real: e3(wa),
        abs_lsb: f3(wa * 4096.0),
        rel: format!("{} of RMS(y); SNR {:.2} dB", e3(worst_rel_a), db(sy2, sea2)),
        cond: format!(
            "{cond}; reference Σ x·w in f64 with the original f64 inputs and f32 weights"
        ),
    });
    out.push(Line {
        op: "linear vs Q12 x · dequant w",
        cases: n,
        abs_real: e3(wc),
        abs_lsb: f3(wc * 4096.0),
        rel: "—".into(),
        cond: "same; reference uses the Q12 inputs before BFP and the dequantized weights (BFP + output rounding only)".into(),
    });
    out.push(Line {
        op: "linear vs dequantized operands",
        cases: n,
        abs_real: e3(wb),
        abs_lsb: f3(wb * 4096.0),
        rel: "—".into(),
        cond:
            "same; reference Σ (m·2^e)(q·(2^s1+2^s2)·2^e_row) exact in i128 (output rounding only)"
                .into(),
    });
}

// ---------------------------------------------------------------- §5

fn m_rmsnorm(out: &mut Vec<Line>) {
    let mut rng = Rng::new(6);
    let n = 896;
    let mut cases = 0u64;
    let (mut worst_rel, mut worst_small, mut worst_abs) = (0.0f64, 0.0f64, 0.0f64);
    let mut sat = 0u64;
    for v in 0..3000 {
        let scale = libm::ldexp(1.0, rng.int(-10, 8) as i32);
        let outl: Vec<usize> = (0..3).map(|_| rng.below(n as u64) as usize).collect();
        let mut x: Vec<i32> = (0..n)
            .map(|i| {
                let f = if outl.contains(&i) { 50.0 } else { 1.0 };
                q12(rng.gauss() * scale * f)
            })
            .collect();
        match v % 50 {
            0 => x.fill(0),
            1 => {
                x.fill(0);
                x[7] = 1;
            }
            2 => x.fill(i32::MAX),
            3 => x.fill(i32::MIN),
            4 => {
                x.fill(0);
                x[3] = -1;
                x[4] = 1;
            }
            _ => {}
        }
        let gf = [8u32, 10, 12, 14, 15][rng.below(5) as usize];
        let gamma: Vec<i16> = (0..n)
            .map(|_| (rng.gauss() * 4000.0 + 6000.0).clamp(-32768.0, 32767.0) as i16)
            .collect();
        let mut y = vec![0i32; n];
        rmsnorm(&x, &gamma, gf, EPS_1E6_Q40, &mut y).unwrap();
        let ms = x.iter().map(|&v| (v as f64 / 4096.0).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / libm::sqrt(ms + 1e-6);
        for i in 0..n {
            let want = x[i] as f64 / 4096.0 * inv * gamma[i] as f64 / libm::ldexp(1.0, gf as i32);
            let wl = want * 4096.0;
            if wl.abs() >= 2147483647.0 {
                sat += 1;
                continue;
            }
            let err = (y[i] as f64 - wl).abs();
            worst_abs = worst_abs.max(err);
            if want.abs() >= 1.0 {
                // output rounding (0.5 LSB) removed: the error of the scale factor
                worst_rel = worst_rel.max((err - 0.5).max(0.0) / wl.abs());
            } else {
                worst_small = worst_small.max(err);
            }
            cases += 1;
        }
    }
    out.push(Line {
        op: "rmsnorm",
        cases,
        abs_real: e3(worst_small / 4096.0),
        abs_lsb: format!("{} (|y| < 1); {} overall", f3(worst_small), f3(worst_abs)),
        rel: format!("{} (|y| ≥ 1, after removing the 0.5 LSB output rounding)", e3(worst_rel)),
        cond: format!(
            "3000 vectors × 896, Q12 x = N(0,1)·2^[-10,8] with 3 channels ×50, all-0/one-LSB/±i32 \
             extremes, i16 γ ~ N(6000, 4000²), γ_frac ∈ {{8,10,12,14,15}}, eps 1e-6 vs 1099512·2^-40; \
             {sat} outputs beyond i32 excluded"
        ),
    });
}

// ---------------------------------------------------------------- §6

fn m_rope(out: &mut Vec<Line>) {
    let mut rng = Rng::new(7);
    const P: usize = 1024;
    const H: usize = 32;
    let theta = 1_000_000u32;
    let mut cos = vec![0i16; P * H];
    let mut sin = vec![0i16; P * H];
    build_rope_table(theta, 64, P, &mut cos, &mut sin).unwrap();
    let mut wt = 0.0f64;
    for p in 0..P {
        for i in 0..H {
            let a = p as f64 * libm::pow(theta as f64, -(2.0 * i as f64) / 64.0);
            wt = wt.max((cos[p * H + i] as f64 - libm::cos(a) * 16384.0).abs());
            wt = wt.max((sin[p * H + i] as f64 - libm::sin(a) * 16384.0).abs());
        }
    }
    out.push(Line {
        op: "build_rope_table",
        cases: (2 * P * H) as u64,
        abs_real: e3(wt / 16384.0),
        abs_lsb: f3(wt),
        rel: "—".into(),
        cond: "theta 1e6, head_dim 64, positions 0..1024, Q14 entries vs cos/sin".into(),
    });
    let mut worst = 0.0f64;
    let mut cases = 0u64;
    let mut x = vec![0i16; 14 * 64];
    for p in 0..P {
        for _rep in 0..2 {
            for v in x.iter_mut() {
                *v = rng.int(-23170, 23170) as i16;
            }
            let orig = x.clone();
            rope_apply(
                &mut x,
                64,
                &cos[p * H..(p + 1) * H],
                &sin[p * H..(p + 1) * H],
            )
            .unwrap();
            for h in 0..14 {
                for i in 0..H {
                    let a = orig[h * 64 + i] as f64;
                    let b = orig[h * 64 + i + H] as f64;
                    let ang = p as f64 * libm::pow(theta as f64, -(2.0 * i as f64) / 64.0);
                    let (c, s) = (libm::cos(ang), libm::sin(ang));
                    worst = worst.max((x[h * 64 + i] as f64 - (a * c - b * s)).abs());
                    worst = worst.max((x[h * 64 + i + H] as f64 - (b * c + a * s)).abs());
                    cases += 2;
                }
            }
        }
    }
    out.push(Line {
        op: "rope_apply",
        cases,
        abs_real: "—".into(),
        abs_lsb: f3(worst),
        rel: "—".into(),
        cond: "14 heads × 64, every position 0..1024 (×2), x uniform in ±23170 (no saturation), \
               vs exact rotation by p·theta^(-2i/64) in f64"
            .into(),
    });
}

// ---------------------------------------------------------------- §7

fn softmax_f64(s: &[i64], frac: u32) -> Vec<f64> {
    let sc = libm::ldexp(1.0, -(frac as i32));
    let mx = *s.iter().max().unwrap();
    let e: Vec<f64> = s
        .iter()
        .map(|&v| libm::exp(-((mx as i128 - v as i128) as f64) * sc))
        .collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

fn m_softmax(out: &mut Vec<Line>) {
    let mut rng = Rng::new(8);
    let (mut cases, mut worst, mut worst_rel, mut worst_sum) = (0u64, 0.0f64, 0.0f64, 0i64);
    let mut worst_sum_rel = 0.0f64;
    let mut rows = 0;
    let mut s = vec![0i64; 4096];
    let mut p = vec![0u16; 4096];
    for case in 0..3000 {
        let len = [1usize, 2, 3, 8, 64, 192, 1024, 4096][case % 8];
        let frac = [0u32, 8, 19, 24, 30, 35][rng.below(6) as usize];
        let std = [0.1f64, 1.0, 4.0, 16.0][rng.below(4) as usize];
        for v in s[..len].iter_mut() {
            *v = libm::round(libm::ldexp(rng.gauss() * std, frac as i32)) as i64;
        }
        match case % 97 {
            0 => s[..len].fill(3),
            1 => {
                s[..len].fill(i64::MIN);
                s[len / 2] = i64::MAX;
            }
            2 => {
                s[..len].fill(0);
                s[0] = 1 << frac;
                s[len - 1] = 1 << frac;
            }
            _ => {}
        }
        softmax_q15(&s[..len], frac, &mut p[..len]).unwrap();
        let f = softmax_f64(&s[..len], frac);
        let mut total = 0i64;
        for j in 0..len {
            let got = p[j] as f64 / 32768.0;
            let e = (got - f[j]).abs();
            worst = worst.max(e);
            if f[j] >= 1.0 / 64.0 {
                worst_rel = worst_rel.max(e / f[j]);
            }
            total += p[j] as i64;
            cases += 1;
        }
        worst_sum = worst_sum.max((total - 32768).abs());
        worst_sum_rel = worst_sum_rel.max((total - 32768).abs() as f64 / len as f64);
        rows += 1;
    }
    // the longest row, all equal
    let long = vec![5i64; 65536];
    let mut pl = vec![0u16; 65536];
    softmax_q15(&long, 0, &mut pl).unwrap();
    for &v in &pl {
        worst = worst.max((v as f64 / 32768.0 - 1.0 / 65536.0).abs());
        cases += 1;
    }
    out.push(Line {
        op: "softmax_q15",
        cases,
        abs_real: e3(worst),
        abs_lsb: f3(worst * 32768.0),
        rel: format!("{} (p ≥ 1/64)", e3(worst_rel)),
        cond: format!(
            "{rows} rows, len ∈ {{1,2,3,8,64,192,1024,4096}} + one row of 65536 equal scores, \
             score_frac ∈ {{0,8,19,24,30,35}}, scores N(0,σ²), σ ∈ {{0.1,1,4,16}}, i64 extremes, ties; \
             |Σp − 2^15| ≤ {worst_sum} LSB (≤ {worst_sum_rel:.3} LSB per entry)"
        ),
    });
}

/// Adversarial rows: one maximum and `len - 1` scores at the distance where the
/// true weight is just below (or at) half an `e_j` unit, so every small term
/// rounds the same way and the row sum `S` is off by up to `(len - 1) / 2`.
fn m_softmax_adversarial(out: &mut Vec<Line>) {
    let frac = 24u32;
    let mut worst = 0.0f64;
    let mut cases = 0u64;
    let mut detail = String::new();
    for len in [2usize, 192, 1024, 4096, 65536] {
        let mut wl = 0.0f64;
        // u = 4096: e = round_shift(32768, 16) = 1, true ≈ 0.5
        // u = 4097: e = round_shift(32679, 16) = 0, true ≈ 0.4986
        for u_target in [4096i64, 4097] {
            // smallest d with round_shift(d * LOG2E_Q16, 8 + frac) == u_target
            let (mut lo, mut hi) = (0i64, 1i64 << 40);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if round_shift(mid * LOG2E_Q16, 8 + frac) >= u_target {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let d = lo;
            assert_eq!(round_shift(d * LOG2E_Q16, 8 + frac), u_target);
            let mut s = vec![-d; len];
            s[0] = 0;
            let mut p = vec![0u16; len];
            softmax_q15(&s, frac, &mut p).unwrap();
            let f = softmax_f64(&s, frac);
            for j in 0..len {
                let e = (p[j] as f64 / 32768.0 - f[j]).abs();
                wl = wl.max(e);
                cases += 1;
            }
        }
        worst = worst.max(wl);
        detail.push_str(&format!("len {len}: {}; ", e3(wl)));
    }
    out.push(Line {
        op: "softmax_q15 (adversarial)",
        cases,
        abs_real: e3(worst),
        abs_lsb: f3(worst * 32768.0),
        rel: "—".into(),
        cond: format!(
            "one max + (len−1) scores whose true e_j sits at the 0.5-unit rounding edge (all round the same way); \
             max abs error per len: {detail}bound ≈ (len−1)·2^-16 / (1 + (len−1)·2^-16)"
        ),
    });
}

fn m_attention(out: &mut Vec<Line>) {
    let mut rng = Rng::new(9);
    let prm = AttnParams {
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        q_frac: 8,
        k_frac: 8,
        v_frac: 10,
        out_frac: 12,
    };
    let kv_dim = 128;
    let (mut cases, mut worst_rel, mut worst_lsb) = (0u64, 0.0f64, 0.0f64);
    let mut scores = vec![0i64; 1024];
    let mut probs = vec![0u16; 1024];
    let mut outv = vec![0i32; 14 * 64];
    for case in 0..240 {
        let len = if case < 4 {
            [1, 2, 1024, 192][case]
        } else {
            rng.int(1, 1024) as usize
        };
        let (qs, ks) = [(0.3f64, 1.0f64), (3.0, 8.0), (1.0, 4.0), (10.0, 30.0)][case % 4];
        let to_i16 =
            |v: f64, f: u32| libm::round(libm::ldexp(v, f as i32)).clamp(-32768.0, 32767.0) as i16;
        let q: Vec<i16> = (0..14 * 64).map(|_| to_i16(rng.gauss() * qs, 8)).collect();
        let k: Vec<i16> = (0..len * kv_dim)
            .map(|_| to_i16(rng.gauss() * ks, 8))
            .collect();
        let v: Vec<i16> = (0..len * kv_dim)
            .map(|_| {
                let f = if rng.below(100) == 0 { 16.0 } else { 1.0 };
                to_i16(rng.gauss() * f, 10)
            })
            .collect();
        attention(&prm, &q, &k, &v, len, &mut scores, &mut probs, &mut outv).unwrap();
        let vmax = v.iter().map(|&x| (x as f64).abs()).fold(0.0, f64::max) / 1024.0;
        for h in 0..14 {
            let kh = h / 7;
            let sc: Vec<f64> = (0..len)
                .map(|j| {
                    (0..64)
                        .map(|d| q[h * 64 + d] as f64 * k[j * kv_dim + kh * 64 + d] as f64)
                        .sum::<f64>()
                        / 65536.0
                        / 8.0
                })
                .collect();
            let mx = sc.iter().copied().fold(f64::MIN, f64::max);
            let w: Vec<f64> = sc.iter().map(|&x| libm::exp(x - mx)).collect();
            let sum: f64 = w.iter().sum();
            for d in 0..64 {
                let o: f64 = (0..len)
                    .map(|j| w[j] / sum * v[j * kv_dim + kh * 64 + d] as f64 / 1024.0)
                    .sum();
                let got = outv[h * 64 + d] as f64 / 4096.0;
                worst_rel = worst_rel.max((got - o).abs() / vmax);
                worst_lsb = worst_lsb.max((got - o).abs() * 4096.0);
                cases += 1;
            }
        }
    }
    out.push(Line {
        op: "attention",
        cases,
        abs_real: e3(worst_lsb / 4096.0),
        abs_lsb: f3(worst_lsb),
        rel: format!("{} of max|v|", e3(worst_rel)),
        cond:
            "14/2 heads × 64 (GQA), Q8 q,k, Q10 v, Q12 out, len ∈ [1,1024] (240 cases), real q,k \
               N(0,σ²) with (σq,σk) ∈ {(0.3,1),(3,8),(1,4),(10,30)}, v N(0,1) with 1 % ×16; \
               vs f64 attention on the same integer q, k, v"
                .into(),
    });
}

// ---------------------------------------------------------------- §8

fn m_silu(out: &mut Vec<Line>) {
    let (mut ws_in, mut ws_all, mut wv_in, mut wv_all) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut x_s, mut x_v) = (0i32, 0i32);
    let mut n = 0u64;
    for x in -65536..65536i32 {
        let xf = x as f64 / 4096.0;
        let sig = 1.0 / (1.0 + libm::exp(-xf));
        let es = (sigmoid_q15(x) as f64 / 32768.0 - sig).abs();
        let ev = (silu_q12(x) as f64 / 4096.0 - xf * sig).abs();
        if (-32768..32768).contains(&x) {
            ws_in = ws_in.max(es);
            wv_in = wv_in.max(ev);
        }
        if es > ws_all {
            ws_all = es;
            x_s = x;
        }
        if ev > wv_all {
            wv_all = ev;
            x_v = x;
        }
        n += 1;
    }
    out.push(Line {
        op: "sigmoid_q15",
        cases: n,
        abs_real: format!("{} ({} for |x| < 8)", e3(ws_all), e3(ws_in)),
        abs_lsb: format!("{} ({})", f3(ws_all * 32768.0), f3(ws_in * 32768.0)),
        rel: "—".into(),
        cond: format!(
            "exhaustive Q12 x ∈ [-16,16), vs 1/(1+e^-x); worst at x = {} (the clamp to 0 / 1 beyond ±8)",
            x_s as f64 / 4096.0
        ),
    });
    out.push(Line {
        op: "silu_q12",
        cases: n,
        abs_real: format!("{} ({} for |x| < 8)", e3(wv_all), e3(wv_in)),
        abs_lsb: format!("{} ({})", f3(wv_all * 4096.0), f3(wv_in * 4096.0)),
        rel: "—".into(),
        cond: format!(
            "exhaustive Q12 x ∈ [-16,16), vs x/(1+e^-x); worst at x = {}",
            x_v as f64 / 4096.0
        ),
    });

    // swiglu
    let mut rng = Rng::new(10);
    let (mut w_own, mut w_real, mut w_rel_u) = (0.0f64, 0.0f64, 0.0f64);
    let mut n = 0u64;
    let mut g = vec![0i32; 4096];
    let mut u = vec![0i32; 4096];
    let mut o = vec![0i32; 4096];
    for _ in 0..256 {
        for i in 0..4096 {
            g[i] = rng.int(-65536, 65535) as i32;
            u[i] = q12(rng.gauss() * 4.0);
        }
        swiglu(&g, &u, &mut o).unwrap();
        for i in 0..4096 {
            let own = silu_q12(g[i]) as f64 * u[i] as f64 / 4096.0;
            w_own = w_own.max((o[i] as f64 - own).abs());
            let gf = g[i] as f64 / 4096.0;
            let uf = u[i] as f64 / 4096.0;
            let real = gf / (1.0 + libm::exp(-gf)) * uf;
            let e = (o[i] as f64 / 4096.0 - real).abs();
            w_real = w_real.max(e);
            if uf.abs() >= 1.0 {
                w_rel_u = w_rel_u.max(e / uf.abs());
            }
            n += 1;
        }
    }
    out.push(Line {
        op: "swiglu vs silu_q12(g)·u",
        cases: n,
        abs_real: e3(w_own / 4096.0),
        abs_lsb: f3(w_own),
        rel: "—".into(),
        cond: "Q12 gate uniform in [-16,16), up N(0,16); reference uses the kernel's own silu (product rounding only)".into(),
    });
    out.push(Line {
        op: "swiglu vs real silu(g)·u",
        cases: n,
        abs_real: e3(w_real),
        abs_lsb: f3(w_real * 4096.0),
        rel: format!("{} of |u| (|u| ≥ 1)", e3(w_rel_u)),
        cond: "same inputs; reference g/(1+e^-g)·u in f64".into(),
    });
}

// ---------------------------------------------------------------- §9, §10

fn m_misc(out: &mut Vec<Line>) {
    // embed_row: every code, every exponent
    let row: Vec<i16> = (-512..=511).collect();
    let mut o = vec![0i32; row.len()];
    let (mut worst, mut worst_exact_range, mut n) = (0.0f64, 0.0f64, 0u64);
    for e in -30..=8 {
        embed_row(&row, e, &mut o).unwrap();
        for (&c, &v) in row.iter().zip(&o) {
            let want = libm::ldexp(c as f64, e + 12);
            let err = (v as f64 - want).abs();
            worst = worst.max(err);
            if e >= -12 {
                worst_exact_range = worst_exact_range.max(err);
            }
            n += 1;
        }
    }
    out.push(Line {
        op: "embed_row",
        cases: n,
        abs_real: e3(worst / 4096.0),
        abs_lsb: format!(
            "{} ({} for emb_exp ≥ -12)",
            f3(worst),
            f3(worst_exact_range)
        ),
        rel: "—".into(),
        cond: "every code [-512,511] × every emb_exp [-30,8], vs code·2^emb_exp in Q12".into(),
    });

    // residual_add: exact saturating sum
    let mut rng = Rng::new(11);
    let (mut n, mut mism) = (0u64, 0u64);
    for _ in 0..1000 {
        let mut a: Vec<i32> = (0..1024)
            .map(|_| (rng.next() as u32) as i32 >> rng.below(32))
            .collect();
        let d: Vec<i32> = (0..1024)
            .map(|_| (rng.next() as u32) as i32 >> rng.below(32))
            .collect();
        let a0 = a.clone();
        residual_add(&mut a, &d).unwrap();
        for i in 0..1024 {
            let want = (a0[i] as i64 + d[i] as i64).clamp(i32::MIN as i64, i32::MAX as i64);
            mism += (a[i] as i64 != want) as u64;
            n += 1;
        }
    }
    out.push(Line {
        op: "residual_add",
        cases: n,
        abs_real: "0".into(),
        abs_lsb: "0".into(),
        rel: "—".into(),
        cond: format!("random i32 of every magnitude; {mism} mismatches vs clamp(a+b) (exact)"),
    });

    // argmax: exact, lowest index on ties
    let (mut n, mut mism) = (0u64, 0u64);
    for k in 0..200_000u64 {
        let len = 1 + (k % 300) as usize;
        let spread = [3u64, 50, 1 << 32][(k % 3) as usize];
        let v: Vec<i32> = (0..len)
            .map(|_| {
                (rng.below(spread) as i64 - (spread / 2) as i64)
                    .clamp(i32::MIN as i64, i32::MAX as i64) as i32
            })
            .collect();
        let mx = *v.iter().max().unwrap();
        let want = v.iter().position(|&x| x == mx);
        mism += (argmax_i32(&v) != want) as u64;
        n += 1;
    }
    out.push(Line {
        op: "argmax_i32",
        cases: n,
        abs_real: "0".into(),
        abs_lsb: "0".into(),
        rel: "—".into(),
        cond: format!(
            "vectors of 1..300 with many ties; {mism} mismatches vs first index of the maximum"
        ),
    });
}

/// One measurement: appends its lines to the table.
type Measure = fn(&mut Vec<Line>);

fn main() {
    let t0 = Instant::now();
    let mut lines = Vec::new();
    let steps: [(&str, Measure); 13] = [
        ("round", m_round),
        ("bfp", m_bfp),
        ("apot", m_apot),
        ("lm_head", m_lm_head),
        ("linear", m_linear),
        ("rmsnorm", m_rmsnorm),
        ("rope", m_rope),
        ("softmax", m_softmax),
        ("softmax adversarial", m_softmax_adversarial),
        ("attention", m_attention),
        ("silu", m_silu),
        ("misc", m_misc),
        ("done", |_| {}),
    ];
    for (name, f) in steps {
        let t = Instant::now();
        f(&mut lines);
        eprintln!("{name}: {:.2} s", t.elapsed().as_secs_f64());
    }
    println!("| operator | cases | max abs error (real) | max abs error (output LSB) | max relative error | conditions |");
    println!("|---|---:|---|---|---|---|");
    // a `|` inside a cell would end it
    let c = |s: &str| s.replace('|', "\\|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            c(l.op),
            l.cases,
            c(&l.abs_real),
            c(&l.abs_lsb),
            c(&l.rel),
            c(&l.cond)
        );
    }
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}

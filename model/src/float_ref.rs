//! The f32 reference forward pass (feature `std`): measures how far the
//! integer model is from float. Never used at run time by the integer path.
//!
//! Deterministic on every platform and for every thread count: dot products
//! use a fixed 8-lane accumulation order, transcendental functions come from
//! `libm`, and threads only split independent output rows.

use std::vec;
use std::vec::Vec;

use edgedecoding_kernels::attention::softmax_q15;
use edgedecoding_kernels::bfp::{dequantize_block, quantize_block};
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::lm_head::DerivedHead;
use edgedecoding_kernels::quant::dequant;
use edgedecoding_kernels::GROUP;

use crate::config::Config;
use crate::error::ModelError;
use crate::weights::Model;

/// Float weights of one layer. Matrices are row-major `[out][in]`.
#[derive(Clone, Debug)]
pub struct FloatLayer {
    /// `[hidden]`
    pub attn_norm: Vec<f32>,
    /// `[hidden][hidden]`
    pub q_w: Vec<f32>,
    /// `[hidden]`
    pub q_b: Vec<f32>,
    /// `[kv_dim][hidden]`
    pub k_w: Vec<f32>,
    /// `[kv_dim]`
    pub k_b: Vec<f32>,
    /// `[kv_dim][hidden]`
    pub v_w: Vec<f32>,
    /// `[kv_dim]`
    pub v_b: Vec<f32>,
    /// `[hidden][hidden]`
    pub o_w: Vec<f32>,
    /// `[hidden]`
    pub ffn_norm: Vec<f32>,
    /// `[ffn][hidden]`
    pub gate: Vec<f32>,
    /// `[ffn][hidden]`
    pub up: Vec<f32>,
    /// `[hidden][ffn]`
    pub down: Vec<f32>,
}

/// A float model (from a checkpoint, the built-in generator, or dequantized
/// from an integer model).
#[derive(Clone, Debug)]
pub struct FloatModel {
    /// Configuration (`n_kept` rows in `emb`).
    pub config: Config,
    /// Embedding `[n_kept][hidden]`.
    pub emb: Vec<f32>,
    /// Separate lm_head `[n_kept][hidden]`; `None`: tied to `emb`.
    pub head: Option<Vec<f32>>,
    /// Layers.
    pub layers: Vec<FloatLayer>,
    /// Final norm gamma.
    pub final_norm: Vec<f32>,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// Kept full ids when pruned.
    pub keep: Option<Vec<u32>>,
}

/// Activation ranges seen by a forward pass, per layer (for calibration).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// max |q| after bias and RoPE.
    pub max_q: Vec<f32>,
    /// max |k| after bias and RoPE.
    pub max_k: Vec<f32>,
    /// max |v|.
    pub max_v: Vec<f32>,
}

/// Integer stages a float forward pass can imitate, alone or together, to
/// see where the integer model's error comes from (`perplexity
/// --attribute`). Each rounds the float values where the integer pipeline
/// holds them in a narrower format (SPEC §9.3), with the integer kernels' own
/// rounding functions; the weight-side stages (APoT weights, 10-bit
/// embedding and derived head, gamma and bias formats) are chosen by building
/// the model from float or dequantized parts ([`FloatModel::mixed`]).
/// `Imitate::default()` imitates nothing: the plain float reference.
#[derive(Clone, Debug, Default)]
pub struct Imitate {
    /// Every linear input (q/k/v, o, gate/up, down, lm_head) as BFP blocks of
    /// its Q12 value (§3: 8-bit mantissas, one exponent per 8 channels).
    pub bfp: bool,
    /// The residual stream, RMSNorm outputs, the attention output, the
    /// o/gate/up/down/lm_head outputs and SwiGLU held in Q12 (`int32`, §1.2).
    pub q12: bool,
    /// Q, K, V as `int16` in their per-layer formats, before and after RoPE
    /// (`[q_frac, k_frac, v_frac]` per layer, §9.3); empty: off.
    pub qkv16: Vec<[u32; 3]>,
    /// The tables: softmax through `EXP2_NEG_Q15` to Q15 probabilities (§7.2,
    /// scores in Q24), SiLU through the interpolated `SIGMOID_Q15` (§8.1),
    /// RoPE cos/sin in Q14 (§6.1).
    pub tables: bool,
}

/// Which parameters [`FloatModel::mixed`] takes from the dequantized integer
/// model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    /// `attn_q`, `attn_k`, `attn_v` of every layer.
    pub qkv: bool,
    /// `attn_output` of every layer.
    pub o: bool,
    /// `ffn_gate` and `ffn_up` of every layer.
    pub gate_up: bool,
    /// `ffn_down` of every layer.
    pub down: bool,
    /// The embedding and the lm_head (the integer model's head is derived
    /// from its 10-bit embedding).
    pub embed_head: bool,
    /// The RMSNorm gammas and the q/k/v biases.
    pub norms_biases: bool,
}

impl Parts {
    /// All seven linear matrices of every layer.
    pub const WEIGHTS: Parts = Parts {
        qkv: true,
        o: true,
        gate_up: true,
        down: true,
        embed_head: false,
        norms_biases: false,
    };
    /// Everything.
    pub const ALL: Parts = Parts {
        embed_head: true,
        norms_biases: true,
        ..Parts::WEIGHTS
    };
}

/// `v` rounded to `Q(frac)` and saturated to `[lo, hi]`, back to real.
#[inline]
fn fixed(v: f32, frac: u32, lo: f64, hi: f64) -> f32 {
    let s = libm::ldexp(1.0, frac as i32);
    (libm::round(v as f64 * s).clamp(lo, hi) / s) as f32
}

/// In place: every value as `int32` Q12.
fn to_q12(x: &mut [f32]) {
    for v in x {
        *v = fixed(*v, 12, i32::MIN as f64, i32::MAX as f64);
    }
}

/// In place: every value as `int16` Q(frac).
fn to_i16(x: &mut [f32], frac: u32) {
    for v in x {
        *v = fixed(*v, frac, i16::MIN as f64, i16::MAX as f64);
    }
}

/// In place: blocks of 8 as the BFP blocks of their Q12 values (§3).
fn to_bfp(x: &mut [f32]) {
    for blk in x.chunks_exact_mut(GROUP) {
        let q: [i32; GROUP] = core::array::from_fn(|i| {
            libm::round(blk[i] as f64 * 4096.0).clamp(i32::MIN as f64, i32::MAX as f64) as i32
        });
        let d = dequantize_block(&quantize_block(&q));
        for (v, m) in blk.iter_mut().zip(d) {
            *v = (m as f64 / 4096.0) as f32;
        }
    }
}

/// `sum a_i b_i` with 8 fixed lanes, then lanes added in order: deterministic
/// and vectorizable.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let n8 = a.len() / 8 * 8;
    for (ca, cb) in a[..n8].chunks_exact(8).zip(b[..n8].chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    let mut s = 0.0f32;
    for l in lanes {
        s += l;
    }
    for i in n8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// `out[t][r] = dot(x[t], w[r])` for `n` tokens, rows split over threads.
pub fn matmul(x: &[f32], w: &[f32], k: usize, out: &mut [f32], threads: usize) {
    let m = w.len() / k;
    let n = x.len() / k;
    let parts = threads.clamp(1, m.max(1));
    let bounds: Vec<usize> = (0..=parts).map(|i| i * m / parts).collect();
    let cols: Vec<Vec<f32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..parts)
            .map(|p| {
                let (r0, r1) = (bounds[p], bounds[p + 1]);
                s.spawn(move || {
                    let mut buf = vec![0.0f32; n * (r1 - r0)];
                    block(x, w, k, n, r0, r1, &mut buf);
                    buf
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("matmul worker"))
            .collect()
    });
    for (p, buf) in cols.iter().enumerate() {
        let (r0, r1) = (bounds[p], bounds[p + 1]);
        for t in 0..n {
            out[t * m + r0..t * m + r1].copy_from_slice(&buf[t * (r1 - r0)..(t + 1) * (r1 - r0)]);
        }
    }
}

/// `buf[t][r - r0] = dot(x[t], w[r])` for all tokens and rows `r0..r1`, in
/// tiles of 4 tokens x 4 rows. Every value is computed exactly as [`dot`] does
/// (same 8 lanes, same order), with AVX when the CPU has it, so the result does
/// not depend on the CPU or the tiling.
fn block(x: &[f32], w: &[f32], k: usize, n: usize, r0: usize, r1: usize, buf: &mut [f32]) {
    let nr = r1 - r0;
    #[cfg(target_arch = "x86_64")]
    let avx = std::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    let avx = false;
    // buf[t + i][r + j - r0] = dot(x[t + i], w[r + j]) for i < tn, j < rn
    let mut tile = |t: usize, tn: usize, r: usize, rn: usize| {
        #[cfg(target_arch = "x86_64")]
        if avx && tn == 4 && rn == 4 {
            let xs: [&[f32]; 4] = core::array::from_fn(|i| &x[(t + i) * k..(t + i + 1) * k]);
            let ws: [&[f32]; 4] = core::array::from_fn(|j| &w[(r + j) * k..(r + j + 1) * k]);
            // SAFETY: AVX was detected at run time (`avx`); the slices have length k.
            let v = unsafe { tile4x4_avx(xs, ws) };
            for i in 0..4 {
                for j in 0..4 {
                    buf[(t + i) * nr + r + j - r0] = v[i][j];
                }
            }
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = avx;
        for i in 0..tn {
            for j in 0..rn {
                buf[(t + i) * nr + r + j - r0] = dot(
                    &x[(t + i) * k..(t + i + 1) * k],
                    &w[(r + j) * k..(r + j + 1) * k],
                );
            }
        }
    };
    // tokens in chunks that stay in cache while every row of `w` passes by
    // once per chunk (not once per 4 tokens): the lm_head over a window
    for t0 in (0..n).step_by(TOKEN_CHUNK) {
        let t1 = (t0 + TOKEN_CHUNK).min(n);
        for r in (r0..r1).step_by(4) {
            let rn = (r1 - r).min(4);
            for t in (t0..t1).step_by(4) {
                tile(t, (t1 - t).min(4), r, rn);
            }
        }
    }
}

/// Positions whose logits [`FloatModel::forward`] computes together.
const HEAD_CHUNK: usize = 64;

/// Tokens per chunk of [`block`] (64 rows of 896 `f32` = 224 KiB).
const TOKEN_CHUNK: usize = 64;

/// 16 dot products of [`dot`]'s exact arithmetic: 8 lanes of separate
/// multiply and add (no FMA), lanes summed 0..7, then the tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn tile4x4_avx(x: [&[f32]; 4], w: [&[f32]; 4]) -> [[f32; 4]; 4] {
    use core::arch::x86_64::*;
    let k = x[0].len();
    let n8 = k / 8 * 8;
    let mut acc = [[_mm256_setzero_ps(); 4]; 4];
    let mut c = 0;
    while c < n8 {
        let xv: [__m256; 4] = core::array::from_fn(|i| _mm256_loadu_ps(x[i].as_ptr().add(c)));
        let wv: [__m256; 4] = core::array::from_fn(|j| _mm256_loadu_ps(w[j].as_ptr().add(c)));
        for i in 0..4 {
            for j in 0..4 {
                acc[i][j] = _mm256_add_ps(acc[i][j], _mm256_mul_ps(xv[i], wv[j]));
            }
        }
        c += 8;
    }
    let mut out = [[0.0f32; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[i][j]);
            let mut s = 0.0f32;
            for l in lanes {
                s += l;
            }
            for q in n8..k {
                s += x[i][q] * w[j][q];
            }
            out[i][j] = s;
        }
    }
    out
}

fn rmsnorm(x: &[f32], g: &[f32], eps: f32, out: &mut [f32]) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / libm::sqrtf(ms + eps);
    for ((o, &v), &gi) in out.iter_mut().zip(x).zip(g) {
        *o = v * r * gi;
    }
}

fn rope(x: &mut [f32], hd: usize, pos: usize, theta: f32, q14: bool) {
    let half = hd / 2;
    let table = |v: f64| {
        if q14 {
            libm::round(v * 16384.0) / 16384.0
        } else {
            v
        }
    };
    for head in x.chunks_exact_mut(hd) {
        for i in 0..half {
            let inv = libm::pow(theta as f64, -((2 * i) as f64) / hd as f64);
            let a = pos as f64 * inv;
            let (c, s) = (table(libm::cos(a)) as f32, table(libm::sin(a)) as f32);
            let (x0, x1) = (head[i], head[i + half]);
            head[i] = x0 * c - x1 * s;
            head[i + half] = x1 * c + x0 * s;
        }
    }
}

fn silu(x: f32, table: bool) -> f32 {
    if table {
        let q = libm::round(x as f64 * 4096.0).clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        let s = edgedecoding_kernels::silu::sigmoid_q15(q);
        (x as f64 * s as f64 / 32768.0) as f32
    } else {
        x / (1.0 + libm::expf(-x))
    }
}

impl FloatModel {
    /// Row index of a full token id.
    pub fn row_of_token(&self, token: u32) -> Result<usize, ModelError> {
        if token as usize >= self.config.vocab {
            return Err(ModelError::TokenOutOfRange {
                token,
                vocab: self.config.vocab as u32,
            });
        }
        match &self.keep {
            None => Ok(token as usize),
            Some(k) => k
                .binary_search(&token)
                .map_err(|_| ModelError::TokenNotKept(token)),
        }
    }

    /// Runs the whole sequence `tokens` from position 0 (causal), calls
    /// `sink(i, logits)` for each `i` in `logits_for` and records activation
    /// ranges in `stats` if given.
    pub fn forward(
        &self,
        tokens: &[u32],
        threads: usize,
        stats: Option<&mut Stats>,
        logits_for: core::ops::Range<usize>,
        sink: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        self.forward_imitating(
            tokens,
            threads,
            stats,
            logits_for,
            &Imitate::default(),
            sink,
        )
    }

    /// [`Self::forward`] imitating the integer stages of `im`.
    pub fn forward_imitating(
        &self,
        tokens: &[u32],
        threads: usize,
        mut stats: Option<&mut Stats>,
        logits_for: core::ops::Range<usize>,
        im: &Imitate,
        sink: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        let c = &self.config;
        if !im.qkv16.is_empty() && im.qkv16.len() != c.n_layers {
            return Err(ModelError::BadValue {
                name: crate::error::TensorName::new("imitate.qkv16"),
                reason: "not one format per layer",
            });
        }
        let q12 = |v: &mut [f32]| {
            if im.q12 {
                to_q12(v)
            }
        };
        let bfp = |v: &mut [f32]| {
            if im.bfp {
                to_bfp(v)
            }
        };
        let (n, h, kvd, f, hd) = (tokens.len(), c.hidden, c.kv_dim(), c.ffn, c.head_dim);
        if n == 0 {
            return Err(ModelError::Empty);
        }
        let mut x = vec![0.0f32; n * h];
        for (t, &tok) in tokens.iter().enumerate() {
            let r = self.row_of_token(tok)?;
            x[t * h..(t + 1) * h].copy_from_slice(&self.emb[r * h..(r + 1) * h]);
        }
        q12(&mut x);
        let mut xn = vec![0.0f32; n * h];
        let mut q = vec![0.0f32; n * h];
        let mut k = vec![0.0f32; n * kvd];
        let mut v = vec![0.0f32; n * kvd];
        let mut att = vec![0.0f32; n * h];
        let mut proj = vec![0.0f32; n * h];
        let mut g = vec![0.0f32; n * f];
        let mut u = vec![0.0f32; n * f];
        let group = c.n_heads / c.n_kv_heads;
        let scale = 1.0 / libm::sqrtf(hd as f32);
        if let Some(s) = stats.as_deref_mut() {
            *s = Stats {
                max_q: vec![0.0; c.n_layers],
                max_k: vec![0.0; c.n_layers],
                max_v: vec![0.0; c.n_layers],
            };
        }
        for (l, lw) in self.layers.iter().enumerate() {
            for t in 0..n {
                rmsnorm(
                    &x[t * h..(t + 1) * h],
                    &lw.attn_norm,
                    self.eps,
                    &mut xn[t * h..(t + 1) * h],
                );
            }
            q12(&mut xn);
            bfp(&mut xn);
            matmul(&xn, &lw.q_w, h, &mut q, threads);
            matmul(&xn, &lw.k_w, h, &mut k, threads);
            matmul(&xn, &lw.v_w, h, &mut v, threads);
            for t in 0..n {
                for (a, b) in q[t * h..(t + 1) * h].iter_mut().zip(&lw.q_b) {
                    *a += b;
                }
                for (a, b) in k[t * kvd..(t + 1) * kvd].iter_mut().zip(&lw.k_b) {
                    *a += b;
                }
                for (a, b) in v[t * kvd..(t + 1) * kvd].iter_mut().zip(&lw.v_b) {
                    *a += b;
                }
            }
            if let Some(&[qf, kf, vf]) = im.qkv16.get(l) {
                to_i16(&mut q, qf);
                to_i16(&mut k, kf);
                to_i16(&mut v, vf);
            }
            for t in 0..n {
                let theta = c.rope_theta as f32;
                rope(&mut q[t * h..(t + 1) * h], hd, t, theta, im.tables);
                rope(&mut k[t * kvd..(t + 1) * kvd], hd, t, theta, im.tables);
            }
            if let Some(&[qf, kf, _]) = im.qkv16.get(l) {
                to_i16(&mut q, qf);
                to_i16(&mut k, kf);
            }
            if let Some(s) = stats.as_deref_mut() {
                let mx = |a: &[f32]| a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                s.max_q[l] = mx(&q);
                s.max_k[l] = mx(&k);
                s.max_v[l] = mx(&v);
            }
            let mut sc = vec![0.0f32; n];
            let (mut sc_q, mut probs) = (vec![0i64; n], vec![0u16; n]);
            for t in 0..n {
                for hh in 0..c.n_heads {
                    let kh = hh / group;
                    let qh = &q[t * h + hh * hd..t * h + (hh + 1) * hd];
                    let mut mxs = f32::MIN;
                    for j in 0..=t {
                        sc[j] = dot(qh, &k[j * kvd + kh * hd..j * kvd + (kh + 1) * hd]) * scale;
                        mxs = mxs.max(sc[j]);
                    }
                    let mut sum = 0.0f32;
                    if im.tables {
                        // scores in Q24 through the integer softmax: probabilities in Q15
                        for (d, s) in sc_q[..=t].iter_mut().zip(&sc[..=t]) {
                            *d = libm::round(libm::ldexp(*s as f64, 24)) as i64;
                        }
                        softmax_q15(&sc_q[..=t], 24, &mut probs[..=t])
                            .map_err(ModelError::Kernel)?;
                        for (s, &p) in sc[..=t].iter_mut().zip(&probs[..=t]) {
                            *s = p as f32 / 32768.0;
                        }
                        sum = 1.0;
                    } else {
                        for s in sc[..=t].iter_mut() {
                            *s = libm::expf(*s - mxs);
                            sum += *s;
                        }
                    }
                    let o = &mut att[t * h + hh * hd..t * h + (hh + 1) * hd];
                    o.fill(0.0);
                    for j in 0..=t {
                        let p = sc[j] / sum;
                        for (d, ov) in o.iter_mut().enumerate() {
                            *ov += p * v[j * kvd + kh * hd + d];
                        }
                    }
                }
            }
            q12(&mut att);
            bfp(&mut att);
            matmul(&att, &lw.o_w, h, &mut proj, threads);
            q12(&mut proj);
            for (a, b) in x.iter_mut().zip(&proj) {
                *a += b;
            }
            for t in 0..n {
                rmsnorm(
                    &x[t * h..(t + 1) * h],
                    &lw.ffn_norm,
                    self.eps,
                    &mut xn[t * h..(t + 1) * h],
                );
            }
            q12(&mut xn);
            bfp(&mut xn);
            matmul(&xn, &lw.gate, h, &mut g, threads);
            matmul(&xn, &lw.up, h, &mut u, threads);
            q12(&mut g);
            q12(&mut u);
            for (a, b) in g.iter_mut().zip(&u) {
                let mut sg = [silu(*a, im.tables)];
                q12(&mut sg);
                *a = sg[0] * b;
            }
            q12(&mut g);
            bfp(&mut g);
            matmul(&g, &lw.down, f, &mut proj, threads);
            q12(&mut proj);
            for (a, b) in x.iter_mut().zip(&proj) {
                *a += b;
            }
        }
        // the head over up to HEAD_CHUNK positions at a time (each of its rows
        // read once per chunk; every logit is the same `dot` as one at a time)
        let head = self.head.as_ref().unwrap_or(&self.emb);
        let (first, end) = (logits_for.start, logits_for.end.min(n));
        let v = c.n_kept;
        let mut logits = vec![0.0f32; HEAD_CHUNK.min(end.saturating_sub(first)) * v];
        for t0 in (first..end).step_by(HEAD_CHUNK) {
            let m = (end - t0).min(HEAD_CHUNK);
            for (i, t) in (t0..t0 + m).enumerate() {
                rmsnorm(
                    &x[t * h..(t + 1) * h],
                    &self.final_norm,
                    self.eps,
                    &mut xn[i * h..(i + 1) * h],
                );
            }
            q12(&mut xn[..m * h]);
            bfp(&mut xn[..m * h]);
            let lg = &mut logits[..m * v];
            matmul(&xn[..m * h], head, h, lg, threads);
            q12(lg);
            for (i, t) in (t0..t0 + m).enumerate() {
                sink(t, &lg[i * v..(i + 1) * v]);
            }
        }
        Ok(())
    }

    /// A model with some parameter groups taken from `dq` (the
    /// [`Self::dequantized`] integer model of the same checkpoint) and the
    /// rest from `self` (see [`Parts`]). Errors if the shapes differ.
    pub fn mixed(&self, dq: &FloatModel, parts: Parts) -> Result<FloatModel, ModelError> {
        // the same shape; the context (RoPE table, cache) may differ
        let same = Config {
            ctx: dq.config.ctx,
            ..self.config
        };
        if same != dq.config || self.layers.len() != dq.layers.len() {
            return Err(ModelError::BadValue {
                name: crate::error::TensorName::new("float model"),
                reason: "the dequantized model has another shape",
            });
        }
        let mut m = self.clone();
        if parts.embed_head {
            m.emb.clone_from(&dq.emb);
            m.head.clone_from(&dq.head);
        }
        if parts.norms_biases {
            m.final_norm.clone_from(&dq.final_norm);
        }
        for (l, d) in m.layers.iter_mut().zip(&dq.layers) {
            for (on, pairs) in [
                (
                    parts.qkv,
                    vec![
                        (&mut l.q_w, &d.q_w),
                        (&mut l.k_w, &d.k_w),
                        (&mut l.v_w, &d.v_w),
                    ],
                ),
                (parts.o, vec![(&mut l.o_w, &d.o_w)]),
                (
                    parts.gate_up,
                    vec![(&mut l.gate, &d.gate), (&mut l.up, &d.up)],
                ),
                (parts.down, vec![(&mut l.down, &d.down)]),
            ] {
                if on {
                    for (a, b) in pairs {
                        a.clone_from(b);
                    }
                }
            }
            if parts.norms_biases {
                for (a, b) in [
                    (&mut l.attn_norm, &d.attn_norm),
                    (&mut l.ffn_norm, &d.ffn_norm),
                    (&mut l.q_b, &d.q_b),
                    (&mut l.k_b, &d.k_b),
                    (&mut l.v_b, &d.v_b),
                ] {
                    a.clone_from(b);
                }
            }
        }
        Ok(m)
    }

    /// The float model of an integer model's dequantized weights (norms,
    /// biases and embedding dequantized; lm_head = the derived APoT head): running
    /// it isolates the activation-side error of the integer pipeline.
    pub fn dequantized(m: &Model<'_>) -> Result<Self, ModelError> {
        let c = m.config;
        let h = c.hidden;
        let mat = |w: &dyn Fn(usize, usize) -> (i8, edgedecoding_kernels::format::ApotGroup),
                   rows: usize,
                   cols: usize|
         -> Vec<f32> {
            let mut out = vec![0.0f32; rows * cols];
            for r in 0..rows {
                for g in 0..cols / GROUP {
                    let (e, grp) = w(r, g);
                    for i in 0..GROUP {
                        out[r * cols + g * GROUP + i] =
                            dequant(grp.codes[i], grp.s1, grp.s2, e) as f32;
                    }
                }
            }
            out
        };
        let am = |a: &edgedecoding_kernels::format::ApotMatrix<'_>| {
            mat(&|r, g| (a.row(r).0, a.group(r, g, ())), a.rows(), a.cols())
        };
        let scale = |v: &[i16], frac: u32| {
            v.iter()
                .map(|&x| x as f32 / (1u32 << frac) as f32)
                .collect::<Vec<f32>>()
        };
        let bias = |v: &[i32], frac: u32| {
            v.iter()
                .map(|&x| (x as f64 / (1u64 << frac) as f64) as f32)
                .collect::<Vec<f32>>()
        };
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let lw = m.layer(l)?;
            let fm = lw.fmt;
            layers.push(FloatLayer {
                attn_norm: scale(lw.attn_norm, fm.attn_norm_frac),
                q_w: am(&lw.q),
                q_b: bias(lw.q_bias, fm.q_frac),
                k_w: am(&lw.k),
                k_b: bias(lw.k_bias, fm.k_frac),
                v_w: am(&lw.v),
                v_b: bias(lw.v_bias, fm.v_frac),
                o_w: am(&lw.o),
                ffn_norm: scale(lw.ffn_norm, fm.ffn_norm_frac),
                gate: am(&lw.gate),
                up: am(&lw.up),
                down: am(&lw.down),
            });
        }
        let e = libm::ldexp(1.0, m.globals.emb_exp) as f32;
        let emb: Vec<f32> = m.emb.iter().map(|&v| v as f32 * e).collect();
        let dh = DerivedHead::new(m.emb, h, m.globals.emb_exp, None)?;
        let head = mat(
            &|r, g| {
                let (e, ctx) = dh.row(r);
                (e, dh.group(r, g, ctx))
            },
            c.n_kept,
            h,
        );
        Ok(FloatModel {
            config: c,
            emb,
            head: Some(head),
            layers,
            final_norm: scale(m.final_norm, m.globals.final_norm_frac),
            eps: (m.globals.eps_q40 as f64 / (1u64 << 40) as f64) as f32,
            keep: m.keep.map(|k| k.to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled (AVX) matmul gives exactly the scalar `dot` of every pair, for
    /// shapes with full tiles, partial tiles, a tail of k and more tokens than
    /// one chunk.
    #[test]
    fn tiled_matmul_equals_dot_bitwise() {
        let mut seed = 5u64;
        let mut r = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        };
        for (n, m, k) in [
            (4, 4, 64),
            (9, 7, 901),
            (1, 13, 8),
            (16, 33, 896),
            (133, 10, 24),
        ] {
            let x: Vec<f32> = (0..n * k).map(|_| r()).collect();
            let w: Vec<f32> = (0..m * k).map(|_| r()).collect();
            for threads in [1, 2, 3] {
                let mut out = vec![0.0f32; n * m];
                matmul(&x, &w, k, &mut out, threads);
                for t in 0..n {
                    for j in 0..m {
                        let want = dot(&x[t * k..(t + 1) * k], &w[j * k..(j + 1) * k]);
                        assert_eq!(
                            out[t * m + j].to_bits(),
                            want.to_bits(),
                            "n {n} m {m} k {k} t {t} j {j}"
                        );
                    }
                }
            }
        }
    }
}

//! Error-compensating (GPTQ-style) weight quantization (feature `std`,
//! conversion time only: float code, never used by the integer decoder).
//!
//! For one linear layer `W [rows][cols]` and the Hessian `H = XᵀX` of its
//! calibration inputs `X [tokens][cols]`:
//!
//! 1. [`hinv_upper`]: dampen `H` (dead columns get a diagonal of 1, then
//!    [`DAMP`] of the mean diagonal is added; more if it is not positive definite) and
//!    compute the upper Cholesky factor `U` of `H⁻¹` (`H⁻¹ = UᵀU`), by a
//!    "reverse" Cholesky `H = V Vᵀ` (`V` upper) and `U = V⁻¹`.
//! 2. [`quantize_matrix_gptq`]: every row on its own (rows are independent
//!    given `U`, so they are split over threads without changing a bit):
//!    the row exponent from the original row exactly as the round-to-nearest
//!    path computes it ([`quantize_row_f32`](edgedecoding_kernels::quant::quantize_row_f32));
//!    then the columns in order; when a group of 8 starts, its `(s1, s2)` come
//!    from the exhaustive [`search_group`] on the *current* (error-updated)
//!    weights of its 8 columns; each column is rounded to the nearest grid
//!    value under those scales and its error is fed forward,
//!    `w[j+1..] -= (w[j] - ŵ[j]) / U[j][j] · U[j][j+1..]`.
//!
//! The output is exactly the round-to-nearest format (codes in range,
//! exponents 0..7, one row exponent per row). With `H = I` it equals the
//! round-to-nearest result bit for bit (the test `identity_hessian_is_rtn`).

use std::vec;
use std::vec::Vec;

use edgedecoding_kernels::format::{pack_group, packed_codes_len, packed_exps_len, ApotGroup};
use edgedecoding_kernels::format::{CODE_MAX, CODE_MIN};
use edgedecoding_kernels::quant::{
    row_exp_for_f64, search_group, QUANT_FRAC, ROW_EXP_MAX, ROW_EXP_MIN,
};
use edgedecoding_kernels::GROUP;

use edgedecoding_kernels::bfp::{dequantize_block, BfpBlock};

use crate::convert::{PackedMatrix, Progress};
use crate::error::{ModelError, TensorName};
use crate::owned::{ModelBuf, OwnedHead};
use crate::probe::{Site, Stage, StageRef, Values};
use crate::state::{State, StateMem, CPU_CHUNK};
use crate::{Decoder, Head};

/// Fraction of the mean diagonal added to the Hessian's diagonal (measured:
/// 0.01 and 0.1 compensate too much for the calibration text, SPEC §2.4.1).
pub const DAMP: f64 = 0.3;

/// Times the damping is multiplied by 10 when the Hessian is still not
/// positive definite, before giving up.
const DAMP_RETRIES: usize = 8;

/// Largest target magnitude handed to [`search_group`] (it needs `< 2^40`).
const T_MAX: f64 = (1u64 << 39) as f64;

fn singular(reason: &'static str) -> ModelError {
    ModelError::BadValue {
        name: TensorName::new("gptq_hessian"),
        reason,
    }
}

/// Dot product with four accumulators (vectorizes; same order every call).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += s · x`.
#[inline]
fn axpy(y: &mut [f64], s: f64, x: &[f64]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += s * b;
    }
}

/// Adds `xᵀx` of the rows of `x` (`[tokens][n]`, row-major) to the upper
/// triangle of `h` (`n × n`, row-major). Call [`symmetrize`] before use.
pub fn hessian_add(h: &mut [f64], n: usize, x: &[f64]) {
    for row in x.chunks_exact(n) {
        for a in 0..n {
            let xa = row[a];
            if xa != 0.0 {
                axpy(&mut h[a * n + a..(a + 1) * n], xa, &row[a..]);
            }
        }
    }
}

/// Copies the upper triangle of `h` to the lower one.
pub fn symmetrize(h: &mut [f64], n: usize) {
    for a in 0..n {
        for b in 0..a {
            h[a * n + b] = h[b * n + a];
        }
    }
}

/// Columns handled together by the blocked factorizations.
const NB: usize = 8;

/// `out[b] = dot(x, ys[b])` for the `NB` rows of `ys` (each `x.len()` long,
/// row stride `stride`); `x` is read once. Same order for every call.
#[inline]
fn dots8(x: &[f64], ys: &[f64], stride: usize, nb: usize) -> [f64; NB] {
    let m = x.len();
    let mut acc = [[0.0f64; 4]; NB];
    let full = m / 4 * 4;
    let mut k = 0;
    while k < full {
        let xv = [x[k], x[k + 1], x[k + 2], x[k + 3]];
        for (b, a) in acc.iter_mut().enumerate().take(nb) {
            let y = &ys[b * stride + k..b * stride + k + 4];
            for l in 0..4 {
                a[l] += xv[l] * y[l];
            }
        }
        k += 4;
    }
    let mut out = [0.0f64; NB];
    for b in 0..nb {
        let a = acc[b];
        let mut s = (a[0] + a[1]) + (a[2] + a[3]);
        for kk in full..m {
            s += x[kk] * ys[b * stride + kk];
        }
        out[b] = s;
    }
    out
}

/// Splits `0..n` into `parts` contiguous ranges of about equal cost when
/// index `i` costs `~i^p` (boundaries `n · (k/parts)^(1/(p+1))`).
fn balanced(n: usize, parts: usize, p: f64) -> Vec<usize> {
    let mut b: Vec<usize> = (0..=parts)
        .map(|k| {
            let f = libm::pow(k as f64 / parts as f64, 1.0 / (p + 1.0));
            ((n as f64 * f) as usize).min(n)
        })
        .collect();
    b[parts] = n;
    b
}

/// In place: `a` (symmetric, only its upper triangle is read) becomes `V`
/// upper triangular with `a = V Vᵀ` (lower triangle left as is). Blocked by
/// `NB` columns, the bulk of the work split over `threads` by rows (every
/// entry is computed in the same order whatever `threads`). `false` if a
/// pivot is not positive.
fn reverse_cholesky(a: &mut [f64], n: usize, threads: usize) -> bool {
    let mut j1 = n;
    let mut panel = Vec::new();
    while j1 > 0 {
        let j0 = j1.saturating_sub(NB);
        let nb = j1 - j0;
        let m = n - j1;
        // rows j0..j1 of V beyond the block (already final)
        panel.clear();
        for j in j0..j1 {
            panel.extend_from_slice(&a[j * n + j1..(j + 1) * n]);
        }
        // a[i][j] -= Σ_{k >= j1} V[i][k] V[j][k], for i < j1, j in block, i <= j
        if m > 0 {
            let rows = &mut a[..j1 * n];
            let work = j1 * m;
            let parts = if work > 1 << 16 {
                threads.clamp(1, j1)
            } else {
                1
            };
            let per = j1.div_ceil(parts);
            let panel = &panel;
            let upd = move |i0: usize, chunk: &mut [f64]| {
                for (r, ri) in chunk.chunks_exact_mut(n).enumerate() {
                    let i = i0 + r;
                    let d = dots8(&ri[j1..], panel, m, nb);
                    for (b, dv) in d.iter().enumerate().take(nb) {
                        let j = j0 + b;
                        if i <= j {
                            ri[j] -= dv;
                        }
                    }
                }
            };
            if parts <= 1 {
                upd(0, rows);
            } else {
                std::thread::scope(|s| {
                    for (p, chunk) in rows.chunks_mut(per * n).enumerate() {
                        s.spawn(move || upd(p * per, chunk));
                    }
                });
            }
        }
        // the block itself, unblocked, columns j1-1 down to j0
        for j in (j0..j1).rev() {
            let (head, tail) = a.split_at_mut(j * n);
            let rj = &mut tail[..n];
            let d = rj[j] - dot(&rj[j + 1..j1], &rj[j + 1..j1]);
            if d.is_nan() || d <= 0.0 || !d.is_finite() {
                return false;
            }
            let vjj = d.sqrt();
            rj[j] = vjj;
            let rj = &tail[..n];
            for ri in head.chunks_exact_mut(n) {
                ri[j] = (ri[j] - dot(&ri[j + 1..j1], &rj[j + 1..j1])) / vjj;
            }
        }
        j1 = j0;
    }
    true
}

/// The inverse `U = V⁻¹` of upper triangular `v` (row-major, lower triangle
/// ignored), as a new matrix (lower triangle zero). Column `k` of `U` solves
/// `V u = e_k`; columns are independent, so they are computed `NB` at a time
/// (sharing the reads of `V`) and split over `threads` (each column in the
/// same order whatever `threads`).
fn upper_inverse(v: &[f64], n: usize, threads: usize) -> Vec<f64> {
    // ut[k][i] = U[i][k], i <= k
    let mut ut = vec![0.0f64; n * n];
    let parts = if n >= 256 { threads.clamp(1, n) } else { 1 };
    // cost of column k ~ k^2; blocks of NB columns, boundaries on NB multiples
    let bounds: Vec<usize> = balanced(n, parts, 2.0)
        .into_iter()
        .map(|b| (b.div_ceil(NB) * NB).min(n))
        .collect();
    let solve = |k0: usize, chunk: &mut [f64]| {
        let cols = chunk.len() / n;
        for c0 in (0..cols).step_by(NB) {
            let nb = NB.min(cols - c0);
            let blk = &mut chunk[c0 * n..(c0 + nb) * n];
            let kmax = k0 + c0 + nb - 1;
            // diagonal entries and rows above, descending
            for i in (0..=kmax).rev() {
                let vi = &v[i * n..(i + 1) * n];
                let vii = vi[i];
                // dot over m in i+1..=kmax (entries beyond a column's k are 0)
                let d = if i < kmax {
                    dots8(&vi[i + 1..=kmax], &blk[i + 1..], n, nb)
                } else {
                    [0.0; NB]
                };
                for b in 0..nb {
                    let k = k0 + c0 + b;
                    if i == k {
                        blk[b * n + i] = 1.0 / vii;
                    } else if i < k {
                        blk[b * n + i] = -d[b] / vii;
                    }
                }
            }
        }
    };
    std::thread::scope(|s| {
        let mut rest: &mut [f64] = &mut ut;
        let mut done = 0;
        for w in bounds.windows(2) {
            let (k0, k1) = (w[0].max(done), w[1]);
            let (chunk, r) = core::mem::take(&mut rest).split_at_mut((k1 - k0) * n);
            rest = r;
            done = k1;
            if k1 > k0 {
                let solve = &solve;
                s.spawn(move || solve(k0, chunk));
            }
        }
    });
    // transpose into U
    let mut u = ut;
    for i in 0..n {
        for k in 0..i {
            u[k * n + i] = u[i * n + k];
            u[i * n + k] = 0.0;
        }
    }
    u
}

/// The upper Cholesky factor `U` of `(H + damping)⁻¹` (`n × n`, row-major,
/// `H⁻¹ = UᵀU`, lower triangle zero), see the module documentation. `h` is
/// symmetric. Errors: a non-finite `h`, or no positive definite damping.
pub fn hinv_upper(h: &[f64], n: usize, threads: usize) -> Result<Vec<f64>, ModelError> {
    if h.len() != n * n {
        return Err(singular("Hessian size is not cols x cols"));
    }
    if h.iter().any(|v| !v.is_finite()) {
        return Err(singular("non-finite Hessian"));
    }
    let mut base = h.to_vec();
    for i in 0..n {
        if base[i * n + i] <= 0.0 {
            // a column no calibration input reaches: its weight quantizes on its own
            base[i * n + i] = 1.0;
        }
    }
    let mean = (0..n).map(|i| base[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let mut damp = DAMP * mean;
    for _ in 0..DAMP_RETRIES {
        let mut a = base.clone();
        for i in 0..n {
            a[i * n + i] += damp;
        }
        if reverse_cholesky(&mut a, n, threads) {
            let u = upper_inverse(&a, n, threads);
            if u.iter().all(|v| v.is_finite()) {
                return Ok(u);
            }
        }
        damp *= 10.0;
    }
    Err(singular("Hessian not positive definite even with damping"))
}

/// Number of [`INPUTS`].
pub const N_INPUTS: usize = 2;

/// The inputs whose matrices GPTQ quantizes: q/k/v (`attn_bfp`) and
/// gate/up (`mlp_bfp`). `ffn_down` keeps round-to-nearest: its 4864-wide
/// Hessian made GPTQ slower (887 s instead of 223 s on the real model) and no
/// better; so does `attn_output`: compensating it made the prose's perplexity
/// worse (+0.94 % instead of +0.42 % over float, SPEC §2.4.1).
pub const INPUTS: [Stage; N_INPUTS] = [Stage::AttnBfp, Stage::MlpBfp];

/// The BFP inputs of the [`INPUTS`] of every decoder layer, as the integer
/// model computed them on the calibration tokens, token-major blocks.
pub struct LayerInputs {
    /// Widths of the inputs (`hidden` each).
    pub cols: [usize; N_INPUTS],
    /// Tokens seen.
    pub tokens: usize,
    /// `[layer][input]` blocks, `tokens · cols/8` each.
    pub blocks: Vec<[Vec<BfpBlock>; N_INPUTS]>,
}

/// Runs the integer model of `edq` (`.edq` bytes) on `tokens`, in windows
/// of at most its context (each from a fresh state), and keeps the BFP
/// inputs of every linear layer (the values the accelerator's linears
/// multiply). `progress` sees `"gptq calibrate"`.
pub fn collect_inputs(
    edq: &[u8],
    tokens: &[u32],
    threads: usize,
    progress: Progress<'_>,
) -> Result<LayerInputs, ModelError> {
    if tokens.is_empty() {
        return Err(ModelError::Empty);
    }
    let buf = ModelBuf::from_bytes(edq);
    let m = buf.model()?;
    let c = m.config;
    let head = OwnedHead::derive(&m)?;
    let mut blocks: Vec<[Vec<BfpBlock>; N_INPUTS]> = (0..c.n_layers)
        .map(|_| core::array::from_fn(|_| Vec::new()))
        .collect();
    // the SIMD backend (bit-identical to the scalar one, SPEC §4.4): the
    // calibration pass is a prefill of every calibration token
    let fast = crate::fast::Fast::new(&m, threads)?;
    let win = c.ctx.max(1);
    let n_win = tokens.len().div_ceil(win);
    for (k, w) in tokens.chunks(win).enumerate() {
        progress("gptq calibrate", k, n_win);
        let chunk = CPU_CHUNK.min(c.ctx.div_ceil(8) * 8);
        let mut mem = StateMem::with_chunk(&c, chunk);
        let st = State::with_chunk(&c, mem.bytes(), chunk)?;
        let mut d = Decoder::new(m, Head::Packed(head.matrix()), st, &fast)?;
        d.prefill_probed(w, &mut |s: StageRef<'_>| {
            let (Site::Layer(l), Values::Bfp(v)) = (s.site, s.values) else {
                return;
            };
            let Some(i) = INPUTS.iter().position(|&st| st == s.stage) else {
                return;
            };
            if let Some(b) = blocks.get_mut(l) {
                b[i].extend_from_slice(v);
            }
        })?;
    }
    progress("gptq calibrate", n_win, n_win);
    Ok(LayerInputs {
        cols: [c.hidden; N_INPUTS],
        tokens: tokens.len(),
        blocks,
    })
}

/// The Hessian `XᵀX` (`n × n`, symmetric) of BFP rows of width `n`, the
/// rows of `h` split over `threads` (each entry is one dot product over the
/// tokens, in the same order whatever `threads`).
pub fn hessian_of_bfp(blocks: &[BfpBlock], n: usize, threads: usize) -> Vec<f64> {
    let nb = n / GROUP;
    let tokens = blocks.len().checked_div(nb).unwrap_or(0);
    // dequantized inputs: `m << e` Q12 units
    let mut x = vec![0.0f64; tokens * n];
    for (dst, b) in x.chunks_exact_mut(GROUP).zip(blocks) {
        for (d, v) in dst.iter_mut().zip(dequantize_block(b)) {
            *d = libm::ldexp(v as f64, -12);
        }
    }
    // transposed: xt[a] = column a over the tokens
    let mut xt = vec![0.0f64; n * tokens];
    for (t, row) in x.chunks_exact(n).enumerate() {
        for (a, &v) in row.iter().enumerate() {
            xt[a * tokens + t] = v;
        }
    }
    drop(x);
    let mut h = vec![0.0f64; n * n];
    // h[a][b] (b >= a) = dot(xt[a], xt[b]); rows in blocks of NB sharing the
    // reads of xt[b]; row blocks split over threads (cost of row a ~ n - a)
    let parts = if n >= 64 { threads.clamp(1, n) } else { 1 };
    let bounds: Vec<usize> = balanced(n, parts, 1.0)
        .into_iter()
        .map(|b| n - (b.div_ceil(NB) * NB).min(n))
        .rev()
        .collect();
    let fill = |a0: usize, chunk: &mut [f64]| {
        let rows = chunk.len() / n.max(1);
        for r0 in (0..rows).step_by(NB) {
            let nb = NB.min(rows - r0);
            let ys = &xt[(a0 + r0) * tokens..];
            for b in a0 + r0..n {
                let d = dots8(&xt[b * tokens..(b + 1) * tokens], ys, tokens, nb);
                for (i, dv) in d.iter().enumerate().take(nb) {
                    if a0 + r0 + i <= b {
                        chunk[(r0 + i) * n + b] = *dv;
                    }
                }
            }
        }
    };
    std::thread::scope(|s| {
        let mut rest: &mut [f64] = &mut h;
        let mut done = 0;
        for w in bounds.windows(2) {
            let (a0, a1) = (w[0].max(done), w[1]);
            let (chunk, r) = core::mem::take(&mut rest).split_at_mut((a1 - a0) * n);
            rest = r;
            done = a1;
            if a1 > a0 {
                let fill = &fill;
                s.spawn(move || fill(a0, chunk));
            }
        }
    });
    symmetrize(&mut h, n);
    h
}

impl LayerInputs {
    /// The [`hinv_upper`] factors of layer `l`'s [`INPUTS`].
    pub fn layer_factors(
        &self,
        l: usize,
        threads: usize,
    ) -> Result<[Vec<f64>; N_INPUTS], ModelError> {
        let b = self.blocks.get(l).ok_or(ModelError::Empty)?;
        let mut out: [Vec<f64>; N_INPUTS] = Default::default();
        for (i, o) in out.iter_mut().enumerate() {
            let h = hessian_of_bfp(&b[i], self.cols[i], threads);
            *o = hinv_upper(&h, self.cols[i], threads)?;
        }
        Ok(out)
    }
}

/// Target of one weight: `round_half_away(w · 2^(16 - e))`, as
/// `quantize_row_f32` computes it.
#[inline]
fn target(v: f64, e: i32) -> i64 {
    let x = libm::round(libm::ldexp(v, QUANT_FRAC as i32 - e));
    x.clamp(-T_MAX, T_MAX) as i64
}

/// Rows processed together (they share the reads of `U`).
const ROW_BLOCK: usize = 16;

/// Quantizes rows `rows` of `w` into `groups` (`rows.len() · cols/8`) and
/// their exponents; the work of one thread.
fn gptq_rows(
    w: &[f32],
    cols: usize,
    u: &[f64],
    rows: core::ops::Range<usize>,
    groups: &mut [ApotGroup],
    rexp: &mut [u8],
) {
    let g = cols / GROUP;
    let n_rows = rows.len();
    let unit = 1i64 << QUANT_FRAC;
    let mut x = vec![0.0f64; ROW_BLOCK * cols];
    for b0 in (0..n_rows).step_by(ROW_BLOCK) {
        let b1 = (b0 + ROW_BLOCK).min(n_rows);
        let nb = b1 - b0;
        let mut es = [0i32; ROW_BLOCK];
        for k in 0..nb {
            let r = rows.start + b0 + k;
            let src = &w[r * cols..(r + 1) * cols];
            let m = src
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
            es[k] = row_exp_for_f64(m).clamp(ROW_EXP_MIN, ROW_EXP_MAX);
            rexp[b0 + k] = es[k] as i8 as u8;
            for (d, &s) in x[k * cols..(k + 1) * cols].iter_mut().zip(src) {
                *d = if s.is_finite() { f64::from(s) } else { 0.0 };
            }
        }
        for j in 0..cols {
            let gi = j / GROUP;
            let lane = j % GROUP;
            let uj = &u[j * cols..(j + 1) * cols];
            let ujj = uj[j];
            for k in 0..nb {
                let e = es[k];
                let xr = &mut x[k * cols..(k + 1) * cols];
                let grp = &mut groups[(b0 + k) * g + gi];
                if lane == 0 {
                    let t: [i64; GROUP] = core::array::from_fn(|i| target(xr[j + i], e));
                    *grp = search_group(&t, unit);
                }
                let d = i64::from(grp.scale()) * unit;
                let t = target(xr[j], e);
                let q = (2 * t + d)
                    .div_euclid(2 * d)
                    .clamp(CODE_MIN as i64, CODE_MAX as i64);
                grp.codes[lane] = q as i8;
                let qv = libm::ldexp(q as f64 * f64::from(grp.scale()), e);
                let err = (xr[j] - qv) / ujj;
                if err != 0.0 {
                    axpy(&mut xr[j + 1..], -err, &uj[j + 1..]);
                }
            }
        }
    }
}

/// Quantizes a `rows × cols` row-major matrix with GPTQ given `u` =
/// [`hinv_upper`] of its inputs' Hessian (`cols × cols`); rows split over
/// `threads`, the result does not depend on `threads`. Same format as
/// [`crate::convert::quantize_matrix`].
pub fn quantize_matrix_gptq(
    w: &[f32],
    rows: usize,
    cols: usize,
    u: &[f64],
    threads: usize,
) -> Result<PackedMatrix, ModelError> {
    if cols % GROUP != 0 || w.len() != rows * cols || u.len() != cols * cols {
        return Err(singular("matrix and Hessian sizes disagree"));
    }
    let g = cols / GROUP;
    let mut groups = vec![ApotGroup::default(); rows * g];
    let mut rexp = vec![0u8; rows];
    let parts = threads.clamp(1, rows.max(1));
    let chunk = rows.div_ceil(parts).max(1);
    std::thread::scope(|s| {
        for (i, (gs, re)) in groups
            .chunks_mut(chunk * g.max(1))
            .zip(rexp.chunks_mut(chunk))
            .enumerate()
        {
            let r0 = i * chunk;
            let r1 = r0 + re.len();
            s.spawn(move || gptq_rows(w, cols, u, r0..r1, gs, re));
        }
    });
    let mut codes = vec![0u8; packed_codes_len(rows, cols)];
    let mut exps = vec![0u8; packed_exps_len(rows, cols)];
    for (k, grp) in groups.iter().enumerate() {
        pack_group(&mut codes, &mut exps, k, grp)?;
    }
    Ok(PackedMatrix { codes, exps, rexp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::quantize_matrix;
    use edgedecoding_kernels::format::{ApotMatrix, ApotWeights};
    use edgedecoding_kernels::quant::dequant;
    use edgedecoding_testkit::Lcg;

    fn uniform(rng: &mut Lcg) -> f64 {
        (rng.next() % 2_000_001) as f64 / 1_000_000.0 - 1.0
    }

    /// Dequantized matrix of a packed one (independent of the quantizer).
    fn dequantize(p: &PackedMatrix, rows: usize, cols: usize) -> Vec<f64> {
        let g = cols / GROUP;
        let rexp: Vec<i8> = p.rexp.iter().map(|&e| e as i8).collect();
        let m = ApotMatrix::new(rows, cols, &p.codes, &p.exps, &rexp).unwrap();
        let mut out = vec![0.0; rows * cols];
        for r in 0..rows {
            for j in 0..g {
                let grp = m.group(r, j, ());
                for i in 0..GROUP {
                    out[r * cols + j * GROUP + i] =
                        dequant(grp.codes[i], grp.s1, grp.s2, p.rexp[r] as i8);
                }
            }
        }
        out
    }

    /// `‖(W − Ŵ)Xᵀ‖²` computed directly from X.
    fn objective(w: &[f32], wq: &[f64], x: &[f64], rows: usize, cols: usize) -> f64 {
        let mut s = 0.0;
        for r in 0..rows {
            for xt in x.chunks_exact(cols) {
                let y: f64 = (0..cols)
                    .map(|c| (f64::from(w[r * cols + c]) - wq[r * cols + c]) * xt[c])
                    .sum();
                s += y * y;
            }
        }
        s
    }

    /// A seeded layer and correlated inputs: `x = z·M` with a random mixing
    /// matrix plus a few large-scale columns.
    fn layer(rows: usize, cols: usize, tokens: usize, seed: u64) -> (Vec<f32>, Vec<f64>) {
        let mut rng = Lcg(seed);
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| (uniform(&mut rng) * 0.05) as f32)
            .collect();
        let k = 6;
        let mix: Vec<f64> = (0..k * cols).map(|_| uniform(&mut rng)).collect();
        let mut x = vec![0.0; tokens * cols];
        for t in 0..tokens {
            let z: Vec<f64> = (0..k).map(|_| uniform(&mut rng)).collect();
            for c in 0..cols {
                let mut v = 0.1 * uniform(&mut rng);
                for (i, zi) in z.iter().enumerate() {
                    v += zi * mix[i * cols + c];
                }
                if c % 13 == 0 {
                    v *= 5.0;
                }
                x[t * cols + c] = v;
            }
        }
        (w, x)
    }

    fn hessian(x: &[f64], cols: usize) -> Vec<f64> {
        let mut h = vec![0.0; cols * cols];
        hessian_add(&mut h, cols, x);
        symmetrize(&mut h, cols);
        h
    }

    #[test]
    fn gptq_beats_rtn_on_layer_objective() {
        let (rows, cols, tokens) = (24, 64, 256);
        for seed in [1u64, 2, 3] {
            let (w, x) = layer(rows, cols, tokens, seed);
            let u = hinv_upper(&hessian(&x, cols), cols, 2).unwrap();
            let g = quantize_matrix_gptq(&w, rows, cols, &u, 1).unwrap();
            let r = quantize_matrix(&w, rows, cols, 1).unwrap();
            let og = objective(&w, &dequantize(&g, rows, cols), &x, rows, cols);
            let or = objective(&w, &dequantize(&r, rows, cols), &x, rows, cols);
            assert!(og < 0.8 * or, "seed {seed}: gptq {og} rtn {or}");
        }
    }

    #[test]
    fn output_valid_and_thread_independent() {
        let (rows, cols, tokens) = (37, 48, 100);
        let (w, x) = layer(rows, cols, tokens, 9);
        let u = hinv_upper(&hessian(&x, cols), cols, 2).unwrap();
        let one = quantize_matrix_gptq(&w, rows, cols, &u, 1).unwrap();
        for t in [2, 3, 8, 64] {
            let m = quantize_matrix_gptq(&w, rows, cols, &u, t).unwrap();
            assert_eq!(m.codes, one.codes, "threads {t}");
            assert_eq!(m.exps, one.exps, "threads {t}");
            assert_eq!(m.rexp, one.rexp, "threads {t}");
        }
        assert_eq!(one.codes.len(), packed_codes_len(rows, cols));
        assert_eq!(one.exps.len(), packed_exps_len(rows, cols));
        let r = quantize_matrix(&w, rows, cols, 1).unwrap();
        // row exponents are those of round-to-nearest
        assert_eq!(one.rexp, r.rexp);
        let rexp: Vec<i8> = one.rexp.iter().map(|&e| e as i8).collect();
        let m = ApotMatrix::new(rows, cols, &one.codes, &one.exps, &rexp).unwrap();
        for k in 0..rows * cols / GROUP {
            let grp = m.group(k / (cols / GROUP), k % (cols / GROUP), ());
            assert!(grp.s1 <= grp.s2 && grp.s2 <= 7);
            assert!(grp
                .codes
                .iter()
                .all(|&c| (CODE_MIN..=CODE_MAX).contains(&c)));
        }
    }

    #[test]
    fn identity_hessian_is_rtn() {
        let (rows, cols) = (20, 64);
        let mut rng = Lcg(5);
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| (uniform(&mut rng) * 0.3) as f32)
            .collect();
        let mut h = vec![0.0; cols * cols];
        for i in 0..cols {
            h[i * cols + i] = 1.0;
        }
        let u = hinv_upper(&h, cols, 2).unwrap();
        let g = quantize_matrix_gptq(&w, rows, cols, &u, 2).unwrap();
        let r = quantize_matrix(&w, rows, cols, 2).unwrap();
        assert_eq!(g.codes, r.codes);
        assert_eq!(g.exps, r.exps);
        assert_eq!(g.rexp, r.rexp);
    }

    #[test]
    fn hinv_factor_is_correct() {
        let cols = 24;
        let (_, x) = layer(1, cols, 50, 4);
        let h = hessian(&x, cols);
        let u = hinv_upper(&h, cols, 2).unwrap();
        // (H + damp I) · UᵀU = I
        let mean = (0..cols).map(|i| h[i * cols + i]).sum::<f64>() / cols as f64;
        let mut hd = h.clone();
        for i in 0..cols {
            hd[i * cols + i] += DAMP * mean;
        }
        for a in 0..cols {
            for b in 0..cols {
                // (UᵀU)[a][b] = Σ_k U[k][a] U[k][b]
                let mut s = 0.0;
                for c in 0..cols {
                    let hinv_cb: f64 = (0..cols).map(|k| u[k * cols + c] * u[k * cols + b]).sum();
                    s += hd[a * cols + c] * hinv_cb;
                }
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-8, "({a},{b}) = {s}");
            }
        }
    }

    #[test]
    fn hinv_blocked_threaded_is_exact_and_thread_independent() {
        let cols = 300;
        let (_, x) = layer(1, cols, 40, 6);
        let h = hessian(&x, cols);
        let u1 = hinv_upper(&h, cols, 1).unwrap();
        for t in [2, 3, 5] {
            assert!(hinv_upper(&h, cols, t).unwrap() == u1, "threads {t}");
        }
        let mean = (0..cols).map(|i| h[i * cols + i]).sum::<f64>() / cols as f64;
        // V = U⁻¹ must satisfy H + damp·I = V Vᵀ: check (H + damp) Uᵀ U = I on
        // a few columns
        let mut hd = h.clone();
        for i in 0..cols {
            hd[i * cols + i] += DAMP * mean;
        }
        for b in [0, 7, 150, 299] {
            // column b of UᵀU
            let col: Vec<f64> = (0..cols)
                .map(|c| (0..cols).map(|k| u1[k * cols + c] * u1[k * cols + b]).sum())
                .collect();
            for a in 0..cols {
                let s: f64 = (0..cols).map(|c| hd[a * cols + c] * col[c]).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-7, "({a},{b}) = {s}");
            }
        }
        for i in 0..cols {
            assert!(u1[i * cols..i * cols + i].iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn bfp_hessian_matches_direct_sum() {
        let (n, tokens) = (136, 21);
        let mut rng = Lcg(77);
        let blocks: Vec<BfpBlock> = (0..tokens * n / GROUP)
            .map(|_| {
                let v: [i32; GROUP] = core::array::from_fn(|_| rng.signed(50_000) as i32);
                edgedecoding_kernels::bfp::quantize_block(&v)
            })
            .collect();
        let x: Vec<f64> = blocks
            .iter()
            .flat_map(|b| dequantize_block(b).map(|v| v as f64 / 4096.0))
            .collect();
        let want = hessian(&x, n);
        let one = hessian_of_bfp(&blocks, n, 1);
        for (a, b) in one.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
        for t in [2, 3, 7] {
            assert!(hessian_of_bfp(&blocks, n, t) == one, "threads {t}");
        }
    }

    #[test]
    fn bad_hessians_are_errors() {
        assert!(hinv_upper(&[f64::NAN; 4], 2, 1).is_err());
        assert!(hinv_upper(&[1.0; 3], 2, 1).is_err());
        // an all-zero Hessian (no calibration) is usable: the identity's role
        let u = hinv_upper(&[0.0; 16], 4, 1).unwrap();
        assert!(u.iter().all(|v| v.is_finite()));
        assert!(quantize_matrix_gptq(&[0.0; 16], 2, 8, &u[..9], 1).is_err());
    }
}

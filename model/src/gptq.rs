//! Error-compensating (GPTQ-style) weight quantization (feature `std`,
//! conversion time only: float code, never used by the integer decoder).
//!
//! For one linear layer `W [rows][cols]` and the Hessian `H = XᵀX` of its
//! calibration inputs `X [tokens][cols]`:
//!
//! 1. [`hinv_upper`]: dampen `H` (dead columns get a diagonal of 1, then 1 %
//!    of the mean diagonal is added; more if it is not positive definite) and
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

use crate::convert::PackedMatrix;
use crate::error::{ModelError, TensorName};

/// Fraction of the mean diagonal added to the Hessian's diagonal.
pub const DAMP: f64 = 0.01;

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

/// In place: `a` (symmetric, only its upper triangle is read) becomes `V`
/// upper triangular with `a = V Vᵀ`. `false` if a pivot is not positive.
fn reverse_cholesky(a: &mut [f64], n: usize) -> bool {
    for j in (0..n).rev() {
        let (head, tail) = a.split_at_mut(j * n);
        let rj = &mut tail[..n];
        let d = rj[j] - dot(&rj[j + 1..], &rj[j + 1..]);
        if !(d > 0.0) || !d.is_finite() {
            return false;
        }
        let vjj = d.sqrt();
        rj[j] = vjj;
        let rj = &tail[..n];
        for i in 0..j {
            let ri = &mut head[i * n..(i + 1) * n];
            ri[j] = (ri[j] - dot(&ri[j + 1..], &rj[j + 1..])) / vjj;
        }
    }
    true
}

/// In place: upper triangular `v` becomes `v⁻¹` (upper triangular).
fn upper_inverse(v: &mut [f64], n: usize) {
    let mut r = vec![0.0f64; n];
    for i in (0..n).rev() {
        let (head, tail) = v.split_at_mut((i + 1) * n);
        let vi = &mut head[i * n..];
        let inv = 1.0 / vi[i];
        r[i..].fill(0.0);
        for k in i + 1..n {
            let c = vi[k];
            if c != 0.0 {
                let uk = &tail[(k - i - 1) * n..(k - i) * n];
                axpy(&mut r[k..], c, &uk[k..]);
            }
        }
        vi[i] = inv;
        for k in i + 1..n {
            vi[k] = -r[k] * inv;
        }
    }
}

/// The upper Cholesky factor `U` of `(H + damping)⁻¹` (`n × n`, row-major,
/// `H⁻¹ = UᵀU`, lower triangle zero), see the module documentation. `h` is
/// symmetric. Errors: a non-finite `h`, or no positive definite damping.
pub fn hinv_upper(h: &[f64], n: usize) -> Result<Vec<f64>, ModelError> {
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
        if reverse_cholesky(&mut a, n) {
            upper_inverse(&mut a, n);
            for i in 0..n {
                a[i * n..i * n + i].fill(0.0);
            }
            if a.iter().all(|v| v.is_finite()) {
                return Ok(a);
            }
        }
        damp *= 10.0;
    }
    Err(singular("Hessian not positive definite even with damping"))
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
            let u = hinv_upper(&hessian(&x, cols), cols).unwrap();
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
        let u = hinv_upper(&hessian(&x, cols), cols).unwrap();
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
        let u = hinv_upper(&h, cols).unwrap();
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
        let u = hinv_upper(&h, cols).unwrap();
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
    fn bad_hessians_are_errors() {
        assert!(hinv_upper(&[f64::NAN; 4], 2).is_err());
        assert!(hinv_upper(&[1.0; 3], 2).is_err());
        // an all-zero Hessian (no calibration) is usable: the identity's role
        let u = hinv_upper(&[0.0; 16], 4).unwrap();
        assert!(u.iter().all(|v| v.is_finite()));
        assert!(quantize_matrix_gptq(&[0.0; 16], 2, 8, &u[..9], 1).is_err());
    }
}

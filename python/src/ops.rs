//! The SPEC operators of `edgedecoding-kernels` on numpy arrays: each function
//! checks its arguments, calls the kernel and returns new arrays. Shapes and
//! dtypes are those of the SPEC and of the golden vectors (docs/VECTORS.md §3).

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use edgedecoding_kernels as k;
use edgedecoding_kernels::attention::{AttnParams, SCORE_FRAC_MAX};
use edgedecoding_kernels::bfp::{BfpBlock, BFP_EXP_MAX};
use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix, ApotWeights, CODE_MAX,
    CODE_MIN, EXP_MAX,
};
use edgedecoding_kernels::linear::{OUT_FRAC_MAX, OUT_FRAC_MIN};
use edgedecoding_kernels::rmsnorm::{EPS_1E6_Q40, GAMMA_FRAC_MAX};
use edgedecoding_kernels::GROUP;

use crate::arrays::{
    check_ndim, check_range, check_shape, count, f32s, ints, ints_like, kernel_error, out, small,
    value_error, Arr,
};

type Obj<'py> = Bound<'py, PyAny>;

/// `floor(x / 2^s + 1/2)`, ties toward +infinity (SPEC §1.1). `x` int64 array,
/// `s` an integer `>= 0` or an array of `x`'s shape; returns int64.
#[pyfunction]
pub fn round_shift<'py>(x: &Obj<'py>, s: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i64>(x, "x")?;
    let s = ints_like::<u32>(s, "s", &x.shape)?;
    let y = x
        .data
        .iter()
        .zip(&s)
        .map(|(&v, &s)| k::round::round_shift(v, s))
        .collect();
    out(py, y, &x.shape)
}

/// `x · 2^-k`: rounding like `round_shift` for `k >= 0`, a left shift
/// saturating to int64 for `k < 0` (SPEC §1.1). `x` int64, `k` int or array.
#[pyfunction]
pub fn shift_round_sat<'py>(x: &Obj<'py>, k: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i64>(x, "x")?;
    let k = ints_like::<i32>(k, "k", &x.shape)?;
    let y = x
        .data
        .iter()
        .zip(&k)
        .map(|(&v, &k)| k::round::shift_round_sat(v, k))
        .collect();
    out(py, y, &x.shape)
}

/// `floor(a / b + 1/2)` for `b > 0`, `|a| < 2^61` (SPEC §1.1). int64.
#[pyfunction]
pub fn div_round<'py>(a: &Obj<'py>, b: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = a.py();
    let a = ints::<i64>(a, "a")?;
    let b = ints_like::<i64>(b, "b", &a.shape)?;
    for (&a, &b) in a.data.iter().zip(&b) {
        check_range("b", b as i128, 1, i64::MAX as i128)?;
        check_range("|a|", (a as i128).abs(), 0, (1i128 << 61) - 1)?;
    }
    let y = a
        .data
        .iter()
        .zip(&b)
        .map(|(&a, &b)| k::round::div_round(a, b))
        .collect();
    out(py, y, &a.shape)
}

/// `floor(sqrt(n))` for uint64 `n` (SPEC §1.4).
#[pyfunction]
pub fn isqrt<'py>(n: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = n.py();
    let n = ints::<u64>(n, "n")?;
    let y = n.data.iter().map(|&v| k::round::isqrt_u64(v)).collect();
    out(py, y, &n.shape)
}

/// Clamp int64 `x` to `bits`-bit two's complement, `bits` in `[1, 63]` (SPEC §1.3).
#[pyfunction]
pub fn sat_bits<'py>(x: &Obj<'py>, bits: i64) -> PyResult<Obj<'py>> {
    let py = x.py();
    check_range("bits", bits as i128, 1, 63)?;
    let x = ints::<i64>(x, "x")?;
    let y = x
        .data
        .iter()
        .map(|&v| k::round::sat_bits(v, bits as u32))
        .collect();
    out(py, y, &x.shape)
}

/// Saturating narrow of int64 `x` to int8 (SPEC §1.3).
#[pyfunction]
pub fn sat_i8<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i64>(x, "x")?;
    let y: Vec<i8> = x.data.iter().map(|&v| k::round::sat_i8(v)).collect();
    out(py, y, &x.shape)
}

/// Saturating narrow of int64 `x` to int16 (SPEC §1.3).
#[pyfunction]
pub fn sat_i16<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i64>(x, "x")?;
    let y: Vec<i16> = x.data.iter().map(|&v| k::round::sat_i16(v)).collect();
    out(py, y, &x.shape)
}

/// Saturating narrow of int64 `x` to int32 (SPEC §1.3).
#[pyfunction]
pub fn sat_i32<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i64>(x, "x")?;
    let y: Vec<i32> = x.data.iter().map(|&v| k::round::sat_i32(v)).collect();
    out(py, y, &x.shape)
}

/// The blocks of `m` (int8 `[..., 8k]`) and `e` (uint8 `[..., k]`).
fn blocks(m: &Arr<i8>, e: &Arr<u8>) -> PyResult<Vec<BfpBlock>> {
    if m.shape.is_empty() || m.last() % GROUP != 0 {
        return Err(value_error(format!(
            "m: the last dimension must be a multiple of 8, got shape {:?}",
            m.shape
        )));
    }
    let mut want = m.lead().to_vec();
    want.push(m.last() / GROUP);
    check_shape("e", &e.shape, &want)?;
    if let Some(&bad) = e.data.iter().find(|&&v| v > BFP_EXP_MAX) {
        check_range("bfp exponent", bad as i128, 0, BFP_EXP_MAX as i128)?;
    }
    Ok(e.data
        .iter()
        .zip(m.data.chunks_exact(GROUP))
        .map(|(&e, m)| BfpBlock {
            m: m.try_into().expect("chunks of 8"),
            e,
        })
        .collect())
}

/// Block floating point (SPEC §3.1): int32 Q12 `x` `[..., 8k]` → mantissas
/// int8 `[..., 8k]` and exponents uint8 `[..., k]` (each block of 8 alone).
#[pyfunction]
pub fn bfp_quantize<'py>(x: &Obj<'py>) -> PyResult<Bound<'py, PyTuple>> {
    let py = x.py();
    let x = ints::<i32>(x, "x")?;
    if x.shape.is_empty() {
        return Err(value_error("x: expected at least one dimension"));
    }
    if x.last() % GROUP != 0 {
        return Err(kernel_error(
            edgedecoding_kernels::KernelError::NotMultiple {
                what: "bfp input length",
                value: x.last(),
                of: GROUP,
            },
        ));
    }
    let mut b = vec![BfpBlock::default(); x.data.len() / GROUP];
    k::bfp::quantize_bfp(&x.data, &mut b).map_err(kernel_error)?;
    let m: Vec<i8> = b.iter().flat_map(|b| b.m).collect();
    let e: Vec<u8> = b.iter().map(|b| b.e).collect();
    let mut es = x.lead().to_vec();
    es.push(x.last() / GROUP);
    PyTuple::new(py, [out(py, m, &x.shape)?, out(py, e, &es)?])
}

/// The Q12 values of BFP blocks, `m << e` (SPEC §3.2): int8 `m` `[..., 8k]`,
/// uint8 `e` `[..., k]` (`<= 15`) → int64 `[..., 8k]`.
#[pyfunction]
pub fn bfp_dequantize<'py>(m: &Obj<'py>, e: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = m.py();
    let m = ints::<i8>(m, "m")?;
    let e = ints::<u8>(e, "e")?;
    let b = blocks(&m, &e)?;
    let y: Vec<i64> = b.iter().flat_map(k::bfp::dequantize_block).collect();
    out(py, y, &m.shape)
}

/// Checked `(rows, cols)` of unpacked weights: `q` int8 `[rows, cols]`, `s1`,
/// `s2` uint8 `[rows, cols/8]`.
fn unpacked_shape(q: &Arr<i8>, s1: &Arr<u8>, s2: &Arr<u8>) -> PyResult<(usize, usize)> {
    check_ndim(q, "q", &[2])?;
    let (rows, cols) = (q.shape[0], q.shape[1]);
    if cols % GROUP != 0 {
        return Err(kernel_error(
            edgedecoding_kernels::KernelError::NotMultiple {
                what: "cols",
                value: cols,
                of: GROUP,
            },
        ));
    }
    check_shape("s1", &s1.shape, &[rows, cols / GROUP])?;
    check_shape("s2", &s2.shape, &[rows, cols / GROUP])?;
    Ok((rows, cols))
}

/// Packs APoT weights into the SPEC §2.1 streams: codes `q` int8
/// `[rows, cols]` in `[-16, 15]`, exponents `s1`, `s2` uint8 `[rows, cols/8]`
/// in `[0, 7]` → (code stream uint8 `[rows·cols·5/8]`, exponent stream uint8
/// `[ceil(rows·cols/8·6/8)]`).
#[pyfunction]
pub fn apot_pack<'py>(q: &Obj<'py>, s1: &Obj<'py>, s2: &Obj<'py>) -> PyResult<Bound<'py, PyTuple>> {
    let py = q.py();
    let (q, s1, s2) = (
        ints::<i8>(q, "q")?,
        ints::<u8>(s1, "s1")?,
        ints::<u8>(s2, "s2")?,
    );
    let (rows, cols) = unpacked_shape(&q, &s1, &s2)?;
    let mut codes = vec![0u8; packed_codes_len(rows, cols)];
    let mut exps = vec![0u8; packed_exps_len(rows, cols)];
    for (gi, c) in q.data.chunks_exact(GROUP).enumerate() {
        let grp = ApotGroup {
            codes: c.try_into().expect("chunks of 8"),
            s1: s1.data[gi],
            s2: s2.data[gi],
        };
        pack_group(&mut codes, &mut exps, gi, &grp).map_err(kernel_error)?;
    }
    let (nc, ne) = (codes.len(), exps.len());
    PyTuple::new(py, [out(py, codes, &[nc])?, out(py, exps, &[ne])?])
}

/// Unpacks the SPEC §2.1 streams of a `rows x cols` matrix → (`q` int8
/// `[rows, cols]`, `s1`, `s2` uint8 `[rows, cols/8]`).
#[pyfunction]
pub fn apot_unpack<'py>(
    codes: &Obj<'py>,
    exps: &Obj<'py>,
    rows: i64,
    cols: i64,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = codes.py();
    let (rows, cols) = (count("rows", rows)?, count("cols", cols)?);
    let (codes, exps) = (ints::<u8>(codes, "codes")?, ints::<u8>(exps, "exps")?);
    let rexp = vec![0i8; rows];
    let w = ApotMatrix::new(rows, cols, &codes.data, &exps.data, &rexp).map_err(kernel_error)?;
    let g = cols / GROUP;
    let (mut q, mut s1, mut s2) = (Vec::with_capacity(rows * cols), vec![], vec![]);
    for r in 0..rows {
        for j in 0..g {
            let grp = w.group(r, j, ());
            q.extend_from_slice(&grp.codes);
            s1.push(grp.s1);
            s2.push(grp.s2);
        }
    }
    PyTuple::new(
        py,
        [
            out(py, q, &[rows, cols])?,
            out(py, s1, &[rows, g])?,
            out(py, s2, &[rows, g])?,
        ],
    )
}

/// The offline float quantizer (SPEC §2.4): float32 weights `[rows, cols]`
/// → (`q` int8 `[rows, cols]`, `s1`, `s2` uint8 `[rows, cols/8]`, `e_row`
/// int8 `[rows]`).
#[pyfunction]
pub fn apot_quantize<'py>(w: &Obj<'py>) -> PyResult<Bound<'py, PyTuple>> {
    let py = w.py();
    let w = f32s(w, "w")?;
    check_ndim(&w, "w", &[2])?;
    let (rows, cols) = (w.shape[0], w.shape[1]);
    if cols % GROUP != 0 {
        return Err(kernel_error(
            edgedecoding_kernels::KernelError::NotMultiple {
                what: "cols",
                value: cols,
                of: GROUP,
            },
        ));
    }
    let g = cols / GROUP;
    let mut groups = vec![ApotGroup::default(); g];
    let (mut q, mut s1, mut s2, mut er) = (vec![], vec![], vec![], vec![]);
    if cols > 0 {
        for row in w.data.chunks_exact(cols) {
            er.push(k::quant::quantize_row_f32(row, &mut groups));
            push_groups(&groups, &mut q, &mut s1, &mut s2);
        }
    }
    groups_tuple(py, q, s1, s2, er, rows, cols)
}

fn push_groups(groups: &[ApotGroup], q: &mut Vec<i8>, s1: &mut Vec<u8>, s2: &mut Vec<u8>) {
    for grp in groups {
        q.extend_from_slice(&grp.codes);
        s1.push(grp.s1);
        s2.push(grp.s2);
    }
}

fn groups_tuple<'py>(
    py: Python<'py>,
    q: Vec<i8>,
    s1: Vec<u8>,
    s2: Vec<u8>,
    er: Vec<i8>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let g = cols / GROUP;
    PyTuple::new(
        py,
        [
            out(py, q, &[rows, cols])?,
            out(py, s1, &[rows, g])?,
            out(py, s2, &[rows, g])?,
            out(py, er, &[rows])?,
        ],
    )
}

/// The APoT group search (SPEC §2.3): int64 targets `t` `[..., 8]` (`|t| <
/// 2^40`) in units of `unit >= 1` → (`q` int8 `[..., 8]`, `s1`, `s2` uint8 `[...]`).
#[pyfunction]
#[pyo3(signature = (t, unit=1))]
pub fn search_group<'py>(t: &Obj<'py>, unit: i64) -> PyResult<Bound<'py, PyTuple>> {
    let py = t.py();
    check_range("unit", unit as i128, 1, i64::MAX as i128)?;
    let t = ints::<i64>(t, "t")?;
    if t.last() != GROUP || t.shape.is_empty() {
        return Err(value_error(format!(
            "t: the last dimension must be 8, got shape {:?}",
            t.shape
        )));
    }
    if let Some(&bad) = t.data.iter().find(|v| v.unsigned_abs() >= 1 << 40) {
        check_range("|t|", (bad as i128).abs(), 0, (1i128 << 40) - 1)?;
    }
    let (mut q, mut s1, mut s2) = (vec![], vec![], vec![]);
    for c in t.data.chunks_exact(GROUP) {
        let grp = k::quant::search_group(c.try_into().expect("chunks of 8"), unit);
        push_groups(&[grp], &mut q, &mut s1, &mut s2);
    }
    let lead = t.lead().to_vec();
    PyTuple::new(
        py,
        [
            out(py, q, &t.shape)?,
            out(py, s1, &lead)?,
            out(py, s2, &lead)?,
        ],
    )
}

/// The lm_head rows derived from the 10-bit embedding, integers only (SPEC
/// §2.5): int16 `emb` `[rows, cols]`, `emb_exp` in `[-30, 8]` → (`q`, `s1`,
/// `s2`, `e_row`) as `apot_quantize` returns them.
#[pyfunction]
pub fn lm_head_derive<'py>(emb: &Obj<'py>, emb_exp: i64) -> PyResult<Bound<'py, PyTuple>> {
    let py = emb.py();
    check_range("emb_exp", emb_exp as i128, -30, 8)?;
    let emb_exp = emb_exp as i32;
    let emb = ints::<i16>(emb, "emb")?;
    check_ndim(&emb, "emb", &[2])?;
    let (rows, cols) = (emb.shape[0], emb.shape[1]);
    let mut groups = vec![ApotGroup::default(); cols / GROUP];
    let (mut q, mut s1, mut s2, mut er) = (vec![], vec![], vec![], vec![]);
    if cols == 0 || cols % GROUP != 0 {
        return Err(kernel_error(
            edgedecoding_kernels::KernelError::NotMultiple {
                what: "embedding row",
                value: cols,
                of: GROUP,
            },
        ));
    }
    for row in emb.data.chunks_exact(cols) {
        er.push(k::lm_head::derive_head_row(row, emb_exp, &mut groups).map_err(kernel_error)?);
        push_groups(&groups, &mut q, &mut s1, &mut s2);
    }
    if rows == 0 {
        // the kernel checks emb_exp per row: check it for an empty matrix too
        k::lm_head::derive_head_row(&[], emb_exp, &mut []).map_err(kernel_error)?;
    }
    groups_tuple(py, q, s1, s2, er, rows, cols)
}

/// The linear layer (SPEC §4) on packed weights and BFP activations.
///
/// * `codes`, `exps`: the SPEC §2.1 streams (uint8), `row_exps` int8 `[rows]`;
/// * `x_m` int8 `[tokens, cols]` (or `[cols]`), `x_e` uint8 `[tokens, cols/8]`;
/// * `bias` int32 `[rows]` in Q(`out_frac`) or None; `out_frac` in `[0, 30]`.
///
/// Returns int32 `[tokens, rows]` (or `[rows]`) in Q(`out_frac`).
#[pyfunction]
#[pyo3(signature = (codes, exps, row_exps, x_m, x_e, bias=None, out_frac=12))]
pub fn linear<'py>(
    codes: &Obj<'py>,
    exps: &Obj<'py>,
    row_exps: &Obj<'py>,
    x_m: &Obj<'py>,
    x_e: &Obj<'py>,
    bias: Option<&Obj<'py>>,
    out_frac: i64,
) -> PyResult<Obj<'py>> {
    let py = codes.py();
    let (codes, exps) = (ints::<u8>(codes, "codes")?, ints::<u8>(exps, "exps")?);
    let rexp = ints::<i8>(row_exps, "row_exps")?;
    check_ndim(&rexp, "row_exps", &[1])?;
    let (m, e) = (ints::<i8>(x_m, "x_m")?, ints::<u8>(x_e, "x_e")?);
    check_ndim(&m, "x_m", &[1, 2])?;
    check_range(
        "out_frac",
        out_frac as i128,
        OUT_FRAC_MIN as i128,
        OUT_FRAC_MAX as i128,
    )?;
    let x = blocks(&m, &e)?;
    let (rows, cols) = (rexp.data.len(), m.last());
    let w =
        ApotMatrix::new(rows, cols, &codes.data, &exps.data, &rexp.data).map_err(kernel_error)?;
    let bias = bias.map(|b| ints::<i32>(b, "bias")).transpose()?;
    if let Some(b) = &bias {
        check_shape("bias", &b.shape, &[rows])?;
    }
    let mut shape = m.lead().to_vec();
    shape.push(rows);
    let mut y = vec![0i32; shape.iter().product()];
    k::linear::linear(
        &w,
        &x,
        bias.as_ref().map(|b| &b.data[..]),
        out_frac as u32,
        &mut y,
    )
    .map_err(kernel_error)?;
    out(py, y, &shape)
}

/// One accumulator term of the linear layer (SPEC §4.1): `m` int8 `[..., 8]`
/// with exponents `e` uint8 `[...]` (`<= 15`), codes `q` int8 `[..., 8]` in
/// `[-16, 15]`, `s1`, `s2` uint8 `[...]` in `[0, 7]` → int64 `[...]`.
#[pyfunction]
pub fn group_term<'py>(
    m: &Obj<'py>,
    e: &Obj<'py>,
    q: &Obj<'py>,
    s1: &Obj<'py>,
    s2: &Obj<'py>,
) -> PyResult<Obj<'py>> {
    let py = m.py();
    let (m, e) = (ints::<i8>(m, "m")?, ints::<u8>(e, "e")?);
    if m.last() != GROUP || m.shape.is_empty() {
        return Err(value_error(format!(
            "m: the last dimension must be 8, got shape {:?}",
            m.shape
        )));
    }
    check_shape("e", &e.shape, m.lead())?;
    let mut e1 = e.shape.clone();
    e1.push(1);
    let x = blocks(
        &m,
        &Arr {
            data: e.data,
            shape: e1,
        },
    )?;
    let q = ints::<i8>(q, "q")?;
    check_shape("q", &q.shape, &m.shape)?;
    let s1 = ints_like::<u8>(s1, "s1", m.lead())?;
    let s2 = ints_like::<u8>(s2, "s2", m.lead())?;
    for &c in &q.data {
        check_range("code", c as i128, CODE_MIN as i128, CODE_MAX as i128)?;
    }
    for &s in s1.iter().chain(&s2) {
        check_range("s1/s2", s as i128, 0, EXP_MAX as i128)?;
    }
    let y: Vec<i64> = x
        .iter()
        .zip(q.data.chunks_exact(GROUP))
        .enumerate()
        .map(|(i, (b, c))| {
            k::linear::group_term(b, c.try_into().expect("chunks of 8"), s1[i], s2[i])
        })
        .collect();
    out(py, y, m.lead())
}

/// The rescale of a linear accumulator (SPEC §4.2):
/// `sat_i32(shift_round_sat(acc, 12 - out_frac - e_row) + bias)`. `acc`
/// int64 array; `e_row` (int8) and `bias` (int32) one integer or an array of
/// `acc`'s shape; `out_frac` in `[0, 30]`. Returns int32.
#[pyfunction]
#[pyo3(signature = (acc, e_row, out_frac=12, bias=None))]
pub fn rescale<'py>(
    acc: &Obj<'py>,
    e_row: &Obj<'py>,
    out_frac: i64,
    bias: Option<&Obj<'py>>,
) -> PyResult<Obj<'py>> {
    let py = acc.py();
    check_range(
        "out_frac",
        out_frac as i128,
        OUT_FRAC_MIN as i128,
        OUT_FRAC_MAX as i128,
    )?;
    let acc = ints::<i64>(acc, "acc")?;
    let er = ints_like::<i8>(e_row, "e_row", &acc.shape)?;
    let b = match bias {
        Some(b) => ints_like::<i32>(b, "bias", &acc.shape)?,
        None => vec![0; acc.data.len()],
    };
    let y: Vec<i32> = (0..acc.data.len())
        .map(|i| k::linear::rescale(acc.data[i], er[i], out_frac as u32, b[i]))
        .collect();
    out(py, y, &acc.shape)
}

/// Integer RMSNorm (SPEC §5), each row of `x` alone: int32 Q12 `x`
/// `[..., n]`, int16 `gamma` `[n]` in Q(`gamma_frac`), `eps_q40` in
/// `[2^20, 2^40]` → int32 Q12 `[..., n]`.
#[pyfunction]
#[pyo3(signature = (x, gamma, gamma_frac, eps_q40=EPS_1E6_Q40 as i64))]
pub fn rmsnorm<'py>(
    x: &Obj<'py>,
    gamma: &Obj<'py>,
    gamma_frac: i64,
    eps_q40: i64,
) -> PyResult<Obj<'py>> {
    let py = x.py();
    check_range("eps_q40", eps_q40 as i128, 1 << 20, 1 << 40)?;
    let eps_q40 = eps_q40 as u64;
    let x = ints::<i32>(x, "x")?;
    let g = ints::<i16>(gamma, "gamma")?;
    check_ndim(&g, "gamma", &[1])?;
    check_range("gamma_frac", gamma_frac as i128, 0, GAMMA_FRAC_MAX as i128)?;
    if x.shape.is_empty() {
        return Err(value_error("x: expected at least one dimension"));
    }
    let n = x.last();
    let mut y = vec![0i32; x.data.len()];
    if n == 0 || x.data.is_empty() {
        // one empty row: the kernel's length error
        k::rmsnorm::rmsnorm(&[], &g.data, gamma_frac as u32, eps_q40, &mut [])
            .map_err(kernel_error)?;
    }
    for (xr, yr) in x
        .data
        .chunks_exact(n.max(1))
        .zip(y.chunks_exact_mut(n.max(1)))
    {
        k::rmsnorm::rmsnorm(xr, &g.data, gamma_frac as u32, eps_q40, yr).map_err(kernel_error)?;
    }
    out(py, y, &x.shape)
}

/// Steps 1–3 of RMSNorm (SPEC §5) for one int32 Q12 vector: `(inv, k)` with
/// `1/sqrt(mean(x²) + eps) ≈ inv · 2^(-10-k)`.
#[pyfunction]
#[pyo3(signature = (x, eps_q40=EPS_1E6_Q40 as i64))]
pub fn inv_rms(x: &Obj<'_>, eps_q40: i64) -> PyResult<(u64, i32)> {
    let x = ints::<i32>(x, "x")?;
    check_ndim(&x, "x", &[1])?;
    check_range("rmsnorm length", x.data.len() as i128, 1, 1 << 16)?;
    check_range("eps_q40", eps_q40 as i128, 1 << 20, 1 << 40)?;
    Ok(k::rmsnorm::inv_rms(&x.data, eps_q40 as u64))
}

/// The RoPE ROM (SPEC §6.1): (cos, sin) int16 Q14 `[positions, head_dim/2]`.
#[pyfunction]
pub fn rope_table<'py>(
    py: Python<'py>,
    theta: i64,
    head_dim: i64,
    positions: i64,
) -> PyResult<Bound<'py, PyTuple>> {
    let (head_dim, positions) = (count("head_dim", head_dim)?, count("positions", positions)?);
    check_range("theta", theta as i128, 2, u32::MAX as i128)?;
    check_range("positions", positions as i128, 0, 1 << 20)?;
    check_range("head_dim", head_dim as i128, 2, 1024)?;
    let half = head_dim / 2;
    let (mut cos, mut sin) = (vec![0i16; positions * half], vec![0i16; positions * half]);
    k::rope::build_rope_table(theta as u32, head_dim, positions, &mut cos, &mut sin)
        .map_err(kernel_error)?;
    PyTuple::new(
        py,
        [
            out(py, cos, &[positions, half])?,
            out(py, sin, &[positions, half])?,
        ],
    )
}

/// RoPE (SPEC §6.2): rotates int16 `x` `[..., heads·head_dim]` with the table
/// rows `cos`, `sin` int16 (`[head_dim/2]` for every row of `x`, or
/// `[..., head_dim/2]`: one table row per row of `x`). Returns int16.
#[pyfunction]
pub fn rope_apply<'py>(
    x: &Obj<'py>,
    head_dim: i64,
    cos: &Obj<'py>,
    sin: &Obj<'py>,
) -> PyResult<Obj<'py>> {
    let py = x.py();
    let head_dim = count("head_dim", head_dim)?;
    let mut x = ints::<i16>(x, "x")?;
    let (c, s) = (ints::<i16>(cos, "cos")?, ints::<i16>(sin, "sin")?);
    if x.shape.is_empty() {
        return Err(value_error("x: expected at least one dimension"));
    }
    check_shape("sin", &s.shape, &c.shape)?;
    let w = x.last();
    let rows = x.data.len().checked_div(w).unwrap_or(0);
    let half = c.last();
    let per_row = c.shape.len() > 1;
    if per_row {
        check_shape("cos leading dimensions", c.lead(), x.lead())?;
    } else {
        check_ndim(&c, "cos", &[1])?;
    }
    if rows == 0 {
        k::rope::rope_apply(
            &mut [],
            head_dim,
            &c.data[..half.min(c.data.len())],
            &s.data[..half.min(s.data.len())],
        )
        .map_err(kernel_error)?;
    }
    for r in 0..rows {
        let t = if per_row { r } else { 0 };
        k::rope::rope_apply(
            &mut x.data[r * w..(r + 1) * w],
            head_dim,
            &c.data[t * half..(t + 1) * half],
            &s.data[t * half..(t + 1) * half],
        )
        .map_err(kernel_error)?;
    }
    out(py, x.data, &x.shape)
}

/// The unnormalized softmax weight (SPEC §7.2) of score distances `d >= 0`
/// (int64) in Q(`score_frac`) → uint64 Q23.
#[pyfunction]
pub fn exp_weight<'py>(d: &Obj<'py>, score_frac: i64) -> PyResult<Obj<'py>> {
    let py = d.py();
    check_range("score_frac", score_frac as i128, 0, SCORE_FRAC_MAX as i128)?;
    let d = ints::<i64>(d, "d")?;
    if let Some(&bad) = d.data.iter().find(|&&v| v < 0) {
        check_range("d", bad as i128, 0, i64::MAX as i128)?;
    }
    let y: Vec<u64> = d
        .data
        .iter()
        .map(|&v| k::attention::exp_weight(v, score_frac as u32))
        .collect();
    out(py, y, &d.shape)
}

/// Integer softmax (SPEC §7.2) of each row of int64 `scores` `[..., len]` in
/// Q(`score_frac`) → uint16 Q15 `[..., len]`.
#[pyfunction]
pub fn softmax<'py>(scores: &Obj<'py>, score_frac: i64) -> PyResult<Obj<'py>> {
    let py = scores.py();
    let s = ints::<i64>(scores, "scores")?;
    check_range("score_frac", score_frac as i128, 0, SCORE_FRAC_MAX as i128)?;
    if s.shape.is_empty() {
        return Err(value_error("scores: expected at least one dimension"));
    }
    let n = s.last();
    let mut p = vec![0u16; s.data.len()];
    if n == 0 || s.data.is_empty() {
        k::attention::softmax_q15(&[], score_frac as u32, &mut []).map_err(kernel_error)?;
    }
    for (sr, pr) in s
        .data
        .chunks_exact(n.max(1))
        .zip(p.chunks_exact_mut(n.max(1)))
    {
        k::attention::softmax_q15(sr, score_frac as u32, pr).map_err(kernel_error)?;
    }
    out(py, p, &s.shape)
}

/// Attention of one query position (SPEC §7.3): `q` int16
/// `[n_heads·head_dim]` Q(`q_frac`) after RoPE, `k_cache`, `v_cache` int16
/// `[len, n_kv_heads·head_dim]` (positions `0..len`, K after RoPE) → int32
/// `[n_heads·head_dim]` Q(`out_frac`). `length` reads only the first
/// positions of the caches.
#[pyfunction]
#[pyo3(signature = (q, k_cache, v_cache, n_heads, n_kv_heads, head_dim, q_frac, k_frac, v_frac, out_frac=12, length=None))]
pub fn attention<'py>(
    q: &Obj<'py>,
    k_cache: &Obj<'py>,
    v_cache: &Obj<'py>,
    n_heads: i64,
    n_kv_heads: i64,
    head_dim: i64,
    q_frac: i64,
    k_frac: i64,
    v_frac: i64,
    out_frac: i64,
    length: Option<i64>,
) -> PyResult<Obj<'py>> {
    let py = q.py();
    let (n_heads, n_kv_heads) = (count("n_heads", n_heads)?, count("n_kv_heads", n_kv_heads)?);
    let head_dim = count("head_dim", head_dim)?;
    let (q_frac, k_frac) = (small("q_frac", q_frac)?, small("k_frac", k_frac)?);
    let (v_frac, out_frac) = (small("v_frac", v_frac)?, small("out_frac", out_frac)?);
    let length = length.map(|l| count("length", l)).transpose()?;
    let p = AttnParams {
        n_heads,
        n_kv_heads,
        head_dim,
        q_frac,
        k_frac,
        v_frac,
        out_frac,
    };
    p.validate().map_err(kernel_error)?;
    let q = ints::<i16>(q, "q")?;
    check_ndim(&q, "q", &[1])?;
    let k = ints::<i16>(k_cache, "k_cache")?;
    let v = ints::<i16>(v_cache, "v_cache")?;
    check_ndim(&k, "k_cache", &[2])?;
    check_shape("v_cache", &v.shape, &k.shape)?;
    check_shape("k_cache row", &k.shape[1..], &[n_kv_heads * head_dim])?;
    let len = length.unwrap_or(k.shape[0]);
    if len > k.shape[0] {
        return Err(value_error(format!(
            "length = {len} exceeds the {} cached positions",
            k.shape[0]
        )));
    }
    let mut scores = vec![0i64; len];
    let mut probs = vec![0u16; len];
    let mut o = vec![0i32; n_heads * head_dim];
    k::attention::attention(
        &p,
        &q.data,
        &k.data,
        &v.data,
        len,
        &mut scores,
        &mut probs,
        &mut o,
    )
    .map_err(kernel_error)?;
    let n = o.len();
    out(py, o, &[n])
}

/// Sigmoid of int32 Q12 `x` → int32 Q15 in `[0, 32768]` (SPEC §8.1).
#[pyfunction]
pub fn sigmoid<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i32>(x, "x")?;
    let y: Vec<i32> = x.data.iter().map(|&v| k::silu::sigmoid_q15(v)).collect();
    out(py, y, &x.shape)
}

/// SiLU of int32 Q12 `x` → int32 Q12 (SPEC §8.2).
#[pyfunction]
#[pyo3(name = "silu")]
pub fn silu_q12<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i32>(x, "x")?;
    let y: Vec<i32> = x.data.iter().map(|&v| k::silu::silu_q12(v)).collect();
    out(py, y, &x.shape)
}

/// SwiGLU (SPEC §8.3): `sat_i32(round_shift(silu(gate) · up, 12))`, int32 Q12
/// arrays of one shape.
#[pyfunction]
pub fn swiglu<'py>(gate: &Obj<'py>, up: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = gate.py();
    let (g, u) = (ints::<i32>(gate, "gate")?, ints::<i32>(up, "up")?);
    check_shape("up", &u.shape, &g.shape)?;
    let mut y = vec![0i32; g.data.len()];
    k::silu::swiglu(&g.data, &u.data, &mut y).map_err(kernel_error)?;
    out(py, y, &g.shape)
}

/// Residual add (SPEC §9.1): `sat_i32(acc + delta)`, int32 arrays of one
/// shape; returns a new array.
#[pyfunction]
pub fn residual_add<'py>(acc: &Obj<'py>, delta: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = acc.py();
    let (mut a, d) = (ints::<i32>(acc, "acc")?, ints::<i32>(delta, "delta")?);
    check_shape("delta", &d.shape, &a.shape)?;
    k::residual::residual_add(&mut a.data, &d.data).map_err(kernel_error)?;
    out(py, a.data, &a.shape)
}

/// Embedding lookup (SPEC §9.2): int16 10-bit codes (any shape) with the
/// per-tensor exponent `emb_exp` in `[-30, 8]` → int32 Q12.
#[pyfunction]
pub fn embed<'py>(codes: &Obj<'py>, emb_exp: i64) -> PyResult<Obj<'py>> {
    let py = codes.py();
    check_range("emb_exp", emb_exp as i128, -30, 8)?;
    let emb_exp = emb_exp as i32;
    let c = ints::<i16>(codes, "codes")?;
    let mut y = vec![0i32; c.data.len()];
    k::embedding::embed_row(&c.data, emb_exp, &mut y).map_err(kernel_error)?;
    out(py, y, &c.shape)
}

/// Argmax with the lowest index winning ties (SPEC §10): int32 `x` `[n]` →
/// an int; `[..., n]` → uint32 `[...]` (one index per row).
#[pyfunction]
pub fn argmax<'py>(x: &Obj<'py>) -> PyResult<Obj<'py>> {
    let py = x.py();
    let x = ints::<i32>(x, "x")?;
    let n = x.last();
    if x.shape.is_empty() || n == 0 {
        return Err(value_error(format!(
            "x: argmax needs a non-empty last dimension, got shape {:?}",
            x.shape
        )));
    }
    let idx: Vec<u32> = x
        .data
        .chunks_exact(n)
        .map(|r| k::argmax::argmax_i32(r).unwrap_or(0) as u32)
        .collect();
    if x.shape.len() == 1 {
        return Ok(idx[0].into_pyobject(py)?.into_any());
    }
    out(py, idx, x.lead())
}

/// The `EXP2_NEG_Q15` ROM of the softmax (SPEC §7.2): uint16 `[256]`.
#[pyfunction]
pub fn exp2_neg_q15_table(py: Python<'_>) -> Bound<'_, PyArray1<u16>> {
    PyArray1::from_slice(py, &k::tables::EXP2_NEG_Q15)
}

/// The `SIGMOID_Q15` ROM (SPEC §8.1): uint16 `[257]`.
#[pyfunction]
pub fn sigmoid_q15_table(py: Python<'_>) -> Bound<'_, PyArray1<u16>> {
    PyArray1::from_slice(py, &k::tables::SIGMOID_Q15)
}

/// Registers the operators and constants.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(round_shift, m)?)?;
    m.add_function(wrap_pyfunction!(shift_round_sat, m)?)?;
    m.add_function(wrap_pyfunction!(div_round, m)?)?;
    m.add_function(wrap_pyfunction!(isqrt, m)?)?;
    m.add_function(wrap_pyfunction!(sat_bits, m)?)?;
    m.add_function(wrap_pyfunction!(sat_i8, m)?)?;
    m.add_function(wrap_pyfunction!(sat_i16, m)?)?;
    m.add_function(wrap_pyfunction!(sat_i32, m)?)?;
    m.add_function(wrap_pyfunction!(bfp_quantize, m)?)?;
    m.add_function(wrap_pyfunction!(bfp_dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(apot_pack, m)?)?;
    m.add_function(wrap_pyfunction!(apot_unpack, m)?)?;
    m.add_function(wrap_pyfunction!(apot_quantize, m)?)?;
    m.add_function(wrap_pyfunction!(search_group, m)?)?;
    m.add_function(wrap_pyfunction!(lm_head_derive, m)?)?;
    m.add_function(wrap_pyfunction!(linear, m)?)?;
    m.add_function(wrap_pyfunction!(group_term, m)?)?;
    m.add_function(wrap_pyfunction!(rescale, m)?)?;
    m.add_function(wrap_pyfunction!(rmsnorm, m)?)?;
    m.add_function(wrap_pyfunction!(inv_rms, m)?)?;
    m.add_function(wrap_pyfunction!(rope_table, m)?)?;
    m.add_function(wrap_pyfunction!(rope_apply, m)?)?;
    m.add_function(wrap_pyfunction!(exp_weight, m)?)?;
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(attention, m)?)?;
    m.add_function(wrap_pyfunction!(sigmoid, m)?)?;
    m.add_function(wrap_pyfunction!(silu_q12, m)?)?;
    m.add_function(wrap_pyfunction!(swiglu, m)?)?;
    m.add_function(wrap_pyfunction!(residual_add, m)?)?;
    m.add_function(wrap_pyfunction!(embed, m)?)?;
    m.add_function(wrap_pyfunction!(argmax, m)?)?;
    m.add_function(wrap_pyfunction!(exp2_neg_q15_table, m)?)?;
    m.add_function(wrap_pyfunction!(sigmoid_q15_table, m)?)?;
    m.add("ACT_FRAC", edgedecoding_kernels::ACT_FRAC)?;
    m.add("GROUP", GROUP)?;
    m.add("TOKENS_PER_PASS", edgedecoding_kernels::TOKENS_PER_PASS)?;
    m.add("EPS_1E6_Q40", EPS_1E6_Q40)?;
    m.add("LOG2E_Q16", k::attention::LOG2E_Q16)?;
    m.add("MAX_COLS", k::linear::MAX_COLS)?;
    m.add("BFP_EXP_MAX", BFP_EXP_MAX)?;
    Ok(())
}

//! Every SPEC operator behind the C ABI: argument checks, one call of the
//! kernel of `edgedecoding-kernels`, nothing else. Argument order follows the
//! SPEC's pseudo-C and the kernel signatures; every buffer pointer is
//! followed by its length in elements.

use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::attention::{attention, exp_weight, softmax_q15, AttnParams};
use edgedecoding_kernels::bfp::{dequantize_block, quantize_bfp, quantize_block, BfpBlock};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::{pack_group, ApotGroup, ApotMatrix, ApotWeights};
use edgedecoding_kernels::linear::{group_term, linear, rescale};
use edgedecoding_kernels::lm_head::{derive_head_row, DerivedHead};
use edgedecoding_kernels::quant::{
    quantize_row_f32, row_exp_for_f64, row_exp_for_int, search_group,
};
use edgedecoding_kernels::residual::residual_add;
use edgedecoding_kernels::rmsnorm::{inv_rms, rmsnorm};
use edgedecoding_kernels::rope::{build_rope_table, rope_apply};
use edgedecoding_kernels::round::{
    div_round, isqrt_u64, round_shift, sat_bits, sat_i16, sat_i32, sat_i8, shift_round_sat,
};
use edgedecoding_kernels::silu::{sigmoid_q15, silu_q12, swiglu};
use edgedecoding_kernels::tables::{EXP2_NEG_Q15, SIGMOID_Q15};
use edgedecoding_kernels::{KernelError, GROUP};

use crate::ffi::*;

/// One block-floating-point block (SPEC §3): 8 mantissas `m` in `[-128, 127]`
/// and one exponent `e` in `[0, 15]`; lane `i` stands for `m[i] << e` in Q12
/// units. 9 bytes, no padding (the layout of the kernels' `BfpBlock`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct edgedecoding_bfp_block {
    /// Mantissas.
    pub m: [i8; 8],
    /// Exponent (4 bits).
    pub e: u8,
}

/// One weight group (SPEC §2.1): 8 five-bit codes in `[-16, 15]` and two
/// 3-bit exponents; weight = `codes[i] * (2^s1 + 2^s2) * 2^e_row`. 10 bytes.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct edgedecoding_apot_group {
    /// Codes, `[-16, 15]`.
    pub codes: [i8; 8],
    /// First exponent, `[0, 7]`.
    pub s1: u8,
    /// Second exponent, `[0, 7]`.
    pub s2: u8,
}

// The C structs are the kernels' types byte for byte: buffers of them are
// lent to the kernels without a copy (see `blocks` and `groups` below).
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<edgedecoding_bfp_block>() == 9 && size_of::<BfpBlock>() == 9);
    assert!(align_of::<edgedecoding_bfp_block>() == 1 && align_of::<BfpBlock>() == 1);
    assert!(offset_of!(BfpBlock, m) == 0 && offset_of!(BfpBlock, e) == 8);
    assert!(offset_of!(edgedecoding_bfp_block, e) == 8);
    assert!(size_of::<edgedecoding_apot_group>() == 10 && size_of::<ApotGroup>() == 10);
    assert!(align_of::<edgedecoding_apot_group>() == 1 && align_of::<ApotGroup>() == 1);
    assert!(offset_of!(ApotGroup, codes) == 0 && offset_of!(ApotGroup, s1) == 8);
    assert!(offset_of!(ApotGroup, s2) == 9 && offset_of!(edgedecoding_apot_group, s2) == 9);
};

/// A packed APoT matrix (SPEC §2.1) in caller memory: `rows x cols`
/// (`cols % 8 == 0`), the code stream (`rows * cols * 5 / 8` bytes), the
/// exponent stream (`ceil(rows * cols / 8 * 6 / 8)` bytes) and `rows` row
/// exponents. `edgedecoding_packed_lens` gives the two stream lengths.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct edgedecoding_apot_matrix {
    /// Output rows.
    pub rows: usize,
    /// Input columns, a multiple of 8.
    pub cols: usize,
    /// Code stream.
    pub codes: *const u8,
    /// Its length in bytes.
    pub codes_len: usize,
    /// Exponent stream.
    pub exps: *const u8,
    /// Its length in bytes.
    pub exps_len: usize,
    /// Row exponents `e_row`.
    pub row_exps: *const i8,
    /// Their count (`rows`).
    pub row_exps_len: usize,
}

/// Shape and formats of `edgedecoding_attention` (SPEC §7.1): `n_heads` in
/// `[1, 1024]`, `n_kv_heads` dividing it, `head_dim` a power of 4 in
/// `[4, 1024]`, `q_frac`, `k_frac`, `v_frac` in `[0, 15]`, `out_frac` in
/// `[0, 30]`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct edgedecoding_attn_params {
    /// Query heads.
    pub n_heads: u32,
    /// Key/value heads.
    pub n_kv_heads: u32,
    /// Head dimension.
    pub head_dim: u32,
    /// Fraction bits of Q.
    pub q_frac: u32,
    /// Fraction bits of K.
    pub k_frac: u32,
    /// Fraction bits of V.
    pub v_frac: u32,
    /// Fraction bits of the output (12 in the decoder).
    pub out_frac: u32,
}

/// Span of a BFP block buffer.
fn bspan(what: &'static str, p: *const edgedecoding_bfp_block, n: usize) -> R<Span> {
    span(what, p, n)
}

/// BFP blocks lent to the kernels.
///
/// # Safety
/// As [`slice`].
unsafe fn blocks<'a>(
    what: &'static str,
    p: *const edgedecoding_bfp_block,
    n: usize,
) -> R<&'a [BfpBlock]> {
    // SAFETY: the two types have the same size, alignment and field offsets
    // (checked at compile time above) and every byte pattern is valid for
    // both; validity of the memory is the caller's contract.
    unsafe { slice(what, p.cast::<BfpBlock>(), n) }
}

/// BFP blocks written by the kernels.
///
/// # Safety
/// As [`slice_mut`].
unsafe fn blocks_mut<'a>(
    what: &'static str,
    p: *mut edgedecoding_bfp_block,
    n: usize,
) -> R<&'a mut [BfpBlock]> {
    // SAFETY: as in `blocks`; exclusivity is checked by the caller.
    unsafe { slice_mut(what, p.cast::<BfpBlock>(), n) }
}

/// APoT groups written by the kernels.
///
/// # Safety
/// As [`slice_mut`].
unsafe fn groups_mut<'a>(
    what: &'static str,
    p: *mut edgedecoding_apot_group,
    n: usize,
) -> R<&'a mut [ApotGroup]> {
    // SAFETY: same size, alignment and offsets (checked at compile time), all
    // byte patterns valid; exclusivity is checked by the caller.
    unsafe { slice_mut(what, p.cast::<ApotGroup>(), n) }
}

fn c_group(g: ApotGroup) -> edgedecoding_apot_group {
    edgedecoding_apot_group {
        codes: g.codes,
        s1: g.s1,
        s2: g.s2,
    }
}

/// `out_frac` as the kernels take it: checked to `[0, 30]` (SPEC §4.2), then unsigned.
fn out_frac_of(v: i32) -> R<u32> {
    param("out_frac", v as i64, 0, 30)?;
    Ok(v as u32)
}

fn param(what: &'static str, value: i64, min: i64, max: i64) -> R<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(KernelError::Param {
            what,
            value,
            min,
            max,
        }
        .into())
    }
}

/// The matrix view of a C matrix description.
///
/// # Safety
/// `w` points to a valid description whose buffers follow the input contract.
unsafe fn matrix<'a>(w: *const edgedecoding_apot_matrix) -> R<(ApotMatrix<'a>, [Span; 3])> {
    // SAFETY: the caller's contract (a readable description).
    let d = unsafe { read("w", w)? };
    let spans = [
        span("w.codes", d.codes, d.codes_len)?,
        span("w.exps", d.exps, d.exps_len)?,
        span("w.row_exps", d.row_exps, d.row_exps_len)?,
    ];
    // SAFETY: input buffers of the description, valid for their lengths by
    // the contract; they are only read.
    let (c, e, r) = unsafe {
        (
            slice("w.codes", d.codes, d.codes_len)?,
            slice("w.exps", d.exps, d.exps_len)?,
            slice("w.row_exps", d.row_exps, d.row_exps_len)?,
        )
    };
    Ok((ApotMatrix::new(d.rows, d.cols, c, e, r)?, spans))
}

// ------------------------------------------------------------ §1 primitives

/// `floor(x / 2^s + 1/2)`: division by `2^s`, ties toward +infinity (SPEC
/// §1.1); `s == 0` returns `x`, `s >= 64` returns 0. Exact for every input.
#[no_mangle]
pub extern "C" fn edgedecoding_round_shift(x: i64, s: u32) -> i64 {
    guard_value(0, || round_shift(x, s))
}

/// `x * 2^-k`: `round_shift(x, k)` for `k >= 0`, an exact left shift by `-k`
/// saturating to the int64 range for `k < 0` (SPEC §1.1). Every input.
#[no_mangle]
pub extern "C" fn edgedecoding_shift_round_sat(x: i64, k: i32) -> i64 {
    guard_value(0, || shift_round_sat(x, k))
}

/// `floor(a / b + 1/2)` (SPEC §1.1), for `b` in `[1, 2^61)` and
/// `|a| < 2^61`; other arguments give `EDGEDECODING_ERR_PARAM`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_div_round(
    a: i64,
    b: i64,
    out: *mut i64,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        let lim = (1i64 << 61) - 1;
        param("a", a, -lim, lim)?;
        param("b", b, 1, lim)?;
        let v = div_round(a, b);
        // SAFETY: checked by `out_ptr`; written after the computation.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Clamps `x` to `[-2^(bits-1), 2^(bits-1) - 1]` (SPEC §1.3); `bits` in
/// `[1, 63]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_sat_bits(
    x: i64,
    bits: u32,
    out: *mut i64,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        param("bits", bits as i64, 1, 63)?;
        let v = sat_bits(x, bits);
        // SAFETY: checked by `out_ptr`; written after the computation.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Saturating narrow to `int8_t` (SPEC §1.3).
#[no_mangle]
pub extern "C" fn edgedecoding_sat_i8(x: i64) -> i8 {
    guard_value(0, || sat_i8(x))
}

/// Saturating narrow to `int16_t` (SPEC §1.3).
#[no_mangle]
pub extern "C" fn edgedecoding_sat_i16(x: i64) -> i16 {
    guard_value(0, || sat_i16(x))
}

/// Saturating narrow to `int32_t` (SPEC §1.3).
#[no_mangle]
pub extern "C" fn edgedecoding_sat_i32(x: i64) -> i32 {
    guard_value(0, || sat_i32(x))
}

/// The exact sum `a + b` clamped to the int64 range (SPEC §1.3).
#[no_mangle]
pub extern "C" fn edgedecoding_sat_add_i64(a: i64, b: i64) -> i64 {
    guard_value(0, || a.saturating_add(b))
}

/// `floor(sqrt(n))` for every `uint64_t` (SPEC §1.4).
#[no_mangle]
pub extern "C" fn edgedecoding_isqrt_u64(n: u64) -> u64 {
    guard_value(0, || isqrt_u64(n))
}

// ------------------------------------------------------------ §2 weights

/// Stream lengths in bytes of a packed `rows x cols` matrix (SPEC §2.1):
/// codes `rows * cols * 5 / 8`, exponents `ceil(rows * cols / 8 * 6 / 8)`.
/// `cols % 8 == 0`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_packed_lens(
    rows: usize,
    cols: usize,
    codes_len: *mut usize,
    exps_len: *mut usize,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("codes_len", codes_len)?;
        out_ptr("exps_len", exps_len)?;
        if cols % GROUP != 0 {
            return Err(KernelError::NotMultiple {
                what: "cols",
                value: cols,
                of: GROUP,
            }
            .into());
        }
        let n = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(5))
            .ok_or_else(|| fail(EDGEDECODING_ERR_PARAM, "rows * cols overflows"))?;
        let c = n / 8;
        let e = (rows * (cols / GROUP)) // <= rows * cols: no overflow
            .checked_mul(6)
            .ok_or_else(|| fail(EDGEDECODING_ERR_PARAM, "rows * cols overflows"))?
            .div_ceil(8);
        // SAFETY: checked by `out_ptr`; written after the computation.
        unsafe {
            put(codes_len, c);
            put(exps_len, e);
        }
        Ok(())
    })
}

/// Packs one group into the streams at group index `group_index`
/// (`row * cols/8 + g`) (SPEC §2.1). The exponent bits are OR-ed in: zero the
/// streams first. Codes outside `[-16, 15]`, exponents above 7 or streams too
/// short for the index are errors.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_pack_group(
    codes: *mut u8,
    codes_len: usize,
    exps: *mut u8,
    exps_len: usize,
    group_index: usize,
    group: *const edgedecoding_apot_group,
) -> edgedecoding_status {
    guard(|| {
        let gs = span("group", group, 1)?;
        disjoint(
            &[
                span("codes", codes, codes_len)?,
                span("exps", exps, exps_len)?,
            ],
            &[gs],
        )?;
        // SAFETY: the group is a readable struct; the streams are the
        // caller's writable buffers, disjoint from each other and the group.
        let (g, c, e) = unsafe {
            (
                read("group", group)?,
                slice_mut("codes", codes, codes_len)?,
                slice_mut("exps", exps, exps_len)?,
            )
        };
        param(
            "group_index",
            group_index as i64,
            0,
            (isize::MAX / 8) as i64,
        )?;
        let grp = ApotGroup {
            codes: g.codes,
            s1: g.s1,
            s2: g.s2,
        };
        pack_group(c, e, group_index, &grp)?;
        Ok(())
    })
}

/// Reads group `g` of row `row` of a packed matrix (SPEC §2.1) and the row's
/// exponent.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_unpack_group(
    w: *const edgedecoding_apot_matrix,
    row: usize,
    g: usize,
    out: *mut edgedecoding_apot_group,
    e_row: *mut i8,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        out_ptr("e_row", e_row)?;
        // SAFETY: the matrix description and its buffers follow the input
        // contract.
        let (m, _) = unsafe { matrix(w)? };
        param("row", row as i64, 0, m.rows() as i64 - 1)?;
        param("g", g as i64, 0, (m.cols() / GROUP) as i64 - 1)?;
        let (e, ()) = m.row(row);
        let grp = c_group(m.group(row, g, ()));
        // SAFETY: checked by `out_ptr`; written after the last read of `w`.
        unsafe {
            put(out, grp);
            put(e_row, e);
        }
        Ok(())
    })
}

/// Row exponent rule for an integer magnitude (SPEC §2.2): the smallest `e`
/// with `3840 * 2^e >= m`, for `m` in `[0, 2^40)` (0 for `m == 0`).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_row_exp_for_int(
    m: i64,
    out: *mut i32,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        param("m", m, 0, (1i64 << 40) - 1)?;
        let v = row_exp_for_int(m);
        // SAFETY: checked by `out_ptr`.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Row exponent rule for a real magnitude (SPEC §2.2, offline): the smallest
/// integer `e >= -1000` with `3840 * 2^e >= m`; 0 for NaN, infinities and
/// `m <= 0`.
#[no_mangle]
pub extern "C" fn edgedecoding_row_exp_for_f64(m: f64) -> i32 {
    guard_value(0, || row_exp_for_f64(m))
}

/// The group search (SPEC §2.3): the best group for 8 integer targets in
/// units of `unit`: least squared error, ties to the smaller scale, codes
/// rounded half up. `|t[i]| <= 2^40`, `unit` in `[1, 2^40]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_search_group(
    t: *const i64,
    t_len: usize,
    unit: i64,
    out: *mut edgedecoding_apot_group,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        // SAFETY: input buffer of `t_len` values by the contract.
        let t = unsafe { slice("t", t, t_len)? };
        let t: &[i64; GROUP] = t.try_into().map_err(|_| KernelError::Length {
            what: "t",
            expected: GROUP,
            got: t_len,
        })?;
        for &v in t {
            param("t", v, -(1i64 << 40), 1i64 << 40)?;
        }
        param("unit", unit, 1, 1i64 << 40)?;
        let g = c_group(search_group(t, unit));
        // SAFETY: checked by `out_ptr`; written after the last read of `t`.
        unsafe { put(out, g) };
        Ok(())
    })
}

/// The offline float quantizer of one row (SPEC §2.4): `w_len == 8 *
/// out_len`; writes `out_len` groups and the row exponent. Non-finite
/// weights count as 0.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_quantize_row_f32(
    w: *const f32,
    w_len: usize,
    out: *mut edgedecoding_apot_group,
    out_len: usize,
    e_row: *mut i8,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("e_row", e_row)?;
        let os = span("out", out, out_len)?;
        disjoint(&[os, span("e_row", e_row, 1)?], &[span("w", w, w_len)?])?;
        if out_len.checked_mul(GROUP) != Some(w_len) {
            return Err(KernelError::Length {
                what: "weights (8 per output group)",
                expected: out_len.saturating_mul(GROUP),
                got: w_len,
            }
            .into());
        }
        // SAFETY: `w` is an input buffer, `out` an output buffer disjoint from
        // it (checked), both valid for their lengths by the contract.
        let (w, o) = unsafe { (slice("w", w, w_len)?, groups_mut("out", out, out_len)?) };
        let e = quantize_row_f32(w, o);
        // SAFETY: checked by `out_ptr`; disjoint from `out` and `w`.
        unsafe { put(e_row, e) };
        Ok(())
    })
}

/// lm_head derivation of one row from one embedding row of 10-bit codes
/// (SPEC §2.5): `row_len == 8 * out_len`, `emb_exp` in `[-30, 8]`; writes the
/// groups and the row exponent `e_row`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_lm_head_derive_row(
    row: *const i16,
    row_len: usize,
    emb_exp: i32,
    out: *mut edgedecoding_apot_group,
    out_len: usize,
    e_row: *mut i8,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("e_row", e_row)?;
        disjoint(
            &[span("out", out, out_len)?, span("e_row", e_row, 1)?],
            &[span("row", row, row_len)?],
        )?;
        // SAFETY: input and (disjoint, checked) output buffers by the contract.
        let (r, o) = unsafe {
            (
                slice("row", row, row_len)?,
                groups_mut("out", out, out_len)?,
            )
        };
        let e = derive_head_row(r, emb_exp, o)?;
        // SAFETY: checked by `out_ptr`; disjoint from the buffers.
        unsafe { put(e_row, e) };
        Ok(())
    })
}

// ------------------------------------------------------------ §3 BFP

/// Quantizes one block of 8 Q12 values (SPEC §3.1): `e` is the smallest
/// exponent in `[0, 15]` at which every `round_shift(x[i], e)` fits int8;
/// mantissas saturate only when even `e = 15` does not fit. Arrays of exactly
/// 8 (the DPI-C friendly form of `edgedecoding_bfp_quantize`).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_bfp_quantize_block(
    x: *const i32,
    m: *mut i8,
    e: *mut u8,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("e", e)?;
        disjoint(
            &[span("m", m, GROUP)?, span("e", e, 1)?],
            &[span("x", x, GROUP)?],
        )?;
        // SAFETY: x: 8 readable values, m: 8 writable values disjoint from it
        // (checked), by the contract.
        let (x, mo) = unsafe { (slice("x", x, GROUP)?, slice_mut("m", m, GROUP)?) };
        let x: &[i32; GROUP] = x
            .try_into()
            .map_err(|_| fail(EDGEDECODING_ERR_INTERNAL, "block"))?;
        let b = quantize_block(x);
        mo.copy_from_slice(&b.m);
        // SAFETY: checked by `out_ptr`; disjoint from `x` and `m`.
        unsafe { put(e, b.e) };
        Ok(())
    })
}

/// Quantizes a vector, or `T` vectors back to back, into blocks of 8
/// (SPEC §3.1): `x_len % 8 == 0`, `out_len == x_len / 8`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_bfp_quantize(
    x: *const i32,
    x_len: usize,
    out: *mut edgedecoding_bfp_block,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(&[bspan("out", out, out_len)?], &[span("x", x, x_len)?])?;
        // SAFETY: input and (disjoint, checked) output buffers by the contract.
        let (x, o) = unsafe { (slice("x", x, x_len)?, blocks_mut("out", out, out_len)?) };
        quantize_bfp(x, o)?;
        Ok(())
    })
}

/// Value of a block (SPEC §3.2): `out[i] = m[i] << e` in Q12 units, 8 values.
/// `e` in `[0, 15]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_bfp_dequantize_block(
    block: *const edgedecoding_bfp_block,
    out: *mut i64,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(&[span("out", out, out_len)?], &[bspan("block", block, 1)?])?;
        // SAFETY: a readable block; a writable buffer disjoint from it.
        let (b, o) = unsafe { (blocks("block", block, 1)?, slice_mut("out", out, out_len)?) };
        param("bfp exponent", b[0].e as i64, 0, 15)?;
        if o.len() != GROUP {
            return Err(KernelError::Length {
                what: "dequantized block",
                expected: GROUP,
                got: o.len(),
            }
            .into());
        }
        o.copy_from_slice(&dequantize_block(&b[0]));
        Ok(())
    })
}

// ------------------------------------------------------------ §4 linear

/// One group term of the accumulator (SPEC §4.1):
/// `((p << s1) + (p << s2)) << e` with `p = sum m[i] * codes[i]`. Codes in
/// `[-16, 15]`, `s1`, `s2` in `[0, 7]`, the block's `e` in `[0, 15]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_linear_group_term(
    block: *const edgedecoding_bfp_block,
    group: *const edgedecoding_apot_group,
    term: *mut i64,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("term", term)?;
        // SAFETY: two readable structs by the contract.
        let (b, g) = unsafe { (blocks("block", block, 1)?, read("group", group)?) };
        param("bfp exponent", b[0].e as i64, 0, 15)?;
        param("s1", g.s1 as i64, 0, 7)?;
        param("s2", g.s2 as i64, 0, 7)?;
        for &c in &g.codes {
            param("code", c as i64, -16, 15)?;
        }
        let v = group_term(&b[0], &g.codes, g.s1, g.s2);
        // SAFETY: checked by `out_ptr`; written after the reads.
        unsafe { put(term, v) };
        Ok(())
    })
}

/// The output rescale of one accumulator (SPEC §4.2):
/// `y = sat_i32(sat_add_i64(shift_round_sat(acc, 12 - out_frac - e_row), bias))`.
/// `out_frac` in `[0, 30]`; every `acc`, `e_row`, `bias`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_linear_rescale(
    acc: i64,
    e_row: i8,
    out_frac: i32,
    bias: i32,
    y: *mut i32,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("y", y)?;
        let v = rescale(acc, e_row, out_frac_of(out_frac)?, bias);
        // SAFETY: checked by `out_ptr`.
        unsafe { put(y, v) };
        Ok(())
    })
}

/// The linear layer (SPEC §4): `y[t][r] = rescale(sum_c x[t][c] * w[r][c]) +
/// bias[r]` for `T = x_len / (cols/8)` tokens. `x`: token-major blocks
/// (`x[t * cols/8 + g]`); `bias`: `rows` values in Q(out_frac), or NULL with
/// `bias_len == 0` for none; `out_frac` in `[0, 30]`; `y`: `T * rows` values,
/// token-major. `cols` in `[8, 8184]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_linear(
    w: *const edgedecoding_apot_matrix,
    x: *const edgedecoding_bfp_block,
    x_len: usize,
    bias: *const i32,
    bias_len: usize,
    out_frac: i32,
    y: *mut i32,
    y_len: usize,
) -> edgedecoding_status {
    guard(|| {
        // SAFETY: the matrix description and its buffers are inputs.
        let (m, ws) = unsafe { matrix(w)? };
        let ins = [
            ws[0],
            ws[1],
            ws[2],
            bspan("x", x, x_len)?,
            span("bias", bias, bias_len)?,
        ];
        disjoint(&[span("y", y, y_len)?], &ins)?;
        // SAFETY: inputs, and an output disjoint from all of them (checked).
        let (xb, b, yo) = unsafe {
            (
                blocks("x", x, x_len)?,
                slice("bias", bias, bias_len)?,
                slice_mut("y", y, y_len)?,
            )
        };
        let b = (!bias.is_null() || bias_len != 0).then_some(b);
        linear(&m, xb, b, out_frac_of(out_frac)?, yo)?;
        Ok(())
    })
}

/// The linear layer on the lm_head derived on the fly from a 10-bit
/// embedding (SPEC §2.5, §4; the logits of the decoder): `emb` is
/// `vocab x cols` codes, `emb_exp` in `[-30, 8]`; with `keep` (NULL and
/// `keep_len == 0` for none) head row `r` is embedding row `keep[r]`. `x`,
/// `out_frac`, `y` as in `edgedecoding_linear` (no bias).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_linear_derived_head(
    emb: *const i16,
    emb_len: usize,
    cols: usize,
    emb_exp: i32,
    keep: *const u32,
    keep_len: usize,
    x: *const edgedecoding_bfp_block,
    x_len: usize,
    out_frac: i32,
    y: *mut i32,
    y_len: usize,
) -> edgedecoding_status {
    guard(|| {
        let ins = [
            span("emb", emb, emb_len)?,
            span("keep", keep, keep_len)?,
            bspan("x", x, x_len)?,
        ];
        disjoint(&[span("y", y, y_len)?], &ins)?;
        // SAFETY: inputs, and an output disjoint from all of them (checked).
        let (e, k, xb, yo) = unsafe {
            (
                slice("emb", emb, emb_len)?,
                slice("keep", keep, keep_len)?,
                blocks("x", x, x_len)?,
                slice_mut("y", y, y_len)?,
            )
        };
        let k = (!keep.is_null() || keep_len != 0).then_some(k);
        let head = DerivedHead::new(e, cols, emb_exp, k)?;
        linear(&head, xb, None, out_frac_of(out_frac)?, yo)?;
        Ok(())
    })
}

// ------------------------------------------------------------ §5 RMSNorm

/// RMSNorm of one vector (SPEC §5): `n = x_len` in `[1, 65536]`, `gamma` and
/// `out` of `n` values, `gamma_frac` in `[0, 15]`, `eps_q40` in
/// `[2^20, 2^40]` (Qwen2: 1099512).
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rmsnorm(
    x: *const i32,
    x_len: usize,
    gamma: *const i16,
    gamma_len: usize,
    gamma_frac: u32,
    eps_q40: u64,
    out: *mut i32,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("out", out, out_len)?],
            &[span("x", x, x_len)?, span("gamma", gamma, gamma_len)?],
        )?;
        // SAFETY: inputs, and an output disjoint from them (checked).
        let (xs, g, o) = unsafe {
            (
                slice("x", x, x_len)?,
                slice("gamma", gamma, gamma_len)?,
                slice_mut("out", out, out_len)?,
            )
        };
        rmsnorm(xs, g, gamma_frac, eps_q40, o)?;
        Ok(())
    })
}

/// Steps 1-3 of RMSNorm (SPEC §5): `inv` and `k` with
/// `1 / sqrt(mean(x^2) * 2^-24 + eps * 2^-40) ~= inv * 2^(-10-k)`. Same
/// ranges as `edgedecoding_rmsnorm`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rmsnorm_inv_rms(
    x: *const i32,
    x_len: usize,
    eps_q40: u64,
    inv: *mut u64,
    k: *mut i32,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("inv", inv)?;
        out_ptr("k", k)?;
        param("rmsnorm length", x_len as i64, 1, 1 << 16)?;
        param("eps_q40", eps_q40 as i64, 1 << 20, 1 << 40)?;
        // SAFETY: an input buffer.
        let xs = unsafe { slice("x", x, x_len)? };
        let (i, kk) = inv_rms(xs, eps_q40);
        // SAFETY: checked by `out_ptr`; written after the last read of `x`.
        unsafe {
            put(inv, i);
            put(k, kk);
        }
        Ok(())
    })
}

// ------------------------------------------------------------ §6 RoPE

/// Builds the RoPE tables (SPEC §6.1, ROM contents): `cos[p * half + i]`,
/// `sin[p * half + i]` in Q14 for `positions` positions, `half =
/// head_dim / 2`; `head_dim` even in `[2, 1024]`, `theta >= 2`; both tables
/// `positions * half` long.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rope_table(
    theta: u32,
    head_dim: usize,
    positions: usize,
    cos: *mut i16,
    cos_len: usize,
    sin: *mut i16,
    sin_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("cos", cos, cos_len)?, span("sin", sin, sin_len)?],
            &[],
        )?;
        if positions.checked_mul(head_dim).is_none() {
            return Err(fail(
                EDGEDECODING_ERR_PARAM,
                "positions * head_dim overflows",
            ));
        }
        // SAFETY: two writable buffers, disjoint (checked).
        let (c, s) = unsafe {
            (
                slice_mut("cos", cos, cos_len)?,
                slice_mut("sin", sin, sin_len)?,
            )
        };
        build_rope_table(theta, head_dim, positions, c, s)?;
        Ok(())
    })
}

/// Rotates `x_len / head_dim` heads in place with one position's table row
/// (SPEC §6.2; "rotate half" pairing `i` with `i + head_dim/2`). `x_len` a
/// multiple of the even `head_dim`; `cos`, `sin`: `head_dim / 2` values Q14.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rope_apply(
    x: *mut i16,
    x_len: usize,
    head_dim: usize,
    cos: *const i16,
    cos_len: usize,
    sin: *const i16,
    sin_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("x", x, x_len)?],
            &[span("cos", cos, cos_len)?, span("sin", sin, sin_len)?],
        )?;
        // SAFETY: x is written in place, disjoint from the two inputs (checked).
        let (xs, c, s) = unsafe {
            (
                slice_mut("x", x, x_len)?,
                slice("cos", cos, cos_len)?,
                slice("sin", sin, sin_len)?,
            )
        };
        rope_apply(xs, head_dim, c, s)?;
        Ok(())
    })
}

// ------------------------------------------------------------ §7 attention

/// Unnormalized softmax weight in Q23 of a score at distance `d >= 0` from
/// the row maximum (SPEC §7.2): `d` in `[0, INT64_MAX]`, `score_frac` in
/// `[0, 35]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_exp_weight(
    d: i64,
    score_frac: u32,
    out: *mut u64,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("out", out)?;
        param("d", d, 0, i64::MAX)?;
        param("score_frac", score_frac as i64, 0, 35)?;
        let v = exp_weight(d, score_frac);
        // SAFETY: checked by `out_ptr`.
        unsafe { put(out, v) };
        Ok(())
    })
}

/// Integer softmax of one row (SPEC §7.2): `scores` in Q(score_frac),
/// `len = scores_len` in `[1, 65536]`, `score_frac` in `[0, 35]`; `probs`:
/// `len` values, Q15 in `[0, 32768]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_softmax_q15(
    scores: *const i64,
    scores_len: usize,
    score_frac: u32,
    probs: *mut u16,
    probs_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("probs", probs, probs_len)?],
            &[span("scores", scores, scores_len)?],
        )?;
        // SAFETY: an input and a disjoint (checked) output buffer.
        let (s, p) = unsafe {
            (
                slice("scores", scores, scores_len)?,
                slice_mut("probs", probs, probs_len)?,
            )
        };
        softmax_q15(s, score_frac, p)?;
        Ok(())
    })
}

/// Attention of one query position over `len` cached positions (SPEC §7.3):
/// `q`: `n_heads * head_dim` values Q(q_frac) after RoPE; `k_cache`,
/// `v_cache`: at least `len * n_kv_heads * head_dim` values, layout
/// `[position][kv_head][dim]`; `scores`, `probs`: caller scratch of at least
/// `len` values; `out`: `n_heads * head_dim` values Q(out_frac). `len` in
/// `[1, 65536]`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_attention(
    params: *const edgedecoding_attn_params,
    q: *const i16,
    q_len: usize,
    k_cache: *const i16,
    k_cache_len: usize,
    v_cache: *const i16,
    v_cache_len: usize,
    len: usize,
    scores: *mut i64,
    scores_len: usize,
    probs: *mut u16,
    probs_len: usize,
    out: *mut i32,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        let ins = [
            span("params", params, 1)?,
            span("q", q, q_len)?,
            span("k_cache", k_cache, k_cache_len)?,
            span("v_cache", v_cache, v_cache_len)?,
        ];
        let outs = [
            span("scores", scores, scores_len)?,
            span("probs", probs, probs_len)?,
            span("out", out, out_len)?,
        ];
        disjoint(&outs, &ins)?;
        // SAFETY: four inputs and three outputs, the outputs disjoint from
        // each other and from the inputs (checked).
        let (p, qs, k, v, s, pr, o) = unsafe {
            (
                read("params", params)?,
                slice("q", q, q_len)?,
                slice("k_cache", k_cache, k_cache_len)?,
                slice("v_cache", v_cache, v_cache_len)?,
                slice_mut("scores", scores, scores_len)?,
                slice_mut("probs", probs, probs_len)?,
                slice_mut("out", out, out_len)?,
            )
        };
        let ap = AttnParams {
            n_heads: p.n_heads as usize,
            n_kv_heads: p.n_kv_heads as usize,
            head_dim: p.head_dim as usize,
            q_frac: p.q_frac,
            k_frac: p.k_frac,
            v_frac: p.v_frac,
            out_frac: p.out_frac,
        };
        attention(&ap, qs, k, v, len, s, pr, o)?;
        Ok(())
    })
}

// ------------------------------------------------------------ §8 SiLU

/// Sigmoid of a Q12 value, Q15 result in `[0, 32768]` (SPEC §8.1: 257-entry
/// table, linear interpolation, clamped outside `[-8, 8)`). Every input.
#[no_mangle]
pub extern "C" fn edgedecoding_sigmoid_q15(x: i32) -> i32 {
    guard_value(0, || sigmoid_q15(x))
}

/// `silu(x) = round_shift(x * sigmoid_q15(x), 15)`, Q12 in and out (SPEC
/// §8.2). Every input.
#[no_mangle]
pub extern "C" fn edgedecoding_silu_q12(x: i32) -> i32 {
    guard_value(0, || silu_q12(x))
}

/// SwiGLU (SPEC §8.3): `out[i] = sat_i32(round_shift(silu_q12(gate[i]) *
/// up[i], 12))`, all Q12, three buffers of equal length.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_swiglu(
    gate: *const i32,
    gate_len: usize,
    up: *const i32,
    up_len: usize,
    out: *mut i32,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("out", out, out_len)?],
            &[span("gate", gate, gate_len)?, span("up", up, up_len)?],
        )?;
        // SAFETY: two inputs and a disjoint (checked) output.
        let (g, u, o) = unsafe {
            (
                slice("gate", gate, gate_len)?,
                slice("up", up, up_len)?,
                slice_mut("out", out, out_len)?,
            )
        };
        swiglu(g, u, o)?;
        Ok(())
    })
}

// ------------------------------------------------------------ §9 residual, embedding

/// Residual add in place (SPEC §9.1): `acc[i] = sat_i32(acc[i] + delta[i])`,
/// equal lengths, `delta` not overlapping `acc`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_residual_add(
    acc: *mut i32,
    acc_len: usize,
    delta: *const i32,
    delta_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(
            &[span("acc", acc, acc_len)?],
            &[span("delta", delta, delta_len)?],
        )?;
        // SAFETY: `acc` is written in place, disjoint from `delta` (checked).
        let (a, d) = unsafe {
            (
                slice_mut("acc", acc, acc_len)?,
                slice("delta", delta, delta_len)?,
            )
        };
        residual_add(a, d)?;
        Ok(())
    })
}

/// Embedding lookup of one row (SPEC §9.2): 10-bit codes (clamped to
/// `[-512, 511]`), real value `code * 2^emb_exp`, into Q12; `emb_exp` in
/// `[-30, 8]`, `out_len == row_len`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_embed_row(
    row: *const i16,
    row_len: usize,
    emb_exp: i32,
    out: *mut i32,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        disjoint(&[span("out", out, out_len)?], &[span("row", row, row_len)?])?;
        // SAFETY: an input and a disjoint (checked) output.
        let (r, o) = unsafe { (slice("row", row, row_len)?, slice_mut("out", out, out_len)?) };
        embed_row(r, emb_exp, o)?;
        Ok(())
    })
}

// ------------------------------------------------------------ §10 argmax

/// Index of the largest value, the lowest index among equal maxima (SPEC
/// §10). `x_len >= 1`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_argmax_i32(
    x: *const i32,
    x_len: usize,
    index: *mut usize,
) -> edgedecoding_status {
    guard(|| {
        out_ptr("index", index)?;
        // SAFETY: an input buffer.
        let xs = unsafe { slice("x", x, x_len)? };
        let i = argmax_i32(xs).ok_or(KernelError::Length {
            what: "argmax input (at least 1)",
            expected: 1,
            got: 0,
        })?;
        // SAFETY: checked by `out_ptr`; written after the last read of `x`.
        unsafe { put(index, i) };
        Ok(())
    })
}

// ------------------------------------------------------------ ROM tables

/// The normative softmax ROM `EXP2_NEG_Q15` (SPEC §7.2): 256 entries,
/// `round(2^15 * 2^(-f/256))`; `out_len == 256`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rom_exp2_neg_q15(
    out: *mut u16,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        // SAFETY: one writable buffer.
        let o = unsafe { slice_mut("out", out, out_len)? };
        if o.len() != EXP2_NEG_Q15.len() {
            return Err(KernelError::Length {
                what: "exp2 ROM",
                expected: EXP2_NEG_Q15.len(),
                got: o.len(),
            }
            .into());
        }
        o.copy_from_slice(&EXP2_NEG_Q15);
        Ok(())
    })
}

/// The normative sigmoid ROM `SIGMOID_Q15` (SPEC §8.1): 257 entries,
/// `round(2^15 * sigmoid(-8 + i/16))`; `out_len == 257`.
#[no_mangle]
pub unsafe extern "C" fn edgedecoding_rom_sigmoid_q15(
    out: *mut u16,
    out_len: usize,
) -> edgedecoding_status {
    guard(|| {
        // SAFETY: one writable buffer.
        let o = unsafe { slice_mut("out", out, out_len)? };
        if o.len() != SIGMOID_Q15.len() {
            return Err(KernelError::Length {
                what: "sigmoid ROM",
                expected: SIGMOID_Q15.len(),
                got: o.len(),
            }
            .into());
        }
        o.copy_from_slice(&SIGMOID_Q15);
        Ok(())
    })
}

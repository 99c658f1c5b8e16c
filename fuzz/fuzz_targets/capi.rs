//! The C ABI (`capi`, header `capi/include/edgedecoding.h`) called the way a
//! C testbench would, with fuzzed arguments: every buffer is real memory of
//! exactly the length passed (the header's contract), but lengths, values,
//! NULL pointers, misaligned pointers, overlapping in/out buffers, token ids
//! and model bytes are the fuzzer's. No call may panic (libFuzzer aborts on
//! a panic even when the library catches it), return EDGEDECODING_ERR_PANIC
//! or EDGEDECODING_ERR_INTERNAL, or touch memory outside the buffers
//! (AddressSanitizer).
//!
//! Input: a u32 little-endian length and that many bytes of model (`.edq`)
//! data, then a stream of operations: one byte selects the call, the bytes
//! after it its arguments (reads past the end give zeros).
#![no_main]

use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::ptr::{null, null_mut};

use edgedecoding::ffi::*;
use edgedecoding::model::*;
use edgedecoding::ops::*;
use edgedecoding::{edgedecoding_last_error, edgedecoding_status_name};
use libfuzzer_sys::fuzz_target;

/// Longest buffer the harness makes (elements).
const MAX_LEN: usize = 1 << 14;

struct Cur<'a>(&'a [u8]);

impl Cur<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    fn i64(&mut self) -> i64 {
        self.u64() as i64
    }
    /// A small value, often 0..=16, sometimes anything below 2^16.
    fn small(&mut self) -> usize {
        let b = self.u8();
        if b < 0xF0 {
            (b % 17) as usize
        } else {
            self.u16() as usize
        }
    }
    /// A length: mostly the one the call expects, sometimes off by one,
    /// zero or arbitrary.
    fn len(&mut self, expected: usize) -> usize {
        let l = match self.u8() % 16 {
            0..=10 => expected,
            11 => expected + 1,
            12 => expected.saturating_sub(1),
            13 => 0,
            _ => self.u16() as usize,
        };
        l.min(MAX_LEN)
    }
}

/// A buffer of `len` `T` (any bytes are a valid `T` for every type used
/// here), 8-byte aligned storage; passed as NULL or misaligned when the
/// fuzzer says so (then its storage still covers `len` elements).
struct Buf<T> {
    store: Vec<u64>,
    off: usize,
    len: usize,
    null: bool,
    _t: PhantomData<T>,
}

impl<T: Copy> Buf<T> {
    fn new(c: &mut Cur, expected: usize) -> Self {
        let len = c.len(expected);
        let mode = c.u8();
        let null = mode == 0xFF;
        let off = usize::from(mode == 0xFE && std::mem::align_of::<T>() > 1);
        let bytes = len * std::mem::size_of::<T>() + off;
        let mut store = vec![0u64; bytes.div_ceil(8)];
        // content: a few fuzzed bytes repeated
        let k = (c.u8() % 17) as usize;
        let seed: Vec<u8> = (0..k).map(|_| c.u8()).collect();
        if !seed.is_empty() {
            let raw = bytemuck_bytes(&mut store);
            for (i, b) in raw.iter_mut().enumerate() {
                *b = seed[i % seed.len()];
            }
        }
        Self {
            store,
            off,
            len,
            null,
            _t: PhantomData,
        }
    }
    fn ptr(&self) -> *const T {
        if self.null {
            null()
        } else {
            // SAFETY: `off` is 0 or 1 and the storage holds `off` more bytes
            // than the `len` elements.
            unsafe { self.store.as_ptr().cast::<u8>().add(self.off).cast() }
        }
    }
    fn mut_ptr(&mut self) -> *mut T {
        self.ptr().cast_mut()
    }
}

fn bytemuck_bytes(v: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 storage viewed as its bytes (u8 has no alignment or
    // validity requirement).
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 8) }
}

/// A single-value output: a real location, or NULL when the fuzzer says so.
fn out<T>(c: &mut Cur, slot: &mut T) -> *mut T {
    if c.u8() == 0xFF {
        null_mut()
    } else {
        slot
    }
}

fn check(s: edgedecoding_status) {
    assert_ne!(s, EDGEDECODING_ERR_PANIC, "{}", last_error());
    assert_ne!(s, EDGEDECODING_ERR_INTERNAL, "{}", last_error());
    // SAFETY: returns a static NUL-terminated string for every value.
    let name = unsafe { CStr::from_ptr(edgedecoding_status_name(s as i32)) };
    assert!(name.to_bytes().starts_with(b"EDGEDECODING_"));
    if s != EDGEDECODING_OK {
        assert!(!last_error().is_empty(), "{s:?} without a message");
    }
}

fn last_error() -> String {
    // SAFETY: a NUL-terminated string owned by the library, valid until the
    // next failing call on this thread.
    unsafe { CStr::from_ptr(edgedecoding_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The probe: reads every value it is lent (ASan checks the lengths) and
/// calls back into the busy handle, which must refuse.
unsafe extern "C" fn probe(user: *mut c_void, s: *const edgedecoding_stage_data) {
    // SAFETY: `user` is the harness's handle pointer; `s` and what it points
    // to are valid during the call (the library's contract).
    let (m, s) = unsafe { (user.cast::<edgedecoding_model>(), &*s) };
    let width = match s.dtype {
        EDGEDECODING_DTYPE_I32 | EDGEDECODING_DTYPE_U32 => 4,
        EDGEDECODING_DTYPE_I16 => 2,
        EDGEDECODING_DTYPE_BFP => 9,
        d => panic!("dtype {d}"),
    };
    // SAFETY: `len` elements of `width` bytes at `values`.
    let bytes = unsafe { std::slice::from_raw_parts(s.values.cast::<u8>(), s.len * width) };
    std::hint::black_box(bytes.iter().fold(0u8, |a, &b| a ^ b));
    // SAFETY: a static NUL-terminated name.
    assert!(!unsafe { CStr::from_ptr(s.name) }.to_bytes().is_empty());
    let mut pos = 0usize;
    // SAFETY: a live handle; `pos` is a valid location.
    let st = unsafe { edgedecoding_model_position(m, &mut pos) };
    assert_eq!(st, EDGEDECODING_ERR_BUSY);
}

struct Session {
    model: *mut edgedecoding_model,
    n_kept: usize,
    vocab: u32,
}

impl Session {
    fn token(&self, c: &mut Cur) -> u32 {
        match c.u8() % 4 {
            0 => c.u32(),
            _ => c.u16() as u32 % self.vocab.max(1),
        }
    }
    fn close(&mut self) {
        if !self.model.is_null() {
            // SAFETY: a handle from `edgedecoding_model_open_bytes`, closed once.
            check(unsafe { edgedecoding_model_close(self.model) });
            self.model = null_mut();
        }
    }
}

fn model_op(op: u8, c: &mut Cur, s: &mut Session, model_bytes: &[u8]) {
    // Calls on a NULL handle are allowed (EDGEDECODING_ERR_NULL).
    let m = s.model;
    // SAFETY (every call below): `m` is NULL or a live handle from
    // `edgedecoding_model_open_bytes`; every buffer is a `Buf` or a local
    // of the length passed; single-value outputs are locals or NULL.
    unsafe {
        match op % 12 {
            0 => {
                s.close();
                let (data, len) = match c.u8() {
                    0xFF => (null(), model_bytes.len()),
                    0xFE => (model_bytes.as_ptr(), model_bytes.len() / 2),
                    _ => (model_bytes.as_ptr(), model_bytes.len()),
                };
                let backend = (c.u8() % 3) as u32;
                let threads = (c.u8() % 3) as u32;
                let mut h = null_mut();
                let o = out(c, &mut h);
                let st = edgedecoding_model_open_bytes(data, len, backend, threads, o);
                check(st);
                if st == EDGEDECODING_OK {
                    s.model = h;
                    let mut info = edgedecoding_model_info::default();
                    check(edgedecoding_model_get_info(h, &mut info));
                    s.n_kept = info.n_kept as usize;
                    s.vocab = info.vocab;
                }
            }
            1 => {
                let mut info = edgedecoding_model_info::default();
                let o = out(c, &mut info);
                check(edgedecoding_model_get_info(m, o));
            }
            2 => {
                let mut f = edgedecoding_layer_formats::default();
                let l = c.small() as u32;
                let o = out(c, &mut f);
                check(edgedecoding_model_layer_formats(m, l, o));
            }
            3 => {
                let mut t = 0u32;
                let r = c.u16() as u32;
                let o = out(c, &mut t);
                check(edgedecoding_model_token_of_row(m, r, o));
            }
            4 => {
                let mut p = 0usize;
                let o = out(c, &mut p);
                check(edgedecoding_model_position(m, o));
            }
            5 => check(edgedecoding_model_reset(m)),
            6 | 7 => {
                let n = c.small().min(24);
                let toks: Vec<u32> = (0..n).map(|_| s.token(c)).collect();
                let tp = if c.u8() == 0xFF {
                    null()
                } else {
                    toks.as_ptr()
                };
                let mut next = 0u32;
                let o = if c.u8() & 1 == 0 {
                    &mut next
                } else {
                    null_mut()
                };
                if op % 12 == 6 {
                    check(edgedecoding_model_prefill(m, tp, n, o));
                } else {
                    check(edgedecoding_model_prefill_probed(
                        m,
                        tp,
                        n,
                        Some(probe),
                        m.cast(),
                        o,
                    ));
                }
            }
            8 | 9 => {
                let t = s.token(c);
                let mut next = 0u32;
                let o = if c.u8() & 1 == 0 {
                    &mut next
                } else {
                    null_mut()
                };
                match (op % 12, c.u8() % 3) {
                    (8, _) => check(edgedecoding_model_decode(m, t, o)),
                    (_, 0) => check(edgedecoding_model_decode_parity_probed(
                        m,
                        t,
                        Some(probe),
                        m.cast(),
                        o,
                    )),
                    _ => check(edgedecoding_model_decode_parity(m, t, o)),
                }
            }
            10 => {
                let mut b = Buf::<i32>::new(c, s.n_kept);
                check(edgedecoding_model_logits(m, b.mut_ptr(), b.len));
            }
            _ => {
                let mut t = 0u32;
                let o = out(c, &mut t);
                check(edgedecoding_model_next_token(m, o));
            }
        }
    }
}

fn group(c: &mut Cur) -> edgedecoding_apot_group {
    let mut g = edgedecoding_apot_group::default();
    for x in g.codes.iter_mut() {
        *x = c.u8() as i8;
    }
    g.s1 = c.u8();
    g.s2 = c.u8();
    g
}

fn block(c: &mut Cur) -> edgedecoding_bfp_block {
    let mut b = edgedecoding_bfp_block::default();
    for x in b.m.iter_mut() {
        *x = c.u8() as i8;
    }
    b.e = c.u8();
    b
}

/// An APoT matrix of `rows x cols` with fuzzed streams of about the right
/// lengths (the `Buf`s must outlive the matrix).
fn matrix(
    c: &mut Cur,
    rows: usize,
    cols: usize,
) -> (edgedecoding_apot_matrix, Buf<u8>, Buf<u8>, Buf<i8>) {
    let (mut cl, mut el) = (0usize, 0usize);
    // SAFETY: both outputs are locals.
    let st = unsafe { edgedecoding_packed_lens(rows, cols, &mut cl, &mut el) };
    check(st);
    let codes = Buf::<u8>::new(c, cl);
    let exps = Buf::<u8>::new(c, el);
    let rexp = Buf::<i8>::new(c, rows);
    let w = edgedecoding_apot_matrix {
        rows,
        cols,
        codes: codes.ptr(),
        codes_len: codes.len,
        exps: exps.ptr(),
        exps_len: exps.len,
        row_exps: rexp.ptr(),
        row_exps_len: rexp.len,
    };
    (w, codes, exps, rexp)
}

fn kernel_op(op: u8, c: &mut Cur) {
    // SAFETY (every call below): every pointer is a `Buf` of the length
    // passed with it (or NULL / misaligned as the header allows checking),
    // a struct local, or a single-value local; fixed-size arguments
    // (`bfp_quantize_block`'s 8 lanes) get 8 elements.
    unsafe {
        match op % 24 {
            0 => {
                let (x, s, k) = (c.i64(), c.u32() % 80, c.u32() as i32);
                std::hint::black_box((
                    edgedecoding::ops::edgedecoding_round_shift(x, s),
                    edgedecoding_shift_round_sat(x, k),
                    edgedecoding_sat_i8(x),
                    edgedecoding_sat_i16(x),
                    edgedecoding_sat_i32(x),
                    edgedecoding_sat_add_i64(x, c.i64()),
                    edgedecoding_isqrt_u64(x as u64),
                    edgedecoding_sigmoid_q15(x as i32),
                    edgedecoding_silu_q12(k),
                    edgedecoding_row_exp_for_f64(f64::from_bits(c.u64())),
                ));
            }
            1 => {
                let (a, b) = (c.i64(), c.i64());
                let mut v = 0i64;
                let o = out(c, &mut v);
                check(edgedecoding_div_round(a, b, o));
                let (x, bits) = (c.i64(), c.u32() % 72);
                check(edgedecoding_sat_bits(x, bits, &mut v));
                let mut e = 0i32;
                check(edgedecoding_row_exp_for_int(c.i64(), &mut e));
                let mut w = 0u64;
                check(edgedecoding_exp_weight(c.i64(), c.u32() % 40, &mut w));
            }
            2 => {
                let (rows, cols) = (c.small(), c.small() * 8);
                let (mut cl, mut el) = (0usize, 0usize);
                let o = out(c, &mut cl);
                check(edgedecoding_packed_lens(rows, cols, o, &mut el));
                check(edgedecoding_packed_lens(
                    c.u64() as usize,
                    c.u64() as usize,
                    &mut cl,
                    &mut el,
                ));
            }
            3 => {
                let (rows, cols) = (c.small().max(1), c.small().max(1) * 8);
                let (mut cl, mut el) = (0usize, 0usize);
                check(edgedecoding_packed_lens(rows, cols, &mut cl, &mut el));
                let mut codes = Buf::<u8>::new(c, cl);
                let mut exps = Buf::<u8>::new(c, el);
                let g = group(c);
                let gi = c.small();
                let gp: *const edgedecoding_apot_group = if c.u8() == 0xFF { null() } else { &g };
                check(edgedecoding_pack_group(
                    codes.mut_ptr(),
                    codes.len,
                    exps.mut_ptr(),
                    exps.len,
                    gi,
                    gp,
                ));
                let rexp = Buf::<i8>::new(c, rows);
                let w = edgedecoding_apot_matrix {
                    rows,
                    cols,
                    codes: codes.ptr(),
                    codes_len: codes.len,
                    exps: exps.ptr(),
                    exps_len: exps.len,
                    row_exps: rexp.ptr(),
                    row_exps_len: rexp.len,
                };
                let mut og = edgedecoding_apot_group::default();
                let mut er = 0i8;
                let (r, gg) = (c.small(), c.small());
                let o = out(c, &mut og);
                check(edgedecoding_unpack_group(&w, r, gg, o, &mut er));
            }
            4 => {
                let t = Buf::<i64>::new(c, 8);
                let mut g = edgedecoding_apot_group::default();
                check(edgedecoding_search_group(t.ptr(), t.len, c.i64(), &mut g));
            }
            5 => {
                let n = c.small() * 8;
                let w = Buf::<f32>::new(c, n);
                let mut o = Buf::<edgedecoding_apot_group>::new(c, n / 8);
                let mut e = 0i8;
                check(edgedecoding_quantize_row_f32(
                    w.ptr(),
                    w.len,
                    o.mut_ptr(),
                    o.len,
                    &mut e,
                ));
            }
            6 => {
                let n = c.small() * 8;
                let r = Buf::<i16>::new(c, n);
                let mut o = Buf::<edgedecoding_apot_group>::new(c, n / 8);
                let mut e = 0i8;
                let ee = c.u8() as i8 as i32;
                check(edgedecoding_lm_head_derive_row(
                    r.ptr(),
                    r.len,
                    ee,
                    o.mut_ptr(),
                    o.len,
                    &mut e,
                ));
            }
            7 => {
                let x = Buf::<i32>::new(c, 8);
                let mut m = [0i8; 8];
                let mut e = 0u8;
                if x.len == 8 && !x.null {
                    check(edgedecoding_bfp_quantize_block(
                        x.ptr(),
                        m.as_mut_ptr(),
                        &mut e,
                    ));
                } else {
                    check(edgedecoding_bfp_quantize_block(
                        null(),
                        m.as_mut_ptr(),
                        &mut e,
                    ));
                }
            }
            8 => {
                let n = c.small() * 8;
                let x = Buf::<i32>::new(c, n);
                let mut o = Buf::<edgedecoding_bfp_block>::new(c, n / 8);
                check(edgedecoding_bfp_quantize(
                    x.ptr(),
                    x.len,
                    o.mut_ptr(),
                    o.len,
                ));
            }
            9 => {
                let b = block(c);
                let mut o = Buf::<i64>::new(c, 8);
                check(edgedecoding_bfp_dequantize_block(&b, o.mut_ptr(), o.len));
                let g = group(c);
                let mut t = 0i64;
                check(edgedecoding_linear_group_term(&b, &g, &mut t));
                let mut y = 0i32;
                let (acc, er, of, bias) =
                    (c.i64(), c.u8() as i8, c.u8() as i8 as i32, c.u32() as i32);
                check(edgedecoding_linear_rescale(acc, er, of, bias, &mut y));
            }
            10 => {
                let (rows, cols) = (c.small(), c.small() * 8);
                let (w, _a, _b, _c) = matrix(c, rows, cols);
                let x = Buf::<edgedecoding_bfp_block>::new(c, cols / 8);
                let bias = Buf::<i32>::new(c, rows);
                let mut y = Buf::<i32>::new(c, rows);
                let of = c.u8() as i8 as i32;
                let wp: *const edgedecoding_apot_matrix = if c.u8() == 0xFF { null() } else { &w };
                check(edgedecoding_linear(
                    wp,
                    x.ptr(),
                    x.len,
                    bias.ptr(),
                    bias.len,
                    of,
                    y.mut_ptr(),
                    y.len,
                ));
            }
            11 => {
                let (rows, cols) = (c.small(), c.small() * 8);
                let emb = Buf::<i16>::new(c, rows * cols);
                let nk = c.small();
                let keep = Buf::<u32>::new(c, nk);
                let x = Buf::<edgedecoding_bfp_block>::new(c, cols / 8);
                let n_out = if keep.len > 0 { keep.len } else { rows };
                let mut y = Buf::<i32>::new(c, n_out);
                let (ee, of) = (c.u8() as i8 as i32, c.u8() as i8 as i32);
                check(edgedecoding_linear_derived_head(
                    emb.ptr(),
                    emb.len,
                    cols,
                    ee,
                    keep.ptr(),
                    keep.len,
                    x.ptr(),
                    x.len,
                    of,
                    y.mut_ptr(),
                    y.len,
                ));
            }
            12 => {
                let n = c.small() * 8;
                let x = Buf::<i32>::new(c, n);
                let g = Buf::<i16>::new(c, n);
                let mut o = Buf::<i32>::new(c, n);
                let (gf, eps) = (c.u32() % 20, c.u64() >> (c.u8() % 64));
                check(edgedecoding_rmsnorm(
                    x.ptr(),
                    x.len,
                    g.ptr(),
                    g.len,
                    gf,
                    eps,
                    o.mut_ptr(),
                    o.len,
                ));
                let (mut inv, mut k) = (0u64, 0i32);
                let o = out(c, &mut inv);
                check(edgedecoding_rmsnorm_inv_rms(x.ptr(), x.len, eps, o, &mut k));
            }
            13 => {
                let hd = 1usize << (c.u8() % 8);
                let pos = c.small();
                let mut cs = Buf::<i16>::new(c, pos * hd / 2);
                let mut sn = Buf::<i16>::new(c, pos * hd / 2);
                let theta = match c.u8() % 3 {
                    0 => c.u32(),
                    _ => 10_000,
                };
                check(edgedecoding_rope_table(
                    theta,
                    hd,
                    pos,
                    cs.mut_ptr(),
                    cs.len,
                    sn.mut_ptr(),
                    sn.len,
                ));
                let mut x = Buf::<i16>::new(c, hd);
                check(edgedecoding_rope_apply(
                    x.mut_ptr(),
                    x.len,
                    hd,
                    cs.ptr(),
                    cs.len,
                    sn.ptr(),
                    sn.len,
                ));
            }
            14 => {
                let n = c.small();
                let sc = Buf::<i64>::new(c, n);
                let mut p = Buf::<u16>::new(c, n);
                check(edgedecoding_softmax_q15(
                    sc.ptr(),
                    sc.len,
                    c.u32() % 40,
                    p.mut_ptr(),
                    p.len,
                ));
            }
            15 => {
                let params = edgedecoding_attn_params {
                    n_heads: 1 << (c.u8() % 4),
                    n_kv_heads: 1 << (c.u8() % 3),
                    head_dim: 1 << (2 * (1 + c.u8() % 3)),
                    q_frac: c.u32() % 17,
                    k_frac: c.u32() % 17,
                    v_frac: c.u32() % 17,
                    out_frac: c.u32() % 33,
                };
                let (h, kv, hd) = (
                    params.n_heads as usize,
                    params.n_kv_heads as usize,
                    params.head_dim as usize,
                );
                let len = c.small();
                let q = Buf::<i16>::new(c, h * hd);
                let k = Buf::<i16>::new(c, len * kv * hd);
                let v = Buf::<i16>::new(c, len * kv * hd);
                let mut sc = Buf::<i64>::new(c, len);
                let mut pr = Buf::<u16>::new(c, len);
                let mut o = Buf::<i32>::new(c, h * hd);
                let pp: *const edgedecoding_attn_params =
                    if c.u8() == 0xFF { null() } else { &params };
                check(edgedecoding_attention(
                    pp,
                    q.ptr(),
                    q.len,
                    k.ptr(),
                    k.len,
                    v.ptr(),
                    v.len,
                    len,
                    sc.mut_ptr(),
                    sc.len,
                    pr.mut_ptr(),
                    pr.len,
                    o.mut_ptr(),
                    o.len,
                ));
            }
            16 => {
                let n = c.small();
                let mut g = Buf::<i32>::new(c, n);
                let u = Buf::<i32>::new(c, n);
                let mut o = Buf::<i32>::new(c, n);
                if c.u8() & 1 == 0 {
                    check(edgedecoding_swiglu(
                        g.ptr(),
                        g.len,
                        u.ptr(),
                        u.len,
                        o.mut_ptr(),
                        o.len,
                    ));
                } else {
                    // the output overlaps an input: refused
                    check(edgedecoding_swiglu(
                        g.ptr(),
                        g.len,
                        u.ptr(),
                        u.len,
                        g.mut_ptr(),
                        g.len,
                    ));
                }
            }
            17 => {
                let n = c.small();
                let mut a = Buf::<i32>::new(c, n);
                let d = Buf::<i32>::new(c, n);
                if c.u8() & 1 == 0 {
                    check(edgedecoding_residual_add(
                        a.mut_ptr(),
                        a.len,
                        d.ptr(),
                        d.len,
                    ));
                } else {
                    check(edgedecoding_residual_add(
                        a.mut_ptr(),
                        a.len,
                        a.ptr(),
                        a.len,
                    ));
                }
            }
            18 => {
                let n = c.small() * 8;
                let r = Buf::<i16>::new(c, n);
                let mut o = Buf::<i32>::new(c, n);
                check(edgedecoding_embed_row(
                    r.ptr(),
                    r.len,
                    c.u8() as i8 as i32,
                    o.mut_ptr(),
                    o.len,
                ));
            }
            19 => {
                let n = c.small();
                let x = Buf::<i32>::new(c, n);
                let mut i = 0usize;
                let o = out(c, &mut i);
                check(edgedecoding_argmax_i32(x.ptr(), x.len, o));
            }
            20 => {
                let n = 1 + c.small();
                let mut r = Buf::<u16>::new(c, n);
                check(edgedecoding_rom_exp2_neg_q15(r.mut_ptr(), r.len));
                let n = 1 + c.small();
                let mut r = Buf::<u16>::new(c, n);
                check(edgedecoding_rom_sigmoid_q15(r.mut_ptr(), r.len));
            }
            21 => {
                // NULL out of range (documented), else a static name
                let st = c.u32() as i32 % 40;
                let p = edgedecoding_stage_name(st);
                assert_eq!(
                    p.is_null(),
                    !(0..EDGEDECODING_STAGE_COUNT as i32).contains(&st)
                );
                if !p.is_null() {
                    // SAFETY: static and NUL-terminated.
                    assert!(!CStr::from_ptr(p).to_bytes().is_empty());
                }
                // SAFETY: a static NUL-terminated name for every value.
                let s = CStr::from_ptr(edgedecoding_status_name(c.u32() as i32));
                std::hint::black_box(s);
            }
            _ => {
                // version strings
                let v = CStr::from_ptr(edgedecoding::edgedecoding_version());
                assert!(!v.to_bytes().is_empty());
                assert_eq!(edgedecoding::edgedecoding_abi_version(), 1);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cur(data);
    let n = (c.u32() as usize).min(c.0.len());
    let (model_bytes, ops) = c.0.split_at(n);
    let mut c = Cur(ops);
    let mut s = Session {
        model: null_mut(),
        n_kept: 0,
        vocab: 0,
    };
    let mut steps = 0;
    while !c.0.is_empty() && steps < 64 {
        steps += 1;
        let op = c.u8();
        if op & 0x80 == 0 {
            model_op(op, &mut c, &mut s, model_bytes);
        } else {
            kernel_op(op & 0x7F, &mut c);
        }
    }
    s.close();
});

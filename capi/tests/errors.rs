//! Error paths of the C ABI: NULL pointers, wrong lengths, bad parameters,
//! overlapping or misaligned buffers, bad model bytes. Every failure must be
//! a status code plus a message, never a panic, and must leave the outputs
//! untouched.

use std::ffi::{c_void, CStr, CString};
use std::ptr::{null, null_mut};

use edgedecoding::ffi::edgedecoding_status::{self, *};
use edgedecoding::model::*;
use edgedecoding::ops::*;
use edgedecoding::*;

fn last() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(edgedecoding_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// `st` is `want` and the thread's message contains `needle`.
#[track_caller]
fn expect(st: edgedecoding_status, want: edgedecoding_status, needle: &str) {
    assert_eq!(st, want, "message: {}", last());
    let m = last();
    assert!(m.contains(needle), "message {m:?} lacks {needle:?}");
}

#[test]
fn versions_and_names() {
    assert_eq!(edgedecoding_abi_version(), EDGEDECODING_ABI_VERSION);
    // SAFETY: static NUL-terminated strings.
    let v = unsafe { CStr::from_ptr(edgedecoding_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let name = |s: i32| {
        unsafe { CStr::from_ptr(edgedecoding_status_name(s)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(0), "EDGEDECODING_OK");
    assert_eq!(name(2), "EDGEDECODING_ERR_LENGTH");
    assert_eq!(name(12), "EDGEDECODING_ERR_PANIC");
    assert_eq!(name(-1), "EDGEDECODING_UNKNOWN_STATUS");
    assert_eq!(name(99), "EDGEDECODING_UNKNOWN_STATUS");
    for i in 0..EDGEDECODING_STAGE_COUNT {
        assert!(!edgedecoding_stage_name(i).is_null());
    }
    assert!(edgedecoding_stage_name(EDGEDECODING_STAGE_COUNT).is_null());
    assert!(edgedecoding_stage_name(-1).is_null());
    // SAFETY: a static NUL-terminated string.
    assert_eq!(
        unsafe { CStr::from_ptr(edgedecoding_stage_name(2)) }
            .to_str()
            .unwrap(),
        "x_in"
    );
}

#[test]
fn null_pointers() {
    let x = [1i32; 8];
    let mut out = [7i32; 8];
    unsafe {
        expect(
            edgedecoding_rmsnorm(
                null(),
                8,
                [1i16; 8].as_ptr(),
                8,
                12,
                1 << 20,
                out.as_mut_ptr(),
                8,
            ),
            EDGEDECODING_ERR_NULL,
            "x: NULL pointer",
        );
        expect(
            edgedecoding_rmsnorm(
                x.as_ptr(),
                8,
                [1i16; 8].as_ptr(),
                8,
                12,
                1 << 20,
                null_mut(),
                8,
            ),
            EDGEDECODING_ERR_NULL,
            "out: NULL",
        );
        expect(
            edgedecoding_div_round(1, 2, null_mut()),
            EDGEDECODING_ERR_NULL,
            "out",
        );
        expect(
            edgedecoding_bfp_quantize_block(x.as_ptr(), [0i8; 8].as_mut_ptr(), null_mut()),
            EDGEDECODING_ERR_NULL,
            "e: NULL",
        );
        expect(
            edgedecoding_linear(null(), null(), 0, null(), 0, 12, null_mut(), 0),
            EDGEDECODING_ERR_NULL,
            "w: NULL",
        );
        expect(
            edgedecoding_attention(
                null(),
                null(),
                0,
                null(),
                0,
                null(),
                0,
                1,
                null_mut(),
                0,
                null_mut(),
                0,
                null_mut(),
                0,
            ),
            EDGEDECODING_ERR_NULL,
            "params",
        );
        let mut i = 0usize;
        expect(
            edgedecoding_argmax_i32(null(), 3, &mut i),
            EDGEDECODING_ERR_NULL,
            "x: NULL",
        );
        // a NULL buffer of length 0 is an empty buffer
        assert_eq!(
            edgedecoding_residual_add(null_mut(), 0, null(), 0),
            EDGEDECODING_OK
        );
        assert_eq!(
            edgedecoding_swiglu(null(), 0, null(), 0, null_mut(), 0),
            EDGEDECODING_OK
        );
    }
    assert_eq!(out, [7; 8], "nothing written on failure");
}

#[test]
fn wrong_lengths_and_params() {
    let x = [1000i32; 16];
    let g = [4096i16; 16];
    let mut out = [7i32; 16];
    unsafe {
        expect(
            edgedecoding_rmsnorm(
                x.as_ptr(),
                16,
                g.as_ptr(),
                15,
                12,
                1 << 20,
                out.as_mut_ptr(),
                16,
            ),
            EDGEDECODING_ERR_LENGTH,
            "gamma: expected length 16, got 15",
        );
        expect(
            edgedecoding_rmsnorm(
                x.as_ptr(),
                16,
                g.as_ptr(),
                16,
                16,
                1 << 20,
                out.as_mut_ptr(),
                16,
            ),
            EDGEDECODING_ERR_PARAM,
            "gamma_frac = 16 is outside [0, 15]",
        );
        expect(
            edgedecoding_rmsnorm(x.as_ptr(), 16, g.as_ptr(), 16, 12, 1, out.as_mut_ptr(), 16),
            EDGEDECODING_ERR_PARAM,
            "eps_q40",
        );
        let mut blocks = [edgedecoding_bfp_block::default(); 2];
        expect(
            edgedecoding_bfp_quantize(x.as_ptr(), 12, blocks.as_mut_ptr(), 2),
            EDGEDECODING_ERR_NOT_MULTIPLE,
            "not a multiple of 8",
        );
        let mut y = 0i32;
        expect(
            edgedecoding_linear_rescale(5, 0, 31, 0, &mut y),
            EDGEDECODING_ERR_PARAM,
            "out_frac = 31",
        );
        let mut v = 0i64;
        expect(
            edgedecoding_sat_bits(5, 0, &mut v),
            EDGEDECODING_ERR_PARAM,
            "bits = 0",
        );
        expect(
            edgedecoding_sat_bits(5, 64, &mut v),
            EDGEDECODING_ERR_PARAM,
            "bits = 64",
        );
        expect(
            edgedecoding_div_round(5, 0, &mut v),
            EDGEDECODING_ERR_PARAM,
            "b = 0",
        );
        expect(
            edgedecoding_exp_weight(-1, 8, &mut 0u64),
            EDGEDECODING_ERR_PARAM,
            "d = -1",
        );
        let p = edgedecoding_attn_params {
            n_heads: 3,
            n_kv_heads: 2,
            head_dim: 16,
            ..Default::default()
        };
        expect(
            edgedecoding_attention(
                &p,
                null(),
                0,
                null(),
                0,
                null(),
                0,
                1,
                null_mut(),
                0,
                null_mut(),
                0,
                null_mut(),
                0,
            ),
            EDGEDECODING_ERR_NOT_MULTIPLE,
            "n_heads",
        );
        let mut probs = [0u16; 3];
        expect(
            edgedecoding_softmax_q15([1i64, 2, 3].as_ptr(), 3, 36, probs.as_mut_ptr(), 3),
            EDGEDECODING_ERR_PARAM,
            "score_frac = 36",
        );
        expect(
            edgedecoding_softmax_q15(null(), 0, 8, null_mut(), 0),
            EDGEDECODING_ERR_PARAM,
            "softmax length = 0",
        );
        expect(
            edgedecoding_embed_row([1i16].as_ptr(), 1, 9, out.as_mut_ptr(), 1),
            EDGEDECODING_ERR_PARAM,
            "emb_exp = 9",
        );
        let mut i = 5usize;
        expect(
            edgedecoding_argmax_i32(x.as_ptr(), 0, &mut i),
            EDGEDECODING_ERR_LENGTH,
            "argmax",
        );
        assert_eq!(i, 5);
        let mut rom = [0u16; 255];
        expect(
            edgedecoding_rom_exp2_neg_q15(rom.as_mut_ptr(), 255),
            EDGEDECODING_ERR_LENGTH,
            "256",
        );
        let t = [0i64; 7];
        let mut grp = edgedecoding_apot_group::default();
        expect(
            edgedecoding_search_group(t.as_ptr(), 7, 1, &mut grp),
            EDGEDECODING_ERR_LENGTH,
            "t",
        );
        expect(
            edgedecoding_search_group([1i64 << 41; 8].as_ptr(), 8, 1, &mut grp),
            EDGEDECODING_ERR_PARAM,
            "t =",
        );
        expect(
            edgedecoding_quantize_row_f32([0f32; 9].as_ptr(), 9, &mut grp, 1, &mut 0i8),
            EDGEDECODING_ERR_LENGTH,
            "weights",
        );
        let bad = edgedecoding_apot_group {
            codes: [16, 0, 0, 0, 0, 0, 0, 0],
            s1: 0,
            s2: 0,
        };
        let (mut c, mut e) = ([0u8; 5], [0u8; 1]);
        expect(
            edgedecoding_pack_group(c.as_mut_ptr(), 5, e.as_mut_ptr(), 1, 0, &bad),
            EDGEDECODING_ERR_PARAM,
            "code = 16",
        );
        let (mut cl, mut el) = (0usize, 0usize);
        expect(
            edgedecoding_packed_lens(3, 12, &mut cl, &mut el),
            EDGEDECODING_ERR_NOT_MULTIPLE,
            "cols",
        );
        expect(
            edgedecoding_packed_lens(usize::MAX, 8, &mut cl, &mut el),
            EDGEDECODING_ERR_PARAM,
            "overflows",
        );
        let mut cos = [0i16; 4];
        let mut sin = [0i16; 4];
        expect(
            edgedecoding_rope_table(
                10_000,
                4,
                usize::MAX,
                cos.as_mut_ptr(),
                4,
                sin.as_mut_ptr(),
                4,
            ),
            EDGEDECODING_ERR_PARAM,
            "overflows",
        );
        let mut xr = [1i16; 8];
        expect(
            edgedecoding_rope_apply(xr.as_mut_ptr(), 8, 0, cos.as_ptr(), 0, sin.as_ptr(), 0),
            EDGEDECODING_ERR_NOT_MULTIPLE,
            "rope input",
        );
    }
    assert_eq!(out, [7; 16], "nothing written on failure");
}

#[test]
fn overlapping_and_misaligned_buffers() {
    let mut buf = [3i32; 16];
    let p = buf.as_mut_ptr();
    unsafe {
        // in place: acc and delta are the same memory
        expect(
            edgedecoding_residual_add(p, 8, p.add(4), 8),
            EDGEDECODING_ERR_PARAM,
            "acc overlaps delta",
        );
        expect(
            edgedecoding_swiglu(p, 8, p.add(8), 8, p.add(7), 8),
            EDGEDECODING_ERR_PARAM,
            "out overlaps",
        );
        // adjacent is fine
        assert_eq!(
            edgedecoding_residual_add(p, 8, p.add(8), 8),
            EDGEDECODING_OK
        );
        // a misaligned int32_t pointer
        let bytes = p.cast::<u8>().add(1).cast::<i32>();
        expect(
            edgedecoding_residual_add(bytes, 2, p.add(8), 2),
            EDGEDECODING_ERR_LENGTH,
            "not aligned",
        );
        // a length whose byte size overflows
        expect(
            edgedecoding_residual_add(p, usize::MAX / 2, p.add(8), 1),
            EDGEDECODING_ERR_LENGTH,
            "overflows",
        );
    }
    assert_eq!(&buf[..8], &[6; 8]);
}

#[test]
fn messages_are_per_thread() {
    unsafe {
        expect(
            edgedecoding_sat_bits(1, 0, &mut 0i64),
            EDGEDECODING_ERR_PARAM,
            "bits = 0",
        );
    }
    let other = std::thread::spawn(last).join().unwrap();
    assert_eq!(other, "");
    assert!(last().contains("bits = 0"));
    // success does not clear the message
    assert_eq!(
        unsafe { edgedecoding_sat_bits(1, 8, &mut 0i64) },
        EDGEDECODING_OK
    );
    assert!(last().contains("bits = 0"));
}

fn tiny_bytes() -> Vec<u8> {
    use ::edgedecoding_model::builtin::{generate, DEFAULT_SEED};
    let c = ::edgedecoding_model::Config {
        ctx: 16,
        ..::edgedecoding_model::Config::tiny()
    };
    generate(&c, DEFAULT_SEED, 1, &mut |_, _, _| {}).expect("generate")
}

fn open_bytes(b: &[u8], backend: u32) -> (edgedecoding_status, *mut edgedecoding_model) {
    let mut m = null_mut();
    let st = unsafe { edgedecoding_model_open_bytes(b.as_ptr(), b.len(), backend, 1, &mut m) };
    (st, m)
}

#[test]
fn bad_model_bytes() {
    let good = tiny_bytes();
    let (st, m) = open_bytes(b"not a model at all", EDGEDECODING_BACKEND_REFERENCE);
    expect(st, EDGEDECODING_ERR_MODEL, "");
    assert!(m.is_null(), "no handle on failure");
    let (st, m) = open_bytes(&good[..good.len() / 2], EDGEDECODING_BACKEND_REFERENCE);
    expect(st, EDGEDECODING_ERR_MODEL, "");
    assert!(m.is_null());
    let mut flipped = good.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x40;
    let (st, _) = open_bytes(&flipped, EDGEDECODING_BACKEND_FAST);
    assert_eq!(st, EDGEDECODING_ERR_MODEL, "{}", last());
    let (st, _) = open_bytes(&[], EDGEDECODING_BACKEND_REFERENCE);
    assert_eq!(st, EDGEDECODING_ERR_MODEL, "{}", last());
    let (st, _) = open_bytes(&good, 7);
    expect(st, EDGEDECODING_ERR_PARAM, "backend = 7");
    unsafe {
        let mut m = null_mut();
        expect(
            edgedecoding_model_open_bytes(null(), 10, 0, 1, &mut m),
            EDGEDECODING_ERR_NULL,
            "data: NULL",
        );
        expect(
            edgedecoding_model_open_bytes(good.as_ptr(), good.len(), 0, 1, null_mut()),
            EDGEDECODING_ERR_NULL,
            "out",
        );
        expect(
            edgedecoding_model_open(null(), 0, 1, &mut m),
            EDGEDECODING_ERR_NULL,
            "path",
        );
        let missing = CString::new("/nonexistent/dir/model.edq").unwrap();
        expect(
            edgedecoding_model_open(missing.as_ptr(), 0, 1, &mut m),
            EDGEDECODING_ERR_IO,
            "/nonexistent/dir/model.edq",
        );
        assert!(m.is_null());
        // a file that is not a model names the file
        let dir = env!("CARGO_TARGET_TMPDIR");
        let path = format!("{dir}/capi-not-a-model.edq");
        std::fs::write(&path, b"EDQ? garbage garbage garbage").unwrap();
        let p = CString::new(path.clone()).unwrap();
        expect(
            edgedecoding_model_open(p.as_ptr(), 1, 1, &mut m),
            EDGEDECODING_ERR_MODEL,
            &path,
        );
        assert!(m.is_null());
    }
}

struct Reenter {
    model: *mut edgedecoding_model,
    calls: usize,
    statuses: Vec<edgedecoding_status>,
}

unsafe extern "C" fn reenter(user: *mut c_void, _s: *const edgedecoding_stage_data) {
    // SAFETY: `user` is the `Reenter` passed by the test.
    let r = unsafe { &mut *user.cast::<Reenter>() };
    r.calls += 1;
    if r.calls == 1 {
        // SAFETY: a live handle; these calls must be refused, not run.
        unsafe {
            r.statuses.push(edgedecoding_model_reset(r.model));
            r.statuses
                .push(edgedecoding_model_decode(r.model, 1, null_mut()));
            r.statuses.push(edgedecoding_model_close(r.model));
        }
    }
}

#[test]
fn model_call_errors() {
    let b = tiny_bytes();
    let (st, m) = open_bytes(&b, EDGEDECODING_BACKEND_FAST);
    assert_eq!(st, EDGEDECODING_OK, "{}", last());
    unsafe {
        let mut info = edgedecoding_model_info::default();
        assert_eq!(edgedecoding_model_get_info(m, &mut info), EDGEDECODING_OK);
        assert_eq!((info.ctx, info.n_kept, info.vocab), (16, 256, 256));
        let mut logits = vec![0i32; info.n_kept as usize];
        let mut t = 0u32;
        expect(
            edgedecoding_model_logits(m, logits.as_mut_ptr(), logits.len()),
            EDGEDECODING_ERR_EMPTY,
            "no logits yet",
        );
        expect(
            edgedecoding_model_next_token(m, &mut t),
            EDGEDECODING_ERR_EMPTY,
            "no logits",
        );
        expect(
            edgedecoding_model_prefill(null_mut(), [1u32].as_ptr(), 1, &mut t),
            EDGEDECODING_ERR_NULL,
            "handle",
        );
        expect(
            edgedecoding_model_prefill(m, null(), 0, &mut t),
            EDGEDECODING_ERR_LENGTH,
            "no tokens",
        );
        expect(
            edgedecoding_model_prefill(m, [1u32, 300].as_ptr(), 2, &mut t),
            EDGEDECODING_ERR_TOKEN,
            "300",
        );
        let mut pos = 9usize;
        assert_eq!(edgedecoding_model_position(m, &mut pos), EDGEDECODING_OK);
        assert_eq!(pos, 0, "a refused prefill changes nothing");
        assert_eq!(
            edgedecoding_model_prefill(m, [1u32; 10].as_ptr(), 10, &mut t),
            EDGEDECODING_OK
        );
        expect(
            edgedecoding_model_prefill(m, [1u32; 7].as_ptr(), 7, &mut t),
            EDGEDECODING_ERR_CONTEXT_FULL,
            "capacity 16",
        );
        expect(
            edgedecoding_model_logits(m, logits.as_mut_ptr(), 3),
            EDGEDECODING_ERR_LENGTH,
            "logits: expected length 256, got 3",
        );
        expect(
            edgedecoding_model_layer_formats(m, 2, &mut edgedecoding_layer_formats::default()),
            EDGEDECODING_ERR_PARAM,
            "layer = 2",
        );
        expect(
            edgedecoding_model_token_of_row(m, 256, &mut t),
            EDGEDECODING_ERR_PARAM,
            "row = 256",
        );
        // re-entering the handle from its own probe callback is refused
        let mut r = Reenter {
            model: m,
            calls: 0,
            statuses: vec![],
        };
        let st = edgedecoding_model_prefill_probed(
            m,
            [2u32].as_ptr(),
            1,
            Some(reenter),
            (&mut r as *mut Reenter).cast(),
            &mut t,
        );
        assert_eq!(st, EDGEDECODING_OK, "{}", last());
        assert_eq!(r.statuses, [EDGEDECODING_ERR_BUSY; 3]);
        assert!(r.calls > 20);
        // the handle still works and is closed once
        assert_eq!(edgedecoding_model_position(m, &mut pos), EDGEDECODING_OK);
        assert_eq!(pos, 11);
        assert_eq!(edgedecoding_model_reset(m), EDGEDECODING_OK);
        expect(
            edgedecoding_model_next_token(m, &mut t),
            EDGEDECODING_ERR_EMPTY,
            "no logits",
        );
        assert_eq!(edgedecoding_model_close(m), EDGEDECODING_OK);
        assert_eq!(edgedecoding_model_close(null_mut()), EDGEDECODING_OK);
    }
}

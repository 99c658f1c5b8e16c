//! The model handle through the C ABI gives exactly what the Rust decoder
//! gives: next tokens and logits of prefill, incremental and parity decode on
//! both backends, from bytes and from a file, and the same stages through the
//! probe callback as `Decoder::prefill_probed` / `decode_parity_probed`.

use std::ffi::{c_void, CStr, CString};
use std::ptr::null_mut;

use ::edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use ::edgedecoding_model::owned::ModelBuf;
use ::edgedecoding_model::{
    Config, Decoder, Head, Serial, Site, StageRef, State, StateMem, Values, CPU_CHUNK,
};
use edgedecoding::ffi::*;
use edgedecoding::model::*;

/// One stage as (site, layer, name, start, tokens, values widened to i64;
/// BFP blocks as 8 mantissas then e).
type Rec = (i32, i32, String, usize, usize, Vec<i64>);

fn rec_of(s: StageRef<'_>) -> Rec {
    let (site, layer) = match s.site {
        Site::Embedding => (EDGEDECODING_SITE_EMBEDDING, -1),
        Site::Layer(l) => (EDGEDECODING_SITE_LAYER, l as i32),
        Site::Final => (EDGEDECODING_SITE_FINAL, -1),
        Site::Head => (EDGEDECODING_SITE_HEAD, -1),
    };
    let vals = match s.values {
        Values::I32(v) => v.iter().map(|&x| x as i64).collect(),
        Values::I16(v) => v.iter().map(|&x| x as i64).collect(),
        Values::U32(v) => v.iter().map(|&x| x as i64).collect(),
        Values::Bfp(v) => v
            .iter()
            .flat_map(|b| b.m.iter().map(|&m| m as i64).chain([b.e as i64]))
            .collect(),
    };
    (
        site,
        layer,
        s.stage.name().to_owned(),
        s.start,
        s.tokens,
        vals,
    )
}

unsafe extern "C" fn collect(user: *mut c_void, s: *const edgedecoding_stage_data) {
    // SAFETY: `user` is the test's Vec; `s` and its values are valid during
    // the call (the library's contract).
    let (out, s) = unsafe { (&mut *user.cast::<Vec<Rec>>(), &*s) };
    // SAFETY: as above, `len` elements of the announced type.
    let vals: Vec<i64> = unsafe {
        match s.dtype {
            EDGEDECODING_DTYPE_I32 => std::slice::from_raw_parts(s.values.cast::<i32>(), s.len)
                .iter()
                .map(|&x| x as i64)
                .collect(),
            EDGEDECODING_DTYPE_I16 => std::slice::from_raw_parts(s.values.cast::<i16>(), s.len)
                .iter()
                .map(|&x| x as i64)
                .collect(),
            EDGEDECODING_DTYPE_U32 => std::slice::from_raw_parts(s.values.cast::<u32>(), s.len)
                .iter()
                .map(|&x| x as i64)
                .collect(),
            EDGEDECODING_DTYPE_BFP => std::slice::from_raw_parts(
                s.values.cast::<edgedecoding::ops::edgedecoding_bfp_block>(),
                s.len,
            )
            .iter()
            .flat_map(|b| b.m.iter().map(|&m| m as i64).chain([b.e as i64]))
            .collect(),
            d => panic!("dtype {d}"),
        }
    };
    // SAFETY: a static NUL-terminated name.
    let name = unsafe { CStr::from_ptr(s.name) }
        .to_str()
        .unwrap()
        .to_owned();
    assert!((0..EDGEDECODING_STAGE_COUNT).contains(&s.stage));
    // SAFETY: static.
    let by_index = unsafe { CStr::from_ptr(edgedecoding_stage_name(s.stage)) };
    assert_eq!(by_index.to_str().unwrap(), name);
    out.push((s.site, s.layer, name, s.start, s.tokens, vals));
}

fn model_bytes(c: &Config) -> Vec<u8> {
    generate(c, DEFAULT_SEED, 2, &mut |_, _, _| {}).expect("generate")
}

fn tokens(n: usize, vocab: u32, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn msg() -> String {
    // SAFETY: a valid C string.
    unsafe { CStr::from_ptr(edgedecoding::edgedecoding_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// What one run records: next tokens, last logits, probe records.
#[derive(Debug, PartialEq)]
struct Run {
    next: Vec<u32>,
    logits: Vec<Vec<i32>>,
    stages: Vec<Rec>,
}

/// The Rust decoder: prefill(toks[..split]), prefill_probed(toks[split..]),
/// two incremental steps, two parity steps (probed).
fn rust_run(bytes: &[u8], toks: &[u32], split: usize) -> Run {
    let buf = ModelBuf::from_bytes(bytes);
    let m = buf.model().unwrap();
    // the handle's prefill chunk (the CPU decoder's, at most the context)
    let chunk = CPU_CHUNK.min(m.config.ctx.div_ceil(8) * 8);
    let mut mem = StateMem::with_chunk(&m.config, chunk);
    let st = State::with_chunk(&m.config, mem.bytes(), chunk).unwrap();
    let mut d = Decoder::new(m, Head::derived(&m).unwrap(), st, Serial).unwrap();
    let mut run = Run {
        next: vec![],
        logits: vec![],
        stages: vec![],
    };
    run.next.push(d.prefill(&toks[..split]).unwrap());
    run.logits.push(d.logits().to_vec());
    let mut rec = |s: StageRef<'_>| run.stages.push(rec_of(s));
    let t = d.prefill_probed(&toks[split..], &mut rec).unwrap();
    run.next.push(t);
    run.logits.push(d.logits().to_vec());
    for _ in 0..2 {
        let t = d.decode(*run.next.last().unwrap()).unwrap();
        run.next.push(t);
        run.logits.push(d.logits().to_vec());
    }
    for _ in 0..2 {
        let mut rec = |s: StageRef<'_>| run.stages.push(rec_of(s));
        let t = d
            .decode_parity_probed(*run.next.last().unwrap(), &mut rec)
            .unwrap();
        run.next.push(t);
        run.logits.push(d.logits().to_vec());
    }
    run
}

/// The same through the C ABI.
fn c_run(m: *mut edgedecoding_model, toks: &[u32], split: usize) -> Run {
    let mut info = edgedecoding_model_info::default();
    let mut run = Run {
        next: vec![],
        logits: vec![],
        stages: vec![],
    };
    unsafe {
        assert_eq!(edgedecoding_model_get_info(m, &mut info), EDGEDECODING_OK);
        let mut l = vec![0i32; info.n_kept as usize];
        let mut t = 0u32;
        let mut logits = |run: &mut Run| {
            assert_eq!(
                edgedecoding_model_logits(m, l.as_mut_ptr(), l.len()),
                EDGEDECODING_OK
            );
            run.logits.push(l.clone());
        };
        assert_eq!(
            edgedecoding_model_prefill(m, toks.as_ptr(), split, &mut t),
            EDGEDECODING_OK,
            "{}",
            msg()
        );
        run.next.push(t);
        logits(&mut run);
        let user = (&mut run.stages as *mut Vec<Rec>).cast::<c_void>();
        let rest = &toks[split..];
        assert_eq!(
            edgedecoding_model_prefill_probed(
                m,
                rest.as_ptr(),
                rest.len(),
                Some(collect),
                user,
                &mut t
            ),
            EDGEDECODING_OK
        );
        run.next.push(t);
        logits(&mut run);
        for _ in 0..2 {
            assert_eq!(edgedecoding_model_decode(m, t, &mut t), EDGEDECODING_OK);
            run.next.push(t);
            logits(&mut run);
        }
        for _ in 0..2 {
            let user = (&mut run.stages as *mut Vec<Rec>).cast::<c_void>();
            assert_eq!(
                edgedecoding_model_decode_parity_probed(m, t, Some(collect), user, &mut t),
                EDGEDECODING_OK
            );
            run.next.push(t);
            logits(&mut run);
        }
        let mut nt = 0u32;
        assert_eq!(edgedecoding_model_next_token(m, &mut nt), EDGEDECODING_OK);
        assert_eq!(nt, t);
        let mut pos = 0usize;
        assert_eq!(edgedecoding_model_position(m, &mut pos), EDGEDECODING_OK);
        assert_eq!(pos, toks.len() + 4);
    }
    run
}

#[test]
fn c_abi_equals_rust_decoder_on_both_backends() {
    let c = Config {
        ctx: 48,
        ..Config::tiny()
    };
    let bytes = model_bytes(&c);
    let toks = tokens(19, 256, 3);
    let split = 5; // then chunks 5..8, 8..16, 16..19; decode at 19..23
    let want = rust_run(&bytes, &toks, split);
    assert!(want.stages.len() > 100);
    for (backend, threads) in [
        (EDGEDECODING_BACKEND_REFERENCE, 1),
        (EDGEDECODING_BACKEND_FAST, 2),
    ] {
        let mut m = null_mut();
        let st = unsafe {
            edgedecoding_model_open_bytes(bytes.as_ptr(), bytes.len(), backend, threads, &mut m)
        };
        assert_eq!(st, EDGEDECODING_OK, "{}", msg());
        let got = c_run(m, &toks, split);
        assert_eq!(got.next, want.next, "backend {backend}");
        assert_eq!(got.logits, want.logits, "backend {backend}");
        assert_eq!(got.stages.len(), want.stages.len(), "backend {backend}");
        for (g, w) in got.stages.iter().zip(&want.stages) {
            assert_eq!(g, w, "backend {backend}");
        }
        // reset: the same prefill again gives the same result
        let mut t = 0;
        unsafe {
            assert_eq!(edgedecoding_model_reset(m), EDGEDECODING_OK);
            assert_eq!(
                edgedecoding_model_prefill(m, toks.as_ptr(), split, &mut t),
                EDGEDECODING_OK
            );
            assert_eq!(t, want.next[0]);
            assert_eq!(edgedecoding_model_close(m), EDGEDECODING_OK);
        }
    }
}

#[test]
fn open_from_file_info_formats_and_pruned_tokens() {
    // a pruned vocabulary: logits rows are not token ids
    let c = Config {
        ctx: 32,
        vocab: 1024,
        n_kept: 256,
        ..Config::tiny()
    };
    let bytes = model_bytes(&c);
    let path = format!("{}/capi-model-test.edq", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&path, &bytes).unwrap();
    let p = CString::new(path).unwrap();
    let buf = ModelBuf::from_bytes(&bytes);
    let rm = buf.model().unwrap();
    let mut m = null_mut();
    unsafe {
        assert_eq!(
            edgedecoding_model_open(p.as_ptr(), EDGEDECODING_BACKEND_FAST, 0, &mut m),
            EDGEDECODING_OK,
            "{}",
            msg()
        );
        let mut info = edgedecoding_model_info::default();
        assert_eq!(edgedecoding_model_get_info(m, &mut info), EDGEDECODING_OK);
        assert_eq!(
            (
                info.n_layers,
                info.hidden,
                info.ffn,
                info.n_heads,
                info.n_kv_heads,
                info.head_dim
            ),
            (2, 64, 128, 4, 2, 16)
        );
        assert_eq!(
            (info.vocab, info.n_kept, info.ctx, info.rope_theta),
            (1024, 256, 32, 10_000)
        );
        assert_eq!(info.emb_exp, rm.globals.emb_exp);
        assert_eq!(info.eps_q40, rm.globals.eps_q40);
        assert_eq!(info.final_norm_frac, rm.globals.final_norm_frac);
        assert_eq!(info.backend, EDGEDECODING_BACKEND_FAST);
        assert!(info.threads >= 1);
        for l in 0..2 {
            let mut f = edgedecoding_layer_formats::default();
            assert_eq!(
                edgedecoding_model_layer_formats(m, l, &mut f),
                EDGEDECODING_OK
            );
            let want = rm.layer(l as usize).unwrap().fmt;
            assert_eq!(
                (
                    f.q_frac,
                    f.k_frac,
                    f.v_frac,
                    f.attn_norm_frac,
                    f.ffn_norm_frac
                ),
                (
                    want.q_frac,
                    want.k_frac,
                    want.v_frac,
                    want.attn_norm_frac,
                    want.ffn_norm_frac
                )
            );
        }
        let keep = rm.keep.unwrap();
        for row in [0u32, 1, 100, 255] {
            let mut t = 0;
            assert_eq!(
                edgedecoding_model_token_of_row(m, row, &mut t),
                EDGEDECODING_OK
            );
            assert_eq!(t, keep[row as usize]);
        }
        // kept tokens are accepted, others refused
        let mut next = 0;
        assert_eq!(
            edgedecoding_model_prefill(m, [keep[3], keep[7]].as_ptr(), 2, &mut next),
            EDGEDECODING_OK
        );
        assert!(keep.contains(&next));
        let missing = (0..1024).find(|t| !keep.contains(t)).unwrap();
        assert_eq!(
            edgedecoding_model_decode(m, missing, null_mut()),
            EDGEDECODING_ERR_TOKEN
        );
        assert_eq!(
            edgedecoding_model_decode(m, 1024, null_mut()),
            EDGEDECODING_ERR_TOKEN
        );
        assert_eq!(edgedecoding_model_close(m), EDGEDECODING_OK);
    }
}

#[test]
fn handles_are_independent_and_usable_across_threads() {
    let c = Config {
        ctx: 24,
        ..Config::tiny()
    };
    let bytes = model_bytes(&c);
    let toks = tokens(9, 256, 11);
    let open = || {
        let mut m = null_mut();
        let st = unsafe {
            edgedecoding_model_open_bytes(
                bytes.as_ptr(),
                bytes.len(),
                EDGEDECODING_BACKEND_FAST,
                1,
                &mut m,
            )
        };
        assert_eq!(st, EDGEDECODING_OK);
        m as usize
    };
    let (a, b) = (open(), open());
    let go = |h: usize| {
        let m = h as *mut edgedecoding_model;
        let mut t = 0;
        unsafe {
            assert_eq!(
                edgedecoding_model_prefill(m, toks.as_ptr(), toks.len(), &mut t),
                EDGEDECODING_OK
            );
        }
        t
    };
    // two handles on two threads at once, then one handle moved to another thread
    let (ta, tb) = std::thread::scope(|s| {
        let ja = s.spawn(|| go(a));
        let jb = s.spawn(|| go(b));
        (ja.join().unwrap(), jb.join().unwrap())
    });
    assert_eq!(ta, tb);
    let again = std::thread::scope(|s| {
        s.spawn(|| unsafe {
            let m = a as *mut edgedecoding_model;
            assert_eq!(edgedecoding_model_reset(m), EDGEDECODING_OK);
            go(a)
        })
        .join()
        .unwrap()
    });
    assert_eq!(again, ta);
    unsafe {
        assert_eq!(edgedecoding_model_close(a as *mut _), EDGEDECODING_OK);
        assert_eq!(edgedecoding_model_close(b as *mut _), EDGEDECODING_OK);
    }
}

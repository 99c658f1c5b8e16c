//! Equivalence of every execution path against the plain incremental decoder.

mod common;

use common::{tiny, tokens};
use edgedecoding_kernels::fast::Isa;
use edgedecoding_model::edq::write;
use edgedecoding_model::fast::{simd_section, Fast};
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::owned::OwnedHead;
use edgedecoding_model::parallel::Threaded;
use edgedecoding_model::{Backend, Decoder, Head, Model, ModelError, Serial, State, StateMem};

/// Runs `toks` one by one through `decode`, returning (greedy next tokens,
/// logits after each token, final K cache of every layer).
fn run_incremental<B: Backend>(
    m: Model<'_>,
    head: Head<'_>,
    be: B,
    toks: &[u32],
) -> (Vec<u32>, Vec<Vec<i32>>, Vec<i16>) {
    let mut mem = StateMem::new(&m.config);
    let st = State::new(&m.config, mem.bytes()).unwrap();
    let mut d = Decoder::new(m, head, st, be).unwrap();
    let mut next = vec![];
    let mut logits = vec![];
    for &t in toks {
        next.push(d.decode(t).unwrap());
        logits.push(d.logits().to_vec());
    }
    let kc = (0..m.config.n_layers)
        .flat_map(|l| d.state().k_cache(l)[..toks.len() * m.config.kv_dim()].to_vec())
        .collect();
    (next, logits, kc)
}

#[test]
fn chunked_prefill_equals_token_by_token() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(37, 256, 1);
    let (next, logits, kc) = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    // all at once: chunks of 8 (positions 0..8, 8..16, ...)
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(
        m,
        Head::derived(&m).unwrap(),
        State::new(&m.config, mem.bytes()).unwrap(),
        Serial,
    )
    .unwrap();
    let mut all = vec![vec![]; toks.len()];
    let nt = d
        .prefill_all(&toks, &mut |i, l| all[i] = l.to_vec())
        .unwrap();
    assert_eq!(nt, *next.last().unwrap());
    assert_eq!(all, logits, "per-position logits differ");
    let kc2: Vec<i16> = (0..m.config.n_layers)
        .flat_map(|l| d.state().k_cache(l)[..toks.len() * m.config.kv_dim()].to_vec())
        .collect();
    assert_eq!(kc, kc2, "KV cache differs");
    // split at an unaligned point: 5 then 32 (chunks 0..5, 5..8, 8..16, ...)
    d.reset();
    d.prefill(&toks[..5]).unwrap();
    let nt2 = d.prefill(&toks[5..]).unwrap();
    assert_eq!(nt2, nt);
    assert_eq!(d.logits(), logits.last().unwrap().as_slice());
}

/// The CPU's longer prefill chunks (16, 24, 64 tokens; serial and the fast
/// backend) give the logits of every position and the KV cache of
/// token-by-token decode, also when the prompt starts at an unaligned
/// position; a parity step after them agrees too.
#[test]
fn long_prefill_chunks_equal_token_by_token() {
    use edgedecoding_model::{state_bytes_chunked, CPU_CHUNK};
    let buf = tiny(128);
    let m = buf.model().unwrap();
    let toks = tokens(101, 256, 9);
    let (next, logits, kc) = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    for chunk in [16usize, 24, CPU_CHUNK] {
        for fast in [false, true] {
            let mut mem = StateMem::with_chunk(&m.config, chunk);
            assert!(mem.bytes().len() >= state_bytes_chunked(&m.config, chunk));
            let st = State::with_chunk(&m.config, mem.bytes(), chunk).unwrap();
            let mut all = vec![vec![]; toks.len()];
            let kc2: Vec<i16>;
            let head = Head::derived(&m).unwrap();
            macro_rules! check {
                ($be:expr) => {{
                    let mut d = Decoder::new(m, head, st, $be).unwrap();
                    // 3 tokens, then the rest: the second prefill starts unaligned
                    d.prefill_all(&toks[..3], &mut |i, l| all[i] = l.to_vec())
                        .unwrap();
                    let nt = d
                        .prefill_all(&toks[3..], &mut |i, l| all[3 + i] = l.to_vec())
                        .unwrap();
                    assert_eq!(nt, *next.last().unwrap());
                    kc2 = (0..m.config.n_layers)
                        .flat_map(|l| {
                            d.state().k_cache(l)[..toks.len() * m.config.kv_dim()].to_vec()
                        })
                        .collect();
                    let p = d.decode_parity(next[100]).unwrap();
                    let (n2, _, _) = run_incremental(
                        m,
                        Head::derived(&m).unwrap(),
                        Serial,
                        &[toks.clone(), vec![next[100]]].concat(),
                    );
                    assert_eq!(p, n2[101], "parity after chunk {chunk}");
                }};
            }
            if fast {
                check!(Fast::new(&m, 2).unwrap());
            } else {
                check!(Serial);
            }
            assert_eq!(all, logits, "chunk {chunk}, fast {fast}: logits differ");
            assert_eq!(kc, kc2, "chunk {chunk}, fast {fast}: KV cache differs");
        }
    }
    // chunks that are not multiples of 8 are refused
    let mut mem = StateMem::with_chunk(&m.config, 16);
    assert!(matches!(
        State::with_chunk(&m.config, mem.bytes(), 12),
        Err(ModelError::OutOfRange { value: 12, .. })
    ));
}

#[test]
fn parity_decode_equals_incremental() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(30, 256, 2);
    let (next, logits, _) = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(
        m,
        Head::derived(&m).unwrap(),
        State::new(&m.config, mem.bytes()).unwrap(),
        Serial,
    )
    .unwrap();
    // prefill 3 then parity-decode the rest, and greedy continuation past the prompt
    d.prefill(&toks[..3]).unwrap();
    for (i, &t) in toks.iter().enumerate().skip(3) {
        assert_eq!(d.decode_parity(t).unwrap(), next[i], "token {i}");
        assert_eq!(d.logits(), logits[i].as_slice(), "logits {i}");
    }
    // greedy generation: parity vs incremental
    let mut a = d.decode_parity(next[29]).unwrap();
    let (n2, _, _) = run_incremental(
        m,
        Head::derived(&m).unwrap(),
        Serial,
        &[toks.clone(), vec![next[29]]].concat(),
    );
    assert_eq!(a, n2[30]);
    for _ in 0..10 {
        a = d.decode_parity(a).unwrap();
    }
    assert_eq!(d.pos(), 41);
}

#[test]
fn threads_and_packed_head_equal_serial() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(20, 256, 3);
    let want = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    let owned = OwnedHead::derive(&m).unwrap();
    assert_eq!(
        run_incremental(m, Head::Packed(owned.matrix()), Serial, &toks),
        want
    );
    for n in [1, 2, 3, 4, 7] {
        assert_eq!(
            run_incremental(m, Head::derived(&m).unwrap(), Threaded::new(n), &toks),
            want,
            "threads {n}"
        );
    }
}

/// Every implementation this CPU runs; the SIMD one must be among them when
/// the CPU reports its features (so the comparison cannot silently become
/// scalar against scalar).
fn isas() -> Vec<Isa> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512bw") {
        assert!(Isa::Avx512Vnni.supported());
    }
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

/// The repacked SIMD backend (every implementation, several thread counts,
/// contexts long enough for the threaded attention, the SIMD layout built at
/// load and stored in the file) equals the reference.
#[test]
fn fast_backend_equals_serial() {
    let buf = tiny(128);
    let m = buf.model().unwrap();
    let toks = tokens(100, 256, 4);
    let want = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    let head = Head::derived(&m).unwrap();
    for isa in isas() {
        for n in [1, 2, 3] {
            let fast = Fast::new(&m, n).unwrap().with_isa(isa);
            assert!(!fast.stored());
            assert_eq!(
                run_incremental(m, head, fast, &toks),
                want,
                "fast {isa:?} threads {n}"
            );
        }
    }
    // the stored layout: the file rewritten with its SIMD section
    let sec = simd_section(&m, 2, &mut |_, _| {}).unwrap();
    let stored = ModelBuf::from_bytes(&write::with_simd(buf.bytes(), &sec).unwrap());
    let ms = stored.model().unwrap();
    for isa in isas() {
        let fast = Fast::new(&ms, 2).unwrap().with_isa(isa);
        assert!(fast.stored());
        assert_eq!(
            run_incremental(ms, Head::derived(&ms).unwrap(), fast, &toks),
            want,
            "stored layout, {isa:?}"
        );
    }
    // chunked prefill through it
    let fast = Fast::new(&m, 2).unwrap();
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(m, head, State::new(&m.config, mem.bytes()).unwrap(), fast).unwrap();
    let mut all = vec![vec![]; toks.len()];
    d.prefill_all(&toks, &mut |i, l| all[i] = l.to_vec())
        .unwrap();
    assert_eq!(all, want.1);
    println!("fast backend ISA on this machine: {:?}", Isa::detect());
}

#[test]
fn bad_tokens_and_full_context_leave_state_unchanged() {
    let buf = tiny(16);
    let m = buf.model().unwrap();
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(
        m,
        Head::derived(&m).unwrap(),
        State::new(&m.config, mem.bytes()).unwrap(),
        Serial,
    )
    .unwrap();
    d.prefill(&[1, 2, 3]).unwrap();
    let before = d.logits().to_vec();
    assert_eq!(
        d.decode(256),
        Err(ModelError::TokenOutOfRange {
            token: 256,
            vocab: 256
        })
    );
    assert_eq!(
        d.prefill(&[4, 5, 999]),
        Err(ModelError::TokenOutOfRange {
            token: 999,
            vocab: 256
        })
    );
    assert_eq!(d.prefill(&[]), Err(ModelError::Empty));
    assert_eq!(
        d.prefill(&[1; 14]),
        Err(ModelError::ContextFull {
            pos: 3,
            requested: 14,
            capacity: 16
        })
    );
    assert_eq!(d.pos(), 3);
    assert_eq!(d.logits(), before.as_slice());
    d.prefill(&[1; 13]).unwrap();
    assert_eq!(d.pos(), 16);
    assert!(matches!(d.decode(1), Err(ModelError::ContextFull { .. })));
    assert!(matches!(
        d.decode_parity(1),
        Err(ModelError::ContextFull { .. })
    ));
    // state too small
    let mut small = vec![0u8; 100];
    assert!(matches!(
        State::new(&m.config, &mut small),
        Err(ModelError::StateTooSmall { .. })
    ));
}

/// A run-time context smaller than the model's (`-c/--ctx-size`): a state made
/// for fewer positions gives the same logits and K cache for the positions it
/// holds — with the Fast backend, prefill chunks of 16, and incremental decode —
/// is full at its own capacity, and a state for more positions than the
/// model's RoPE table, or for another shape, is refused.
#[test]
fn smaller_run_time_context_is_exact_and_bounded() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(40, 256, 9);
    let (next, logits, kc) = run_incremental(m, Head::derived(&m).unwrap(), Serial, &toks);
    let small = edgedecoding_model::Config {
        ctx: 40,
        ..m.config
    };
    let mut mem = StateMem::with_chunk(&small, 16);
    let st = State::with_chunk(&small, mem.bytes(), 16).unwrap();
    let fast = Fast::new(&m, 2).unwrap();
    let mut d = Decoder::new(m, Head::derived(&m).unwrap(), st, &fast).unwrap();
    let mut all = vec![vec![]; 36];
    let nt = d
        .prefill_all(&toks[..36], &mut |i, l| all[i] = l.to_vec())
        .unwrap();
    assert_eq!(nt, next[35]);
    assert_eq!(all[..], logits[..36]);
    for i in 36..40 {
        assert_eq!(d.decode(toks[i]).unwrap(), next[i]);
        assert_eq!(d.logits(), &logits[i][..]);
    }
    let kc2: Vec<i16> = (0..m.config.n_layers)
        .flat_map(|l| d.state().k_cache(l)[..40 * m.config.kv_dim()].to_vec())
        .collect();
    assert_eq!(kc2, kc);
    assert_eq!(d.state().capacity(), 40);
    assert!(matches!(
        d.decode(1),
        Err(ModelError::ContextFull { capacity: 40, .. })
    ));
    for bad in [
        edgedecoding_model::Config {
            ctx: 65,
            ..m.config
        },
        edgedecoding_model::Config {
            ffn: m.config.ffn * 2,
            ..m.config
        },
    ] {
        let mut mem = StateMem::new(&bad);
        let st = State::new(&bad, mem.bytes()).unwrap();
        assert!(matches!(
            Decoder::new(m, Head::derived(&m).unwrap(), st, Serial),
            Err(ModelError::Mismatch(_))
        ));
    }
}

//! The GPTQ converter on the tiny built-in float model: a valid model,
//! byte-identical for any thread count, different from round-to-nearest.

mod common;

use edgedecoding_model::builtin::{calib_tokens, float_model, DEFAULT_SEED};
use edgedecoding_model::convert::{quantize_model, ConvertOptions, Quantizer};
use edgedecoding_model::owned::{ModelBuf, OwnedHead};
use edgedecoding_model::{Config, Decoder, Head, Serial, State, StateMem};

fn convert(q: Quantizer, threads: usize) -> Vec<u8> {
    let c = Config::tiny();
    let fm = float_model(&c, DEFAULT_SEED).unwrap();
    let opts = ConvertOptions {
        calib_tokens: calib_tokens(&c, DEFAULT_SEED, 16.min(c.ctx)),
        threads,
        tokenizer: None,
        quantizer: q,
        // more tokens than the context: several windows
        gptq_tokens: calib_tokens(&c, DEFAULT_SEED + 1, c.ctx + 37),
    };
    quantize_model(&fm, &opts, &mut |_, _, _| {}).unwrap()
}

#[test]
fn gptq_model_is_deterministic_valid_and_differs_from_rtn() {
    let one = convert(Quantizer::Gptq, 1);
    for t in [2, 3] {
        assert!(convert(Quantizer::Gptq, t) == one, "threads {t}");
    }
    let rtn = convert(Quantizer::Rtn, 2);
    assert_eq!(rtn.len(), one.len());
    assert!(rtn != one);
    // ffn_down and attn_output keep round-to-nearest bit for bit; the
    // compensated matrices differ
    {
        use edgedecoding_kernels::format::{ApotMatrix, ApotWeights};
        let (bg, br) = (ModelBuf::from_bytes(&one), ModelBuf::from_bytes(&rtn));
        let (mg, mr) = (bg.model().unwrap(), br.model().unwrap());
        let same = |a: &ApotMatrix<'_>, b: &ApotMatrix<'_>| {
            (0..a.rows()).all(|r| {
                a.row(r).0 == b.row(r).0
                    && (0..a.cols() / 8).all(|g| a.group(r, g, ()) == b.group(r, g, ()))
            })
        };
        for l in 0..mg.config.n_layers {
            let (lg, lr) = (mg.layer(l).unwrap(), mr.layer(l).unwrap());
            assert!(same(&lg.down, &lr.down), "layer {l}: ffn_down changed");
            assert!(same(&lg.o, &lr.o), "layer {l}: attn_output changed");
            assert!(!same(&lg.q, &lr.q), "layer {l}: attn_q not compensated");
            assert!(
                !same(&lg.gate, &lr.gate),
                "layer {l}: ffn_gate not compensated"
            );
        }
    }
    // it loads and runs
    let buf = ModelBuf::from_bytes(&one);
    let m = buf.model().unwrap();
    let head = OwnedHead::derive(&m).unwrap();
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(
        m,
        Head::Packed(head.matrix()),
        State::new(&m.config, mem.bytes()).unwrap(),
        Serial,
    )
    .unwrap();
    let next = d.prefill(&[1, 2, 3, 4]).unwrap();
    assert!((next as usize) < m.config.n_kept);
}

/// The calibration pass runs on the SIMD backend: the BFP inputs it keeps
/// are those the scalar decoder computes, window by window (each window
/// from a fresh state), for every layer and every input GPTQ uses.
#[test]
fn calibration_inputs_equal_the_scalar_decoders() {
    use edgedecoding_model::gptq::collect_inputs;
    use edgedecoding_model::{Site, Stage, StageRef, Values};
    let c = Config::tiny();
    let edq = convert(Quantizer::Rtn, 2);
    let toks = calib_tokens(&c, DEFAULT_SEED + 5, c.ctx + 21);
    let got = collect_inputs(&edq, &toks, 2, &mut |_, _, _| {}).unwrap();
    assert_eq!(got.tokens, toks.len());
    let buf = ModelBuf::from_bytes(&edq);
    let m = buf.model().unwrap();
    let mut want: Vec<[Vec<_>; 2]> = (0..c.n_layers).map(|_| Default::default()).collect();
    for w in toks.chunks(c.ctx) {
        let mut mem = StateMem::new(&m.config);
        let mut d = common::scalar_decoder(m, &mut mem);
        d.prefill_probed(w, &mut |s: StageRef<'_>| {
            let (Site::Layer(l), Values::Bfp(v)) = (s.site, s.values) else {
                return;
            };
            // q/k/v and gate/up; o and ffn_down keep round-to-nearest
            let i = match s.stage {
                Stage::AttnBfp => 0,
                Stage::MlpBfp => 1,
                _ => return,
            };
            want[l][i].extend_from_slice(v);
        })
        .unwrap();
    }
    for l in 0..c.n_layers {
        for i in 0..2 {
            assert!(!want[l][i].is_empty());
            assert!(got.blocks[l][i] == want[l][i], "layer {l} input {i}");
        }
    }
}

//! `float_ref` against an outside oracle: `fixtures/float_oracle.py`, a Qwen2
//! forward pass written from the architecture in float64 numpy with its own
//! weight readers (the `gguf` package; numpy for safetensors), computed the
//! logits of a fixed 20-token sequence on the committed tiny GGUF and tiny
//! Hugging Face fixtures (tied head, separate head, sharded). Here the Rust
//! checkpoint reader loads the same files and `FloatModel::forward` must give
//! the same logits to 1e-4 of the largest logit at every position. A RoPE
//! convention, GQA mapping, bias, norm or head bug shared by the integer model
//! and `float_ref` would be invisible to `model/tests/accuracy.rs`; here it is
//! not (a sign flip of the RoPE rotation changes these logits by ~45 %).

mod common;

use common::*;
use edgedecoding_checkpoint::{load_float_model, LoadOptions};

fn check_case(case: &serde_json::Value, threads: usize) -> f64 {
    let name = case["name"].as_str().unwrap();
    let opts = LoadOptions {
        use_output_head: case["output_head"].as_bool().unwrap(),
        ..LoadOptions::new(64)
    };
    let (m, _) = load_float_model(&fixture(case["source"].as_str().unwrap()), &opts).unwrap();
    assert_eq!(m.head.is_some(), opts.use_output_head, "{name}");
    let tokens: Vec<u32> = case["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let want: Vec<Vec<f64>> = case["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(want.len(), tokens.len(), "{name}");
    let mut seen = 0;
    let mut worst = 0.0f64;
    m.forward(&tokens, threads, None, 0..tokens.len(), &mut |t, lg| {
        let w = &want[t];
        assert_eq!(lg.len(), w.len(), "{name} position {t}");
        let scale = w.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(scale > 0.1, "{name}: degenerate oracle logits at {t}");
        for (i, (&g, &e)) in lg.iter().zip(w).enumerate() {
            let rel = (g as f64 - e).abs() / scale;
            worst = worst.max(rel);
            assert!(
                rel <= 1e-4,
                "{name} position {t} token row {i}: float_ref {g} vs oracle {e} (rel {rel:.2e})"
            );
        }
        seen += 1;
    })
    .unwrap();
    assert_eq!(seen, tokens.len(), "{name}: every position reported");
    worst
}

#[test]
fn float_ref_matches_the_numpy_oracle_on_every_fixture() {
    let exp = fixture_json("float_oracle_expected.json");
    let cases = exp["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "gguf_tied",
            "gguf_output_head",
            "hf_tied",
            "hf_sharded_lm_head"
        ]
    );
    for case in cases {
        for threads in [1, 2] {
            let worst = check_case(case, threads);
            println!(
                "{} ({threads} threads): max |float_ref - oracle| / max|logit| = {worst:.2e}",
                case["name"].as_str().unwrap()
            );
        }
    }
}

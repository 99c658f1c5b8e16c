//! The real Qwen2.5-Coder-0.5B-Instruct GGUF (Q4_K_M mix), when present at
//! `~/.cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf` (or
//! `$EDGEDECODING_REAL_GGUF`); skipped with a printed reason otherwise.
//!
//! The default test is fast: the file is memory-mapped and only the checked
//! tensors are dequantized. The full load (about 2.5 GB of f32) is `#[ignore]`d:
//! `cargo test --release -p edgedecoding-checkpoint --test real_model -- --ignored --nocapture`.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::*;
use edgedecoding_checkpoint::{
    gguf, load_float_model, load_float_model_with_progress, GgufFile, LoadOptions,
};
use edgedecoding_model::config::{Config, CTX_FAST};

fn real_path() -> Option<PathBuf> {
    let p = match (
        std::env::var_os("EDGEDECODING_REAL_GGUF"),
        std::env::var_os("HOME"),
    ) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(home)) => {
            PathBuf::from(home).join(".cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        }
        (None, None) => {
            eprintln!("SKIPPED: neither EDGEDECODING_REAL_GGUF nor HOME is set");
            return None;
        }
    };
    let exp = fixture_json("real_q4km_expected.json");
    match std::fs::metadata(&p) {
        Err(_) => {
            // CI sets EDGEDECODING_REQUIRE_REAL=1 once it has fetched the model
            assert!(
                std::env::var_os("EDGEDECODING_REQUIRE_REAL").is_none(),
                "real model {} is required but absent",
                p.display()
            );
            eprintln!(
                "SKIPPED: real model {} is absent (fetch it with scripts/fetch-model.sh)",
                p.display()
            );
            None
        }
        Ok(m) if m.len() != exp["file_size"].as_u64().unwrap() => {
            eprintln!(
                "SKIPPED: {} has {} bytes, not the {} of the fixture's file (incomplete download?)",
                p.display(),
                m.len(),
                exp["file_size"]
            );
            None
        }
        Ok(_) => Some(p),
    }
}

#[test]
fn real_gguf_metadata_types_and_dequantized_values() {
    let Some(path) = real_path() else { return };
    let t0 = Instant::now();
    let f = GgufFile::open(&path).unwrap();
    let t_open = t0.elapsed();
    let exp = fixture_json("real_q4km_expected.json");
    // configuration
    let (c, eps) = gguf::qwen2_config(&f, &LoadOptions::new(CTX_FAST)).unwrap();
    assert_eq!(c, Config::qwen2_5_0_5b(CTX_FAST));
    assert_eq!(eps, 1e-6);
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    // tokenizer metadata
    let md = f.metadata();
    assert_eq!(md.architecture().unwrap(), "qwen2");
    assert_eq!(md.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(md.get_str("tokenizer.ggml.pre").unwrap(), "qwen2");
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 151_936);
    assert_eq!(tokens[151_645], "<|im_end|>");
    assert_eq!(tokens[151_643], "<|endoftext|>");
    assert_eq!(
        md.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        151_387
    );
    assert_eq!(
        md.get_int_array("tokenizer.ggml.token_type").unwrap().len(),
        151_936
    );
    assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 151_645);
    assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 151_643);
    assert!(md.get_str("tokenizer.chat_template").is_ok());
    // tensor types as the Python reader saw them
    let types = exp["types"].as_object().unwrap();
    assert_eq!(f.tensors().len(), types.len());
    for t in f.tensors() {
        assert_eq!(t.ty.name(), types[&t.name].as_str().unwrap(), "{}", t.name);
        assert!(t.ty.is_supported(), "{}", t.name);
    }
    // selected rows, bit for bit
    let rows_bin = fixture_f32("real_q4km_rows.bin");
    let t1 = Instant::now();
    for e in exp["rows"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let t = f.tensor(name).unwrap();
        assert_eq!(t.ty.name(), e["type"].as_str().unwrap());
        let rows: Vec<u32> = e["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap() as u32)
            .collect();
        let (off, n) = (
            e["offset"].as_u64().unwrap() as usize,
            e["count"].as_u64().unwrap() as usize,
        );
        let got = f.dequantize_rows(t, &rows).unwrap();
        assert_bits_eq(&got, &rows_bin[off..off + n], name);
    }
    // whole tensors of each type by checksum (the two 136M-value ones are
    // checked by the full-load test)
    for (name, w) in exp["wsum"].as_object().unwrap() {
        if name == "token_embd.weight" || name == "output.weight" {
            continue;
        }
        let got = f.dequantize(f.tensor(name).unwrap()).unwrap();
        assert_eq!(wsum(&got), w.as_u64().unwrap(), "{name}");
    }
    eprintln!(
        "real model: open + metadata {:?}, dequantize checked tensors {:?}",
        t_open,
        t1.elapsed()
    );
}

#[test]
#[ignore = "full 0.5B load (about 2.5 GB of f32): run with --release -- --ignored --nocapture"]
fn real_gguf_full_load() {
    let Some(path) = real_path() else { return };
    let exp = fixture_json("real_q4km_expected.json");
    let ws = |n: &str| exp["wsum"][n].as_u64().unwrap();
    let t0 = Instant::now();
    let mut stamps = Vec::new();
    let (m, md) = load_float_model_with_progress(
        &path,
        &LoadOptions {
            use_output_head: true,
            ..LoadOptions::new(CTX_FAST)
        },
        &mut |stage, done, _| stamps.push((stage.to_string(), done, t0.elapsed())),
    )
    .unwrap();
    let t_full = t0.elapsed();
    // time per step: open, embedding, head, final norm, then the layers
    let steps: Vec<String> = stamps
        .windows(2)
        .filter(|w| w[1].0 == "tensors")
        .take(4)
        .map(|w| format!("{}#{} {:?}", w[0].0, w[0].1, w[1].2 - w[0].2))
        .collect();
    eprintln!("first steps: {steps:?}");
    assert_eq!(m.config, Config::qwen2_5_0_5b(CTX_FAST));
    assert_eq!(wsum(&m.emb), ws("token_embd.weight"));
    assert_eq!(wsum(m.head.as_ref().unwrap()), ws("output.weight"));
    assert_eq!(wsum(&m.layers[0].q_w), ws("blk.0.attn_q.weight"));
    assert_eq!(wsum(&m.layers[0].k_w), ws("blk.0.attn_k.weight"));
    assert_eq!(wsum(&m.layers[0].v_w), ws("blk.0.attn_v.weight"));
    assert_eq!(wsum(&m.layers[0].down), ws("blk.0.ffn_down.weight"));
    assert_eq!(wsum(&m.layers[2].down), ws("blk.2.ffn_down.weight"));
    assert_eq!(wsum(&m.layers[0].gate), ws("blk.0.ffn_gate.weight"));
    assert_eq!(wsum(&m.layers[23].up), ws("blk.23.ffn_up.weight"));
    assert_eq!(wsum(&m.final_norm), ws("output_norm.weight"));
    assert!(md.gguf().is_some());
    drop(m);
    // a pruned vocabulary (every 4th id) with the tied head
    let keep: Vec<u32> = (0..151_936).step_by(4).collect();
    let t1 = Instant::now();
    let (k, _) = load_float_model(
        &path,
        &LoadOptions {
            keep: Some(keep),
            ..LoadOptions::new(CTX_FAST)
        },
    )
    .unwrap();
    let t_keep = t1.elapsed();
    assert_eq!(k.config.n_kept, 37_984);
    assert_eq!(k.emb.len(), 37_984 * 896);
    eprintln!(
        "real model full load: {t_full:?} (with the separate head); pruned to 37984 ids, \
         tied: {t_keep:?}"
    );
}

//! The tiny qwen2 GGUF (mixed tensor types) loads into the right FloatModel.

mod common;

use common::*;
use edgedecoding_checkpoint::{
    gguf, load_float_model, load_float_model_with_progress, Error, GgufFile, LoadOptions, Metadata,
};
use edgedecoding_model::config::{Config, ConfigError};
use edgedecoding_model::convert::{quantize_model, ConvertOptions};

fn load(opts: &LoadOptions) -> (edgedecoding_model::float_ref::FloatModel, Metadata) {
    load_float_model(&fixture("tiny_qwen2.gguf"), opts).unwrap()
}

#[test]
fn config_and_every_tensor_match_the_oracle() {
    let exp = fixture_json("tiny_qwen2_expected.json");
    let (m, md) = load(&LoadOptions::new(64));
    assert_eq!(
        m.config,
        Config {
            ctx: 64,
            ..Config::tiny()
        }
    );
    assert_eq!(
        m.eps.to_bits() as u64,
        exp["config"]["eps_bits"].as_u64().unwrap()
    );
    assert!(m.head.is_none(), "tied by default");
    assert!(m.keep.is_none());
    assert_eq!(m.layers.len(), 2);
    let mut checked = 0;
    for (name, e) in exp["tensors"].as_object().unwrap() {
        if name == "output.weight" {
            continue;
        }
        let got = field(&m, name).unwrap_or_else(|| panic!("{name}"));
        check_entry(got, e, name);
        checked += 1;
    }
    assert_eq!(checked, 2 + 2 * 12);
    // shapes
    let c = m.config;
    assert_eq!(m.emb.len(), c.vocab * c.hidden);
    for l in &m.layers {
        assert_eq!(l.q_w.len(), c.hidden * c.hidden);
        assert_eq!(l.k_w.len(), c.kv_dim() * c.hidden);
        assert_eq!(l.v_b.len(), c.kv_dim());
        assert_eq!(l.down.len(), c.hidden * c.ffn);
    }
    let md = md.gguf().unwrap();
    assert_eq!(md.architecture().unwrap(), "qwen2");
    assert_eq!(md.get_u64("qwen2.context_length").unwrap(), 128);
}

#[test]
fn tokenizer_metadata_is_exposed() {
    let (_, md) = load(&LoadOptions::new(64));
    assert!(md.hf_dir().is_none());
    let md = md.gguf().unwrap();
    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 256);
    assert_eq!(tokens[0], "<t0>");
    assert_eq!(tokens[10], "Ġhello");
    assert_eq!(tokens[11], "你好");
    assert_eq!(tokens[13], "<|im_end|>");
    assert_eq!(
        md.get_str_array("tokenizer.ggml.merges").unwrap(),
        ["Ġ h", "h e", "ll o"]
    );
    let types = md.get_int_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!(types.len(), 256);
    assert_eq!((types[0], types[12], types[13]), (1, 3, 3));
    assert_eq!(md.get_str("tokenizer.ggml.pre").unwrap(), "qwen2");
    assert_eq!(md.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 12);
    assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 13);
    assert!(!md.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    assert!(md
        .get_str("tokenizer.chat_template")
        .unwrap()
        .contains("messages"));
    // the metadata alone, without loading tensors
    let only = gguf::read_metadata(&fixture("tiny_qwen2.gguf")).unwrap();
    assert_eq!(only.len(), md.len());
    assert_eq!(only.get_u64("general.alignment").unwrap(), 64);
}

#[test]
fn custom_alignment_is_honoured() {
    let f = GgufFile::open(&fixture("tiny_qwen2.gguf")).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_section() % 64, 0);
    for t in f.tensors() {
        assert_eq!(t.data_offset % 64, 0, "{}", t.name);
    }
}

#[test]
fn output_head_option() {
    let exp = fixture_json("tiny_qwen2_expected.json");
    let opts = LoadOptions {
        use_output_head: true,
        ..LoadOptions::new(64)
    };
    let (m, _) = load(&opts);
    let head = m.head.as_deref().expect("separate head");
    check_entry(head, &exp["tensors"]["output.weight"], "output.weight");
}

#[test]
fn keep_list_selects_rows_in_order() {
    let (full, _) = load(&LoadOptions {
        use_output_head: true,
        ..LoadOptions::new(64)
    });
    let keep = vec![0u32, 5, 12, 13, 200, 255];
    let (m, _) = load(&LoadOptions {
        ctx: 64,
        keep: Some(keep.clone()),
        use_output_head: true,
    });
    let h = m.config.hidden;
    assert_eq!(m.config.n_kept, keep.len());
    assert_eq!(m.config.vocab, 256);
    assert!(m.config.pruned());
    assert_eq!(m.keep.as_deref(), Some(keep.as_slice()));
    assert_eq!(m.emb.len(), keep.len() * h);
    let head = m.head.as_deref().unwrap();
    let full_head = full.head.as_deref().unwrap();
    for (i, &id) in keep.iter().enumerate() {
        let id = id as usize;
        assert_bits_eq(
            &m.emb[i * h..(i + 1) * h],
            &full.emb[id * h..(id + 1) * h],
            "emb row",
        );
        assert_bits_eq(
            &head[i * h..(i + 1) * h],
            &full_head[id * h..(id + 1) * h],
            "head row",
        );
    }
    assert_eq!(m.row_of_token(200).unwrap(), 4);
    assert!(m.row_of_token(201).is_err());
}

#[test]
fn bad_keep_lists_are_rejected() {
    for (keep, what) in [
        (vec![], "empty"),
        (vec![3, 2], "ascending"),
        (vec![1, 1], "ascending"),
        (vec![0, 256], "outside"),
    ] {
        let e = load_float_model(
            &fixture("tiny_qwen2.gguf"),
            &LoadOptions {
                ctx: 64,
                keep: Some(keep),
                use_output_head: false,
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::BadKeep { .. }), "{e:?}");
        assert!(e.to_string().contains(what), "{e}");
    }
}

#[test]
fn bad_context_is_a_config_error() {
    let e = load_float_model(&fixture("tiny_qwen2.gguf"), &LoadOptions::new(0)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Config {
                source: ConfigError::Range { field: "ctx", .. },
                ..
            }
        ),
        "{e:?}"
    );
    // longer than the trained context (qwen2.context_length = 128)
    load_float_model(&fixture("tiny_qwen2.gguf"), &LoadOptions::new(128)).unwrap();
    let e = load_float_model(&fixture("tiny_qwen2.gguf"), &LoadOptions::new(129)).unwrap_err();
    assert!(
        matches!(e, Error::BadValue { ref key, .. } if key == "qwen2.context_length"),
        "{e:?}"
    );
    assert!(e.to_string().contains("129"), "{e}");
}

#[test]
fn progress_reaches_the_end() {
    let mut calls = Vec::new();
    load_float_model_with_progress(
        &fixture("tiny_qwen2.gguf"),
        &LoadOptions::new(64),
        &mut |stage, done, total| calls.push((stage.to_string(), done, total)),
    )
    .unwrap();
    let last = calls.last().unwrap();
    assert_eq!(last.0, "tensors");
    assert_eq!(last.1, last.2);
    assert_eq!(last.2, 2 + 2 * 12);
    assert!(calls
        .windows(2)
        .all(|w| w[0].0 != w[1].0 || w[0].1 <= w[1].1));
}

#[test]
fn version_2_reads_like_version_3() {
    let mut b = fixture_bytes("tiny_qwen2.gguf");
    b[4..8].copy_from_slice(&2u32.to_le_bytes());
    let f2 = GgufFile::from_bytes("v2.gguf", b).unwrap();
    assert_eq!(f2.version(), 2);
    let m2 = gguf::load_qwen2(&f2, &LoadOptions::new(64), &mut |_, _, _| {}).unwrap();
    let (m3, _) = load(&LoadOptions::new(64));
    assert_eq!(m2.config, m3.config);
    assert_bits_eq(&m2.emb, &m3.emb, "emb");
    assert_bits_eq(&m2.layers[1].down, &m3.layers[1].down, "down");
}

#[test]
fn the_loaded_model_runs_and_converts() {
    let (m, _) = load(&LoadOptions::new(64));
    let mut seen = 0;
    m.forward(&[1, 2, 3, 10, 11], 1, None, 4..5, &mut |_, logits| {
        assert_eq!(logits.len(), 256);
        assert!(logits.iter().all(|x| x.is_finite()));
        seen += 1;
    })
    .unwrap();
    assert_eq!(seen, 1);
    let edq = quantize_model(
        &m,
        &ConvertOptions {
            calib_tokens: vec![1, 2, 3, 4, 5, 6, 7, 8],
            threads: 1,
            tokenizer: None,
            quantizer: Default::default(),
            gptq_tokens: Vec::new(),
        },
        &mut |_, _, _| {},
    )
    .unwrap();
    assert!(!edq.is_empty());
}

//! Hugging Face folders (single file and sharded) load into the right FloatModel,
//! and their malformed variants give typed errors.

mod common;

use common::*;
use edgedecoding_checkpoint::hf::{Dtype, SafeTensors};
use edgedecoding_checkpoint::{detect, load_float_model, Checkpoint, Error, LoadOptions};

fn check_all(m: &edgedecoding_model::float_ref::FloatModel, exp: &serde_json::Value) -> usize {
    let mut n = 0;
    for (name, e) in exp["tensors"].as_object().unwrap() {
        let g = hf_to_gguf(name);
        if let Some(got) = field(m, &g) {
            check_entry(got, e, name);
            n += 1;
        }
    }
    n
}

#[test]
fn single_file_bf16_folder() {
    let exp = fixture_json("tiny_hf_expected.json");
    let (m, md) = load_float_model(&fixture("tiny_hf"), &LoadOptions::new(32)).unwrap();
    let c = m.config;
    assert_eq!(
        (c.n_layers, c.hidden, c.ffn, c.n_heads, c.n_kv_heads),
        (2, 64, 128, 4, 2)
    );
    assert_eq!(
        (c.head_dim, c.vocab, c.n_kept, c.rope_theta, c.ctx),
        (16, 256, 256, 10000, 32)
    );
    assert_eq!(
        m.eps.to_bits() as u64,
        exp["config"]["eps_bits"].as_u64().unwrap()
    );
    assert!(m.head.is_none());
    assert_eq!(check_all(&m, &exp), 2 + 2 * 12);
    let info = md.hf().unwrap();
    assert_eq!(md.hf_dir().unwrap(), fixture("tiny_hf"));
    assert!(md.gguf().is_none());
    assert_eq!(info.tokenizer_json(), fixture("tiny_hf/tokenizer.json"));
    assert_eq!(info.config["tie_word_embeddings"], true);
    // tied: asking for an output head it does not have is an error (issue
    // 13: no silent fallback to the embedding)
    let e = load_float_model(
        &fixture("tiny_hf"),
        &LoadOptions {
            use_output_head: true,
            ..LoadOptions::new(32)
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { tensor, .. } if tensor == "lm_head.weight"),
        "{e}"
    );
}

#[test]
fn sharded_mixed_dtype_folder_with_head_and_keep() {
    let exp = fixture_json("tiny_hf_sharded_expected.json");
    let opts = LoadOptions {
        use_output_head: true,
        ..LoadOptions::new(16)
    };
    let (m, _) = load_float_model(&fixture("tiny_hf_sharded"), &opts).unwrap();
    let c = m.config;
    assert_eq!((c.n_layers, c.ffn, c.vocab), (1, 64, 128));
    assert!(m.head.is_some());
    assert_eq!(check_all(&m, &exp), 3 + 12);
    let dtypes: Vec<&str> = exp["tensors"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["dtype"].as_str().unwrap())
        .collect();
    for d in ["F32", "F16", "BF16"] {
        assert!(dtypes.contains(&d));
    }
    let keep = vec![1u32, 64, 127];
    let (k, _) = load_float_model(
        &fixture("tiny_hf_sharded"),
        &LoadOptions {
            keep: Some(keep.clone()),
            ..opts
        },
    )
    .unwrap();
    let h = c.hidden;
    assert_eq!(k.config.n_kept, 3);
    for (i, &id) in keep.iter().enumerate() {
        let id = id as usize;
        assert_bits_eq(
            &k.emb[i * h..(i + 1) * h],
            &m.emb[id * h..(id + 1) * h],
            "emb",
        );
        assert_bits_eq(
            &k.head.as_ref().unwrap()[i * h..(i + 1) * h],
            &m.head.as_ref().unwrap()[id * h..(id + 1) * h],
            "head",
        );
    }
}

#[test]
fn files_inside_a_folder_resolve_to_the_folder() {
    for f in [
        "tiny_hf/config.json",
        "tiny_hf/model.safetensors",
        "tiny_hf_sharded/model.safetensors.index.json",
    ] {
        let p = fixture(f);
        assert_eq!(
            detect(&p).unwrap(),
            Checkpoint::HfFolder(p.parent().unwrap().to_path_buf())
        );
    }
    assert_eq!(
        detect(&fixture("tiny_qwen2.gguf")).unwrap(),
        Checkpoint::Gguf(fixture("tiny_qwen2.gguf"))
    );
    assert!(matches!(
        detect(&fixture("types_expected.bin")),
        Err(Error::NotACheckpoint { .. })
    ));
    assert!(matches!(
        load_float_model(&fixture("no_such_thing"), &LoadOptions::default()),
        Err(Error::Io { op: "open", .. })
    ));
}

fn edit_config(dir: &TempDir, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.path().join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
}

#[test]
fn malformed_folders_give_typed_errors() {
    let opts = LoadOptions::new(32);
    // wrong architecture
    let d = TempDir::copy_of("arch", "tiny_hf");
    edit_config(&d, |c| {
        c["architectures"] = serde_json::json!(["LlamaForCausalLM"])
    });
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(matches!(e, Error::UnsupportedArchitecture { .. }), "{e:?}");
    assert!(e.to_string().contains("LlamaForCausalLM") && e.to_string().contains("only qwen2"));
    // missing field
    let d = TempDir::copy_of("missing", "tiny_hf");
    edit_config(&d, |c| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::MissingKey { ref key, .. } if key == "hidden_size"),
        "{e:?}"
    );
    // wrong type
    let d = TempDir::copy_of("wrongtype", "tiny_hf");
    edit_config(&d, |c| c["num_hidden_layers"] = serde_json::json!("2"));
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::WrongKeyType { ref key, .. } if key == "num_hidden_layers"),
        "{e:?}"
    );
    // shape mismatch: the config claims a larger FFN
    let d = TempDir::copy_of("shape", "tiny_hf");
    edit_config(&d, |c| c["intermediate_size"] = serde_json::json!(136));
    let e = load_float_model(d.path(), &opts).unwrap_err();
    match &e {
        Error::ShapeMismatch {
            tensor,
            found,
            expected,
            ..
        } => {
            assert_eq!(tensor, "model.layers.0.mlp.gate_proj.weight");
            assert_eq!(found, &[128, 64]);
            assert_eq!(expected, &[136, 64]);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("model.safetensors"));
    // vocab mismatch
    let d = TempDir::copy_of("vocab", "tiny_hf");
    edit_config(&d, |c| c["vocab_size"] = serde_json::json!(300));
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::ShapeMismatch { ref tensor, .. } if tensor == "model.embed_tokens.weight")
    );
    // non-integer theta
    let d = TempDir::copy_of("theta", "tiny_hf");
    edit_config(&d, |c| c["rope_theta"] = serde_json::json!(10000.5));
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::BadValue { ref key, .. } if key == "rope_theta"),
        "{e:?}"
    );
    // context beyond max_position_embeddings (128)
    let e = load_float_model(&fixture("tiny_hf"), &LoadOptions::new(256)).unwrap_err();
    assert!(
        matches!(e, Error::BadValue { ref key, .. } if key == "max_position_embeddings"),
        "{e:?}"
    );
    // config.json not JSON
    let d = TempDir::copy_of("json", "tiny_hf");
    std::fs::write(d.path().join("config.json"), b"{\"hidden_size\": 64,").unwrap();
    assert!(matches!(
        load_float_model(d.path(), &opts),
        Err(Error::Json { .. })
    ));
    // no weights
    let d = TempDir::copy_of("noweights", "tiny_hf");
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    assert!(matches!(
        load_float_model(d.path(), &opts),
        Err(Error::NotACheckpoint { .. })
    ));
    // no config
    let d = TempDir::copy_of("noconfig", "tiny_hf");
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    assert!(matches!(
        load_float_model(d.path(), &opts),
        Err(Error::Io { .. })
    ));
}

#[test]
fn malformed_shard_index_gives_typed_errors() {
    let opts = LoadOptions::new(32);
    let idx_of = |d: &TempDir| d.path().join("model.safetensors.index.json");
    let edit_index = |d: &TempDir, f: &dyn Fn(&mut serde_json::Value)| {
        let p = idx_of(d);
        let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut j);
        std::fs::write(&p, serde_json::to_vec(&j).unwrap()).unwrap();
    };
    // a tensor routed to the wrong shard
    let d = TempDir::copy_of("wrongshard", "tiny_hf_sharded");
    edit_index(&d, &|j| {
        j["weight_map"]["model.norm.weight"] =
            serde_json::json!("model-00002-of-00002.safetensors");
    });
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::MissingTensor { ref tensor, .. } if tensor == "model.norm.weight"),
        "{e:?}"
    );
    // a tensor absent from the map
    let d = TempDir::copy_of("absent", "tiny_hf_sharded");
    edit_index(&d, &|j| {
        j["weight_map"]
            .as_object_mut()
            .unwrap()
            .remove("model.layers.0.mlp.up_proj.weight");
    });
    let e = load_float_model(d.path(), &opts).unwrap_err();
    assert!(
        matches!(e, Error::MissingTensor { ref tensor, .. } if tensor == "model.layers.0.mlp.up_proj.weight"),
        "{e:?}"
    );
    // a path outside the folder
    let d = TempDir::copy_of("escape", "tiny_hf_sharded");
    edit_index(&d, &|j| {
        j["weight_map"]["model.norm.weight"] = serde_json::json!("../x.safetensors");
    });
    assert!(matches!(
        load_float_model(d.path(), &opts),
        Err(Error::BadSafetensors { .. })
    ));
    // a missing shard file
    let d = TempDir::copy_of("noshard", "tiny_hf_sharded");
    std::fs::remove_file(d.path().join("model-00002-of-00002.safetensors")).unwrap();
    assert!(matches!(
        load_float_model(d.path(), &opts),
        Err(Error::Io { op: "open", .. })
    ));
}

#[test]
fn safetensors_parser_errors() {
    let good = safetensors_bytes(&[
        ("a", "F32", vec![2], 1.5f32.to_le_bytes().repeat(2)),
        ("b", "I32", vec![1], vec![1, 0, 0, 0]),
        ("c", "BF16", vec![2, 1], vec![0x80, 0x3f, 0x00, 0x40]),
    ]);
    let st = SafeTensors::from_bytes("t.safetensors", good.clone()).unwrap();
    assert_eq!(st.to_f32("a", None).unwrap(), [1.5, 1.5]);
    assert_eq!(st.to_f32("c", None).unwrap(), [1.0, 2.0]);
    assert_eq!(st.to_f32("c", Some(&[1, 0])).unwrap(), [2.0, 1.0]);
    assert_eq!(st.tensor("b").unwrap().dtype, Dtype::Other("I32".into()));
    let e = st.to_f32("b", None).unwrap_err();
    assert!(matches!(e, Error::UnsupportedDtype { ref dtype, .. } if dtype == "I32"));
    assert!(e.to_string().contains("t.safetensors") && e.to_string().contains("\"b\""));
    assert!(matches!(
        st.to_f32("zz", None),
        Err(Error::MissingTensor { .. })
    ));
    // every truncation
    for n in 0..good.len() {
        let e = SafeTensors::from_bytes("t.safetensors", good[..n].to_vec()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Truncated { .. } | Error::Json { .. } | Error::TensorOutOfBounds { .. }
            ),
            "cut at {n}: {e:?}"
        );
    }
    // absurd header length
    let mut b = good.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        SafeTensors::from_bytes("t", b),
        Err(Error::Truncated { .. })
    ));
    // shape / size disagreement and reversed offsets
    for bad in [
        safetensors_bytes(&[("a", "F32", vec![3], vec![0; 8])]),
        br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#.to_vec(),
        br#"[1,2]"#.to_vec(),
        br#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#.to_vec(),
        br#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#.to_vec(),
    ] {
        let bytes = if bad[0] == b'{' || bad[0] == b'[' {
            let mut v = (bad.len() as u64).to_le_bytes().to_vec();
            v.extend_from_slice(&bad);
            v.extend_from_slice(&[0; 8]);
            v
        } else {
            bad
        };
        let e = SafeTensors::from_bytes("t", bytes).unwrap_err();
        assert!(matches!(e, Error::BadSafetensors { .. }), "{e:?}");
    }
}

#[test]
fn random_mutations_of_safetensors_never_panic() {
    let orig = fixture_bytes("tiny_hf/model.safetensors");
    let header_end = 8 + u64::from_le_bytes(orig[..8].try_into().unwrap()) as usize;
    let mut rng = Rng(7);
    for _ in 0..1500 {
        let mut b = orig.clone();
        match rng.below(4) {
            0 => b.truncate(rng.below(header_end + 64)),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(header_end);
                    b[i] = rng.next() as u8;
                }
            }
            2 => {
                let i = rng.below(header_end);
                b[i] = b"0123456789[]{}\",:-e."[rng.below(20)];
            }
            _ => {
                let i = rng.below(8);
                b[i] = rng.next() as u8;
            }
        }
        if let Ok(st) = SafeTensors::from_bytes("m", b) {
            let names: Vec<String> = st.tensors().keys().cloned().collect();
            for n in names {
                let _ = st.to_f32(&n, None);
                let _ = st.to_f32(&n, Some(&[0, 1]));
            }
        }
    }
}

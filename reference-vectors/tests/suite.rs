//! The whole suite on the committed tiny model: complete, self-consistent,
//! deterministic; the layer capture comes from the decoder's stage probe.

mod common;

use std::collections::BTreeMap;

use edgedecoding_reference_vectors::manifest::{sha256_hex, DType, Manifest, Role};
use edgedecoding_reference_vectors::vectors::{sections, write_suite, SuiteOptions};

fn read_i32(p: &std::path::Path) -> Vec<i32> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn full_suite_on_the_tiny_model() {
    let buf = common::tiny();
    let m = buf.model().unwrap();
    let dir = common::tmp_dir("suite");
    let s = write_suite(&m, "tiny", &dir, &SuiteOptions::default()).unwrap();
    let man = Manifest::read(&dir).unwrap();
    assert_eq!(man.cases.len(), s.total_cases());
    assert_eq!(man.files.len(), s.files);
    // every section is there
    let ops: std::collections::BTreeSet<&str> =
        man.cases.iter().map(|c| c.operator.as_str()).collect();
    for sec in sections() {
        if sec != "model" {
            assert!(ops.contains(sec), "no cases of {sec}");
        }
    }
    for op in [
        "weights",
        "decoder_layer",
        "decoder_chunk",
        "prefill",
        "decode",
    ] {
        assert!(ops.contains(op), "no cases of {op}");
    }
    // 2 layers x 2 chunks (first, last)
    assert_eq!(s.cases["decoder_layer"], 4);
    // every file: present, right length and hash, consistent type
    let mut bytes = 0u64;
    for f in &man.files {
        let b = std::fs::read(dir.join(&f.path)).unwrap();
        assert_eq!(b.len() as u64, f.bytes, "{}", f.path);
        assert_eq!(sha256_hex(&b), f.sha256, "{}", f.path);
        assert!(f.bits <= 8 * f.dtype.size() as u32, "{}", f.path);
        bytes += f.bytes;
    }
    assert_eq!(bytes, s.bytes);
    // every value fits its declared bit width
    for f in man
        .files
        .iter()
        .filter(|f| f.bits < 8 * f.dtype.size() as u32)
    {
        let b = std::fs::read(dir.join(&f.path)).unwrap();
        for i in 0..f.elems() {
            let v = f.dtype.value_at(&b, i);
            let (lo, hi) = if f.dtype.signed() {
                (-(1i128 << (f.bits - 1)), (1i128 << (f.bits - 1)) - 1)
            } else {
                (0, (1i128 << f.bits) - 1)
            };
            assert!(
                (lo..=hi).contains(&v),
                "{}[{i}] = {v} outside {} bits",
                f.path,
                f.bits
            );
        }
    }
    // index.txt: one line per case, in manifest order
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    let lines: Vec<&str> = index.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), man.cases.len());
    for (l, c) in lines.iter().zip(&man.cases) {
        assert!(
            l.starts_with(&format!("{} {} {}", c.operator, c.case, c.dir)),
            "{l}"
        );
    }
    // headers and $readmemh files
    assert!(dir.join("include/softmax/spec_7_4.h").exists());
    assert!(dir.join("include/all_cases.h").exists());
    let hex = std::fs::read_to_string(dir.join("rom/exp2_neg_q15.hex")).unwrap();
    let words: Vec<&str> = hex.lines().filter(|l| !l.starts_with("//")).collect();
    assert_eq!(words.len(), 256);
    assert_eq!(words[0], "8000");
    let cos = std::fs::read_to_string(dir.join("rom/rope_cos_q14.hex")).unwrap();
    assert_eq!(cos.lines().find(|l| !l.starts_with("//")), Some("4000"));

    // chained stages: embedding -> layer 0 -> layer 1 -> final; prefill = capture
    let x_embed = read_i32(&dir.join("model/layers/chunk0/chunk/x_embed.bin"));
    assert_eq!(
        read_i32(&dir.join("model/layers/chunk0/layer00/x_in.bin")),
        x_embed
    );
    assert_eq!(
        read_i32(&dir.join("model/layers/chunk0/layer00/x_out.bin")),
        read_i32(&dir.join("model/layers/chunk0/layer01/x_in.bin"))
    );
    assert_eq!(
        read_i32(&dir.join("model/layers/chunk0/chunk/logits.bin")),
        read_i32(&dir.join("model/prefill/chunk0/logits.bin"))
    );
    assert_eq!(
        read_i32(&dir.join("model/layers/last/chunk/logits.bin")),
        read_i32(&dir.join("model/prefill/last/logits.bin"))
    );
    // the last chunk reads ctx - 8 cached rows
    let kin = man
        .files
        .iter()
        .find(|f| f.path == "model/layers/last/layer01/k_cache_in.bin")
        .unwrap();
    assert_eq!(kin.shape, vec![m.config.ctx - 8, m.config.kv_dim()]);
    assert_eq!((kin.role, kin.dtype), (Role::In, DType::I16));

    // deterministic: same options, same bytes (thread count irrelevant)
    let dir2 = common::tmp_dir("suite2");
    let o2 = SuiteOptions {
        threads: 3,
        ..SuiteOptions::default()
    };
    write_suite(&m, "tiny", &dir2, &o2).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("manifest.json")).unwrap(),
        std::fs::read_to_string(dir2.join("manifest.json")).unwrap()
    );
    // a refused directory and a refused section name
    assert!(write_suite(&m, "tiny", &dir2, &SuiteOptions::default()).is_err());
    let bad = SuiteOptions {
        only: vec!["nope".into()],
        ..SuiteOptions::default()
    };
    let e = write_suite(&m, "tiny", &common::tmp_dir("suite3"), &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown operator `nope`"), "{e}");
    let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &man.cases {
        *per_op.entry(&c.operator).or_default() += 1;
    }
    assert_eq!(
        per_op,
        s.cases.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn another_seed_changes_the_random_cases_only() {
    let buf = common::tiny();
    let m = buf.model().unwrap();
    let (a, b) = (common::tmp_dir("seed-a"), common::tmp_dir("seed-b"));
    let only = vec!["linear".to_string(), "rom".to_string()];
    write_suite(
        &m,
        "tiny",
        &a,
        &SuiteOptions {
            only: only.clone(),
            ..SuiteOptions::default()
        },
    )
    .unwrap();
    write_suite(
        &m,
        "tiny",
        &b,
        &SuiteOptions {
            only,
            seed: 2,
            ..SuiteOptions::default()
        },
    )
    .unwrap();
    let (ma, mb) = (Manifest::read(&a).unwrap(), Manifest::read(&b).unwrap());
    let hash = |m: &Manifest, p: &str| m.files.iter().find(|f| f.path == p).unwrap().sha256.clone();
    assert_eq!(
        hash(&ma, "rom/exp2_neg_q15.bin"),
        hash(&mb, "rom/exp2_neg_q15.bin")
    );
    assert_eq!(
        hash(&ma, "ops/linear/rounding_ties/y.bin"),
        hash(&mb, "ops/linear/rounding_ties/y.bin")
    );
    assert_ne!(
        hash(&ma, "ops/linear/rand_16x64/y.bin"),
        hash(&mb, "ops/linear/rand_16x64/y.bin")
    );
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

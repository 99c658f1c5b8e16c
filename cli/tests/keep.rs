//! Vocabulary pruning through the CLI (issue 13, one keep-list rule):
//! `convert --keep-vocab [--keep-corpus]`, `convert --keep-list`,
//! `inspect --keep-list-out`, `export-hw --keep-vocab`, and their refusals,
//! on a Hugging Face folder whose model has 320 rows: the tiny fixture's
//! weights with a larger embedding, and a tokenizer of 256 byte tokens, 44
//! merges (ids 256..300), 3 special tokens (300..303) and no entry for ids
//! 303..320.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{exe, ok, tmp};

fn err(out: Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

const VOCAB: usize = 320;

/// The merges: letter pairs `x y` for x in "hieo", y in "nerstalhod" (44 of them).
fn merges() -> Vec<(String, String)> {
    let mut m = Vec::new();
    for x in "hieo".chars() {
        for y in "nerstalhodu".chars() {
            m.push((x.to_string(), y.to_string()));
        }
    }
    m.truncate(44);
    m
}

/// Id of merge `x y` (256 + its rank).
fn merge_id(pair: &str) -> u32 {
    256 + merges()
        .iter()
        .position(|(a, b)| format!("{a}{b}") == pair)
        .unwrap() as u32
}

/// The Hugging Face folder described above.
fn folder(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    let fix = root.join("checkpoint/tests/fixtures/tiny_hf");
    // config: vocab 320
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fix.join("config.json")).unwrap()).unwrap();
    cfg["vocab_size"] = VOCAB.into();
    std::fs::write(hf.join("config.json"), cfg.to_string()).unwrap();
    // weights: the embedding grown to 320 rows (rows 256.. repeat rows 0..)
    let st = std::fs::read(fix.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&st[8..8 + n]).unwrap();
    let data = &st[8 + n..];
    let mut tensors: Vec<(String, serde_json::Value, Vec<u8>)> = header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let o = v["data_offsets"].as_array().unwrap();
            let (a, b) = (
                o[0].as_u64().unwrap() as usize,
                o[1].as_u64().unwrap() as usize,
            );
            (k, v.clone(), data[a..b].to_vec())
        })
        .collect();
    for (k, v, bytes) in &mut tensors {
        if k == "model.embed_tokens.weight" {
            let row = bytes.len() / 256;
            let extra = bytes[..(VOCAB - 256) * row].to_vec();
            bytes.extend_from_slice(&extra);
            v["shape"] = serde_json::json!([VOCAB, row / 2]);
        }
    }
    let mut head = serde_json::Map::new();
    let mut body = Vec::new();
    for (k, mut v, bytes) in tensors {
        v["data_offsets"] = serde_json::json!([body.len(), body.len() + bytes.len()]);
        body.extend_from_slice(&bytes);
        head.insert(k, v);
    }
    let h = serde_json::Value::Object(head).to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&body);
    std::fs::write(hf.join("model.safetensors"), out).unwrap();
    // tokenizer
    let mut j: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tokenizer/tests/fixtures/tiny_tokenizer.json")).unwrap(),
    )
    .unwrap();
    let mut vocab: serde_json::Map<String, serde_json::Value> = (0u8..=255)
        .map(|b| (edgedecoding_tokenizer::bytes_to_byte_level(&[b]), b.into()))
        .collect();
    for (i, (a, b)) in merges().iter().enumerate() {
        vocab.insert(format!("{a}{b}"), (256 + i).into());
    }
    j["model"]["vocab"] = vocab.into();
    j["model"]["merges"] = merges()
        .iter()
        .map(|(a, b)| format!("{a} {b}"))
        .collect::<Vec<_>>()
        .into();
    j["added_tokens"] = serde_json::json!([
        {"id": 300, "content": "<|endoftext|>", "special": true},
        {"id": 301, "content": "<|im_start|>", "special": true},
        {"id": 302, "content": "<|im_end|>", "special": true},
    ]);
    std::fs::write(hf.join("tokenizer.json"), j.to_string()).unwrap();
    hf
}

fn read_list(p: &Path) -> Vec<u32> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn keep_vocab_keep_list_inspect_and_export_agree() {
    let dir = tmp("cli");
    let hf = folder(&dir);
    // a corpus worked out by hand: "on" 3 times, "he" twice, "in" once
    // (the pre-tokenizer gives " on", " he"…: Ġ + the merge)
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, "on he on in he on").unwrap();
    let convert = |args: &[&str], out: &Path| {
        exe()
            .args(["convert", "--ctx", "32", "--model"])
            .arg(&hf)
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let pruned = dir.join("pruned.edq");
    let c = corpus.to_str().unwrap();
    ok(
        convert(&["--keep-vocab", "261", "--keep-corpus", c], &pruned),
        "convert --keep-vocab",
    );
    let info = ok(
        exe()
            .args(["inspect", "--model"])
            .arg(&pruned)
            .arg("--keep-list-out")
            .arg(dir.join("list.txt"))
            .output()
            .unwrap(),
        "inspect",
    );
    assert!(info.contains("320 (261 kept)"), "{info}");
    let list = read_list(&dir.join("list.txt"));
    let mut want: Vec<u32> = (0..256).collect();
    want.extend([merge_id("on"), merge_id("he"), 300, 301, 302]);
    want.sort_unstable();
    assert_eq!(list, want);
    // the same list imported: the same model file
    let imported = dir.join("imported.edq");
    ok(
        convert(
            &["--keep-list", dir.join("list.txt").to_str().unwrap()],
            &imported,
        ),
        "convert --keep-list",
    );
    assert_eq!(
        std::fs::read(&pruned).unwrap(),
        std::fs::read(&imported).unwrap()
    );
    // export-hw prunes a full .edq with the same rule
    let full = dir.join("full.edq");
    ok(convert(&[], &full), "convert");
    let hw = dir.join("hw");
    let out = exe()
        .args(["export-hw", "--model"])
        .arg(&full)
        .args(["--keep-vocab", "261", "--keep-corpus", c, "--out"])
        .arg(&hw)
        .output()
        .unwrap();
    ok(out, "export-hw --keep-vocab");
    let keep: Vec<u32> = std::fs::read(hw.join("keep.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(keep, want);
    // export-hw of the pruned model (no option) exports its own list
    let hw2 = dir.join("hw2");
    ok(
        exe()
            .args(["export-hw", "--model"])
            .arg(&pruned)
            .arg("--out")
            .arg(&hw2)
            .output()
            .unwrap(),
        "export-hw pruned",
    );
    assert_eq!(
        std::fs::read(hw2.join("keep.bin")).unwrap(),
        std::fs::read(hw.join("keep.bin")).unwrap()
    );
    // the built-in corpus: 261 ids, the specials and bytes among them
    let builtin = dir.join("builtin.edq");
    ok(convert(&["--keep-vocab", "280"], &builtin), "convert");
    let info = ok(
        exe()
            .args(["inspect", "--model"])
            .arg(&builtin)
            .output()
            .unwrap(),
        "inspect",
    );
    assert!(info.contains("320 (280 kept)"), "{info}");

    // refusals
    let e = err(
        exe()
            .args(["export-hw", "--model"])
            .arg(&pruned)
            .args(["--keep-vocab", "261", "--out"])
            .arg(dir.join("hw3"))
            .output()
            .unwrap(),
        "export-hw of a pruned model",
    );
    assert!(e.contains("already pruned (261 of 320 ids kept)"), "{e}");
    let e = err(
        exe()
            .args(["inspect", "--model"])
            .arg(&full)
            .arg("--keep-list-out")
            .arg(dir.join("none.txt"))
            .output()
            .unwrap(),
        "inspect --keep-list-out of a full model",
    );
    assert!(e.contains("is not pruned (all 320 ids are rows)"), "{e}");
    assert!(!dir.join("none.txt").exists());
    let e = err(
        convert(&["--keep-vocab", "100"], &dir.join("x.edq")),
        "too few",
    );
    assert!(
        e.contains("--keep-vocab 100 is smaller than the 3 special tokens and 256 byte tokens"),
        "{e}"
    );
    std::fs::write(dir.join("short.txt"), "# no bytes\n300\n301\n").unwrap();
    let e = err(
        convert(
            &["--keep-list", dir.join("short.txt").to_str().unwrap()],
            &dir.join("x.edq"),
        ),
        "no bytes",
    );
    assert!(e.contains("256 of the 256 byte tokens are missing"), "{e}");
    std::fs::write(dir.join("big.txt"), "0\n320\n").unwrap();
    let e = err(
        convert(
            &["--keep-list", dir.join("big.txt").to_str().unwrap()],
            &dir.join("x.edq"),
        ),
        "bad id",
    );
    assert!(e.contains("big.txt:2: id 320 is outside"), "{e}");
    let e = err(
        exe()
            .args(["generate", "--keep-vocab", "261", "--model"])
            .arg(&full)
            .output()
            .unwrap(),
        "generate --keep-vocab on a .edq",
    );
    assert!(e.contains("applies when converting a checkpoint"), "{e}");
    assert!(!dir.join("x.edq").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

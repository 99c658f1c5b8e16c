//! Shared helpers of the CLI tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CLI, with its cache of converted checkpoints in a directory of this
/// test process (never the user's).
pub fn exe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgedecoding"));
    c.env(
        "EDGEDECODING_CACHE",
        std::env::temp_dir().join(format!("edq-test-cache-{}", std::process::id())),
    );
    c
}

/// A fresh empty directory for test `name` of this process.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edq-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// A byte-level `tokenizer.json`: the 256 byte tokens, no merges, no added
/// tokens (the layout of the committed tiny tokenizer fixture otherwise).
pub fn byte_tokenizer_json() -> String {
    let mut j: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tokenizer/tests/fixtures/tiny_tokenizer.json")).unwrap(),
    )
    .unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = (0u8..=255)
        .map(|b| (edgedecoding_tokenizer::bytes_to_byte_level(&[b]), b.into()))
        .collect();
    j["model"]["vocab"] = vocab.into();
    j["model"]["merges"] = serde_json::json!([]);
    j["added_tokens"] = serde_json::json!([]);
    j.to_string()
}

/// The committed tiny Hugging Face fixture (vocabulary 256) with a byte-level
/// `tokenizer.json`, as `dir/tiny_hf`.
pub fn tiny_hf_folder(dir: &Path) -> PathBuf {
    let hf = dir.join("tiny_hf");
    std::fs::create_dir_all(&hf).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(
            root().join("checkpoint/tests/fixtures/tiny_hf").join(f),
            hf.join(f),
        )
        .unwrap();
    }
    std::fs::write(hf.join("tokenizer.json"), byte_tokenizer_json()).unwrap();
    hf
}

/// The stdout of a run that must succeed (else the failure with its stderr).
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

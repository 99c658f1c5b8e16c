//! The safetensors parser and the Hugging Face folder reader (`config.json`,
//! `model.safetensors` or `model.safetensors.index.json` with its shards).
//!
//! Input: one flag byte, then length-prefixed files (u32 little-endian
//! length, then the bytes; the last file takes whatever is left).
//! * flag bit 0 clear: a single-file folder, `config.json` then
//!   `model.safetensors`;
//! * flag bit 0 set: a sharded folder, `config.json`, the index, then
//!   `model-00001-of-00002.safetensors` and `model-00002-of-00002.safetensors`.
//!
//! Each safetensors file is first parsed in memory (`SafeTensors::from_bytes`,
//! every tensor converted to f32); then the files are written into a
//! per-process folder and `load_float_model` reads it (the folder API takes a
//! directory).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use edgedecoding_checkpoint::hf::{self, SafeTensors};
use edgedecoding_checkpoint::{load_float_model, LoadOptions};
use libfuzzer_sys::fuzz_target;

const SHARDS: [&str; 2] = [
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
];

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("edgedecoding-fuzz-hf-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz folder");
        d
    })
}

/// Splits `b` into `n` length-prefixed parts (the last takes the rest).
fn split(mut b: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i + 1 == n || b.len() < 4 {
            out.push(b);
            b = &[];
            continue;
        }
        let len = (u32::from_le_bytes(b[..4].try_into().unwrap()) as usize).min(b.len() - 4);
        out.push(&b[4..4 + len]);
        b = &b[4 + len..];
    }
    out
}

fn exercise(st: &SafeTensors) {
    for (name, t) in st.tensors().iter().take(32) {
        let _ = st.bytes_of(t);
        let _ = st.to_f32(name, None);
        let _ = st.to_f32(name, Some(&[0, 1]));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let sharded = flags & 1 == 1;
    let parts = split(rest, if sharded { 4 } else { 2 });
    let names: Vec<&str> = if sharded {
        vec![hf::CONFIG, hf::INDEX, SHARDS[0], SHARDS[1]]
    } else {
        vec![hf::CONFIG, hf::SINGLE]
    };
    for (name, p) in names.iter().zip(&parts) {
        if name.ends_with(".safetensors") {
            if let Ok(st) = SafeTensors::from_bytes(*name, p.to_vec()) {
                exercise(&st);
            }
        }
    }
    let d = dir();
    for f in [hf::CONFIG, hf::INDEX, hf::SINGLE, SHARDS[0], SHARDS[1]] {
        let _ = std::fs::remove_file(d.join(f));
    }
    for (name, p) in names.iter().zip(&parts) {
        std::fs::write(d.join(name), p).expect("write fuzz file");
    }
    let _ = hf::read_config(d);
    let opts = LoadOptions::new(16);
    if let Ok((m, meta)) = load_float_model(d, &opts) {
        assert!(meta.hf().is_some());
        assert_eq!(m.layers.len(), m.config.n_layers);
        let _ = m.forward(&[0], 1, None, 0..1, &mut |_, _| {});
    }
});

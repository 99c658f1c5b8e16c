//! Encodes a JSON array of strings (stdin) to a JSON array of id arrays (stdout)
//! with the GGUF vocabulary, for ad-hoc comparisons with other tokenizers.
//!
//! ```text
//! cargo run --release -p edgedecoding-tokenizer --example encode_json -- [GGUF] < strings.json
//! ```

#[allow(dead_code)]
#[path = "../tests/common/gguf_meta.rs"]
mod gguf_meta;

use std::io::Read;
use std::path::PathBuf;

use edgedecoding_tokenizer::Tokenizer;

fn main() {
    let gguf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("EDGEDECODING_REAL_GGUF").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        });
    let kv = gguf_meta::read_metadata(&gguf).expect("GGUF metadata");
    let tok = Tokenizer::from_gguf(&gguf_meta::vocab(&kv)).expect("tokenizer");
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let strings: Vec<String> = serde_json::from_str(&input).expect("a JSON array of strings");
    let out: Vec<Vec<u32>> = strings.iter().map(|s| tok.encode(s)).collect();
    println!("{}", serde_json::to_string(&out).expect("JSON"));
}

//! Encoding/decoding speed on a text file with the real Qwen2 vocabulary.
//!
//! ```text
//! cargo run --release -p edgedecoding-tokenizer --example encode_speed -- TEXT_FILE [GGUF]
//! ```
//! GGUF defaults to `$EDGEDECODING_REAL_GGUF`, then
//! ~/.cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf.

#[allow(dead_code)]
#[path = "../tests/common/gguf_meta.rs"]
mod gguf_meta;

use std::path::PathBuf;
use std::time::Instant;

use edgedecoding_tokenizer::Tokenizer;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(text_path) = args.next() else {
        eprintln!("usage: encode_speed TEXT_FILE [GGUF]");
        std::process::exit(2);
    };
    let gguf = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("EDGEDECODING_REAL_GGUF").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        });
    let text = std::fs::read_to_string(&text_path).expect("text file is UTF-8");

    let t0 = Instant::now();
    let kv = gguf_meta::read_metadata(&gguf).expect("GGUF metadata");
    let vocab = gguf_meta::vocab(&kv);
    let t1 = Instant::now();
    let tok = Tokenizer::from_gguf(&vocab).expect("tokenizer");
    let t2 = Instant::now();
    println!(
        "GGUF metadata read in {:.0} ms, tokenizer built in {:.0} ms ({} ids, {} merges)",
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        tok.vocab_size(),
        tok.merge_count()
    );

    let report = |label: &str, secs: f64, tokens: usize| {
        println!(
            "{label:<28} {:>8.2} ms  {:>10.0} tokens/s  {:>6.2} MB/s",
            secs * 1e3,
            tokens as f64 / secs,
            text.len() as f64 / secs / 1e6
        );
    };

    println!("text: {} bytes, {} chars", text.len(), text.chars().count());
    let start = Instant::now();
    let ids = tok.encode(&text);
    let cold = start.elapsed().as_secs_f64();
    println!(
        "tokens: {} ({:.2} bytes/token)",
        ids.len(),
        text.len() as f64 / ids.len() as f64
    );
    report("encode, empty BPE cache", cold, ids.len());

    let reps = 10;
    let start = Instant::now();
    for _ in 0..reps {
        assert_eq!(tok.encode(&text).len(), ids.len());
    }
    report(
        "encode, warm cache",
        start.elapsed().as_secs_f64() / reps as f64,
        ids.len(),
    );

    let start = Instant::now();
    for _ in 0..reps {
        tok.clear_cache();
        assert_eq!(tok.encode(&text).len(), ids.len());
    }
    report(
        "encode, cache cleared each",
        start.elapsed().as_secs_f64() / reps as f64,
        ids.len(),
    );

    let start = Instant::now();
    for _ in 0..reps {
        assert_eq!(tok.decode(&ids).unwrap().len(), text.len());
    }
    report(
        "decode",
        start.elapsed().as_secs_f64() / reps as f64,
        ids.len(),
    );

    let start = Instant::now();
    let mut d = tok.stream_decoder();
    let mut n = 0;
    for &id in &ids {
        n += d.push(id).unwrap().len();
    }
    report("stream decode", start.elapsed().as_secs_f64(), ids.len());
    assert_eq!(n + d.finish().len(), text.len());
}

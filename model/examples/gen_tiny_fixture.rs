//! Regenerates `model/data/tiny.edq`, the committed tiny model that the
//! freestanding check embeds: `cargo run -p edgedecoding-model --example gen_tiny_fixture`.
use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::selftest::TINY_CONFIG;

fn main() {
    let bytes = generate(&TINY_CONFIG, DEFAULT_SEED, 2, &mut |_, _, _| {}).expect("generate");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tiny.edq");
    std::fs::write(path, &bytes).expect("write");
    println!("wrote {path} ({} bytes)", bytes.len());
}

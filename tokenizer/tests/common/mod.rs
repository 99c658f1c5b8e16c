//! Helpers shared by the integration tests (each test binary uses a part).
#![allow(dead_code)]

pub mod gguf_meta;

use std::path::{Path, PathBuf};

use edgedecoding_tokenizer::Tokenizer;

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).expect("fixture readable")
}

pub fn read_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&read_fixture(name)).expect("fixture is JSON")
}

/// The hand-made fixture tokenizer (NFC on, as in its tokenizer.json).
pub fn tiny() -> Tokenizer {
    Tokenizer::from_tokenizer_json(&read_fixture("tiny_tokenizer.json"))
        .expect("tiny tokenizer loads")
}

/// A small xorshift generator: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Hand-picked strings plus random ones over a Unicode-heavy alphabet.
pub fn roundtrip_corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "a",
        "Hello, world!",
        "The capital of France is Paris.",
        "你好，世界！今天天气怎么样？",
        "日本語のテキスト、カタカナ、ひらがな。",
        "한국어 텍스트입니다",
        "مرحبا بالعالم — שלום עולם",
        "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷 ❤️ 🫠",
        "e\u{301} cafe\u{301} n\u{303} a\u{308}\u{304} Z\u{335}\u{321}\u{34e}\u{351}",
        "क्षत्रिय हिन्दी தமிழ் ไทย",
        "line1\nline2\r\nline3\rline4\n\n\n",
        "\ttabs\t\tand\t\t\ttabs\t",
        "runs of     spaces          here   ",
        "  ",
        "\n",
        " \n \n\t\r\n",
        "0123456789 ٠١٢٣ ½ Ⅷ ² 3.14e-10",
        "I'm sure you'll see it's he'd they've WE'RE can't 'tis",
        "\u{a0}\u{3000}\u{2003}\u{b}\u{c}\u{1c}\u{85}\u{2028}\u{2029}\u{feff}\u{200b}",
        "<|im_start|>user\nhi<|im_end|>",
        "<|im_start <| |> <|im_end",
        "\u{0}\u{1}\u{7f}\u{80}\u{ad}\u{ff}",
        "\u{10ffff}\u{e000}\u{fffd}\u{1d11e}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let alphabet: Vec<char> = "aZ09 '\t\n\r.,!?-_#<|>ſK\u{a0}\u{3000}é\u{301}\u{308}中文字😀🇫\u{200d}אב١\u{85}\u{7f}\u{0}\u{10ffff}"
        .chars()
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..400 {
        let len = rng.below(40);
        v.push(
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect(),
        );
    }
    v
}

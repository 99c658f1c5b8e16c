//! The pre-tokenizer against pieces produced by Python's `regex` module
//! (`tests/fixtures/make_pretok.py`, cross-checked there with HF `tokenizers`).

mod common;

use edgedecoding_tokenizer::{pre_tokenize, QWEN2_PATTERN};

#[test]
fn matches_python_regex() {
    let doc = common::read_json("pretok_expected.json");
    assert_eq!(doc["pattern"].as_str(), Some(QWEN2_PATTERN));
    assert_eq!(doc["hf_tokenizers_disagreements"].as_u64(), Some(0));
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let expected: Vec<&str> = case["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let got = pre_tokenize(input);
        if got != expected {
            failures.push(format!(
                "{input:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pieces_cover_the_input() {
    for s in common::roundtrip_corpus() {
        assert_eq!(pre_tokenize(&s).concat(), s);
        assert!(pre_tokenize(&s).iter().all(|p| !p.is_empty()));
    }
}

//! Tests against the real Qwen2.5 vocabulary in the GGUF file, when present
//! (`$EDGEDECODING_REAL_GGUF`, else ~/.cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf).
//! Expected ids: `tests/fixtures/qwen_expected.json`, from Hugging Face
//! `tokenizers` (see make_qwen_expected.py). Each test prints why it skips
//! when the file is absent.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::gguf_meta;
use edgedecoding_tokenizer::{
    chat_prompt, Error, GgufVocab, Role, TokenKind, Tokenizer, QWEN2_IM_END, QWEN2_PATTERN,
};

fn gguf_path() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEDECODING_REAL_GGUF") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
}

struct Loaded {
    vocab: GgufVocab,
    tok: Tokenizer,
}

fn loaded() -> Option<&'static Loaded> {
    static CELL: OnceLock<Option<Loaded>> = OnceLock::new();
    let got = CELL.get_or_init(|| {
        let path = gguf_path();
        if !path.exists() {
            return None;
        }
        let kv = gguf_meta::read_metadata(&path).expect("GGUF metadata readable");
        let vocab = gguf_meta::vocab(&kv);
        let tok = Tokenizer::from_gguf(&vocab).expect("tokenizer from GGUF");
        Some(Loaded { vocab, tok })
    });
    if got.is_none() {
        let msg = format!(
            "no GGUF at {} (scripts/fetch-model.sh fetches it; EDGEDECODING_REAL_GGUF names another path)",
            gguf_path().display()
        );
        // CI sets EDGEDECODING_REQUIRE_REAL=1 once it has fetched the model
        assert!(
            std::env::var_os("EDGEDECODING_REQUIRE_REAL").is_none(),
            "{msg}"
        );
        println!("SKIPPED: {msg}");
    }
    got.as_ref()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn check_cases(tok: &Tokenizer, what: &str) {
    let doc = common::read_json("qwen_expected.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let expected = ids(&case["ids"]);
        let got = tok.encode(input);
        if got != expected {
            failures.push(format!(
                "{input:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
        if let Some(no_special) = case.get("ids_no_special") {
            assert_eq!(
                tok.encode_with(input, false),
                ids(no_special),
                "no-special {input:?}"
            );
        }
        assert_eq!(
            tok.decode(&expected).unwrap(),
            case["decoded"].as_str().unwrap(),
            "decode {input:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "{what}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gguf_metadata() {
    let Some(l) = loaded() else { return };
    let doc = common::read_json("qwen_expected.json");
    assert_eq!(l.vocab.pre, "qwen2");
    assert_eq!(
        l.vocab.tokens.len() as u64,
        doc["vocab_size"].as_u64().unwrap()
    );
    assert_eq!(
        l.vocab.merges.len() as u64,
        doc["merge_count"].as_u64().unwrap()
    );
    assert_eq!(l.tok.vocab_size(), 151936);
    assert_eq!(l.tok.eos_id(), Some(QWEN2_IM_END));
    assert_eq!(l.tok.bos_id(), Some(151643));
    assert_eq!(l.tok.token_kind(151643), Some(TokenKind::Special));
    assert_eq!(l.tok.token_kind(151657), Some(TokenKind::Added)); // <tool_call>
    assert_eq!(l.tok.token_kind(151665), Some(TokenKind::Unused)); // [PAD151665]
}

#[test]
fn encode_matches_hf_tokenizers() {
    let Some(l) = loaded() else { return };
    check_cases(&l.tok, "from_gguf");
}

#[test]
fn known_facts() {
    let Some(l) = loaded() else { return };
    let t = &l.tok;
    assert_eq!(t.encode(" Paris"), [12095]);
    assert_eq!(t.token_to_id("ĠParis"), Some(12095));
    assert_eq!(
        t.encode("The capital of France is"),
        [785, 6722, 315, 9625, 374]
    );
    assert_eq!(
        t.decode(&[785, 6722, 315, 9625, 374, 12095]).unwrap(),
        "The capital of France is Paris"
    );
    assert_eq!(t.encode("<|im_end|>"), [151645]);
    assert_eq!(t.decode(&[151665]).unwrap(), "");
    assert_eq!(t.decode(&[151936]), Err(Error::UnknownId(151936)));
}

#[test]
fn tokenizer_json_path_at_full_scale() {
    // The same vocabulary as a Qwen2-layout tokenizer.json (built in memory).
    let Some(l) = loaded() else { return };
    let v = &l.vocab;
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, (tok, &ty)) in v.tokens.iter().zip(&v.token_type).enumerate() {
        match ty {
            1 => {
                vocab.insert(tok.clone(), id.into());
            }
            3 | 4 => added.push(serde_json::json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == 3
            })),
            _ => {}
        }
    }
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let json = serde_json::json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": false},
            byte_level.clone()]},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": v.merges},
    });
    let t = Tokenizer::from_tokenizer_json(&json.to_string()).unwrap();
    assert_eq!(t.vocab_size(), 151665);
    check_cases(&t, "from_tokenizer_json");
}

#[test]
fn chat_prompts_tokenize_like_hf() {
    let Some(l) = loaded() else { return };
    let doc = common::read_json("chat_expected.json");
    for chat in doc["chats"].as_array().unwrap() {
        let rendered = chat["rendered"].as_str().unwrap();
        assert_eq!(l.tok.encode(rendered), ids(&chat["ids"]), "{rendered:?}");
    }
    let p = chat_prompt(&[(Role::User, "What is the capital of France?")], true);
    let ids = l.tok.encode(&p);
    assert_eq!(ids[0], 151644);
    assert_eq!(ids[ids.len() - 3..], [151644, 77091, 198]); // "<|im_start|>", "assistant", "\n"
}

#[test]
fn roundtrip_and_streaming_on_the_real_vocab() {
    let Some(l) = loaded() else { return };
    // NFC off so that decode(encode(s)) == s exactly.
    let mut t = Tokenizer::from_gguf(&l.vocab).unwrap();
    t.set_nfc(false);
    for s in common::roundtrip_corpus() {
        let ids = t.encode(&s);
        assert_eq!(t.decode(&ids).unwrap(), s);
        let mut d = t.stream_decoder();
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(&d.push(id).unwrap());
        }
        assert!(d.pending_bytes().is_empty(), "{s:?}");
        assert_eq!(streamed, s);
    }
}

/// The tokenizer stored inside a `.edq` file (FORMAT §3): the GGUF vocabulary
/// written as a blob and read back gives a tokenizer that matches the Hugging
/// Face ids on every expected case, agrees with the original on the round-trip
/// corpus and keeps every token kind and special id.
#[test]
fn tokenizer_blob_in_edq_round_trips_on_the_real_vocab() {
    let Some(l) = loaded() else { return };
    let blob = l.vocab.to_blob();
    let t = Tokenizer::from_blob(&blob).unwrap();
    check_cases(&t, "tokenizer from the .edq blob");
    assert_eq!(t.vocab_size(), l.tok.vocab_size());
    assert_eq!(t.merge_count(), l.tok.merge_count());
    assert_eq!((t.bos_id(), t.eos_id()), (l.tok.bos_id(), l.tok.eos_id()));
    for id in (0..t.vocab_size() as u32)
        .step_by(97)
        .chain([151_643, 151_644, 151_645])
    {
        assert_eq!(t.token_kind(id), l.tok.token_kind(id), "kind of {id}");
        assert_eq!(t.id_to_token(id), l.tok.id_to_token(id), "token {id}");
    }
    for s in common::roundtrip_corpus() {
        let ids = l.tok.encode(&s);
        assert_eq!(t.encode(&s), ids, "{s:?}");
        assert_eq!(t.decode(&ids).unwrap(), l.tok.decode(&ids).unwrap());
    }
}

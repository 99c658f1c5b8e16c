//! The hand-made `tests/fixtures/tiny_tokenizer.json`, with ids worked out by hand.
//!
//! The fixture's vocabulary: the 256 byte-level tokens with id = byte value
//! (`"a"` = 97, `"Ġ"` (space) = 32, `"Ċ"` (newline) = 10, `"ä"` = 0xE4 = 228,
//! `"ł"` (byte 0xA0) = 160), then the merges below, in rank order:
//!
//! | rank | merge | id | | rank | merge | id |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | 0 | `h e` | 256 `he` | | 9 | `Ġ Ġ` | 265 `ĠĠ` |
//! | 1 | `l l` | 257 `ll` | | 10 | `Ċ Ċ` | 266 `ĊĊ` |
//! | 2 | `ll o` | 258 `llo` | | 11 | `' s` | 267 `'s` |
//! | 3 | `he llo` | 259 `hello` | | 12 | `c d` | 268 `cd` |
//! | 4 | `Ġ w` | 260 `Ġw` | | 13 | `b c` | 269 `bc` |
//! | 5 | `o r` | 261 `or` | | 14 | `a b` | 270 `ab` |
//! | 6 | `Ġw or` | 262 `Ġwor` | | 15 | `ä ½` | 271 `ä½` |
//! | 7 | `l d` | 263 `ld` | | 16 | `ä½ ł` | 272 `ä½ł` (= "你") |
//! | 8 | `Ġwor ld` | 264 `Ġworld` | | | | |
//!
//! Added tokens: `<|endoftext|>` 151643, `<|im_start|>` 151644, `<|im_end|>`
//! 151645, `<|fim_prefix|>` 151659 (special) and `<tool_call>` 151657 (not special).
//! (HF `tokenizers` gives the same ids for every case below on this file, except
//! that its Python loader renumbers the sparse added-token ids.)

mod common;

use common::tiny;
use edgedecoding_tokenizer::{Error, GgufVocab, TokenKind, Tokenizer};

#[test]
fn hello_world() {
    let t = tiny();
    // Pieces "hello", " world".
    // "hello" = h e l l o: best pair h+e (rank 0) -> he l l o; l+l (1) -> he ll o;
    // ll+o (2) -> he llo; he+llo (3) -> hello = 259.
    // " world" = Ġ w o r l d: Ġ+w (4) -> Ġw o r l d; o+r (5) -> Ġw or l d;
    // Ġw+or (6) -> Ġwor l d; l+d (7) -> Ġwor ld; Ġwor+ld (8) -> Ġworld = 264.
    assert_eq!(t.encode("hello world"), [259, 264]);
    // Pieces "hello", " ", " world": the lone space is byte 0x20 -> "Ġ" = 32.
    assert_eq!(t.encode("hello  world"), [259, 32, 264]);
    assert_eq!(t.decode(&[259, 32, 264]).unwrap(), "hello  world");
}

#[test]
fn merge_rank_beats_position() {
    let t = tiny();
    // "bcd": pairs b+c (13) and c+d (12): c+d first -> b cd; no merge b+cd.
    assert_eq!(t.encode("bcd"), [98, 268]);
    // "abc": a+b (14), b+c (13): b+c first -> a bc; no merge a+bc.
    assert_eq!(t.encode("abc"), [97, 269]);
    // "abcd": a+b (14), b+c (13), c+d (12): c+d -> a b cd; then a+b -> ab cd.
    assert_eq!(t.encode("abcd"), [270, 268]);
}

#[test]
fn same_pair_merges_leftmost_first() {
    let t = tiny();
    // "\n\n\n" is one piece Ċ Ċ Ċ; Ċ+Ċ (10) at positions 0 and 1: leftmost first
    // -> ĊĊ Ċ = [266, 10].
    assert_eq!(t.encode("\n\n\n"), [266, 10]);
    // "   x": pieces "  " (run before a word keeps all but one) and " x".
    // "  " = Ġ Ġ -> ĠĠ = 265; " x" = Ġ x, no merge -> 32, 120.
    assert_eq!(t.encode("   x"), [265, 32, 120]);
}

#[test]
fn contraction_and_multibyte() {
    let t = tiny();
    // Pieces "it", "'s": "it" -> 105 116 (no merge); "'s" -> '+s (11) = 267.
    assert_eq!(t.encode("it's"), [105, 116, 267]);
    // "你好" is one piece (letters), bytes E4 BD A0 E5 A5 BD = ä ½ ł å ¥ ½:
    // ä+½ (15) -> ä½ ł å ¥ ½; ä½+ł (16) -> ä½ł = 272; å ¥ ½ stay = 229 165 189.
    assert_eq!(t.encode("你好"), [272, 229, 165, 189]);
}

#[test]
fn special_tokens_are_matched_first() {
    let t = tiny();
    // <|im_start|> = 151644; "user\nhello" -> pieces "user" (117 115 101 114),
    // "\n" (10), "hello" (259); <|im_end|> = 151645; "\n" = 10.
    let ids = t.encode("<|im_start|>user\nhello<|im_end|>\n");
    assert_eq!(ids, [151644, 117, 115, 101, 114, 10, 259, 151645, 10]);
    assert_eq!(
        t.decode(&ids).unwrap(),
        "<|im_start|>user\nhello<|im_end|>\n"
    );
    assert_eq!(t.decode_with(&ids, true).unwrap(), "user\nhello\n");

    // Specials off: "<|im_end|>" is text: pieces "<|", "im", "_end", "|>".
    let ids = t.encode_with("<|im_end|>", false);
    assert_eq!(ids, [60, 124, 105, 109, 95, 101, 110, 100, 124, 62]);
    assert_eq!(t.decode(&ids).unwrap(), "<|im_end|>");

    // <tool_call> is an added token but not special: matched either way.
    assert_eq!(t.encode("<tool_call>x"), [151657, 120]);
    assert_eq!(t.encode_with("<tool_call>x", false), [151657, 120]);
    // ... and kept by skip_special decoding.
    assert_eq!(
        t.decode_with(&[151657, 151643], true).unwrap(),
        "<tool_call>"
    );

    // Adjacent specials inside a word: "he" -> 256; then the two specials;
    // "llo" = l l o -> l+l (1) -> ll o -> ll+o (2) -> llo = 258.
    assert_eq!(
        t.encode("he<|endoftext|><|fim_prefix|>llo"),
        [256, 151643, 151659, 258]
    );
    assert_eq!(t.token_kind(151643), Some(TokenKind::Special));
    assert_eq!(t.token_kind(151657), Some(TokenKind::Added));
    assert_eq!(t.token_kind(259), Some(TokenKind::Normal));
}

#[test]
fn nfc_normalization() {
    let mut t = tiny();
    assert!(t.nfc(), "the fixture's normalizer is NFC");
    // "e" + U+0301 is NFC-composed to "é" = C3 A9 -> 195 169.
    assert_eq!(t.encode("e\u{301}"), [195, 169]);
    // NFC uses HF's Unicode 9.0 tables: U+05C8 (a Hebrew point only since
    // Unicode 17) has combining class 0 there, so it is not moved before
    // U+0617 (class 230). Pieces "x" (120) and "\u{617}\u{5c8}" (punctuation
    // class: neither is a letter or digit) = D8 97 D7 88.
    assert_eq!(t.encode("x\u{617}\u{5c8}"), [120, 0xD8, 0x97, 0xD7, 0x88]);
    t.set_nfc(false);
    // Without NFC: pieces "e" (101) and U+0301 = CC 81 (204 129).
    assert_eq!(t.encode("e\u{301}"), [101, 204, 129]);
}

#[test]
fn decode_errors_and_lookups() {
    let t = tiny();
    assert_eq!(t.vocab_size(), 151660);
    assert_eq!(t.merge_count(), 17);
    assert_eq!(t.decode(&[259, 273]), Err(Error::UnknownId(273)));
    assert_eq!(t.decode(&[151646]), Err(Error::UnknownId(151646)));
    assert_eq!(t.decode(&[151660]), Err(Error::UnknownId(151660)));
    assert_eq!(t.decode(&[u32::MAX]), Err(Error::UnknownId(u32::MAX)));
    assert_eq!(t.token_to_id("Ġworld"), Some(264));
    assert_eq!(t.token_to_id("<|im_end|>"), Some(151645));
    assert_eq!(t.token_to_id("nope"), None);
    assert_eq!(t.id_to_token(272), Some("ä½ł"));
    assert_eq!(t.id_to_bytes(272).unwrap(), "你".as_bytes());
    assert_eq!(t.id_to_bytes(32).unwrap(), b" ");
}

#[test]
fn merges_as_arrays_give_the_same_tokenizer() {
    let mut json: serde_json::Value =
        serde_json::from_str(&common::read_fixture("tiny_tokenizer.json")).unwrap();
    let merges = json["model"]["merges"].as_array_mut().unwrap();
    for m in merges.iter_mut() {
        let (a, b) = m.as_str().unwrap().split_once(' ').unwrap();
        *m = serde_json::json!([a, b]);
    }
    let arrays = Tokenizer::from_tokenizer_json(&json.to_string()).unwrap();
    let strings = tiny();
    for s in ["hello world", "abcd", "你好", "it's\n\n\n   x"] {
        assert_eq!(arrays.encode(s), strings.encode(s), "{s:?}");
    }
}

#[test]
fn streaming_decoder_waits_for_whole_characters() {
    let t = tiny();
    let mut d = t.stream_decoder();
    // "你" = E4 BD A0, one byte token at a time.
    assert_eq!(d.push(228).unwrap(), "");
    assert_eq!(d.push(189).unwrap(), "");
    assert_eq!(d.pending_bytes(), [0xE4, 0xBD]);
    assert_eq!(d.push(160).unwrap(), "你");
    assert_eq!(d.push(259).unwrap(), "hello");
    // An unknown id is an error and changes nothing.
    assert_eq!(d.push(273), Err(Error::UnknownId(273)));
    // A lone continuation byte can never start a character: U+FFFD at once.
    assert_eq!(d.push(0xBD).unwrap(), "\u{fffd}");
    // An incomplete character at the end becomes U+FFFD on finish.
    assert_eq!(d.push(0xE4).unwrap(), "");
    assert_eq!(d.finish(), "\u{fffd}");
    // A started character interrupted by ASCII: U+FFFD, then the ASCII.
    let mut d = t.stream_decoder();
    assert_eq!(d.push(0xE4).unwrap(), "");
    assert_eq!(d.push(b'x' as u32).unwrap(), "\u{fffd}x");
    // skip_special
    let mut d = t.stream_decoder().skip_special(true);
    assert_eq!(
        d.push_all(&[151644, 259, 151657]).unwrap(),
        "hello<tool_call>"
    );
}

fn json_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut json: serde_json::Value =
        serde_json::from_str(&common::read_fixture("tiny_tokenizer.json")).unwrap();
    edit(&mut json);
    json.to_string()
}

#[test]
fn load_errors_are_typed() {
    let load = |s: String| Tokenizer::from_tokenizer_json(&s).unwrap_err();
    assert!(matches!(
        Tokenizer::from_tokenizer_json("{").unwrap_err(),
        Error::Json(_)
    ));
    assert!(matches!(
        load(json_with(|j| j["model"]["type"] = "WordPiece".into())),
        Error::UnsupportedModel(_)
    ));
    assert!(matches!(
        load(json_with(
            |j| j["normalizer"] = serde_json::json!({"type": "NFKC"})
        )),
        Error::UnsupportedNormalizer(_)
    ));
    assert!(matches!(
        load(json_with(|j| {
            j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] =
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+".into()
        })),
        Error::UnsupportedPreTokenizer(_)
    ));
    assert!(matches!(
        load(json_with(|j| {
            j["model"]["vocab"].as_object_mut().unwrap().remove("Ā");
        })),
        Error::MissingByteToken(0)
    ));
    assert!(matches!(
        load(json_with(|j| j["model"]["merges"][0] = "h e x".into())),
        Error::InvalidMerge(_)
    ));
    assert!(matches!(
        load(json_with(|j| j["model"]["merges"][0] = "x y".into())),
        Error::MergeTokenNotInVocab { .. }
    ));
    assert!(matches!(
        load(json_with(|j| j["added_tokens"][0]["id"] = 97.into())),
        Error::ConflictingId { id: 97, .. }
    ));
    assert!(matches!(
        load(json_with(|j| j["added_tokens"][0]["lstrip"] = true.into())),
        Error::UnsupportedAddedToken(_)
    ));
    assert!(matches!(
        Tokenizer::from_tokenizer_json_file("/nonexistent/tokenizer.json").unwrap_err(),
        Error::Io { .. }
    ));
}

#[test]
fn gguf_vocab_input() {
    // The same tiny vocabulary as GGUF data: index = id, "[PAD]" unused slots in the gap.
    let json = common::read_json("tiny_tokenizer.json");
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); 151660];
    let mut token_type = vec![5; 151660];
    for (tok, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = tok.clone();
        token_type[id.as_u64().unwrap() as usize] = 1;
    }
    for (i, t) in tokens.iter_mut().enumerate() {
        if t.is_empty() {
            *t = format!("[PAD{i}]");
        }
    }
    for a in json["added_tokens"].as_array().unwrap() {
        let id = a["id"].as_u64().unwrap() as usize;
        tokens[id] = a["content"].as_str().unwrap().to_string();
        token_type[id] = if a["special"].as_bool().unwrap() {
            3
        } else {
            4
        };
    }
    let merges = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let mut v = GgufVocab {
        tokens,
        merges,
        token_type,
        pre: "qwen2".into(),
        bos_token_id: Some(151643),
        eos_token_id: Some(151645),
    };
    let t = Tokenizer::from_gguf(&v).unwrap();
    let reference = tiny();
    for s in [
        "hello world",
        "<|im_start|>user\nhello<|im_end|>\n",
        "你好 e\u{301}",
        "<tool_call>",
    ] {
        assert_eq!(t.encode(s), reference.encode(s), "{s:?}");
        assert_eq!(
            t.encode_with(s, false),
            reference.encode_with(s, false),
            "{s:?}"
        );
    }
    assert_eq!(t.eos_id(), Some(151645));
    assert_eq!(t.bos_id(), Some(151643));
    // Unused slots decode to nothing; they are never matched in the input.
    assert_eq!(t.decode(&[300]).unwrap(), "");
    assert_eq!(t.token_kind(300), Some(TokenKind::Unused));
    assert_eq!(t.encode("[PAD300]"), reference.encode("[PAD300]"));

    v.pre = "llama-bpe".into();
    assert_eq!(
        Tokenizer::from_gguf(&v).unwrap_err(),
        Error::UnsupportedGgufPre("llama-bpe".into())
    );
    v.pre = "qwen2".into();
    v.token_type.pop();
    assert!(matches!(
        Tokenizer::from_gguf(&v).unwrap_err(),
        Error::GgufLengthMismatch { .. }
    ));
}

//! Seeded mutations (byte flips, truncations, insertions, deletions, JSON
//! punctuation, ids and counts set to huge values) of the fixture's
//! tokenizer.json and of its `.edq` blob: loading returns the tokenizer or a
//! typed error, never panics; whatever loads encodes and decodes without
//! panicking. Then random text and random id lists through the fixture:
//! `decode(encode(s)) == s` for every string, and any id list decodes or
//! names its unknown id. The stable counterpart of fuzz/ (`tokenizer` target).

mod common;

use std::collections::BTreeMap;

use edgedecoding_testkit::{mutate_json, Lcg};
use edgedecoding_tokenizer::{bytes_to_byte_level, Error, GgufVocab, Tokenizer};

fn variant(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "Io",
        Error::Json(_) => "Json",
        Error::InvalidTokenizerJson(_) => "InvalidTokenizerJson",
        Error::UnsupportedModel(_) => "UnsupportedModel",
        Error::UnsupportedNormalizer(_) => "UnsupportedNormalizer",
        Error::UnsupportedPreTokenizer(_) => "UnsupportedPreTokenizer",
        Error::UnsupportedGgufPre(_) => "UnsupportedGgufPre",
        Error::UnsupportedAddedToken(_) => "UnsupportedAddedToken",
        Error::GgufLengthMismatch { .. } => "GgufLengthMismatch",
        Error::InvalidMerge(_) => "InvalidMerge",
        Error::MergeTokenNotInVocab { .. } => "MergeTokenNotInVocab",
        Error::MissingByteToken(_) => "MissingByteToken",
        Error::ConflictingId { .. } => "ConflictingId",
        Error::UnknownId(_) => "UnknownId",
        _ => "other",
    }
}

/// Encodes and decodes a little with a tokenizer that loaded.
fn exercise(t: &Tokenizer, r: &mut Lcg) {
    let ids = t.encode("Hello <|im_start|>user\n wörld e\u{301} 123 😀");
    let _ = t.decode(&ids);
    let _ = t.decode_with(&ids, true);
    let random: Vec<u32> = (0..8).map(|_| (r.next() % 400) as u32).collect();
    match t.decode(&random) {
        Ok(_) => {}
        Err(Error::UnknownId(id)) => assert!(random.contains(&id)),
        Err(e) => panic!("decode: {e:?}"),
    }
}

fn run(
    good: &[u8],
    seed: u64,
    cases: usize,
    load: impl Fn(&[u8]) -> Result<Tokenizer, Error>,
) -> (usize, BTreeMap<&'static str, usize>) {
    let mut r = Lcg(seed);
    let mut ok = 0;
    let mut errs = BTreeMap::new();
    for _ in 0..cases {
        let mut b = good.to_vec();
        for _ in 0..1 + r.below(2) {
            mutate_json(&mut r, &mut b);
        }
        match load(&b) {
            Ok(t) => {
                ok += 1;
                exercise(&t, &mut r);
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                *errs.entry(variant(&e)).or_insert(0) += 1;
            }
        }
    }
    (ok, errs)
}

#[test]
fn mutated_tokenizer_json_loads_or_gives_a_typed_error() {
    let good = common::read_fixture("tiny_tokenizer.json");
    exercise(&Tokenizer::from_tokenizer_json(&good).unwrap(), &mut Lcg(1));
    let (ok, errs) = run(good.as_bytes(), 0x70c3_11e5, 3000, |b| {
        Tokenizer::from_tokenizer_json(&String::from_utf8_lossy(b))
    });
    println!("{ok} loaded, rejected: {errs:?}");
    // mutations of whitespace or of a string's content still load; most are
    // caught, and by more than the JSON syntax check
    assert!(ok > 50, "{ok} loaded");
    assert!(errs["Json"] > 500, "{errs:?}");
    for v in [
        "InvalidTokenizerJson",
        "MissingByteToken",
        "MergeTokenNotInVocab",
    ] {
        assert!(errs.get(v).copied().unwrap_or(0) > 0, "no {v}: {errs:?}");
    }
}

#[test]
fn mutated_blob_loads_or_gives_a_typed_error() {
    // the GGUF form of the blob: 256 byte tokens, two merges, a control token
    let mut tokens: Vec<String> = (0..=255u8).map(|b| bytes_to_byte_level(&[b])).collect();
    tokens.extend([
        "ab".to_string(),
        "abc".to_string(),
        "<|endoftext|>".to_string(),
    ]);
    let mut token_type = vec![1; 258];
    token_type.push(3);
    let blob = GgufVocab {
        tokens,
        merges: vec!["a b".into(), "ab c".into()],
        token_type,
        pre: "qwen2".into(),
        bos_token_id: Some(258),
        eos_token_id: Some(258),
    }
    .to_blob();
    Tokenizer::from_blob(&blob).unwrap();
    let (ok, errs) = run(&blob, 0xb10b, 2000, Tokenizer::from_blob);
    println!("{ok} loaded, rejected: {errs:?}");
    assert!(
        ok > 20 && errs.values().sum::<usize>() > 1000,
        "{ok} {errs:?}"
    );
}

/// Specific huge values: an added token's id past u32, a vocabulary id of
/// 2^63, a negative id. Each is refused with a typed error, none wraps.
#[test]
fn huge_ids_are_refused() {
    let good = common::read_fixture("tiny_tokenizer.json");
    for (from, to) in [
        ("\"id\": 151643", "\"id\": 4294967296"),
        ("\"id\": 151643", "\"id\": 9223372036854775808"),
        ("\"id\": 151643", "\"id\": -1"),
        ("\"id\": 151643", "\"id\": 1.5"),
    ] {
        assert!(good.contains(from));
        let text = good.replacen(from, to, 1);
        let e = Tokenizer::from_tokenizer_json(&text).unwrap_err();
        assert!(
            matches!(e, Error::InvalidTokenizerJson(_) | Error::Json(_)),
            "{to}: {e:?}"
        );
    }
}

/// Found by fuzzing: an id that fits u32 but lies far past the vocabulary
/// (an added token's or a vocabulary entry's) made the loader allocate a slot
/// for every id below it (4294967295 ids: a 240 GB allocation, an abort).
/// Refused before any allocation, naming the id.
#[test]
fn ids_far_past_the_vocabulary_are_refused_without_allocating() {
    let good = common::read_fixture("tiny_tokenizer.json");
    for (from, to, id) in [
        ("\"id\": 151643", "\"id\": 4294967295", u32::MAX),
        ("\"id\": 151645", "\"id\": 4000000000", 4_000_000_000),
        ("\"a\": 97", "\"a\": 3000000000", 3_000_000_000),
    ] {
        assert!(good.contains(from), "{from}");
        let e = Tokenizer::from_tokenizer_json(&good.replacen(from, to, 1)).unwrap_err();
        assert!(
            matches!(e, Error::IdTooLarge { id: i, .. } if i == id),
            "{to}: {e:?}"
        );
        assert!(e.to_string().contains(&id.to_string()), "{e}");
    }
    // the largest id allowed still loads
    let max = edgedecoding_tokenizer::MAX_TOKEN_ID;
    let text = good.replacen("\"id\": 151645", &format!("\"id\": {max}"), 1);
    let t = Tokenizer::from_tokenizer_json(&text).unwrap();
    assert_eq!(t.token_to_id("<|im_end|>"), Some(max));
}

/// Random strings over a Unicode-heavy alphabet (special-token text, combining
/// marks, emoji, CR/LF, digits) round-trip exactly with NFC off and to their
/// NFC form with NFC on; streaming equals one-shot decoding; random id lists
/// decode or name an id of the list.
#[test]
fn random_text_round_trips_and_random_ids_decode_or_name_the_id() {
    use unicode_normalization_alignments::UnicodeNormalization;
    let nfc = common::tiny();
    let mut plain = common::tiny();
    plain.set_nfc(false);
    let alphabet: Vec<&str> = vec![
        "a",
        "Z",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        "0",
        "42",
        "'s",
        "'LL",
        "é",
        "e\u{301}",
        "\u{301}",
        "\u{308}\u{304}",
        "你",
        "好",
        "😀",
        "👨\u{200d}👩",
        "🇫🇷",
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|im",
        "|>",
        "\u{feff}",
        "\u{10ffff}",
        "ß",
        "ǅ",
        "한",
        "\u{1100}\u{1161}",
        "!?",
        "...",
        "\u{a0}",
    ];
    let mut r = Lcg(0x5eed_7e57);
    for _ in 0..2000 {
        let n = r.below(24);
        let s: String = (0..n).map(|_| alphabet[r.below(alphabet.len())]).collect();
        for parse_special in [true, false] {
            let ids = plain.encode_with(&s, parse_special);
            assert_eq!(plain.decode(&ids).unwrap(), s, "{s:?}");
            let ids = nfc.encode_with(&s, parse_special);
            let want: String = s.nfc().map(|(c, _)| c).collect();
            assert_eq!(nfc.decode(&ids).unwrap(), want, "{s:?}");
            let mut d = nfc.stream_decoder();
            let mut streamed = String::new();
            for &id in &ids {
                streamed.push_str(&d.push(id).unwrap());
            }
            streamed.push_str(&d.finish());
            assert_eq!(streamed, want);
        }
        let ids: Vec<u32> = (0..r.below(10))
            .map(|_| match r.below(4) {
                0 => r.next() as u32,
                1 => 151_640 + r.below(8) as u32,
                _ => r.below(300) as u32,
            })
            .collect();
        match plain.decode_bytes(&ids) {
            Ok(bytes) => assert_eq!(plain.decode(&ids).unwrap(), String::from_utf8_lossy(&bytes)),
            Err(Error::UnknownId(id)) => assert!(ids.contains(&id)),
            Err(e) => panic!("{e:?}"),
        }
    }
}

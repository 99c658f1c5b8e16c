//! `decode(encode(s)) == s` on the tiny fixture (every byte has a token, so any
//! string round-trips) and streaming decoding equals one-shot decoding.

mod common;

use edgedecoding_tokenizer::Tokenizer;
use unicode_normalization_alignments::UnicodeNormalization;

fn check_roundtrip(t: &Tokenizer, nfc: bool) {
    for s in common::roundtrip_corpus() {
        let expected: String = if nfc {
            s.as_str().nfc().map(|(c, _)| c).collect()
        } else {
            s.clone()
        };
        for parse_special in [true, false] {
            let ids = t.encode_with(&s, parse_special);
            assert_eq!(t.decode(&ids).unwrap(), expected, "{s:?}");
            let mut d = t.stream_decoder();
            let mut streamed = String::new();
            for &id in &ids {
                let piece = d.push(id).unwrap();
                streamed.push_str(&piece);
            }
            streamed.push_str(&d.finish());
            assert_eq!(streamed, expected, "stream {s:?}");
        }
    }
}

#[test]
fn roundtrip_without_nfc() {
    let mut t = common::tiny();
    t.set_nfc(false);
    check_roundtrip(&t, false);
}

#[test]
fn roundtrip_with_nfc_gives_the_nfc_form() {
    check_roundtrip(&common::tiny(), true);
}

#[test]
fn streaming_equals_lossy_decoding_of_any_id_sequence() {
    // Random byte tokens (any bytes, often invalid UTF-8): the concatenated
    // stream output equals String::from_utf8_lossy of all the bytes.
    let t = common::tiny();
    let mut rng = common::Rng(0xDEAD_BEEF_CAFE_F00D);
    let interesting = [
        0xE4u32,
        0xBD,
        0xA0,
        0xF0,
        0x9F,
        0x98,
        0x80,
        0xC3,
        0xA9,
        0xFF,
        0xC0,
        0xED,
        0xA0,
        b'a' as u32,
    ];
    for _ in 0..3000 {
        let n = rng.below(12);
        let ids: Vec<u32> = (0..n)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.below(256) as u32
                } else {
                    interesting[rng.below(interesting.len())]
                }
            })
            .collect();
        let bytes = t.decode_bytes(&ids).unwrap();
        let mut d = t.stream_decoder();
        let mut streamed = String::new();
        for &id in &ids {
            let piece = d.push(id).unwrap();
            // Nothing returned before the stream ends is ever an incomplete character.
            streamed.push_str(&piece);
        }
        streamed.push_str(&d.finish());
        assert_eq!(streamed, String::from_utf8_lossy(&bytes), "{ids:?}");
        assert_eq!(t.decode(&ids).unwrap(), String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn long_runs_use_the_heap_merge_path() {
    // 10 000 spaces then a word: one piece of 9 999 spaces (ĠĠ merges) + " x".
    let t = common::tiny();
    let s = format!("{}x", " ".repeat(10_000));
    let ids = t.encode(&s);
    assert_eq!(ids.len(), 4999 + 1 + 2);
    assert!(ids[..4999].iter().all(|&id| id == 265));
    assert_eq!(ids[4999..], [32, 32, 120]);
    assert_eq!(t.decode(&ids).unwrap(), s);
}

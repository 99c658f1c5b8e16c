//! The tokenizer: `Tokenizer::from_tokenizer_json` and `from_blob` on
//! arbitrary bytes, and encode / decode / streaming decode of arbitrary text
//! and ids with the committed tiny tokenizer (tokenizer/tests/fixtures).
//!
//! Input: one flag byte, then the payload.
//! * flag & 3 == 0: the payload is a tokenizer.json (lossy UTF-8);
//! * flag & 3 == 1: the payload is a `.edq` tokenizer blob;
//! * otherwise: the payload is split in two: text (lossy UTF-8) to encode, and
//!   little-endian u32 ids to decode. Bit 2 turns special-token parsing off,
//!   bit 3 turns NFC normalization on.
//!
//! Checked: the tiny fixture has a token for every byte, so
//! `decode(encode(s)) == s` for every string (its NFC form with NFC on,
//! special-token text included: it decodes to itself); streaming decoding of
//! any ids equals the lossy decoding of their bytes.
#![no_main]

use std::sync::OnceLock;

use edgedecoding_tokenizer::{Error, Tokenizer};
use libfuzzer_sys::fuzz_target;
use unicode_normalization_alignments::UnicodeNormalization;

const TINY: &str = include_str!("../../tokenizer/tests/fixtures/tiny_tokenizer.json");

fn tiny(nfc: bool) -> &'static Tokenizer {
    static T: OnceLock<[Tokenizer; 2]> = OnceLock::new();
    &T.get_or_init(|| {
        let mut off = Tokenizer::from_tokenizer_json(TINY).expect("fixture");
        off.set_nfc(false);
        let on = Tokenizer::from_tokenizer_json(TINY).expect("fixture");
        assert!(on.nfc());
        [off, on]
    })[nfc as usize]
}

fn use_loaded(t: &Tokenizer) {
    let ids = t.encode("Hello, world! <|im_start|>user\n 123 é");
    let _ = t.decode(&ids);
    let _ = t.decode_with(&ids, true);
    for id in [0, 1, 255, 256, 151643, u32::MAX] {
        let _ = (t.id_to_token(id), t.token_kind(id), t.id_to_bytes(id));
    }
    let _ = (t.vocab_size(), t.merge_count(), t.bos_id(), t.eos_id());
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    match flags & 3 {
        0 => {
            if let Ok(t) = Tokenizer::from_tokenizer_json(&String::from_utf8_lossy(rest)) {
                use_loaded(&t);
            }
        }
        1 => {
            if let Ok(t) = Tokenizer::from_blob(rest) {
                use_loaded(&t);
            }
        }
        _ => {
            let parse_special = flags & 4 == 0;
            let nfc = flags & 8 != 0;
            let t = tiny(nfc);
            let cut = rest.len() / 2;
            let text = String::from_utf8_lossy(&rest[..cut]);
            let ids = t.encode_with(&text, parse_special);
            let back = t.decode(&ids).expect("encoded ids decode");
            let expected: String = if nfc {
                text.nfc().map(|(c, _)| c).collect()
            } else {
                text.to_string()
            };
            assert_eq!(back, expected);

            // arbitrary ids: Ok or UnknownId, and streaming equals lossy decoding
            let ids: Vec<u32> = rest[cut..]
                .chunks_exact(4)
                .map(|w| {
                    let v = u32::from_le_bytes(w.try_into().unwrap());
                    // mostly byte and merge tokens, some added tokens and
                    // their neighbours, sometimes anything
                    match v >> 30 {
                        0 | 1 => v % 300,
                        2 => 151_640 + v % 8,
                        _ => v,
                    }
                })
                .collect();
            match t.decode_bytes(&ids) {
                Ok(bytes) => {
                    let mut d = t.stream_decoder();
                    let mut s = String::new();
                    for &id in &ids {
                        s.push_str(&d.push(id).expect("ids decoded above"));
                    }
                    s.push_str(&d.finish());
                    assert_eq!(s, String::from_utf8_lossy(&bytes));
                    assert_eq!(t.decode(&ids).unwrap(), s);
                }
                Err(Error::UnknownId(id)) => assert!(ids.contains(&id)),
                Err(e) => panic!("decode: unexpected error {e}"),
            }
        }
    }
});

//! The tokenizer blob stored inside a `.edq` model file (docs/FORMAT.md §3):
//! a checkpoint's `tokenizer.json` verbatim, or — for a GGUF source — its
//! vocabulary as `{"gguf_vocab": {"tokens", "merges", "token_type", "pre",
//! "bos_token_id", "eos_token_id"}}`.

use serde_json::{json, Value};

use crate::{Error, GgufVocab, Result, Tokenizer};

impl GgufVocab {
    /// The `.edq` tokenizer blob of this vocabulary.
    pub fn to_blob(&self) -> Vec<u8> {
        let blob = json!({ "gguf_vocab": {
            "tokens": self.tokens, "merges": self.merges, "token_type": self.token_type,
            "pre": self.pre, "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id,
        }});
        // serialising a `Value` of strings and numbers cannot fail
        serde_json::to_vec(&blob).unwrap_or_default()
    }
}

impl Tokenizer {
    /// Rebuilds the tokenizer from a `.edq` file's blob (either form).
    pub fn from_blob(blob: &[u8]) -> Result<Tokenizer> {
        let v: Value = serde_json::from_slice(blob)
            .map_err(|e| Error::Json(format!("tokenizer blob: {e}")))?;
        let Some(g) = v.get("gguf_vocab") else {
            let text = std::str::from_utf8(blob)
                .map_err(|_| Error::Json("tokenizer blob is not UTF-8".into()))?;
            return Tokenizer::from_tokenizer_json(text);
        };
        let bad = |what: &str| Error::InvalidTokenizerJson(format!("gguf_vocab.{what}"));
        let strs = |k: &str| -> Result<Vec<String>> {
            g.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(k))?
                .iter()
                .map(|s| s.as_str().map(String::from).ok_or_else(|| bad(k)))
                .collect()
        };
        let id = |k: &str| -> Result<Option<u32>> {
            match g.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .map(Some)
                    .ok_or_else(|| bad(k)),
            }
        };
        let token_type = match g.get("token_type") {
            None => vec![],
            Some(a) => a
                .as_array()
                .ok_or_else(|| bad("token_type"))?
                .iter()
                .map(|x| {
                    x.as_i64()
                        .and_then(|x| i32::try_from(x).ok())
                        .ok_or_else(|| bad("token_type"))
                })
                .collect::<Result<_>>()?,
        };
        let vocab = GgufVocab {
            tokens: strs("tokens")?,
            merges: strs("merges")?,
            token_type,
            pre: g
                .get("pre")
                .and_then(Value::as_str)
                .unwrap_or("qwen2")
                .to_string(),
            bos_token_id: id("bos_token_id")?,
            eos_token_id: id("eos_token_id")?,
        };
        Tokenizer::from_gguf(&vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> GgufVocab {
        let mut tokens: Vec<String> = (0..=255u8)
            .map(|b| crate::bytes_to_byte_level(&[b]))
            .collect();
        tokens.push("ab".into());
        GgufVocab {
            merges: vec![format!(
                "{} {}",
                tokens[b'a' as usize], tokens[b'b' as usize]
            )],
            tokens,
            token_type: vec![],
            pre: "qwen2".into(),
            bos_token_id: Some(3),
            eos_token_id: None,
        }
    }

    /// Round trip: the blob rebuilds a tokenizer that encodes like the original.
    #[test]
    fn blob_round_trip() {
        let v = vocab();
        let a = Tokenizer::from_gguf(&v).unwrap();
        let b = Tokenizer::from_blob(&v.to_blob()).unwrap();
        assert_eq!(a.encode("abcab"), b.encode("abcab"));
        assert_eq!(b.encode("ab"), vec![256]);
        assert_eq!(b.bos_id(), Some(3));
    }

    /// Malformed blobs are typed errors.
    #[test]
    fn bad_blobs_are_errors() {
        assert!(matches!(Tokenizer::from_blob(b"{"), Err(Error::Json(_))));
        assert!(matches!(
            Tokenizer::from_blob(br#"{"gguf_vocab": {"tokens": 5}}"#),
            Err(Error::InvalidTokenizerJson(m)) if m.contains("tokens")
        ));
        assert!(matches!(
            Tokenizer::from_blob(br#"{"gguf_vocab": {"tokens": [], "merges": [], "bos_token_id": -1}}"#),
            Err(Error::InvalidTokenizerJson(m)) if m.contains("bos")
        ));
    }
}

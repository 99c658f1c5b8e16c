//! Reading a Hugging Face `tokenizer.json` (Qwen2 layout only).

use serde_json::Value;

use crate::{Error, Parts, Result, TokenKind, QWEN2_PATTERN};

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidTokenizerJson(msg.into())
}

/// `null`, missing, or the empty string.
fn is_empty_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn parse(text: &str) -> Result<Parts> {
    let root: Value = serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
    let nfc = check_normalizer(root.get("normalizer"))?;
    check_pre_tokenizer(root.get("pre_tokenizer"))?;

    let model = root.get("model").ok_or_else(|| bad("no \"model\""))?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") | None => {}
        Some(other) => return Err(Error::UnsupportedModel(other.to_string())),
    }
    if flag(model, "byte_fallback") {
        return Err(Error::UnsupportedModel("BPE with byte_fallback".into()));
    }
    if !is_empty_str(model.get("continuing_subword_prefix"))
        || !is_empty_str(model.get("end_of_word_suffix"))
    {
        return Err(Error::UnsupportedModel(
            "BPE with continuing_subword_prefix / end_of_word_suffix".into(),
        ));
    }
    if model
        .get("dropout")
        .and_then(Value::as_f64)
        .is_some_and(|d| d > 0.0)
    {
        return Err(Error::UnsupportedModel("BPE with dropout".into()));
    }
    let ignore_merges = flag(model, "ignore_merges");

    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("model.vocab is not an object"))?;
    let mut entries = Vec::with_capacity(vocab.len() + 32);
    for (tok, id) in vocab {
        let id = as_id(id).ok_or_else(|| bad(format!("vocab id of {tok:?} is not a u32")))?;
        entries.push((id, tok.clone(), TokenKind::Normal));
    }

    let merges_v = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("model.merges is not an array"))?;
    let mut merges = Vec::with_capacity(merges_v.len());
    for m in merges_v {
        merges.push(parse_merge(m)?);
    }

    if let Some(added) = root.get("added_tokens") {
        let added = added
            .as_array()
            .ok_or_else(|| bad("added_tokens is not an array"))?;
        for t in added {
            let content = t
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("added token without content"))?;
            let id = t
                .get("id")
                .and_then(as_id)
                .ok_or_else(|| bad(format!("added token {content:?} has no u32 id")))?;
            if flag(t, "lstrip") || flag(t, "rstrip") || flag(t, "single_word") {
                return Err(Error::UnsupportedAddedToken(content.to_string()));
            }
            let kind = if flag(t, "special") {
                TokenKind::Special
            } else {
                TokenKind::Added
            };
            entries.push((id, content.to_string(), kind));
        }
    }

    Ok(Parts {
        entries,
        merges,
        nfc,
        ignore_merges,
        bos: None,
        eos: None,
    })
}

fn as_id(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// `"a b"` or `["a", "b"]`.
fn parse_merge(m: &Value) -> Result<(String, String)> {
    match m {
        Value::String(s) => match s.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                Ok((a.to_string(), b.to_string()))
            }
            _ => Err(Error::InvalidMerge(s.clone())),
        },
        Value::Array(parts) => match parts.as_slice() {
            [Value::String(a), Value::String(b)] => Ok((a.clone(), b.clone())),
            _ => Err(Error::InvalidMerge(m.to_string())),
        },
        _ => Err(Error::InvalidMerge(m.to_string())),
    }
}

/// `true` for NFC, `false` for no normalizer.
fn check_normalizer(v: Option<&Value>) -> Result<bool> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(false);
    };
    match v.get("type").and_then(Value::as_str) {
        Some("NFC") => Ok(true),
        Some("Sequence") => {
            let list = v
                .get("normalizers")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::UnsupportedNormalizer(v.to_string()))?;
            match list.as_slice() {
                [] => Ok(false),
                [one] => check_normalizer(Some(one)),
                _ => Err(Error::UnsupportedNormalizer(v.to_string())),
            }
        }
        _ => Err(Error::UnsupportedNormalizer(v.to_string())),
    }
}

/// Accepts exactly Qwen2's `Sequence[Split(pattern, Isolated), ByteLevel(use_regex=false)]`.
fn check_pre_tokenizer(v: Option<&Value>) -> Result<()> {
    let unsupported = |why: &str| Error::UnsupportedPreTokenizer(why.to_string());
    let v = v
        .filter(|v| !v.is_null())
        .ok_or_else(|| unsupported("none (Qwen2 needs Split + ByteLevel)"))?;
    if v.get("type").and_then(Value::as_str) != Some("Sequence") {
        return Err(unsupported(&v.to_string()));
    }
    let list = v
        .get("pretokenizers")
        .and_then(Value::as_array)
        .ok_or_else(|| unsupported("Sequence without pretokenizers"))?;
    let [split, byte_level] = list.as_slice() else {
        return Err(unsupported("expected exactly [Split, ByteLevel]"));
    };
    let pattern = split
        .get("pattern")
        .and_then(|p| p.get("Regex"))
        .and_then(Value::as_str);
    let ok_split = split.get("type").and_then(Value::as_str) == Some("Split")
        && pattern == Some(QWEN2_PATTERN)
        && split.get("behavior").and_then(Value::as_str) == Some("Isolated")
        && !flag(split, "invert");
    if !ok_split {
        return Err(unsupported(&format!("not the Qwen2 Split: {split}")));
    }
    let ok_byte_level = byte_level.get("type").and_then(Value::as_str) == Some("ByteLevel")
        && !flag(byte_level, "add_prefix_space")
        && !flag(byte_level, "use_regex");
    if !ok_byte_level {
        return Err(unsupported(&format!(
            "expected ByteLevel without prefix space or regex: {byte_level}"
        )));
    }
    Ok(())
}

//! Building a tokenizer from GGUF metadata parsed by the caller.

use crate::{Error, Parts, Result, TokenKind};

/// GGUF `tokenizer.ggml.token_type` of control tokens (`<|im_start|>`...).
pub const GGUF_TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF `tokenizer.ggml.token_type` of user-defined tokens (`<tool_call>`...).
pub const GGUF_TOKEN_TYPE_USER_DEFINED: i32 = 4;
/// GGUF `tokenizer.ggml.token_type` of unused padding entries (`[PAD151665]`...).
pub const GGUF_TOKEN_TYPE_UNUSED: i32 = 5;

/// The GGUF `tokenizer.ggml.*` values a [`crate::Tokenizer`] needs, as plain data.
///
/// | field | GGUF key |
/// | --- | --- |
/// | `tokens` | `tokenizer.ggml.tokens` (string array; index = id) |
/// | `merges` | `tokenizer.ggml.merges` (string array, `"a b"`, rank order) |
/// | `token_type` | `tokenizer.ggml.token_type` (i32 array, same length as `tokens`; may be empty = all normal) |
/// | `pre` | `tokenizer.ggml.pre` (must be `"qwen2"`) |
/// | `bos_token_id` | `tokenizer.ggml.bos_token_id` (u32), if present |
/// | `eos_token_id` | `tokenizer.ggml.eos_token_id` (u32), if present |
///
/// Token types: 1 normal, 2 unknown, 3 control (special), 4 user-defined,
/// 5 unused, 6 byte. Types 1, 2 and 6 take part in BPE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GgufVocab {
    pub tokens: Vec<String>,
    pub merges: Vec<String>,
    pub token_type: Vec<i32>,
    pub pre: String,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

pub(crate) fn parts(v: &GgufVocab) -> Result<Parts> {
    if v.pre != "qwen2" {
        return Err(Error::UnsupportedGgufPre(v.pre.clone()));
    }
    if !v.token_type.is_empty() && v.token_type.len() != v.tokens.len() {
        return Err(Error::GgufLengthMismatch {
            tokens: v.tokens.len(),
            token_types: v.token_type.len(),
        });
    }
    let entries = v
        .tokens
        .iter()
        .enumerate()
        .map(|(id, text)| {
            let kind = match v.token_type.get(id).copied() {
                Some(GGUF_TOKEN_TYPE_CONTROL) => TokenKind::Special,
                Some(GGUF_TOKEN_TYPE_USER_DEFINED) => TokenKind::Added,
                Some(GGUF_TOKEN_TYPE_UNUSED) => TokenKind::Unused,
                _ => TokenKind::Normal,
            };
            (id as u32, text.clone(), kind)
        })
        .collect();
    let merges = v
        .merges
        .iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                Ok((a.to_string(), b.to_string()))
            }
            _ => Err(Error::InvalidMerge(m.clone())),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Parts {
        entries,
        merges,
        nfc: true,
        ignore_merges: false,
        bos: v.bos_token_id,
        eos: v.eos_token_id,
    })
}

//! The crate's error type.

use std::fmt;

/// Everything that can go wrong when building a [`crate::Tokenizer`] or decoding ids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A tokenizer file could not be read.
    Io { path: String, message: String },
    /// The text is not valid JSON.
    Json(String),
    /// The JSON is valid but not shaped like a Hugging Face `tokenizer.json`.
    InvalidTokenizerJson(String),
    /// `model.type` (or one of its options) is something this crate does not implement.
    UnsupportedModel(String),
    /// A normalizer other than none or `NFC`.
    UnsupportedNormalizer(String),
    /// A pre-tokenizer other than Qwen2's `Split` regex + `ByteLevel`.
    UnsupportedPreTokenizer(String),
    /// GGUF `tokenizer.ggml.pre` is not `"qwen2"`.
    UnsupportedGgufPre(String),
    /// An added token with `lstrip`, `rstrip` or `single_word` set (not implemented).
    UnsupportedAddedToken(String),
    /// GGUF `tokens` and `token_type` have different lengths.
    GgufLengthMismatch { tokens: usize, token_types: usize },
    /// A merge line is not two space-separated tokens.
    InvalidMerge(String),
    /// A merge refers to a token (or produces one) that is not in the vocabulary.
    MergeTokenNotInVocab { merge: String, token: String },
    /// One of the 256 byte-level tokens is missing from the vocabulary.
    MissingByteToken(u8),
    /// The same id is given two different token strings.
    ConflictingId {
        id: u32,
        first: String,
        second: String,
    },
    /// An id that names no token (outside the vocabulary or in a gap of it).
    UnknownId(u32),
    /// A token id above [`crate::MAX_TOKEN_ID`] in the vocabulary or the
    /// added tokens.
    IdTooLarge { id: u32, max: u32 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            Error::Json(m) => write!(f, "invalid JSON: {m}"),
            Error::InvalidTokenizerJson(m) => write!(f, "invalid tokenizer.json: {m}"),
            Error::UnsupportedModel(m) => write!(f, "unsupported tokenizer model: {m}"),
            Error::UnsupportedNormalizer(m) => write!(f, "unsupported normalizer: {m}"),
            Error::UnsupportedPreTokenizer(m) => write!(f, "unsupported pre-tokenizer: {m}"),
            Error::UnsupportedGgufPre(p) => {
                write!(
                    f,
                    "unsupported GGUF tokenizer.ggml.pre {p:?} (expected \"qwen2\")"
                )
            }
            Error::UnsupportedAddedToken(t) => {
                write!(
                    f,
                    "added token {t:?} uses lstrip/rstrip/single_word (not supported)"
                )
            }
            Error::GgufLengthMismatch {
                tokens,
                token_types,
            } => write!(
                f,
                "GGUF vocabulary has {tokens} tokens but {token_types} token types"
            ),
            Error::InvalidMerge(m) => write!(f, "invalid merge {m:?}"),
            Error::MergeTokenNotInVocab { merge, token } => {
                write!(
                    f,
                    "merge {merge:?}: token {token:?} is not in the vocabulary"
                )
            }
            Error::MissingByteToken(b) => {
                write!(f, "vocabulary lacks the byte-level token of byte 0x{b:02x}")
            }
            Error::ConflictingId { id, first, second } => {
                write!(f, "id {id} is given to both {first:?} and {second:?}")
            }
            Error::UnknownId(id) => write!(f, "unknown token id {id}"),
            Error::IdTooLarge { id, max } => write!(
                f,
                "token id {id} is above the largest supported id {max} (the id table would need {id} slots)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

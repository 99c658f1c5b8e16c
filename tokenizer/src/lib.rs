//! Qwen2 byte-level BPE tokenizer, written for the EdgeDecoding reference.
//!
//! * Build a [`Tokenizer`] from a Hugging Face `tokenizer.json`
//!   ([`Tokenizer::from_tokenizer_json`]) or from GGUF metadata that the caller
//!   has already parsed ([`GgufVocab`], [`Tokenizer::from_gguf`]).
//! * [`Tokenizer::encode`]: added tokens (`<|im_start|>`, ...) are matched
//!   literally first, the rest is NFC-normalized (as Qwen2's `tokenizer.json`
//!   says), split by the Qwen2 pre-tokenizer ([`pre_tokenize`]), turned into
//!   byte-level symbols and merged by BPE rank.
//! * [`Tokenizer::decode`] and the streaming [`StreamDecoder`], which only ever
//!   returns complete UTF-8 characters.
//! * [`chat_prompt`]: the Qwen2.5 chat template for plain conversations.
//!
//! ```
//! use edgedecoding_tokenizer::{chat_prompt, Role, Tokenizer};
//!
//! // The tiny hand-made fixture; real use: Tokenizer::from_gguf or a Qwen2 tokenizer.json.
//! let tok = Tokenizer::from_tokenizer_json(include_str!("../tests/fixtures/tiny_tokenizer.json"))?;
//! let ids = tok.encode("<|im_start|>user\nhello world<|im_end|>");
//! assert_eq!(ids, [151644, 117, 115, 101, 114, 10, 259, 264, 151645]);
//!
//! let mut stream = tok.stream_decoder();
//! let mut text = String::new();
//! for &id in &ids {
//!     text.push_str(&stream.push(id)?); // only complete characters
//! }
//! text.push_str(&stream.finish());
//! assert_eq!(text, "<|im_start|>user\nhello world<|im_end|>");
//!
//! let prompt = chat_prompt(&[(Role::User, "hello")], true);
//! assert!(prompt.ends_with("<|im_start|>assistant\n"));
//! # Ok::<(), edgedecoding_tokenizer::Error>(())
//! ```
//!
//! See `README.md` for what was checked against which reference.

mod blob;
mod bpe;
mod bytelevel;
mod chat;
mod error;
mod gguf;
mod json;
mod pretok;
mod stream;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use unicode_normalization_alignments::{is_nfc_quick, IsNormalized, UnicodeNormalization};

pub use bytelevel::{byte_level_to_bytes, bytes_to_byte_level};
pub use chat::{chat_prompt, Role, QWEN25_DEFAULT_SYSTEM_PROMPT};
pub use error::{Error, Result};
pub use gguf::{
    GgufVocab, GGUF_TOKEN_TYPE_CONTROL, GGUF_TOKEN_TYPE_UNUSED, GGUF_TOKEN_TYPE_USER_DEFINED,
};
pub use pretok::{pre_tokenize, QWEN2_PATTERN};
pub use stream::StreamDecoder;

/// Largest token id a tokenizer may use (2^20 - 1). The id table has a slot
/// for every id up to the largest, so a file naming an id far past its
/// vocabulary is refused ([`Error::IdTooLarge`]) instead of allocating
/// gigabytes; real vocabularies stay below 2^18 (Qwen2: 151,936).
pub const MAX_TOKEN_ID: u32 = (1 << 20) - 1;

/// `<|endoftext|>` in the Qwen2 vocabulary.
pub const QWEN2_ENDOFTEXT: u32 = 151643;
/// `<|im_start|>` in the Qwen2 vocabulary.
pub const QWEN2_IM_START: u32 = 151644;
/// `<|im_end|>` in the Qwen2 vocabulary.
pub const QWEN2_IM_END: u32 = 151645;

/// What kind of token an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A BPE vocabulary token (byte-level text).
    Normal,
    /// An added token marked `special` (GGUF: control). Matched literally in
    /// the input unless special parsing is off; skipped by `skip_special` decoding.
    Special,
    /// An added token not marked special (GGUF: user-defined, e.g. `<tool_call>`).
    /// Always matched literally in the input, like Hugging Face and llama.cpp do.
    Added,
    /// GGUF "unused" padding entry (`[PAD151665]`...): never produced by
    /// encoding, decodes to nothing (as in llama.cpp).
    Unused,
}

#[derive(Debug, Clone)]
struct TokenEntry {
    /// The vocabulary string (byte-level text for normal tokens).
    text: String,
    /// What the token decodes to.
    bytes: Vec<u8>,
    kind: TokenKind,
}

/// Largest number of pieces kept in the BPE cache (beyond it nothing is added).
const CACHE_CAPACITY: usize = 1 << 16;
/// Pieces longer than this (in bytes) are not cached.
const CACHE_MAX_PIECE: usize = 64;

/// A Qwen2 byte-level BPE tokenizer. `Sync`: one instance can serve many threads.
pub struct Tokenizer {
    /// Indexed by id; `None` for gaps in the id space.
    tokens: Vec<Option<TokenEntry>>,
    /// Every token string (normal and added) to its id.
    by_text: HashMap<String, u32>,
    /// Id of each byte's byte-level token.
    byte_ids: [u32; 256],
    merges: bpe::MergeMap,
    /// Added tokens (content, id, special), longest content first.
    added: Vec<(String, u32, bool)>,
    /// `added_first[b]`: some added token starts with byte `b`.
    added_first: [bool; 256],
    nfc: bool,
    ignore_merges: bool,
    bos: Option<u32>,
    eos: Option<u32>,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("merges", &self.merges.len())
            .field("added_tokens", &self.added.len())
            .field("nfc", &self.nfc)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

/// Everything both loaders produce before the tokenizer is assembled.
pub(crate) struct Parts {
    /// `(id, text, kind)`; the same id may appear twice only with the same text
    /// (the later kind wins: added tokens are listed after the vocabulary).
    pub entries: Vec<(u32, String, TokenKind)>,
    /// In rank order.
    pub merges: Vec<(String, String)>,
    pub nfc: bool,
    pub ignore_merges: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
}

/// A piece of input: text to pre-tokenize or an added token's id.
enum Segment<'a> {
    Text(&'a str),
    Added(u32),
}

impl Tokenizer {
    /// Builds a tokenizer from the text of a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(json: &str) -> Result<Self> {
        Self::from_parts(json::parse(json)?)
    }

    /// Reads and parses a `tokenizer.json` file.
    pub fn from_tokenizer_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_tokenizer_json(&text)
    }

    /// Builds a tokenizer from GGUF `tokenizer.ggml.*` metadata.
    ///
    /// NFC normalization is on, as in Qwen2's `tokenizer.json` (llama.cpp does
    /// not normalize; turn it off with [`Tokenizer::set_nfc`] to match llama.cpp).
    pub fn from_gguf(vocab: &GgufVocab) -> Result<Self> {
        Self::from_parts(gguf::parts(vocab)?)
    }

    pub(crate) fn from_parts(parts: Parts) -> Result<Self> {
        // The table has a slot for every id below the largest: refuse ids
        // far past any real vocabulary before allocating it.
        if let Some(&(id, _, _)) = parts.entries.iter().find(|(id, _, _)| *id > MAX_TOKEN_ID) {
            return Err(Error::IdTooLarge {
                id,
                max: MAX_TOKEN_ID,
            });
        }
        let size = parts
            .entries
            .iter()
            .map(|(id, _, _)| *id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut tokens: Vec<Option<TokenEntry>> = vec![None; size];
        let mut by_text = HashMap::with_capacity(parts.entries.len());
        for (id, text, kind) in parts.entries {
            let slot = &mut tokens[id as usize];
            if let Some(old) = slot {
                if old.text != text {
                    return Err(Error::ConflictingId {
                        id,
                        first: old.text.clone(),
                        second: text,
                    });
                }
            }
            let bytes = match kind {
                TokenKind::Normal => match byte_level_to_bytes(&text) {
                    Some(b) => b,
                    // As HF's ByteLevel decoder: a token with a character outside
                    // the byte alphabet decodes to its own UTF-8.
                    None => text.as_bytes().to_vec(),
                },
                TokenKind::Special | TokenKind::Added => text.as_bytes().to_vec(),
                TokenKind::Unused => Vec::new(),
            };
            by_text.entry(text.clone()).or_insert(id);
            *slot = Some(TokenEntry { text, bytes, kind });
        }

        let normal_id = |s: &str| -> Option<u32> {
            let &id = by_text.get(s)?;
            match &tokens[id as usize] {
                Some(e) if e.kind == TokenKind::Normal => Some(id),
                _ => None,
            }
        };

        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let s = bytelevel::BYTE_TO_CHAR[b].to_string();
            *slot = normal_id(&s).ok_or(Error::MissingByteToken(b as u8))?;
        }

        let mut merges = bpe::MergeMap::with_capacity(parts.merges.len());
        for (rank, (a, b)) in parts.merges.iter().enumerate() {
            let merged = format!("{a}{b}");
            let lookup = |t: &str| {
                normal_id(t).ok_or_else(|| Error::MergeTokenNotInVocab {
                    merge: format!("{a} {b}"),
                    token: t.to_string(),
                })
            };
            let (ia, ib, im) = (lookup(a)?, lookup(b)?, lookup(&merged)?);
            // A repeated pair takes the later rank, as in HF `tokenizers`.
            merges.insert((ia, ib), (rank as u32, im));
        }

        let mut added: Vec<(String, u32, bool)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(id, e)| {
                let e = e.as_ref()?;
                let special = match e.kind {
                    TokenKind::Special => true,
                    TokenKind::Added => false,
                    _ => return None,
                };
                (!e.text.is_empty()).then(|| (e.text.clone(), id as u32, special))
            })
            .collect();
        added.sort_by(|x, y| y.0.len().cmp(&x.0.len()).then(x.1.cmp(&y.1)));
        let mut added_first = [false; 256];
        for (content, _, _) in &added {
            added_first[content.as_bytes()[0] as usize] = true;
        }

        Ok(Tokenizer {
            tokens,
            by_text,
            byte_ids,
            merges,
            added,
            added_first,
            nfc: parts.nfc,
            ignore_merges: parts.ignore_merges,
            bos: parts.bos,
            eos: parts.eos,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Turns NFC normalization of the input on or off.
    pub fn set_nfc(&mut self, on: bool) {
        self.nfc = on;
        self.clear_cache();
    }

    /// Whether the input is NFC-normalized before pre-tokenization.
    pub fn nfc(&self) -> bool {
        self.nfc
    }

    /// Empties the BPE cache (results never depend on it).
    pub fn clear_cache(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Number of ids (one past the largest id; gaps included).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Number of BPE merges.
    pub fn merge_count(&self) -> usize {
        self.merges.len()
    }

    /// BOS id given by the GGUF metadata (Qwen2 does not add it when encoding).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// EOS id given by the GGUF metadata (`tokenizer.json` has none:
    /// use [`QWEN2_IM_END`] / [`QWEN2_ENDOFTEXT`] or [`Tokenizer::token_to_id`]).
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Id of a token string (byte-level text for normal tokens: `"ĠParis"`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.by_text.get(token).copied()
    }

    /// Token string of an id (byte-level text for normal tokens).
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.entry(id).ok().map(|e| e.text.as_str())
    }

    /// Id of the byte-level token of byte `b` (every Qwen2 vocabulary has all
    /// 256: they re-spell any text).
    pub fn byte_token_id(&self, b: u8) -> u32 {
        self.byte_ids[b as usize]
    }

    /// Kind of an id.
    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.entry(id).ok().map(|e| e.kind)
    }

    /// Bytes an id decodes to.
    pub fn id_to_bytes(&self, id: u32) -> Result<&[u8]> {
        self.entry(id).map(|e| e.bytes.as_slice())
    }

    fn entry(&self, id: u32) -> Result<&TokenEntry> {
        self.tokens
            .get(id as usize)
            .and_then(Option::as_ref)
            .ok_or(Error::UnknownId(id))
    }

    /// Encodes `text`, matching special tokens such as `<|im_start|>` literally.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, true)
    }

    /// Encodes `text`; with `parse_special == false`, special (control) tokens
    /// in the text are encoded as ordinary text (HF `split_special_tokens`,
    /// llama.cpp `parse_special = false`). Non-special added tokens are matched
    /// either way.
    pub fn encode_with(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.for_each_segment(text, parse_special, |seg| match seg {
            Segment::Added(id) => out.push(id),
            Segment::Text(t) => self.encode_text(t, &mut out),
        });
        out
    }

    /// Splits at added tokens: leftmost match first, the longest at a position.
    fn for_each_segment<'a>(
        &self,
        text: &'a str,
        parse_special: bool,
        mut f: impl FnMut(Segment<'a>),
    ) {
        let bytes = text.as_bytes();
        let mut start = 0; // start of pending text
        let mut i = 0;
        while i < bytes.len() {
            if self.added_first[bytes[i] as usize] {
                let rest = &bytes[i..];
                let hit = self.added.iter().find(|(c, _, special)| {
                    (parse_special || !special) && rest.starts_with(c.as_bytes())
                });
                if let Some((content, id, _)) = hit {
                    if i > start {
                        f(Segment::Text(&text[start..i]));
                    }
                    f(Segment::Added(*id));
                    i += content.len();
                    start = i;
                    continue;
                }
            }
            i += 1;
        }
        if start < bytes.len() {
            f(Segment::Text(&text[start..]));
        }
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        let text: Cow<'_, str> = if self.nfc && is_nfc_quick(text.chars()) != IsNormalized::Yes {
            Cow::Owned(text.nfc().map(|(c, _)| c).collect())
        } else {
            Cow::Borrowed(text)
        };
        pretok::for_each_piece(&text, |piece| self.encode_piece(piece, out));
    }

    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        if self.ignore_merges {
            let s = bytes_to_byte_level(piece.as_bytes());
            if let Some(&id) = self.by_text.get(&s) {
                if matches!(
                    self.tokens[id as usize],
                    Some(TokenEntry {
                        kind: TokenKind::Normal,
                        ..
                    })
                ) {
                    out.push(id);
                    return;
                }
            }
        }
        let cacheable = piece.len() <= CACHE_MAX_PIECE;
        if cacheable {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(ids) = cache.get(piece) {
                out.extend_from_slice(ids);
                return;
            }
        }
        let mut ids: Vec<u32> = piece.bytes().map(|b| self.byte_ids[b as usize]).collect();
        bpe::merge(&mut ids, &self.merges);
        out.extend_from_slice(&ids);
        if cacheable {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() < CACHE_CAPACITY {
                cache.insert(piece.to_owned(), ids);
            }
        }
    }

    /// The bytes `ids` decode to (special tokens included).
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        self.decode_bytes_with(ids, false)
    }

    /// The bytes `ids` decode to; `skip_special` drops special (control) tokens.
    pub fn decode_bytes_with(&self, ids: &[u32], skip_special: bool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let e = self.entry(id)?;
            if !(skip_special && e.kind == TokenKind::Special) {
                out.extend_from_slice(&e.bytes);
            }
        }
        Ok(out)
    }

    /// Decodes `ids` to text (special tokens included); invalid UTF-8 (only
    /// possible for id sequences that encoding would not produce) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_with(ids, false)
    }

    /// [`Tokenizer::decode`] with the option to drop special tokens.
    pub fn decode_with(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let bytes = self.decode_bytes_with(ids, skip_special)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// A streaming decoder that yields only complete UTF-8 characters.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let mut entries: Vec<(u32, String, TokenKind)> = (0..=255u8)
            .map(|b| (b as u32, bytes_to_byte_level(&[b]), TokenKind::Normal))
            .collect();
        entries.push((300, "<a>".into(), TokenKind::Special));
        entries.push((301, "<a>b".into(), TokenKind::Added));
        entries.push((302, "<".into(), TokenKind::Special));
        Tokenizer::from_parts(Parts {
            entries,
            merges: vec![],
            nfc: false,
            ignore_merges: false,
            bos: None,
            eos: None,
        })
        .unwrap()
    }

    #[test]
    fn added_tokens_leftmost_longest() {
        let t = tiny();
        assert_eq!(t.encode("<a>b"), [301]);
        assert_eq!(t.encode("<a>c"), [300, b'c' as u32]);
        assert_eq!(t.encode("x<<a>"), [b'x' as u32, 302, 300]);
        // Specials off: "<a>" and "<" are text, "<a>b" (not special) still matches.
        assert_eq!(
            t.encode_with("<a>b<a>", false),
            [301, b'<' as u32, b'a' as u32, b'>' as u32]
        );
    }

    #[test]
    fn tokenizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tokenizer>();
    }
}

//! Streaming decoding: feed ids one at a time, get back only complete characters.

use crate::{Result, TokenKind, Tokenizer};

/// Incremental decoder (see [`Tokenizer::stream_decoder`]).
///
/// A token may end in the middle of a UTF-8 character (Qwen2 splits many CJK
/// characters and emoji over two or three tokens); those bytes are held back
/// until the character is complete. Bytes that can never form a character are
/// replaced by U+FFFD exactly as [`String::from_utf8_lossy`] would do on the
/// whole byte stream, so concatenating every [`StreamDecoder::push`] output and
/// [`StreamDecoder::finish`] equals the lossy decoding of all the bytes.
#[derive(Debug)]
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    pending: Vec<u8>,
    skip_special: bool,
}

impl<'t> StreamDecoder<'t> {
    pub(crate) fn new(tok: &'t Tokenizer) -> Self {
        StreamDecoder {
            tok,
            pending: Vec::new(),
            skip_special: false,
        }
    }

    /// Drop special (control) tokens from the output.
    pub fn skip_special(mut self, skip: bool) -> Self {
        self.skip_special = skip;
        self
    }

    /// Adds one id; returns the text that is now complete (possibly empty).
    /// An unknown id is an error and leaves the decoder unchanged.
    pub fn push(&mut self, id: u32) -> Result<String> {
        let bytes = self.tok.id_to_bytes(id)?;
        if !(self.skip_special && self.tok.token_kind(id) == Some(TokenKind::Special)) {
            self.pending.extend_from_slice(bytes);
        }
        Ok(self.drain_complete())
    }

    /// Adds several ids (all checked before any is added).
    pub fn push_all(&mut self, ids: &[u32]) -> Result<String> {
        for &id in ids {
            self.tok.id_to_bytes(id)?;
        }
        let mut out = String::new();
        for &id in ids {
            out.push_str(&self.push(id)?);
        }
        Ok(out)
    }

    /// Bytes held back because they may start a character.
    pub fn pending_bytes(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: held-back bytes (an incomplete character) become U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }

    fn drain_complete(&mut self) -> String {
        let mut out = String::new();
        let mut start = 0;
        while start < self.pending.len() {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[start..start + valid])
                            .expect("prefix checked by from_utf8"),
                    );
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start += valid + bad;
                        }
                        None => {
                            // An incomplete character at the end: wait for more.
                            start += valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }
}

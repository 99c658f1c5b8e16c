//! The `.edq` parser (`ModelBuf::model`: header, directory, checksum, shapes,
//! value ranges, and the optional tokenizer, rope_rom and simd_panels
//! sections). A model that parses runs a short prefill and a decode step on
//! the reference backend (and on the fast backend when the file stores its
//! SIMD section); a stored tokenizer is rebuilt.
//!
//! Input: one flag byte, then the file. Flag bit 0 reseals the header
//! checksum over the whole file first, so mutations reach the checks behind
//! it (a file with a SIMD section is sealed over the bytes before it, so
//! there the flag mostly exercises the checksum error).
#![no_main]

use edgedecoding_model::edq::{checksum, CHECKSUM_AT};
use edgedecoding_model::fast::Fast;
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{state_bytes, Decoder, Head, Serial, State, StateMem};
use libfuzzer_sys::fuzz_target;

/// Decoding is skipped above this KV-cache size (a header may claim a long
/// context; the file's size does not bound the cache).
const MAX_STATE: usize = 8 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let mut b = file.to_vec();
    if flags & 1 == 1 && b.len() >= CHECKSUM_AT + 8 {
        let s = checksum(&b);
        b[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&s.to_le_bytes());
    }
    let buf = ModelBuf::from_bytes(&b);
    let Ok(m) = buf.model() else {
        return;
    };
    // a second call takes the validated path: same answer
    assert!(buf.model().is_ok());
    let f = m.file();
    for i in 0..f.len() {
        let _ = f.entry(i);
    }
    if let Some(t) = f.tokenizer() {
        if let Ok(tok) = edgedecoding_tokenizer::Tokenizer::from_blob(t) {
            let ids = tok.encode("hi <|im_start|>");
            let _ = tok.decode(&ids);
        }
    }
    let _ = f.rope_rom();
    for l in 0..m.config.n_layers {
        m.layer(l).expect("layers of a validated model");
    }
    if state_bytes(&m.config) > MAX_STATE {
        return;
    }
    let tokens = [0u32, 1, (flags >> 1) as u32];
    let mut mem = StateMem::new(&m.config);
    if let (Ok(st), Ok(head)) = (State::new(&m.config, mem.bytes()), Head::derived(&m)) {
        if let Ok(mut d) = Decoder::new(m, head, st, Serial) {
            let _ = d.prefill(&tokens);
            let _ = d.decode(2);
            let _ = d.logits();
        }
    }
    if f.simd_section().is_some() {
        if let Ok(fast) = Fast::new(&m, 1) {
            let mut mem = StateMem::new(&m.config);
            if let (Ok(st), Ok(head)) = (State::new(&m.config, mem.bytes()), Head::derived(&m)) {
                if let Ok(mut d) = Decoder::new(m, head, st, &fast) {
                    let _ = d.prefill(&tokens);
                }
            }
        }
    }
});

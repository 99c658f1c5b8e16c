//! The keep list of a pruned vocabulary: one rule, used by every face
//! (`convert --keep-vocab`, `export-hw --keep-vocab`, the Python package).
//!
//! For `n` kept ids out of a vocabulary of `vocab` rows:
//!
//! 1. the special tokens that are real: the tokenizer's special (control)
//!    and added tokens with text — not the padding fillers a GGUF file adds
//!    to reach the model's row count (`[PAD151665]`…: kind "unused", or text
//!    `[PAD<its own id>]`), nor ids the tokenizer does not have;
//! 2. the 256 byte tokens, so that any text can be re-spelled;
//! 3. the remaining normal tokens by descending count in a calibration corpus
//!    encoded with the model's own tokenizer ([`KEEP_CORPUS`], built in, or a
//!    file);
//! 4. ties, tokens never seen included, by ascending id; if `n` is larger than
//!    all of the above, the fillers and missing ids by ascending id;
//! 5. the list sorted ascending (the `.edq` format needs strictly increasing ids).
//!
//! A GGUF file and a Hugging Face folder of the same model give the same list:
//! the GGUF's fillers are exactly the ids the `tokenizer.json` lacks.
//!
//! An explicit list can be imported ([`parse_keep_list`]) and exported
//! ([`format_keep_list`]): a text file, one id per line, `#` comments.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgedecoding_tokenizer::{TokenKind, Tokenizer as Bpe};

/// The built-in calibration corpus of the frequency ranking (about 160 KB of
/// English prose, Rust, Python and C code, and text in a dozen other
/// languages; written for this project, see `scripts/make-keep-corpus.py`).
pub const KEEP_CORPUS: &str = include_str!("keep_corpus.txt");

/// How to choose the kept ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The rule with `n` ids; the frequency ranking on `corpus` (a UTF-8 text
    /// file) or on [`KEEP_CORPUS`].
    Count {
        /// Ids kept.
        n: usize,
        /// Calibration corpus file (`None`: the built-in one).
        corpus: Option<PathBuf>,
    },
    /// An explicit list file ([`parse_keep_list`]).
    List(PathBuf),
}

/// What a token id is to the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A special, control or added token with text.
    Special,
    /// One of the 256 byte tokens.
    Byte,
    /// Any other token of the BPE vocabulary.
    Normal,
    /// A padding filler (`[PAD…]`, GGUF "unused"), or an id the tokenizer lacks.
    Filler,
}

/// Whether `id` is a padding filler: an id the tokenizer does not have, a
/// GGUF "unused" entry, an added token without text, or one whose text is
/// `[PAD<id>]` (how GGUF converters pad a vocabulary to the model's rows).
pub fn is_filler(tok: &Bpe, id: u32) -> bool {
    match (tok.token_kind(id), tok.id_to_token(id)) {
        (None, _) | (_, None) | (Some(TokenKind::Unused), _) => true,
        (Some(_), Some(text)) => text.is_empty() || text == format!("[PAD{id}]"),
    }
}

/// The class of every id below `vocab` (`tok`: `None` for a model without a
/// tokenizer, where every id is a normal token).
pub fn classes(tok: Option<&Bpe>, vocab: usize) -> Vec<Class> {
    let Some(tok) = tok else {
        return vec![Class::Normal; vocab];
    };
    let mut c: Vec<Class> = (0..vocab as u32)
        .map(|id| {
            if is_filler(tok, id) {
                Class::Filler
            } else if tok.token_kind(id) == Some(TokenKind::Normal) {
                Class::Normal
            } else {
                Class::Special
            }
        })
        .collect();
    for b in 0..=255u8 {
        if let Some(slot) = c.get_mut(tok.byte_token_id(b) as usize) {
            *slot = Class::Byte;
        }
    }
    c
}

/// A keep list and how the rule filled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepList {
    /// The kept ids, strictly increasing.
    pub ids: Vec<u32>,
    /// Real special tokens kept (step 1).
    pub specials: usize,
    /// Byte tokens kept (step 2).
    pub bytes: usize,
    /// Normal tokens kept that occur in the corpus (step 3).
    pub seen: usize,
    /// Normal tokens kept that the corpus never gives (step 4, by id).
    pub unseen: usize,
    /// Fillers kept because `n` exceeded every real token.
    pub fillers: usize,
}

impl std::fmt::Display for KeepList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ids kept: {} special, {} byte, {} by corpus frequency, {} never seen (by id)",
            self.ids.len(),
            self.specials,
            self.bytes,
            self.seen,
            self.unseen
        )?;
        if self.fillers > 0 {
            write!(f, ", {} padding fillers", self.fillers)?;
        }
        Ok(())
    }
}

/// The rule on ids of known `classes` with corpus `counts` (id → occurrences).
pub fn rule_on(classes: &[Class], counts: &HashMap<u32, u64>, n: usize) -> Result<KeepList> {
    let vocab = classes.len();
    if n == 0 || n > vocab {
        bail!("--keep-vocab {n}: must be in 1..={vocab} (the model's vocabulary)");
    }
    let of = |want: Class| -> Vec<u32> {
        (0..vocab as u32)
            .filter(|&id| classes[id as usize] == want)
            .collect()
    };
    let (specials, bytes) = (of(Class::Special), of(Class::Byte));
    let first = specials.len() + bytes.len();
    if n < first {
        bail!(
            "--keep-vocab {n} is smaller than the {} special tokens and {} byte tokens that every keep list has first ({first})",
            specials.len(),
            bytes.len()
        );
    }
    let mut normal = of(Class::Normal);
    // descending count, then ascending id (the sort is stable: ids ascend already)
    normal.sort_by_key(|id| std::cmp::Reverse(counts.get(id).copied().unwrap_or(0)));
    normal.truncate(n - first);
    let seen = normal.iter().filter(|id| counts.contains_key(id)).count();
    let mut fillers = of(Class::Filler);
    fillers.truncate(n - first - normal.len());
    let mut ids: Vec<u32> = [&specials[..], &bytes, &normal, &fillers].concat();
    ids.sort_unstable();
    Ok(KeepList {
        specials: specials.len(),
        bytes: bytes.len(),
        seen,
        unseen: normal.len() - seen,
        fillers: fillers.len(),
        ids,
    })
}

/// The keep list of `n` ids for a model of `vocab` rows with tokenizer `tok`
/// (`None`: no tokenizer, the lowest `n` ids), ranked on `corpus`.
pub fn keep_list(tok: Option<&Bpe>, vocab: usize, n: usize, corpus: &str) -> Result<KeepList> {
    let classes = classes(tok, vocab);
    let mut counts: HashMap<u32, u64> = HashMap::new();
    if let Some(tok) = tok {
        for id in tok.encode(corpus) {
            if classes.get(id as usize) == Some(&Class::Normal) {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    rule_on(&classes, &counts, n)
}

/// Parses a keep-list file's text (`what` names it in errors): one id per
/// line, `#` starts a comment, blank lines ignored. Ids must be below `vocab`;
/// repeated ids are kept once (the returned note says how many were dropped);
/// the list is sorted. With a tokenizer, all 256 byte tokens must be listed.
pub fn parse_keep_list(
    text: &str,
    what: &str,
    vocab: usize,
    tok: Option<&Bpe>,
) -> Result<(Vec<u32>, Option<String>)> {
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let s = line.split('#').next().unwrap_or("").trim();
        if s.is_empty() {
            continue;
        }
        let id: u32 = s.parse().map_err(|_| {
            anyhow::anyhow!(
                "{what}:{}: `{s}` is not a token id (one id per line)",
                i + 1
            )
        })?;
        if id as usize >= vocab {
            bail!(
                "{what}:{}: id {id} is outside the model's vocabulary (ids 0..{})",
                i + 1,
                vocab.saturating_sub(1)
            );
        }
        ids.push(id);
    }
    if ids.is_empty() {
        bail!("{what}: the keep list has no ids");
    }
    let listed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    let note = (ids.len() < listed).then(|| {
        format!(
            "{what}: {} repeated ids ignored ({} distinct)",
            listed - ids.len(),
            ids.len()
        )
    });
    if let Some(tok) = tok {
        let missing: Vec<(u8, u32)> = (0..=255u8)
            .map(|b| (b, tok.byte_token_id(b)))
            .filter(|(_, id)| ids.binary_search(id).is_err())
            .collect();
        if let Some(&(b, id)) = missing.first() {
            bail!(
                "{what}: {} of the 256 byte tokens are missing (the first: id {id}, byte 0x{b:02x}); a pruned model re-spells text it cannot encode with byte tokens, so a keep list must have all of them",
                missing.len()
            );
        }
    }
    Ok((ids, note))
}

/// A keep list as [`parse_keep_list`] reads it, with a comment naming `source`.
pub fn format_keep_list(ids: &[u32], vocab: usize, source: &str) -> String {
    let mut s = format!(
        "# keep list of {source}: {} of {vocab} token ids, one per line, ascending\n",
        ids.len()
    );
    for id in ids {
        s.push_str(&id.to_string());
        s.push('\n');
    }
    s
}

/// Applies `keep` for a model of `vocab` rows with tokenizer `tok`: the rule
/// (reading the corpus file if one is given) or the list file. Returns the
/// ids and a one-line description (with any note).
pub fn resolve(keep: &Keep, tok: Option<&Bpe>, vocab: usize) -> Result<(Vec<u32>, String)> {
    match keep {
        Keep::Count { n, corpus } => {
            let text;
            let corpus_text = match corpus {
                Some(p) => {
                    text = read_text(p, "--keep-corpus")?;
                    text.as_str()
                }
                None => KEEP_CORPUS,
            };
            let k = keep_list(tok, vocab, *n, corpus_text)?;
            Ok((k.ids.clone(), k.to_string()))
        }
        Keep::List(p) => {
            let text = read_text(p, "--keep-list")?;
            let (ids, note) = parse_keep_list(&text, &p.display().to_string(), vocab, tok)?;
            let mut d = format!("{} ids kept from {}", ids.len(), p.display());
            if let Some(n) = note {
                d = format!("{d} ({n})");
            }
            Ok((ids, d))
        }
    }
}

fn read_text(p: &Path, opt: &str) -> Result<String> {
    let b = std::fs::read(p).with_context(|| format!("{opt} {}", p.display()))?;
    String::from_utf8(b).map_err(|e| {
        anyhow::anyhow!(
            "{opt} {}: not UTF-8 text (byte {})",
            p.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgedecoding_tokenizer::{bytes_to_byte_level, GgufVocab};

    /// A GGUF-style vocabulary: the 256 byte tokens at ids 0..256 in byte
    /// order, merges "a b" (256), "ab c" (257), "Ġ a" (258), "x y" (259),
    /// specials `<|endoftext|>` 260 (control) and `<tool>` 261 (user
    /// defined), then fillers `[PAD262]`, `[PAD263]` (typed user defined, as
    /// some converters do) and `[PAD264]` (unused).
    fn gguf(fillers: bool) -> GgufVocab {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| bytes_to_byte_level(&[b])).collect();
        let mut types = vec![1; 256];
        for t in ["ab", "abc", "Ġa", "xy"] {
            tokens.push(t.into());
            types.push(1);
        }
        tokens.push("<|endoftext|>".into());
        types.push(3);
        tokens.push("<tool>".into());
        types.push(4);
        if fillers {
            for (id, ty) in [(262, 4), (263, 4), (264, 5)] {
                tokens.push(format!("[PAD{id}]"));
                types.push(ty);
            }
        }
        GgufVocab {
            tokens,
            merges: vec!["a b".into(), "ab c".into(), "Ġ a".into(), "x y".into()],
            token_type: types,
            pre: "qwen2".into(),
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    /// The same vocabulary as a Hugging Face `tokenizer.json` (no fillers):
    /// the tokenizer crate's fixture with this vocabulary, merges and added tokens.
    fn hf() -> Bpe {
        let mut j: serde_json::Value = serde_json::from_str(include_str!(
            "../../tokenizer/tests/fixtures/tiny_tokenizer.json"
        ))
        .unwrap();
        let g = gguf(false);
        let vocab: serde_json::Map<String, serde_json::Value> = g.tokens[..260]
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i.into()))
            .collect();
        j["model"]["vocab"] = vocab.into();
        j["model"]["merges"] = g.merges.into();
        j["added_tokens"] = serde_json::json!([
            {"id": 260, "content": "<|endoftext|>", "special": true},
            {"id": 261, "content": "<tool>", "special": false},
        ]);
        Bpe::from_tokenizer_json(&j.to_string()).unwrap()
    }

    // The corpus "abc abc ab xy ab", worked out by hand: pieces "abc", " abc",
    // " ab", " xy", " ab"; merges by rank ("a b" first):
    //   "abc" → ab c → abc(257); " abc" → Ġ(32) ab c → Ġ abc(257);
    //   " ab" → Ġ ab(256); " xy" → Ġ xy(259).
    // Normal (non-byte) counts: 256 ×2, 257 ×2, 259 ×1, 258 never.
    // Ranking: 256, 257 (a tie: by id), 259, then 258 (never seen).
    const CORPUS: &str = "abc abc ab xy ab";

    #[test]
    fn rule_worked_out_by_hand() {
        let tok = Bpe::from_gguf(&gguf(true)).unwrap();
        assert_eq!(
            tok.encode(CORPUS),
            [257, 32, 257, 32, 256, 32, 259, 32, 256]
        );
        let vocab = 265;
        let bytes: Vec<u32> = (0..256).collect();
        let with = |extra: &[u32]| {
            let mut v = [&bytes[..], extra].concat();
            v.sort_unstable();
            v
        };
        // 2 specials + 256 bytes = 258 ids first
        let k = keep_list(Some(&tok), vocab, 258, CORPUS).unwrap();
        assert_eq!(k.ids, with(&[260, 261]));
        assert_eq!((k.specials, k.bytes, k.seen, k.unseen), (2, 256, 0, 0));
        let k = keep_list(Some(&tok), vocab, 259, CORPUS).unwrap();
        assert_eq!(k.ids, with(&[256, 260, 261]));
        let k = keep_list(Some(&tok), vocab, 260, CORPUS).unwrap();
        assert_eq!(k.ids, with(&[256, 257, 260, 261]));
        let k = keep_list(Some(&tok), vocab, 261, CORPUS).unwrap();
        assert_eq!(k.ids, with(&[256, 257, 259, 260, 261]));
        assert_eq!((k.seen, k.unseen, k.fillers), (3, 0, 0));
        // 258 never seen: the last real token
        let k = keep_list(Some(&tok), vocab, 262, CORPUS).unwrap();
        assert_eq!(k.ids, (0..262).collect::<Vec<u32>>());
        assert_eq!((k.seen, k.unseen, k.fillers), (3, 1, 0));
        // beyond every real token: the fillers by id
        let k = keep_list(Some(&tok), vocab, 263, CORPUS).unwrap();
        assert_eq!(k.ids, (0..263).collect::<Vec<u32>>());
        assert_eq!(k.fillers, 1);
        assert!(k.to_string().contains("1 padding fillers"), "{k}");
        // a corpus where 259 is the most frequent
        let k = keep_list(Some(&tok), vocab, 259, "xy xy xy abc").unwrap();
        assert_eq!(k.ids, with(&[259, 260, 261]));
        // no corpus: ties everywhere, by id
        let k = keep_list(Some(&tok), vocab, 259, "").unwrap();
        assert_eq!(k.ids, with(&[256, 260, 261]));
    }

    #[test]
    fn gguf_with_fillers_and_hugging_face_without_agree() {
        let g = Bpe::from_gguf(&gguf(true)).unwrap();
        let h = hf();
        assert_eq!(h.vocab_size(), 262);
        let (cg, ch) = (classes(Some(&g), 265), classes(Some(&h), 265));
        assert_eq!(cg, ch);
        assert_eq!(
            &cg[260..],
            [
                Class::Special,
                Class::Special,
                Class::Filler,
                Class::Filler,
                Class::Filler
            ]
        );
        for n in 258..=265 {
            assert_eq!(
                keep_list(Some(&g), 265, n, CORPUS).unwrap(),
                keep_list(Some(&h), 265, n, CORPUS).unwrap(),
                "n = {n}"
            );
        }
    }

    #[test]
    fn bytes_need_not_be_the_lowest_ids() {
        // a vocabulary whose byte tokens are not at 0..256: the rule keeps
        // them by what they are, not by position
        let mut v = gguf(false);
        v.tokens.rotate_right(4);
        v.token_type.rotate_right(4);
        // rotate ids: "<|endoftext|>"... moved; rebuild merges stay valid by text
        let tok = Bpe::from_gguf(&v).unwrap();
        let k = keep_list(Some(&tok), 262, 258, "").unwrap();
        for b in 0..=255u8 {
            assert!(k.ids.binary_search(&tok.byte_token_id(b)).is_ok());
        }
        assert_eq!(k.specials, 2);
    }

    #[test]
    fn no_tokenizer_keeps_the_lowest_ids() {
        let k = keep_list(None, 100, 10, KEEP_CORPUS).unwrap();
        assert_eq!(k.ids, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn counts_out_of_range_are_errors() {
        let tok = Bpe::from_gguf(&gguf(true)).unwrap();
        let e = keep_list(Some(&tok), 265, 257, CORPUS)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("smaller than the 2 special tokens and 256 byte tokens"),
            "{e}"
        );
        let e = keep_list(Some(&tok), 265, 266, CORPUS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1..=265"), "{e}");
        assert!(keep_list(Some(&tok), 265, 0, CORPUS).is_err());
    }

    #[test]
    fn list_files_round_trip_and_are_checked() {
        let tok = Bpe::from_gguf(&gguf(true)).unwrap();
        let k = keep_list(Some(&tok), 265, 260, CORPUS).unwrap();
        let text = format_keep_list(&k.ids, 265, "test");
        assert!(text.starts_with("# keep list of test: 260 of 265"));
        let (ids, note) = parse_keep_list(&text, "f", 265, Some(&tok)).unwrap();
        assert_eq!((ids, note), (k.ids.clone(), None));
        // unsorted, repeated, comments and blank lines
        let mut t = String::from("# mine\n\n261  # tool\n261\n");
        for id in (0..256).rev() {
            t.push_str(&format!("{id}\n"));
        }
        let (ids, note) = parse_keep_list(&t, "f", 265, Some(&tok)).unwrap();
        assert_eq!(ids, [(0..256).collect::<Vec<u32>>(), vec![261]].concat());
        assert!(note
            .unwrap()
            .contains("1 repeated ids ignored (257 distinct)"));
        let e = parse_keep_list(&format!("{t}265\n"), "f", 265, Some(&tok)).unwrap_err();
        assert!(e.to_string().contains("f:261: id 265 is outside"), "{e}");
        let e = parse_keep_list("1\nx1\n", "f", 265, Some(&tok)).unwrap_err();
        assert!(e.to_string().contains("f:2: `x1` is not a token id"), "{e}");
        let e = parse_keep_list("1\n2\n260\n", "f", 265, Some(&tok)).unwrap_err();
        assert!(
            e.to_string()
                .contains("f: 254 of the 256 byte tokens are missing (the first: id 0, byte 0x00)"),
            "{e}"
        );
        assert!(parse_keep_list("# nothing\n", "f", 265, None).is_err());
        // without a tokenizer no byte tokens are required
        assert_eq!(parse_keep_list("3\n1\n", "f", 4, None).unwrap().0, [1, 3]);
    }

    #[test]
    fn built_in_corpus_is_a_real_corpus() {
        assert!(KEEP_CORPUS.len() > 50_000, "{}", KEEP_CORPUS.len());
    }
}

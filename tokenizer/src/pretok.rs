//! The Qwen2 pre-tokenizer.
//!
//! Qwen2's `tokenizer.json` (and transformers' `Qwen2Converter`) splits text with
//! [`QWEN2_PATTERN`], behaviour `Isolated` (every match is a piece; text between
//! matches would be a piece too, but the pattern matches every character):
//!
//! ```text
//! (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//! ```
//!
//! The look-ahead `\s+(?!\S)` needs a backtracking engine. Here the last two
//! alternatives are folded into one `\s+` run by the `regex` crate (leftmost-first,
//! the same preference order as a backtracking engine), and the look-ahead is
//! applied afterwards: a piece that ends in whitespace other than `\r`/`\n` can
//! only come from that last `\s+` (every other alternative ends in a letter, a
//! digit, punctuation or `\r`/`\n`), it is then a maximal whitespace run, and
//! * at the end of the text, `\s+(?!\S)` takes the whole run;
//! * before a non-space character, `\s+(?!\S)` takes all but the last character
//!   if the run has two or more, and `\s+` takes the single character otherwise.
//!
//! `tests/pretok.rs` checks this against Python's `regex` module (and HF
//! `tokenizers`, whose Oniguruma split agreed on every case) on 335 inputs.

use std::sync::OnceLock;

use regex::Regex;

/// Qwen2's pre-tokenizer pattern, exactly as in its `tokenizer.json`.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// [`QWEN2_PATTERN`] without the look-ahead alternative (see the module docs).
const LOWERED_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+";

fn regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(LOWERED_PATTERN).expect("the Qwen2 pattern compiles"))
}

/// Splits `text` into Qwen2 pre-tokenizer pieces (their concatenation is `text`).
pub fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    for_each_piece(text, |p| pieces.push(p));
    pieces
}

/// Calls `f` on each pre-tokenizer piece of `text`, in order.
pub(crate) fn for_each_piece<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let re = regex();
    let mut pos = 0;
    while pos < text.len() {
        let Some(m) = re.find_at(text, pos) else {
            // Unreachable for this pattern (it matches every character), but a
            // gap is still a piece under the `Isolated` behaviour.
            f(&text[pos..]);
            return;
        };
        if m.start() > pos {
            f(&text[pos..m.start()]);
        }
        let mut end = m.end();
        if end < text.len() && end > m.start() {
            let piece = &text[m.start()..end];
            let mut rev = piece.chars().rev();
            if let Some(last) = rev.next() {
                let from_last_alternative = last.is_whitespace() && last != '\r' && last != '\n';
                if from_last_alternative && rev.next().is_some() {
                    // `\s+(?!\S)` backs off one character before the next word.
                    end -= last.len_utf8();
                }
            }
        }
        f(&text[m.start()..end]);
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowered_pattern_is_the_original_without_the_lookahead() {
        assert_eq!(
            QWEN2_PATTERN.replace(r"|\s+(?!\S)", ""),
            LOWERED_PATTERN,
            "the two patterns must differ only by the look-ahead alternative"
        );
    }

    #[test]
    fn basic_split() {
        assert_eq!(pre_tokenize("Hello world"), ["Hello", " world"]);
        assert_eq!(pre_tokenize("a   b"), ["a", "  ", " b"]);
        assert_eq!(pre_tokenize("x \t"), ["x", " \t"]);
        assert_eq!(pre_tokenize(" x"), [" x"]);
        assert_eq!(pre_tokenize("\t\tx"), ["\t", "\tx"]);
        assert_eq!(pre_tokenize("1234"), ["1", "2", "3", "4"]);
        assert!(pre_tokenize("").is_empty());
    }
}

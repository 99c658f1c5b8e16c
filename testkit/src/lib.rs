//! Test support shared by the workspace's tests and benchmarks. Not part of
//! the product: only `[dev-dependencies]` use it.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;

/// The seeded generator every test and benchmark draws its pseudo-random
/// inputs from: the 64-bit LCG of Knuth's MMIX (multiplier
/// 6364136223846793005, increment 1442695040888963407), returning the top 53
/// bits of the state. Same seed, same stream, on every platform.
#[derive(Clone, Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value, in `[0, 2^53)`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// Uniform in `[-amp, amp)` (`amp >= 1`).
    pub fn signed(&mut self, amp: u64) -> i64 {
        (self.next() % (2 * amp)) as i64 - amp as i64
    }

    /// In `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What [`mutate_json`] writes over a number: past the edges of i64, u64 and
/// u32 and at them, negative, zero, fractional, an overflowing exponent, a
/// very long integer and a literal of another type.
pub const JSON_NUMBERS: [&str; 11] = [
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "4294967295",
    "-1",
    "0",
    "0.5",
    "1e999",
    "99999999999999999999999999",
    "null",
];

/// One seeded mutation of a JSON text's bytes, for the tests that feed
/// malformed files to a parser (the result need not be UTF-8 or JSON): a
/// truncation, 1-4 bit flips, a byte replaced by JSON punctuation or a digit,
/// a number replaced by one of [`JSON_NUMBERS`], a run of 1-8 equal bytes
/// inserted, 1-64 bytes deleted, or up to 200 bytes copied elsewhere
/// (repeated keys and entries). An empty text gets one random byte.
pub fn mutate_json(r: &mut Lcg, b: &mut Vec<u8>) {
    if b.is_empty() {
        b.push(r.next() as u8);
        return;
    }
    match r.below(7) {
        0 => b.truncate(r.below(b.len())),
        1 => {
            for _ in 0..1 + r.below(4) {
                let i = r.below(b.len());
                b[i] ^= 1 << r.below(8);
            }
        }
        2 => {
            let punct = b"{}[]\":,0123456789-./\\ ";
            let i = r.below(b.len());
            b[i] = punct[r.below(punct.len())];
        }
        3 => {
            // the first digit of each number (a digit after a non-digit)
            let starts: Vec<usize> = (1..b.len())
                .filter(|&i| b[i].is_ascii_digit() && !b[i - 1].is_ascii_digit())
                .collect();
            if !starts.is_empty() {
                let s = starts[r.below(starts.len())];
                let e = (s..b.len())
                    .find(|&i| !b[i].is_ascii_digit())
                    .unwrap_or(b.len());
                b.splice(s..e, JSON_NUMBERS[r.below(JSON_NUMBERS.len())].bytes());
            }
        }
        4 => {
            let i = r.below(b.len() + 1);
            let n = 1 + r.below(8);
            let v = r.next() as u8;
            b.splice(i..i, core::iter::repeat_n(v, n));
        }
        5 => {
            let i = r.below(b.len());
            let n = (1 + r.below(64)).min(b.len() - i);
            b.drain(i..i + n);
        }
        _ => {
            let i = r.below(b.len());
            let n = (1 + r.below(200)).min(b.len() - i);
            let piece = b[i..i + n].to_vec();
            let at = r.below(b.len() + 1);
            b.splice(at..at, piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{mutate_json, Lcg};
    use alloc::vec::Vec;

    /// Every kind of mutation happens, and none panics (empty input included).
    #[test]
    fn json_mutations_change_the_text() {
        let text = br#"{"a": [1, 22, 333], "b": {"c": "x", "d": 4096}}"#;
        let mut r = Lcg(7);
        let (mut shorter, mut longer, mut same_len, mut unchanged) = (0, 0, 0, 0);
        for _ in 0..2000 {
            let mut b = text.to_vec();
            mutate_json(&mut r, &mut b);
            match b.len().cmp(&text.len()) {
                core::cmp::Ordering::Less => shorter += 1,
                core::cmp::Ordering::Greater => longer += 1,
                core::cmp::Ordering::Equal if b == text => unchanged += 1,
                core::cmp::Ordering::Equal => same_len += 1,
            }
        }
        assert!(
            shorter > 300 && longer > 300 && same_len > 300,
            "{shorter} {longer} {same_len}"
        );
        // only a punctuation byte written over an equal one leaves it unchanged
        assert!(unchanged < 100, "{unchanged}");
        let mut empty = Vec::new();
        mutate_json(&mut r, &mut empty);
        assert_eq!(empty.len(), 1);
    }

    /// Pinned: the stream must not change, or every seeded test changes data.
    #[test]
    fn stream_is_pinned() {
        let mut r = Lcg(42);
        let v = [r.next(), r.next(), r.next()];
        // independent recomputation in u128 arithmetic
        let mut s: u128 = 42;
        for x in v {
            s = (s * 6364136223846793005 + 1442695040888963407) % (1u128 << 64);
            assert_eq!(x, (s >> 11) as u64);
        }
    }
}

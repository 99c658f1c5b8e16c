//! Byte-pair merging over token ids.
//!
//! A pre-tokenizer piece starts as one id per byte (the id of that byte's
//! byte-level character). The merge with the lowest rank among adjacent pairs is
//! applied first, the leftmost one when the same pair occurs several times; this
//! is Hugging Face `tokenizers`' `Word::merge_all` order (and, for merge lists
//! where a merge's result only takes part in later merges, the same result as
//! GPT-2's "merge every occurrence of the best pair" loop).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// `(left id, right id) -> (rank, merged id)`.
pub(crate) type MergeMap = HashMap<(u32, u32), (u32, u32)>;

/// Pieces of at most this many symbols use the simple quadratic scan.
const SHORT: usize = 48;

/// Merges `ids` in place.
pub(crate) fn merge(ids: &mut Vec<u32>, merges: &MergeMap) {
    if ids.len() <= SHORT {
        merge_scan(ids, merges);
    } else {
        merge_heap(ids, merges);
    }
}

/// Quadratic version: find the best (lowest rank, then leftmost) pair, merge it, repeat.
pub(crate) fn merge_scan(ids: &mut Vec<u32>, merges: &MergeMap) {
    while ids.len() > 1 {
        let mut best: Option<(u32, usize, u32)> = None;
        for i in 0..ids.len() - 1 {
            if let Some(&(rank, new_id)) = merges.get(&(ids[i], ids[i + 1])) {
                if best.is_none_or(|(r, _, _)| rank < r) {
                    best = Some((rank, i, new_id));
                }
            }
        }
        let Some((_, i, new_id)) = best else { break };
        ids[i] = new_id;
        ids.remove(i + 1);
    }
}

const NONE: usize = usize::MAX;

struct Symbol {
    id: u32,
    prev: usize,
    next: usize,
    alive: bool,
}

/// `O(n log n)` version for long pieces (long whitespace or punctuation runs):
/// a doubly linked list of symbols and a min-heap of candidate merges keyed by
/// `(rank, position)`; stale heap entries are skipped when popped.
pub(crate) fn merge_heap(ids: &mut Vec<u32>, merges: &MergeMap) {
    let n = ids.len();
    let mut syms: Vec<Symbol> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Symbol {
            id,
            prev: if i == 0 { NONE } else { i - 1 },
            next: if i + 1 == n { NONE } else { i + 1 },
            alive: true,
        })
        .collect();
    let mut heap = BinaryHeap::new();
    for i in 0..n.saturating_sub(1) {
        if let Some(&(rank, new_id)) = merges.get(&(ids[i], ids[i + 1])) {
            heap.push(Reverse((rank, i, new_id)));
        }
    }
    while let Some(Reverse((rank, pos, new_id))) = heap.pop() {
        if !syms[pos].alive {
            continue;
        }
        let next = syms[pos].next;
        if next == NONE {
            continue;
        }
        // Skip entries made stale by an earlier merge at `pos` or `next`.
        if merges.get(&(syms[pos].id, syms[next].id)) != Some(&(rank, new_id)) {
            continue;
        }
        let after = syms[next].next;
        syms[pos].id = new_id;
        syms[pos].next = after;
        syms[next].alive = false;
        if after != NONE {
            syms[after].prev = pos;
            if let Some(&(r, m)) = merges.get(&(new_id, syms[after].id)) {
                heap.push(Reverse((r, pos, m)));
            }
        }
        let prev = syms[pos].prev;
        if prev != NONE {
            if let Some(&(r, m)) = merges.get(&(syms[prev].id, new_id)) {
                heap.push(Reverse((r, prev, m)));
            }
        }
    }
    ids.clear();
    ids.extend(syms.iter().filter(|s| s.alive).map(|s| s.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator, so the test needs no dependency.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn scan_and_heap_agree() {
        // Symbols 0..4; merges build ids 10.. with ranks in a random order,
        // including merges of merged symbols and self-pairs.
        let mut merges = MergeMap::new();
        let pairs = [
            (0, 0),
            (1, 2),
            (2, 1),
            (10, 10),
            (3, 3),
            (11, 3),
            (0, 1),
            (14, 0),
            (12, 12),
            (2, 2),
            (13, 13),
            (1, 1),
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut ranks: Vec<u32> = (0..pairs.len() as u32).collect();
        for i in (1..ranks.len()).rev() {
            let j = (rng(&mut state) % (i as u64 + 1)) as usize;
            ranks.swap(i, j);
        }
        for (k, &(a, b)) in pairs.iter().enumerate() {
            merges.insert((a, b), (ranks[k], 10 + k as u32));
        }
        for _ in 0..2000 {
            let len = (rng(&mut state) % 80) as usize;
            let ids: Vec<u32> = (0..len).map(|_| (rng(&mut state) % 4) as u32).collect();
            let mut a = ids.clone();
            let mut b = ids.clone();
            merge_scan(&mut a, &merges);
            merge_heap(&mut b, &merges);
            assert_eq!(a, b, "input {ids:?}");
        }
    }

    #[test]
    fn lowest_rank_first_then_leftmost() {
        let mut merges = MergeMap::new();
        merges.insert((1, 1), (0, 5));
        merges.insert((2, 3), (1, 6));
        merges.insert((1, 2), (2, 7));
        let mut ids = vec![1, 1, 1];
        merge(&mut ids, &merges);
        assert_eq!(ids, [5, 1]);
        let mut ids = vec![1, 2, 3];
        merge(&mut ids, &merges);
        assert_eq!(ids, [1, 6]);
    }
}

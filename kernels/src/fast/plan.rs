//! Activations prepared for the SIMD linear layer, with the plan that keeps
//! its accumulation in 32-bit lanes (SPEC §4.4).
//!
//! Per (panel row, token) the kernels add, per pair of groups `(a, b)`,
//! `p_a·(scale_a << d_a) + p_b·(scale_b << d_b)` into an `i32` lane, where
//! `d = e − E` is the group's BFP exponent relative to the smallest exponent
//! `E` of a *segment* of consecutive pairs. At the segment's last pair (flag
//! [`FLUSH`]) the lane is widened and `lane << E` is added to an `i64`
//! accumulator. The sum is exactly SPEC §4.1's `acc`; only the order of exact
//! additions differs. A segment is closed before it could overflow:
//!
//! * `|p| ≤ 16·A` with `A = Σ|m_i|` of the group (`|q| ≤ 16`), so one group's
//!   term is at most `16·A·256·2^d = 4096·A·2^d` in magnitude; a segment is
//!   valid while `4096·Σ A_g·2^(e_g) ≤ (2^31 − 1)·2^E` for every token of the
//!   block — then every partial sum, in any order, fits `i32`;
//! * `d ≤ 6`, so `scale << d ≤ 2^14` fits the `i16` lanes of the pair
//!   multiply (and `|p| ≤ 2^14` fits `i16`).
//!
//! The plan depends only on the activations, so it is made once per call and
//! shared by every row. A pair whose two groups differ by more than 6 in
//! exponent for some token is flagged [`SPLIT`]: it is evaluated with `i64`
//! terms directly (rare; exact in any case).

use crate::bfp::{BfpBlock, BFP_EXP_MAX};
use crate::error::{check_len, check_multiple};
use crate::fast::layout::{pairs, PAIR};
use crate::{KernelError, GROUP};

/// Tokens per block: the kernels keep one accumulator per token of a block in
/// registers, and all tokens of a block share one segment plan.
pub const TOKEN_BLOCK: usize = 8;

/// Plan flag: the segment ends at this pair (widen and add, shifted by `base`).
pub const FLUSH: u8 = 1;
/// Plan flag: this pair is evaluated with `i64` terms (its exponents differ by more than 6).
pub const SPLIT: u8 = 2;

/// Largest relative exponent `d` inside a segment.
pub const D_MAX: u32 = 6;

/// One pair of activation groups of one token, ready for the kernels (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PairAct {
    /// Mantissas 0..4 of groups a and b as little-endian bytes.
    pub lo: [u32; 2],
    /// Mantissas 4..8.
    pub hi: [u32; 2],
    /// `−16·Σ m` of each group.
    pub nmsum16: [i32; 2],
    /// `d_a | d_b << 16` (a [`SPLIT`] pair: `e_a | e_b << 16`).
    pub shift: u32,
    /// The segment's base exponent `E` (read on a [`FLUSH`] pair).
    pub base: u32,
}

/// Prepared activations of `tokens` tokens: `acts[t * pairs + j]` and
/// `flags[(t / TOKEN_BLOCK) * pairs + j]`.
#[derive(Clone, Copy, Debug)]
pub struct Prepared<'a> {
    pub(crate) acts: &'a [PairAct],
    pub(crate) flags: &'a [u8],
    pub(crate) pairs: usize,
    pub(crate) tokens: usize,
}

impl<'a> Prepared<'a> {
    /// Tokens.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
    /// Entries of token block `b` (`pairs` per token) and its flags.
    pub(crate) fn block(&self, b: usize) -> (&'a [PairAct], &'a [u8], usize) {
        let t0 = b * TOKEN_BLOCK;
        let nt = (self.tokens - t0).min(TOKEN_BLOCK);
        (
            &self.acts[t0 * self.pairs..(t0 + nt) * self.pairs],
            &self.flags[b * self.pairs..(b + 1) * self.pairs],
            nt,
        )
    }
}

/// Entries [`prepare`] needs for `tokens` tokens of `cols` inputs.
pub const fn prepared_len(tokens: usize, cols: usize) -> usize {
    tokens * pairs(cols)
}

/// Flags [`prepare`] needs for `tokens` tokens of `cols` inputs.
pub const fn plan_len(tokens: usize, cols: usize) -> usize {
    tokens.div_ceil(TOKEN_BLOCK) * pairs(cols)
}

/// Prepares `x` (`tokens · cols/8` BFP blocks, token-major) for
/// [`crate::fast::linear_fast`]: fills `acts` ([`prepared_len`]) and `flags`
/// ([`plan_len`]).
pub fn prepare<'a>(
    x: &[BfpBlock],
    cols: usize,
    acts: &'a mut [PairAct],
    flags: &'a mut [u8],
) -> Result<Prepared<'a>, KernelError> {
    check_multiple("cols", cols, GROUP)?;
    let groups = cols / GROUP;
    if groups == 0 {
        return Err(KernelError::Param {
            what: "cols",
            value: 0,
            min: GROUP as i64,
            max: i64::MAX,
        });
    }
    check_multiple("activation blocks", x.len(), groups)?;
    let tokens = x.len() / groups;
    let np = pairs(cols);
    check_len("prepared activations", tokens * np, acts.len())?;
    check_len("activation plan", plan_len(tokens, cols), flags.len())?;
    if let Some(b) = x.iter().find(|b| b.e > BFP_EXP_MAX) {
        return Err(KernelError::Param {
            what: "bfp exponent",
            value: b.e as i64,
            min: 0,
            max: BFP_EXP_MAX as i64,
        });
    }
    // a missing group b (odd group count) is all-zero mantissas with a's exponent
    let block = |t: usize, g: usize| -> BfpBlock {
        if g < groups {
            x[t * groups + g]
        } else {
            BfpBlock {
                m: [0; GROUP],
                e: x[t * groups + g - 1].e,
            }
        }
    };
    for t in 0..tokens {
        for j in 0..np {
            let mut a = PairAct::default();
            for h in 0..PAIR {
                let b = block(t, PAIR * j + h);
                let le = |k: usize| {
                    u32::from_le_bytes([
                        b.m[k] as u8,
                        b.m[k + 1] as u8,
                        b.m[k + 2] as u8,
                        b.m[k + 3] as u8,
                    ])
                };
                a.lo[h] = le(0);
                a.hi[h] = le(4);
                a.nmsum16[h] = -16 * b.m.iter().map(|&v| v as i32).sum::<i32>();
            }
            acts[t * np + j] = a;
        }
    }
    flags.fill(0);
    for (bi, t0) in (0..tokens).step_by(TOKEN_BLOCK).enumerate() {
        let nt = (tokens - t0).min(TOKEN_BLOCK);
        let fl = &mut flags[bi * np..(bi + 1) * np];
        // per token: (e, A = Σ|m|) of groups a and b of pair j
        let grp = |t: usize, j: usize, h: usize| {
            let b = block(t0 + t, PAIR * j + h);
            let a: u64 = b.m.iter().map(|&v| v.unsigned_abs() as u64).sum();
            (b.e as u32, a)
        };
        let mut seg = Segment::new();
        let mut start = 0;
        for j in 0..np {
            let split = (0..nt).any(|t| grp(t, j, 0).0.abs_diff(grp(t, j, 1).0) > D_MAX);
            if split {
                if start < j {
                    close(acts, fl, np, t0, nt, start..j, &seg, &grp);
                }
                fl[j] = SPLIT;
                for t in 0..nt {
                    let (ea, eb) = (grp(t, j, 0).0, grp(t, j, 1).0);
                    acts[(t0 + t) * np + j].shift = ea | eb << 16;
                }
                seg = Segment::new();
                start = j + 1;
                continue;
            }
            let mut next = seg;
            for t in 0..nt {
                for h in 0..PAIR {
                    let (e, a) = grp(t, j, h);
                    next.add(t, e, a);
                }
            }
            if next.fits(nt) {
                seg = next;
            } else {
                close(acts, fl, np, t0, nt, start..j, &seg, &grp);
                seg = Segment::new();
                for t in 0..nt {
                    for h in 0..PAIR {
                        let (e, a) = grp(t, j, h);
                        seg.add(t, e, a);
                    }
                }
                start = j;
            }
        }
        if start < np {
            close(acts, fl, np, t0, nt, start..np, &seg, &grp);
        }
    }
    Ok(Prepared {
        acts,
        flags,
        pairs: np,
        tokens,
    })
}

/// Running bounds of an open segment, per token of a block.
#[derive(Clone, Copy)]
struct Segment {
    emin: [u32; TOKEN_BLOCK],
    emax: [u32; TOKEN_BLOCK],
    /// `Σ A_g · 2^(e_g)` (< 2^35: at most 1023 groups of `1024 · 2^15`).
    s: [u64; TOKEN_BLOCK],
}

impl Segment {
    fn new() -> Self {
        Self {
            emin: [u32::MAX; TOKEN_BLOCK],
            emax: [0; TOKEN_BLOCK],
            s: [0; TOKEN_BLOCK],
        }
    }
    fn add(&mut self, t: usize, e: u32, a: u64) {
        self.emin[t] = self.emin[t].min(e);
        self.emax[t] = self.emax[t].max(e);
        self.s[t] += a << e;
    }
    fn fits(&self, nt: usize) -> bool {
        (0..nt).all(|t| {
            self.emax[t] - self.emin[t] <= D_MAX
                && 4096 * self.s[t] <= ((1u64 << 31) - 1) << self.emin[t]
        })
    }
}

/// Writes the relative shifts of pairs `seg` and flags the last one [`FLUSH`].
#[allow(clippy::too_many_arguments)]
fn close(
    acts: &mut [PairAct],
    fl: &mut [u8],
    np: usize,
    t0: usize,
    nt: usize,
    seg: core::ops::Range<usize>,
    s: &Segment,
    grp: &dyn Fn(usize, usize, usize) -> (u32, u64),
) {
    for t in 0..nt {
        let base = s.emin[t];
        for j in seg.clone() {
            let (ea, eb) = (grp(t, j, 0).0, grp(t, j, 1).0);
            let a = &mut acts[(t0 + t) * np + j];
            a.shift = (ea - base) | (eb - base) << 16;
            a.base = base;
        }
    }
    fl[seg.end - 1] = FLUSH;
}

//! Integer softmax and single-position attention (SPEC §7).

use crate::error::{check_len, check_range};
use crate::round::{round_shift, sat_i32, shift_round_sat};
use crate::tables::EXP2_NEG_Q15;
use crate::KernelError;

/// `round(log2(e) · 2^16)` = round(94548.46); checked in the tests.
pub const LOG2E_Q16: i64 = 94548;

/// Largest score fraction `F` accepted by [`softmax_q15`]: the clamp of the
/// score distance at `2^40` must still give a zero weight, i.e.
/// `2^40 · log2(e) · 2^-F >= 25` (SPEC §7.2).
pub const SCORE_FRAC_MAX: u32 = 35;

/// Longest softmax row (and attention context).
pub const MAX_LEN: usize = 1 << 16;

/// Probabilities are `u16` in Q15: `p in [0, 32768]` means `p / 2^15`.
pub const PROB_FRAC: u32 = 15;

/// Fraction bits of the unnormalized softmax weights `e_j` (Q23, at most 2^23).
pub const WEIGHT_FRAC: u32 = 23;

/// `e = 2^(-u/256)` in Q23 for the distance `d = max - s >= 0` of a score in
/// `Q(score_frac)` (SPEC §7.2):
///
/// ```text
/// d' = min(d, 2^40)
/// u  = round_shift(d' * LOG2E_Q16, 16 + score_frac - 8)      base-2 exponent, Q8
/// e  = (u >> 8) > 24 ? 0 : round_shift(EXP2_NEG_Q15[u & 255] << 8, u >> 8)
/// ```
#[inline(always)]
pub fn exp_weight(d: i64, score_frac: u32) -> u64 {
    let d = d.min(1 << 40);
    let u = round_shift(d * LOG2E_Q16, 16 + score_frac - 8);
    let n = u >> 8;
    if n > 24 {
        0
    } else {
        round_shift((EXP2_NEG_Q15[(u & 255) as usize] as i64) << 8, n as u32) as u64
    }
}

/// Integer softmax of one row (SPEC §7.2).
///
/// `scores[j]` are `i64` in `Q(score_frac)` (real value `s_j · 2^-score_frac`).
/// Output `probs[j]` in Q15, `u16`:
///
/// ```text
/// mx   = max_j s_j
/// e_j  = exp_weight(mx - s_j, score_frac)          Q23, in [0, 2^23]
/// S    = sum_j e_j                                 in [2^23, len·2^23] <= 2^39
/// R    = floor(2^62 / S)                           one reciprocal per row, <= 2^39
/// p_j  = round_shift(e_j * R, 47)                  in [0, 2^15]; e_j * R <= 2^62
/// ```
///
/// The weights are computed twice (once for the sum, once for the
/// probabilities) instead of being stored: no scratch memory. Requires
/// `1 <= len <= 2^16` and `score_frac <= 35`.
pub fn softmax_q15(scores: &[i64], score_frac: u32, probs: &mut [u16]) -> Result<(), KernelError> {
    check_softmax(scores, score_frac, probs.len())?;
    let (mx, r) = normalizer(scores, score_frac, |_, _| {});
    for (p, &s) in probs.iter_mut().zip(scores) {
        *p = prob(exp_weight(dist(mx, s), score_frac), r);
    }
    Ok(())
}

/// [`softmax_q15`] with the weights `e_j` kept in `weights` (at least
/// `scores.len()` values) instead of computed twice: identical probabilities,
/// half the exponentials (the SIMD attention uses it).
pub fn softmax_q15_stored(
    scores: &[i64],
    score_frac: u32,
    weights: &mut [u32],
    probs: &mut [u16],
) -> Result<(), KernelError> {
    check_softmax(scores, score_frac, probs.len())?;
    if weights.len() < scores.len() {
        return Err(KernelError::Length {
            what: "weights scratch",
            expected: scores.len(),
            got: weights.len(),
        });
    }
    // e_j <= 2^23 fits u32
    let (_, r) = normalizer(scores, score_frac, |j, e| weights[j] = e as u32);
    for (p, &e) in probs.iter_mut().zip(weights.iter()) {
        *p = prob(e as u64, r);
    }
    Ok(())
}

fn check_softmax(scores: &[i64], score_frac: u32, probs: usize) -> Result<(), KernelError> {
    check_range("softmax length", scores.len() as i64, 1, MAX_LEN as i64)?;
    check_len("probs", scores.len(), probs)?;
    check_range("score_frac", score_frac as i64, 0, SCORE_FRAC_MAX as i64)
}

/// `mx − s`; it can exceed `i64` only for pathological inputs: saturate first.
fn dist(mx: i64, s: i64) -> i64 {
    (mx as i128 - s as i128).min(1 << 40) as i64
}

/// The row maximum and `R = floor(2^62 / Σ e_j)`; `each(j, e_j)` sees every weight.
fn normalizer(scores: &[i64], score_frac: u32, mut each: impl FnMut(usize, u64)) -> (i64, u64) {
    let mx = scores.iter().copied().max().unwrap_or(0);
    let mut sum = 0u64;
    for (j, &s) in scores.iter().enumerate() {
        let e = exp_weight(dist(mx, s), score_frac);
        each(j, e);
        sum += e;
    }
    (mx, (1u64 << 62) / sum)
}

/// `p_j = round_shift(e_j · R, 47)`, in `[0, 2^15]`.
fn prob(e: u64, r: u64) -> u16 {
    round_shift((e * r) as i64, 47) as u16
}

/// The argument checks of [`attention`] and its SIMD twin
/// (`fast::attention_fast`): parameters, length, `q`, both caches, and the
/// output (`out_len` values where `want_out` are needed).
pub(crate) fn check_attention(
    p: &AttnParams,
    q: &[i16],
    k_cache: &[i16],
    v_cache: &[i16],
    len: usize,
    want_out: usize,
    out_len: usize,
) -> Result<(), KernelError> {
    p.validate()?;
    check_range("attention length", len as i64, 1, MAX_LEN as i64)?;
    let kv_dim = p.n_kv_heads * p.head_dim;
    check_len("q", p.n_heads * p.head_dim, q.len())?;
    check_len("attention output", want_out, out_len)?;
    for (what, c) in [("k cache", k_cache), ("v cache", v_cache)] {
        if c.len() < len * kv_dim {
            return Err(KernelError::Length {
                what,
                expected: len * kv_dim,
                got: c.len(),
            });
        }
    }
    Ok(())
}

/// Every scratch buffer `(name, length)` holds at least `len` values.
pub(crate) fn check_scratch(len: usize, bufs: &[(&'static str, usize)]) -> Result<(), KernelError> {
    for &(what, got) in bufs {
        if got < len {
            return Err(KernelError::Length {
                what,
                expected: len,
                got,
            });
        }
    }
    Ok(())
}

/// Shape and formats of [`attention`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnParams {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (`n_heads % n_kv_heads == 0`; query head `h` reads KV
    /// head `h / (n_heads / n_kv_heads)`).
    pub n_kv_heads: usize,
    /// Head dimension, a power of 4 (so `1/sqrt(head_dim)` is a shift).
    pub head_dim: usize,
    /// Fraction bits of Q (`i16`).
    pub q_frac: u32,
    /// Fraction bits of K (`i16`).
    pub k_frac: u32,
    /// Fraction bits of V (`i16`).
    pub v_frac: u32,
    /// Fraction bits of the output (`i32`), normally 12.
    pub out_frac: u32,
}

impl AttnParams {
    /// `log2(sqrt(head_dim))`: 3 for head_dim 64.
    pub fn score_shift(&self) -> u32 {
        self.head_dim.trailing_zeros() / 2
    }

    /// Validates the parameters (SPEC §7.1).
    pub fn validate(&self) -> Result<(), KernelError> {
        check_range("n_heads", self.n_heads as i64, 1, 1024)?;
        check_range("n_kv_heads", self.n_kv_heads as i64, 1, self.n_heads as i64)?;
        crate::error::check_multiple("n_heads", self.n_heads, self.n_kv_heads)?;
        let hd = self.head_dim;
        if !(hd.is_power_of_two() && hd.trailing_zeros() % 2 == 0 && (4..=1024).contains(&hd)) {
            return Err(KernelError::Param {
                what: "head_dim (power of 4)",
                value: hd as i64,
                min: 4,
                max: 1024,
            });
        }
        check_range("q_frac", self.q_frac as i64, 0, 15)?;
        check_range("k_frac", self.k_frac as i64, 0, 15)?;
        check_range("v_frac", self.v_frac as i64, 0, 15)?;
        check_range("out_frac", self.out_frac as i64, 0, 30)?;
        check_range(
            "q_frac + k_frac + score_shift",
            (self.q_frac + self.k_frac + self.score_shift()) as i64,
            0,
            SCORE_FRAC_MAX as i64,
        )?;
        Ok(())
    }
}

/// Attention of one query position over `len` cached positions (SPEC §7).
///
/// * `q`: `n_heads * head_dim` `i16` in `Q(q_frac)` (after RoPE).
/// * `k_cache`, `v_cache`: at least `len * n_kv_heads * head_dim` `i16`, layout
///   `[position][kv_head][dim]`; positions `0..len` are read (causal length).
/// * `probs`: scratch of at least `len` `u16`.
/// * `out`: `n_heads * head_dim` `i32` in `Q(out_frac)`.
///
/// Per query head `h` (KV head `kh`):
///
/// ```text
/// s_j   = sum_d q[h][d] * k[j][kh][d]          |s| <= hd · 2^30, i64
/// p     = softmax_q15(s, q_frac + k_frac + log2(sqrt(hd)))
/// o_d   = sum_j p_j * v[j][kh][d]              |o| <= 2^15 · 2^15 · len, i64
/// out   = sat_i32(shift_round_sat(o_d, 15 + v_frac - out_frac))
/// ```
///
/// The scale `1/sqrt(head_dim)` is folded into the score fraction: no multiply.
pub fn attention(
    p: &AttnParams,
    q: &[i16],
    k_cache: &[i16],
    v_cache: &[i16],
    len: usize,
    scores: &mut [i64],
    probs: &mut [u16],
    out: &mut [i32],
) -> Result<(), KernelError> {
    check_attention(
        p,
        q,
        k_cache,
        v_cache,
        len,
        p.n_heads * p.head_dim,
        out.len(),
    )?;
    check_scratch(
        len,
        &[
            ("scores scratch", scores.len()),
            ("probs scratch", probs.len()),
        ],
    )?;
    let hd = p.head_dim;
    let kv_dim = p.n_kv_heads * hd;
    let group = p.n_heads / p.n_kv_heads;
    let score_frac = p.q_frac + p.k_frac + p.score_shift();
    let out_shift = 15 + p.v_frac as i32 - p.out_frac as i32;
    for h in 0..p.n_heads {
        let kh = h / group;
        let qh = &q[h * hd..(h + 1) * hd];
        for (j, s) in scores[..len].iter_mut().enumerate() {
            let kj = &k_cache[j * kv_dim + kh * hd..j * kv_dim + (kh + 1) * hd];
            *s = qh.iter().zip(kj).map(|(&a, &b)| a as i64 * b as i64).sum();
        }
        softmax_q15(&scores[..len], score_frac, &mut probs[..len])?;
        for d in 0..hd {
            let mut o: i64 = 0;
            for (j, &pj) in probs[..len].iter().enumerate() {
                o += pj as i64 * v_cache[j * kv_dim + kh * hd + d] as i64;
            }
            out[h * hd + d] = sat_i32(shift_round_sat(o, out_shift));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use edgedecoding_testkit::Lcg;

    #[test]
    fn log2e_constant() {
        assert_eq!(
            LOG2E_Q16,
            libm::round(core::f64::consts::LOG2_E * 65536.0) as i64
        );
    }

    fn softmax_f64(s: &[i64], frac: u32, out: &mut [f64]) {
        let sc = libm::ldexp(1.0, -(frac as i32));
        let mx = s.iter().copied().max().unwrap() as f64 * sc;
        let mut sum = 0.0;
        for (o, &v) in out.iter_mut().zip(s) {
            *o = libm::exp(v as f64 * sc - mx);
            sum += *o;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
    }

    /// Every probability within 2^-9 of the f64 softmax (absolute), on random
    /// rows, all-equal rows, one-hot rows, extreme scores and 65536-long rows.
    #[test]
    fn softmax_matches_f64() {
        let mut rng = Lcg(17);
        let mut s = [0i64; 4096];
        let mut p = [0u16; 4096];
        let mut f = [0.0f64; 4096];
        let mut worst = 0.0f64;
        for case in 0..400 {
            let len = [1usize, 2, 3, 64, 192, 1024, 4096][case % 7];
            let frac = (rng.next() % 36) as u32;
            let spread = 1u64 << (frac + (rng.next() % 5) as u32);
            for v in s[..len].iter_mut() {
                *v = (rng.next() % (2 * spread)) as i64 - spread as i64;
            }
            match case % 11 {
                0 => s[..len].fill(7),
                1 => {
                    s[..len].fill(i64::MIN / 2);
                    s[len / 2] = i64::MAX / 2;
                }
                2 => s[..len].fill(i64::MAX),
                3 => {
                    s[..len].fill(0);
                    s[0] = 1;
                    s[len - 1] = 1; // tie for max
                }
                _ => {}
            }
            softmax_q15(&s[..len], frac, &mut p[..len]).unwrap();
            softmax_f64(&s[..len], frac, &mut f[..len]);
            let mut total = 0u64;
            for j in 0..len {
                let e = (p[j] as f64 / 32768.0 - f[j]).abs();
                worst = worst.max(e);
                total += p[j] as u64;
            }
            assert!(
                worst <= 2f64.powi(-9),
                "case {case} len {len} worst {worst}"
            );
            // probabilities sum to 1 within one LSB per entry
            assert!(
                (total as i64 - 32768).unsigned_abs() <= len as u64,
                "sum {total}"
            );
        }
        // the longest row: 65536 equal scores -> each 2^15/2^16 = 0.5 LSB, rounds up to 1
        let long = std::vec![5i64; MAX_LEN];
        let mut pl = std::vec![0u16; MAX_LEN];
        softmax_q15(&long, 0, &mut pl).unwrap();
        assert!(pl.iter().all(|&v| v == 1));
    }

    #[test]
    fn attention_matches_f64_gqa() {
        let mut rng = Lcg(23);
        let params = AttnParams {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            q_frac: 8,
            k_frac: 8,
            v_frac: 10,
            out_frac: 12,
        };
        let kv_dim = 2 * 16;
        let mut worst = 0.0f64;
        for case in 0..200 {
            let len = 1 + (rng.next() % 300) as usize;
            let mut q = [0i16; 64];
            let mut k = [0i16; 300 * 32];
            let mut v = [0i16; 300 * 32];
            let amp = [64u64, 1024, 4096, 32768][case % 4];
            for x in q
                .iter_mut()
                .chain(k[..len * kv_dim].iter_mut())
                .chain(v[..len * kv_dim].iter_mut())
            {
                *x = ((rng.next() % (2 * amp)) as i64 - amp as i64).clamp(-32768, 32767) as i16;
            }
            let mut scores = [0i64; 300];
            let mut probs = [0u16; 300];
            let mut out = [0i32; 64];
            attention(&params, &q, &k, &v, len, &mut scores, &mut probs, &mut out).unwrap();
            for h in 0..4 {
                let kh = h / 2;
                let mut sc = [0.0f64; 300];
                let mut mx = f64::MIN;
                for j in 0..len {
                    let dot: f64 = (0..16)
                        .map(|d| q[h * 16 + d] as f64 * k[j * kv_dim + kh * 16 + d] as f64)
                        .sum();
                    sc[j] = dot / 65536.0 / 4.0;
                    mx = mx.max(sc[j]);
                }
                let sum: f64 = sc[..len].iter().map(|&x| (x - mx).exp()).sum();
                for d in 0..16 {
                    let o: f64 = (0..len)
                        .map(|j| {
                            (sc[j] - mx).exp() / sum * v[j * kv_dim + kh * 16 + d] as f64 / 1024.0
                        })
                        .sum();
                    let got = out[h * 16 + d] as f64 / 4096.0;
                    // max |v| / 2^10 * 2^-9 probability error, summed over len ... bounded by
                    // the observed worst; assert a stated bound relative to max |v|.
                    let vmax = amp as f64 / 1024.0;
                    let e = (got - o).abs() / vmax;
                    worst = worst.max(e);
                }
            }
        }
        assert!(worst < 2f64.powi(-7), "worst relative {worst}");
    }

    #[test]
    fn param_errors() {
        let good = AttnParams {
            n_heads: 14,
            n_kv_heads: 2,
            head_dim: 64,
            q_frac: 8,
            k_frac: 8,
            v_frac: 10,
            out_frac: 12,
        };
        assert!(good.validate().is_ok());
        assert_eq!(good.score_shift(), 3);
        assert_eq!(
            AttnParams {
                head_dim: 32,
                ..good
            }
            .validate()
            .unwrap_err(),
            KernelError::Param {
                what: "head_dim (power of 4)",
                value: 32,
                min: 4,
                max: 1024
            }
        );
        assert_eq!(
            AttnParams {
                n_kv_heads: 3,
                ..good
            }
            .validate()
            .unwrap_err(),
            KernelError::NotMultiple {
                what: "n_heads",
                value: 14,
                of: 3
            }
        );
        assert_eq!(
            AttnParams { q_frac: 16, ..good }.validate().unwrap_err(),
            KernelError::Param {
                what: "q_frac",
                value: 16,
                min: 0,
                max: 15
            }
        );
        assert_eq!(
            AttnParams { n_heads: 0, ..good }.validate().unwrap_err(),
            KernelError::Param {
                what: "n_heads",
                value: 0,
                min: 1,
                max: 1024
            }
        );
        let q = [0i16; 14 * 64];
        let mut out = [0i32; 14 * 64];
        let mut s = [0i64; 4];
        let mut pr = [0u16; 4];
        assert_eq!(
            attention(
                &good,
                &q,
                &[0; 128 * 3],
                &[0; 128 * 4],
                4,
                &mut s,
                &mut pr,
                &mut out
            )
            .unwrap_err(),
            KernelError::Length {
                what: "k cache",
                expected: 512,
                got: 384
            }
        );
        assert_eq!(
            attention(
                &good,
                &q,
                &[0; 128 * 4],
                &[0; 128 * 4],
                5,
                &mut s,
                &mut pr,
                &mut out
            )
            .unwrap_err(),
            KernelError::Length {
                what: "k cache",
                expected: 640,
                got: 512
            }
        );
        assert_eq!(
            attention(
                &good,
                &q,
                &[0; 128 * 4],
                &[0; 128 * 4],
                0,
                &mut s,
                &mut pr,
                &mut out
            )
            .unwrap_err(),
            KernelError::Param {
                what: "attention length",
                value: 0,
                min: 1,
                max: 65536
            }
        );
    }
}

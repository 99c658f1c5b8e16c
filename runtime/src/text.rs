//! Tokenizers, sampling and log-likelihoods (moved from the CLI: every face
//! tokenizes, samples and scores the same way).

use anyhow::{bail, Result};
use edgedecoding_model::Model;

/// Text <-> token ids.
pub trait Tokenizer: Send + Sync {
    /// Encodes text.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// A streaming decoder: feed ids one by one, get the text they complete
    /// (tokens that end inside a UTF-8 character wait for the next ones).
    fn streamer(&self) -> Box<dyn FnMut(u32) -> String + '_>;
    /// The text of `ids` as [`Self::streamer`] gives it piece by piece (an
    /// unfinished UTF-8 character at the end is left out).
    fn decode(&self, ids: &[u32]) -> String {
        let mut s = self.streamer();
        ids.iter().map(|&id| s(id)).collect()
    }
    /// Whether `id` is a token this tokenizer can turn into text.
    fn knows(&self, id: u32) -> bool;
    /// End of generation.
    fn is_end(&self, token: u32) -> bool;
    /// Tokens of one user turn (chat template) followed by the assistant header.
    fn chat_turn(&self, user: &str, system: Option<&str>) -> Vec<u32>;
    /// Tokens that close the assistant's turn.
    fn end_of_turn(&self) -> Vec<u32>;
    /// One-line description.
    fn describe(&self) -> String;
}

/// Bytes as tokens: the tokenizer of the built-in byte-vocabulary models.
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Only for models whose vocabulary is exactly the 256 byte values.
    pub fn for_vocab(vocab: usize) -> Result<Self> {
        if vocab != 256 {
            bail!("this model has a vocabulary of {vocab} ids but no tokenizer; the byte tokenizer needs vocab 256 (tokenizers of real checkpoints are not in this build)");
        }
        Ok(Self)
    }
}

impl Tokenizer for ByteTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn knows(&self, id: u32) -> bool {
        id < 256
    }
    fn streamer(&self) -> Box<dyn FnMut(u32) -> String + '_> {
        // UTF-8 as it completes; an invalid sequence as U+FFFD, like the BPE
        // tokenizers' stream decoder
        let mut pending: Vec<u8> = Vec::new();
        Box::new(move |b| {
            pending.push(b as u8);
            utf8_drain(&mut pending)
        })
    }
    fn is_end(&self, _: u32) -> bool {
        false
    }
    fn chat_turn(&self, user: &str, _: Option<&str>) -> Vec<u32> {
        format!("{user}\n").bytes().map(u32::from).collect()
    }
    fn end_of_turn(&self) -> Vec<u32> {
        vec![b'\n' as u32]
    }
    fn describe(&self) -> String {
        "bytes (built-in model)".into()
    }
}

/// The complete UTF-8 text at the front of `pending` (invalid sequences as
/// U+FFFD), leaving an incomplete last character in it.
fn utf8_drain(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(pending) {
            Ok(t) => {
                out.push_str(t);
                pending.clear();
                return out;
            }
            Err(e) => {
                let ok = e.valid_up_to();
                out.push_str(std::str::from_utf8(&pending[..ok]).unwrap_or_default());
                match e.error_len() {
                    Some(bad) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        pending.drain(..ok + bad);
                    }
                    None => {
                        pending.drain(..ok);
                        return out;
                    }
                }
            }
        }
    }
}

/// Token ids as text, for models without a tokenizer (the full-size built-in
/// model): a prompt's bytes become ids 0..255, generated ids print as `<id>`.
pub struct IdTokenizer;

impl Tokenizer for IdTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn streamer(&self) -> Box<dyn FnMut(u32) -> String + '_> {
        Box::new(|t| format!("<{t}>"))
    }
    fn knows(&self, _: u32) -> bool {
        true
    }
    fn is_end(&self, _: u32) -> bool {
        false
    }
    fn chat_turn(&self, user: &str, _: Option<&str>) -> Vec<u32> {
        self.encode(user)
    }
    fn end_of_turn(&self) -> Vec<u32> {
        vec![]
    }
    fn describe(&self) -> String {
        "none (prompt bytes as ids, output as <id>)".into()
    }
}

/// The Qwen2 BPE tokenizer of a real checkpoint, with the Qwen chat template.
/// For a model with a pruned vocabulary, `keep` lists the kept ids (sorted):
/// a token outside it is spelled with its single-byte tokens instead (every
/// byte token is kept), so any text can be fed to the model.
pub struct QwenTokenizer(pub edgedecoding_tokenizer::Tokenizer, pub Option<Vec<u32>>);

impl QwenTokenizer {
    fn keep_only(&self, ids: Vec<u32>) -> Vec<u32> {
        let Some(keep) = &self.1 else { return ids };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if keep.binary_search(&id).is_ok() {
                out.push(id);
                continue;
            }
            let spelled: Option<Vec<u32>> = self.0.id_to_bytes(id).ok().and_then(|bytes| {
                bytes
                    .iter()
                    .map(|&b| {
                        self.0
                            .token_to_id(&edgedecoding_tokenizer::bytes_to_byte_level(&[b]))
                            .filter(|t| keep.binary_search(t).is_ok())
                    })
                    .collect()
            });
            // unspellable (should not happen: byte tokens are always kept): keep the id,
            // the decoder then reports it
            out.extend(spelled.unwrap_or_else(|| vec![id]));
        }
        out
    }
}

/// The system prompt of `chat` (the short Qwen2 one: every word of it is in
/// a pruned 37984-token vocabulary, unlike Qwen2.5's default).
pub const SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// `<|endoftext|>`.
pub const ENDOFTEXT: u32 = 151_643;
/// `<|im_end|>`, the end of a turn of the Instruct model.
pub const IM_END: u32 = 151_645;

impl Tokenizer for QwenTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.keep_only(self.0.encode(text))
    }
    fn streamer(&self) -> Box<dyn FnMut(u32) -> String + '_> {
        let mut s = self.0.stream_decoder().skip_special(true);
        Box::new(move |id| s.push(id).unwrap_or_default())
    }
    fn knows(&self, id: u32) -> bool {
        self.0.id_to_bytes(id).is_ok()
    }
    fn is_end(&self, token: u32) -> bool {
        token == ENDOFTEXT || token == IM_END || Some(token) == self.0.eos_id()
    }
    fn chat_turn(&self, user: &str, system: Option<&str>) -> Vec<u32> {
        use edgedecoding_tokenizer::{chat_prompt, Role};
        let text = if let Some(system) = system {
            chat_prompt(&[(Role::System, system), (Role::User, user)], true)
        } else {
            format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
        };
        self.keep_only(self.0.encode(&text))
    }
    fn end_of_turn(&self) -> Vec<u32> {
        self.keep_only(self.0.encode("<|im_end|>\n"))
    }
    fn describe(&self) -> String {
        format!(
            "Qwen2 byte-level BPE, {} tokens, {} merges",
            self.0.vocab_size(),
            self.0.merge_count()
        )
    }
}

/// Greedy or sampled next tokens from Q12 logits (llama.cpp's options): a
/// repeat penalty over the last `repeat_last_n` tokens, then top-k, the
/// softmax at the temperature, top-p, min-p. Temperature 0 without a penalty
/// is the decoder's greedy token (the accelerator's behaviour).
pub struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    min_p: f32,
    penalty: f32,
    last_n: usize,
    /// Rows of the most recent tokens (prompt and output), oldest first.
    recent: std::collections::VecDeque<usize>,
    state: u64,
}

impl Sampler {
    /// Temperature 0 is greedy; `top_k` 0 keeps every token; `top_p` in `(0, 1]`.
    pub fn new(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> Result<Self> {
        if !(temperature >= 0.0 && temperature.is_finite()) {
            bail!("temperature must be >= 0");
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            bail!("top_p must be in (0, 1]");
        }
        Ok(Self {
            temperature,
            top_k,
            top_p,
            min_p: 0.0,
            penalty: 1.0,
            last_n: 0,
            recent: Default::default(),
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
        })
    }

    /// The greedy sampler (temperature 0, no penalty).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            penalty: 1.0,
            last_n: 0,
            recent: Default::default(),
            state: 0,
        }
    }

    /// Drops tokens whose probability is below `min_p` times the most likely
    /// one's; `min_p` in `[0, 1]` (0: off).
    pub fn with_min_p(mut self, min_p: f32) -> Result<Self> {
        if !(0.0..=1.0).contains(&min_p) {
            bail!("min_p must be in [0, 1]");
        }
        self.min_p = min_p;
        Ok(self)
    }

    /// llama.cpp's repeat penalty: the logit `l` of a token among the last
    /// `last_n` becomes `l / penalty` when positive, `l * penalty` otherwise;
    /// `penalty` > 0 (1: off).
    pub fn with_repeat_penalty(mut self, penalty: f32, last_n: usize) -> Result<Self> {
        if !(penalty > 0.0 && penalty.is_finite()) {
            bail!("repeat_penalty must be > 0");
        }
        self.penalty = penalty;
        self.last_n = last_n;
        Ok(self)
    }

    fn penalised(&self) -> bool {
        self.penalty != 1.0 && self.last_n > 0
    }

    /// Records a token (its row) for the repeat penalty.
    pub fn observe(&mut self, row: usize) {
        if !self.penalised() {
            return;
        }
        if self.recent.len() == self.last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(row);
    }

    fn uniform(&mut self) -> f64 {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next token: `greedy` when the temperature is 0 and no penalty
    /// applies, else from [`Self::sample_row`]; recorded for the penalty.
    pub fn pick(&mut self, logits: &[i32], model: &Model<'_>, greedy: u32) -> u32 {
        if self.temperature == 0.0 && !self.penalised() {
            return greedy;
        }
        let row = self.sample_row(logits);
        self.observe(row);
        model.token_of_row(row)
    }

    /// A row drawn from `softmax(l / temperature)` of the (penalised) logits
    /// `l = logits / 4096`, restricted to the `top_k` largest (ties: lower row
    /// first), then to the smallest prefix whose probability reaches `top_p`,
    /// then to rows at least `min_p` times as likely as the first. With
    /// temperature 0: the first largest (penalised) row. Empty `logits`: row 0.
    pub fn sample_row(&mut self, logits: &[i32]) -> usize {
        if logits.is_empty() {
            return 0;
        }
        let mut l: Vec<f64> = logits.iter().map(|&v| v as f64 / 4096.0).collect();
        if self.penalised() {
            for &r in &self.recent {
                if let Some(v) = l.get_mut(r) {
                    *v = if *v > 0.0 {
                        *v / self.penalty as f64
                    } else {
                        *v * self.penalty as f64
                    };
                }
            }
        }
        let order = |a: &usize, b: &usize| l[*b].total_cmp(&l[*a]).then(a.cmp(b));
        if self.temperature == 0.0 {
            return (0..l.len()).min_by(order).unwrap_or(0);
        }
        let mut idx: Vec<usize> = (0..l.len()).collect();
        idx.sort_by(order);
        if self.top_k > 0 {
            idx.truncate(self.top_k);
        }
        let mx = l[idx[0]];
        let mut p: Vec<f64> = idx
            .iter()
            .map(|&i| ((l[i] - mx) / self.temperature as f64).exp())
            .collect();
        let sum: f64 = p.iter().sum();
        let mut acc = 0.0;
        let mut keep = p.len();
        for (k, v) in p.iter_mut().enumerate() {
            *v /= sum;
            acc += *v;
            if acc >= self.top_p as f64 {
                keep = k + 1;
                break;
            }
        }
        // p[0] is the largest: min-p keeps a prefix too
        let floor = self.min_p as f64 * p[0];
        keep = p[..keep].iter().take_while(|&&v| v >= floor).count().max(1);
        let total: f64 = p[..keep].iter().sum();
        let mut r = self.uniform() * total;
        for k in 0..keep {
            r -= p[k];
            if r <= 0.0 {
                return idx[k];
            }
        }
        idx[keep - 1]
    }
}

/// Negative log-likelihood of row `target` under Q12 logits.
pub fn nll_q12(logits: &[i32], target: usize) -> f64 {
    let mx = logits.iter().copied().max().unwrap_or(0) as f64 / 4096.0;
    let lse = logits
        .iter()
        .map(|&v| (v as f64 / 4096.0 - mx).exp())
        .sum::<f64>()
        .ln()
        + mx;
    lse - logits[target] as f64 / 4096.0
}

/// Negative log-likelihood of row `target` under float logits.
pub fn nll_f32(logits: &[f32], target: usize) -> f64 {
    let mx = logits.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
    let lse = logits
        .iter()
        .map(|&v| (v as f64 - mx).exp())
        .sum::<f64>()
        .ln()
        + mx;
    lse - logits[target] as f64
}

/// `KL(P || Q)` in nats between the softmaxes of two logit rows of length
/// `n`, given as functions of the row index (in nats).
fn kl_rows(n: usize, p: impl Fn(usize) -> f64, q: impl Fn(usize) -> f64) -> f64 {
    let lse = |f: &dyn Fn(usize) -> f64| {
        let m = (0..n).map(f).fold(f64::MIN, f64::max);
        (0..n).map(|i| (f(i) - m).exp()).sum::<f64>().ln() + m
    };
    let (lp, lq) = (lse(&p), lse(&q));
    let kl = (0..n)
        .map(|i| {
            let a = p(i) - lp;
            a.exp() * (a - (q(i) - lq))
        })
        .sum::<f64>();
    kl.max(0.0)
}

/// `KL(P_float || P_int)` in nats between the softmax of float logits and of
/// Q12 integer logits over the same rows (`None` if the lengths differ).
pub fn kl_f32_q12(float: &[f32], int: &[i32]) -> Option<f64> {
    if float.len() != int.len() || float.is_empty() {
        return None;
    }
    Some(kl_rows(
        float.len(),
        |i| float[i] as f64,
        |i| int[i] as f64 / 4096.0,
    ))
}

/// `KL(P || Q)` in nats between the softmaxes of two float logit rows
/// (`None` if the lengths differ).
pub fn kl_f32(p: &[f32], q: &[f32]) -> Option<f64> {
    if p.len() != q.len() || p.is_empty() {
        return None;
    }
    Some(kl_rows(p.len(), |i| p[i] as f64, |i| q[i] as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_is_zero_for_equal_and_right_for_two_rows() {
        let f = [0.5f32, -1.25, 2.0];
        let q: Vec<i32> = f.iter().map(|&v| (v * 4096.0) as i32).collect();
        assert!(kl_f32_q12(&f, &q).unwrap() < 1e-12);
        // p = (1/2, 1/2), q = softmax(ln 3, 0) = (3/4, 1/4)
        let q = [(3f64.ln() * 4096.0).round() as i32, 0];
        let want = 0.5 * (0.5f64 / 0.75).ln() + 0.5 * (0.5f64 / 0.25).ln();
        assert!((kl_f32_q12(&[0.0, 0.0], &q).unwrap() - want).abs() < 1e-4);
        assert_eq!(kl_f32_q12(&[0.0], &[0, 0]), None);
    }

    /// Softmax of Q12 logits at temperature `t`, computed directly (the oracle).
    fn softmax(logits: &[i32], t: f64) -> Vec<f64> {
        let e: Vec<f64> = logits
            .iter()
            .map(|&l| (l as f64 / 4096.0 / t).exp())
            .collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    fn histogram(s: &mut Sampler, logits: &[i32], n: usize) -> Vec<f64> {
        let mut h = vec![0usize; logits.len()];
        for _ in 0..n {
            h[s.sample_row(logits)] += 1;
        }
        h.iter().map(|&c| c as f64 / n as f64).collect()
    }

    const LOGITS: [i32; 6] = [4096, 2 * 4096, 0, 2 * 4096 - 1000, -4096, 3000];

    #[test]
    fn same_seed_same_draws_other_seed_other_draws() {
        let draw = |seed| {
            let mut s = Sampler::new(1.0, 0, 1.0, seed).unwrap();
            (0..200).map(|_| s.sample_row(&LOGITS)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn full_support_follows_the_softmax_at_each_temperature() {
        for t in [0.5f32, 1.0, 2.0] {
            let mut s = Sampler::new(t, 0, 1.0, 42).unwrap();
            let got = histogram(&mut s, &LOGITS, 40_000);
            let want = softmax(&LOGITS, t as f64);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // 4.5 standard deviations of a binomial frequency
                let tol = 4.5 * (w * (1.0 - w) / 40_000.0).sqrt() + 1e-9;
                assert!((g - w).abs() <= tol, "T {t} row {i}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn top_k_keeps_exactly_the_k_largest_renormalised() {
        let mut s = Sampler::new(1.0, 3, 1.0, 3).unwrap();
        let got = histogram(&mut s, &LOGITS, 30_000);
        // the 3 largest: rows 1, 3, 0 (5 = 3000 < 4096 is the 4th)
        let kept = [1usize, 3, 0];
        let p = softmax(&[LOGITS[1], LOGITS[3], LOGITS[0]], 1.0);
        for (i, &g) in got.iter().enumerate() {
            match kept.iter().position(|&k| k == i) {
                Some(j) => assert!((g - p[j]).abs() < 0.015, "row {i}: {g} vs {}", p[j]),
                None => assert_eq!(g, 0.0, "row {i} is outside the top 3"),
            }
        }
        // ties: the lower row wins the last place
        let tie = [5, 9, 9, 9];
        let mut s = Sampler::new(1.0, 2, 1.0, 3).unwrap();
        let got = histogram(&mut s, &tie, 5_000);
        assert_eq!((got[0], got[3]), (0.0, 0.0), "{got:?}");
        assert!(got[1] > 0.4 && got[2] > 0.4, "{got:?}");
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_p() {
        // probabilities 0.5, 0.3, 0.15, 0.05 (logits = ln p in Q12)
        let p = [0.5f64, 0.3, 0.15, 0.05];
        let logits: Vec<i32> = p.iter().map(|v| (v.ln() * 4096.0).round() as i32).collect();
        for (top_p, support) in [(0.4f32, 1usize), (0.7, 2), (0.8, 2), (0.9, 3), (1.0, 4)] {
            let mut s = Sampler::new(1.0, 0, top_p, 11).unwrap();
            let got = histogram(&mut s, &logits, 20_000);
            let q = softmax(&logits[..support], 1.0);
            for i in 0..4 {
                if i < support {
                    assert!(
                        (got[i] - q[i]).abs() < 0.02,
                        "top_p {top_p} row {i}: {got:?}"
                    );
                } else {
                    assert_eq!(got[i], 0.0, "top_p {top_p}: row {i} outside the nucleus");
                }
            }
        }
    }

    #[test]
    fn byte_streamer_prints_utf8_and_replaces_invalid_bytes() {
        let t = ByteTokenizer;
        let mut st = t.streamer();
        let text: String = "a\\é€😀\n"
            .bytes()
            .chain([0xff, b'x', 0xe2, 0x82, b'y', 0xe2])
            .map(|b| st(b as u32))
            .collect();
        // "é" and "€" come out when complete; 0xff and the cut 0xe2 0x82 are
        // one U+FFFD each; the trailing 0xe2 is still pending
        assert_eq!(text, "a\\é€😀\n\u{fffd}x\u{fffd}y");
    }

    #[test]
    fn min_p_keeps_rows_at_least_min_p_times_the_first() {
        let p = [0.5f64, 0.3, 0.15, 0.05];
        let logits: Vec<i32> = p.iter().map(|v| (v.ln() * 4096.0).round() as i32).collect();
        // floor 0.35 * 0.5 = 0.175: rows 0 and 1 remain
        let mut s = Sampler::new(1.0, 0, 1.0, 5)
            .unwrap()
            .with_min_p(0.35)
            .unwrap();
        let got = histogram(&mut s, &logits, 20_000);
        let q = softmax(&logits[..2], 1.0);
        assert!(
            (got[0] - q[0]).abs() < 0.02 && (got[1] - q[1]).abs() < 0.02,
            "{got:?}"
        );
        assert_eq!((got[2], got[3]), (0.0, 0.0), "{got:?}");
        assert!(Sampler::new(1.0, 0, 1.0, 5)
            .unwrap()
            .with_min_p(1.5)
            .is_err());
    }

    #[test]
    fn repeat_penalty_divides_positive_and_multiplies_negative_logits() {
        // rows 0 and 1 seen: 2.0 -> 1.0 (below row 2's 1.5); -1.0 -> -2.0
        let logits = [2 * 4096, -4096, 6144, 0];
        let mut s = Sampler::new(0.0, 0, 1.0, 1)
            .unwrap()
            .with_repeat_penalty(2.0, 2)
            .unwrap();
        assert_eq!(s.sample_row(&logits), 0, "nothing seen yet");
        s.observe(0);
        s.observe(1);
        assert_eq!(s.sample_row(&logits), 2, "greedy after the penalty");
        let mut t = Sampler::new(1.0, 0, 1.0, 8)
            .unwrap()
            .with_repeat_penalty(2.0, 2)
            .unwrap();
        t.observe(0);
        t.observe(1);
        let got = histogram(&mut t, &logits, 40_000);
        let want = softmax(&[4096, -2 * 4096, 6144, 0], 1.0);
        for i in 0..4 {
            assert!(
                (got[i] - want[i]).abs() < 0.015,
                "row {i}: {got:?} vs {want:?}"
            );
        }
        // only the last `last_n` count: after two more tokens row 0 is free again
        s.observe(3);
        s.observe(3);
        assert_eq!(s.sample_row(&logits), 0);
        assert!(Sampler::new(1.0, 0, 1.0, 1)
            .unwrap()
            .with_repeat_penalty(0.0, 4)
            .is_err());
    }

    #[test]
    fn temperature_zero_is_the_first_largest_and_bad_parameters_are_errors() {
        let mut s = Sampler::new(0.0, 0, 1.0, 1).unwrap();
        assert_eq!(s.sample_row(&[3, 9, 9, 1]), 1);
        assert_eq!(s.sample_row(&[]), 0);
        for (t, p) in [
            (-0.1f32, 1.0f32),
            (f32::NAN, 1.0),
            (f32::INFINITY, 1.0),
            (1.0, 0.0),
            (1.0, 1.5),
        ] {
            assert!(Sampler::new(t, 0, p, 1).is_err(), "T {t} top_p {p}");
        }
    }
}

//! The timed run of `bench` (moved from the CLI: every face measures the same way).

use std::time::Instant;

use anyhow::Result;
use edgedecoding_model::{Backend, Decoder, Model};

/// The benchmark prompt: `n` tokens spread over the kept vocabulary (kept
/// row `7919 · i mod n_kept`).
pub fn prompt(model: &Model<'_>, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| model.token_of_row((i * 7919) % model.config.n_kept))
        .collect()
}

/// Resets `d`, prefills `prompt` (the token `first` alone when it is empty),
/// then decodes `decode` tokens greedily; returns (prefill s, decode s).
pub fn time_run<B: Backend>(
    d: &mut Decoder<'_, '_, B>,
    prompt: &[u32],
    first: u32,
    decode: usize,
) -> Result<(f64, f64)> {
    d.reset();
    let t0 = Instant::now();
    let mut next = if prompt.is_empty() {
        d.prefill(&[first])?
    } else {
        d.prefill(prompt)?
    };
    let tp = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..decode {
        next = d.decode(next)?;
    }
    Ok((tp, t1.elapsed().as_secs_f64()))
}

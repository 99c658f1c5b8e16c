//! The built-in default model (feature `std`): float weights drawn from a
//! seeded generator with statistics resembling a trained Qwen2 model, then
//! quantized by the same offline path a real checkpoint takes
//! ([`crate::convert::quantize_model`]). Same seed and config, same bytes.

use std::vec;
use std::vec::Vec;

use crate::config::Config;
use crate::convert::{quantize_model, ConvertOptions, Progress};
use crate::error::ModelError;
use crate::float_ref::{FloatLayer, FloatModel};

/// Default seed of the built-in model.
pub const DEFAULT_SEED: u64 = 0x5eed_0e0d_ec0d_e001;

/// SplitMix64: a small, well-mixed, seedable generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller with `libm`, deterministic everywhere).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2)
    }
    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A matrix `[rows][cols]` of `N(0, std^2)` values with per-row scales
/// `exp(N(0, 0.25^2))` (trained matrices have uneven row norms).
fn matrix(rng: &mut Rng, rows: usize, cols: usize, std: f64) -> Vec<f32> {
    let mut w = vec![0.0f32; rows * cols];
    for r in 0..rows {
        let rs = std * libm::exp(0.25 * rng.normal());
        for v in &mut w[r * cols..(r + 1) * cols] {
            *v = (rng.normal() * rs) as f32;
        }
    }
    w
}

fn vector(rng: &mut Rng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    (0..n).map(|_| (mean + std * rng.normal()) as f32).collect()
}

/// Norm gammas: mostly around 1, a few large channels (Qwen2's gammas reach ~17).
fn gammas(rng: &mut Rng, n: usize, mean: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let g = (mean * (1.0 + 0.25 * rng.normal())).abs() + 0.05;
            (if rng.below(128) == 0 { g * 4.0 } else { g }) as f32
        })
        .collect()
}

/// Draws the float weights of a model of shape `config` from `seed`.
pub fn float_model(config: &Config, seed: u64) -> Result<FloatModel, ModelError> {
    config.validate()?;
    let c = config;
    let mut rng = Rng::new(seed);
    let (h, kv, f) = (c.hidden, c.kv_dim(), c.ffn);
    let hs = 1.0 / libm::sqrt(h as f64);
    let fs = 1.0 / libm::sqrt(f as f64);
    // Embedding: N(0, 0.02^2) rows with per-token scale, clipped like real ones.
    let mut emb = vec![0.0f32; c.n_kept * h];
    for r in 0..c.n_kept {
        let s = 0.02 * libm::exp(0.2 * rng.normal());
        for v in &mut emb[r * h..(r + 1) * h] {
            *v = (rng.normal() * s).clamp(-0.25, 0.25) as f32;
        }
    }
    let mut layers = Vec::with_capacity(c.n_layers);
    for _ in 0..c.n_layers {
        layers.push(FloatLayer {
            attn_norm: gammas(&mut rng, h, 1.0),
            q_w: matrix(&mut rng, h, h, hs),
            q_b: vector(&mut rng, h, 0.0, 0.1),
            k_w: matrix(&mut rng, kv, h, hs),
            k_b: vector(&mut rng, kv, 0.0, 0.5),
            v_w: matrix(&mut rng, kv, h, hs),
            v_b: vector(&mut rng, kv, 0.0, 0.02),
            o_w: matrix(&mut rng, h, h, 0.5 * hs),
            ffn_norm: gammas(&mut rng, h, 1.0),
            gate: matrix(&mut rng, f, h, hs),
            up: matrix(&mut rng, f, h, hs),
            down: matrix(&mut rng, h, f, 0.5 * fs),
        });
    }
    let keep = if c.pruned() {
        // every 4th id plus the top ids (where Qwen keeps its special tokens)
        let mut k: Vec<u32> = (0..c.n_kept as u32)
            .map(|i| i * (c.vocab / c.n_kept) as u32)
            .collect();
        k.dedup();
        Some(k)
    } else {
        None
    };
    Ok(FloatModel {
        config: *c,
        emb,
        head: None,
        layers,
        final_norm: gammas(&mut rng, h, 4.0),
        eps: 1e-6,
        keep,
    })
}

/// Calibration tokens of the built-in model: a seeded pseudo-text.
pub fn calib_tokens(config: &Config, seed: u64, n: usize) -> Vec<u32> {
    let mut rng = Rng::new(seed ^ 0xca11_b8a7);
    let ids: Vec<u32> = (0..n)
        .map(|_| rng.below(config.n_kept as u64) as u32)
        .collect();
    match config.pruned() {
        false => ids,
        true => ids
            .iter()
            .map(|&i| i * (config.vocab / config.n_kept) as u32)
            .collect(),
    }
}

/// The built-in integer model as `.edq` bytes.
pub fn generate(
    config: &Config,
    seed: u64,
    threads: usize,
    progress: Progress<'_>,
) -> Result<Vec<u8>, ModelError> {
    progress("generate", 0, 1);
    let fm = float_model(config, seed)?;
    progress("generate", 1, 1);
    let opts = ConvertOptions {
        calib_tokens: calib_tokens(config, seed, 16.min(config.ctx)),
        threads,
        tokenizer: None,
        quantizer: crate::convert::Quantizer::Rtn,
        gptq_tokens: Vec::new(),
    };
    quantize_model(&fm, &opts, progress)
}

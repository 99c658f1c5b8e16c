//! One pass of the decoder over a chunk of up to 8 tokens with every
//! intermediate kept (the values the hardware exposes between operators).
//!
//! This is a step-by-step copy of `edgedecoding_model::Decoder`'s pass (same
//! kernels, same order, same formats: docs/SPEC.md §9.3), written out so each
//! stage can be captured without touching the model crate. It is checked
//! against the decoder every time a suite is written ([`check_against_decoder`]):
//! the K/V cache rows of every layer and the logits of every token must be
//! identical, or the suite is not written.

use anyhow::{bail, Result};
use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::attention::{attention, AttnParams};
use edgedecoding_kernels::bfp::{quantize_bfp, BfpBlock};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::linear::linear;
use edgedecoding_kernels::residual::residual_add;
use edgedecoding_kernels::rmsnorm::rmsnorm;
use edgedecoding_kernels::rope::rope_apply;
use edgedecoding_kernels::round::sat_i16;
use edgedecoding_kernels::silu::swiglu;
use edgedecoding_kernels::{ACT_FRAC, GROUP, TOKENS_PER_PASS};
use edgedecoding_model::{Backend, Decoder, Model};

/// Every intermediate of one decoder layer for `n` tokens, token-major.
#[derive(Clone, Debug, Default)]
pub struct LayerCapture {
    /// Residual input, `[n][C]` Q12.
    pub x_in: Vec<i32>,
    /// K cache rows the chunk found, positions `0..start`, `[start][kv_dim]`.
    pub k_cache_in: Vec<i16>,
    /// V cache rows the chunk found, positions `0..start`.
    pub v_cache_in: Vec<i16>,
    /// Attention RMSNorm output, `[n][C]` Q12.
    pub attn_norm: Vec<i32>,
    /// Its BFP blocks, `[n][C/8]`.
    pub attn_bfp: Vec<BfpBlock>,
    /// q projection (with bias), `[n][C]` Q(q_frac) i32.
    pub q: Vec<i32>,
    /// k projection (with bias), `[n][kv_dim]` Q(k_frac) i32.
    pub k: Vec<i32>,
    /// v projection (with bias), `[n][kv_dim]` Q(v_frac) i32.
    pub v: Vec<i32>,
    /// Rotated queries, `[n][C]` i16 (saturated, then RoPE).
    pub q_rot: Vec<i16>,
    /// K cache rows written (saturated, then RoPE), `[n][kv_dim]` i16.
    pub k_row: Vec<i16>,
    /// V cache rows written (saturated), `[n][kv_dim]` i16.
    pub v_row: Vec<i16>,
    /// Attention output, `[n][C]` Q12.
    pub attn: Vec<i32>,
    /// Its BFP blocks.
    pub o_bfp: Vec<BfpBlock>,
    /// Output projection, `[n][C]` Q12.
    pub o_proj: Vec<i32>,
    /// Residual after attention, `[n][C]` Q12.
    pub x_attn: Vec<i32>,
    /// MLP RMSNorm output, `[n][C]` Q12.
    pub mlp_norm: Vec<i32>,
    /// Its BFP blocks.
    pub mlp_bfp: Vec<BfpBlock>,
    /// Gate projection, `[n][F]` Q12.
    pub gate: Vec<i32>,
    /// Up projection, `[n][F]` Q12.
    pub up: Vec<i32>,
    /// SwiGLU, `[n][F]` Q12.
    pub swiglu: Vec<i32>,
    /// Its BFP blocks.
    pub down_bfp: Vec<BfpBlock>,
    /// Down projection, `[n][C]` Q12.
    pub down: Vec<i32>,
    /// Residual out, `[n][C]` Q12.
    pub x_out: Vec<i32>,
}

/// One chunk through the whole model.
#[derive(Clone, Debug, Default)]
pub struct ChunkCapture {
    /// Position of the first token.
    pub start: usize,
    /// Full token ids.
    pub tokens: Vec<u32>,
    /// Embedding rows (pruned ids).
    pub rows: Vec<u32>,
    /// Embedding lookup, `[n][C]` Q12 (= layer 0's `x_in`).
    pub x_embed: Vec<i32>,
    /// Per layer.
    pub layers: Vec<LayerCapture>,
    /// Final RMSNorm, `[n][C]` Q12.
    pub final_norm: Vec<i32>,
    /// Its BFP blocks.
    pub final_bfp: Vec<BfpBlock>,
    /// Logits, `[n][n_kept]` Q12.
    pub logits: Vec<i32>,
    /// Argmax per token (pruned id, lowest on ties).
    pub argmax: Vec<u32>,
}

/// K and V caches of every layer, `[layer][ctx * kv_dim]`, grouped-query
/// layout `[position][kv_head][dim]`.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// K rows (after RoPE).
    pub k: Vec<Vec<i16>>,
    /// V rows.
    pub v: Vec<Vec<i16>>,
}

impl KvCache {
    /// An empty cache for a model.
    pub fn new(m: &Model<'_>) -> Self {
        let n = m.config.ctx * m.config.kv_dim();
        Self {
            k: vec![vec![0; n]; m.config.n_layers],
            v: vec![vec![0; n]; m.config.n_layers],
        }
    }

    /// A copy of a decoder's cache.
    pub fn of_decoder<B: Backend>(d: &Decoder<'_, '_, B>) -> Self {
        let l = d.model().config.n_layers;
        Self {
            k: (0..l).map(|i| d.state().k_cache(i).to_vec()).collect(),
            v: (0..l).map(|i| d.state().v_cache(i).to_vec()).collect(),
        }
    }
}

fn bfp(x: &[i32]) -> Result<Vec<BfpBlock>> {
    let mut b = vec![BfpBlock::default(); x.len() / GROUP];
    quantize_bfp(x, &mut b)?;
    Ok(b)
}

/// Runs `tokens` (at most 8, full ids) at positions `start..` through every
/// layer, writing their K/V rows into `cache`, and the final norm and
/// `head` for every token. `cos`/`sin` are the RoPE tables `[ctx][head_dim/2]`.
pub fn run_chunk<H: ApotWeights + ?Sized>(
    model: &Model<'_>,
    head: &H,
    cache: &mut KvCache,
    cos: &[i16],
    sin: &[i16],
    tokens: &[u32],
    start: usize,
) -> Result<ChunkCapture> {
    let c = model.config;
    let n = tokens.len();
    if n == 0 || n > TOKENS_PER_PASS || start + n > c.ctx {
        bail!(
            "chunk of {n} tokens at position {start} does not fit (8 tokens, {} positions)",
            c.ctx
        );
    }
    let (h, kvd, f, hd) = (c.hidden, c.kv_dim(), c.ffn, c.head_dim);
    let half = hd / 2;
    let eps = model.globals.eps_q40;
    let mut cap = ChunkCapture {
        start,
        tokens: tokens.to_vec(),
        ..Default::default()
    };
    let mut x = vec![0i32; n * h];
    for (t, &tok) in tokens.iter().enumerate() {
        let row = model.row_of_token(tok)?;
        cap.rows.push(row as u32);
        embed_row(
            &model.emb[row * h..(row + 1) * h],
            model.globals.emb_exp,
            &mut x[t * h..(t + 1) * h],
        )?;
    }
    cap.x_embed = x.clone();
    for l in 0..c.n_layers {
        let lw = model.layer(l)?;
        let fm = lw.fmt;
        let mut lc = LayerCapture {
            x_in: x.clone(),
            k_cache_in: cache.k[l][..start * kvd].to_vec(),
            v_cache_in: cache.v[l][..start * kvd].to_vec(),
            ..Default::default()
        };
        // attention block: norm, quantize, q/k/v, RoPE, cache, attention, o, residual
        let mut xn = vec![0i32; n * h];
        for t in 0..n {
            rmsnorm(
                &x[t * h..(t + 1) * h],
                lw.attn_norm,
                fm.attn_norm_frac,
                eps,
                &mut xn[t * h..(t + 1) * h],
            )?;
        }
        let xb = bfp(&xn)?;
        let mut q = vec![0i32; n * h];
        let mut k = vec![0i32; n * kvd];
        let mut v = vec![0i32; n * kvd];
        linear(&lw.q, &xb, Some(lw.q_bias), fm.q_frac as i32, &mut q)?;
        linear(&lw.k, &xb, Some(lw.k_bias), fm.k_frac as i32, &mut k)?;
        linear(&lw.v, &xb, Some(lw.v_bias), fm.v_frac as i32, &mut v)?;
        let mut k_row: Vec<i16> = k.iter().map(|&s| sat_i16(s as i64)).collect();
        let v_row: Vec<i16> = v.iter().map(|&s| sat_i16(s as i64)).collect();
        for t in 0..n {
            let p = start + t;
            rope_apply(
                &mut k_row[t * kvd..(t + 1) * kvd],
                hd,
                &cos[p * half..(p + 1) * half],
                &sin[p * half..(p + 1) * half],
            )?;
            cache.k[l][p * kvd..(p + 1) * kvd].copy_from_slice(&k_row[t * kvd..(t + 1) * kvd]);
            cache.v[l][p * kvd..(p + 1) * kvd].copy_from_slice(&v_row[t * kvd..(t + 1) * kvd]);
        }
        let params = AttnParams {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: hd,
            q_frac: fm.q_frac,
            k_frac: fm.k_frac,
            v_frac: fm.v_frac,
            out_frac: ACT_FRAC,
        };
        let mut q_rot: Vec<i16> = q.iter().map(|&s| sat_i16(s as i64)).collect();
        let mut att = vec![0i32; n * h];
        let mut scores = vec![0i64; c.ctx];
        let mut probs = vec![0u16; c.ctx];
        for t in 0..n {
            let p = start + t;
            let qt = &mut q_rot[t * h..(t + 1) * h];
            rope_apply(
                qt,
                hd,
                &cos[p * half..(p + 1) * half],
                &sin[p * half..(p + 1) * half],
            )?;
            attention(
                &params,
                qt,
                &cache.k[l],
                &cache.v[l],
                p + 1,
                &mut scores,
                &mut probs,
                &mut att[t * h..(t + 1) * h],
            )?;
        }
        let ob = bfp(&att)?;
        let mut o_proj = vec![0i32; n * h];
        linear(&lw.o, &ob, None, ACT_FRAC as i32, &mut o_proj)?;
        residual_add(&mut x, &o_proj)?;
        lc.x_attn = x.clone();
        // MLP block: norm, quantize, gate/up, SwiGLU, quantize, down, residual
        let mut xn2 = vec![0i32; n * h];
        for t in 0..n {
            rmsnorm(
                &x[t * h..(t + 1) * h],
                lw.ffn_norm,
                fm.ffn_norm_frac,
                eps,
                &mut xn2[t * h..(t + 1) * h],
            )?;
        }
        let mb = bfp(&xn2)?;
        let mut gate = vec![0i32; n * f];
        let mut up = vec![0i32; n * f];
        linear(&lw.gate, &mb, None, ACT_FRAC as i32, &mut gate)?;
        linear(&lw.up, &mb, None, ACT_FRAC as i32, &mut up)?;
        let mut sw = vec![0i32; n * f];
        swiglu(&gate, &up, &mut sw)?;
        let db = bfp(&sw)?;
        let mut down = vec![0i32; n * h];
        linear(&lw.down, &db, None, ACT_FRAC as i32, &mut down)?;
        residual_add(&mut x, &down)?;
        lc.attn_norm = xn;
        lc.attn_bfp = xb;
        lc.q = q;
        lc.k = k;
        lc.v = v;
        lc.q_rot = q_rot;
        lc.k_row = k_row;
        lc.v_row = v_row;
        lc.attn = att;
        lc.o_bfp = ob;
        lc.o_proj = o_proj;
        lc.mlp_norm = xn2;
        lc.mlp_bfp = mb;
        lc.gate = gate;
        lc.up = up;
        lc.swiglu = sw;
        lc.down_bfp = db;
        lc.down = down;
        lc.x_out = x.clone();
        cap.layers.push(lc);
    }
    let mut xf = vec![0i32; n * h];
    for t in 0..n {
        rmsnorm(
            &x[t * h..(t + 1) * h],
            model.final_norm,
            model.globals.final_norm_frac,
            eps,
            &mut xf[t * h..(t + 1) * h],
        )?;
    }
    let fb = bfp(&xf)?;
    let v = c.n_kept;
    let mut logits = vec![0i32; n * v];
    linear(head, &fb, None, ACT_FRAC as i32, &mut logits)?;
    cap.argmax = (0..n)
        .map(|t| argmax_i32(&logits[t * v..(t + 1) * v]).unwrap_or(0) as u32)
        .collect();
    cap.final_norm = xf;
    cap.final_bfp = fb;
    cap.logits = logits;
    Ok(cap)
}

/// Runs the same chunk through `dec` (whose state must be the one `capture`
/// started from) and requires identical logits for every token and identical
/// K/V rows in every layer.
pub fn check_against_decoder<B: Backend>(
    dec: &mut Decoder<'_, '_, B>,
    capture: &ChunkCapture,
) -> Result<()> {
    let c = dec.model().config;
    if dec.pos() != capture.start {
        bail!(
            "decoder at position {}, capture starts at {}",
            dec.pos(),
            capture.start
        );
    }
    let v = c.n_kept;
    let mut logits = vec![0i32; capture.tokens.len() * v];
    dec.prefill_all(&capture.tokens, &mut |i, lg| {
        logits[i * v..(i + 1) * v].copy_from_slice(lg)
    })?;
    if logits != capture.logits {
        bail!(
            "layer capture disagrees with the decoder: logits of the chunk at position {} differ",
            capture.start
        );
    }
    let kvd = c.kv_dim();
    let (a, b) = (
        capture.start * kvd,
        (capture.start + capture.tokens.len()) * kvd,
    );
    for (l, lc) in capture.layers.iter().enumerate() {
        if dec.state().k_cache(l)[a..b] != lc.k_row[..]
            || dec.state().v_cache(l)[a..b] != lc.v_row[..]
        {
            bail!("layer capture disagrees with the decoder: K/V rows of layer {l} differ");
        }
    }
    Ok(())
}

//! `edgedecoding vectors`: writes the whole suite (docs/VECTORS.md §3–§4).

use std::cell::Cell;

use anyhow::{bail, Context, Result};
use edgedecoding_kernels::attention::AttnParams;
use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::tables::{EXP2_NEG_Q15, SIGMOID_Q15};
use edgedecoding_kernels::TOKENS_PER_PASS;
use edgedecoding_model::convert::rope_rom;
use edgedecoding_model::edq::{n_global, PER_LAYER};
use edgedecoding_model::fast::Fast;
use edgedecoding_model::owned::OwnedHead;
use edgedecoding_model::parallel::Threaded;
use edgedecoding_model::ModelError;
use edgedecoding_model::{Backend, Decoder, Head, MatId, Model, RopeRom, State, StateMem};
use serde_json::{json, Map};

use crate::layer::ChunkCapture;
use crate::ops::OPERATORS;
use crate::rng::Gen;
use crate::suite::{Case, Suite, Summary};

/// Options of [`write_suite`].
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Seed of the random cases and of the model-level token sequences.
    pub seed: u64,
    /// Operators to write (empty: all). Kernel operator names, plus `rom` for
    /// the ROM tables and `model` for the decoder section.
    pub only: Vec<String>,
    /// Also capture the chunk at the last 8 context positions (needs a prefill
    /// of `ctx - 8` tokens).
    pub last_chunk: bool,
    /// Cases with at most this many elements also get a C header.
    pub header_max: usize,
    /// Threads of the decoder runs.
    pub threads: usize,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            only: Vec::new(),
            last_chunk: true,
            header_max: 4096,
            threads: 1,
        }
    }
}

/// Prompt length of the model-level vectors: two full chunks and a partial one.
pub const PROMPT_LEN: usize = 19;
/// Decode steps after the prompt.
pub const DECODE_STEPS: usize = 6;

/// Every section name [`SuiteOptions::only`] accepts.
pub fn sections() -> Vec<&'static str> {
    let mut v: Vec<&str> = OPERATORS.iter().map(|(n, _)| *n).collect();
    v.extend(["rom", "model"]);
    v
}

/// Writes the suite for `model` into `out` (absent or empty).
pub fn write_suite(
    model: &Model<'_>,
    source: &str,
    out: &std::path::Path,
    o: &SuiteOptions,
) -> Result<Summary> {
    for s in &o.only {
        if !sections().contains(&s.as_str()) {
            bail!("unknown operator `{s}`; known: {}", sections().join(", "));
        }
    }
    let want = |s: &str| o.only.is_empty() || o.only.iter().any(|x| x == s);
    let mut suite = Suite::create(out, o.header_max)?;
    if want("rom") {
        rom_tables(&mut suite, model)?;
    }
    for (name, build) in OPERATORS {
        if want(name) {
            for case in build(o.seed).with_context(|| format!("building {name} cases"))? {
                suite.add(case)?;
            }
        }
    }
    let mut model_info = json!(null);
    if want("model") {
        model_info = model_section(&mut suite, model, o)?;
    }
    let mut info = Map::new();
    info.insert("generator".into(), json!(crate::GENERATOR));
    info.insert("model".into(), json!(source));
    info.insert("config".into(), crate::config_json(&model.config));
    let g = &model.globals;
    info.insert(
        "globals".into(),
        json!({"emb_exp": g.emb_exp, "final_norm_frac": g.final_norm_frac, "eps_q40": g.eps_q40}),
    );
    info.insert("seed".into(), json!(o.seed));
    info.insert("model_vectors".into(), model_info);
    info.insert("docs".into(), json!("docs/VECTORS.md"));
    suite.finish(info)
}

fn rom_tables(suite: &mut Suite, model: &Model<'_>) -> Result<()> {
    let mut c = Case::at("rom", "exp2_neg_q15", "rom");
    c.param("entries", EXP2_NEG_Q15.len());
    c.input(
        "exp2_neg_q15",
        &EXP2_NEG_Q15,
        &[EXP2_NEG_Q15.len()],
        "[f] uint16 round(2^15 * 2^(-f/256)) (SPEC 7.2)",
    )
    .bits(16);
    suite.add_rom(
        c,
        "EXP2_NEG_Q15: 256 x 16-bit unsigned, entry f = round(2^15 * 2^(-f/256)) (SPEC 7.2)",
    )?;
    let mut c = Case::at("rom", "sigmoid_q15", "rom");
    c.param("entries", SIGMOID_Q15.len());
    c.input(
        "sigmoid_q15",
        &SIGMOID_Q15,
        &[SIGMOID_Q15.len()],
        "[i] uint16 round(2^15 * sigmoid(-8 + i/16)) (SPEC 8.1)",
    )
    .bits(16);
    suite.add_rom(
        c,
        "SIGMOID_Q15: 257 x 16-bit unsigned, entry i = round(2^15 * sigmoid(-8 + i/16)) (SPEC 8.1)",
    )?;
    let cfg = model.config;
    let half = cfg.head_dim / 2;
    // the model file's ROM, which the decoder reads (SPEC §6.1); for a file
    // written before it was stored, its recipe (the same bits)
    let built;
    let rom = match model.rope {
        Some(rom) => rom,
        None => {
            built = rope_rom(&cfg)?;
            RopeRom::from_stored(&built)
        }
    };
    for (name, t, f) in [
        ("rope_cos_q14", rom.cos, "cos"),
        ("rope_sin_q14", rom.sin, "sin"),
    ] {
        let mut c = Case::at("rom", name, "rom");
        c.param("positions", cfg.ctx)
            .param("half", half)
            .param("theta", cfg.rope_theta)
            .param("head_dim", cfg.head_dim);
        let layout = format!(
            "[position][i] int16 Q14 round({f}(p * theta^(-2i/head_dim)) * 2^14) (SPEC 6.1)"
        );
        c.input(name, t, &[cfg.ctx, half], &layout).bits(16);
        let comment = format!(
            "RoPE {f} table, Q14, 16-bit two's complement: {} positions x {half} entries, word p*{half} + i = round({f}(p * {}^(-2i/{})) * 2^14) (SPEC 6.1)",
            cfg.ctx, cfg.rope_theta, cfg.head_dim
        );
        suite.add_rom(c, &comment)?;
    }
    Ok(())
}

fn bfp_parts(b: &[BfpBlock]) -> (Vec<i8>, Vec<u8>) {
    (
        b.iter().flat_map(|b| b.m).collect(),
        b.iter().map(|b| b.e).collect(),
    )
}

/// Seeded prompt of kept tokens (full ids).
fn tokens(model: &Model<'_>, g: &mut Gen, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| model.token_of_row(g.below(model.config.n_kept as u64) as usize))
        .collect()
}

fn model_section(
    suite: &mut Suite,
    model: &Model<'_>,
    o: &SuiteOptions,
) -> Result<serde_json::Value> {
    let c = model.config;
    if c.ctx < PROMPT_LEN + DECODE_STEPS + 1 {
        bail!(
            "the model's context ({}) is too short for the model vectors (needs {})",
            c.ctx,
            PROMPT_LEN + DECODE_STEPS + 1
        );
    }
    weights(suite, model)?;
    // Every captured value comes from the decoder through its stage probe,
    // run on the reference kernels (threaded over rows: the same values) with
    // the lm_head derived on the fly. The SIMD backend with a packed head runs
    // the same tokens on a second decoder and must agree.
    let reference = Threaded::new(o.threads);
    let owned = OwnedHead::derive(model)?;
    let packed = Head::Packed(owned.matrix());
    let fast = Fast::new(model, o.threads)?;
    let mut g = Gen::new(o.seed, "model/prompt");
    let prompt = tokens(model, &mut g, PROMPT_LEN);

    // --- decoder A: prefill of the prompt chunk by chunk, every stage captured
    let mut mem = StateMem::new(&c);
    let mut dec = Decoder::new(
        *model,
        Head::derived(model)?,
        State::new(&c, mem.bytes())?,
        reference,
    )?;
    let mut chunks = vec![];
    let mut p = 0;
    while p < PROMPT_LEN {
        let n = (PROMPT_LEN - p).min(TOKENS_PER_PASS);
        chunks.push(ChunkCapture::run(&mut dec, &prompt[p..p + n])?);
        p += n;
    }
    write_chunk(suite, model, &chunks[0], "chunk0", None)?;
    for (i, ch) in chunks.iter().enumerate() {
        prefill_case(suite, model, ch, &format!("chunk{i}"), None)?;
    }
    // --- decode steps, accelerator parity (re-run the chunk of 8), checked
    // against incremental decode on a second decoder (SIMD backend)
    let mut mem2 = StateMem::new(&c);
    let mut inc = Decoder::new(*model, packed, State::new(&c, mem2.bytes())?, &fast)?;
    let mut next_inc = inc.prefill(&prompt)?;
    let mut next = model.token_of_row(
        chunks
            .last()
            .map_or(0, |ch| *ch.argmax.last().unwrap_or(&0)) as usize,
    );
    if next != next_inc || dec.logits() != inc.logits() {
        bail!("prefill disagrees between two decoders");
    }
    let mut seq = prompt.clone();
    for s in 0..DECODE_STEPS {
        let pos = seq.len();
        let c0 = pos - pos % TOKENS_PER_PASS;
        let slot = pos % TOKENS_PER_PASS;
        seq.push(next);
        let mut chunk = vec![next; TOKENS_PER_PASS];
        chunk[..=slot].copy_from_slice(&seq[c0..=pos]);
        let got = dec.decode_parity(next)?;
        let logits = dec.logits().to_vec();
        next_inc = inc.decode(next)?;
        if got != next_inc || logits != inc.logits() {
            bail!("parity decode disagrees with incremental decode at position {pos}");
        }
        let row = model.row_of_token(got)? as u32;
        let mut cs = Case::at(
            "decode",
            &format!("step{s}"),
            &format!("model/decode/step{s}"),
        );
        cs.param("position", pos)
            .param("chunk_start", c0)
            .param("slot", slot);
        model_params(&mut cs, model);
        cs.input("chunk_tokens", &chunk, &[TOKENS_PER_PASS], "[slot] full token ids of positions chunk_start.. (slots after `slot` repeat the new token)");
        cs.output(
            "logits",
            &logits,
            &[c.n_kept],
            "[pruned id] int32 Q12 logits at the new token's slot",
        );
        cs.output(
            "argmax",
            &[row],
            &[1],
            "pruned id of the largest logit (lowest on ties)",
        );
        cs.output(
            "next_token",
            &[got],
            &[1],
            "full token id of argmax (keep list)",
        );
        suite.add(cs)?;
        next = got;
    }
    // --- the last context positions: fill ctx - 8 positions, capture the last chunk
    let mut last_start = serde_json::Value::Null;
    if o.last_chunk {
        let start = c.ctx - TOKENS_PER_PASS;
        let mut g = Gen::new(o.seed, "model/long");
        let long = tokens(model, &mut g, c.ctx);
        // the history is long: the SIMD backend fills it, the reference runs
        // the captured chunk
        let be = HistoryThenReference {
            history: &fast,
            reference,
            captured: Cell::new(false),
        };
        let mut mem3 = StateMem::new(&c);
        let mut dl = Decoder::new(
            *model,
            Head::derived(model)?,
            State::new(&c, mem3.bytes())?,
            &be,
        )?;
        dl.prefill(&long[..start])?;
        be.captured.set(true);
        let cap = ChunkCapture::run(&mut dl, &long[start..])?;
        write_chunk(suite, model, &cap, "last", Some(&long[..start]))?;
        prefill_case(suite, model, &cap, "last", Some("model/layers/last"))?;
        last_start = json!(start);
    }
    Ok(json!({
        "prompt_len": PROMPT_LEN,
        "decode_steps": DECODE_STEPS,
        "last_chunk_start": last_start,
        "checked_against_decoder": true,
    }))
}

/// The SIMD backend until `captured` is set, then the reference kernels: a
/// long history is filled fast, the captured chunk runs on the reference.
struct HistoryThenReference<'f> {
    history: &'f Fast<'f>,
    reference: Threaded,
    captured: Cell<bool>,
}

impl Backend for HistoryThenReference<'_> {
    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        if self.captured.get() {
            self.reference.linear(id, w, x, bias, out_frac, out)
        } else {
            self.history.linear(id, w, x, bias, out_frac, out)
        }
    }

    fn attention(
        &self,
        p: &AttnParams,
        q: &[i16],
        k_cache: &[i16],
        v_cache: &[i16],
        len: usize,
        scores: &mut [i64],
        probs: &mut [u16],
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        if self.captured.get() {
            self.reference
                .attention(p, q, k_cache, v_cache, len, scores, probs, out)
        } else {
            self.history
                .attention(p, q, k_cache, v_cache, len, scores, probs, out)
        }
    }
}

fn prefill_case(
    suite: &mut Suite,
    model: &Model<'_>,
    ch: &ChunkCapture,
    name: &str,
    cache_from: Option<&str>,
) -> Result<()> {
    let n = ch.tokens.len();
    let v = model.config.n_kept;
    let next: Vec<u32> = ch
        .argmax
        .iter()
        .map(|&r| model.token_of_row(r as usize))
        .collect();
    let mut cs = Case::at("prefill", name, &format!("model/prefill/{name}"));
    cs.param("start", ch.start).param("tokens", n);
    model_params(&mut cs, model);
    if let Some(dir) = cache_from {
        // the caches of positions 0..start are the k_cache_in / v_cache_in of
        // the decoder_layer cases in this directory
        cs.param("cache_from", dir);
    }
    cs.input(
        "tokens",
        &ch.tokens,
        &[n],
        "[slot] full token ids of positions start..start+tokens",
    );
    cs.output("logits", &ch.logits, &[n, v], "[slot][pruned id] int32 Q12");
    cs.output(
        "argmax",
        &ch.argmax,
        &[n],
        "[slot] pruned id of the largest logit (lowest on ties)",
    );
    cs.output(
        "next_token",
        &next,
        &[n],
        "[slot] full token id of argmax (keep list)",
    );
    suite.add(cs)
}

fn write_chunk(
    suite: &mut Suite,
    model: &Model<'_>,
    ch: &ChunkCapture,
    name: &str,
    history: Option<&[u32]>,
) -> Result<()> {
    let c = model.config;
    let (n, h, f, kvd) = (ch.tokens.len(), c.hidden, c.ffn, c.kv_dim());
    let pos: Vec<u32> = (ch.start..ch.start + n).map(|p| p as u32).collect();
    let dir = format!("model/layers/{name}");
    let mut cs = Case::at("decoder_chunk", name, &format!("{dir}/chunk"));
    cs.param("start", ch.start)
        .param("tokens", n)
        .param("layers_dir", dir.as_str());
    model_params(&mut cs, model);
    cs.input("tokens", &ch.tokens, &[n], "[slot] full token ids");
    cs.input("pos", &pos, &[n], "[slot] position");
    if let Some(hist) = history {
        cs.input(
            "history_tokens",
            hist,
            &[hist.len()],
            "full token ids of positions 0..start (what filled the K/V caches)",
        );
    }
    cs.output(
        "rows",
        &ch.rows,
        &[n],
        "[slot] embedding row (pruned id) of each token",
    );
    cs.output(
        "x_embed",
        &ch.x_embed,
        &[n, h],
        "[slot][channel] int32 Q12 embedding lookup (SPEC 9.2) = layer 0 x_in",
    );
    cs.output(
        "final_norm",
        &ch.final_norm,
        &[n, h],
        "[slot][channel] int32 Q12 final RMSNorm",
    );
    let (m, e) = bfp_parts(&ch.final_bfp);
    cs.output(
        "final_bfp_m",
        &m,
        &[n, h],
        "[slot][channel] int8 BFP mantissa of final_norm",
    );
    cs.output("final_bfp_e", &e, &[n, h / 8], "[slot][group] BFP exponent")
        .bits(4);
    cs.output(
        "logits",
        &ch.logits,
        &[n, c.n_kept],
        "[slot][pruned id] int32 Q12, lm_head derived from the embedding",
    );
    cs.output(
        "argmax",
        &ch.argmax,
        &[n],
        "[slot] pruned id of the largest logit (lowest on ties)",
    );
    suite.add(cs)?;
    for (l, lc) in ch.layers.iter().enumerate() {
        let fm = model.layer(l)?.fmt;
        let mut cs = Case::at(
            "decoder_layer",
            &format!("{name}_layer{l:02}"),
            &format!("{dir}/layer{l:02}"),
        );
        cs.param("layer", l)
            .param("start", ch.start)
            .param("tokens", n)
            .param("q_frac", fm.q_frac)
            .param("k_frac", fm.k_frac)
            .param("v_frac", fm.v_frac)
            .param("attn_norm_frac", fm.attn_norm_frac)
            .param("ffn_norm_frac", fm.ffn_norm_frac)
            .param("weights", format!("model/weights/layer{l:02}"));
        model_params(&mut cs, model);
        cs.input(
            "x_in",
            &lc.x_in,
            &[n, h],
            "[slot][channel] int32 Q12 residual input",
        );
        cs.input("pos", &pos, &[n], "[slot] position");
        if ch.start > 0 {
            cs.input("k_cache_in", &lc.k_cache_in, &[ch.start, kvd], "[position][kv_head * head_dim + dim] int16 Q(k_frac), positions 0..start, after RoPE");
            cs.input(
                "v_cache_in",
                &lc.v_cache_in,
                &[ch.start, kvd],
                "[position][kv_head * head_dim + dim] int16 Q(v_frac), positions 0..start",
            );
        }
        let q12 = "[slot][channel] int32 Q12";
        cs.output("attn_norm", &lc.attn_norm, &[n, h], q12);
        let (m, e) = bfp_parts(&lc.attn_bfp);
        cs.output(
            "attn_bfp_m",
            &m,
            &[n, h],
            "[slot][channel] int8 BFP mantissa of attn_norm",
        );
        cs.output("attn_bfp_e", &e, &[n, h / 8], "[slot][group] BFP exponent")
            .bits(4);
        cs.output(
            "q",
            &lc.q,
            &[n, h],
            "[slot][head * head_dim + dim] int32 Q(q_frac), q projection + bias",
        );
        cs.output(
            "k",
            &lc.k,
            &[n, kvd],
            "[slot][kv_head * head_dim + dim] int32 Q(k_frac), k projection + bias",
        );
        cs.output(
            "v",
            &lc.v,
            &[n, kvd],
            "[slot][kv_head * head_dim + dim] int32 Q(v_frac), v projection + bias",
        );
        cs.output(
            "q_rot",
            &lc.q_rot,
            &[n, h],
            "[slot][head * head_dim + dim] int16 Q(q_frac): sat_i16(q), then RoPE",
        );
        cs.output("k_row", &lc.k_row, &[n, kvd], "[slot][kv_head * head_dim + dim] int16 Q(k_frac): K cache rows written (sat_i16(k), then RoPE)");
        cs.output(
            "v_row",
            &lc.v_row,
            &[n, kvd],
            "[slot][kv_head * head_dim + dim] int16 Q(v_frac): V cache rows written (sat_i16(v))",
        );
        cs.output("attn", &lc.attn, &[n, h], "[slot][head * head_dim + dim] int32 Q12 attention output (causal: position p sees 0..=p)");
        let (m, e) = bfp_parts(&lc.o_bfp);
        cs.output(
            "o_bfp_m",
            &m,
            &[n, h],
            "[slot][channel] int8 BFP mantissa of attn",
        );
        cs.output("o_bfp_e", &e, &[n, h / 8], "[slot][group] BFP exponent")
            .bits(4);
        cs.output("o_proj", &lc.o_proj, &[n, h], q12);
        cs.output(
            "x_attn",
            &lc.x_attn,
            &[n, h],
            "[slot][channel] int32 Q12 residual after attention",
        );
        cs.output("mlp_norm", &lc.mlp_norm, &[n, h], q12);
        let (m, e) = bfp_parts(&lc.mlp_bfp);
        cs.output(
            "mlp_bfp_m",
            &m,
            &[n, h],
            "[slot][channel] int8 BFP mantissa of mlp_norm",
        );
        cs.output("mlp_bfp_e", &e, &[n, h / 8], "[slot][group] BFP exponent")
            .bits(4);
        cs.output("gate", &lc.gate, &[n, f], "[slot][ffn channel] int32 Q12");
        cs.output("up", &lc.up, &[n, f], "[slot][ffn channel] int32 Q12");
        cs.output(
            "swiglu",
            &lc.swiglu,
            &[n, f],
            "[slot][ffn channel] int32 Q12",
        );
        let (m, e) = bfp_parts(&lc.down_bfp);
        cs.output(
            "down_bfp_m",
            &m,
            &[n, f],
            "[slot][ffn channel] int8 BFP mantissa of swiglu",
        );
        cs.output("down_bfp_e", &e, &[n, f / 8], "[slot][group] BFP exponent")
            .bits(4);
        cs.output("down", &lc.down, &[n, h], q12);
        cs.output(
            "x_out",
            &lc.x_out,
            &[n, h],
            "[slot][channel] int32 Q12 residual out",
        );
        suite.add(cs)?;
    }
    Ok(())
}

/// The model constants a layer or chunk case needs (so a testbench can run it
/// from `index.txt` alone).
fn model_params(cs: &mut Case, model: &Model<'_>) {
    let c = model.config;
    cs.param("n_layers", c.n_layers)
        .param("hidden", c.hidden)
        .param("ffn", c.ffn)
        .param("n_heads", c.n_heads)
        .param("n_kv_heads", c.n_kv_heads)
        .param("head_dim", c.head_dim)
        .param("n_kept", c.n_kept)
        .param("ctx", c.ctx)
        .param("eps_q40", model.globals.eps_q40)
        .param("emb_exp", model.globals.emb_exp)
        .param("final_norm_frac", model.globals.final_norm_frac);
}

/// The model's weights in the SPEC §2.1 packed form (the `.edq` payloads).
fn weights(suite: &mut Suite, model: &Model<'_>) -> Result<()> {
    let c = model.config;
    let file = model.file();
    let mut cs = Case::at("weights", "globals", "model/weights/globals");
    cs.param("emb_exp", model.globals.emb_exp)
        .param("final_norm_frac", model.globals.final_norm_frac)
        .param("eps_q40", model.globals.eps_q40)
        .param("n_kept", c.n_kept)
        .param("vocab", c.vocab)
        .param("hidden", c.hidden);
    cs.input(
        "token_embd",
        model.emb,
        &[c.n_kept, c.hidden],
        "[row][channel] 10-bit codes in int16, real = code * 2^emb_exp",
    )
    .bits(10);
    cs.input(
        "output_norm",
        model.final_norm,
        &[c.hidden],
        "[channel] int16 Q(final_norm_frac)",
    );
    if let Some(k) = model.keep {
        cs.input(
            "vocab_keep",
            k,
            &[c.n_kept],
            "[row] full token id of embedding row (pruned id)",
        );
    }
    suite.add(cs)?;
    for l in 0..c.n_layers {
        let mut cs = Case::at(
            "weights",
            &format!("layer{l:02}"),
            &format!("model/weights/layer{l:02}"),
        );
        let fm = model.layer(l)?.fmt;
        cs.param("layer", l)
            .param("q_frac", fm.q_frac)
            .param("k_frac", fm.k_frac)
            .param("v_frac", fm.v_frac)
            .param("attn_norm_frac", fm.attn_norm_frac)
            .param("ffn_norm_frac", fm.ffn_norm_frac);
        for k in 0..PER_LAYER {
            let e = file.entry(n_global(&c) + l * PER_LAYER + k)?;
            let full = e.name.to_string();
            let short = full
                .rsplit_once(&format!("blk.{l}."))
                .map_or(full.clone(), |(_, s)| s.to_string());
            let (r, cl) = (e.rows as usize, e.cols as usize);
            use edgedecoding_model::edq::DType as D;
            match e.dtype {
                D::ApotCodes => {
                    cs.input(&short, e.data, &[e.data.len()], &format!("{r} x {cl} matrix: SPEC 2.1 packed 5-bit code stream, row-major, LSB first"));
                }
                D::ApotExps => {
                    cs.input(&short, e.data, &[e.data.len()], &format!("{r} x {cl} matrix: SPEC 2.1 packed exponent stream, 6 bits (s1 | s2 << 3) per (row, group), LSB first"));
                }
                D::I8 => {
                    let v: Vec<i8> = e.data.iter().map(|&b| b as i8).collect();
                    cs.input(&short, &v, &[r * cl], "[row] int8 row exponent e_row");
                }
                D::U8 => {
                    cs.input(
                        &short,
                        e.data,
                        &[r * cl],
                        "[q_frac, k_frac, v_frac, attn_norm_frac, ffn_norm_frac, 0, 0, 0]",
                    );
                }
                D::I16 => {
                    let v: Vec<i16> = e
                        .data
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    cs.input(
                        &short,
                        &v,
                        &[r * cl],
                        "[channel] int16 RMSNorm gamma Q(gamma_frac)",
                    );
                }
                D::I32 => {
                    let v: Vec<i32> = e
                        .data
                        .chunks_exact(4)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    cs.input(
                        &short,
                        &v,
                        &[r * cl],
                        "[row] int32 bias in the projection's output format",
                    );
                }
                D::U32 => bail!("unexpected u32 tensor {full} in layer {l}"),
            }
        }
        suite.add(cs)?;
    }
    Ok(())
}

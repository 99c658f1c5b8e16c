//! Format-independent assembly of a [`FloatModel`] from named tensors.

use std::path::Path;

use edgedecoding_model::config::Config;
use edgedecoding_model::float_ref::{FloatLayer, FloatModel};

use crate::{Error, LoadOptions, Progress};

/// The logical tensors of a Qwen2 decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Emb,
    Head,
    FinalNorm,
    AttnNorm,
    QW,
    QB,
    KW,
    KB,
    VW,
    VB,
    OW,
    FfnNorm,
    Gate,
    Up,
    Down,
}

/// Logical shape: a vector, or a row-major `[rows][cols]` (= `[out][in]`) matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Vector(usize),
    Matrix { rows: usize, cols: usize },
}

/// A checkpoint's tensors, by format-specific name.
pub(crate) trait TensorSource {
    /// The format's name of `part` in `layer`.
    fn name(&self, part: Part, layer: usize) -> String;
    /// Reads a tensor, checking its shape; with `rows`, only those rows of a
    /// matrix, in the order given.
    fn read(&self, name: &str, shape: Shape, rows: Option<&[u32]>) -> Result<Vec<f32>, Error>;
}

/// Hyper-parameters read from a checkpoint.
pub(crate) struct Hyper {
    pub n_layers: u64,
    pub hidden: u64,
    pub ffn: u64,
    pub n_heads: u64,
    pub n_kv_heads: u64,
    pub vocab: u64,
    pub rope_theta: f64,
    pub eps: f64,
    /// Trained context length and the key it came from, when the checkpoint
    /// states one: `LoadOptions::ctx` may not exceed it.
    pub train_ctx: Option<(u64, &'static str)>,
}

fn bad(file: &Path, key: &str, value: impl ToString, reason: &str) -> Error {
    Error::BadValue {
        file: file.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks the keep list: non-empty, strictly ascending, every id below `vocab`.
pub(crate) fn check_keep(keep: &[u32], vocab: usize) -> Result<(), Error> {
    if keep.is_empty() {
        return Err(Error::BadKeep {
            reason: "empty".into(),
        });
    }
    for (i, w) in keep.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::BadKeep {
                reason: format!(
                    "not strictly ascending at index {}: {} then {}",
                    i + 1,
                    w[0],
                    w[1]
                ),
            });
        }
    }
    let last = keep[keep.len() - 1];
    if last as usize >= vocab {
        return Err(Error::BadKeep {
            reason: format!("token id {last} is outside the vocabulary of {vocab}"),
        });
    }
    Ok(())
}

/// The model configuration (validated) and RMSNorm epsilon.
pub(crate) fn make_config(
    file: &Path,
    h: &Hyper,
    names: [&str; 8],
    opts: &LoadOptions,
) -> Result<(Config, f32), Error> {
    let [k_layers, k_hidden, k_ffn, k_heads, k_kv, k_vocab, k_theta, k_eps] = names;
    let us = |key: &str, v: u64| -> Result<usize, Error> {
        if v == 0 {
            return Err(bad(file, key, v, "must be positive"));
        }
        usize::try_from(v).map_err(|_| bad(file, key, v, "too large"))
    };
    let n_layers = us(k_layers, h.n_layers)?;
    let hidden = us(k_hidden, h.hidden)?;
    let ffn = us(k_ffn, h.ffn)?;
    let n_heads = us(k_heads, h.n_heads)?;
    let n_kv_heads = us(k_kv, h.n_kv_heads)?;
    let vocab = us(k_vocab, h.vocab)?;
    if hidden % n_heads != 0 {
        return Err(bad(
            file,
            k_hidden,
            hidden,
            &format!("not a multiple of the head count {n_heads}"),
        ));
    }
    let t = h.rope_theta;
    if !(t.is_finite() && t >= 1.0 && t <= u32::MAX as f64 && t.fract() == 0.0) {
        return Err(bad(
            file,
            k_theta,
            t,
            "must be a whole number in 1..=4294967295",
        ));
    }
    let eps = h.eps as f32;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(bad(file, k_eps, h.eps, "must be a positive finite number"));
    }
    if let Some((limit, key)) = h.train_ctx {
        if opts.ctx as u64 > limit {
            return Err(bad(
                file,
                key,
                limit,
                &format!(
                    "the requested context of {} positions exceeds the model's trained context",
                    opts.ctx
                ),
            ));
        }
    }
    let n_kept = match &opts.keep {
        Some(k) => {
            check_keep(k, vocab)?;
            k.len()
        }
        None => vocab,
    };
    let config = Config {
        n_layers,
        hidden,
        ffn,
        n_heads,
        n_kv_heads,
        head_dim: hidden / n_heads,
        vocab,
        n_kept,
        rope_theta: t as u32,
        ctx: opts.ctx,
    };
    config.validate().map_err(|source| Error::Config {
        file: file.to_path_buf(),
        source,
    })?;
    Ok((config, eps))
}

/// Reads every tensor of the model.
pub(crate) fn build(
    src: &dyn TensorSource,
    config: Config,
    eps: f32,
    opts: &LoadOptions,
    progress: Progress<'_>,
) -> Result<FloatModel, Error> {
    let c = config;
    let (h, kv, f) = (c.hidden, c.kv_dim(), c.ffn);
    let keep = opts.keep.as_deref();
    let head_name = src.name(Part::Head, 0);
    // asked for and absent: reading it below reports the missing tensor
    let use_head = opts.use_output_head;
    let total = 2 + usize::from(use_head) + 12 * c.n_layers;
    let mut done = 0usize;
    let mut step = |progress: &mut dyn FnMut(&str, usize, usize)| {
        progress("tensors", done, total);
        done += 1;
    };
    let mat = |rows, cols| Shape::Matrix { rows, cols };
    step(progress);
    let emb = src.read(&src.name(Part::Emb, 0), mat(c.vocab, h), keep)?;
    let head = if use_head {
        step(progress);
        Some(src.read(&head_name, mat(c.vocab, h), keep)?)
    } else {
        None
    };
    step(progress);
    let final_norm = src.read(&src.name(Part::FinalNorm, 0), Shape::Vector(h), None)?;
    let mut layers = Vec::with_capacity(c.n_layers);
    for l in 0..c.n_layers {
        let mut rd = |part: Part, shape: Shape| {
            step(progress);
            src.read(&src.name(part, l), shape, None)
        };
        layers.push(FloatLayer {
            attn_norm: rd(Part::AttnNorm, Shape::Vector(h))?,
            q_w: rd(Part::QW, mat(h, h))?,
            q_b: rd(Part::QB, Shape::Vector(h))?,
            k_w: rd(Part::KW, mat(kv, h))?,
            k_b: rd(Part::KB, Shape::Vector(kv))?,
            v_w: rd(Part::VW, mat(kv, h))?,
            v_b: rd(Part::VB, Shape::Vector(kv))?,
            o_w: rd(Part::OW, mat(h, h))?,
            ffn_norm: rd(Part::FfnNorm, Shape::Vector(h))?,
            gate: rd(Part::Gate, mat(f, h))?,
            up: rd(Part::Up, mat(f, h))?,
            down: rd(Part::Down, mat(h, f))?,
        });
    }
    progress("tensors", total, total);
    Ok(FloatModel {
        config: c,
        emb,
        head,
        layers,
        final_norm,
        eps,
        keep: opts.keep.clone(),
    })
}

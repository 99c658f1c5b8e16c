//! Real checkpoints: GGUF files and Hugging Face folders converted to the
//! integer model on the fly or to a `.edq` file, with their tokenizer.
//! (Moved from the CLI so that every face converts the same way.)

use std::path::Path;

use anyhow::{bail, Context, Result};
use edgedecoding_checkpoint::{
    load_float_model_with_progress, Checkpoint, GgufMetadata, LoadOptions,
};
pub use edgedecoding_model::convert::Quantizer;
use edgedecoding_model::convert::{quantize_model, ConvertOptions};
use edgedecoding_model::float_ref::FloatModel;
use edgedecoding_tokenizer::{GgufVocab, Tokenizer as Bpe};

use crate::Progress;

/// Text the converter calibrates the Q/K/V formats on (built in, English prose,
/// numbers and a little code; written for this project).
pub const CALIB_TEXT: &str = include_str!("calib.txt");

/// The context a checkpoint is converted with when none is asked for (the
/// accelerator's larger build).
pub const DEFAULT_CTX: usize = 1024;

/// Calibration tokens taken from [`CALIB_TEXT`].
pub const CALIB_TOKENS: usize = 384;

/// Text the GPTQ quantizer collects its Hessians on when no `--calib` file
/// is given: [`CALIB_TEXT`] and more of the same kinds (prose, lists,
/// numbers, code in several languages; written for this project), then the
/// keep-list corpus ([`crate::keep::KEEP_CORPUS`]); the first
/// [`GPTQ_TOKENS`] tokens are used.
pub fn gptq_calib_text() -> String {
    format!(
        "{CALIB_TEXT}\n{}\n{}",
        include_str!("calib_gptq.txt"),
        crate::keep::KEEP_CORPUS
    )
}

/// What else decides a conversion's bytes besides [`Opts`] (for the
/// conversion cache's key): for `gptq`, the damping, the token budget,
/// (without `--calib`) the built-in calibration text and the embedding
/// exponent rule; empty for `rtn`.
pub fn quantizer_key(o: &Opts) -> String {
    match o.quantizer {
        Quantizer::Rtn => String::new(),
        Quantizer::Gptq => {
            let text = match &o.calib {
                Some(_) => String::new(), // in `Opts` itself
                None => gptq_calib_text(),
            };
            // FNV-1a of the text
            let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            format!(
                "gptq damp {} tokens {GPTQ_TOKENS} inputs {:?} text {h:016x} emb least-squares",
                edgedecoding_model::gptq::DAMP,
                edgedecoding_model::gptq::INPUTS
            )
        }
    }
}

/// Most tokens of the calibration text the GPTQ Hessians are collected on
/// (measured: 2048 too few; 8192 and 32768 about equal, SPEC §2.4.1).
pub const GPTQ_TOKENS: usize = 8192;

/// Options of a conversion.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Positions of the converted model (its RoPE table, the largest KV
    /// cache); `None`: [`DEFAULT_CTX`], or the checkpoint's trained context
    /// when that is smaller.
    pub ctx: Option<usize>,
    /// Prune the vocabulary ([`crate::keep`]: the accelerator keeps 37984 ids).
    pub keep: Option<crate::keep::Keep>,
    /// Use the checkpoint's separate `output.weight` in the float reference.
    pub output_head: bool,
    /// Threads.
    pub threads: usize,
    /// How the weight matrices are quantized.
    pub quantizer: Quantizer,
    /// Calibration text of the GPTQ Hessians (the text itself, so that the
    /// conversion cache keys on it); `None`: [`gptq_calib_text`].
    pub calib: Option<String>,
}

/// The tokenizer JSON blob of a checkpoint (FORMAT.md §3) and the tokenizer:
/// GGUF metadata, or `tokenizer.json` in a Hugging Face folder.
pub fn tokenizer_of(gguf: Option<&GgufMetadata>, hf_dir: Option<&Path>) -> Result<(Vec<u8>, Bpe)> {
    if let Some(g) = gguf {
        let vocab = GgufVocab {
            tokens: g
                .get_str_array("tokenizer.ggml.tokens")
                .context("GGUF tokenizer tokens")?
                .to_vec(),
            merges: g
                .get_str_array("tokenizer.ggml.merges")
                .context("GGUF tokenizer merges")?
                .to_vec(),
            token_type: g
                .get_int_array("tokenizer.ggml.token_type")
                .map(|v| v.iter().map(|&x| x as i32).collect())
                .unwrap_or_default(),
            pre: g
                .get_str("tokenizer.ggml.pre")
                .unwrap_or("qwen2")
                .to_string(),
            bos_token_id: g.get_u32("tokenizer.ggml.bos_token_id").ok(),
            eos_token_id: g.get_u32("tokenizer.ggml.eos_token_id").ok(),
        };
        let tok = Bpe::from_gguf(&vocab).context("GGUF tokenizer")?;
        return Ok((vocab.to_blob(), tok));
    }
    if let Some(dir) = hf_dir {
        let path = dir.join("tokenizer.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let tok = Bpe::from_tokenizer_json(&text)
            .with_context(|| format!("tokenizer of {}", path.display()))?;
        return Ok((text.into_bytes(), tok));
    }
    bail!("checkpoint has no tokenizer")
}

/// The keep list of `n` ids for `tok`'s model of `vocab` rows, ranked on the
/// built-in corpus: [`crate::keep::keep_list`] (the one rule; see there).
pub fn default_keep(tok: &Bpe, vocab: usize, n: usize) -> Result<Vec<u32>> {
    Ok(crate::keep::keep_list(Some(tok), vocab, n, crate::keep::KEEP_CORPUS)?.ids)
}

/// Every id the tokenizer can produce (its vocabulary, added and special
/// tokens) must be a row of the model's embedding: checked at conversion, so a
/// mismatched `tokenizer.json` is refused here, not at the first prompt.
pub fn check_tokenizer_fits(tok: &Bpe, model_vocab: usize, source: &Path) -> Result<()> {
    let n = tok.vocab_size();
    if n > model_vocab {
        let id = n as u32 - 1;
        bail!(
            "{}: the tokenizer has token id {id} ({:?}) but the model's vocabulary has {model_vocab} rows (ids 0..{}): the tokenizer does not belong to this model",
            source.display(),
            tok.id_to_token(id).unwrap_or("?"),
            model_vocab.saturating_sub(1)
        );
    }
    Ok(())
}

/// The tokenizer, keep list and float model of a checkpoint, as a conversion
/// with `o` loads them (no quantization); with the tokenizer's `.edq` blob.
pub fn float_model(
    path: &Path,
    o: &Opts,
    progress: Progress,
) -> Result<(FloatModel, Bpe, Vec<u8>)> {
    // the tokenizer first: the keep list needs it (a folder's config.json
    // before its tokenizer.json: the first real problem is reported first)
    let (blob, tok, vocab, trained) = match edgedecoding_checkpoint::detect(path)? {
        Checkpoint::HfFolder(dir) => {
            let info = edgedecoding_checkpoint::hf::read_config(&dir)?;
            let (blob, tok) = tokenizer_of(None, Some(&dir))?;
            let vocab = info.config.get("vocab_size").and_then(|v| v.as_u64());
            if let Some(v) = vocab {
                check_tokenizer_fits(&tok, v as usize, &dir.join("tokenizer.json"))?;
            }
            let vocab = vocab.map_or(tok.vocab_size(), |v| v as usize);
            let trained = info
                .config
                .get("max_position_embeddings")
                .and_then(|v| v.as_u64());
            (blob, tok, vocab, trained)
        }
        Checkpoint::Gguf(file) => {
            let meta = edgedecoding_checkpoint::gguf::read_metadata(&file)?;
            let trained = meta.get_u64("qwen2.context_length").ok();
            let (blob, tok) = tokenizer_of(Some(&meta), None)?;
            // a GGUF lists every row's token (padding fillers included)
            let vocab = tok.vocab_size();
            (blob, tok, vocab, trained)
        }
    };
    let ctx = o
        .ctx
        .unwrap_or_else(|| trained.map_or(DEFAULT_CTX, |t| DEFAULT_CTX.min(t.max(1) as usize)));
    let keep = match &o.keep {
        Some(k) => Some(crate::keep::resolve(k, Some(&tok), vocab.max(1))?.0),
        None => None,
    };
    let opts = LoadOptions {
        ctx,
        keep,
        use_output_head: o.output_head,
    };
    let (fm, _) = load_float_model_with_progress(path, &opts, &mut *progress)?;
    check_tokenizer_fits(&tok, fm.config.vocab, path)?;
    Ok((fm, tok, blob))
}

/// Whether checkpoint `path` has a separate output head (`lm_head.weight`
/// with `tie_word_embeddings: false`, or a GGUF `output.weight`), which the
/// integer model does not use: its head is derived from the embedding, as
/// on the accelerator.
pub fn has_separate_head(path: &Path) -> bool {
    match edgedecoding_checkpoint::detect(path) {
        Ok(Checkpoint::HfFolder(dir)) => {
            edgedecoding_checkpoint::hf::read_config(&dir)
                .ok()
                .and_then(|i| {
                    i.config
                        .get("tie_word_embeddings")
                        .and_then(|v| v.as_bool())
                })
                == Some(false)
        }
        Ok(Checkpoint::Gguf(file)) => edgedecoding_checkpoint::GgufFile::open(&file)
            .map(|g| g.tensors().iter().any(|t| t.name == "output.weight"))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// `.edq` bytes with the SIMD layout section (FORMAT §6) added.
pub fn with_simd(bytes: &[u8], threads: usize, progress: Progress) -> Result<Vec<u8>> {
    let buf = edgedecoding_model::owned::ModelBuf::from_bytes(bytes);
    let model = buf.model()?;
    let sec = edgedecoding_model::fast::simd_section(&model, threads, &mut |done, total| {
        progress("SIMD layout", done, total)
    })?;
    Ok(edgedecoding_model::edq::write::with_simd(bytes, &sec)?)
}

/// Loads a checkpoint, converts it to `.edq` bytes (with its tokenizer), and
/// returns the float model too (for `--float`). `progress` sees the loading
/// stages, then `"calibrate"` and `"quantize"` (per layer), and with `gptq`
/// `"gptq calibrate"` (per window) and `"gptq"` (per layer).
pub fn convert(path: &Path, o: &Opts, progress: Progress) -> Result<(Vec<u8>, FloatModel, Bpe)> {
    let (fm, tok, blob) = float_model(path, o, progress)?;
    let mut calib: Vec<u32> = tok
        .encode(CALIB_TEXT)
        .into_iter()
        .filter(|&t| fm.row_of_token(t).is_ok())
        .collect();
    calib.truncate(CALIB_TOKENS.min(fm.config.ctx));
    let gptq_tokens = match o.quantizer {
        Quantizer::Rtn => Vec::new(),
        Quantizer::Gptq => {
            let builtin;
            let text = match o.calib.as_deref() {
                Some(t) => t,
                None => {
                    builtin = gptq_calib_text();
                    &builtin
                }
            };
            let mut t: Vec<u32> = tok
                .encode(text)
                .into_iter()
                .filter(|&t| fm.row_of_token(t).is_ok())
                .collect();
            t.truncate(GPTQ_TOKENS);
            if t.is_empty() {
                bail!("the GPTQ calibration text has no tokens of this model");
            }
            t
        }
    };
    let bytes = quantize_model(
        &fm,
        &ConvertOptions {
            calib_tokens: calib,
            threads: o.threads,
            tokenizer: Some(blob),
            quantizer: o.quantizer,
            gptq_tokens,
        },
        progress,
    )?;
    Ok((bytes, fm, tok))
}

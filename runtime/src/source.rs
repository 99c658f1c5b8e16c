//! Where a model comes from (a `.edq` file, or a checkpoint converted on the
//! fly), the tokenizer that goes with it, and the CPU decoder.

use std::path::Path;

use anyhow::{bail, Context, Result};
use edgedecoding_model::float_ref::FloatModel;
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{cpu_chunk, Backend, Decoder, Head, Model, State, StateMem};
use edgedecoding_tokenizer::Tokenizer as Bpe;

use crate::convert;
use crate::text::{ByteTokenizer, IdTokenizer, QwenTokenizer, Tokenizer};
use crate::Progress;

/// A model file opened from a path.
pub struct Opened {
    /// The model bytes: the `.edq` file memory-mapped, or the conversion's
    /// output in memory.
    pub buf: ModelBuf,
    /// The checkpoint's tokenizer when it was converted now (a `.edq` file
    /// carries its own: see [`tokenizer`]).
    pub bpe: Option<Bpe>,
    /// The checkpoint's float model when it was converted now.
    pub float: Option<FloatModel>,
    /// Whether the model was converted now (else mapped from a `.edq` file).
    pub converted: bool,
}

/// Whether `path` is a checkpoint to convert (a GGUF file or a Hugging Face
/// folder, as `edgedecoding_checkpoint::detect` recognizes them) rather than
/// a `.edq` file.
pub fn is_checkpoint(path: &Path) -> bool {
    edgedecoding_checkpoint::detect(path).is_ok()
}

/// Opens `path`: a checkpoint is converted with `opts` (`progress` sees its
/// stages), anything else is memory-mapped as a `.edq` file. The model is not
/// validated yet (`buf.model()` does it once).
pub fn open(path: &Path, opts: &convert::Opts, progress: Progress) -> Result<Opened> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    if is_checkpoint(path) {
        let (bytes, fm, tok) = convert::convert(path, opts, progress)?;
        return Ok(Opened {
            buf: ModelBuf::from_bytes(&bytes),
            bpe: Some(tok),
            float: Some(fm),
            converted: true,
        });
    }
    let buf = ModelBuf::map(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Opened {
        buf,
        bpe: None,
        float: None,
        converted: false,
    })
}

/// The tokenizer of `model`: `bpe` (a checkpoint's, when it was converted
/// now), else the one stored in the file, else bytes for a 256-token
/// vocabulary, else bare ids. A pruned model's tokenizer re-spells tokens it
/// lacks with byte tokens.
pub fn tokenizer(model: &Model<'_>, bpe: Option<Bpe>) -> Result<Box<dyn Tokenizer>> {
    let bpe = match bpe {
        Some(t) => Some(t),
        None => stored_bpe(model)?,
    };
    Ok(match (bpe, ByteTokenizer::for_vocab(model.config.vocab)) {
        (Some(t), _) => Box::new(QwenTokenizer(t, model.keep.map(|k| k.to_vec()))),
        (None, Ok(t)) => Box::new(t),
        (None, Err(_)) => Box::new(IdTokenizer),
    })
}

/// The BPE tokenizer stored in a model file, if any.
pub fn stored_bpe(model: &Model<'_>) -> Result<Option<Bpe>> {
    model
        .file()
        .tokenizer()
        .map(|blob| Bpe::from_blob(blob).context("the model's tokenizer"))
        .transpose()
}

/// State memory for the CPU decoder of `model` (prefill chunks of
/// [`edgedecoding_model::CPU_CHUNK`] tokens: each weight streamed once per 64 prompt tokens).
pub fn state_mem(model: &Model<'_>) -> StateMem {
    StateMem::with_chunk(&model.config, cpu_chunk(&model.config))
}

/// The CPU decoder: `model` with its derived lm_head, state in `mem`
/// ([`state_mem`]), backend `be` (normally `edgedecoding_model::fast::Fast`).
pub fn cpu_decoder<'m, 's, B: Backend>(
    model: Model<'m>,
    mem: &'s mut StateMem,
    be: B,
) -> Result<Decoder<'m, 's, B>> {
    let st = State::with_chunk(&model.config, mem.bytes(), cpu_chunk(&model.config))?;
    Ok(Decoder::new(model, Head::derived(&model)?, st, be)?)
}

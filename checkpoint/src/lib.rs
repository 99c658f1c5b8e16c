//! Readers of the checkpoints users hold — GGUF files and Hugging Face folders
//! of the Qwen2 family — producing the f32 [`FloatModel`] that the converter
//! quantizes.
//!
//! * [`load_float_model`]: one entry for a `.gguf` file or a Hugging Face
//!   folder (`config.json` + `model.safetensors` or shards).
//! * [`gguf`]: the GGUF reader (v2/v3, every metadata type, tensor infos,
//!   alignment, memory-mapped) with a typed metadata API for tokenizers
//!   ([`GgufMetadata`], [`gguf::read_metadata`]).
//! * [`quant`]: bit-exact dequantization of F32, F16, BF16, Q8_0, Q4_0, Q4_1,
//!   Q5_0, Q5_1, Q4_K, Q5_K and Q6_K.
//! * [`hf`]: `config.json` and safetensors (BF16, F16, F32).
//!
//! Malformed input never panics: every failure is an [`Error`] that names the
//! file, the key or tensor and the byte offset; allocations are bounded by the
//! file's size.
#![warn(missing_docs)]
#![deny(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use edgedecoding_model::float_ref::FloatModel;

mod build;
mod error;
pub mod gguf;
pub mod hf;
pub mod quant;
mod qwen2;
mod source;

pub use error::Error;
pub use gguf::{Array, GgufFile, GgufMetadata, TensorInfo, Value};
pub use hf::HfInfo;
pub use quant::GgmlType;

/// A progress callback: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Options of [`load_float_model`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Context length written into the model's `Config` (the converter's
    /// context option: 192 or 1024 on the accelerator).
    pub ctx: usize,
    /// Kept vocabulary (full token ids, strictly ascending): the embedding
    /// (and a separate head) hold only these rows, in this order, and
    /// `config.n_kept` is its length. `None`: the whole vocabulary.
    pub keep: Option<Vec<u32>>,
    /// Use the checkpoint's separate output head (`output.weight` /
    /// `lm_head.weight`) when it has one; otherwise (and by default) the head
    /// is tied to the embedding (`FloatModel::head = None`).
    pub use_output_head: bool,
}

impl LoadOptions {
    /// Whole vocabulary, tied head, context `ctx`.
    pub fn new(ctx: usize) -> Self {
        Self {
            ctx,
            keep: None,
            use_output_head: false,
        }
    }
}

impl Default for LoadOptions {
    /// Context of the accelerator's fast bitstream (192), whole vocabulary,
    /// tied head.
    fn default() -> Self {
        Self::new(edgedecoding_model::config::CTX_FAST)
    }
}

/// What the checkpoint offers besides the weights (for the tokenizer).
#[derive(Clone, Debug)]
pub enum Metadata {
    /// A GGUF file's metadata (`tokenizer.ggml.*` and the rest).
    Gguf(GgufMetadata),
    /// A Hugging Face folder (its `tokenizer.json` lives there).
    Hf(HfInfo),
}

impl Metadata {
    /// The GGUF metadata, for a GGUF checkpoint.
    pub fn gguf(&self) -> Option<&GgufMetadata> {
        match self {
            Metadata::Gguf(m) => Some(m),
            Metadata::Hf(_) => None,
        }
    }

    /// The folder information, for a Hugging Face checkpoint.
    pub fn hf(&self) -> Option<&HfInfo> {
        match self {
            Metadata::Hf(h) => Some(h),
            Metadata::Gguf(_) => None,
        }
    }

    /// The folder, for a Hugging Face checkpoint.
    pub fn hf_dir(&self) -> Option<&Path> {
        self.hf().map(|h| h.dir.as_path())
    }
}

/// The kinds of checkpoint [`detect`] recognizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// A GGUF file.
    Gguf(PathBuf),
    /// A Hugging Face folder.
    HfFolder(PathBuf),
}

/// Recognizes a checkpoint: a folder (or a `config.json` / `*.safetensors` /
/// `*.safetensors.index.json` inside one) is a Hugging Face folder; a file
/// that starts with `GGUF` or is named `*.gguf` is a GGUF file.
pub fn detect(path: &Path) -> Result<Checkpoint, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        op: "open",
        source,
    })?;
    if meta.is_dir() {
        return Ok(Checkpoint::HfFolder(path.to_path_buf()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            op: "read",
            source,
        })?;
    if (n == 4 && magic == gguf::MAGIC) || name.to_ascii_lowercase().ends_with(".gguf") {
        return Ok(Checkpoint::Gguf(path.to_path_buf()));
    }
    if name == hf::CONFIG || name.ends_with(".safetensors") || name == hf::INDEX {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Ok(Checkpoint::HfFolder(dir));
    }
    Err(Error::NotACheckpoint {
        path: path.to_path_buf(),
        reason: "the file does not start with \"GGUF\" and is not in a Hugging Face folder".into(),
    })
}

/// Loads a `.gguf` file or a Hugging Face folder as a float model (see
/// [`LoadOptions`]), with the metadata the tokenizer needs.
pub fn load_float_model(path: &Path, opts: &LoadOptions) -> Result<(FloatModel, Metadata), Error> {
    load_float_model_with_progress(path, opts, &mut |_, _, _| {})
}

/// [`load_float_model`] reporting `(stage, done, total)` as tensors are read.
pub fn load_float_model_with_progress(
    path: &Path,
    opts: &LoadOptions,
    progress: Progress<'_>,
) -> Result<(FloatModel, Metadata), Error> {
    match detect(path)? {
        Checkpoint::Gguf(p) => {
            progress("open", 0, 1);
            let file = GgufFile::open(&p)?;
            progress("open", 1, 1);
            let model = gguf::load_qwen2(&file, opts, progress)?;
            Ok((model, Metadata::Gguf(file.into_metadata())))
        }
        Checkpoint::HfFolder(dir) => {
            let (model, info) = hf::load_folder(&dir, opts, progress)?;
            Ok((model, Metadata::Hf(info)))
        }
    }
}

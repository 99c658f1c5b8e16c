//! Where a model comes from (a `.edq` file, or a checkpoint converted on the
//! fly), the tokenizer that goes with it, and the CPU decoder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgedecoding_model::float_ref::FloatModel;
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{cpu_chunk, Backend, Config, Decoder, Head, Model, State, StateMem};
use edgedecoding_tokenizer::Tokenizer as Bpe;

use crate::convert;
use crate::keep::Keep;
use crate::text::{ByteTokenizer, IdTokenizer, QwenTokenizer, Tokenizer};
use crate::Progress;

/// A model file opened from a path.
pub struct Opened {
    /// The model bytes: the `.edq` file (or the cached conversion)
    /// memory-mapped, or the conversion's output in memory.
    pub buf: ModelBuf,
    /// The checkpoint's tokenizer when it was converted now (a `.edq` file
    /// carries its own: see [`tokenizer`]).
    pub bpe: Option<Bpe>,
    /// The checkpoint's float model when it was loaded now (converted now, or
    /// `want_float`).
    pub float: Option<FloatModel>,
    /// Whether the model was converted now (else mapped from a `.edq` file).
    pub converted: bool,
    /// The cached conversion used or written, for a checkpoint.
    pub cached: Option<PathBuf>,
}

/// Whether `path` is a checkpoint to convert (a GGUF file or a Hugging Face
/// folder, as `edgedecoding_checkpoint::detect` recognizes them) rather than
/// a `.edq` file.
pub fn is_checkpoint(path: &Path) -> bool {
    edgedecoding_checkpoint::detect(path).is_ok()
}

/// The directory of cached files: `$EDGEDECODING_CACHE`, else
/// `~/.cache/edgedecoding`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("EDGEDECODING_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".cache").join("edgedecoding")
        })
}

/// The directory of cached conversions: [`cache_dir`]`/converted`.
pub fn conversion_cache_dir() -> PathBuf {
    cache_dir().join("converted")
}

/// Where the conversion of checkpoint `path` with `opts` is cached, under
/// `dir`: the name carries a hash of the checkpoint's canonical path, size and
/// modification time (of every file of a folder, and of a keep-list or
/// keep-corpus file), the options, the quantizer's settings
/// ([`convert::quantizer_key`]) and this converter's version, so a changed
/// checkpoint, keep file, option or quantizer converts again.
pub fn cached_path(dir: &Path, path: &Path, opts: &convert::Opts) -> Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let canon = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    let mut files = vec![canon.clone()];
    if canon.is_dir() {
        files = std::fs::read_dir(&canon)
            .with_context(|| format!("listing {}", canon.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
    }
    // a keep file is named in `opts`; its size and time also go in the key
    let keep_file = match &opts.keep {
        Some(Keep::List(p))
        | Some(Keep::Count {
            corpus: Some(p), ..
        }) => Some(p),
        _ => None,
    };
    // FNV-1a over a stable text: the same key on every run and platform
    let mut key = format!(
        "{}|{:?}|{}|",
        canon.display(),
        opts,
        env!("CARGO_PKG_VERSION")
    );
    // the quantizer's own settings (empty for rtn, so rtn keys stay as they were)
    let q = convert::quantizer_key(opts);
    if !q.is_empty() {
        key.push_str(&q);
        key.push('|');
    }
    for f in files.iter().chain(keep_file) {
        let md = std::fs::metadata(f).with_context(|| format!("reading {}", f.display()))?;
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        key.push_str(&format!("{}:{}:{}|", f.display(), md.len(), mtime));
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    key.hash(&mut h);
    let stem = canon
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    Ok(dir.join(format!("{stem}-{:016x}.edq", h.finish())))
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The hidden temporary file [`write_atomic`] writes before renaming it to
/// `path` (`.NAME.tmpPID` beside it).
pub fn temp_file(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ))
}

/// Writes `bytes` to `path` through [`temp_file`] and a rename, so a failure
/// never leaves a half-written file, nor the temporary one. `path` must not be
/// a directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        bail!("{} is a directory; give a file name", path.display());
    }
    let tmp = temp_file(path);
    if let Some(dir) = tmp.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let res = std::fs::write(&tmp, bytes)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Opens `path`: a checkpoint is converted with `opts` (`progress` sees its
/// stages) — or, with a `cache` directory, taken from there when it was
/// converted before with the same options ([`cached_path`]); a conversion is
/// stored there with its SIMD layout. Anything else is memory-mapped as a
/// `.edq` file. `want_float`: also load the checkpoint's float model when the
/// cache is used. The model is not validated yet (`buf.model()` does it once;
/// a cached file that does not validate is converted again).
pub fn open(
    path: &Path,
    opts: &convert::Opts,
    cache: Option<&Path>,
    want_float: bool,
    progress: Progress,
) -> Result<Opened> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    if is_checkpoint(path) {
        let cached = match cache {
            Some(dir) => Some(cached_path(dir, path, opts)?),
            None => None,
        };
        if let Some(c) = &cached {
            if let Ok(buf) = ModelBuf::map(c) {
                if buf.model().is_ok() {
                    let float = if want_float {
                        Some(convert::float_model(path, opts, progress)?.0)
                    } else {
                        None
                    };
                    return Ok(Opened {
                        buf,
                        bpe: None,
                        float,
                        converted: false,
                        cached,
                    });
                }
            }
        }
        let (mut bytes, fm, tok) = convert::convert(path, opts, progress)?;
        if let Some(c) = &cached {
            bytes = convert::with_simd(&bytes, opts.threads, progress)?;
            // a cache that cannot be written is not an error: the model is here
            if let Err(e) = write_atomic(c, &bytes) {
                eprintln!("[not cached: {e:#}]");
            }
        }
        return Ok(Opened {
            buf: ModelBuf::from_bytes(&bytes),
            bpe: Some(tok),
            float: Some(fm),
            converted: true,
            cached,
        });
    }
    let buf = ModelBuf::map(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Opened {
        buf,
        bpe: None,
        float: None,
        converted: false,
        cached: None,
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

/// The configuration the CPU decoder of `model` runs with: the model's, with a
/// run-time context (KV-cache capacity) of `ctx` positions when given — at
/// least 1 and at most the model's context (its RoPE table's positions).
pub fn run_config(model: &Model<'_>, ctx: Option<usize>) -> Result<Config> {
    let max = model.config.ctx;
    match ctx {
        None => Ok(model.config),
        Some(n) if (1..=max).contains(&n) => Ok(Config { ctx: n, ..model.config }),
        Some(n) => bail!(
            "context size {n} is outside 1..={max}: this model holds {max} positions (convert the checkpoint again with a larger --ctx for more)"
        ),
    }
}

/// The BPE tokenizer stored in a model file, if any.
pub fn stored_bpe(model: &Model<'_>) -> Result<Option<Bpe>> {
    model
        .file()
        .tokenizer()
        .map(|blob| Bpe::from_blob(blob).context("the model's tokenizer"))
        .transpose()
}

/// State memory for the CPU decoder of configuration `c` ([`run_config`];
/// prefill chunks of [`edgedecoding_model::CPU_CHUNK`] tokens: each weight
/// streamed once per 64 prompt tokens).
pub fn state_mem(c: &Config) -> StateMem {
    StateMem::with_chunk(c, cpu_chunk(c))
}

/// The CPU decoder: `model` with its derived lm_head, run configuration `c`
/// ([`run_config`]), state in `mem` ([`state_mem`] of `c`), backend `be`
/// (normally `edgedecoding_model::fast::Fast`).
pub fn cpu_decoder<'m, 's, B: Backend>(
    model: Model<'m>,
    c: &Config,
    mem: &'s mut StateMem,
    be: B,
) -> Result<Decoder<'m, 's, B>> {
    let st = State::with_chunk(c, mem.bytes(), cpu_chunk(c))?;
    Ok(Decoder::new(model, Head::derived(&model)?, st, be)?)
}

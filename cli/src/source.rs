//! Where a model comes from: a `.edq` file, a checkpoint converted on the fly
//! (both through `edgedecoding_runtime::source`) or the built-in generator.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use edgedecoding_model::builtin::{float_model, generate};
use edgedecoding_model::fast::Fast;
use edgedecoding_model::float_ref::FloatModel;
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{Config, Model};
use edgedecoding_runtime::convert;
use edgedecoding_runtime::text::Tokenizer;
use indicatif::{ProgressBar, ProgressStyle};

pub use edgedecoding_runtime::source::{cpu_decoder, state_mem};

use crate::ModelArgs;

/// Built-in model sizes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Builtin {
    /// 2 layers, hidden 64, byte vocabulary (tests).
    Tiny,
    /// 4 layers, hidden 256, byte vocabulary, 1024 positions (the default).
    Small,
    /// The full Qwen2.5-0.5B shape (24 layers, hidden 896, vocab 151936),
    /// random weights; generated once (about a minute) and cached.
    Full,
}

impl Builtin {
    /// Its configuration.
    pub fn config(self) -> Config {
        match self {
            Builtin::Tiny => Config {
                ctx: 256,
                ..Config::tiny()
            },
            Builtin::Small => Config {
                n_layers: 4,
                hidden: 256,
                ffn: 768,
                n_heads: 4,
                n_kv_heads: 2,
                head_dim: 64,
                vocab: 256,
                n_kept: 256,
                rope_theta: 1_000_000,
                ctx: 1024,
            },
            Builtin::Full => Config::qwen2_5_0_5b(1024),
        }
    }
}

/// A loaded model with its tokenizer.
pub struct Loaded {
    pub name: String,
    /// The `.edq` file it was mapped from (None: built in or converted now).
    pub path: Option<PathBuf>,
    pub buf: ModelBuf,
    pub tok: Box<dyn Tokenizer>,
    builtin: Option<(Builtin, u64)>,
    float: Option<FloatModel>,
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

fn cache_dir() -> PathBuf {
    std::env::var_os("EDGEDECODING_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".cache").join("edgedecoding")
        })
}

/// The hidden temporary file [`write_atomic`] writes before renaming it to
/// `path` (`.NAME.tmpPID` beside it): the CLI removes it on SIGINT.
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

/// `path` can be an output file: not a directory, not ending in `/`. Checked
/// before any work, so a bad `--out` costs nothing.
pub fn check_out_file(path: &Path) -> Result<()> {
    if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') {
        bail!(
            "--out {} is a directory; give a file name (e.g. {}/model.edq)",
            path.display(),
            path.display().to_string().trim_end_matches('/')
        );
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a failure
/// never leaves a half-written file, nor the temporary one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    check_out_file(path)?;
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

fn generate_builtin(b: Builtin, seed: u64, threads: usize) -> Result<Vec<u8>> {
    let cfg = b.config();
    let pb = bar(cfg.n_layers as u64, "quantize");
    let bytes = generate(&cfg, seed, threads, &mut |stage, done, total| {
        pb.set_message(stage.to_string());
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    Ok(bytes)
}

/// Loads `--model` or the built-in model.
pub fn load(m: &ModelArgs, want_float: bool) -> Result<Loaded> {
    let mut float = None;
    let mut bpe = None;
    if m.keep().is_some() && !is_checkpoint_arg(m) {
        bail!(
            "--keep-vocab and --keep-list prune a checkpoint (a .gguf file or a Hugging Face folder) while converting it; {} is not one (export-hw prunes any full-vocabulary model at export)",
            m.model
                .as_ref()
                .map_or("the built-in model".to_string(), |p| p.display().to_string())
        );
    }
    let (name, buf, builtin) = match &m.model {
        Some(p) => {
            let opts = convert::Opts {
                ctx: m.ctx,
                keep: m.keep(),
                output_head: m.output_head,
                threads: m.threads,
            };
            let t0 = std::time::Instant::now();
            let pb = bar(1, "load");
            let opened =
                edgedecoding_runtime::source::open(p, &opts, &mut |stage, done, total| {
                    pb.set_message(stage.to_string());
                    pb.set_length(total.max(1) as u64);
                    pb.set_position(done as u64);
                })?;
            pb.finish_and_clear();
            if opened.converted {
                eprintln!(
                    "[converted {} in {:.1} s: {:.1} MB]",
                    p.display(),
                    t0.elapsed().as_secs_f64(),
                    opened.buf.bytes().len() as f64 / 1e6
                );
            }
            if want_float {
                float = opened.float;
            }
            bpe = opened.bpe;
            (p.display().to_string(), opened.buf, None)
        }
        None => {
            let b = m.builtin;
            let name = format!("built-in {b:?} (seed {:#x})", m.seed).to_lowercase();
            eprintln!(
                "[{name}: random weights, so its text is gibberish; `bash scripts/quickstart.sh` runs the real model]"
            );
            let bytes = if b == Builtin::Full {
                let path = cache_dir().join(format!("builtin-full-{:016x}.edq", m.seed));
                match std::fs::read(&path) {
                    Ok(bytes)
                        if Model::from_bytes(ModelBuf::from_bytes(&bytes).bytes()).is_ok() =>
                    {
                        bytes
                    }
                    _ => {
                        eprintln!(
                            "generating the full-size built-in model (cached at {})",
                            path.display()
                        );
                        let bytes = generate_builtin(b, m.seed, m.threads)?;
                        write_atomic(&path, &bytes)?;
                        bytes
                    }
                }
            } else {
                generate_builtin(b, m.seed, m.threads)?
            };
            (name, ModelBuf::from_bytes(&bytes), Some((b, m.seed)))
        }
    };
    // validate now so errors name the file
    buf.model().with_context(|| format!("loading {name}"))?;
    let model = buf.model()?;
    let tok = edgedecoding_runtime::source::tokenizer(&model, bpe)
        .with_context(|| format!("tokenizer of {name}"))?;
    let path = m
        .model
        .clone()
        .filter(|p| p.is_file() && !edgedecoding_runtime::source::is_checkpoint(p));
    Ok(Loaded {
        name,
        path,
        buf,
        tok,
        builtin,
        float,
    })
}

/// Whether `--model` is a checkpoint (converted, and pruned, when loaded).
pub fn is_checkpoint_arg(m: &ModelArgs) -> bool {
    m.model
        .as_deref()
        .is_some_and(edgedecoding_runtime::source::is_checkpoint)
}

impl Loaded {
    /// The model view.
    pub fn model(&self) -> Result<Model<'_>> {
        Ok(self.buf.model()?)
    }

    /// The decoder's backend: every matrix and the derived lm_head in the SIMD
    /// layout — the file's stored section, or built now (with a progress bar
    /// and a hint) when the file has none.
    pub fn backend<'m>(&self, model: &Model<'m>, threads: usize) -> Result<Fast<'m>> {
        if model.file().simd_section().is_some() {
            return Ok(Fast::new(model, threads)?);
        }
        let t0 = std::time::Instant::now();
        let pb = bar(0, "repack");
        let fast = Fast::with_progress(model, threads, &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })?;
        pb.finish_and_clear();
        if t0.elapsed().as_secs_f64() > 1.0 {
            eprintln!(
                "[{}: no stored SIMD layout; built {} MB of it in {:.1} s. `edgedecoding convert --model {} --out NEW.edq` stores it and starts instantly]",
                self.name,
                fast.weight_bytes() / 1_000_000,
                t0.elapsed().as_secs_f64(),
                self.name,
            );
        }
        Ok(fast)
    }

    /// The model file's bytes with the SIMD section (FORMAT.md §6), as
    /// `convert` writes them (built here if the source has none).
    pub fn bytes_with_simd(&self, threads: usize) -> Result<Vec<u8>> {
        let model = self.model()?;
        if model.file().simd_section().is_some() {
            return Ok(self.buf.bytes().to_vec());
        }
        let pb = bar(0, "SIMD layout");
        let sec = edgedecoding_model::fast::simd_section(&model, threads, &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })?;
        pb.finish_and_clear();
        Ok(edgedecoding_model::edq::write::with_simd(
            self.buf.bytes(),
            &sec,
        )?)
    }

    /// The float model for `--float`: the built-in generator's weights or the
    /// checkpoint's (loaded when the model was converted on the fly).
    pub fn float_model(&mut self) -> Result<FloatModel> {
        if let Some(f) = self.float.take() {
            return Ok(f);
        }
        match self.builtin {
            Some((b, seed)) => Ok(float_model(&b.config(), seed)?),
            None => bail!("--float needs the original float weights: use the built-in model (no --model) or a checkpoint (.gguf or Hugging Face folder); `{}` holds only integer weights", self.name),
        }
    }
}

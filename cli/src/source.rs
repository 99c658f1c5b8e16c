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

pub use edgedecoding_runtime::source::{cache_dir, conversion_cache_dir, is_checkpoint, temp_file};

/// The progress of a job of named stages (a conversion: `tensors`,
/// `calibrate`, `quantize`, `gptq calibrate`, `gptq`, …) on stderr: a bar when
/// stderr is a terminal, else one `[stage (t s)]` line as each stage starts
/// once the job has run a second, so a log or a pipe sees a minutes-long
/// conversion advance.
struct Stages {
    pb: ProgressBar,
    lines: bool,
    last: String,
    t0: std::time::Instant,
}

impl Stages {
    fn new(what: &str) -> Self {
        use std::io::IsTerminal;
        Stages {
            pb: bar(1, what),
            lines: !std::io::stderr().is_terminal(),
            last: String::new(),
            t0: std::time::Instant::now(),
        }
    }

    fn update(&mut self, stage: &str, done: usize, total: usize) {
        self.pb.set_message(stage.to_string());
        self.pb.set_length(total.max(1) as u64);
        self.pb.set_position(done as u64);
        // quick jobs (a cache hit, the small built-in models) print nothing
        let t = self.t0.elapsed().as_secs_f64();
        if self.lines && stage != self.last && t >= 1.0 {
            eprintln!("[{stage} ({t:.1} s)]");
            self.last = stage.to_string();
        }
    }

    fn finish(self) {
        self.pb.finish_and_clear();
    }
}

/// [`edgedecoding_runtime::source::write_atomic`] after [`check_out_file`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    check_out_file(path)?;
    edgedecoding_runtime::source::write_atomic(path, bytes)
}

fn generate_builtin(b: Builtin, seed: u64, threads: usize) -> Result<Vec<u8>> {
    let cfg = b.config();
    let mut st = Stages::new("quantize");
    let bytes = generate(&cfg, seed, threads, &mut |stage, done, total| {
        st.update(stage, done, total)
    })?;
    st.finish();
    Ok(bytes)
}

/// Loads `--model` or the built-in model. `run_ctx`: the run's `-c`, which
/// raises the context a checkpoint is converted with when it is larger than
/// the default.
pub fn load(m: &ModelArgs, want_float: bool, run_ctx: Option<usize>) -> Result<Loaded> {
    m.check()?;
    let mut float = None;
    let mut cached = None;
    let mut bpe = None;
    let (name, buf, builtin) = match &m.model {
        Some(p) => {
            let opts = convert::Opts {
                // a run's -c beyond the default context asks for that many
                ctx: m.conv.ctx.or(run_ctx.filter(|&c| c > convert::DEFAULT_CTX)),
                keep: m.keep(),
                output_head: m.conv.output_head,
                threads: m.threads,
                quantizer: m.conv.quantizer(),
                calib: m.conv.calib_text()?,
            };
            let cache = (!m.conv.no_cache).then(conversion_cache_dir);
            let t0 = std::time::Instant::now();
            let mut st = Stages::new("load");
            let opened = edgedecoding_runtime::source::open(
                p,
                &opts,
                cache.as_deref(),
                want_float,
                &mut |stage, done, total| st.update(stage, done, total),
            )?;
            st.finish();
            let secs = t0.elapsed().as_secs_f64();
            match (&opened.cached, opened.converted) {
                (Some(c), true) => eprintln!(
                    "[converted {} in {secs:.1} s: {:.1} MB, cached as {} for the next run]",
                    p.display(),
                    opened.buf.bytes().len() as f64 / 1e6,
                    c.display()
                ),
                (None, true) => eprintln!(
                    "[converted {} in {secs:.1} s: {:.1} MB]",
                    p.display(),
                    opened.buf.bytes().len() as f64 / 1e6
                ),
                (Some(c), false) => {
                    eprintln!(
                        "[{}: using its cached conversion {}]",
                        p.display(),
                        c.display()
                    )
                }
                (None, false) => {}
            }
            if opened.converted && convert::has_separate_head(p) {
                eprintln!(
                    "[{}: its separate output head is not used: the integer model derives its head from the embedding, as the accelerator does{}]",
                    p.display(),
                    if m.conv.output_head {
                        " (--output-head: the float reference uses it)"
                    } else {
                        "; --output-head makes the float reference use it"
                    }
                );
            }
            if want_float {
                float = opened.float;
            }
            bpe = opened.bpe;
            cached = opened.cached;
            (p.display().to_string(), opened.buf, None)
        }
        None => {
            let (b, seed) = m.builtin();
            let name = format!("built-in {b:?} (seed {seed:#x})").to_lowercase();
            eprintln!(
                "[{name}: random weights, so its text is gibberish; `bash scripts/quickstart.sh` runs the real model]"
            );
            let bytes = if b == Builtin::Full {
                let path = cache_dir().join(format!("builtin-full-{seed:016x}.edq"));
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
                        let bytes = generate_builtin(b, seed, m.threads)?;
                        write_atomic(&path, &bytes)?;
                        bytes
                    }
                }
            } else {
                generate_builtin(b, seed, m.threads)?
            };
            (name, ModelBuf::from_bytes(&bytes), Some((b, seed)))
        }
    };
    // validate now so errors name the file
    buf.model().with_context(|| format!("loading {name}"))?;
    let model = buf.model()?;
    let tok = edgedecoding_runtime::source::tokenizer(&model, bpe)
        .with_context(|| format!("tokenizer of {name}"))?;
    // the .edq file mapped: the one given, or the cached conversion
    let path = cached.or_else(|| m.model.clone().filter(|p| p.is_file() && !is_checkpoint(p)));
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

//! `edgedecoding`: run, convert, benchmark and inspect the integer model.

mod attribute;
mod bench;
mod source;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_model::float_ref::FloatModel;
use edgedecoding_runtime::generate::{ChatTurn, Generate};
use edgedecoding_runtime::text;

use source::{Builtin, Loaded};

/// Bit-exact integer reference of the EdgeDecoding accelerator (Qwen2.5-0.5B).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the model comes from. Options that cannot apply to the source given
/// are errors (see [`ModelArgs::check`]), not silently ignored.
#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// Model: a `.edq` file, a `.gguf` file or a Hugging Face folder
    /// (checkpoints are converted once and cached). Without it, the built-in
    /// model (random weights, for tests and offline demos).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Which built-in model when no --model is given [default: small].
    #[arg(long, value_enum)]
    builtin: Option<Builtin>,
    /// Seed of the built-in model's random weights.
    #[arg(long)]
    builtin_seed: Option<u64>,
    /// Worker threads, 1 to 256 (results are identical for any count).
    #[arg(long, short = 't', default_value_t = default_threads(), value_parser = thread_count())]
    threads: usize,
    #[command(flatten)]
    conv: ConvArgs,
}

/// How a checkpoint (`--model` a `.gguf` file or a Hugging Face folder) is
/// converted; errors with any other source.
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Conversion of a checkpoint (a .gguf file or a Hugging Face folder)")]
struct ConvArgs {
    /// Positions of the converted model (its RoPE table and largest KV cache;
    /// the accelerator builds for 192 or 1024) [default: 1024 (or the
    /// checkpoint's trained context when smaller), or the run's -c when larger].
    #[arg(long)]
    ctx: Option<usize>,
    /// Prune the vocabulary to this many ids (the accelerator keeps 37984 of
    /// 151936): the real special tokens, the 256 byte tokens, then the most
    /// frequent tokens of a calibration corpus (ties by id). export-hw also
    /// prunes a full-vocabulary .edq or built-in model at export.
    #[arg(long, conflicts_with = "keep_list")]
    keep_vocab: Option<usize>,
    /// The calibration corpus (UTF-8 text) of --keep-vocab's frequency
    /// ranking, instead of the built-in one.
    #[arg(long, requires = "keep_vocab")]
    keep_corpus: Option<PathBuf>,
    /// Prune the vocabulary to the ids of this file (one per line, `#`
    /// comments; all 256 byte tokens needed), e.g. written by `inspect
    /// --keep-list-out`.
    #[arg(long)]
    keep_list: Option<PathBuf>,
    /// Float reference: use the checkpoint's separate output head instead of
    /// the tied embedding (an error when the checkpoint has none).
    #[arg(long)]
    output_head: bool,
    /// Convert again even if a converted copy is cached
    /// (`~/.cache/edgedecoding/converted`, or `$EDGEDECODING_CACHE/converted`).
    #[arg(long)]
    no_cache: bool,
    /// How the weights are quantized: gptq (error-compensating, calibrated
    /// with the integer model; closer to the float model) or rtn (each group
    /// of 8 to its nearest grid point; about 5× faster to convert)
    /// [default: gptq].
    #[arg(long, value_enum)]
    quantizer: Option<QuantizerArg>,
    /// Calibration text of --quantizer gptq [default: a built-in text].
    #[arg(long, value_name = "FILE")]
    calib: Option<PathBuf>,
}

/// `--quantizer`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum QuantizerArg {
    /// Round to nearest.
    Rtn,
    /// Error-compensating (GPTQ).
    Gptq,
}

impl ConvArgs {
    /// The quantizer asked for.
    fn quantizer(&self) -> edgedecoding_runtime::convert::Quantizer {
        use edgedecoding_runtime::convert::Quantizer;
        match self.quantizer {
            None | Some(QuantizerArg::Gptq) => Quantizer::Gptq,
            Some(QuantizerArg::Rtn) => Quantizer::Rtn,
        }
    }

    /// The `--calib` file's text.
    fn calib_text(&self) -> Result<Option<String>> {
        match &self.calib {
            None => Ok(None),
            Some(p) => std::fs::read_to_string(p)
                .map(Some)
                .with_context(|| format!("--calib {}", p.display())),
        }
    }
}

/// Where pruning applies besides conversion, for the errors of
/// [`ModelArgs::check`].
fn keep_hint(m: &ModelArgs) -> &'static str {
    if m.keep().is_some() {
        " (export-hw prunes any full-vocabulary model at export)"
    } else {
        ""
    }
}

impl ModelArgs {
    /// Refuses options that cannot apply to the model source given.
    fn check(&self) -> Result<()> {
        let c = &self.conv;
        let conv_given: Vec<&str> = [
            (c.ctx.is_some(), "--ctx"),
            (c.keep_vocab.is_some(), "--keep-vocab"),
            (c.keep_list.is_some(), "--keep-list"),
            (c.output_head, "--output-head"),
            (c.no_cache, "--no-cache"),
            (c.quantizer.is_some(), "--quantizer"),
            (c.calib.is_some(), "--calib"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        match &self.model {
            Some(p) => {
                if self.builtin.is_some() || self.builtin_seed.is_some() {
                    bail!("--builtin / --builtin-seed choose the built-in model; they do not apply with --model");
                }
                if !conv_given.is_empty() && p.exists() && !source::is_checkpoint(p) {
                    bail!(
                        "{} applies when converting a checkpoint (a .gguf file or a Hugging Face folder); {} is an already converted model{}",
                        conv_given.join(", "),
                        p.display(),
                        keep_hint(self)
                    );
                }
            }
            None => {
                if !conv_given.is_empty() {
                    bail!(
                        "{} applies when converting a checkpoint given with --model; the built-in model has a fixed shape{}",
                        conv_given.join(", "),
                        keep_hint(self)
                    );
                }
            }
        }
        Ok(())
    }

    /// The built-in model's kind and seed.
    fn builtin(&self) -> (Builtin, u64) {
        (
            self.builtin.unwrap_or(Builtin::Small),
            self.builtin_seed
                .unwrap_or(edgedecoding_model::builtin::DEFAULT_SEED),
        )
    }
}

/// Run-time options of the commands that decode.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Run")]
struct RunArgs {
    /// Context size: KV-cache positions for this run, at most the model's
    /// [default: the model's].
    #[arg(long = "ctx-size", short = 'c')]
    ctx_size: Option<usize>,
    /// Layers offloaded to a GPU (llama.cpp: -ngl). This is a CPU
    /// implementation: only 0 is accepted.
    #[arg(long, value_name = "N")]
    n_gpu_layers: Option<u32>,
}

impl RunArgs {
    fn check(&self) -> Result<()> {
        match self.n_gpu_layers {
            None | Some(0) => Ok(()),
            Some(n) => bail!("--n-gpu-layers {n}: edgedecoding runs on the CPU (and on the accelerator); there is no GPU offload, use 0 or leave it out"),
        }
    }
}

/// Sampling (llama.cpp names). Greedy by default: temperature 0, the
/// accelerator's behaviour.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Sampling")]
struct SamplingArgs {
    /// Temperature (0 = greedy).
    #[arg(long, visible_alias = "temp", default_value_t = 0.0)]
    temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Drop tokens less likely than min-p times the most likely (0 = off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Penalty for tokens seen in the last --repeat-last-n tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Tokens the repeat penalty looks back over.
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Sampling seed.
    #[arg(long, short = 's', visible_alias = "sample-seed", default_value_t = 1)]
    seed: u64,
}

impl SamplingArgs {
    fn sampler(&self) -> Result<text::Sampler> {
        text::Sampler::new(self.temperature, self.top_k, self.top_p, self.seed)?
            .with_min_p(self.min_p)?
            .with_repeat_penalty(self.repeat_penalty, self.repeat_last_n)
    }
}

/// llama.cpp's multi-letter single-dash flags, spelled as this CLI's long options.
fn llama_aliases(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.map(|a| match a.to_str() {
        Some("-ngl") => "--n-gpu-layers".into(),
        Some("-sys") => "--system-prompt".into(),
        _ => a,
    })
    .collect()
}

/// Thread counts are checked when parsed: 0 or a count the machine cannot
/// create is an error message, not an abort.
fn thread_count() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS)
}

/// The largest thread count accepted.
const MAX_THREADS: u64 = 256;

impl ModelArgs {
    /// The pruning options as one value.
    fn keep(&self) -> Option<edgedecoding_runtime::keep::Keep> {
        use edgedecoding_runtime::keep::Keep;
        let c = &self.conv;
        match (&c.keep_vocab, &c.keep_list) {
            (Some(n), _) => Some(Keep::Count {
                n: *n,
                corpus: c.keep_corpus.clone(),
            }),
            (None, Some(l)) => Some(Keep::List(l.clone())),
            (None, None) => None,
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Compute only the new position (fast).
    Incremental,
    /// Re-run the current chunk of 8 positions every step, like the accelerator.
    Parity,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate text after a prompt (greedy by default), streamed.
    Generate {
        #[command(flatten)]
        m: ModelArgs,
        /// The prompt.
        #[arg(
            long,
            short,
            default_value = "The capital of France is",
            conflicts_with = "file"
        )]
        prompt: String,
        /// Read the prompt from a file instead.
        #[arg(long, short)]
        file: Option<PathBuf>,
        /// Tokens to generate.
        #[arg(long, short = 'n', default_value_t = 32)]
        max_tokens: usize,
        /// Decode mode.
        #[arg(long, value_enum, default_value_t = Mode::Incremental)]
        mode: Mode,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        s: SamplingArgs,
    },
    /// Interactive chat on stdin (answers on stdout); the oldest turns are
    /// dropped when the context fills.
    Chat {
        #[command(flatten)]
        m: ModelArgs,
        /// Tokens per answer at most.
        #[arg(long, short = 'n', default_value_t = 128)]
        max_tokens: usize,
        /// The system prompt (llama.cpp: -sys).
        #[arg(long, default_value = text::SYSTEM_PROMPT)]
        system_prompt: String,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        s: SamplingArgs,
    },
    /// Perplexity of a text file (integer model, or the float reference).
    Perplexity {
        #[command(flatten)]
        m: ModelArgs,
        /// UTF-8 text file.
        #[arg(long, short)]
        file: PathBuf,
        /// Window length in tokens (llama-perplexity: -c).
        #[arg(long, short = 'c', visible_alias = "ctx-size", default_value_t = 512)]
        window: usize,
        /// At most this many windows (0 = all).
        #[arg(long, default_value_t = 0)]
        max_windows: usize,
        /// Use the f32 reference on the original float weights instead
        /// (built-in model or a checkpoint).
        #[arg(long)]
        float: bool,
        /// Run both the integer model and the f32 reference; report both
        /// perplexities, their ratio and the teacher-forced top-1 agreement.
        #[arg(long, conflicts_with = "float")]
        compare: bool,
        /// With --compare: also run these converted models (e.g. the same
        /// checkpoint with another --quantizer) on the same windows, against
        /// the same float reference (computed once).
        #[arg(long, value_name = "MODEL.edq", requires = "compare")]
        also: Vec<PathBuf>,
        /// Where the integer model's error lives: run the float reference
        /// with each integer stage imitated alone, with all, and with all but
        /// one (weights, embedding/head, norms/biases, BFP inputs, int16
        /// Q/K/V, Q12 activations, tables), and print a table of perplexity,
        /// KL and top-1 agreement against the float reference (the weights also
        /// split by matrix). 21 passes over
        /// the windows: use --max-windows.
        #[arg(long, conflicts_with_all = ["float", "compare"])]
        attribute: bool,
        /// Score only the second half of each window (the predictions made
        /// with at least window/2 tokens of context), as llama-perplexity
        /// scores its perplexity and --kl-divergence.
        #[arg(long, conflicts_with = "attribute")]
        second_half: bool,
    },
    /// Prefill and decode speed (tokens per second), like llama-bench.
    Bench {
        #[command(flatten)]
        m: ModelArgs,
        /// Prompt tokens to prefill.
        #[arg(long, short = 'p', default_value_t = 64)]
        prefill: usize,
        /// Tokens to decode.
        #[arg(long, short = 'n', default_value_t = 16)]
        decode: usize,
        /// Thread counts to measure.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2], value_parser = thread_count())]
        thread_counts: Vec<usize>,
        /// Instruction sets: `best`, `all` (every one this CPU runs) or a list
        /// (`scalar,avx512vnni`).
        #[arg(long, default_value = "best")]
        isa: String,
        /// Repetitions of each test (mean ± standard deviation).
        #[arg(long, short = 'r', default_value_t = 3)]
        repetitions: usize,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = bench::Output::Md)]
        output: bench::Output,
        /// Same as `-o json`.
        #[arg(long, conflicts_with = "output")]
        json: bool,
        /// Also time a cold `generate -n 1` in a new process (needs --model).
        #[arg(long)]
        cold: bool,
        /// Also measure the scalar reference decoder (single thread, the
        /// arithmetic every fast path is tested against).
        #[arg(long)]
        reference: bool,
    },
    /// Summary of a model file.
    Inspect {
        #[command(flatten)]
        m: ModelArgs,
        /// Write the pruned model's keep list to this file (one id per line,
        /// the format `--keep-list` reads).
        #[arg(long)]
        keep_list_out: Option<PathBuf>,
    },
    /// Convert a checkpoint (GGUF or Hugging Face folder) or the built-in model
    /// to a `.edq` file (with the tokenizer inside).
    Convert {
        #[command(flatten)]
        m: ModelArgs,
        /// Output `.edq` path.
        #[arg(long, short)]
        out: PathBuf,
        /// Leave out the stored SIMD layout (FORMAT.md §6): a smaller file that
        /// the CPU fallback must repack at every start.
        #[arg(long)]
        no_simd: bool,
    },
    /// Golden vectors for the hardware team: kernel cases, per-layer
    /// intermediates, prefill/decode, ROM tables (docs/VECTORS.md).
    Vectors {
        #[command(flatten)]
        m: ModelArgs,
        #[command(flatten)]
        a: edgedecoding_reference_vectors::cli::VectorsArgs,
    },
    /// The accelerator's DDR images of a model (docs/VECTORS.md §5).
    ExportHw {
        #[command(flatten)]
        m: ModelArgs,
        #[command(flatten)]
        a: edgedecoding_reference_vectors::cli::ExportHwArgs,
    },
    /// Compare a testbench's output files with golden vectors (exit 0 only if all match).
    Verify {
        #[command(flatten)]
        a: edgedecoding_reference_vectors::cli::VerifyArgs,
    },
}

fn main() {
    default_sigpipe();
    let cli = Cli::parse_from(llama_aliases(std::env::args_os()));
    if let Err(e) = outputs_first(&cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    if let Err(e) = run(cli) {
        if e.chain()
            .any(|c| c.is::<edgedecoding_reference_vectors::Interrupted>())
        {
            // the writer stopped at the handler's request; its error path
            // removed the unfinished output
            eprintln!("\ninterrupted: removed the unfinished output");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Output into a closed pipe (`edgedecoding generate | head -c 10`) ends the
/// process quietly, as for other Unix tools, instead of an error or a panic
/// in a print: SIGPIPE back to its default action (Rust starts programs with
/// it ignored).
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only changes
    // this process's disposition of SIGPIPE; it runs first in `main`, before
    // any thread exists, and touches no Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Checks a command's output path before any work and arranges that the
/// temporary output it writes first (a `.NAME.tmpPID` file, a
/// `.NAME.partial-PID` directory) is removed when the process is interrupted
/// (SIGINT, SIGTERM, SIGHUP: exit status 130); error paths remove it themselves.
fn outputs_first(cmd: &Cmd) -> Result<()> {
    use edgedecoding_reference_vectors::{cli::partial_dir, suite::check_out_dir};
    let (temp, is_dir) = match cmd {
        Cmd::Convert { out, .. } => {
            source::check_out_file(out)?;
            (source::temp_file(out), false)
        }
        Cmd::Vectors { a, .. } => {
            check_out_dir(&a.out)?;
            (partial_dir(&a.out), true)
        }
        Cmd::ExportHw { a, .. } => {
            check_out_dir(&a.out)?;
            (partial_dir(&a.out), true)
        }
        _ => return Ok(()),
    };
    ctrlc::set_handler(move || {
        if is_dir {
            // vectors / export-hw: the writer checks this flag before every
            // file, then removes its folder and exits (see `main`); if it
            // does not get there (still computing), clean up here
            edgedecoding_reference_vectors::INTERRUPT
                .store(true, std::sync::atomic::Ordering::Relaxed);
            if temp.exists() {
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
        }
        // the writer may still be adding files: retry a few times
        for _ in 0..50 {
            let gone = if is_dir {
                std::fs::remove_dir_all(&temp).is_ok() || !temp.exists()
            } else {
                std::fs::remove_file(&temp).is_ok() || !temp.exists()
            };
            if gone {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("\ninterrupted: removed the unfinished output");
        std::process::exit(130);
    })
    .context("installing the interrupt handler")
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Generate {
            m,
            prompt,
            file,
            max_tokens,
            mode,
            run,
            s,
        } => {
            run.check()?;
            let sampler = s.sampler()?;
            let prompt = match file {
                Some(f) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the prompt file {}", f.display()))?,
                None => prompt,
            };
            let loaded = source::load(&m, false, run.ctx_size)?;
            generate(&loaded, &m, &run, &prompt, max_tokens, mode, sampler)
        }
        Cmd::Chat {
            m,
            max_tokens,
            system_prompt,
            run,
            s,
        } => {
            run.check()?;
            let sampler = s.sampler()?;
            let loaded = source::load(&m, false, run.ctx_size)?;
            chat(&loaded, &m, &run, max_tokens, &system_prompt, sampler)
        }
        Cmd::Perplexity {
            m,
            file,
            window,
            max_windows,
            float,
            compare,
            also,
            attribute,
            second_half,
        } => perplexity(
            &m,
            &file,
            window,
            max_windows,
            PplMode {
                float,
                compare,
                attribute,
                second_half,
            },
            &also,
        ),
        Cmd::Bench {
            m,
            prefill,
            decode,
            thread_counts,
            isa,
            repetitions,
            output,
            json,
            cold,
            reference,
        } => bench::run(
            &source::load(&m, false, None)?,
            &bench::Opts {
                prefill,
                decode,
                threads: thread_counts,
                isas: bench::parse_isas(&isa)?,
                reps: repetitions,
                output: if json { bench::Output::Json } else { output },
                reference,
                cold,
            },
        ),
        Cmd::Inspect { m, keep_list_out } => inspect(&m, keep_list_out.as_deref()),
        Cmd::Convert { m, out, no_simd } => {
            let loaded = source::load(&m, false, None)?;
            let mut bytes = if no_simd {
                loaded.buf.bytes().to_vec()
            } else {
                loaded.bytes_with_simd(m.threads)?
            };
            if loaded.model()?.rope.is_none() {
                // a file written before the RoPE ROM was stored (FORMAT §3)
                bytes = edgedecoding_model::convert::with_rope_rom(&bytes)?;
            }
            source::write_atomic(&out, &bytes)?;
            eprintln!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
        Cmd::Vectors { m, a } => {
            let l = source::load(&m, false, None)?;
            edgedecoding_reference_vectors::cli::vectors(&a, &l.name, l.buf.bytes(), m.threads)
        }
        Cmd::ExportHw { m, a } => {
            // a checkpoint is pruned while converting it; any other model at export
            let at_export = m.keep().filter(|_| !source::is_checkpoint_arg(&m));
            let mut mm = m.clone();
            if at_export.is_some() {
                (mm.conv.keep_vocab, mm.conv.keep_corpus, mm.conv.keep_list) = (None, None, None);
            }
            let l = source::load(&mm, false, None)?;
            let keep = match at_export {
                Some(k) => {
                    let model = l.model()?;
                    if model.keep.is_some() {
                        bail!(
                            "{} is already pruned ({} of {} ids kept); --keep-vocab and --keep-list prune a full vocabulary",
                            l.name,
                            model.config.n_kept,
                            model.config.vocab
                        );
                    }
                    let bpe = edgedecoding_runtime::source::stored_bpe(&model)?;
                    let (ids, what) =
                        edgedecoding_runtime::keep::resolve(&k, bpe.as_ref(), model.config.vocab)?;
                    if bpe.is_none() {
                        eprintln!("[{}: no tokenizer: the rule ranks ids only by id]", l.name);
                    }
                    eprintln!("[keep list: {what}]");
                    Some(ids)
                }
                None => None,
            };
            edgedecoding_reference_vectors::cli::export(&a, &l.name, l.buf.bytes(), m.threads, keep)
        }
        Cmd::Verify { a } => edgedecoding_reference_vectors::cli::verify(&a),
    }
}

fn generate(
    l: &Loaded,
    m: &ModelArgs,
    run: &RunArgs,
    prompt: &str,
    max_tokens: usize,
    mode: Mode,
    sampler: text::Sampler,
) -> Result<()> {
    let model = l.model()?;
    let c = edgedecoding_runtime::source::run_config(&model, run.ctx_size)?;
    // checked before the SIMD layout is built: a prompt that cannot fit fails at once
    let toks = l.tok.encode(prompt);
    if toks.is_empty() {
        bail!("the prompt encodes to no tokens");
    }
    if toks.len() > c.ctx {
        bail!(
            "the prompt has {} tokens, more than the context of {} positions ({})",
            toks.len(),
            c.ctx,
            if c.ctx < model.config.ctx {
                format!("-c can go up to the model's {}", model.config.ctx)
            } else {
                "convert the checkpoint again with a larger --ctx".to_string()
            }
        );
    }
    let be = l.backend(&model, m.threads)?;
    let mut mem = source::state_mem(&c);
    let mut d = source::cpu_decoder(model, &c, &mut mem, be)?;
    let t0 = Instant::now();
    let mut g = Generate::start(&mut d, &toks, sampler, mode == Mode::Parity, max_tokens)?;
    let t_prefill = t0.elapsed();
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}")?;
    let mut produced = vec![];
    let mut stream = l.tok.streamer();
    let t1 = Instant::now();
    while g.step(&mut d, &*l.tok, &mut |t| {
        produced.push(t);
        write!(out, "{}", stream(t))?;
        out.flush()?;
        Ok(())
    })? {}
    writeln!(out)?;
    out.flush()?;
    if g.context_full() {
        eprintln!("[context full: {} positions]", c.ctx);
    }
    let t_dec = t1.elapsed();
    eprintln!(
        "[{} prompt tokens in {:.2} s ({:.1} tok/s), {} generated in {:.2} s ({:.1} tok/s), {} threads]",
        toks.len(),
        t_prefill.as_secs_f64(),
        toks.len() as f64 / t_prefill.as_secs_f64(),
        produced.len(),
        t_dec.as_secs_f64(),
        produced.len() as f64 / t_dec.as_secs_f64().max(1e-9),
        m.threads
    );
    Ok(())
}

/// `chat`: a line of stdin per user message (a line that is not UTF-8 is
/// skipped and reported), answers streamed to stdout, everything else on
/// stderr (a `> ` prompt when stdin is a terminal). When a message does not
/// fit, the oldest turns are dropped and the rest is prefilled again.
fn chat(
    l: &Loaded,
    m: &ModelArgs,
    run: &RunArgs,
    max_tokens: usize,
    system: &str,
    sampler: text::Sampler,
) -> Result<()> {
    use std::io::IsTerminal;
    let model = l.model()?;
    let c = edgedecoding_runtime::source::run_config(&model, run.ctx_size)?;
    let be = l.backend(&model, m.threads)?;
    let mut mem = source::state_mem(&c);
    let mut d = source::cpu_decoder(model, &c, &mut mem, be)?;
    let tok = &*l.tok;
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    eprintln!(
        "[chat with {}; {} positions of context; empty line or EOF ends]",
        l.name, c.ctx
    );
    // (user message, answer tokens) of the turns in the context
    let mut history: Vec<(String, Vec<u32>)> = Vec::new();
    let mut sampler = Some(sampler);
    let mut buf = Vec::new();
    let mut lineno = 0usize;
    loop {
        if tty {
            eprint!("> ");
        }
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        lineno += 1;
        let line = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim_end_matches(['\n', '\r']).to_string(),
            Err(e) => {
                eprintln!(
                    "[line {lineno} skipped: not UTF-8 (invalid byte at column {})]",
                    e.valid_up_to() + 1
                );
                continue;
            }
        };
        if line.trim().is_empty() {
            break;
        }
        let mut turn = loop {
            let sys = history.is_empty().then_some(system);
            let s = sampler.take().unwrap_or_else(text::Sampler::greedy);
            match ChatTurn::start_sampled(&mut d, tok, &line, sys, max_tokens, s)? {
                Ok(turn) => break Some(turn),
                Err(s) => {
                    sampler = Some(s);
                    if history.is_empty() {
                        eprintln!(
                            "[message not sent: it needs more than the {} positions of context]",
                            c.ctx
                        );
                        break None;
                    }
                    // drop the oldest turn, prefill what is left
                    history.remove(0);
                    d.reset();
                    let mut toks = Vec::new();
                    for (i, (u, a)) in history.iter().enumerate() {
                        toks.extend(tok.chat_turn(u, (i == 0).then_some(system)));
                        toks.extend(a);
                        toks.extend(tok.end_of_turn());
                    }
                    if !toks.is_empty() {
                        d.prefill(&toks)?;
                    }
                    eprintln!(
                        "[context full: dropped the oldest turn; {} earlier turns kept]",
                        history.len()
                    );
                }
            }
        };
        let Some(mut t) = turn.take() else { continue };
        let mut answer = Vec::new();
        let mut stream = tok.streamer();
        while t.step(&mut d, tok, &mut |id| {
            answer.push(id);
            write!(out, "{}", stream(id))?;
            out.flush()?;
            Ok(())
        })? {}
        writeln!(out)?;
        out.flush()?;
        let (_, s) = t.finish_sampled(&mut d, tok)?;
        sampler = Some(s);
        history.push((line, answer));
    }
    Ok(())
}

/// The tokens of `text` (from `file`) and the window length perplexity uses:
/// `window` at most the model's context, or the whole text when shorter.
/// Errors if the text has a token the model lacks or nothing to predict.
fn perplexity_tokens(
    l: &Loaded,
    model: &edgedecoding_model::Model<'_>,
    file: &std::path::Path,
    text: &str,
    window: usize,
) -> Result<(Vec<u32>, usize)> {
    let toks = l.tok.encode(text);
    if let Some(&t) = toks.iter().find(|&&t| model.row_of_token(t).is_err()) {
        if model.keep.is_some() {
            bail!("{} contains token {t}, which this pruned model's kept vocabulary lacks: perplexity needs an unpruned model", file.display());
        }
        bail!(
            "{} encodes to token {t}, outside the model's vocabulary of {} ids: the model's tokenizer does not match its weights",
            file.display(),
            model.config.vocab
        );
    }
    let mut window = window;
    if window > model.config.ctx {
        eprintln!(
            "[window {window} is more than the model's context: using {}]",
            model.config.ctx
        );
        window = model.config.ctx;
    }
    if toks.len() < window {
        if toks.len() < 2 {
            bail!(
                "{} has {} tokens: nothing to predict",
                file.display(),
                toks.len()
            );
        }
        eprintln!(
            "[{} has {} tokens, fewer than the window of {window}: one window of {}]",
            file.display(),
            toks.len(),
            toks.len()
        );
        window = toks.len();
    }
    Ok((toks, window))
}

/// What `perplexity` runs besides the integer model.
#[derive(Clone, Copy)]
struct PplMode {
    float: bool,
    compare: bool,
    attribute: bool,
    /// Score only predictions `window/2 .. window-1` of each window.
    second_half: bool,
}

/// Perplexity as llama.cpp's `llama-perplexity` reports it: consecutive
/// windows of `window` tokens (a shorter file: one window of all its tokens),
/// every token after the first of a window predicted (with `second_half`,
/// as llama-perplexity: those after position `window/2`); the running value after
/// each window on stderr (`[1]x,[2]y,...`), then the final estimate with its
/// standard error `PPL · sqrt(var(nll) / (n - 1))`.
fn perplexity(
    m: &ModelArgs,
    file: &std::path::Path,
    window: usize,
    max_windows: usize,
    mode: PplMode,
    also: &[PathBuf],
) -> Result<()> {
    let PplMode {
        float,
        compare,
        attribute,
        second_half,
    } = mode;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if window < 2 {
        bail!("the window must be at least 2 tokens");
    }
    let mut l = source::load(m, float || compare || attribute, Some(window))?;
    if attribute {
        let fm = l.float_model()?;
        let model = l.model()?;
        let (toks, window) = perplexity_tokens(&l, &model, file, &text, window)?;
        let mut windows: Vec<&[u32]> = toks.chunks_exact(window).collect();
        if max_windows > 0 {
            windows.truncate(max_windows);
        }
        return attribute::attribute(&l, fm, &model, &windows, m.threads);
    }
    let fm: Option<FloatModel> = if float || compare {
        Some(l.float_model()?)
    } else {
        None
    };
    let model = l.model()?;
    let (toks, window) = perplexity_tokens(&l, &model, file, &text, window)?;
    let mut windows: Vec<&[u32]> = toks.chunks_exact(window).collect();
    if max_windows > 0 {
        windows.truncate(max_windows);
    }
    let row = |t: u32| model.row_of_token(t).unwrap_or(0);
    // the first scored position: logits of positions first..window-1
    // predict tokens first+1..window
    let first = if second_half { window / 2 } else { 0 };
    if window - 1 - first == 0 {
        bail!(
            "--second-half of a {window}-token window scores nothing: use a longer window or file"
        );
    }
    let scored = |i: usize, n: usize| i >= first && i + 1 < n;
    // per prediction: integer and float nll; agreement of their argmax
    let (mut nll_i, mut nll_f) = (Vec::new(), Vec::new());
    let mut agree = 0usize;
    let c = edgedecoding_runtime::source::run_config(&model, Some(window))?;
    let mut dec = if float && !compare {
        None
    } else {
        let be = l.backend(&model, m.threads)?;
        Some((be, source::state_mem(&c)))
    };
    // the --also models: (name, loaded); each must have this model's shape
    let mut extra: Vec<(String, Loaded)> = Vec::new();
    for p in also {
        let ma = ModelArgs {
            model: Some(p.clone()),
            builtin: None,
            builtin_seed: None,
            threads: m.threads,
            conv: ConvArgs::default(),
        };
        let el = source::load(&ma, false, Some(window))?;
        if el.model()?.config != model.config {
            bail!(
                "--also {}: not the same model shape as --model",
                p.display()
            );
        }
        extra.push((p.display().to_string(), el));
    }
    let extra_models: Vec<_> = extra
        .iter()
        .map(|(_, el)| el.model())
        .collect::<Result<_>>()?;
    let mut extra_dec = Vec::new();
    for (em, (_, el)) in extra_models.iter().zip(&extra) {
        extra_dec.push((el.backend(em, m.threads)?, source::state_mem(&c)));
    }
    let mut extra_nll: Vec<Vec<f64>> = vec![Vec::new(); extra.len()];
    let mut extra_agree = vec![0usize; extra.len()];
    // --compare: the integer logits of the current window (for the KL), per model
    let n_kept = model.config.n_kept;
    let mut kl = 0.0f64;
    let mut extra_kl = vec![0.0f64; extra.len()];
    let mut int_lg: Vec<i32> = Vec::new();
    let mut extra_lg: Vec<Vec<i32>> = vec![Vec::new(); extra.len()];
    let t0 = Instant::now();
    let running = |nll: &[f64]| (nll.iter().sum::<f64>() / nll.len() as f64).exp();
    for (k, w) in windows.iter().enumerate() {
        let mut int_top = vec![0usize; w.len()];
        let mut extra_top = vec![vec![0usize; w.len()]; extra.len()];
        for (x, (em, (be, mem))) in extra_models.iter().zip(extra_dec.iter_mut()).enumerate() {
            let mut d = source::cpu_decoder(*em, &c, mem, &*be)?;
            let (nll, top, keep) = (&mut extra_nll[x], &mut extra_top[x], &mut extra_lg[x]);
            keep.resize(w.len() * n_kept, 0);
            d.prefill_all(w, &mut |i, lg| {
                if scored(i, w.len()) {
                    nll.push(text::nll_q12(lg, row(w[i + 1])));
                    top[i] = argmax_i32(lg).unwrap_or(0);
                    keep[i * n_kept..(i + 1) * n_kept].copy_from_slice(&lg[..n_kept]);
                }
            })?;
        }
        if compare {
            int_lg.resize(w.len() * n_kept, 0);
        }
        if let Some((be, mem)) = dec.as_mut() {
            let mut d = source::cpu_decoder(model, &c, mem, &*be)?;
            d.prefill_all(w, &mut |i, lg| {
                if scored(i, w.len()) {
                    nll_i.push(text::nll_q12(lg, row(w[i + 1])));
                    int_top[i] = argmax_i32(lg).unwrap_or(0);
                    if compare {
                        int_lg[i * n_kept..(i + 1) * n_kept].copy_from_slice(&lg[..n_kept]);
                    }
                }
            })?;
        }
        if let Some(fm) = &fm {
            fm.forward(w, m.threads, None, first..w.len() - 1, &mut |i, lg| {
                nll_f.push(text::nll_f32(lg, row(w[i + 1])));
                let ft = lg
                    .iter()
                    .enumerate()
                    .fold(
                        (0usize, f32::MIN),
                        |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) },
                    )
                    .0;
                agree += (ft == int_top[i]) as usize;
                for (a, t) in extra_agree.iter_mut().zip(&extra_top) {
                    *a += (ft == t[i]) as usize;
                }
                if compare {
                    let r = i * n_kept..(i + 1) * n_kept;
                    kl += text::kl_f32_q12(lg, &int_lg[r.clone()]).unwrap_or(f64::NAN);
                    for (k, v) in extra_kl.iter_mut().zip(&extra_lg) {
                        *k += text::kl_f32_q12(lg, &v[r.clone()]).unwrap_or(f64::NAN);
                    }
                }
            })?;
        }
        let shown = if dec.is_some() { &nll_i } else { &nll_f };
        eprint!("[{}]{:.4},", k + 1, running(shown));
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let count = windows.len() * (window - 1 - first);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{count} predictions{}, {} windows of {window} tokens, {} tokens in the file, {secs:.0} s",
        if second_half {
            " (the second half of each window)"
        } else {
            ""
        },
        windows.len(),
        toks.len()
    );
    // llama.cpp's estimate: exp(mean nll) and its standard error
    let estimate = |nll: &[f64]| {
        let n = nll.len() as f64;
        let mean = nll.iter().sum::<f64>() / n;
        let var = nll.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
        let ppl = mean.exp();
        (ppl, ppl * (var / (n - 1.0).max(1.0)).sqrt())
    };
    let (ppl_i, err_i) = estimate(&nll_i);
    let (ppl_f, err_f) = estimate(&nll_f);
    if dec.is_some() {
        println!("integer perplexity: {ppl_i:.4}");
    }
    if fm.is_some() {
        println!("float perplexity:   {ppl_f:.4}");
    }
    if compare {
        println!(
            "ratio integer/float: {:.4} ({:+.2} %)",
            ppl_i / ppl_f,
            (ppl_i / ppl_f - 1.0) * 100.0
        );
        println!(
            "teacher-forced top-1 agreement: {agree}/{count} = {:.2} %",
            100.0 * agree as f64 / count as f64
        );
        println!("mean KL(float || integer): {:.5} nats", kl / count as f64);
        for ((((name, _), nll), a), k) in extra
            .iter()
            .zip(&extra_nll)
            .zip(&extra_agree)
            .zip(&extra_kl)
        {
            let (p, e) = estimate(nll);
            println!(
                "also {name}: integer perplexity {p:.4} +/- {e:.5}, ratio {:.4} ({:+.2} %), top-1 agreement {a}/{count} = {:.2} %, mean KL {:.5} nats",
                p / ppl_f,
                (p / ppl_f - 1.0) * 100.0,
                100.0 * *a as f64 / count as f64,
                k / count as f64
            );
        }
    }
    if dec.is_some() {
        println!("Final estimate: PPL = {ppl_i:.4} +/- {err_i:.5}");
    }
    if fm.is_some() {
        println!(
            "Final estimate{}: PPL = {ppl_f:.4} +/- {err_f:.5}",
            if dec.is_some() { " (float)" } else { "" }
        );
    }
    Ok(())
}

/// `inspect --keep-list-out`: the pruned model's keep list, in the format
/// `--keep-list` reads.
fn write_keep_list(
    name: &str,
    model: &edgedecoding_model::Model<'_>,
    out: &std::path::Path,
) -> Result<()> {
    let Some(keep) = model.keep else {
        bail!(
            "{} is not pruned (all {} ids are rows): it has no keep list to write to {}",
            name,
            model.config.vocab,
            out.display()
        );
    };
    let text = edgedecoding_runtime::keep::format_keep_list(keep, model.config.vocab, name);
    source::write_atomic(out, text.as_bytes())?;
    eprintln!(
        "wrote the keep list ({} ids) to {}",
        keep.len(),
        out.display()
    );
    Ok(())
}

/// `inspect`: a summary. A `.edq` file is read from its header and directory
/// only (a few pages, whatever its size); a checkpoint is converted (or taken
/// from the cache) first, and both sizes are shown.
fn inspect(m: &ModelArgs, keep_list_out: Option<&std::path::Path>) -> Result<()> {
    let edq = m
        .model
        .as_ref()
        .filter(|p| p.is_file() && !source::is_checkpoint(p));
    if let Some(p) = edq {
        m.check()?;
        let buf = edgedecoding_model::owned::ModelBuf::map_lazy(p)
            .with_context(|| format!("reading {}", p.display()))?;
        let f = edgedecoding_model::edq::EdqFile::parse_structure(buf.bytes())
            .with_context(|| format!("loading {}", p.display()))?;
        let model = edgedecoding_model::Model::from_file(f)
            .with_context(|| format!("loading {}", p.display()))?;
        let tok = edgedecoding_runtime::source::tokenizer(&model, None)?;
        let name = p.display().to_string();
        summary(&name, None, &model, &*tok)?;
        println!("checked        header and directory only (every command that runs the model verifies the payloads)");
        if let Some(out) = keep_list_out {
            write_keep_list(&name, &model, out)?;
        }
        return Ok(());
    }
    let l = source::load(m, false, None)?;
    let model = l.model()?;
    let source_bytes = match &m.model {
        Some(p) if p.is_dir() => std::fs::read_dir(p)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|md| md.len())
                    .sum::<u64>()
            })
            .ok(),
        Some(p) => std::fs::metadata(p).map(|md| md.len()).ok(),
        None => None,
    };
    summary(&l.name, source_bytes, &model, &*l.tok)?;
    if let Some(out) = keep_list_out {
        write_keep_list(&l.name, &model, out)?;
    }
    Ok(())
}

fn summary(
    name: &str,
    source_bytes: Option<u64>,
    model: &edgedecoding_model::Model<'_>,
    tok: &dyn text::Tokenizer,
) -> Result<()> {
    let c = model.config;
    let f = model.file();
    let bytes = f.bytes().len();
    let mut weights = 0u64;
    let mut wbytes = 0u64;
    let mut emb_bytes = 0u64;
    for i in 0..f.len() {
        let e = f.entry(i)?;
        match e.dtype {
            edgedecoding_model::edq::DType::ApotCodes => {
                weights += e.rows * e.cols;
                wbytes += e.data.len() as u64;
            }
            edgedecoding_model::edq::DType::ApotExps => wbytes += e.data.len() as u64,
            _ if e.name.as_bytes().ends_with(b".rexp") => wbytes += e.data.len() as u64,
            _ if e.name.as_bytes() == b"token_embd" => emb_bytes += e.data.len() as u64,
            _ => {}
        }
    }
    println!("model          {name}");
    match source_bytes {
        Some(src) => {
            println!(
                "source size    {src} bytes ({:.1} MiB)",
                src as f64 / 1048576.0
            );
            println!(
                "converted size {bytes} bytes ({:.1} MiB)",
                bytes as f64 / 1048576.0
            );
        }
        None => println!(
            "file size      {bytes} bytes ({:.1} MiB)",
            bytes as f64 / 1048576.0
        ),
    }
    println!("layers         {}", c.n_layers);
    println!("hidden / ffn   {} / {}", c.hidden, c.ffn);
    println!(
        "heads          {} query, {} key/value, head dim {}",
        c.n_heads, c.n_kv_heads, c.head_dim
    );
    println!("vocabulary     {} ({} kept)", c.vocab, c.n_kept);
    println!("context        {}", c.ctx);
    println!("rope theta     {}", c.rope_theta);
    match model.rope {
        Some(r) => println!(
            "rope ROM       stored, {} positions x {} (cos, sin), {} bytes",
            c.ctx,
            c.head_dim / 2,
            (r.cos.len() + r.sin.len()) * 2
        ),
        None => println!(
            "rope ROM       not stored (an older file): built from its recipe at start; `convert` stores it"
        ),
    }
    println!(
        "embedding      10-bit codes x 2^{} ({emb_bytes} bytes as int16)",
        model.globals.emb_exp
    );
    println!("weights        {weights} in {wbytes} bytes: {:.3} bits/weight (codes, exponents, row exponents)", wbytes as f64 * 8.0 / weights.max(1) as f64);
    println!("tokenizer      {}", tok.describe());
    for li in 0..c.n_layers {
        let fm = model.layer(li)?.fmt;
        println!(
            "layer {li:>3}      q/k/v frac {}/{}/{}, norm gamma frac {}/{}",
            fm.q_frac, fm.k_frac, fm.v_frac, fm.attn_norm_frac, fm.ffn_norm_frac
        );
    }
    Ok(())
}

//! `edgedecoding`: run, convert, benchmark and inspect the integer model.

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

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// Model: a `.edq` file, a `.gguf` file or a Hugging Face folder
    /// (checkpoints are converted on the fly). Without it, the built-in model.
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Context length (KV-cache capacity) when converting a checkpoint.
    #[arg(long, default_value_t = 1024)]
    ctx: usize,
    /// Prune the vocabulary to this many ids when converting a checkpoint
    /// (the accelerator keeps 37984 of 151936), or at export (export-hw): the
    /// real special tokens, the 256 byte tokens, then the most frequent tokens
    /// of a calibration corpus (ties by id).
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
    /// Float reference: use the checkpoint's separate `output.weight` instead of
    /// the tied embedding.
    #[arg(long)]
    output_head: bool,
    /// Which built-in model when no --model is given.
    #[arg(long, value_enum, default_value_t = Builtin::Small)]
    builtin: Builtin,
    /// Seed of the built-in model.
    #[arg(long, default_value_t = edgedecoding_model::builtin::DEFAULT_SEED)]
    seed: u64,
    /// Worker threads, 1 to 256 (results are identical for any count).
    #[arg(long, short = 't', default_value_t = default_threads(), value_parser = thread_count())]
    threads: usize,
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
        match (&self.keep_vocab, &self.keep_list) {
            (Some(n), _) => Some(Keep::Count {
                n: *n,
                corpus: self.keep_corpus.clone(),
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
        #[arg(long, short, default_value = "The capital of France is")]
        prompt: String,
        /// Tokens to generate.
        #[arg(long, short = 'n', default_value_t = 32)]
        max_tokens: usize,
        /// Decode mode.
        #[arg(long, value_enum, default_value_t = Mode::Incremental)]
        mode: Mode,
        /// Sampling temperature (0 = greedy, the accelerator's behaviour).
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// Keep only the k most likely tokens when sampling (0 = all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Nucleus sampling threshold (1 = off).
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        /// Sampling seed.
        #[arg(long, default_value_t = 1)]
        sample_seed: u64,
    },
    /// Interactive chat on stdin/stdout until the context is full.
    Chat {
        #[command(flatten)]
        m: ModelArgs,
        /// Tokens per answer at most.
        #[arg(long, short = 'n', default_value_t = 128)]
        max_tokens: usize,
    },
    /// Perplexity of a text file (integer model, or the float reference).
    Perplexity {
        #[command(flatten)]
        m: ModelArgs,
        /// UTF-8 text file.
        #[arg(long, short)]
        file: PathBuf,
        /// Window length in tokens.
        #[arg(long, default_value_t = 512)]
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
    let cli = Cli::parse();
    if let Err(e) = outputs_first(&cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
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
            max_tokens,
            mode,
            temperature,
            top_k,
            top_p,
            sample_seed,
        } => {
            let loaded = source::load(&m, false)?;
            generate(
                &loaded,
                &m,
                &prompt,
                max_tokens,
                mode,
                text::Sampler::new(temperature, top_k, top_p, sample_seed)?,
            )
        }
        Cmd::Chat { m, max_tokens } => chat(&source::load(&m, false)?, &m, max_tokens),
        Cmd::Perplexity {
            m,
            file,
            window,
            max_windows,
            float,
            compare,
        } => perplexity(&m, &file, window, max_windows, float, compare),
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
            &source::load(&m, false)?,
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
        Cmd::Inspect { m, keep_list_out } => {
            let l = source::load(&m, false)?;
            inspect(&l)?;
            if let Some(out) = keep_list_out {
                write_keep_list(&l, &out)?;
            }
            Ok(())
        }
        Cmd::Convert { m, out, no_simd } => {
            let loaded = source::load(&m, false)?;
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
            let l = source::load(&m, false)?;
            edgedecoding_reference_vectors::cli::vectors(&a, &l.name, l.buf.bytes(), m.threads)
        }
        Cmd::ExportHw { m, a } => {
            // a checkpoint is pruned while converting it; any other model at export
            let at_export = m.keep().filter(|_| !source::is_checkpoint_arg(&m));
            let mut mm = m.clone();
            if at_export.is_some() {
                (mm.keep_vocab, mm.keep_corpus, mm.keep_list) = (None, None, None);
            }
            let l = source::load(&mm, false)?;
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
    prompt: &str,
    max_tokens: usize,
    mode: Mode,
    sampler: text::Sampler,
) -> Result<()> {
    let model = l.model()?;
    let be = l.backend(&model, m.threads)?;
    let mut mem = source::state_mem(&model);
    let mut d = source::cpu_decoder(model, &mut mem, be)?;
    let toks = l.tok.encode(prompt);
    if toks.is_empty() {
        bail!("the prompt encodes to no tokens");
    }
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
    if g.context_full() {
        eprintln!("\n[context full: {} positions]", model.config.ctx);
    }
    let t_dec = t1.elapsed();
    writeln!(out)?;
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

fn chat(l: &Loaded, m: &ModelArgs, max_tokens: usize) -> Result<()> {
    let model = l.model()?;
    let be = l.backend(&model, m.threads)?;
    let mut mem = source::state_mem(&model);
    let mut d = source::cpu_decoder(model, &mut mem, be)?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "[chat with {}; {} positions of context; empty line or EOF ends]",
        l.name, model.config.ctx
    )?;
    let mut first = true;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            break;
        }
        let Some(mut turn) = ChatTurn::start(&mut d, &*l.tok, &line, first, max_tokens)? else {
            writeln!(
                out,
                "[context full: {} of {} positions used; start a new chat]",
                d.pos(),
                model.config.ctx
            )?;
            break;
        };
        first = false;
        let mut stream = l.tok.streamer();
        while turn.step(&mut d, &*l.tok, &mut |t| {
            write!(out, "{}", stream(t))?;
            out.flush()?;
            Ok(())
        })? {}
        // close the turn like the template does
        if !turn.finish(&mut d, &*l.tok)? {
            writeln!(
                out,
                "\n[context full: {} positions; start a new chat]",
                model.config.ctx
            )?;
            break;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn perplexity(
    m: &ModelArgs,
    file: &std::path::Path,
    window: usize,
    max_windows: usize,
    float: bool,
    compare: bool,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut l = source::load(m, float || compare)?;
    let fm: Option<FloatModel> = if float || compare {
        Some(l.float_model()?)
    } else {
        None
    };
    let model = l.model()?;
    let toks = l.tok.encode(&text);
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
    let window = window.min(model.config.ctx);
    if window < 2 {
        bail!("window must be at least 2 tokens");
    }
    let mut windows: Vec<&[u32]> = toks.chunks_exact(window).collect();
    if max_windows > 0 {
        windows.truncate(max_windows);
    }
    if windows.is_empty() {
        bail!(
            "{} has {} tokens, fewer than one window of {window}",
            file.display(),
            toks.len()
        );
    }
    let row = |t: u32| model.row_of_token(t).unwrap_or(0);
    let bar = source::bar(windows.len() as u64, "windows");
    // per prediction: integer argmax and nll; float argmax and nll
    let (mut nll_i, mut nll_f, mut count, mut agree) = (0.0f64, 0.0f64, 0usize, 0usize);
    let mut dec = if float && !compare {
        None
    } else {
        let be = l.backend(&model, m.threads)?;
        Some((be, source::state_mem(&model)))
    };
    let t0 = Instant::now();
    for w in &windows {
        let mut int_top = vec![0usize; w.len()];
        if let Some((be, mem)) = dec.as_mut() {
            let mut d = source::cpu_decoder(model, mem, &*be)?;
            d.prefill_all(w, &mut |i, lg| {
                if i + 1 < w.len() {
                    nll_i += text::nll_q12(lg, row(w[i + 1]));
                    int_top[i] = argmax_i32(lg).unwrap_or(0);
                }
            })?;
        }
        if let Some(fm) = &fm {
            fm.forward(w, m.threads, None, 0..w.len() - 1, &mut |i, lg| {
                nll_f += text::nll_f32(lg, row(w[i + 1]));
                let ft = lg
                    .iter()
                    .enumerate()
                    .fold(
                        (0usize, f32::MIN),
                        |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) },
                    )
                    .0;
                agree += (ft == int_top[i]) as usize;
            })?;
        }
        count += w.len() - 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let ppl_i = (nll_i / count as f64).exp();
    let ppl_f = (nll_f / count as f64).exp();
    println!(
        "{count} predictions, {} windows of {window} tokens, {} tokens in the file, {secs:.0} s",
        windows.len(),
        toks.len()
    );
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
    }
    Ok(())
}

/// `inspect --keep-list-out`: the pruned model's keep list, in the format
/// `--keep-list` reads.
fn write_keep_list(l: &Loaded, out: &std::path::Path) -> Result<()> {
    let model = l.model()?;
    let Some(keep) = model.keep else {
        bail!(
            "{} is not pruned (all {} ids are rows): it has no keep list to write to {}",
            l.name,
            model.config.vocab,
            out.display()
        );
    };
    let text = edgedecoding_runtime::keep::format_keep_list(keep, model.config.vocab, &l.name);
    source::write_atomic(out, text.as_bytes())?;
    eprintln!(
        "wrote the keep list ({} ids) to {}",
        keep.len(),
        out.display()
    );
    Ok(())
}

fn inspect(l: &Loaded) -> Result<()> {
    let model = l.model()?;
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
    println!("model          {}", l.name);
    println!(
        "file size      {bytes} bytes ({:.1} MiB)",
        bytes as f64 / 1048576.0
    );
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
    println!("tokenizer      {}", l.tok.describe());
    for li in 0..c.n_layers {
        let fm = model.layer(li)?.fmt;
        println!(
            "layer {li:>3}      q/k/v frac {}/{}/{}, norm gamma frac {}/{}",
            fm.q_frac, fm.k_frac, fm.v_frac, fm.attn_norm_frac, fm.ffn_norm_frac
        );
    }
    Ok(())
}

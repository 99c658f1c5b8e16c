//! Arguments and entry points of the `vectors`, `export-hw` and `verify`
//! subcommands of the `edgedecoding` CLI (the CLI loads the model and calls
//! these).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::Model;

use crate::export::{export_hw, ExportOptions};
use crate::vectors::{write_suite, SuiteOptions};
use crate::verify::{verify as run_verify, VerifyOptions};

/// `edgedecoding vectors` options (the model comes from the CLI's model options).
#[derive(clap::Args, Clone, Debug)]
pub struct VectorsArgs {
    /// Output directory (must be absent or empty).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Seed of the random cases and token sequences (the built-in model's seed is --builtin-seed).
    #[arg(long, default_value_t = 1)]
    pub vector_seed: u64,
    /// Only these sections, comma-separated: kernel operators (round_shift,
    /// shift_round_sat, isqrt, bfp_quantize, linear, lm_head_derive, rmsnorm, rope,
    /// softmax, attention, silu, swiglu, residual_add, embed, argmax), `rom`, `model`.
    #[arg(long, value_delimiter = ',')]
    pub operators: Vec<String>,
    /// Skip the chunk at the last 8 context positions (it needs a prefill of ctx - 8 tokens).
    #[arg(long)]
    pub skip_last_chunk: bool,
    /// Write a C header for every case with at most this many elements.
    #[arg(long, default_value_t = 4096)]
    pub header_max: usize,
}

/// `edgedecoding export-hw` options.
#[derive(clap::Args, Clone, Debug)]
pub struct ExportHwArgs {
    /// Output directory (must be absent or empty).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Seed of the 8 tokens of the activation buffer.
    #[arg(long, default_value_t = 1)]
    pub act_seed: u64,
}

/// `edgedecoding verify` options.
#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// The golden suite (written by `edgedecoding vectors`).
    #[arg(long)]
    pub golden: PathBuf,
    /// The device's output directory (same relative paths as the golden files).
    #[arg(long)]
    pub dut: PathBuf,
    /// Only outputs of these operators or path prefixes (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Mismatches listed per file.
    #[arg(long, default_value_t = 10)]
    pub max_report: usize,
    /// Also list matching files.
    #[arg(long, short)]
    pub verbose: bool,
}

fn with_model<T>(bytes: &[u8], f: impl FnOnce(&Model<'_>) -> Result<T>) -> Result<T> {
    if (bytes.as_ptr() as usize) & 7 == 0 {
        f(&Model::from_bytes(bytes)?)
    } else {
        let buf = ModelBuf::from_bytes(bytes);
        f(&buf.model()?)
    }
}

/// The hidden sibling directory `vectors` / `export-hw` write into before it
/// is renamed to `out` (`.NAME.partial-PID`): the CLI removes it on SIGINT.
pub fn partial_dir(out: &std::path::Path) -> PathBuf {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Runs `write` into [`partial_dir`] and renames it to `out` only when it
/// succeeded, so a failure never leaves a half-written suite (nor an empty
/// `out`). `out` must be absent or an empty directory.
fn atomically<T>(
    out: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> Result<T>,
) -> Result<T> {
    crate::suite::check_out_dir(out)?;
    let tmp = partial_dir(out);
    if let Some(parent) = tmp.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let res = write(&tmp).and_then(|v| {
        if out.exists() {
            std::fs::remove_dir(out).with_context(|| format!("replacing {}", out.display()))?;
        }
        std::fs::rename(&tmp, out)
            .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
        Ok(v)
    });
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res
}

/// Runs `vectors` on a model given as `.edq` bytes named `source`.
pub fn vectors(a: &VectorsArgs, source: &str, model_bytes: &[u8], threads: usize) -> Result<()> {
    let t0 = std::time::Instant::now();
    let opts = SuiteOptions {
        seed: a.vector_seed,
        only: a.operators.clone(),
        last_chunk: !a.skip_last_chunk,
        header_max: a.header_max,
        threads,
    };
    let s = atomically(&a.out, |dir| {
        with_model(model_bytes, |m| write_suite(m, source, dir, &opts))
    })?;
    println!(
        "wrote {} cases ({} files, {:.2} MiB, {} C headers, {} $readmemh files) to {} in {:.1} s",
        s.total_cases(),
        s.files,
        s.bytes as f64 / 1048576.0,
        s.headers,
        s.hex_files,
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    for (op, n) in &s.cases {
        println!("  {op:<16} {n:>4} cases");
    }
    Ok(())
}

/// Runs `export-hw`; `keep`: prune the vocabulary at export to these ids
/// (the CLI's `--keep-vocab` / `--keep-list`, computed by the keep-list rule).
pub fn export(
    a: &ExportHwArgs,
    source: &str,
    model_bytes: &[u8],
    threads: usize,
    keep: Option<Vec<u32>>,
) -> Result<()> {
    let opts = ExportOptions {
        keep,
        threads,
        seed: a.act_seed,
    };
    let s = atomically(&a.out, |dir| {
        with_model(model_bytes, |m| export_hw(m, source, dir, &opts))
    })?;
    print!("{}", s.report);
    println!("written to {}", a.out.display());
    Ok(())
}

/// Runs `verify`; an error (exit status 1) unless everything matches.
pub fn verify(a: &VerifyArgs) -> Result<()> {
    let r = run_verify(
        &a.golden,
        &a.dut,
        &VerifyOptions {
            only: a.only.clone(),
            max_report: a.max_report,
            verbose: a.verbose,
        },
    )?;
    println!("{r}");
    if !r.passed() {
        let (_, d, m, s) = r.counts();
        bail!("verification failed: {d} files differ, {m} missing or unreadable, {s} wrong size");
    }
    Ok(())
}

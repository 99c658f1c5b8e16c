//! `edgedecoding bench`: prefill, decode and cold-start speed per backend and
//! thread count, the memory bandwidth this machine reaches, and the decode
//! roofline ratio — llama-bench style.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use edgedecoding_kernels::fast::Isa;
use edgedecoding_model::{Decoder, Head, State, StateMem};
use edgedecoding_runtime::bench::{prompt as bench_prompt, time_run};
use serde_json::json;

use crate::source::{self, Loaded};

/// Output format.
#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Markdown table.
    Md,
    /// One JSON document.
    Json,
    /// CSV with a header line.
    Csv,
}

/// What to measure.
pub struct Opts {
    pub prefill: usize,
    pub decode: usize,
    pub threads: Vec<usize>,
    pub isas: Vec<Isa>,
    pub reps: usize,
    pub output: Output,
    pub reference: bool,
    pub cold: bool,
}

/// Parses `--isa`: `best`, `all`, or a comma list of names.
pub fn parse_isas(s: &str) -> Result<Vec<Isa>> {
    match s {
        "best" => Ok(vec![Isa::detect()]),
        "all" => Ok(Isa::ALL.into_iter().filter(|i| i.supported()).collect()),
        list => list
            .split(',')
            .map(|n| {
                let i = Isa::from_name(n.trim()).with_context(|| {
                    format!(
                        "unknown instruction set `{n}` (known: {})",
                        Isa::ALL.map(|i| i.name()).join(", ")
                    )
                })?;
                if !i.supported() {
                    bail!("this CPU cannot run `{n}`");
                }
                Ok(i)
            })
            .collect(),
    }
}

struct Row {
    isa: String,
    threads: usize,
    test: String,
    tps: Vec<f64>,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Read bandwidth of this machine with `threads` threads: the best of 3
/// passes of a plain summing loop over 1 GiB (vectorised by the compiler).
pub fn read_bandwidth(threads: usize) -> f64 {
    let words = (1usize << 30) / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let per = words.div_ceil(threads);
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        let sum: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = buf
                .chunks(per)
                .map(|c| s.spawn(move || c.iter().fold(0u64, |a, &x| a.wrapping_add(x))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / t0.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// Wall time of `edgedecoding generate -n 1` on `path` in a new process (the
/// file in the page cache): load, validate, tokenize, prefill, first token.
fn cold_start(path: &Path, threads: usize, isa: Isa) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let t0 = Instant::now();
    let out = std::process::Command::new(exe)
        .args(["generate", "-n", "1", "-t", &threads.to_string(), "--model"])
        .arg(path)
        .env("EDGEDECODING_ISA", isa.name())
        .output()?;
    let t = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "cold-start run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(t)
}

pub fn run(l: &Loaded, o: &Opts) -> Result<()> {
    let model = l.model()?;
    let c = model.config;
    if o.prefill.saturating_add(o.decode) > c.ctx {
        bail!(
            "prefill {} + decode {} exceeds the context {}",
            o.prefill,
            o.decode,
            c.ctx
        );
    }
    if o.reps == 0 {
        bail!("-r must be at least 1");
    }
    let prompt = bench_prompt(&model, o.prefill);
    let mut rows: Vec<Row> = vec![];
    let mut extra = vec![];
    for &t in &o.threads {
        eprintln!("[measuring read bandwidth with {t} threads]");
        let bw = read_bandwidth(t);
        for &isa in &o.isas {
            let be = l.backend(&model, t)?.with_isa(isa);
            let bytes = be.bytes_per_token() + c.hidden * 2; // + one embedding row
            let mut mem = source::state_mem(&model.config);
            let mut d = source::cpu_decoder(model, &model.config, &mut mem, be)?;
            // one untimed warm-up (page cache, thread pool, branch predictors)
            time_run(
                &mut d,
                &prompt[..prompt.len().min(8)],
                model.token_of_row(0),
                2,
            )?;
            let (mut pp, mut tg) = (vec![], vec![]);
            for r in 0..o.reps {
                eprintln!("[{} {t} threads: run {}/{}]", isa.name(), r + 1, o.reps);
                let (tp, td) = time_run(&mut d, &prompt, model.token_of_row(0), o.decode)?;
                pp.push(o.prefill as f64 / tp);
                tg.push(o.decode as f64 / td);
            }
            let (tg_m, _) = mean_sd(&tg);
            let cold = if o.cold && l.path.is_some() {
                let p = l.path.as_deref().unwrap_or(Path::new(""));
                let runs: Result<Vec<f64>> = (0..o.reps).map(|_| cold_start(p, t, isa)).collect();
                Some(runs?)
            } else {
                None
            };
            extra.push(json!({
                "isa": isa.name(),
                "threads": t,
                "bytes_per_token": bytes,
                "read_bandwidth_gbs": bw,
                "decode_gbs": bytes as f64 * tg_m / 1e9,
                "roofline_ratio": bytes as f64 * tg_m / 1e9 / bw,
                "cold_start_s": cold.as_ref().map(|v| mean_sd(v).0),
            }));
            if o.prefill > 0 {
                rows.push(Row {
                    isa: isa.name().into(),
                    threads: t,
                    test: format!("pp{}", o.prefill),
                    tps: pp,
                });
            }
            rows.push(Row {
                isa: isa.name().into(),
                threads: t,
                test: format!("tg{}", o.decode),
                tps: tg,
            });
            if let Some(v) = cold {
                rows.push(Row {
                    isa: isa.name().into(),
                    threads: t,
                    test: "cold start (s)".into(),
                    tps: v,
                });
            }
        }
    }
    if o.reference {
        // the head derived once and stored packed (deriving it on the fly, as the
        // heap-free path does, costs as much as the rest of the model per token)
        let head = edgedecoding_model::owned::OwnedHead::derive(&model)?;
        let mut mem = StateMem::new(&c);
        let mut d = Decoder::new(
            model,
            Head::Packed(head.matrix()),
            State::new(&c, mem.bytes())?,
            edgedecoding_model::Serial,
        )?;
        let (tp, td) = time_run(&mut d, &prompt, model.token_of_row(0), o.decode)?;
        for (test, v) in [
            (format!("pp{}", o.prefill), o.prefill as f64 / tp),
            (format!("tg{}", o.decode), o.decode as f64 / td),
        ] {
            rows.push(Row {
                isa: "scalar reference".into(),
                threads: 1,
                test,
                tps: vec![v],
            });
        }
    }
    let desc = format!(
        "{} ({} layers, hidden {}, ffn {}, vocab {} kept of {}, ctx {})",
        l.name, c.n_layers, c.hidden, c.ffn, c.n_kept, c.vocab, c.ctx
    );
    match o.output {
        Output::Md => {
            println!("model: {desc}");
            println!("| backend | threads | test | t/s (cold start: s) |");
            println!("|---|---:|---:|---:|");
            for r in &rows {
                let (m, sd) = mean_sd(&r.tps);
                println!(
                    "| {} | {} | {} | {m:.2} ± {sd:.2} |",
                    r.isa, r.threads, r.test
                );
            }
            println!();
            println!("| backend | threads | MB read / token | decode GB/s | read bandwidth GB/s | roofline |");
            println!("|---|---:|---:|---:|---:|---:|");
            for e in &extra {
                println!(
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} % |",
                    e["isa"].as_str().unwrap_or(""),
                    e["threads"],
                    e["bytes_per_token"].as_f64().unwrap_or(0.0) / 1e6,
                    e["decode_gbs"].as_f64().unwrap_or(0.0),
                    e["read_bandwidth_gbs"].as_f64().unwrap_or(0.0),
                    100.0 * e["roofline_ratio"].as_f64().unwrap_or(0.0)
                );
            }
        }
        Output::Csv => {
            println!("model,backend,threads,test,mean,stddev,reps");
            for r in &rows {
                let (m, sd) = mean_sd(&r.tps);
                println!(
                    "\"{}\",{},{},{},{m:.4},{sd:.4},{}",
                    l.name.replace('"', "'"),
                    r.isa,
                    r.threads,
                    r.test,
                    r.tps.len()
                );
            }
        }
        Output::Json => {
            let results: Vec<_> = rows
                .iter()
                .map(|r| {
                    let (m, sd) = mean_sd(&r.tps);
                    json!({"backend": r.isa, "threads": r.threads, "test": r.test,
                           "mean": m, "stddev": sd, "samples": r.tps})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "model": desc,
                    "results": results,
                    "memory": extra,
                }))?
            );
        }
    }
    Ok(())
}

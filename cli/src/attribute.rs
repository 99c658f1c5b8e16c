//! `perplexity --attribute`: where the integer model's distance from the float
//! model lives. The float reference is run with one integer stage imitated at
//! a time (its float values rounded where the integer pipeline holds them in
//! a narrower format, SPEC §9.3), with all of them, and with all but one; each
//! run is compared with the plain float reference on the same windows
//! (perplexity, KL, teacher-forced top-1 agreement), and the integer model
//! itself is run beside them.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Result};
use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_model::float_ref::{FloatModel, Imitate, Parts};
use edgedecoding_model::Model;
use edgedecoding_runtime::text;

use crate::source::{self, Loaded};

/// The stages, in the order of the table.
const STAGES: [(&str, &str); 7] = [
    ("weights", "linear weights as APoT codes (§2)"),
    (
        "embedding/head",
        "10-bit embedding and the head derived from it (§2.5, §9.2)",
    ),
    (
        "norms/biases",
        "RMSNorm gammas and q/k/v biases in their formats",
    ),
    ("bfp", "linear inputs as BFP blocks (§3)"),
    ("qkv16", "Q, K, V (and the KV cache) in int16 (§9.3)"),
    ("q12", "activations in int32 Q12 (§1.2)"),
    ("tables", "softmax, sigmoid and RoPE tables (§6-§8)"),
];

/// One imitation: the parameters taken from the integer model and the
/// activation-side stages.
fn config(on: [bool; 7], fracs: &[[u32; 3]]) -> (Parts, Imitate) {
    let w = on[0];
    (
        Parts {
            qkv: w,
            o: w,
            gate_up: w,
            down: w,
            embed_head: on[1],
            norms_biases: on[2],
        },
        Imitate {
            bfp: on[3],
            qkv16: if on[4] { fracs.to_vec() } else { Vec::new() },
            q12: on[5],
            tables: on[6],
        },
    )
}

/// The weights split by matrix, each imitated alone.
const WEIGHT_PARTS: [(&str, Parts); 4] = [
    (
        "q/k/v weights",
        Parts {
            qkv: true,
            o: false,
            gate_up: false,
            down: false,
            embed_head: false,
            norms_biases: false,
        },
    ),
    (
        "o weights",
        Parts {
            qkv: false,
            o: true,
            gate_up: false,
            down: false,
            embed_head: false,
            norms_biases: false,
        },
    ),
    (
        "gate/up weights",
        Parts {
            qkv: false,
            o: false,
            gate_up: true,
            down: false,
            embed_head: false,
            norms_biases: false,
        },
    ),
    (
        "down weights",
        Parts {
            qkv: false,
            o: false,
            gate_up: false,
            down: true,
            embed_head: false,
            norms_biases: false,
        },
    ),
];

/// Per-prediction results of one run against the float reference.
#[derive(Default)]
struct Score {
    nll: Vec<f64>,
    kl: f64,
    agree: usize,
}

impl Score {
    fn ppl(&self) -> f64 {
        (self.nll.iter().sum::<f64>() / self.nll.len().max(1) as f64).exp()
    }
    fn row(&self, name: &str, float_ppl: f64, count: usize) -> String {
        let p = self.ppl();
        format!(
            "| {name} | {p:.4} | {:+.2} % | {:.5} | {:.2} % |",
            (p / float_ppl - 1.0) * 100.0,
            self.kl / count as f64,
            100.0 * self.agree as f64 / count as f64
        )
    }
}

/// Float logits of a window for predictions `0..len-1`, row-major.
type Logits = Vec<f32>;

fn argmax_f32(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::MIN),
            |(bi, bv), (j, &x)| {
                if x > bv {
                    (j, x)
                } else {
                    (bi, bv)
                }
            },
        )
        .0
}

/// Most bytes of logits kept for the KL (every window's float and integer
/// logits).
const KEEP_BYTES: usize = 6 << 30;

/// Runs the attribution on `windows` and prints the table.
pub fn attribute(
    l: &Loaded,
    fm: FloatModel,
    model: &Model<'_>,
    windows: &[&[u32]],
    threads: usize,
) -> Result<()> {
    let dq = FloatModel::dequantized(model)?;
    let fracs: Vec<[u32; 3]> = (0..model.config.n_layers)
        .map(|i| {
            model
                .layer(i)
                .map(|ly| [ly.fmt.q_frac, ly.fmt.k_frac, ly.fmt.v_frac])
        })
        .collect::<Result<_, _>>()?;
    let n_kept = model.config.n_kept;
    let row = |t: u32| model.row_of_token(t).unwrap_or(0);
    let count: usize = windows.iter().map(|w| w.len() - 1).sum();
    // float and integer logits of every prediction: 8 bytes per row entry
    if count.saturating_mul(n_kept).saturating_mul(8) > KEEP_BYTES {
        bail!(
            "--attribute keeps the float logits of every window ({} MB here, at most {} MB): use fewer --max-windows or a shorter -c",
            count.saturating_mul(n_kept).saturating_mul(8) >> 20,
            KEEP_BYTES >> 20
        );
    }
    let t0 = Instant::now();
    // the float reference: logits of every prediction
    eprint!("[attribute: float reference");
    let _ = std::io::stderr().flush();
    let mut reference: Vec<Logits> = Vec::new();
    let mut float = Score::default();
    for w in windows {
        let mut lg = vec![0.0f32; (w.len() - 1) * n_kept];
        fm.forward(w, threads, None, 0..w.len() - 1, &mut |i, out| {
            float.nll.push(text::nll_f32(out, row(w[i + 1])));
            lg[i * n_kept..(i + 1) * n_kept].copy_from_slice(&out[..n_kept]);
        })?;
        reference.push(lg);
    }
    float.agree = count;
    let float_ppl = float.ppl();
    eprintln!(": PPL {float_ppl:.4}, {:.0} s]", t0.elapsed().as_secs_f64());
    // the integer model itself
    let c = edgedecoding_runtime::source::run_config(model, Some(windows[0].len()))?;
    let be = l.backend(model, threads)?;
    let mut mem = source::state_mem(&c);
    let mut int = Score::default();
    let mut int_logits: Vec<Vec<i32>> = Vec::new();
    for (w, r) in windows.iter().zip(&reference) {
        let mut keep = vec![0i32; (w.len() - 1) * n_kept];
        let mut d = source::cpu_decoder(*model, &c, &mut mem, &be)?;
        d.prefill_all(w, &mut |i, lg| {
            if i + 1 < w.len() {
                int.nll.push(text::nll_q12(lg, row(w[i + 1])));
                let f = &r[i * n_kept..(i + 1) * n_kept];
                int.kl += text::kl_f32_q12(f, &lg[..n_kept]).unwrap_or(f64::NAN);
                int.agree += (argmax_i32(&lg[..n_kept]).unwrap_or(0) == argmax_f32(f)) as usize;
                keep[i * n_kept..(i + 1) * n_kept].copy_from_slice(&lg[..n_kept]);
            }
        })?;
        int_logits.push(keep);
    }
    // one float run per imitation
    // and its KL from the integer model (the imitation's own error)
    let run = |(parts, im): (Parts, Imitate), what: &str| -> Result<(Score, f64)> {
        let t = Instant::now();
        let mixed = fm.mixed(&dq, parts)?;
        let mut s = Score::default();
        let mut kl_int = 0.0;
        for ((w, r), il) in windows.iter().zip(&reference).zip(&int_logits) {
            mixed.forward_imitating(w, threads, None, 0..w.len() - 1, &im, &mut |i, lg| {
                s.nll.push(text::nll_f32(lg, row(w[i + 1])));
                let f = &r[i * n_kept..(i + 1) * n_kept];
                s.kl += text::kl_f32(f, lg).unwrap_or(f64::NAN);
                s.agree += (argmax_f32(lg) == argmax_f32(f)) as usize;
                kl_int +=
                    text::kl_f32_q12(lg, &il[i * n_kept..(i + 1) * n_kept]).unwrap_or(f64::NAN);
            })?;
        }
        eprintln!(
            "[attribute: {what}: PPL {:.4}, {:.0} s]",
            s.ppl(),
            t.elapsed().as_secs_f64()
        );
        Ok((s, kl_int / count as f64))
    };
    let (all, all_vs_int) = run(config([true; 7], &fracs), "all stages")?;
    let mut alone = Vec::new();
    let mut all_but = Vec::new();
    for (k, (name, _)) in STAGES.iter().enumerate() {
        let mut on = [false; 7];
        on[k] = true;
        alone.push(run(config(on, &fracs), &format!("{name} alone"))?.0);
        let mut on = [true; 7];
        on[k] = false;
        all_but.push(run(config(on, &fracs), &format!("all but {name}"))?.0);
    }
    let mut by_matrix = Vec::new();
    for (name, parts) in WEIGHT_PARTS {
        by_matrix.push(run((parts, Imitate::default()), &format!("{name} alone"))?.0);
    }
    println!(
        "{count} predictions, {} windows of {} tokens, {:.0} s",
        windows.len(),
        windows[0].len(),
        t0.elapsed().as_secs_f64()
    );
    println!("float perplexity: {float_ppl:.4}");
    println!();
    println!("| float reference with | PPL | vs float | mean KL (nats) | top-1 agreement |");
    println!("|---|---:|---:|---:|---:|");
    for ((name, what), s) in STAGES.iter().zip(&alone) {
        println!(
            "{}",
            s.row(&format!("{name} alone: {what}"), float_ppl, count)
        );
    }
    for ((name, _), s) in WEIGHT_PARTS.iter().zip(&by_matrix) {
        println!("{}", s.row(&format!("{name} alone"), float_ppl, count));
    }
    println!("{}", all.row("all seven stages", float_ppl, count));
    for ((name, _), s) in STAGES.iter().zip(&all_but) {
        println!(
            "{}",
            s.row(
                &format!("all but {name} (it swapped back to float)"),
                float_ppl,
                count
            )
        );
    }
    println!("{}", int.row("the integer model", float_ppl, count));
    println!();
    println!(
        "mean KL(all seven stages || integer model): {all_vs_int:.5} nats (what the imitation misses: rounding inside the integer kernels)"
    );
    println!("share of the gap (all stages minus all but one, in mean KL):");
    let kl_all = all.kl / count as f64;
    for ((name, _), s) in STAGES.iter().zip(&all_but) {
        let d = kl_all - s.kl / count as f64;
        println!(
            "  {name:<15} {d:+.5} nats ({:+.0} % of all stages' {kl_all:.5})",
            100.0 * d / kl_all.max(1e-12)
        );
    }
    Ok(())
}

//! The CLI's commands end to end without the real model: `perplexity` against
//! a perplexity computed here from the float reference, sampling with a seed,
//! `bench`, and a Hugging Face folder given directly vs converted to `.edq`.

use std::path::Path;
mod common;

use common::{exe, ok, root, tiny_hf_folder, tmp};

use edgedecoding_model::builtin::{float_model, DEFAULT_SEED};
use edgedecoding_model::Config;

/// The number after `label` on the line that contains it.
fn number_after(text: &str, label: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// `perplexity --float` equals the perplexity computed here with the float
/// reference of the same built-in model and an f64 log-softmax over the same
/// windows (byte ids, consecutive windows, each predicting its next tokens;
/// with `--second-half` only from position window/2 on); `--compare`
/// reports an integer perplexity near it and the agreement.
#[test]
fn perplexity_matches_an_independent_computation() {
    let dir = tmp("ppl");
    let text: String = (0..40)
        .map(|i| {
            format!(
                "Line {i}: the quick brown fox jumps over the lazy dog {}.\n",
                i * 7
            )
        })
        .collect();
    let file = dir.join("text.txt");
    std::fs::write(&file, &text).unwrap();
    let (window, windows) = (48usize, 5usize);
    let cfg = Config {
        ctx: 256,
        ..Config::tiny()
    };
    let fm = float_model(&cfg, DEFAULT_SEED).unwrap();
    let ids: Vec<u32> = text.bytes().map(u32::from).collect();
    // every prediction, then (--second-half) those from position window/2 on
    for (flag, first) in [(None, 0usize), (Some("--second-half"), window / 2)] {
        let out = ok(
            exe()
                .args([
                    "perplexity",
                    "--builtin",
                    "tiny",
                    "--window",
                    "48",
                    "--max-windows",
                    "5",
                    "--compare",
                ])
                .args(flag)
                .arg("--file")
                .arg(&file)
                .output()
                .unwrap(),
            "perplexity",
        );
        let (mut nll, mut count) = (0.0f64, 0usize);
        for w in ids.chunks_exact(window).take(windows) {
            fm.forward(w, 1, None, 0..w.len() - 1, &mut |i, lg| {
                if i < first {
                    return;
                }
                let mx = lg.iter().fold(f64::MIN, |a, &v| a.max(v as f64));
                let lse = lg.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln() + mx;
                nll += lse - lg[w[i + 1] as usize] as f64;
                count += 1;
            })
            .unwrap();
        }
        let want = (nll / count as f64).exp();
        assert_eq!(count, windows * (window - 1 - first));
        assert!(out.starts_with(&format!("{count} predictions")), "{out}");
        assert!(
            out.contains(&format!("{windows} windows of {window} tokens")),
            "{out}"
        );
        let float = number_after(&out, "float perplexity:");
        assert!((float - want).abs() <= 1e-4 * want, "CLI {float} vs {want}");
        let int = number_after(&out, "integer perplexity:");
        let ratio = number_after(&out, "ratio integer/float:");
        assert!((ratio - int / float).abs() < 1e-3, "{out}");
        assert!((0.9..1.1).contains(&ratio), "{out}");
        let line = out.lines().find(|l| l.contains("agreement:")).unwrap();
        let frac = line.split_whitespace().find(|w| w.contains('/')).unwrap();
        let (a, n) = frac.split_once('/').unwrap();
        let (a, n): (usize, usize) = (a.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, count, "{line}");
        assert!(a > count / 2 && a <= count, "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sampling: the same seed gives the same text, another seed another text;
/// temperature 0 ignores the seed.
#[test]
fn sampling_is_reproducible_by_seed() {
    let run = |args: &[&str]| {
        ok(
            exe()
                .args(["generate", "--builtin", "tiny", "-n", "24", "-p", "abc"])
                .args(args)
                .output()
                .unwrap(),
            "generate",
        )
    };
    let a = run(&["--temperature", "1.5", "--sample-seed", "5"]);
    assert_eq!(a, run(&["--temperature", "1.5", "--sample-seed", "5"]));
    assert_ne!(a, run(&["--temperature", "1.5", "--sample-seed", "6"]));
    let g = run(&[]);
    assert_eq!(g, run(&["--sample-seed", "99"]));
    assert_ne!(a, g);
    // top-k 1 is greedy whatever the temperature and seed
    assert_eq!(
        g,
        run(&["--temperature", "1.5", "--top-k", "1", "--sample-seed", "3"])
    );
}

/// `bench` prints a table row per backend × threads × test with positive
/// rates and a ± spread from its repetitions.
#[test]
fn bench_reports_every_requested_row() {
    let out = ok(
        exe()
            .args([
                "bench",
                "--builtin",
                "tiny",
                "-p",
                "16",
                "-n",
                "4",
                "-r",
                "2",
                "--thread-counts",
                "1,2",
            ])
            .output()
            .unwrap(),
        "bench",
    );
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("| pp16 |") || l.contains("| tg4 |"))
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    for r in rows {
        let cells: Vec<&str> = r.split('|').map(str::trim).collect();
        let (mean, sd) = cells[4].split_once(" ± ").unwrap_or_else(|| panic!("{r}"));
        let (mean, sd): (f64, f64) = (mean.parse().unwrap(), sd.parse().unwrap());
        assert!(mean > 0.0 && sd >= 0.0 && sd.is_finite(), "{r}");
    }
}

/// A Hugging Face folder through the CLI: `generate` on the folder and on
/// its `convert`ed `.edq` print the same text; `inspect` describes it.
#[test]
fn hugging_face_folder_direct_and_converted_agree() {
    let dir = tmp("hf");
    let hf = tiny_hf_folder(&dir);
    let gen = |model: &Path| {
        ok(
            exe()
                .args(["generate", "-n", "12", "-p", "hello", "--model"])
                .arg(model)
                .output()
                .unwrap(),
            "generate",
        )
    };
    let direct = gen(&hf);
    assert!(!direct.trim().is_empty());
    let edq = dir.join("tiny.edq");
    ok(
        exe()
            .args(["convert", "--model"])
            .arg(&hf)
            .arg("--out")
            .arg(&edq)
            .output()
            .unwrap(),
        "convert",
    );
    assert_eq!(gen(&edq), direct);
    let info = ok(
        exe()
            .args(["inspect", "--model"])
            .arg(&edq)
            .output()
            .unwrap(),
        "inspect",
    );
    assert!(
        info.contains("Qwen2 byte-level BPE, 256 tokens, 0 merges"),
        "{info}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `convert --quantizer gptq` on a Hugging Face folder: the same bytes for
/// any thread count (the built-in and a `--calib` text), the same as without
/// `--quantizer` (the default), a model that runs, and not the
/// round-to-nearest file.
#[test]
fn gptq_conversion_is_deterministic_across_threads() {
    let dir = tmp("gptq");
    let hf = tiny_hf_folder(&dir);
    let calib = dir.join("calib.txt");
    std::fs::write(
        &calib,
        "The quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    let convert = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        ok(
            exe()
                .args(["convert", "--no-cache", "--no-simd", "--model"])
                .arg(&hf)
                .args(extra)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
            "convert",
        );
        std::fs::read(&out).unwrap()
    };
    let g1 = convert(&["--quantizer", "gptq", "-t", "1"], "g1.edq");
    let g3 = convert(&["--quantizer", "gptq", "-t", "3"], "g3.edq");
    assert!(g1 == g3);
    // gptq is the default
    assert!(convert(&["-t", "2"], "default.edq") == g1);
    let rtn = convert(&["--quantizer", "rtn", "-t", "2"], "rtn.edq");
    assert!(rtn != g1 && rtn.len() == g1.len());
    let c = calib.to_str().unwrap();
    let c1 = convert(&["--quantizer", "gptq", "--calib", c, "-t", "1"], "c1.edq");
    let c2 = convert(&["--quantizer", "gptq", "--calib", c, "-t", "2"], "c2.edq");
    assert!(c1 == c2 && c1 != g1);
    let gen = ok(
        exe()
            .args(["generate", "-n", "8", "-p", "hello", "--model"])
            .arg(dir.join("g1.edq"))
            .output()
            .unwrap(),
        "generate",
    );
    assert!(!gen.trim().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14, finding 5: a Hugging Face folder whose tokenizer has ids beyond
/// the model's vocabulary is refused at conversion (not at the first prompt),
/// and an empty folder reports its missing config.json first.
#[test]
fn hugging_face_folder_problems_are_reported_at_conversion() {
    let root = root();
    let dir = tmp("hf-bad");
    let hf = dir.join("tiny_hf");
    std::fs::create_dir_all(&hf).unwrap();
    let run = |args: &[&str]| {
        let out = exe().args(args).arg("--model").arg(&hf).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["inspect"]);
    assert!(err.contains("config.json"), "{err}");
    // the cause once, not repeated by the error chain
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(
            root.join("checkpoint/tests/fixtures/tiny_hf").join(f),
            hf.join(f),
        )
        .unwrap();
    }
    // a Qwen-style tokenizer.json: special tokens at ids 151643.. (vocab 256 model)
    std::fs::copy(
        root.join("tokenizer/tests/fixtures/tiny_tokenizer.json"),
        hf.join("tokenizer.json"),
    )
    .unwrap();
    let out = dir.join("x.edq");
    let err = run(&["convert", "--out", out.to_str().unwrap()]);
    assert!(
        err.contains("but the model's vocabulary has 256 rows")
            && err.contains("does not belong to this model"),
        "{err}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `perplexity --compare --also M`: the extra model runs on the same windows
/// against the same float reference; the same model gives the same numbers.
#[test]
fn perplexity_also_runs_extra_models_on_the_same_windows() {
    let dir = tmp("also");
    let edq = dir.join("tiny.edq");
    ok(
        exe()
            .args(["convert", "--builtin", "tiny", "--out"])
            .arg(&edq)
            .output()
            .unwrap(),
        "convert",
    );
    let text = dir.join("t.txt");
    std::fs::write(&text, "Some text to measure, twice over. ".repeat(20)).unwrap();
    let out = ok(
        exe()
            .args([
                "perplexity",
                "--builtin",
                "tiny",
                "-c",
                "64",
                "--compare",
                "--file",
            ])
            .arg(&text)
            .arg("--also")
            .arg(&edq)
            .output()
            .unwrap(),
        "perplexity --also",
    );
    let ppl = number_after(&out, "integer perplexity:");
    let also = number_after(&out, ": integer perplexity");
    assert_eq!(ppl, also, "{out}");
    let agree = out
        .lines()
        .find(|l| l.starts_with("teacher-forced"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    assert!(out.contains(&format!("top-1 agreement {agree}")), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `perplexity --attribute`: its float and integer rows agree with
/// `perplexity --compare` on the same windows, every stage has its two rows,
/// and imitating every stage lands far nearer the integer model than the
/// float reference does.
#[test]
fn attribution_agrees_with_compare_and_covers_the_integer_model() {
    let dir = tmp("attribute");
    let text: String = (0..30)
        .map(|i| format!("Item {i}: a small text about {} apples.\n", i * 3))
        .collect();
    let file = dir.join("text.txt");
    std::fs::write(&file, &text).unwrap();
    let run = |mode: &str| {
        ok(
            exe()
                .args(["perplexity", "--builtin", "tiny", "-c", "48"])
                .args(["--max-windows", "3", mode, "--file"])
                .arg(&file)
                .output()
                .unwrap(),
            mode,
        )
    };
    let cmp = run("--compare");
    let att = run("--attribute");
    assert_eq!(
        number_after(&att, "float perplexity:"),
        number_after(&cmp, "float perplexity:"),
        "{att}"
    );
    let row = |name: &str| -> Vec<f64> {
        let line = att
            .lines()
            .find(|l| l.starts_with(&format!("| {name}")))
            .unwrap_or_else(|| panic!("no row {name:?} in {att}"));
        line.split('|')
            .skip(2)
            .filter_map(|c| c.trim().trim_end_matches('%').trim().parse().ok())
            .collect()
    };
    let int = row("the integer model");
    assert_eq!(int[0], number_after(&cmp, "integer perplexity:"), "{att}");
    let kl_int = number_after(&cmp, "mean KL(float || integer):");
    assert!((int[2] - kl_int).abs() < 1e-5, "{att}");
    for stage in [
        "weights",
        "embedding/head",
        "norms/biases",
        "bfp",
        "qkv16",
        "q12",
        "tables",
    ] {
        assert_eq!(row(&format!("{stage} alone")).len(), 4, "{stage}");
        assert_eq!(row(&format!("all but {stage}")).len(), 4, "{stage}");
    }
    for part in ["q/k/v", "o", "gate/up", "down"] {
        assert_eq!(row(&format!("{part} weights alone")).len(), 4, "{part}");
    }
    let all = row("all seven stages");
    let kl_all_int = number_after(&att, "mean KL(all seven stages || integer model):");
    assert!(
        kl_all_int < 0.5 * kl_int,
        "the imitation misses {kl_all_int} of {kl_int}: {att}"
    );
    assert!(all[2] > 0.0 && row("weights alone")[2] > 0.0, "{att}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Daily use (issue 13), one test per finding: options that cannot apply are
//! errors, llama.cpp's names work, the run-time context, prompt files,
//! perplexity's running output and final estimate, chat's robustness, output
//! hygiene, and the converted-model cache.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;

use common::{exe, tiny_hf_folder, tmp};

fn run(args: &[&str]) -> Output {
    exe().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> (String, String) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn err(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn options_that_cannot_apply_are_errors() {
    let dir = tmp("noapply");
    let edq = dir.join("t.edq");
    ok(&[
        "convert",
        "--builtin",
        "tiny",
        "--out",
        edq.to_str().unwrap(),
    ]);
    let e = edq.to_str().unwrap();
    for (args, want) in [
        (
            vec!["generate", "--builtin", "tiny", "--ctx", "30"],
            "applies when converting a checkpoint",
        ),
        (
            vec!["generate", "--builtin", "tiny", "--keep-vocab", "100"],
            "applies when converting a checkpoint",
        ),
        (
            vec!["generate", "--model", e, "--keep-vocab", "100"],
            "is an already converted model",
        ),
        (
            vec!["generate", "--model", e, "--output-head"],
            "is an already converted model",
        ),
        (
            vec!["generate", "--model", e, "--quantizer", "gptq"],
            "is an already converted model",
        ),
        (
            vec!["generate", "--builtin", "tiny", "--quantizer", "gptq"],
            "applies when converting a checkpoint",
        ),
        (
            vec!["generate", "--builtin", "tiny", "--calib", "x.txt"],
            "applies when converting a checkpoint",
        ),
        (
            vec!["inspect", "--model", e, "--builtin", "tiny"],
            "do not apply with --model",
        ),
        (
            vec!["generate", "--model", e, "--builtin-seed", "3"],
            "do not apply with --model",
        ),
        (
            vec!["generate", "--builtin", "tiny", "-ngl", "99"],
            "no GPU offload",
        ),
    ] {
        let msg = err(&args);
        assert!(msg.contains(want), "{args:?}: {msg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn llama_cpp_names_work() {
    let base = ["generate", "--builtin", "tiny", "-n", "12", "-p", "abc"];
    let with = |extra: &[&str]| ok(&[&base[..], extra].concat()).0;
    // --temp / -s are --temperature / --sample-seed
    assert_eq!(
        with(&["--temp", "1.2", "-s", "4"]),
        with(&["--temperature", "1.2", "--sample-seed", "4"])
    );
    // -ngl 0 is accepted (CPU), -t threads
    assert_eq!(with(&["-ngl", "0", "-t", "1"]), with(&[]));
    // -f: the prompt from a file
    let dir = tmp("promptfile");
    let f = dir.join("p.txt");
    std::fs::write(&f, "abc").unwrap();
    assert_eq!(
        ok(&[
            "generate",
            "--builtin",
            "tiny",
            "-n",
            "12",
            "-f",
            f.to_str().unwrap()
        ])
        .0,
        with(&[])
    );
    // min-p 1 keeps only the most likely token: greedy
    assert_eq!(with(&["--temp", "5", "--min-p", "1", "-s", "9"]), with(&[]));
    // chat takes -sys
    let mut child = exe()
        .args(["chat", "--builtin", "tiny", "-n", "3", "-sys", "Be brief."])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-c` chooses the KV capacity at run time: the same tokens as with the
/// model's whole context until it is full; a prompt that does not fit is
/// refused before any work, saying what to do.
#[test]
fn run_time_context_size() {
    let full = ok(&[
        "generate",
        "--builtin",
        "tiny",
        "-n",
        "20",
        "-p",
        "abcdefgh",
    ])
    .0;
    let (short, e) = ok(&[
        "generate",
        "--builtin",
        "tiny",
        "-n",
        "20",
        "-p",
        "abcdefgh",
        "-c",
        "16",
    ]);
    assert!(e.contains("[context full: 16 positions]"), "{e}");
    // 8 prompt bytes, then 8 tokens fit (the 8th needs no position)
    assert!(
        short.len() < full.len() && full.starts_with(short.trim_end_matches('\n')),
        "{short:?} vs {full:?}"
    );
    let msg = err(&["generate", "--builtin", "tiny", "-p", "abcdefgh", "-c", "4"]);
    assert!(msg.contains("the prompt has 8 tokens, more than the context of 4 positions (-c can go up to the model's 256)"), "{msg}");
    let msg = err(&["generate", "--builtin", "tiny", "-c", "257"]);
    assert!(msg.contains("context size 257 is outside 1..=256"), "{msg}");
}

#[test]
fn perplexity_reports_like_llama_cpp_and_adapts_to_a_short_file() {
    let dir = tmp("ppl");
    let f = dir.join("t.txt");
    std::fs::write(
        &f,
        "The quick brown fox jumps over the lazy dog. ".repeat(8),
    )
    .unwrap();
    let (out, e) = ok(&[
        "perplexity",
        "--builtin",
        "tiny",
        "-c",
        "64",
        "--file",
        f.to_str().unwrap(),
    ]);
    // 360 bytes: 5 windows of 64, running values on stderr
    assert!(
        e.contains("[1]") && e.contains(",[5]") && !e.contains("[6]"),
        "{e}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("Final estimate: PPL = "))
        .unwrap_or_else(|| panic!("{out}"));
    let nums: Vec<f64> = line["Final estimate: PPL = ".len()..]
        .split(" +/- ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        nums[0] > 1.0 && nums[1] > 0.0 && nums[1] < nums[0],
        "{line}"
    );
    let int: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("integer perplexity: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((int - nums[0]).abs() < 1e-3, "{out}");
    // a file shorter than the window: one window of the whole file
    let short = dir.join("s.txt");
    std::fs::write(&short, "tiny text").unwrap();
    let (out, e) = ok(&[
        "perplexity",
        "--builtin",
        "tiny",
        "--file",
        short.to_str().unwrap(),
    ]);
    assert!(
        e.contains("fewer than the window of 256: one window of 9"),
        "{e}"
    );
    assert!(
        out.starts_with("8 predictions, 1 windows of 9 tokens"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn chat(args: &[&str], input: &[u8]) -> (String, String) {
    let mut child = exe()
        .args(["chat", "--builtin", "tiny"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn chat_skips_bad_lines_trims_old_turns_and_keeps_stdout_clean() {
    let (out, e) = chat(&["-n", "4"], b"hello\n\xff\xfe bad\nworld\n");
    assert!(
        e.contains("[line 2 skipped: not UTF-8 (invalid byte at column 1)]"),
        "{e}"
    );
    assert!(
        e.contains("[chat with built-in tiny"),
        "the banner goes to stderr: {e}"
    );
    assert!(!out.contains('['), "stdout holds only the answers: {out:?}");
    assert_eq!(out.lines().count(), 2, "two answers: {out:?}");
    // a small context: the oldest turns go, the chat goes on
    let (out, e) = chat(
        &["-n", "6", "-c", "40"],
        b"first message here\nsecond message\nthird one that is longer\nfourth\n",
    );
    assert!(e.contains("[context full: dropped the oldest turn"), "{e}");
    assert_eq!(out.lines().count(), 4, "every message answered: {out:?}");
    // a message longer than the whole context is reported, not sent
    let (_, e) = chat(&["-c", "40"], &[b'x'; 60]);
    assert!(
        e.contains("[message not sent: it needs more than the 40 positions of context]"),
        "{e}"
    );
}

#[test]
fn generate_output_ends_with_a_newline_and_never_escapes() {
    let (out, _) = ok(&["generate", "--builtin", "tiny", "-n", "40", "-p", "a\\b"]);
    assert!(out.ends_with('\n'), "{out:?}");
    assert!(out.starts_with("a\\b"), "the prompt as given: {out:?}");
    assert!(
        !out[3..].contains("\\x"),
        "invalid bytes are U+FFFD, not escapes: {out:?}"
    );
}

/// A checkpoint given to a command is converted once: the second run uses the
/// cached `.edq` (same output, a note on stderr); `--no-cache` converts again;
/// a changed option converts again.
#[test]
fn converted_checkpoints_are_cached() {
    let dir = tmp("cache");
    let hf = tiny_hf_folder(&dir);
    let cache = dir.join("cache");
    let gen = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_edgedecoding"))
            .env("EDGEDECODING_CACHE", &cache)
            .args(["generate", "-n", "8", "-p", "hi", "--model"])
            .arg(&hf)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (a, e1) = gen(&[]);
    assert!(e1.contains("cached as"), "{e1}");
    let (b, e2) = gen(&[]);
    assert!(e2.contains("using its cached conversion"), "{e2}");
    assert_eq!(a, b);
    let (c, e3) = gen(&["--no-cache"]);
    assert!(e3.contains("[converted") && !e3.contains("cached"), "{e3}");
    assert_eq!(a, c);
    let (_, e4) = gen(&["--ctx", "64"]);
    assert!(
        e4.contains("cached as"),
        "another option, another conversion: {e4}"
    );
    let files = std::fs::read_dir(cache.join("converted")).unwrap().count();
    assert_eq!(files, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `inspect` of a checkpoint shows the source's size and the converted one;
/// of a `.edq` file it reads the header and directory only (a damaged payload
/// does not stop the summary; running the model does).
#[test]
fn inspect_sizes_and_header_only() {
    let dir = tmp("inspect");
    let hf = tiny_hf_folder(&dir);
    let (out, _) = ok(&["inspect", "--no-cache", "--model", hf.to_str().unwrap()]);
    assert!(
        out.contains("source size    ") && out.contains("converted size "),
        "{out}"
    );
    let edq = dir.join("t.edq");
    ok(&[
        "convert",
        "--builtin",
        "tiny",
        "--out",
        edq.to_str().unwrap(),
    ]);
    let mut b = std::fs::read(&edq).unwrap();
    let n = b.len();
    b[n - 100] ^= 0x55;
    std::fs::write(&edq, &b).unwrap();
    let (out, _) = ok(&["inspect", "--model", edq.to_str().unwrap()]);
    assert!(out.contains("file size      "), "{out}");
    let e = err(&["generate", "-n", "1", "--model", edq.to_str().unwrap()]);
    assert!(e.contains("error: "), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint with a separate output head says that the integer model does
/// not use it; `--output-head` on a checkpoint without one is an error.
#[test]
fn separate_output_head_is_explained_and_a_missing_one_is_an_error() {
    let dir = tmp("head");
    let hf = tiny_hf_folder(&dir);
    let cfg = hf.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (_, e) = ok(&[
        "generate",
        "--no-cache",
        "-n",
        "2",
        "--model",
        hf.to_str().unwrap(),
    ]);
    assert!(!e.contains("separate output head"), "tied: no note: {e}");
    std::fs::write(
        &cfg,
        text.replace(
            "\"tie_word_embeddings\": true",
            "\"tie_word_embeddings\": false",
        ),
    )
    .unwrap();
    let (_, e) = ok(&[
        "generate",
        "--no-cache",
        "-n",
        "2",
        "--model",
        hf.to_str().unwrap(),
    ]);
    assert!(e.contains("its separate output head is not used"), "{e}");
    let e = err(&[
        "perplexity",
        "--no-cache",
        "--output-head",
        "--float",
        "--file",
        cfg.to_str().unwrap(),
        "--model",
        hf.to_str().unwrap(),
    ]);
    assert!(e.contains("tensor \"lm_head.weight\" is missing"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

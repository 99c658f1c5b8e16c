#!/usr/bin/env python3
"""Accuracy side by side with llama.cpp's own quantizations of the same weights.

The float reference of `perplexity --compare` is the checkpoint's weights as
f32. This script measures, on the same texts and the same windows, how far
llama.cpp's requantizations of that checkpoint (Q8_0, Q6_K, Q5_K_M, Q5_0 by
default: `llama-quantize --allow-requantize`) land from it (`llama-perplexity
--kl-divergence-base` on the checkpoint, then `--kl-divergence` per
quantization), and how far edgedecoding's integer model lands from its float
reference (`perplexity --compare --second-half`). Both score the second half
of each window (positions window/2 .. window-1), as llama-perplexity does.

Per text and model it prints the perplexity ratio minus one, the top-1
agreement and the mean KL divergence from the reference, as a markdown table.

    python3 benches/compare-llama-quality.py --llama-dir DIR --gguf FILE \\
        --file a.txt --file b.txt [--windows 16] [-t 2]

DIR holds llama-perplexity and llama-quantize (build them outside this
repository: `cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build
build --target llama-perplexity llama-quantize`; DIR is `build/bin`). The
requantized files are kept in --work (about 2.5 GB for the four defaults);
each text's logits file (about 2.5 GB for 16 windows) is deleted after use.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, log):
    """Runs cmd with its output in `log`; exits with the log's tail on failure."""
    t0 = time.time()
    with open(log, "w") as f:
        r = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT)
    text = Path(log).read_text(errors="replace")
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{text[-3000:]}")
    print(f"  {Path(cmd[0]).name} … {time.time() - t0:.0f} s", file=sys.stderr)
    return text


def grab(pattern, text, what):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit(f"no {what} in the output (pattern {pattern!r})")
    return float(m.group(1))


def llama_row(text):
    """(ratio - 1 in %, top-1 %, KL) from `llama-perplexity --kl-divergence`."""
    ratio = grab(r"^Mean PPL\(Q\)/PPL\(base\)\s*:\s*([0-9.]+)", text, "PPL ratio")
    kl = grab(r"^Mean\s+KLD:\s*([0-9.]+)", text, "mean KLD")
    top = grab(r"^Same top p:\s*([0-9.]+)", text, "top-1 agreement")
    return (ratio - 1.0) * 100.0, top, kl


def ours_rows(text, also):
    """Rows of `perplexity --compare --second-half [--also …]`."""
    rows = [
        (
            "edgedecoding integer model",
            grab(r"^ratio integer/float: [0-9.]+ \(([-+0-9.]+) %\)", text, "ratio"),
            grab(r"^teacher-forced top-1 agreement: \d+/\d+ = ([0-9.]+) %", text, "agreement"),
            grab(r"^mean KL\(float \|\| integer\): ([0-9.]+) nats", text, "KL"),
        )
    ]
    for a in also:
        name = re.escape(str(a))
        line = re.search(rf"^also {name}: .*$", text, re.M)
        if not line:
            sys.exit(f"no --also line for {a}")
        l = line.group(0)
        rows.append(
            (
                f"edgedecoding {Path(a).name}",
                grab(r"ratio [0-9.]+ \(([-+0-9.]+) %\)", l, "ratio"),
                grab(r"top-1 agreement \d+/\d+ = ([0-9.]+) %", l, "agreement"),
                grab(r"mean KL ([0-9.]+) nats", l, "KL"),
            )
        )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-dir", required=True, type=Path)
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--file", required=True, type=Path, action="append", help="a text (repeat for more)")
    ap.add_argument("--windows", type=int, default=16, help="windows of -c tokens per text")
    ap.add_argument("-c", "--window", type=int, default=512)
    ap.add_argument("--types", default="Q8_0,Q6_K,Q5_K_M,Q5_0", help="llama-quantize types")
    ap.add_argument("--also", type=Path, action="append", default=[], help="more .edq models for edgedecoding's --also")
    ap.add_argument("--edgedecoding", type=Path, default=ROOT / "target/release/edgedecoding")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache/edgedecoding/compare-quality")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    for tool in ("llama-perplexity", "llama-quantize"):
        if not (args.llama_dir / tool).is_file():
            sys.exit(f"{args.llama_dir / tool} not found (see the build line in --help)")
    for p in [args.gguf, args.edgedecoding, *args.file, *args.also]:
        if not p.exists():
            sys.exit(f"{p} not found")
    args.work.mkdir(parents=True, exist_ok=True)
    types = [t for t in args.types.split(",") if t]
    t = str(args.threads)

    req = {}
    for q in types:
        out = args.work / f"{args.gguf.stem}-{q}.gguf"
        if not out.is_file():
            print(f"requantizing to {q}", file=sys.stderr)
            tmp = out.with_suffix(".part")
            run([args.llama_dir / "llama-quantize", "--allow-requantize", args.gguf, tmp, q, t], args.work / f"quantize-{q}.log")
            tmp.rename(out)
        req[q] = out

    tables = []
    for text in args.file:
        print(f"{text}:", file=sys.stderr)
        base = args.work / "base.kld"
        try:
            run(
                [args.llama_dir / "llama-perplexity", "-m", args.gguf, "-f", text, "-c", args.window,
                 "--chunks", args.windows, "-t", t, "--kl-divergence-base", base],
                args.work / "base.log",
            )
            rows = []
            for q in types:
                out = run(
                    [args.llama_dir / "llama-perplexity", "-m", req[q], "-c", args.window, "-t", t,
                     "--kl-divergence-base", base, "--kl-divergence"],
                    args.work / f"kld-{q}.log",
                )
                rows.append((f"llama.cpp {q}",) + llama_row(out))
        finally:
            base.unlink(missing_ok=True)
        cmd = [args.edgedecoding, "perplexity", "--model", args.gguf, "--file", text, "--compare", "--second-half",
               "-c", args.window, "--max-windows", args.windows, "-t", t]
        for a in args.also:
            cmd += ["--also", a]
        rows += ours_rows(run(cmd, args.work / "edgedecoding.log"), args.also)
        tables.append((text, rows))

    print(f"Against each one's float reference (the checkpoint's weights), second half of each of up to "
          f"{args.windows} windows of {args.window} tokens:\n")
    for text, rows in tables:
        print(f"**{text.name}**\n")
        print("| model | PPL ratio − 1 | top-1 agreement | mean KL |")
        print("|---|---:|---:|---:|")
        for name, r, top, kl in rows:
            print(f"| {name} | {r:+.2f} % | {top:.2f} % | {kl:.5f} |")
        print()


if __name__ == "__main__":
    main()

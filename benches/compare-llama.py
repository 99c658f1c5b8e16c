#!/usr/bin/env python3
"""Side-by-side speed of edgedecoding and llama.cpp on one machine, in one run.

Usage:
  python3 benches/compare-llama.py --llama-dir DIR --gguf MODEL.gguf [options]

DIR holds llama.cpp's llama-bench and llama-cli (build them outside this
repository from a llama.cpp checkout: cmake -B build -DGGML_NATIVE=ON
-DLLAMA_CURL=OFF && cmake --build build --target llama-bench llama-cli).
The GGUF is converted once to .edq files (full vocabulary and pruned to the
accelerator's 37984 rows) in --work (default ~/.cache/edgedecoding/compare).
Both programs are run alternately, --rounds times, with the same thread
count; the table gives mean ± standard deviation and the ratio
edgedecoding / llama.cpp (for cold start and RSS, lower is better).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env)
    # read stdout fully before waiting (large JSON outputs)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{err.decode(errors='replace')[-2000:]}")
    return out.decode(), wall, ru.ru_maxrss / 1024.0


def ms(v):
    return (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-dir", required=True, type=Path)
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--edgedecoding", type=Path, default=ROOT / "target/release/edgedecoding")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache/edgedecoding/compare")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-p", "--prompt", type=int, default=512)
    ap.add_argument("-n", "--gen", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep-vocab", type=int, default=37984)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    a = ap.parse_args()

    ed = a.edgedecoding
    if not ed.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "edgedecoding"], cwd=ROOT, check=True)
    for tool in ("llama-bench", "llama-cli"):
        if not (a.llama_dir / tool).exists():
            sys.exit(f"{a.llama_dir / tool} not found")
    a.work.mkdir(parents=True, exist_ok=True)
    models = {"full": a.work / "full.edq", "pruned": a.work / f"pruned{a.keep_vocab}.edq"}
    for name, path in models.items():
        if not path.exists():
            print(f"[converting {a.gguf} -> {path}]", file=sys.stderr)
            cmd = [str(ed), "convert", "--model", str(a.gguf), "--out", str(path)]
            if name == "pruned":
                cmd += ["--keep-vocab", str(a.keep_vocab)]
            run(cmd)

    t = str(a.threads)
    prompt = "The capital of France is"
    res = {k: [] for k in ("llama_pp", "llama_tg", "llama_cold", "llama_rss")}
    for m in models:
        for k in ("pp", "tg", "cold", "rss"):
            res[f"{m}_{k}"] = []
    for r in range(a.rounds):
        print(f"[round {r + 1}/{a.rounds}]", file=sys.stderr)
        out, _, _ = run([str(a.llama_dir / "llama-bench"), "-m", str(a.gguf), "-p", str(a.prompt),
                         "-n", str(a.gen), "-t", t, "-r", "1", "-o", "json"])
        for rec in json.loads(out):
            key = "llama_pp" if rec["n_prompt"] > 0 else "llama_tg"
            res[key].append(rec["avg_ts"])
        _, wall, rss = run([str(a.llama_dir / "llama-cli"), "-m", str(a.gguf), "-p", prompt, "-n", "1",
                            "-t", t, "-no-cnv"])
        res["llama_cold"].append(wall)
        res["llama_rss"].append(rss)
        for m, path in models.items():
            out, _, _ = run([str(ed), "bench", "--model", str(path), "-p", str(a.prompt), "-n", str(a.gen),
                             "--thread-counts", t, "-r", "1", "-o", "json"])
            j = json.loads(out)
            for rec in j["results"]:
                k = "pp" if rec["test"].startswith("pp") else "tg"
                res[f"{m}_{k}"].append(rec["mean"])
            res.setdefault(f"{m}_memory", j["memory"])
            _, wall, rss = run([str(ed), "generate", "--model", str(path), "-p", prompt, "-n", "1", "-t", t])
            res[f"{m}_cold"].append(wall)
            res[f"{m}_rss"].append(rss)

    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; threads {t}; edgedecoding {commit}; "
          f"GGUF {a.gguf.name}; {a.rounds} rounds, alternating; {time.strftime('%Y-%m-%d')}")
    print()
    print("| test | llama.cpp | edgedecoding full vocab | ratio | edgedecoding pruned | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("pp%d tok/s" % a.prompt, "pp"), ("tg%d tok/s" % a.gen, "tg"),
            ("cold `-n 1` s (lower is better)", "cold"), ("peak RSS MB (lower is better)", "rss")]
    for label, k in rows:
        lm, ls = ms(res[f"llama_{k}"])
        cells = [f"{lm:.2f} ± {ls:.2f}"]
        for m in models:
            em, es = ms(res[f"{m}_{k}"])
            cells += [f"{em:.2f} ± {es:.2f}", f"{em / lm:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    for m in models:
        for e in res.get(f"{m}_memory", []):
            print(f"{m}: {e['bytes_per_token'] / 1e6:.1f} MB read per token, measured read bandwidth "
                  f"{e['read_bandwidth_gbs']:.1f} GB/s, decode at {100 * e['roofline_ratio']:.0f} % of that roofline "
                  f"(backend {e['isa']}, last round)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

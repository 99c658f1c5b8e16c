"""Model: generation equals the CLI's output bit for bit; the other calls."""

import json
import os
import pathlib
import re
import threading

import numpy as np
import pytest

import edgedecoding as ed

eq = np.testing.assert_array_equal


def cli_generate(cli, model, prompt, n, *extra):
    p = cli("generate", "--model", model, "--prompt", prompt, "-n", n, "-t", 2, *extra)
    assert p.stdout.endswith("\n")
    assert p.stdout.startswith(prompt)
    return p.stdout[len(prompt):-1], p.stderr


@pytest.mark.parametrize(
    "prompt,n,kw,extra",
    [
        ("Hello", 40, {}, []),
        ("The capital of France is", 24, {"parity": True}, ["--mode", "parity"]),
        ("Once upon", 30, {"temperature": 0.8, "top_k": 40, "seed": 7}, ["--temperature", 0.8, "--top-k", 40, "--sample-seed", 7]),
        ("x", 25, {"temperature": 1.3, "top_p": 0.9, "seed": 3}, ["--temperature", 1.3, "--top-p", 0.9, "--sample-seed", 3]),
    ],
)
def test_generate_equals_cli(cli, small_edq, small, prompt, n, kw, extra):
    want, _ = cli_generate(cli, small_edq, prompt, n, *extra)
    assert small.generate(prompt, max_tokens=n, **kw) == want
    g = small.stream(prompt, max_tokens=n, **kw)
    pieces = list(g)
    assert "".join(pieces) == want == g.text
    assert len(g.tokens) == n and g.prompt_tokens == len(small.tokenize(prompt))
    assert g.decode_tok_s > 0 and g.prefill_seconds > 0


def test_generate_threads_do_not_matter(small_edq, small):
    one = ed.Model.load(str(small_edq), threads=1)
    assert one.threads == 1
    assert one.generate("Threads", 20) == small.generate("Threads", 20)


def test_tokenize_detokenize(small):
    ids = small.tokenize("Hi!\n")
    assert ids == [72, 105, 33, 10]
    assert small.detokenize(ids) == "Hi!\n"
    assert small.detokenize(np.array(ids, dtype=np.uint32)) == "Hi!\n"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        small.detokenize([300])


def test_prefill_decode_steps_match_generate(small):
    text = small.generate("Step", 6)
    small.reset()
    logits = small.prefill(small.tokenize("Step"))
    assert logits.dtype == np.int32 and logits.shape == (small.config["n_kept"],)
    toks = []
    nxt = ed.argmax(logits)
    for _ in range(6):
        toks.append(small.token_of_row(nxt))
        nxt = ed.argmax(small.decode(toks[-1]))
    assert small.detokenize(toks) == text
    assert small.pos == len("Step") + 6
    # all_logits: one row per prompt token, the last equals the plain prefill
    small.reset()
    all_rows = small.prefill(small.tokenize("Step"), all_logits=True)
    assert all_rows.shape == (4, small.config["n_kept"])
    small.reset()
    eq(small.prefill(small.tokenize("Step")), all_rows[-1])


def test_chat_equals_cli(cli, small_edq, small):
    import subprocess

    exe = pathlib.Path(os.environ.get("EDGEDECODING_CLI", pathlib.Path(__file__).resolve().parents[2] / "target" / "release" / "edgedecoding"))
    out = subprocess.run(
        [str(exe), "chat", "--model", str(small_edq), "-n", "20", "-t", "2"],
        input="hello\nhow are you\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # one answer per turn (the banner goes to stderr)
    small.reset()
    a1 = small.chat("hello", max_tokens=20)
    a2 = small.chat("how are you", max_tokens=20)
    assert out == "\n".join([a1, a2, ""])
    small.reset()
    g = small.chat_stream("hello", max_tokens=20)
    assert "".join(g) == a1


def test_perplexity_equals_cli(cli, small_edq, small, workdir):
    text = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    f = workdir / "ppl.txt"
    f.write_text(text)
    out = cli("perplexity", "--model", small_edq, "--file", f, "--window", 128, "--max-windows", 3, "-t", 2).stdout
    want = float(re.search(r"integer perplexity: ([0-9.]+)", out).group(1))
    got = small.perplexity(text, window=128, max_windows=3)
    assert got["windows"] == 3 and got["predictions"] == 3 * 127
    assert f"{got['perplexity']:.4f}" == f"{want:.4f}"


def test_bench(small):
    r = small.bench(prefill=16, decode=4)
    assert r["prefill_tok_s"] > 0 and r["decode_tok_s"] > 0 and r["threads"] == 2


def test_gil_is_released(small):
    """Another Python thread runs while the decoder works."""
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=tick)
    t.start()
    small.generate("GIL", 60)
    stop.set()
    t.join()
    assert len(ticks) > 5


def test_generation_ended_by_another_call(small):
    g = small.stream("abc", 10)
    next(g)
    small.reset()
    with pytest.raises(RuntimeError, match="ended by a later call"):
        next(g)


def test_model_errors(small, workdir):
    with pytest.raises(FileNotFoundError):
        ed.Model.load(str(workdir / "missing.edq"))
    bad = workdir / "bad.edq"
    bad.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ValueError):
        ed.Model.load(str(bad))
    with pytest.raises(ValueError, match="threads"):
        ed.Model.load(str(bad), threads=0)
    with pytest.raises(ValueError, match='quantizer must be "rtn" or "gptq"'):
        ed.Model.load(str(bad), quantizer="fp8")
    with pytest.raises(ValueError, match="no tokens"):
        small.generate("")
    with pytest.raises(ValueError):
        small.generate("x", temperature=-1.0)
    with pytest.raises(ValueError):
        small.generate("x", top_p=0.0)
    small.reset()
    with pytest.raises(ValueError):
        small.prefill([256])  # outside the 256-token vocabulary
    with pytest.raises(ValueError):
        small.prefill([])
    with pytest.raises(ValueError):
        small.prefill([[1, 2]])
    with pytest.raises(ValueError):
        small.prefill([-1])
    with pytest.raises(ValueError):
        small.prefill(np.array([1.5]))
    with pytest.raises(ValueError, match="max_tokens"):
        small.generate("x", max_tokens=-1)
    with pytest.raises(ValueError, match="token"):
        small.decode(-1)
    with pytest.raises(ValueError, match="window"):
        small.perplexity("some text", window=-5)
    assert small.pos == 0  # nothing changed
    with pytest.raises(ValueError, match="context|capacity|full"):
        small.prefill([65] * (small.config["ctx"] + 1))
    with pytest.raises(ValueError):
        small.token_of_row(small.config["n_kept"])
    with pytest.raises(ValueError):
        small.bench(prefill=small.config["ctx"], decode=1)
    with pytest.raises(ValueError):
        small.perplexity("short", window=512)
    assert small.pos == 0


def test_context_full_stops_generation(cli, small_edq, workdir):
    # generation runs into the end of the context: the CLI and Python stop
    # at the same place
    m = ed.Model.load(str(small_edq), threads=2)
    assert m.config["ctx"] == 1024
    g = m.stream("a" * 10, max_tokens=2000)
    text = "".join(g)
    assert len(g.tokens) == 1024 - 10 + 1 and g.context_full
    want, err = cli_generate(cli, small_edq, "a" * 10, 2000)
    assert text == want and "context full" in err


def _byte_level(b):
    """GPT-2's byte-to-character map of byte-level BPE (one byte)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    if b in keep:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in keep].index(b))


def test_checkpoint_quantizer_default_is_gptq(tmp_path):
    # the committed tiny Hugging Face checkpoint (vocabulary 256) with a
    # byte-level tokenizer of its 256 byte tokens
    repo = pathlib.Path(__file__).resolve().parents[2]
    fix = repo / "checkpoint/tests/fixtures/tiny_hf"
    hf = tmp_path / "tiny_hf"
    hf.mkdir()
    for f in ("config.json", "model.safetensors"):
        (hf / f).write_bytes((fix / f).read_bytes())
    tok = json.loads((repo / "tokenizer/tests/fixtures/tiny_tokenizer.json").read_text())
    tok["model"]["vocab"] = {_byte_level(b): b for b in range(256)}
    tok["model"]["merges"] = []
    tok["added_tokens"] = []
    (hf / "tokenizer.json").write_text(json.dumps(tok))

    def logits(**kw):
        m = ed.Model.load(str(hf), threads=1, ctx=64, cache=False, **kw)
        return m.prefill(np.arange(3, 60, 3, dtype=np.int32), all_logits=True)

    default, gptq, rtn = logits(), logits(quantizer="gptq"), logits(quantizer="rtn")
    eq(default, gptq)
    assert default.shape == rtn.shape and not np.array_equal(default, rtn)

"""On the real checkpoint when present (scripts/fetch-model.sh; CI requires it
once fetched, EDGEDECODING_REQUIRE_REAL): converted once by the CLI with the
accelerator's pruned vocabulary, then Python and the CLI must print the same
text — the Qwen2 BPE, its specials, the chat template and the re-spelling of
pruned tokens all run here."""

import os
import pathlib
import subprocess

import pytest

import edgedecoding as ed


def real_gguf():
    p = pathlib.Path(
        os.environ.get("EDGEDECODING_REAL_GGUF")
        or pathlib.Path.home() / ".cache/edgedecoding/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    )
    if not p.exists():
        assert not os.environ.get("EDGEDECODING_REQUIRE_REAL"), f"real GGUF {p} is required but absent"
        pytest.skip("real GGUF not found (run scripts/fetch-model.sh or set EDGEDECODING_REAL_GGUF)")
    return p


@pytest.fixture(scope="module")
def real_edq(cli, workdir):
    gguf = real_gguf()
    out = workdir / "qwen-pruned.edq"
    # rtn converts in a fifth of gptq's time; the quantizer is not the subject
    # here (the CLI's real-model tests convert with the default, gptq)
    cli("convert", "--model", gguf, "--ctx", 128, "--keep-vocab", 37984, "--quantizer", "rtn", "--out", out)
    return out


@pytest.fixture(scope="module")
def real(real_edq):
    return ed.Model.load(str(real_edq), threads=2)


def test_real_generate_equals_cli(cli, real_edq, real):
    prompt = "The capital of France is"
    want = cli("generate", "--model", real_edq, "--prompt", prompt, "-n", 16, "-t", 2).stdout
    got = real.generate(prompt, max_tokens=16)
    assert prompt + got + "\n" == want
    assert "Paris" in got


def test_real_chat_equals_cli(real_edq, real):
    exe = os.environ.get("EDGEDECODING_CLI") or str(pathlib.Path(__file__).resolve().parents[2] / "target/release/edgedecoding")
    out = subprocess.run(
        [exe, "chat", "--model", str(real_edq), "-n", "24", "-t", "2"],
        input="Name a prime number.\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    real.reset()
    answer = real.chat("Name a prime number.", max_tokens=24)
    assert out == answer + "\n"  # the banner goes to stderr


def test_real_pruned_tokens_are_respelled(real):
    # "Rome" is outside the 37984 kept ids: spelled with kept byte tokens
    ids = real.tokenize(" Rome")
    for t in ids:
        real.row_of_token(t)  # every id is kept
    assert real.detokenize(ids) == " Rome"
    assert real.config["n_kept"] == 37984 and real.config["vocab"] > 150000


def test_real_load_converts_once_through_the_cache(real_edq, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEDECODING_CACHE", str(tmp_path))
    stages = []

    def load():
        return ed.Model.load(
            str(real_gguf()),
            threads=2,
            ctx=128,
            keep_vocab=37984,
            quantizer="rtn",
            progress=lambda stage, done, total: stages.append(stage),
        )

    first = load()
    assert stages, "the first load converts"
    assert len(list((tmp_path / "converted").glob("*.edq"))) == 1
    stages.clear()
    second = load()
    assert stages == [], "the second load is the cached conversion"
    # both are the conversion the CLI writes with the same options
    prompt = "def fibonacci(n):"
    want = ed.Model.load(str(real_edq), threads=2).generate(prompt, max_tokens=12)
    assert first.generate(prompt, max_tokens=12) == want
    assert second.generate(prompt, max_tokens=12) == want

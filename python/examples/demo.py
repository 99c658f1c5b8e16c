"""The board demo on the CPU: load a model, stream a chat answer, show tok/s.

    python python/examples/demo.py --model qwen.edq "What is the capital of France?"

`--model` takes a .edq file (instant), a .gguf file or a Hugging Face folder
(converted on load, about a minute for Qwen2.5-0.5B). Without a message it
chats on stdin until an empty line.
"""

import argparse
import sys
import time

import edgedecoding as ed


def answer(model, message, max_tokens):
    t0 = time.perf_counter()
    g = model.chat_stream(message, max_tokens=max_tokens)
    print("assistant> ", end="", flush=True)
    for piece in g:
        print(piece, end="", flush=True)
    print()
    print(
        f"[{g.prompt_tokens} prompt tokens at {g.prefill_tok_s:.1f} tok/s, "
        f"{len(g.tokens)} generated at {g.decode_tok_s:.1f} tok/s, "
        f"{time.perf_counter() - t0:.2f} s, {model.threads} threads, "
        f"context {model.pos}/{model.config['ctx']}]",
        file=sys.stderr,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("message", nargs="*", help="one message (else: chat on stdin)")
    ap.add_argument("--model", "-m", required=True, help=".edq, .gguf or Hugging Face folder")
    ap.add_argument("--threads", "-t", type=int, default=None)
    ap.add_argument("--max-tokens", "-n", type=int, default=128)
    ap.add_argument("--keep-vocab", type=int, default=None, help="prune like the accelerator (37984)")
    a = ap.parse_args()

    t0 = time.perf_counter()
    model = ed.Model.load(a.model, threads=a.threads, keep_vocab=a.keep_vocab)
    print(f"[{model!r} loaded in {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    if a.message:
        answer(model, " ".join(a.message), a.max_tokens)
        return
    while True:
        try:
            line = input("you> ")
        except EOFError:
            break
        if not line.strip():
            break
        answer(model, line, a.max_tokens)


if __name__ == "__main__":
    main()

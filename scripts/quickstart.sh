#!/usr/bin/env bash
# The README's main command: real text from the real model on this CPU.
# Fetches the Qwen2 0.5B GGUF once (scripts/fetch-model.sh, ~491 MB); the
# first `generate` on it converts it to a self-contained integer model with
# its SIMD layout and caches that (~/.cache/edgedecoding/converted, about
# three minutes on 2 cores), then generates after the prompt. Later runs start
# in well under a second.
#
# Usage: scripts/quickstart.sh [PROMPT] [extra `generate` options, e.g. -n 64]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt="${1:-The capital of France is}"
shift || true
cache="${EDGEDECODING_CACHE:-$HOME/.cache/edgedecoding}"
gguf="$(bash scripts/fetch-model.sh "$cache" | tail -n 1)"
cargo build --release -q -p edgedecoding
EDGEDECODING_CACHE="$cache" exec ./target/release/edgedecoding generate --model "$gguf" --prompt "$prompt" "$@"

#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 20), one at
# a time, from the committed seeds (fuzz/seeds/<target>) into a throw-away
# corpus; exits non-zero on the first crash (its input is kept in
# fuzz/artifacts/<target>/). Needs the nightly toolchain and cargo-fuzz.
# Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-20}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(edq gguf safetensors_hf tokenizer manifest_verify capi)
# -a: debug assertions (and overflow checks) on, as in `cargo test`;
# 16 codegen units (cargo-fuzz's default is 1) build faster on few cores.
# EDGEDECODING_FUZZ_TARGET: a build folder kept between runs (.ci/run sets one
# outside the clone, so the sanitizer build of the dependencies is reused).
FLAGS=(-a --codegen-units 16 --target-dir "${EDGEDECODING_FUZZ_TARGET:-target}")
cargo +nightly fuzz build "${FLAGS[@]}"
# see lsan.supp
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for t in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$t" "artifacts/$t"
  echo "--- fuzz $t: ${SECS} s"
  if ! cargo +nightly fuzz run "${FLAGS[@]}" "$t" "$WORK/$t" "seeds/$t" -- \
      -max_total_time="$SECS" -artifact_prefix="artifacts/$t/" >"$WORK/$t.log" 2>&1; then
    tail -n 60 "$WORK/$t.log"
    echo "FAILED: fuzz target $t crashed; input in fuzz/artifacts/$t/ (reproduce: cargo +nightly fuzz run -a $t <file>)" >&2
    exit 1
  fi
  grep -E "^#[0-9]+ +DONE|^Done" "$WORK/$t.log" | tail -n 2
done
echo "fuzz: ${#TARGETS[@]} targets, no crash"

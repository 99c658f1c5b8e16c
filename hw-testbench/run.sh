#!/usr/bin/env bash
# Builds the C++ testbench, generates the golden vectors (built-in small model),
# runs the testbench on them and verifies its outputs with `edgedecoding verify`.
# Exit status 0 only if every output matches. docs/VECTORS.md §7.
# `cargo test` runs it (cli/tests/hw_testbench.rs) with EDGEDECODING_BIN set to
# the CLI it built; by hand it builds the release CLI with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${EDGEDECODING_BIN:-}" ]; then
    ed() { "$EDGEDECODING_BIN" "$@"; }
else
    ed() { cargo run --release -q -p edgedecoding -- "$@"; }
fi

OUT="${EDV_TB_OUT:-target/hw-testbench}"
CXX="${CXX:-g++}"
CC="${CC:-gcc}"

step() { printf '\n--- %s ---\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"

step "build the testbench"
"$CXX" -std=c++17 -O2 -Wall -Wextra -Werror -o "$OUT/tb" hw-testbench/tb.cpp

step "generate golden vectors"
ed vectors --out "$OUT/golden"

step "the generated C headers compile (C99 and C++17)"
echo '#include "all_cases.h"' | "$CC" -std=c99 -Wall -Wextra -Werror -fsyntax-only -I "$OUT/golden/include" -x c -
echo '#include "all_cases.h"' | "$CXX" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I "$OUT/golden/include" -x c++ -

step "DDR images of the same model; their layout header compiles"
ed export-hw --out "$OUT/hw"
echo '#include "hw_layout.h"' | "$CC" -std=c99 -Wall -Wextra -Werror -fsyntax-only -I "$OUT/hw" -x c -

step "run the testbench (every operator of the suite)"
"$OUT/tb" "$OUT/golden" "$OUT/dut"

step "verify catches one wrong value (expected to fail)"
f="$OUT/dut/ops/softmax/spec_7_4/probs.bin"
cp "$f" "$f.orig"
printf '\000' | dd of="$f" bs=1 seek=0 conv=notrunc status=none  # 12338 -> 12288
if ed verify --golden "$OUT/golden" --dut "$OUT/dut" \
    --only ops/softmax/spec_7_4 >"$OUT/negative.txt" 2>&1; then
    cat "$OUT/negative.txt"
    echo "run.sh: verify accepted a wrong value" >&2
    exit 1
fi
grep -q "flat index 0 at \[0\]\[0\]: expected 12338, got 12288" "$OUT/negative.txt"
grep "MISMATCH\|flat index" "$OUT/negative.txt"
mv "$f.orig" "$f"

step "the testbench refuses a suite whose ROM differs from the SPEC recipe (expected to fail)"
r="$OUT/golden/rom/sigmoid_q15.bin"
cp "$r" "$r.orig"
printf '\001' | dd of="$r" bs=1 seek=0 conv=notrunc status=none  # SIGMOID_Q15[0] 11 -> 1
if "$OUT/tb" "$OUT/golden" "$OUT/dut-badrom" silu >"$OUT/badrom.txt" 2>&1; then
    cat "$OUT/badrom.txt"
    echo "run.sh: the testbench accepted a ROM that is not the SPEC's" >&2
    exit 1
fi
grep "SIGMOID_Q15\[0\] = 1, the SPEC recipe gives 11" "$OUT/badrom.txt"
mv "$r.orig" "$r"

step "verify every golden output"
ed verify --golden "$OUT/golden" --dut "$OUT/dut"

#!/usr/bin/env bash
# Co-simulation mode of the testbench (docs/VERIFICATION.md §3): builds
# libedgedecoding (static and shared), links the C++ testbench's operators
# (cosim.cpp + edv_ops.hpp) against the static library and compares them on
# seeded random and adversarial stimuli, then runs the library's decoder
# through the C ABI against the golden vectors of the built-in model; a C99
# program linked against the shared library checks the plain-C path.
# Exit status 0 only if everything matches.
#   EDV_COSIM_CASES (default 1000000 per operator), EDV_COSIM_SEED (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${EDV_COSIM_OUT:-target/hw-cosim}"
CXX="${CXX:-g++}"
CC="${CC:-gcc}"
CASES="${EDV_COSIM_CASES:-1000000}"
SEED="${EDV_COSIM_SEED:-1}"
LIBDIR=target/release

step() { printf '\n--- %s ---\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"

step "build libedgedecoding (release: static and shared)"
cargo build --release -q -p edgedecoding-capi
ls -l "$LIBDIR/libedgedecoding.a" "$LIBDIR/libedgedecoding.so"

step "the header compiles as C99 and C++17"
echo '#include "edgedecoding.h"' | "$CC" -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -I capi/include -x c -
echo '#include "edgedecoding.h"' | "$CXX" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I capi/include -x c++ -

step "a C99 program linked against the shared library (-I capi/include -L $LIBDIR -ledgedecoding)"
"$CC" -std=c99 -O2 -Wall -Wextra -Werror -I capi/include -o "$OUT/capi_smoke" hw-testbench/capi_smoke.c \
    -L "$LIBDIR" -ledgedecoding
LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$OUT/capi_smoke"

step "build the co-simulation (C++17, static library)"
"$CXX" -std=c++17 -O2 -Wall -Wextra -Werror -I capi/include -I hw-testbench -o "$OUT/cosim" hw-testbench/cosim.cpp \
    "$LIBDIR/libedgedecoding.a" -lpthread -ldl -lm

step "golden vectors and the same model as a .edq file"
cargo run --release -q -p edgedecoding -- vectors --out "$OUT/golden" >/dev/null
cargo run --release -q -p edgedecoding -- convert --out "$OUT/small.edq" >/dev/null
ls -l "$OUT/small.edq"

step "co-simulation: $CASES cases per operator, seed $SEED; the decoder against the golden vectors"
"$OUT/cosim" --cases "$CASES" --seed "$SEED" --golden "$OUT/golden" --model "$OUT/small.edq"

#!/usr/bin/env bash
# The SystemVerilog DPI-C example under Verilator (docs/VERIFICATION.md §4):
# builds edv_rtl.sv + tb_dpi.sv + sim_main.cpp against libedgedecoding.a and
# runs it; exit status 0 only if every RTL output equals the golden model.
#   bash hw-testbench/dpi/run.sh            # the RTL as written
#   bash hw-testbench/dpi/run.sh --broken   # +define+EDV_BROKEN_ROUNDING (ties down): must FAIL
# EDV_DPI_N (default 200000) stimuli per operator, EDV_DPI_SEED (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
LIB="$ROOT/target/release/libedgedecoding.a"
N="${EDV_DPI_N:-200000}"
SEED="${EDV_DPI_SEED:-1}"
variant=rtl
defs=()
if [ "${1:-}" = "--broken" ]; then
    variant=broken
    defs=(+define+EDV_BROKEN_ROUNDING)
fi
OUT="$ROOT/target/hw-dpi/$variant"

command -v verilator >/dev/null || { echo "verilator not found (apt-get install verilator)" >&2; exit 2; }
[ -f "$LIB" ] || cargo build --release -q -p edgedecoding-capi
rm -rf "$OUT"
mkdir -p "$OUT"
echo "$(verilator --version); $variant; $N stimuli per operator, seed $SEED"
t0=$(date +%s%N)
# the build's output goes to build.log (shown on failure)
if ! verilator --cc --exe --build -j 2 -Wall --top-module tb_dpi -Mdir "$OUT" \
        -GN="$N" -GSEED="$SEED" "${defs[@]}" \
        "$ROOT/hw-testbench/dpi/edv_rtl.sv" "$ROOT/hw-testbench/dpi/tb_dpi.sv" \
        "$ROOT/hw-testbench/dpi/sim_main.cpp" "$LIB" -LDFLAGS "-lpthread -ldl -lm" \
        >"$OUT/build.log" 2>&1; then
    cat "$OUT/build.log" >&2
    echo "run.sh: verilator build failed" >&2
    exit 2
fi
t1=$(date +%s%N)
set +e
"$OUT/Vtb_dpi"
rc=$?
set -e
t2=$(date +%s%N)
echo "build $(( (t1 - t0) / 1000000 )) ms, simulation $(( (t2 - t1) / 1000000 )) ms"
exit $rc

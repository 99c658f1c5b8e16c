#!/usr/bin/env bash
# The cocotb testbench on both variants of bfp_quantize.sv: the correct one must
# pass against the golden model, the deliberately broken one must fail.
# Needs `edgedecoding` and cocotb 1.8.x importable, and Verilator (5.006 is
# Debian's; cocotb >= 1.9 needs 5.022) — or SIM=icarus with a current cocotb.
set -euo pipefail
cd "$(dirname "$0")"
SIM=${SIM:-verilator}
failures() { # results file -> number of failed tests (or "missing")
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("missing"); sys.exit()
cases = root.iter("testcase")
n = [len(list(c.iter("failure"))) + len(list(c.iter("error"))) for c in cases]
print(sum(n) if n else "missing")
PY
}
status=0
for broken in 0 1; do
  rm -f "results_${SIM}_${broken}.xml"
  make -s SIM="$SIM" BROKEN=$broken > "log_${SIM}_${broken}.txt" 2>&1 || true
  f=$(failures "results_${SIM}_${broken}.xml")
  grep -E "blocks, [0-9]+ mismatches" "log_${SIM}_${broken}.txt" | sed 's/^ *[0-9.]*ns //' | head -1 || true
  if [ "$broken" = 0 ] && [ "$f" != 0 ]; then
    echo "FAIL: the correct bfp_quantize.sv does not match the golden model (see python/cocotb/log_${SIM}_0.txt)"
    status=1
  elif [ "$broken" = 1 ] && { [ "$f" = 0 ] || [ "$f" = missing ]; }; then
    echo "FAIL: the broken variant was not caught (failures: $f; see python/cocotb/log_${SIM}_1.txt)"
    status=1
  else
    echo "ok: BROKEN=$broken -> $f failing test(s), as expected"
  fi
done
exit $status

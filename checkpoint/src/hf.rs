//! Hugging Face folder reader: `config.json` and `model.safetensors` or sharded
//! `model-0000X-of-0000Y.safetensors` with `model.safetensors.index.json`;
//! tensors in BF16, F16 or F32.
//!
//! Safetensors layout: an 8-byte little-endian header length `N`, `N` bytes of
//! JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
//! offsets relative to the end of the header), then the data.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use edgedecoding_model::float_ref::FloatModel;
use serde_json::Value as Json;

use crate::build::{self, Hyper, Part, Shape, TensorSource};
use crate::quant::{bf16_to_f32, f16_to_f32};
use crate::source::Backing;
use crate::{Error, LoadOptions, Progress};

/// Name of the single-file weights.
pub const SINGLE: &str = "model.safetensors";
/// Name of the shard index.
pub const INDEX: &str = "model.safetensors.index.json";
/// Name of the configuration.
pub const CONFIG: &str = "config.json";
/// The config field of the trained context length.
const MAX_POS: &str = "max_position_embeddings";
/// Largest safetensors header accepted (the format's own limit is 100 MB).
pub const MAX_HEADER: u64 = 100 << 20;

/// What a Hugging Face folder offers besides the weights.
#[derive(Clone, Debug)]
pub struct HfInfo {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`, parsed.
    pub config: Json,
}

impl HfInfo {
    /// Path of the folder's `tokenizer.json` (may not exist).
    pub fn tokenizer_json(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }
}

/// Element type of a safetensors tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// bfloat16
    BF16,
    /// IEEE half
    F16,
    /// 32-bit float
    F32,
    /// Any other dtype string (parsed, not converted).
    Other(String),
}

impl Dtype {
    fn parse(s: &str) -> Self {
        match s {
            "BF16" => Dtype::BF16,
            "F16" => Dtype::F16,
            "F32" => Dtype::F32,
            other => Dtype::Other(other.to_string()),
        }
    }

    /// Bytes per element, for the dtypes of the safetensors specification.
    pub fn size(&self) -> Option<u64> {
        Some(match self {
            Dtype::BF16 | Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::Other(s) => match s.as_str() {
                "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
                "I16" | "U16" => 2,
                "I32" | "U32" => 4,
                "F64" | "I64" | "U64" => 8,
                _ => return None,
            },
        })
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dtype::BF16 => f.write_str("BF16"),
            Dtype::F16 => f.write_str("F16"),
            Dtype::F32 => f.write_str("F32"),
            Dtype::Other(s) => f.write_str(s),
        }
    }
}

/// One tensor of a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost first (`[out, in]` for a matrix).
    pub shape: Vec<u64>,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Size of the data in bytes.
    pub len: u64,
}

/// A parsed safetensors file.
pub struct SafeTensors {
    path: PathBuf,
    bytes: Backing,
    tensors: BTreeMap<String, StTensor>,
}

impl fmt::Debug for SafeTensors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafeTensors")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl SafeTensors {
    /// Opens (memory-maps) and parses a safetensors file.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::parse(path.to_path_buf(), Backing::open(path)?)
    }

    /// Parses safetensors bytes held in memory; `label` names them in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, Error> {
        Self::parse(label.into(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Backing) -> Result<Self, Error> {
        let b: &[u8] = &bytes;
        let file_len = b.len() as u64;
        let trunc = |what: &str, offset: u64, needed: u64| Error::Truncated {
            file: path.clone(),
            what: what.to_string(),
            offset,
            needed,
            available: file_len.saturating_sub(offset),
        };
        if b.len() < 8 {
            return Err(trunc("safetensors header length", 0, 8));
        }
        let mut n8 = [0u8; 8];
        n8.copy_from_slice(&b[..8]);
        let n = u64::from_le_bytes(n8);
        if n > file_len - 8 {
            return Err(trunc("safetensors JSON header", 8, n));
        }
        if n > MAX_HEADER {
            return Err(Error::BadSafetensors {
                file: path.clone(),
                offset: 0,
                reason: format!("header length {n} exceeds the {MAX_HEADER}-byte limit"),
            });
        }
        let data_start = 8 + n;
        let data_len = file_len - data_start;
        let header: Json =
            serde_json::from_slice(&b[8..data_start as usize]).map_err(|source| Error::Json {
                file: path.clone(),
                offset: 8,
                source,
            })?;
        let bad = |reason: String| Error::BadSafetensors {
            file: path.clone(),
            offset: 8,
            reason,
        };
        let obj = header.as_object().ok_or_else(|| {
            bad(format!(
                "the header is {}, not an object",
                json_type(&header)
            ))
        })?;
        let mut tensors = BTreeMap::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let e = v.as_object().ok_or_else(|| {
                bad(format!(
                    "tensor {name:?}: entry is {}, not an object",
                    json_type(v)
                ))
            })?;
            let dtype = e
                .get("dtype")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(format!("tensor {name:?}: no \"dtype\" string")))?;
            let dtype = Dtype::parse(dtype);
            let shape: Vec<u64> = e
                .get("shape")
                .and_then(Json::as_array)
                .and_then(|a| a.iter().map(Json::as_u64).collect::<Option<Vec<u64>>>())
                .ok_or_else(|| {
                    bad(format!(
                        "tensor {name:?}: no \"shape\" array of non-negative integers"
                    ))
                })?;
            let offs = e
                .get("data_offsets")
                .and_then(Json::as_array)
                .and_then(|a| a.iter().map(Json::as_u64).collect::<Option<Vec<u64>>>())
                .filter(|o| o.len() == 2)
                .ok_or_else(|| {
                    bad(format!(
                        "tensor {name:?}: no \"data_offsets\" pair of non-negative integers"
                    ))
                })?;
            let (begin, end) = (offs[0], offs[1]);
            if end < begin {
                return Err(bad(format!(
                    "tensor {name:?}: data_offsets [{begin}, {end}] end before they begin"
                )));
            }
            if end > data_len {
                return Err(Error::TensorOutOfBounds {
                    file: path.clone(),
                    tensor: name.clone(),
                    offset: data_start.saturating_add(begin),
                    size: end - begin,
                    file_len,
                });
            }
            let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            if let Some(sz) = dtype.size() {
                if numel.and_then(|n| n.checked_mul(sz)) != Some(end - begin) {
                    return Err(bad(format!(
                        "tensor {name:?}: shape {shape:?} of {dtype} does not match the {} bytes \
                         of data_offsets [{begin}, {end}]",
                        end - begin
                    )));
                }
            }
            tensors.insert(
                name.clone(),
                StTensor {
                    dtype,
                    shape,
                    offset: data_start + begin,
                    len: end - begin,
                },
            );
        }
        Ok(Self {
            path,
            bytes,
            tensors,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors by name.
    pub fn tensors(&self) -> &BTreeMap<String, StTensor> {
        &self.tensors
    }

    /// The tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&StTensor> {
        self.tensors.get(name)
    }

    /// The raw bytes of a tensor.
    pub fn bytes_of(&self, t: &StTensor) -> &[u8] {
        // bounds were checked at parse time
        &self.bytes[t.offset as usize..(t.offset + t.len) as usize]
    }

    /// Converts a tensor (or, with `rows`, the listed rows of a matrix, in the
    /// order given) to f32.
    pub fn to_f32(&self, name: &str, rows: Option<&[u32]>) -> Result<Vec<f32>, Error> {
        let t = self.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            file: self.path.clone(),
            tensor: name.to_string(),
        })?;
        let conv: fn(&[u8]) -> f32 = match t.dtype {
            Dtype::BF16 => |c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])),
            Dtype::F16 => |c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])),
            Dtype::F32 => |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            Dtype::Other(ref d) => {
                return Err(Error::UnsupportedDtype {
                    file: self.path.clone(),
                    tensor: name.to_string(),
                    offset: t.offset,
                    dtype: d.clone(),
                })
            }
        };
        let es = t.dtype.size().unwrap_or(1) as usize;
        let src = self.bytes_of(t);
        match rows {
            None => Ok(src.chunks_exact(es).map(conv).collect()),
            Some(rows) => {
                let n_rows = t.shape.first().copied().unwrap_or(1);
                let row_bytes = t.len.checked_div(n_rows).unwrap_or(0) as usize;
                let mut out = Vec::with_capacity(rows.len().saturating_mul(row_bytes / es));
                for &r in rows {
                    if r as u64 >= n_rows {
                        return Err(Error::BadValue {
                            file: self.path.clone(),
                            key: format!("row of tensor {name:?}"),
                            value: r.to_string(),
                            reason: format!("the tensor has {n_rows} rows"),
                        });
                    }
                    let r = r as usize;
                    out.extend(
                        src[r * row_bytes..(r + 1) * row_bytes]
                            .chunks_exact(es)
                            .map(conv),
                    );
                }
                Ok(out)
            }
        }
    }
}

/// The weights of a Hugging Face folder (one or several safetensors files).
#[derive(Debug)]
pub struct HfWeights {
    dir: PathBuf,
    shards: Vec<SafeTensors>,
    map: HashMap<String, usize>,
}

fn read_json(path: &Path) -> Result<Json, Error> {
    let text = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        op: "read",
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::Json {
        file: path.to_path_buf(),
        offset: 0,
        source,
    })
}

impl HfWeights {
    /// Opens `model.safetensors`, or the shards listed by
    /// `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let single = dir.join(SINGLE);
        if single.is_file() {
            let st = SafeTensors::open(&single)?;
            let map = st.tensors.keys().map(|k| (k.clone(), 0)).collect();
            return Ok(Self {
                dir: dir.to_path_buf(),
                shards: vec![st],
                map,
            });
        }
        let index = dir.join(INDEX);
        if !index.is_file() {
            return Err(Error::NotACheckpoint {
                path: dir.to_path_buf(),
                reason: format!("the folder has neither {SINGLE} nor {INDEX}"),
            });
        }
        let j = read_json(&index)?;
        let bad = |reason: String| Error::BadSafetensors {
            file: index.clone(),
            offset: 0,
            reason,
        };
        let wm = j
            .get("weight_map")
            .and_then(Json::as_object)
            .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
        let mut files: BTreeMap<String, usize> = BTreeMap::new();
        let mut wanted: Vec<(String, String)> = Vec::with_capacity(wm.len());
        for (name, f) in wm {
            let f = f
                .as_str()
                .ok_or_else(|| bad(format!("weight_map[{name:?}] is not a string")))?;
            let plain = !f.is_empty()
                && f != "."
                && f != ".."
                && !f.contains(['/', '\\'])
                && Path::new(f).file_name().is_some();
            if !plain {
                return Err(bad(format!(
                    "weight_map[{name:?}] = {f:?} is not a file name in the folder"
                )));
            }
            files.insert(f.to_string(), 0);
            wanted.push((name.clone(), f.to_string()));
        }
        let mut shards = Vec::with_capacity(files.len());
        for (f, idx) in files.iter_mut() {
            *idx = shards.len();
            shards.push(SafeTensors::open(&dir.join(f))?);
        }
        let mut map = HashMap::with_capacity(wanted.len());
        for (name, f) in wanted {
            let i = files[&f];
            if shards[i].tensor(&name).is_none() {
                return Err(Error::MissingTensor {
                    file: shards[i].path.clone(),
                    tensor: name,
                });
            }
            map.insert(name, i);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            shards,
            map,
        })
    }

    /// The tensor `name` and the file holding it.
    pub fn tensor(&self, name: &str) -> Option<(&SafeTensors, &StTensor)> {
        let s = &self.shards[*self.map.get(name)?];
        Some((s, s.tensor(name)?))
    }

    /// The safetensors files.
    pub fn shards(&self) -> &[SafeTensors] {
        &self.shards
    }
}

impl TensorSource for HfWeights {
    fn name(&self, part: Part, l: usize) -> String {
        crate::qwen2::tensor_name(crate::qwen2::Naming::Hf, part, l)
    }

    fn read(&self, name: &str, shape: Shape, rows: Option<&[u32]>) -> Result<Vec<f32>, Error> {
        let (st, t) = self.tensor(name).ok_or_else(|| Error::MissingTensor {
            file: self.dir.clone(),
            tensor: name.to_string(),
        })?;
        let expected: Vec<u64> = match shape {
            Shape::Vector(n) => vec![n as u64],
            Shape::Matrix { rows, cols } => vec![rows as u64, cols as u64],
        };
        if t.shape != expected {
            return Err(Error::ShapeMismatch {
                file: st.path.clone(),
                tensor: name.to_string(),
                offset: t.offset,
                found: t.shape.clone(),
                expected,
                order: "Hugging Face order, [out, in]",
            });
        }
        st.to_f32(name, rows)
    }
}

fn cfg_get<'a>(file: &Path, cfg: &'a Json, key: &str) -> Result<&'a Json, Error> {
    cfg.get(key).ok_or_else(|| Error::MissingKey {
        file: file.to_path_buf(),
        key: key.to_string(),
    })
}

fn cfg_u64(file: &Path, cfg: &Json, key: &str) -> Result<u64, Error> {
    let v = cfg_get(file, cfg, key)?;
    v.as_u64().ok_or_else(|| Error::WrongKeyType {
        file: file.to_path_buf(),
        key: key.to_string(),
        expected: "a non-negative integer",
        found: format!("{} ({v})", json_type(v)),
    })
}

fn cfg_f64(file: &Path, cfg: &Json, key: &str) -> Result<f64, Error> {
    let v = cfg_get(file, cfg, key)?;
    v.as_f64().ok_or_else(|| Error::WrongKeyType {
        file: file.to_path_buf(),
        key: key.to_string(),
        expected: "a number",
        found: format!("{} ({v})", json_type(v)),
    })
}

/// Reads `config.json` of a folder and checks it is a Qwen2 causal LM.
pub fn read_config(dir: &Path) -> Result<HfInfo, Error> {
    let file = dir.join(CONFIG);
    let config = read_json(&file)?;
    let arch = cfg_get(&file, &config, "architectures")?;
    let list: Vec<&str> = arch
        .as_array()
        .and_then(|a| a.iter().map(Json::as_str).collect::<Option<Vec<&str>>>())
        .ok_or_else(|| Error::WrongKeyType {
            file: file.clone(),
            key: "architectures".into(),
            expected: "an array of strings",
            found: json_type(arch).into(),
        })?;
    if !list.contains(&"Qwen2ForCausalLM") {
        return Err(Error::UnsupportedArchitecture {
            file,
            arch: format!("{list:?}"),
        });
    }
    Ok(HfInfo {
        dir: dir.to_path_buf(),
        config,
    })
}

/// Builds the float model of a Hugging Face Qwen2 folder.
pub fn load_folder(
    dir: &Path,
    opts: &LoadOptions,
    progress: Progress<'_>,
) -> Result<(FloatModel, HfInfo), Error> {
    let info = read_config(dir)?;
    let file = dir.join(CONFIG);
    let c = &info.config;
    const KEYS: [&str; 8] = [
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "rope_theta",
        "rms_norm_eps",
    ];
    let hyper = Hyper {
        n_layers: cfg_u64(&file, c, KEYS[0])?,
        hidden: cfg_u64(&file, c, KEYS[1])?,
        ffn: cfg_u64(&file, c, KEYS[2])?,
        n_heads: cfg_u64(&file, c, KEYS[3])?,
        n_kv_heads: cfg_u64(&file, c, KEYS[4])?,
        vocab: cfg_u64(&file, c, KEYS[5])?,
        rope_theta: cfg_f64(&file, c, KEYS[6])?,
        eps: cfg_f64(&file, c, KEYS[7])?,
        train_ctx: match c.get(MAX_POS) {
            None | Some(Json::Null) => None,
            Some(_) => Some((cfg_u64(&file, c, MAX_POS)?, MAX_POS)),
        },
    };
    if let Some(v) = c.get("tie_word_embeddings") {
        if !v.is_boolean() {
            return Err(Error::WrongKeyType {
                file,
                key: "tie_word_embeddings".into(),
                expected: "a boolean",
                found: json_type(v).into(),
            });
        }
    }
    let (config, eps) = build::make_config(&file, &hyper, KEYS, opts)?;
    let weights = HfWeights::open(dir)?;
    let model = build::build(&weights, config, eps, opts, progress)?;
    Ok((model, info))
}

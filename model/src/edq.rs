//! The `.edq` model container (docs/FORMAT.md), parsed zero-copy from `&[u8]`.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! 0    header, 128 bytes (see HEADER_* offsets below)
//! 128  tensor directory: n_tensors entries of 64 bytes, in the canonical order
//!      of `tensor_spec`
//! ...  payloads, each at a 64-byte aligned offset, zero padding between
//! ```
//!
//! The checksum is FNV-1a 64 over the whole file with the 8 checksum bytes
//! taken as zero.

use edgedecoding_kernels::format::{packed_codes_len, packed_exps_len};

use crate::config::Config;
use crate::error::{ModelError, TensorName};

/// File magic.
pub const MAGIC: [u8; 8] = *b"EDQMODEL";
/// Format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 128;
/// Directory entry size in bytes.
pub const ENTRY_LEN: usize = 64;
/// Payload alignment in bytes.
pub const ALIGN: usize = 64;
/// Byte offset of the checksum field.
pub const CHECKSUM_AT: usize = 24;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DType {
    /// `u8` values.
    U8 = 1,
    /// `i8` values.
    I8 = 2,
    /// `i16` values.
    I16 = 3,
    /// `i32` values.
    I32 = 4,
    /// `u32` values.
    U32 = 5,
    /// Packed 5-bit APoT codes of a `rows x cols` matrix (SPEC §2.1).
    ApotCodes = 6,
    /// Packed 3-bit APoT exponent pairs of a `rows x cols` matrix (SPEC §2.1).
    ApotExps = 7,
}

impl DType {
    /// Parses the stored code.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => DType::U8,
            2 => DType::I8,
            3 => DType::I16,
            4 => DType::I32,
            5 => DType::U32,
            6 => DType::ApotCodes,
            7 => DType::ApotExps,
            _ => return None,
        })
    }

    /// Payload bytes of a `rows x cols` tensor of this type.
    pub fn byte_len(self, rows: u64, cols: u64) -> Option<u64> {
        let n = rows.checked_mul(cols)?;
        Some(match self {
            DType::U8 | DType::I8 => n,
            DType::I16 => n.checked_mul(2)?,
            DType::I32 | DType::U32 => n.checked_mul(4)?,
            DType::ApotCodes => {
                if cols % 8 != 0 {
                    return None;
                }
                packed_codes_len(rows as usize, cols as usize) as u64
            }
            DType::ApotExps => {
                if cols % 8 != 0 {
                    return None;
                }
                packed_exps_len(rows as usize, cols as usize) as u64
            }
        })
    }
}

/// Number of `u8` entries of a layer's `formats` tensor.
pub const FORMATS_LEN: usize = 8;

/// Tensors per decoder layer in the directory.
pub const PER_LAYER: usize = 27;

/// Suffixes of the per-layer tensors, in directory order, with their type and
/// shape selector.
const LAYER_TENSORS: [(&str, DType, Dim, Dim); PER_LAYER] = [
    ("attn_norm", DType::I16, Dim::One, Dim::Hidden),
    ("formats", DType::U8, Dim::One, Dim::Formats),
    ("attn_q.codes", DType::ApotCodes, Dim::Hidden, Dim::Hidden),
    ("attn_q.exps", DType::ApotExps, Dim::Hidden, Dim::Hidden),
    ("attn_q.rexp", DType::I8, Dim::One, Dim::Hidden),
    ("attn_q.bias", DType::I32, Dim::One, Dim::Hidden),
    ("attn_k.codes", DType::ApotCodes, Dim::Kv, Dim::Hidden),
    ("attn_k.exps", DType::ApotExps, Dim::Kv, Dim::Hidden),
    ("attn_k.rexp", DType::I8, Dim::One, Dim::Kv),
    ("attn_k.bias", DType::I32, Dim::One, Dim::Kv),
    ("attn_v.codes", DType::ApotCodes, Dim::Kv, Dim::Hidden),
    ("attn_v.exps", DType::ApotExps, Dim::Kv, Dim::Hidden),
    ("attn_v.rexp", DType::I8, Dim::One, Dim::Kv),
    ("attn_v.bias", DType::I32, Dim::One, Dim::Kv),
    (
        "attn_output.codes",
        DType::ApotCodes,
        Dim::Hidden,
        Dim::Hidden,
    ),
    (
        "attn_output.exps",
        DType::ApotExps,
        Dim::Hidden,
        Dim::Hidden,
    ),
    ("attn_output.rexp", DType::I8, Dim::One, Dim::Hidden),
    ("ffn_norm", DType::I16, Dim::One, Dim::Hidden),
    ("ffn_gate.codes", DType::ApotCodes, Dim::Ffn, Dim::Hidden),
    ("ffn_gate.exps", DType::ApotExps, Dim::Ffn, Dim::Hidden),
    ("ffn_gate.rexp", DType::I8, Dim::One, Dim::Ffn),
    ("ffn_up.codes", DType::ApotCodes, Dim::Ffn, Dim::Hidden),
    ("ffn_up.exps", DType::ApotExps, Dim::Ffn, Dim::Hidden),
    ("ffn_up.rexp", DType::I8, Dim::One, Dim::Ffn),
    ("ffn_down.codes", DType::ApotCodes, Dim::Hidden, Dim::Ffn),
    ("ffn_down.exps", DType::ApotExps, Dim::Hidden, Dim::Ffn),
    ("ffn_down.rexp", DType::I8, Dim::One, Dim::Hidden),
];

#[derive(Clone, Copy)]
enum Dim {
    One,
    Hidden,
    Kv,
    Ffn,
    Formats,
}

impl Dim {
    fn of(self, c: &Config) -> u64 {
        (match self {
            Dim::One => 1,
            Dim::Hidden => c.hidden,
            Dim::Kv => c.kv_dim(),
            Dim::Ffn => c.ffn,
            Dim::Formats => FORMATS_LEN,
        }) as u64
    }
}

/// Index in [`LAYER_TENSORS`] of each per-layer tensor, for readers.
pub mod slot {
    #![allow(missing_docs)]
    pub const ATTN_NORM: usize = 0;
    pub const FORMATS: usize = 1;
    pub const Q: usize = 2;
    pub const Q_BIAS: usize = 5;
    pub const K: usize = 6;
    pub const K_BIAS: usize = 9;
    pub const V: usize = 10;
    pub const V_BIAS: usize = 13;
    pub const O: usize = 14;
    pub const FFN_NORM: usize = 17;
    pub const GATE: usize = 18;
    pub const UP: usize = 21;
    pub const DOWN: usize = 24;
}

/// Name of the optional last entry: the tokenizer as a UTF-8 JSON blob
/// (FORMAT.md §3), so a converted model file is self-contained.
pub const TOKENIZER_NAME: &str = "tokenizer";

/// Global tensors before the layers.
pub const GLOBAL_EMB: usize = 0;
/// Final norm index.
pub const GLOBAL_NORM: usize = 1;
/// Keep list index (present only when the vocabulary is pruned).
pub const GLOBAL_KEEP: usize = 2;

/// Number of global tensors for a config.
pub const fn n_global(c: &Config) -> usize {
    if c.pruned() {
        3
    } else {
        2
    }
}

/// Number of tensors a file of this config has.
pub const fn n_tensors(c: &Config) -> usize {
    n_global(c) + c.n_layers * PER_LAYER
}

/// The canonical `(name, dtype, rows, cols)` of directory entry `index`.
pub fn tensor_spec(c: &Config, index: usize) -> Option<(TensorName, DType, u64, u64)> {
    let ng = n_global(c);
    if index < ng {
        return Some(match index {
            GLOBAL_EMB => (
                TensorName::new("token_embd"),
                DType::I16,
                c.n_kept as u64,
                c.hidden as u64,
            ),
            GLOBAL_NORM => (
                TensorName::new("output_norm"),
                DType::I16,
                1,
                c.hidden as u64,
            ),
            _ => (
                TensorName::new("vocab_keep"),
                DType::U32,
                1,
                c.n_kept as u64,
            ),
        });
    }
    let i = index - ng;
    let (layer, k) = (i / PER_LAYER, i % PER_LAYER);
    if layer >= c.n_layers {
        return None;
    }
    let (suffix, dt, r, cl) = LAYER_TENSORS[k];
    Some((TensorName::layer(layer, suffix), dt, r.of(c), cl.of(c)))
}

/// Model-wide quantization parameters stored in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Globals {
    /// Per-tensor exponent of the 10-bit embedding codes (real = code * 2^emb_exp).
    pub emb_exp: i32,
    /// Fraction bits of the final norm's gamma.
    pub final_norm_frac: u32,
    /// RMSNorm epsilon in Q40.
    pub eps_q40: u64,
}

/// One directory entry, validated.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// Name.
    pub name: TensorName,
    /// Type.
    pub dtype: DType,
    /// Rows (1 for vectors).
    pub rows: u64,
    /// Columns.
    pub cols: u64,
    /// Payload.
    pub data: &'a [u8],
}

/// A parsed and fully validated `.edq` file borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct EdqFile<'a> {
    bytes: &'a [u8],
    /// Configuration.
    pub config: Config,
    /// Global parameters.
    pub globals: Globals,
    n: usize,
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from(rd_u32(b, at)) | u64::from(rd_u32(b, at + 4)) << 32
}

/// The file checksum (FORMAT.md §2): FNV-1a 64 over the file read as
/// little-endian 64-bit words (the last word zero-padded), one word per step
/// (`h = (h ^ word) * 0x100000001b3`), with the checksum field (bytes 24..32,
/// which is word 3) taken as zero. Eight times fewer multiplies than byte-wise
/// FNV, so a 500 MB model checks in about 0.1 s.
pub fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for (i, c) in chunks.by_ref().enumerate() {
        let w = if i == CHECKSUM_AT / 8 {
            0
        } else {
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        };
        h = (h ^ w).wrapping_mul(PRIME);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(last)).wrapping_mul(PRIME);
    }
    h
}

impl<'a> EdqFile<'a> {
    /// Parses and validates a whole file: header, checksum, config, every
    /// directory entry (canonical name, type and shape for the config, bounds,
    /// alignment, no overlap) and value ranges of the small tensors.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
        let got = bytes.len() as u64;
        if bytes.len() < HEADER_LEN {
            return Err(ModelError::Truncated {
                what: "header",
                need: HEADER_LEN as u64,
                got,
            });
        }
        if bytes[..8] != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let version = rd_u32(bytes, 8);
        if version != VERSION {
            return Err(ModelError::UnsupportedVersion(version));
        }
        let header_len = rd_u32(bytes, 12);
        if header_len as usize != HEADER_LEN {
            return Err(ModelError::BadHeader {
                field: "header_len",
                value: header_len as u64,
            });
        }
        let file_len = rd_u64(bytes, 16);
        if file_len != got {
            return Err(if file_len > got {
                ModelError::Truncated {
                    what: "file (length from header)",
                    need: file_len,
                    got,
                }
            } else {
                ModelError::BadHeader {
                    field: "file_len (shorter than the data)",
                    value: file_len,
                }
            });
        }
        let stored = rd_u64(bytes, CHECKSUM_AT);
        let computed = checksum(bytes);
        if stored != computed {
            return Err(ModelError::Checksum { stored, computed });
        }
        let f = |i: usize| rd_u32(bytes, 40 + 4 * i) as usize;
        let config = Config {
            n_layers: f(0),
            hidden: f(1),
            ffn: f(2),
            n_heads: f(3),
            n_kv_heads: f(4),
            head_dim: f(5),
            vocab: f(6),
            n_kept: f(7),
            rope_theta: f(8) as u32,
            ctx: f(9),
        };
        config.validate()?;
        let globals = Globals {
            emb_exp: rd_u32(bytes, 80) as i32,
            final_norm_frac: rd_u32(bytes, 84),
            eps_q40: rd_u64(bytes, 88),
        };
        if !(-30..=8).contains(&globals.emb_exp) {
            return Err(ModelError::BadHeader {
                field: "emb_exp",
                value: globals.emb_exp as i64 as u64,
            });
        }
        if globals.final_norm_frac > 15 {
            return Err(ModelError::BadHeader {
                field: "final_norm_frac",
                value: globals.final_norm_frac as u64,
            });
        }
        if !(1 << 20..=1 << 40).contains(&globals.eps_q40) {
            return Err(ModelError::BadHeader {
                field: "eps_q40",
                value: globals.eps_q40,
            });
        }
        if bytes[96..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(ModelError::BadHeader {
                field: "reserved bytes 96..128",
                value: 1,
            });
        }
        let n = rd_u32(bytes, 32) as usize;
        let want_n = n_tensors(&config);
        // one optional trailing `tokenizer` entry (FORMAT.md §3)
        if n != want_n && n != want_n + 1 {
            return Err(ModelError::BadHeader {
                field: "n_tensors (config needs a different count)",
                value: n as u64,
            });
        }
        let dir_end = HEADER_LEN as u64 + n as u64 * ENTRY_LEN as u64;
        if dir_end > got {
            return Err(ModelError::Truncated {
                what: "tensor directory",
                need: dir_end,
                got,
            });
        }
        let file = Self {
            bytes,
            config,
            globals,
            n,
        };
        let mut prev_end = dir_end;
        let mut prev_name = TensorName::new("directory");
        for i in 0..n {
            let e = file.raw_entry(i)?;
            let (want_name, want_dt, want_r, want_c) = if i < want_n {
                tensor_spec(&config, i).ok_or(ModelError::BadHeader {
                    field: "n_tensors",
                    value: n as u64,
                })?
            } else {
                (TensorName::new(TOKENIZER_NAME), DType::U8, 1, e.3)
            };
            if e.0 != want_name {
                return Err(ModelError::MissingTensor {
                    index: i as u32,
                    expected: want_name,
                    found: e.0,
                });
            }
            let bad = |reason| ModelError::BadEntry {
                index: i as u32,
                name: e.0,
                reason,
            };
            let dt = DType::from_u32(e.1).ok_or(bad("unknown dtype"))?;
            if dt != want_dt {
                return Err(bad("wrong dtype for this tensor"));
            }
            if (e.2, e.3) != (want_r, want_c) {
                return Err(ModelError::Shape {
                    name: e.0,
                    expected: (want_r, want_c),
                    got: (e.2, e.3),
                });
            }
            let want_len = dt.byte_len(e.2, e.3).ok_or(bad("impossible shape"))?;
            if e.5 != want_len {
                return Err(bad("payload length does not match shape"));
            }
            if e.4 % ALIGN as u64 != 0 {
                return Err(bad("payload offset not 64-byte aligned"));
            }
            let end =
                e.4.checked_add(e.5)
                    .ok_or(bad("offset + length overflows"))?;
            if end > got {
                return Err(ModelError::Truncated {
                    what: "tensor payload",
                    need: end,
                    got,
                });
            }
            // Payloads are stored in directory order, so one comparison with the
            // previous end rules out every overlap (and overlap with the directory).
            if e.4 < prev_end {
                return Err(ModelError::Overlap {
                    a: prev_name,
                    b: e.0,
                });
            }
            prev_end = end;
            prev_name = e.0;
        }
        file.validate_values()?;
        Ok(file)
    }

    /// (name, dtype, rows, cols, offset, length) of entry `i`, unvalidated.
    fn raw_entry(&self, i: usize) -> Result<(TensorName, u32, u64, u64, u64, u64), ModelError> {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let b = self.bytes;
        let raw: &[u8; 32] = b[at..at + 32]
            .try_into()
            .map_err(|_| ModelError::Truncated {
                what: "entry",
                need: (at + 32) as u64,
                got: b.len() as u64,
            })?;
        let name = TensorName::from_raw(raw);
        let rows = rd_u32(b, at + 36) as u64;
        let cols = rd_u32(b, at + 40) as u64;
        if rd_u32(b, at + 44) != 0 {
            return Err(ModelError::BadEntry {
                index: i as u32,
                name,
                reason: "reserved field not zero",
            });
        }
        Ok((
            name,
            rd_u32(b, at + 32),
            rows,
            cols,
            rd_u64(b, at + 48),
            rd_u64(b, at + 56),
        ))
    }

    /// Entry `i` (validated by [`EdqFile::parse`]).
    pub fn entry(&self, i: usize) -> Result<Entry<'a>, ModelError> {
        if i >= self.n {
            return Err(ModelError::BadHeader {
                field: "entry index",
                value: i as u64,
            });
        }
        let (name, dt, rows, cols, off, len) = self.raw_entry(i)?;
        let dtype = DType::from_u32(dt).ok_or(ModelError::BadEntry {
            index: i as u32,
            name,
            reason: "unknown dtype",
        })?;
        let data =
            self.bytes
                .get(off as usize..(off + len) as usize)
                .ok_or(ModelError::Truncated {
                    what: "tensor payload",
                    need: off + len,
                    got: self.bytes.len() as u64,
                })?;
        Ok(Entry {
            name,
            dtype,
            rows,
            cols,
            data,
        })
    }

    /// The embedded tokenizer blob, if the file has one.
    pub fn tokenizer(&self) -> Option<&'a [u8]> {
        if self.n == n_tensors(&self.config) + 1 {
            self.entry(self.n - 1).ok().map(|e| e.data)
        } else {
            None
        }
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the directory is empty (never, for a valid file).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn validate_values(&self) -> Result<(), ModelError> {
        let c = &self.config;
        let emb = self.entry(GLOBAL_EMB)?;
        for pair in emb.data.chunks_exact(2) {
            let v = i16::from_le_bytes([pair[0], pair[1]]);
            if !(-512..=511).contains(&v) {
                return Err(ModelError::BadValue {
                    name: emb.name,
                    reason: "embedding code outside the 10-bit range [-512, 511]",
                });
            }
        }
        if c.pruned() {
            let keep = self.entry(GLOBAL_KEEP)?;
            let mut prev: Option<u32> = None;
            for w in keep.data.chunks_exact(4) {
                let id = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                if id as usize >= c.vocab {
                    return Err(ModelError::BadValue {
                        name: keep.name,
                        reason: "kept id outside the vocabulary",
                    });
                }
                if prev.is_some_and(|p| id <= p) {
                    return Err(ModelError::BadValue {
                        name: keep.name,
                        reason: "kept ids not strictly increasing",
                    });
                }
                prev = Some(id);
            }
        }
        for l in 0..c.n_layers {
            let f = self.entry(n_global(c) + l * PER_LAYER + slot::FORMATS)?;
            let d = f.data;
            if d[0] > 15
                || d[1] > 15
                || d[2] > 15
                || d[3] > 15
                || d[4] > 15
                || d[5..].iter().any(|&b| b != 0)
            {
                return Err(ModelError::BadValue {
                    name: f.name,
                    reason: "fraction bits above 15 or reserved bytes not zero",
                });
            }
            // q_frac + k_frac + log2(sqrt(head_dim)) must not exceed the softmax limit
            if d[0] as u32 + d[1] as u32 + c.head_dim.trailing_zeros() / 2
                > edgedecoding_kernels::attention::SCORE_FRAC_MAX
            {
                return Err(ModelError::BadValue {
                    name: f.name,
                    reason: "q_frac + k_frac too large for the softmax",
                });
            }
        }
        Ok(())
    }
}

/// Writing `.edq` files (needs `alloc`).
#[cfg(feature = "alloc")]
pub mod write {
    use alloc::vec::Vec;

    use super::*;

    /// Serializes tensors given in canonical order. Checks names, types, shapes
    /// and lengths against the config, so a writer bug cannot produce a file the
    /// reader would reject.
    pub fn write_edq(
        config: &Config,
        globals: &Globals,
        tensors: &[(DType, u64, u64, &[u8])],
    ) -> Result<Vec<u8>, ModelError> {
        config.validate()?;
        let n_canon = n_tensors(config);
        let n = tensors.len();
        if n != n_canon && n != n_canon + 1 {
            return Err(ModelError::BadHeader {
                field: "tensor count given to writer",
                value: tensors.len() as u64,
            });
        }
        let mut offset = (HEADER_LEN + n * ENTRY_LEN) as u64;
        let mut dir = Vec::with_capacity(n * ENTRY_LEN);
        for (i, &(dt, rows, cols, data)) in tensors.iter().enumerate() {
            let (name, want_dt, wr, wc) = if i < n_canon {
                tensor_spec(config, i).ok_or(ModelError::Empty)?
            } else {
                (
                    TensorName::new(TOKENIZER_NAME),
                    DType::U8,
                    1,
                    data.len() as u64,
                )
            };
            if dt != want_dt || (rows, cols) != (wr, wc) {
                return Err(ModelError::Shape {
                    name,
                    expected: (wr, wc),
                    got: (rows, cols),
                });
            }
            if dt.byte_len(rows, cols) != Some(data.len() as u64) {
                return Err(ModelError::BadEntry {
                    index: i as u32,
                    name,
                    reason: "payload length does not match shape",
                });
            }
            offset = offset.div_ceil(ALIGN as u64) * ALIGN as u64;
            dir.extend_from_slice(name.raw());
            dir.extend_from_slice(&(dt as u32).to_le_bytes());
            dir.extend_from_slice(&(rows as u32).to_le_bytes());
            dir.extend_from_slice(&(cols as u32).to_le_bytes());
            dir.extend_from_slice(&0u32.to_le_bytes());
            dir.extend_from_slice(&offset.to_le_bytes());
            dir.extend_from_slice(&(data.len() as u64).to_le_bytes());
            offset += data.len() as u64;
        }
        let total = offset as usize;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&(total as u64).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // checksum, filled below
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for v in [
            config.n_layers,
            config.hidden,
            config.ffn,
            config.n_heads,
            config.n_kv_heads,
            config.head_dim,
            config.vocab,
            config.n_kept,
            config.rope_theta as usize,
            config.ctx,
        ] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&globals.emb_exp.to_le_bytes());
        out.extend_from_slice(&globals.final_norm_frac.to_le_bytes());
        out.extend_from_slice(&globals.eps_q40.to_le_bytes());
        out.resize(HEADER_LEN, 0);
        out.extend_from_slice(&dir);
        for &(_, _, _, data) in tensors {
            out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
            out.extend_from_slice(data);
        }
        debug_assert_eq!(out.len(), total);
        let sum = checksum(&out);
        out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        Ok(out)
    }
}

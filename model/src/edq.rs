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
//! The checksum is FNV-1a 64 over the whole file (the bytes before the SIMD
//! section, if there is one) with the 8 checksum bytes taken as zero.
//!
//! After the layers come up to three optional entries, in this order:
//! `tokenizer`, `rope_rom` (the RoPE table the decoder reads, SPEC §6.1) and
//! `simd_panels` (FORMAT.md §3, §6).

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

/// Name of the optional entry holding the tokenizer as a UTF-8 JSON blob
/// (FORMAT.md §3), so a converted model file is self-contained.
pub const TOKENIZER_NAME: &str = "tokenizer";

/// Name of the optional entry holding the RoPE ROM (FORMAT.md §3, SPEC §6.1):
/// i16 Q14, [`rope_rom_shape`] = `2·ctx × head_dim/2`, the cos rows of
/// positions `0..ctx`, then their sin rows. The decoder reads it in place; it
/// is the table, the recipe (`build_rope_table`) only says how it was made.
pub const ROPE_NAME: &str = "rope_rom";

/// `(rows, cols)` of the `rope_rom` entry: `(2·ctx, head_dim/2)`.
pub const fn rope_rom_shape(c: &Config) -> (u64, u64) {
    (2 * c.ctx as u64, c.head_dim as u64 / 2)
}

/// The optional entries after the layers, in the order they must appear
/// (each at most once).
const EXTRAS: [&str; 3] = [TOKENIZER_NAME, ROPE_NAME, SIMD_NAME];

/// The optional entries after the layers (FORMAT.md §3, §6): read from a file
/// ([`EdqFile::extras`]) or given to the writer, which stores them in this
/// order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras<'b> {
    /// `tokenizer`: a UTF-8 JSON blob.
    pub tokenizer: Option<&'b [u8]>,
    /// `rope_rom`: the RoPE ROM as little-endian i16 ([`rope_rom_shape`]).
    pub rope_rom: Option<&'b [u8]>,
    /// `simd_panels`: the SIMD section ([`simd_len`] bytes).
    pub simd: Option<&'b [u8]>,
}

/// Name of the optional entry holding every matrix and the derived lm_head in
/// the CPU's SIMD layout (FORMAT.md §6): loaded zero-copy, no repack at start.
pub const SIMD_NAME: &str = "simd_panels";
/// Magic of the SIMD section.
pub const SIMD_MAGIC: [u8; 8] = *b"EDQSIMD1";
/// Record format of the SIMD section: pairs of groups in 16-row panels,
/// `edgedecoding_kernels::fast::layout` (SPEC §4.4).
pub const SIMD_RECORDS: u32 = 2;
/// Bytes of the SIMD section's own header.
pub const SIMD_HEADER: usize = 64;

/// Where matrix `i` of the SIMD section lies (FORMAT.md §6): matrices in the
/// order `layer * 7 + k` (q, k, v, o, gate, up, down), then the lm_head
/// (`n_layers * 7`); returns `(rows, cols, data offset, data length, row
/// exponent offset)` relative to the section, or `None` past the last.
pub fn simd_matrix(c: &Config, i: usize) -> Option<(usize, usize, usize, usize, usize)> {
    use edgedecoding_kernels::fast::repacked_len;
    let shape = |i: usize| -> Option<(usize, usize)> {
        if i == c.n_layers * 7 {
            return Some((c.n_kept, c.hidden));
        }
        if i > c.n_layers * 7 {
            return None;
        }
        let kv = c.kv_dim();
        Some(match i % 7 {
            0 | 3 => (c.hidden, c.hidden),
            1 | 2 => (kv, c.hidden),
            4 | 5 => (c.ffn, c.hidden),
            _ => (c.hidden, c.ffn),
        })
    };
    let up = |v: usize| v.div_ceil(ALIGN) * ALIGN;
    let mut at = SIMD_HEADER;
    for j in 0..=i {
        let (rows, cols) = shape(j)?;
        let len = repacked_len(rows, cols);
        if j == i {
            return Some((rows, cols, at, len, at + len));
        }
        at = up(at + len + rows);
    }
    None
}

/// Total bytes of the SIMD section of a config.
pub fn simd_len(c: &Config) -> usize {
    let last = c.n_layers * 7;
    simd_matrix(c, last).map_or(0, |(rows, _, _, _, at)| (at + rows).div_ceil(ALIGN) * ALIGN)
}

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

/// The SIMD section's content hash (FORMAT.md §6): FNV-1a 64 in 8 lanes —
/// lane `k` hashes the words `k, k+8, k+16, …` of `body` (a multiple of 64
/// bytes) as [`checksum`] does — then FNV-1a 64 over the 8 lane values. The
/// lanes are independent, so it runs at memory speed instead of one multiply
/// latency per word.
pub fn lane_hash(body: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    let mut lanes = [BASIS; 8];
    for c in body.chunks_exact(64) {
        for (k, h) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(c[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
            *h = (*h ^ w).wrapping_mul(PRIME);
        }
    }
    lanes
        .iter()
        .fold(BASIS, |h, &l| (h ^ l).wrapping_mul(PRIME))
}

/// The bytes the header checksum covers: all, or those before the SIMD section.
fn checksum_region(bytes: &[u8]) -> &[u8] {
    match simd_mark(bytes) {
        0 => bytes,
        m => &bytes[..m],
    }
}

/// Offset of the last directory entry's payload if that entry is named
/// `simd_panels` and the offset is plausible; else 0 (read unvalidated, only
/// to know where the running checksum is wanted).
fn simd_mark(bytes: &[u8]) -> usize {
    let n = rd_u32(bytes, 32) as usize;
    let Some(at) = n
        .checked_sub(1)
        .and_then(|i| i.checked_mul(ENTRY_LEN))
        .and_then(|o| o.checked_add(HEADER_LEN))
    else {
        return 0;
    };
    match bytes.get(at..at + ENTRY_LEN) {
        Some(e)
            if TensorName::from_raw(e[..32].try_into().unwrap_or(&[0; 32]))
                == TensorName::new(SIMD_NAME) =>
        {
            let off = rd_u64(bytes, at + 48);
            if off % 8 == 0 && off < bytes.len() as u64 {
                off as usize
            } else {
                0
            }
        }
        _ => 0,
    }
}

impl<'a> EdqFile<'a> {
    /// Parses and validates a whole file: header, checksum, config, every
    /// directory entry (canonical name, type and shape for the config, bounds,
    /// alignment, no overlap) and value ranges of the small tensors.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
        Self::parse_inner(bytes, true)
    }

    /// The header, config and directory only (every check of
    /// [`EdqFile::parse`] but the passes over the payloads: checksum and value
    /// ranges), touching a few pages of a mapped file: for a summary of the
    /// file (`edgedecoding inspect`). The payloads are unchecked: run a model
    /// only from [`EdqFile::parse`].
    pub fn parse_structure(bytes: &'a [u8]) -> Result<Self, ModelError> {
        Self::parse_inner(bytes, false)
    }

    /// [`EdqFile::parse`] without the passes over the payloads (checksum and
    /// value ranges): for bytes that passed [`EdqFile::parse`] before and
    /// cannot have changed since (an immutable buffer, see `owned::ModelBuf`).
    #[cfg(feature = "alloc")]
    pub(crate) fn parse_again(bytes: &'a [u8]) -> Result<Self, ModelError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], full: bool) -> Result<Self, ModelError> {
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
        // the SIMD section stores the running checksum at its start (FORMAT §6)
        // with a SIMD section, the file checksum covers the bytes before it
        let computed = if full {
            checksum(checksum_region(bytes))
        } else {
            stored
        };
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
        // optional trailing entries: `tokenizer`, `rope_rom`, `simd_panels`
        // (FORMAT.md §3, §6)
        if n < want_n || n > want_n + EXTRAS.len() {
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
        // index in EXTRAS of the first optional entry still allowed
        let mut next_extra = 0;
        for i in 0..n {
            let e = file.raw_entry(i)?;
            let (want_name, want_dt, want_r, want_c) = if i < want_n {
                tensor_spec(&config, i).ok_or(ModelError::BadHeader {
                    field: "n_tensors",
                    value: n as u64,
                })?
            } else {
                // an optional entry not yet seen, later than the previous one
                let Some(k) = EXTRAS
                    .iter()
                    .skip(next_extra)
                    .position(|x| e.0 == TensorName::new(x))
                    .map(|k| k + next_extra)
                else {
                    return Err(match EXTRAS.get(next_extra) {
                        Some(expected) => ModelError::MissingTensor {
                            index: i as u32,
                            expected: TensorName::new(expected),
                            found: e.0,
                        },
                        None => ModelError::BadEntry {
                            index: i as u32,
                            name: e.0,
                            reason: "an entry after simd_panels, which must be last",
                        },
                    });
                };
                next_extra = k + 1;
                match EXTRAS[k] {
                    ROPE_NAME => {
                        let (r, c) = rope_rom_shape(&config);
                        (e.0, DType::I16, r, c)
                    }
                    SIMD_NAME => (e.0, DType::U8, 1, simd_len(&config) as u64),
                    _ => (e.0, DType::U8, 1, e.3),
                }
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
        if full {
            file.validate_values()?;
        }
        file.check_simd(full)?;
        Ok(file)
    }

    /// Recomputes the header checksum (FORMAT.md §2); for a file that passed
    /// [`EdqFile::parse`] or the structural parse of `owned::ModelBuf`.
    #[cfg(feature = "alloc")]
    pub(crate) fn verify_checksum(&self) -> Result<(), ModelError> {
        let stored = rd_u64(self.bytes, CHECKSUM_AT);
        let computed = checksum(checksum_region(self.bytes));
        if stored != computed {
            return Err(ModelError::Checksum { stored, computed });
        }
        Ok(())
    }

    /// The passes over the payloads other than the checksum: value ranges and
    /// the SIMD section's content hash.
    #[cfg(feature = "alloc")]
    pub(crate) fn verify_payloads(&self) -> Result<(), ModelError> {
        self.validate_values()?;
        self.check_simd(true)
    }

    fn check_simd(&self, full: bool) -> Result<(), ModelError> {
        let stored = rd_u64(self.bytes, CHECKSUM_AT);
        if let Some(sec) = self.simd_section() {
            let bad = |reason| ModelError::BadValue {
                name: TensorName::new(SIMD_NAME),
                reason,
            };
            if sec[..8] != SIMD_MAGIC {
                return Err(bad("bad magic"));
            }
            if rd_u32(sec, 8) != SIMD_RECORDS {
                return Err(bad("unknown record format (convert the model again)"));
            }
            if sec[12..16]
                .iter()
                .chain(&sec[32..SIMD_HEADER])
                .any(|&b| b != 0)
            {
                return Err(bad("reserved header bytes not zero"));
            }
            if rd_u64(sec, 16) != stored {
                return Err(bad(
                    "made for other weights: its source checksum differs (convert the model again)",
                ));
            }
            if full && rd_u64(sec, 24) != lane_hash(&sec[SIMD_HEADER..]) {
                return Err(bad("content hash mismatch (file corrupt)"));
            }
        }
        Ok(())
    }

    /// The SIMD section (FORMAT.md §6), if the file has one.
    pub fn simd_section(&self) -> Option<&'a [u8]> {
        let i = self.n.checked_sub(1)?;
        if i < n_tensors(&self.config) {
            return None;
        }
        let e = self.entry(i).ok()?;
        (e.name == TensorName::new(SIMD_NAME)).then_some(e.data)
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

    /// The payload of the optional entry `name` (one of the names after the
    /// layers, FORMAT.md §3), if the file has it.
    fn extra(&self, name: &str) -> Option<&'a [u8]> {
        (n_tensors(&self.config)..self.n)
            .filter_map(|i| self.entry(i).ok())
            .find(|e| e.name == TensorName::new(name))
            .map(|e| e.data)
    }

    /// Every optional entry the file has.
    pub fn extras(&self) -> Extras<'a> {
        Extras {
            tokenizer: self.tokenizer(),
            rope_rom: self.rope_rom(),
            simd: self.simd_section(),
        }
    }

    /// The embedded tokenizer blob, if the file has one.
    pub fn tokenizer(&self) -> Option<&'a [u8]> {
        self.extra(TOKENIZER_NAME)
    }

    /// The RoPE ROM (`rope_rom`, little-endian i16, cos rows then sin rows;
    /// [`rope_rom_shape`]), if the file has one (files written before it
    /// existed do not).
    pub fn rope_rom(&self) -> Option<&'a [u8]> {
        self.extra(ROPE_NAME)
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
        // branch-free so it vectorises: v in [-512, 511] iff (v + 512) as u16 < 1024
        let codes: &[i16] =
            bytemuck::try_cast_slice(emb.data).map_err(|_| ModelError::Misaligned)?;
        let outside = codes
            .iter()
            .fold(0u16, |acc, &v| acc | (v as u16).wrapping_add(512) & !1023);
        if outside != 0 {
            return Err(ModelError::BadValue {
                name: emb.name,
                reason: "embedding code outside the 10-bit range [-512, 511]",
            });
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
        if let Some(rom) = self.rope_rom() {
            // Q14 in [-16384, 16384] (SPEC §1.2): the bound behind RoPE's 32-bit sums
            let outside = rom
                .chunks_exact(2)
                .map(|w| i16::from_le_bytes([w[0], w[1]]))
                .any(|v| !(-16384..=16384).contains(&v));
            if outside {
                return Err(ModelError::BadValue {
                    name: TensorName::new(ROPE_NAME),
                    reason: "RoPE entry outside Q14 [-16384, 16384]",
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

    /// The file `bytes` (a valid `.edq`) rewritten with the SIMD section
    /// `simd` (replacing any it had): same tensors, same tokenizer and RoPE ROM.
    pub fn with_simd(bytes: &[u8], simd: &[u8]) -> Result<Vec<u8>, ModelError> {
        let f = EdqFile::parse(bytes)?;
        rewrite(
            &f,
            &Extras {
                simd: Some(simd),
                ..f.extras()
            },
        )
    }

    /// The file `bytes` (a valid `.edq`) rewritten with the optional entries
    /// `extras` instead of its own: same canonical tensors. (A SIMD section
    /// gets its header filled in again: it names the new file's checksum.)
    pub fn with_extras(bytes: &[u8], extras: &Extras<'_>) -> Result<Vec<u8>, ModelError> {
        rewrite(&EdqFile::parse(bytes)?, extras)
    }

    fn rewrite(f: &EdqFile<'_>, extras: &Extras<'_>) -> Result<Vec<u8>, ModelError> {
        let tensors = (0..n_tensors(&f.config))
            .map(|i| f.entry(i).map(|e| (e.dtype, e.rows, e.cols, e.data)))
            .collect::<Result<Vec<_>, _>>()?;
        write_edq(&f.config, &f.globals, &tensors, extras)
    }

    /// Serializes the canonical tensors (in directory order) and the optional
    /// entries `extras`. Checks names, types, shapes and lengths against the
    /// config, so a writer bug cannot produce a file the reader would reject.
    ///
    /// `extras.simd`: the SIMD section (FORMAT.md §6, [`simd_len`] bytes; its
    /// 64-byte header is filled in here).
    pub fn write_edq(
        config: &Config,
        globals: &Globals,
        tensors: &[(DType, u64, u64, &[u8])],
        extras: &Extras<'_>,
    ) -> Result<Vec<u8>, ModelError> {
        config.validate()?;
        let n_canon = n_tensors(config);
        if tensors.len() != n_canon {
            return Err(ModelError::BadHeader {
                field: "tensor count given to writer",
                value: tensors.len() as u64,
            });
        }
        let simd = extras.simd;
        let (rope_rows, rope_cols) = rope_rom_shape(config);
        let optional = [
            extras.tokenizer.map(|b| (DType::U8, 1, b.len() as u64, b)),
            extras
                .rope_rom
                .map(|b| (DType::I16, rope_rows, rope_cols, b)),
            simd.map(|b| (DType::U8, 1, simd_len(config) as u64, b)),
        ];
        let all: Vec<(DType, u64, u64, &[u8])> = tensors
            .iter()
            .copied()
            .chain(optional.iter().flatten().copied())
            .collect();
        let n = all.len();
        let names: Vec<&str> = EXTRAS
            .iter()
            .zip(&optional)
            .filter_map(|(&name, o)| o.map(|_| name))
            .collect();
        let tensors = &all[..];
        let mut offset = (HEADER_LEN + n * ENTRY_LEN) as u64;
        let mut dir = Vec::with_capacity(n * ENTRY_LEN);
        let mut simd_at = 0;
        for (i, &(dt, rows, cols, data)) in tensors.iter().enumerate() {
            let (name, want_dt, wr, wc) = if i < n_canon {
                tensor_spec(config, i).ok_or(ModelError::Empty)?
            } else {
                // the optional entries were built with their own type and shape;
                // the length check below catches a payload of the wrong size
                (TensorName::new(names[i - n_canon]), dt, rows, cols)
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
            simd_at = offset as usize;
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
        if simd.is_some() {
            // the section names the exact bytes before it (FORMAT §6)
            let sec = &mut out[simd_at..simd_at + SIMD_HEADER];
            sec[..8].copy_from_slice(&SIMD_MAGIC);
            sec[8..12].copy_from_slice(&SIMD_RECORDS.to_le_bytes());
            sec[12..SIMD_HEADER].fill(0);
            let h = lane_hash(&out[simd_at + SIMD_HEADER..]);
            out[simd_at + 24..simd_at + 32].copy_from_slice(&h.to_le_bytes());
        }
        let covered = if simd.is_some() { simd_at } else { out.len() };
        let sum = checksum(&out[..covered]);
        out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        if simd.is_some() {
            // the section names the file contents it was made from
            out[simd_at + 16..simd_at + 24].copy_from_slice(&sum.to_le_bytes());
        }
        Ok(out)
    }
}

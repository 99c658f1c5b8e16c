//! Zero-copy views of the integer weights of a validated `.edq` file.

use edgedecoding_kernels::format::ApotMatrix;

use crate::config::Config;
use crate::edq::{
    n_global, slot, DType, EdqFile, Entry, Globals, GLOBAL_EMB, GLOBAL_KEEP, GLOBAL_NORM, PER_LAYER,
};
use crate::error::ModelError;

/// Number formats of one layer (SPEC §9.3), from its `formats` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerFormats {
    /// Fraction bits of Q (i16) after the q projection and RoPE.
    pub q_frac: u32,
    /// Fraction bits of K (i16) in the cache.
    pub k_frac: u32,
    /// Fraction bits of V (i16) in the cache.
    pub v_frac: u32,
    /// Fraction bits of the attention RMSNorm gamma.
    pub attn_norm_frac: u32,
    /// Fraction bits of the MLP RMSNorm gamma.
    pub ffn_norm_frac: u32,
}

/// The weights of one decoder layer.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Formats.
    pub fmt: LayerFormats,
    /// Attention RMSNorm gamma, `[hidden]`.
    pub attn_norm: &'a [i16],
    /// q projection, `hidden x hidden`.
    pub q: ApotMatrix<'a>,
    /// q bias in `Q(q_frac)`, `[hidden]`.
    pub q_bias: &'a [i32],
    /// k projection, `kv_dim x hidden`.
    pub k: ApotMatrix<'a>,
    /// k bias in `Q(k_frac)`, `[kv_dim]`.
    pub k_bias: &'a [i32],
    /// v projection, `kv_dim x hidden`.
    pub v: ApotMatrix<'a>,
    /// v bias in `Q(v_frac)`, `[kv_dim]`.
    pub v_bias: &'a [i32],
    /// Output projection, `hidden x hidden`.
    pub o: ApotMatrix<'a>,
    /// MLP RMSNorm gamma, `[hidden]`.
    pub ffn_norm: &'a [i16],
    /// Gate projection, `ffn x hidden`.
    pub gate: ApotMatrix<'a>,
    /// Up projection, `ffn x hidden`.
    pub up: ApotMatrix<'a>,
    /// Down projection, `hidden x ffn`.
    pub down: ApotMatrix<'a>,
}

/// The RoPE ROM (SPEC §6.1): `cos[p · half + i]` and `sin[p · half + i]`,
/// `(ctx, head_dim/2)` i16 Q14 each, in `[-16384, 16384]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RopeRom<'a> {
    /// Cosines, `[ctx][half]`.
    pub cos: &'a [i16],
    /// Sines, `[ctx][half]`.
    pub sin: &'a [i16],
}

impl<'a> RopeRom<'a> {
    /// The table stored as one `rope_rom` payload: the cos rows, then the sin
    /// rows (FORMAT.md §3).
    pub fn from_stored(cos_then_sin: &'a [i16]) -> Self {
        let (cos, sin) = cos_then_sin.split_at(cos_then_sin.len() / 2);
        Self { cos, sin }
    }

    /// The table rows of position `p`: `(cos, sin)`, `half` values each.
    #[inline]
    pub fn row(&self, p: usize, half: usize) -> (&'a [i16], &'a [i16]) {
        (
            &self.cos[p * half..(p + 1) * half],
            &self.sin[p * half..(p + 1) * half],
        )
    }
}

/// A whole integer model borrowing a validated `.edq` file.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// Configuration.
    pub config: Config,
    /// Global parameters.
    pub globals: Globals,
    /// Embedding codes, `[n_kept][hidden]`, 10-bit values in i16.
    pub emb: &'a [i16],
    /// Final RMSNorm gamma, `[hidden]`.
    pub final_norm: &'a [i16],
    /// Kept full ids, ascending (`None`: the whole vocabulary is stored).
    pub keep: Option<&'a [u32]>,
    /// The RoPE ROM stored in the file (`rope_rom`), read in place by the
    /// decoder; `None` for files written before it was stored (a `std` build
    /// then builds the table from its recipe, a no_std decoder refuses them
    /// with [`ModelError::NoRopeRom`]).
    pub rope: Option<RopeRom<'a>>,
    file: EdqFile<'a>,
}

fn cast<'a, T: bytemuck::Pod>(e: &Entry<'a>) -> Result<&'a [T], ModelError> {
    bytemuck::try_cast_slice(e.data).map_err(|_| ModelError::Misaligned)
}

impl<'a> Model<'a> {
    /// Parses, validates and wraps a `.edq` file. The buffer must be 8-byte
    /// aligned (memory maps and `Vec<u64>`-backed buffers are).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ModelError> {
        if bytes.as_ptr() as usize % 8 != 0 {
            return Err(ModelError::Misaligned);
        }
        Self::from_file(EdqFile::parse(bytes)?)
    }

    /// Wraps an already parsed file; checks that every layer view can be built.
    pub fn from_file(file: EdqFile<'a>) -> Result<Self, ModelError> {
        let emb = cast::<i16>(&file.entry(GLOBAL_EMB)?)?;
        let final_norm = cast::<i16>(&file.entry(GLOBAL_NORM)?)?;
        let keep = if file.config.pruned() {
            Some(cast::<u32>(&file.entry(GLOBAL_KEEP)?)?)
        } else {
            None
        };
        let rope = match file.rope_rom() {
            Some(b) => Some(RopeRom::from_stored(
                bytemuck::try_cast_slice(b).map_err(|_| ModelError::Misaligned)?,
            )),
            None => None,
        };
        let m = Self {
            config: file.config,
            globals: file.globals,
            emb,
            final_norm,
            keep,
            rope,
            file,
        };
        for l in 0..m.config.n_layers {
            m.layer(l)?;
        }
        Ok(m)
    }

    /// The underlying file.
    pub fn file(&self) -> &EdqFile<'a> {
        &self.file
    }

    /// The weights of layer `l` (cheap: slices into the file).
    pub fn layer(&self, l: usize) -> Result<Layer<'a>, ModelError> {
        let c = &self.config;
        if l >= c.n_layers {
            return Err(ModelError::OutOfRange {
                what: "layer index",
                value: l as u64,
                max: c.n_layers as u64 - 1,
            });
        }
        let base = n_global(c) + l * PER_LAYER;
        let e = |k: usize| self.file.entry(base + k);
        let mat = |k: usize| -> Result<ApotMatrix<'a>, ModelError> {
            let codes = e(k)?;
            let exps = e(k + 1)?;
            let rexp = e(k + 2)?;
            debug_assert!(codes.dtype == DType::ApotCodes && exps.dtype == DType::ApotExps);
            Ok(ApotMatrix::new(
                codes.rows as usize,
                codes.cols as usize,
                codes.data,
                exps.data,
                cast::<i8>(&rexp)?,
            )?)
        };
        let f = e(slot::FORMATS)?.data;
        let fmt = LayerFormats {
            q_frac: f[0] as u32,
            k_frac: f[1] as u32,
            v_frac: f[2] as u32,
            attn_norm_frac: f[3] as u32,
            ffn_norm_frac: f[4] as u32,
        };
        Ok(Layer {
            fmt,
            attn_norm: cast(&e(slot::ATTN_NORM)?)?,
            q: mat(slot::Q)?,
            q_bias: cast(&e(slot::Q_BIAS)?)?,
            k: mat(slot::K)?,
            k_bias: cast(&e(slot::K_BIAS)?)?,
            v: mat(slot::V)?,
            v_bias: cast(&e(slot::V_BIAS)?)?,
            o: mat(slot::O)?,
            ffn_norm: cast(&e(slot::FFN_NORM)?)?,
            gate: mat(slot::GATE)?,
            up: mat(slot::UP)?,
            down: mat(slot::DOWN)?,
        })
    }

    /// Embedding row index of a full token id (its position in the keep list
    /// when pruned).
    pub fn row_of_token(&self, token: u32) -> Result<usize, ModelError> {
        if token as usize >= self.config.vocab {
            return Err(ModelError::TokenOutOfRange {
                token,
                vocab: self.config.vocab as u32,
            });
        }
        match self.keep {
            None => Ok(token as usize),
            Some(k) => k
                .binary_search(&token)
                .map_err(|_| ModelError::TokenNotKept(token)),
        }
    }

    /// Full token id of an embedding / lm_head row.
    pub fn token_of_row(&self, row: usize) -> u32 {
        match self.keep {
            None => row as u32,
            Some(k) => k[row],
        }
    }
}

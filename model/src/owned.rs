//! Owned conveniences (feature `alloc`).

use alloc::vec;
use alloc::vec::Vec;

use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_kernels::lm_head::derive_head_row;
use edgedecoding_kernels::GROUP;

use crate::error::ModelError;
use crate::weights::Model;

/// A `.edq` file held in 8-byte aligned memory.
pub struct ModelBuf {
    words: Vec<u64>,
    len: usize,
}

impl ModelBuf {
    /// Copies bytes into aligned memory.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// The file bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }

    /// Parses and validates the model.
    pub fn model(&self) -> Result<Model<'_>, ModelError> {
        Model::from_bytes(self.bytes())
    }
}

/// Packed codes, packed exponents and row exponents of a range of head rows.
pub type HeadParts = (Vec<u8>, Vec<u8>, Vec<i8>);

/// The lm_head derived once from the embedding and stored packed: same bits
/// as the on-the-fly derivation, read faster.
pub struct OwnedHead {
    rows: usize,
    cols: usize,
    codes: Vec<u8>,
    exps: Vec<u8>,
    row_exps: Vec<i8>,
}

impl OwnedHead {
    /// Derives rows `range` of the head (all rows: `0..n_kept`) — see
    /// [`OwnedHead::derive`]; split so callers can run ranges on threads.
    pub fn derive_rows(
        m: &Model<'_>,
        rows: core::ops::Range<usize>,
    ) -> Result<HeadParts, ModelError> {
        let h = m.config.hidden;
        let g = h / GROUP;
        let n = rows.len();
        let mut codes = vec![0u8; packed_codes_len(n, h)];
        let mut exps = vec![0u8; packed_exps_len(n, h)];
        let mut row_exps = vec![0i8; n];
        let mut groups = vec![ApotGroup::default(); g];
        for (i, r) in rows.enumerate() {
            row_exps[i] =
                derive_head_row(&m.emb[r * h..(r + 1) * h], m.globals.emb_exp, &mut groups)?;
            for (j, grp) in groups.iter().enumerate() {
                pack_group(&mut codes, &mut exps, i * g + j, grp)?;
            }
        }
        Ok((codes, exps, row_exps))
    }

    /// Derives the whole head on the calling thread.
    pub fn derive(m: &Model<'_>) -> Result<Self, ModelError> {
        let (codes, exps, row_exps) = Self::derive_rows(m, 0..m.config.n_kept)?;
        Ok(Self {
            rows: m.config.n_kept,
            cols: m.config.hidden,
            codes,
            exps,
            row_exps,
        })
    }

    /// Assembles a head from parts derived separately (rows in order). Parts
    /// must each cover a multiple of 4 rows except the last, so that the
    /// packed exponent streams concatenate on byte boundaries.
    pub fn from_parts(rows: usize, cols: usize, parts: Vec<HeadParts>) -> Result<Self, ModelError> {
        let mut codes = Vec::new();
        let mut exps = Vec::new();
        let mut row_exps = Vec::new();
        for (c, e, r) in parts {
            codes.extend_from_slice(&c);
            exps.extend_from_slice(&e);
            row_exps.extend_from_slice(&r);
        }
        ApotMatrix::new(rows, cols, &codes, &exps, &row_exps)?;
        Ok(Self {
            rows,
            cols,
            codes,
            exps,
            row_exps,
        })
    }

    /// The packed matrix view.
    pub fn matrix(&self) -> ApotMatrix<'_> {
        ApotMatrix::new(
            self.rows,
            self.cols,
            &self.codes,
            &self.exps,
            &self.row_exps,
        )
        .expect("lengths checked at construction")
    }
}

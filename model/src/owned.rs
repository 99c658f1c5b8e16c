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
    /// Derives the whole head on the calling thread.
    pub fn derive(m: &Model<'_>) -> Result<Self, ModelError> {
        let (h, n) = (m.config.hidden, m.config.n_kept);
        let g = h / GROUP;
        let mut codes = vec![0u8; packed_codes_len(n, h)];
        let mut exps = vec![0u8; packed_exps_len(n, h)];
        let mut row_exps = vec![0i8; n];
        let mut groups = vec![ApotGroup::default(); g];
        for r in 0..n {
            row_exps[r] =
                derive_head_row(&m.emb[r * h..(r + 1) * h], m.globals.emb_exp, &mut groups)?;
            for (j, grp) in groups.iter().enumerate() {
                pack_group(&mut codes, &mut exps, r * g + j, grp)?;
            }
        }
        Ok(Self {
            rows: n,
            cols: h,
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

//! Owned conveniences (feature `alloc`).

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_kernels::lm_head::derive_head_row;
use edgedecoding_kernels::GROUP;

use crate::error::ModelError;
use crate::weights::Model;

/// A `.edq` file held in 8-byte aligned memory: copied, or (feature `std`)
/// memory-mapped read-only, so its weights are paged in from the page cache
/// on use instead of copied.
pub struct ModelBuf {
    store: Store,
    len: usize,
    /// The bytes passed full validation once (they cannot change afterwards).
    validated: AtomicBool,
}

enum Store {
    Words(Vec<u64>),
    #[cfg(feature = "std")]
    Mapped(memmap2::Mmap),
}

impl ModelBuf {
    /// Copies bytes into aligned memory.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            store: Store::Words(words),
            len: bytes.len(),
            validated: AtomicBool::new(false),
        }
    }

    /// Maps the file at `path` read-only (page-aligned, so 8-byte aligned).
    /// The file must not be modified while the map lives: model files are
    /// replaced by rename (`convert` writes a temporary file), never rewritten
    /// in place, so a running decoder keeps the old contents.
    /// All pages are read in at once (the decoder reads every weight).
    #[cfg(feature = "std")]
    pub fn map(path: &std::path::Path) -> std::io::Result<Self> {
        Self::map_with(path, true)
    }

    /// [`ModelBuf::map`] reading pages only when they are touched: for a look
    /// at the header and directory of a large file (`inspect`).
    #[cfg(feature = "std")]
    pub fn map_lazy(path: &std::path::Path) -> std::io::Result<Self> {
        Self::map_with(path, false)
    }

    #[cfg(feature = "std")]
    fn map_with(path: &std::path::Path, populate: bool) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let mut opts = memmap2::MmapOptions::new();
        if populate {
            opts.populate();
        }
        // SAFETY: the map is read-only and private to this process; the
        // contract above (files are replaced, not rewritten) keeps its bytes
        // stable for its lifetime. Every read goes through `bytes()`, which
        // the parser validates before use.
        let map = unsafe { opts.map(&file)? };
        let len = map.len();
        Ok(Self {
            store: Store::Mapped(map),
            len,
            validated: AtomicBool::new(false),
        })
    }

    /// The file bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.store {
            Store::Words(w) => &bytemuck::cast_slice::<u64, u8>(w)[..self.len],
            #[cfg(feature = "std")]
            Store::Mapped(m) => &m[..],
        }
    }

    /// Parses and validates the model. The passes over the whole file
    /// (checksum, value ranges) run on the first call only: the bytes are
    /// immutable, so later calls just rebuild the views.
    pub fn model(&self) -> Result<Model<'_>, ModelError> {
        if self.validated.load(Ordering::Acquire) {
            return Model::from_file(crate::edq::EdqFile::parse_again(self.bytes())?);
        }
        let m = self.validate()?;
        self.validated.store(true, Ordering::Release);
        Ok(m)
    }

    /// Full validation; with `std`, the checksum and the other passes over
    /// the payloads run on two threads (same errors as `Model::from_bytes`:
    /// on any failure the serial parse reports it).
    fn validate(&self) -> Result<Model<'_>, ModelError> {
        #[cfg(feature = "std")]
        if self.bytes().as_ptr() as usize % 8 == 0 {
            if let Ok(f) = crate::edq::EdqFile::parse_again(self.bytes()) {
                let ok = std::thread::scope(|s| {
                    let other = s.spawn(|| f.verify_payloads());
                    let sum = f.verify_checksum();
                    // joined in every case: the scope alone waits only for the
                    // closure, and its thread would still be exiting (with its
                    // thread-local data) after `validate` returned
                    let payloads = other.join().is_ok_and(|r| r.is_ok());
                    sum.is_ok() && payloads
                });
                if ok {
                    return Model::from_file(f);
                }
            }
        }
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

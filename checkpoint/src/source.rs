//! File bytes: memory-mapped, or read into memory.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::Error;

/// The bytes of a checkpoint file.
pub(crate) enum Backing {
    /// Read-only memory map.
    Mapped(memmap2::Mmap),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl Backing {
    /// Maps `path` read-only; reads it fully when it cannot be mapped.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let io = |op| {
            move |source| Error::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        let len = file.metadata().map_err(io("stat"))?.len();
        if len == 0 {
            return Ok(Backing::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and only ever read through bounds-checked
        // slices. As with every memory map, the file must not be truncated or
        // rewritten by another process while it is mapped (checkpoints are
        // read-only inputs; a download in progress writes to a `.part` file).
        #[allow(unsafe_code)]
        let mapped = unsafe { memmap2::Mmap::map(&file) };
        match mapped {
            Ok(m) => Ok(Backing::Mapped(m)),
            Err(_) => std::fs::read(path).map(Backing::Owned).map_err(io("read")),
        }
    }
}

impl Deref for Backing {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

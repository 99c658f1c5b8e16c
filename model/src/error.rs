//! Errors of the model crate: every malformed input has its own variant.

use core::fmt;

use edgedecoding_kernels::KernelError;

use crate::config::ConfigError;

/// A tensor name as stored in a `.edq` directory (at most 32 bytes of UTF-8).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TensorName {
    buf: [u8; 32],
    len: u8,
}

impl TensorName {
    /// Builds a name from a string, truncating to 32 bytes.
    pub fn new(s: &str) -> Self {
        let mut buf = [0u8; 32];
        let n = s.len().min(32);
        buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        Self { buf, len: n as u8 }
    }

    /// Builds a name from the 32 raw directory bytes (zero padded).
    pub fn from_raw(raw: &[u8; 32]) -> Self {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(32);
        Self {
            buf: *raw,
            len: len as u8,
        }
    }

    /// The layer tensor name `blk.{layer}.{suffix}`.
    pub fn layer(layer: usize, suffix: &str) -> Self {
        let mut w = NameWriter {
            buf: [0; 32],
            len: 0,
        };
        let _ = fmt::write(&mut w, format_args!("blk.{layer}.{suffix}"));
        Self {
            buf: w.buf,
            len: w.len as u8,
        }
    }

    /// The name as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The raw 32-byte directory field.
    pub fn raw(&self) -> &[u8; 32] {
        &self.buf
    }
}

struct NameWriter {
    buf: [u8; 32],
    len: usize,
}

impl fmt::Write for NameWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == 32 {
                return Err(fmt::Error);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Everything that can go wrong loading a model or running it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// The file is shorter than a structure it declares.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        got: u64,
    },
    /// Not a `.edq` file.
    BadMagic,
    /// A `.edq` version this reader does not know.
    UnsupportedVersion(u32),
    /// A header field has an impossible value.
    BadHeader {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The checksum stored in the header does not match the contents.
    Checksum {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
    /// The configuration is inconsistent.
    Config(ConfigError),
    /// A directory entry is malformed.
    BadEntry {
        /// Directory index.
        index: u32,
        /// Tensor name.
        name: TensorName,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two tensors share bytes.
    Overlap {
        /// First tensor.
        a: TensorName,
        /// Second tensor.
        b: TensorName,
    },
    /// A tensor the configuration requires is absent or out of order.
    MissingTensor {
        /// Directory index where it was expected.
        index: u32,
        /// Expected name.
        expected: TensorName,
        /// Name found there (empty if the directory ended).
        found: TensorName,
    },
    /// A tensor's type or shape disagrees with the configuration.
    Shape {
        /// Tensor name.
        name: TensorName,
        /// Expected (rows, cols).
        expected: (u64, u64),
        /// Found (rows, cols).
        got: (u64, u64),
    },
    /// A stored value is outside its format's range.
    BadValue {
        /// Tensor or field.
        name: TensorName,
        /// What is wrong.
        reason: &'static str,
    },
    /// The buffer holding the model is not 8-byte aligned (zero-copy views need it).
    Misaligned,
    /// A kernel rejected its arguments (a bug if it happens after loading).
    Kernel(KernelError),
    /// A token id is outside the vocabulary.
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// Vocabulary size.
        vocab: u32,
    },
    /// A token id is in the vocabulary but not in the kept (pruned) list.
    TokenNotKept(u32),
    /// The request would run past the context.
    ContextFull {
        /// Positions already used.
        pos: u32,
        /// Positions requested.
        requested: u32,
        /// Capacity of the KV cache.
        capacity: u32,
    },
    /// The caller's state memory is too small.
    StateTooSmall {
        /// Bytes needed.
        need: u64,
        /// Bytes given.
        got: u64,
    },
    /// The model file has no RoPE ROM (`rope_rom`, FORMAT.md §3): it was
    /// written before the ROM was stored, and this build (no `std`) does no
    /// floating point to build the table.
    NoRopeRom,
    /// No tokens were given where at least one is needed.
    Empty,
    /// A request this build or CPU cannot serve (e.g. a forced instruction set).
    Unsupported(&'static str),
    /// An internal inconsistency (a bug, reported instead of a panic).
    Internal(&'static str),
    /// Two parts that must belong together do not (state and model, a
    /// backend's stored layout and the model).
    Mismatch(&'static str),
    /// An index or size argument outside its range.
    OutOfRange {
        /// What.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The largest allowed value.
        max: u64,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Truncated { what, need, got } => write!(f, "truncated model file: {what} needs {need} bytes, {got} available"),
            ModelError::BadMagic => write!(f, "not an .edq model file (bad magic)"),
            ModelError::UnsupportedVersion(v) => write!(f, "unsupported .edq version {v} (this build reads version {})", crate::edq::VERSION),
            ModelError::BadHeader { field, value } => write!(f, "bad .edq header: {field} = {value}"),
            ModelError::Checksum { stored, computed } => write!(f, "checksum mismatch: header says {stored:#018x}, contents give {computed:#018x} (file corrupt)"),
            ModelError::Config(e) => write!(f, "{e}"),
            ModelError::BadEntry { index, name, reason } => write!(f, "tensor directory entry {index} ({name}): {reason}"),
            ModelError::Overlap { a, b } => write!(f, "tensors {a} and {b} overlap"),
            ModelError::MissingTensor { index, expected, found } => {
                write!(f, "tensor directory entry {index}: expected {expected}, found {}", if found.as_bytes().is_empty() { "end of directory".into_name() } else { *found })
            }
            ModelError::Shape { name, expected, got } => write!(f, "tensor {name}: expected shape {}x{}, found {}x{}", expected.0, expected.1, got.0, got.1),
            ModelError::BadValue { name, reason } => write!(f, "{name}: {reason}"),
            ModelError::Misaligned => write!(f, "model buffer must be 8-byte aligned"),
            ModelError::Kernel(e) => write!(f, "kernel error: {e}"),
            ModelError::TokenOutOfRange { token, vocab } => write!(f, "token id {token} outside the vocabulary (size {vocab})"),
            ModelError::TokenNotKept(t) => write!(f, "token id {t} is not in the model's kept vocabulary"),
            ModelError::ContextFull { pos, requested, capacity } => {
                write!(f, "context full: {pos} positions used + {requested} requested > capacity {capacity}")
            }
            ModelError::StateTooSmall { need, got } => write!(f, "state memory too small: need {need} bytes, got {got}"),
            ModelError::NoRopeRom => write!(f, "the model file has no RoPE ROM (entry rope_rom; older converters did not write it): convert it again, or run it in a std build, which builds the table from its recipe"),
            ModelError::Empty => write!(f, "no tokens given"),
            ModelError::Unsupported(what) => write!(f, "unsupported: {what}"),
            ModelError::Internal(what) => write!(f, "internal error: {what}"),
            ModelError::Mismatch(what) => write!(f, "mismatch: {what}"),
            ModelError::OutOfRange { what, value, max } => write!(f, "{what} = {value} is out of range (at most {max})"),
        }
    }
}

trait IntoName {
    fn into_name(self) -> TensorName;
}
impl IntoName for &str {
    fn into_name(self) -> TensorName {
        TensorName::new(self)
    }
}

impl core::error::Error for ModelError {}

impl From<KernelError> for ModelError {
    fn from(e: KernelError) -> Self {
        ModelError::Kernel(e)
    }
}

impl From<ConfigError> for ModelError {
    fn from(e: ConfigError) -> Self {
        ModelError::Config(e)
    }
}

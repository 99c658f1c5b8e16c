//! The typed errors of the checkpoint readers: every message names the file,
//! and where it applies the key or tensor and the byte offset.

use std::fmt;
use std::io;
use std::path::PathBuf;

use edgedecoding_model::ConfigError;

use crate::quant::GgmlType;

/// Everything that can go wrong while reading a checkpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    Io {
        /// File or folder.
        path: PathBuf,
        /// What was being done (`"open"`, `"read"`, `"map"`).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The path is neither a `.gguf` file nor a Hugging Face folder.
    NotACheckpoint {
        /// The path given.
        path: PathBuf,
        /// Why it was not recognized.
        reason: String,
    },
    /// A structure runs past the end of the file (a truncated file, or an
    /// absurd length or count).
    Truncated {
        /// File.
        file: PathBuf,
        /// What was being read.
        what: String,
        /// Byte offset where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// The file does not start with `GGUF`.
    BadMagic {
        /// File.
        file: PathBuf,
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version other than 2 or 3.
    UnsupportedVersion {
        /// File.
        file: PathBuf,
        /// The version field as read (little-endian).
        version: u32,
    },
    /// A metadata value type id outside the GGUF specification.
    BadValueType {
        /// File.
        file: PathBuf,
        /// Metadata key.
        key: String,
        /// Byte offset of the type field.
        offset: u64,
        /// The type id.
        type_id: u32,
    },
    /// Arrays nested deeper than this reader accepts.
    NestingTooDeep {
        /// File.
        file: PathBuf,
        /// Metadata key.
        key: String,
        /// Byte offset of the innermost array.
        offset: u64,
    },
    /// A string that is not UTF-8.
    InvalidUtf8 {
        /// File.
        file: PathBuf,
        /// What the string is.
        what: String,
        /// Byte offset of its bytes.
        offset: u64,
    },
    /// The same metadata key twice.
    DuplicateKey {
        /// File.
        file: PathBuf,
        /// Key.
        key: String,
        /// Byte offset of the second occurrence.
        offset: u64,
    },
    /// The same tensor name twice.
    DuplicateTensor {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Byte offset of the second tensor info.
        offset: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    BadAlignment {
        /// File.
        file: PathBuf,
        /// The value.
        value: u64,
    },
    /// A tensor's dimensions are unusable (too many, element count overflow,
    /// rows not a whole number of blocks).
    BadTensorDims {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Byte offset of its tensor info.
        offset: u64,
        /// Its dimensions (GGUF order, input dimension first).
        dims: Vec<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    MisalignedTensor {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// The data offset (relative to the data section).
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// A tensor's data lies (partly) outside the file.
    TensorOutOfBounds {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Absolute byte offset of its data.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A tensor of a type this crate does not dequantize.
    UnsupportedTensorType {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Absolute byte offset of its data.
        offset: u64,
        /// The type.
        ty: GgmlType,
    },
    /// A safetensors tensor of a dtype this crate does not read.
    UnsupportedDtype {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Absolute byte offset of its data.
        offset: u64,
        /// The dtype string.
        dtype: String,
    },
    /// A required metadata key (GGUF) or config field (`config.json`) is absent.
    MissingKey {
        /// File.
        file: PathBuf,
        /// Key.
        key: String,
    },
    /// A metadata key or config field has the wrong type.
    WrongKeyType {
        /// File.
        file: PathBuf,
        /// Key.
        key: String,
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// A metadata or config value is out of range or inconsistent.
    BadValue {
        /// File.
        file: PathBuf,
        /// Key (or a description of the combination).
        key: String,
        /// The value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Not a Qwen2 checkpoint.
    UnsupportedArchitecture {
        /// File.
        file: PathBuf,
        /// The architecture found.
        arch: String,
    },
    /// A tensor the model needs is absent.
    MissingTensor {
        /// File (the GGUF file, or the folder / shard).
        file: PathBuf,
        /// Tensor.
        tensor: String,
    },
    /// A tensor's shape differs from the one the configuration implies.
    ShapeMismatch {
        /// File.
        file: PathBuf,
        /// Tensor.
        tensor: String,
        /// Absolute byte offset of its data.
        offset: u64,
        /// Shape found.
        found: Vec<u64>,
        /// Shape expected.
        expected: Vec<u64>,
        /// Which order the shapes are listed in.
        order: &'static str,
    },
    /// The configuration read from the checkpoint is not one the model accepts.
    Config {
        /// File.
        file: PathBuf,
        /// The problem.
        source: ConfigError,
    },
    /// The keep list given in the options is unusable.
    BadKeep {
        /// Why.
        reason: String,
    },
    /// A JSON file (`config.json`, index, safetensors header) does not parse.
    Json {
        /// File.
        file: PathBuf,
        /// Byte offset of the JSON text in the file.
        offset: u64,
        /// The parser's error (line and column inside the JSON text).
        source: serde_json::Error,
    },
    /// A safetensors file or index is structurally wrong.
    BadSafetensors {
        /// File.
        file: PathBuf,
        /// Byte offset concerned.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The file or folder the error is about, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        Some(match self {
            Error::Io { path, .. } | Error::NotACheckpoint { path, .. } => path,
            Error::Truncated { file, .. }
            | Error::BadMagic { file, .. }
            | Error::UnsupportedVersion { file, .. }
            | Error::BadValueType { file, .. }
            | Error::NestingTooDeep { file, .. }
            | Error::InvalidUtf8 { file, .. }
            | Error::DuplicateKey { file, .. }
            | Error::DuplicateTensor { file, .. }
            | Error::BadAlignment { file, .. }
            | Error::BadTensorDims { file, .. }
            | Error::MisalignedTensor { file, .. }
            | Error::TensorOutOfBounds { file, .. }
            | Error::UnsupportedTensorType { file, .. }
            | Error::UnsupportedDtype { file, .. }
            | Error::MissingKey { file, .. }
            | Error::WrongKeyType { file, .. }
            | Error::BadValue { file, .. }
            | Error::UnsupportedArchitecture { file, .. }
            | Error::MissingTensor { file, .. }
            | Error::ShapeMismatch { file, .. }
            | Error::Config { file, .. }
            | Error::Json { file, .. }
            | Error::BadSafetensors { file, .. } => file,
            Error::BadKeep { .. } => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "{}: cannot {op}: {source}", path.display())
            }
            Error::NotACheckpoint { path, reason } => write!(
                f,
                "{}: not a checkpoint (expected a .gguf file or a Hugging Face folder): {reason}",
                path.display()
            ),
            Error::Truncated {
                file,
                what,
                offset,
                needed,
                available,
            } => write!(
                f,
                "{}: {what} at byte offset {offset} needs {needed} bytes but only {available} \
                 remain (truncated file or corrupt length)",
                file.display()
            ),
            Error::BadMagic { file, found } => write!(
                f,
                "{}: bad magic at byte offset 0: {:02x?} ({:?}), expected \"GGUF\"",
                file.display(),
                found,
                String::from_utf8_lossy(found)
            ),
            Error::UnsupportedVersion { file, version } => {
                write!(
                    f,
                    "{}: unsupported GGUF version {version} at byte offset 4 (only 2 and 3)",
                    file.display()
                )?;
                if (1..=3).contains(&version.swap_bytes()) {
                    write!(f, "; this looks like a big-endian GGUF")?;
                }
                Ok(())
            }
            Error::BadValueType {
                file,
                key,
                offset,
                type_id,
            } => write!(
                f,
                "{}: metadata key {key:?}: unknown value type {type_id} at byte offset {offset}",
                file.display()
            ),
            Error::NestingTooDeep { file, key, offset } => write!(
                f,
                "{}: metadata key {key:?}: arrays nested too deeply at byte offset {offset}",
                file.display()
            ),
            Error::InvalidUtf8 { file, what, offset } => write!(
                f,
                "{}: {what} at byte offset {offset} is not valid UTF-8",
                file.display()
            ),
            Error::DuplicateKey { file, key, offset } => write!(
                f,
                "{}: metadata key {key:?} appears twice (second at byte offset {offset})",
                file.display()
            ),
            Error::DuplicateTensor {
                file,
                tensor,
                offset,
            } => write!(
                f,
                "{}: tensor {tensor:?} appears twice (second tensor info at byte offset {offset})",
                file.display()
            ),
            Error::BadAlignment { file, value } => write!(
                f,
                "{}: general.alignment = {value} is not a power of two",
                file.display()
            ),
            Error::BadTensorDims {
                file,
                tensor,
                offset,
                dims,
                reason,
            } => write!(
                f,
                "{}: tensor {tensor:?} (tensor info at byte offset {offset}) has dims {dims:?}: \
                 {reason}",
                file.display()
            ),
            Error::MisalignedTensor {
                file,
                tensor,
                offset,
                alignment,
            } => write!(
                f,
                "{}: tensor {tensor:?}: data offset {offset} is not a multiple of the alignment \
                 {alignment}",
                file.display()
            ),
            Error::TensorOutOfBounds {
                file,
                tensor,
                offset,
                size,
                file_len,
            } => write!(
                f,
                "{}: tensor {tensor:?}: {size} bytes of data at byte offset {offset} run past the \
                 end of the file ({file_len} bytes; truncated file?)",
                file.display()
            ),
            Error::UnsupportedTensorType {
                file,
                tensor,
                offset,
                ty,
            } => write!(
                f,
                "{}: tensor {tensor:?} (data at byte offset {offset}) has type {ty}, which this \
                 reader cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, \
                 Q5_1, Q4_K, Q5_K, Q6_K)",
                file.display()
            ),
            Error::UnsupportedDtype {
                file,
                tensor,
                offset,
                dtype,
            } => write!(
                f,
                "{}: tensor {tensor:?} (data at byte offset {offset}) has dtype {dtype:?}; only \
                 BF16, F16 and F32 are supported",
                file.display()
            ),
            Error::MissingKey { file, key } => {
                write!(f, "{}: required key {key:?} is missing", file.display())
            }
            Error::WrongKeyType {
                file,
                key,
                expected,
                found,
            } => write!(
                f,
                "{}: key {key:?} has type {found}, expected {expected}",
                file.display()
            ),
            Error::BadValue {
                file,
                key,
                value,
                reason,
            } => write!(f, "{}: {key} = {value}: {reason}", file.display()),
            Error::UnsupportedArchitecture { file, arch } => write!(
                f,
                "{}: unsupported architecture {arch} (only qwen2)",
                file.display()
            ),
            Error::MissingTensor { file, tensor } => {
                write!(f, "{}: tensor {tensor:?} is missing", file.display())
            }
            Error::ShapeMismatch {
                file,
                tensor,
                offset,
                found,
                expected,
                order,
            } => write!(
                f,
                "{}: tensor {tensor:?} (data at byte offset {offset}) has shape {found:?}, \
                 expected {expected:?} ({order})",
                file.display()
            ),
            Error::Config { file, source } => write!(
                f,
                "{}: the model's configuration is not usable: {source}",
                file.display()
            ),
            Error::BadKeep { reason } => write!(f, "keep list: {reason}"),
            Error::Json {
                file,
                offset,
                source,
            } => write!(
                f,
                "{}: JSON at byte offset {offset} does not parse: {source}",
                file.display()
            ),
            Error::BadSafetensors {
                file,
                offset,
                reason,
            } => write!(f, "{}: at byte offset {offset}: {reason}", file.display()),
        }
    }
}

/// `Display` already includes the underlying error of `Io`, `Config` and
/// `Json` (one self-contained line for the CLI, the C ABI and Python), so
/// `source()` does not repeat it: an error chain printed with `{:#}` would
/// say it twice.
impl std::error::Error for Error {}

//! GGUF reader (versions 2 and 3, little-endian): header, metadata of every
//! value type, tensor infos, alignment, and dequantization of tensors or rows.
//!
//! The file is memory-mapped ([`GgufFile::open`]) or held in memory
//! ([`GgufFile::from_bytes`]); parsing never panics and never allocates more
//! than the file's size justifies: every count and length is checked against
//! the bytes that remain before anything is reserved.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use edgedecoding_model::config::Config;
use edgedecoding_model::float_ref::FloatModel;

use crate::build::{self, Hyper, Part, Shape, TensorSource};
use crate::quant::{self, GgmlType};
use crate::source::Backing;
use crate::{Error, LoadOptions, Progress};

/// `"GGUF"` as a little-endian u32.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of metadata arrays accepted.
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Most dimensions a GGML tensor has.
pub const MAX_DIMS: u32 = 4;

/// Type ids of metadata values.
mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `UINT8`
    U8(u8),
    /// `INT8`
    I8(i8),
    /// `UINT16`
    U16(u16),
    /// `INT16`
    I16(i16),
    /// `UINT32`
    U32(u32),
    /// `INT32`
    I32(i32),
    /// `FLOAT32`
    F32(f32),
    /// `BOOL`
    Bool(bool),
    /// `STRING` (UTF-8)
    String(String),
    /// `ARRAY`
    Array(Array),
    /// `UINT64`
    U64(u64),
    /// `INT64`
    I64(i64),
    /// `FLOAT64`
    F64(f64),
}

/// A metadata array: elements of one type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// `UINT8` elements
    U8(Vec<u8>),
    /// `INT8` elements
    I8(Vec<i8>),
    /// `UINT16` elements
    U16(Vec<u16>),
    /// `INT16` elements
    I16(Vec<i16>),
    /// `UINT32` elements
    U32(Vec<u32>),
    /// `INT32` elements
    I32(Vec<i32>),
    /// `FLOAT32` elements
    F32(Vec<f32>),
    /// `BOOL` elements
    Bool(Vec<bool>),
    /// `STRING` elements
    String(Vec<String>),
    /// Nested arrays (each with its own element type)
    Array(Vec<Array>),
    /// `UINT64` elements
    U64(Vec<u64>),
    /// `INT64` elements
    I64(Vec<i64>),
    /// `FLOAT64` elements
    F64(Vec<f64>),
}

impl Value {
    /// GGUF name of the value's type (`"UINT32"`, `"ARRAY[STRING]"`, ...).
    pub fn type_name(&self) -> String {
        match self {
            Value::Array(a) => format!("ARRAY[{}]", a.elem_type_name()),
            other => other.scalar_type_name().to_string(),
        }
    }

    fn scalar_type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "UINT8",
            Value::I8(_) => "INT8",
            Value::U16(_) => "UINT16",
            Value::I16(_) => "INT16",
            Value::U32(_) => "UINT32",
            Value::I32(_) => "INT32",
            Value::F32(_) => "FLOAT32",
            Value::Bool(_) => "BOOL",
            Value::String(_) => "STRING",
            Value::Array(_) => "ARRAY",
            Value::U64(_) => "UINT64",
            Value::I64(_) => "INT64",
            Value::F64(_) => "FLOAT64",
        }
    }

    /// Any integer value as `i128` (every GGUF integer fits).
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// A non-negative integer value that fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_int().and_then(|v| u64::try_from(v).ok())
    }

    /// An integer value that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_int().and_then(|v| i64::try_from(v).ok())
    }

    /// A float value (`FLOAT32` widened exactly, or `FLOAT64`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A `BOOL` value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A `STRING` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `ARRAY` value.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Array(a) => write!(f, "[{} x {}]", a.len(), a.elem_type_name()),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// GGUF name of the element type.
    pub fn elem_type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "UINT8",
            Array::I8(_) => "INT8",
            Array::U16(_) => "UINT16",
            Array::I16(_) => "INT16",
            Array::U32(_) => "UINT32",
            Array::I32(_) => "INT32",
            Array::F32(_) => "FLOAT32",
            Array::Bool(_) => "BOOL",
            Array::String(_) => "STRING",
            Array::Array(_) => "ARRAY",
            Array::U64(_) => "UINT64",
            Array::I64(_) => "INT64",
            Array::F64(_) => "FLOAT64",
        }
    }

    /// The elements of a `STRING` array.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an integer array, widened to `i64` (`None` for other
    /// element types or a `UINT64` element above `i64::MAX`).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        fn w<T: Copy + Into<i64>>(v: &[T]) -> Option<Vec<i64>> {
            Some(v.iter().map(|&x| x.into()).collect())
        }
        match self {
            Array::U8(v) => w(v),
            Array::I8(v) => w(v),
            Array::U16(v) => w(v),
            Array::I16(v) => w(v),
            Array::U32(v) => w(v),
            Array::I32(v) => w(v),
            Array::I64(v) => Some(v.clone()),
            Array::U64(v) => v.iter().map(|&x| i64::try_from(x).ok()).collect(),
            _ => None,
        }
    }

    /// The elements of a float array, widened to `f64`.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        match self {
            Array::F32(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Array::F64(v) => Some(v.clone()),
            _ => None,
        }
    }
}

/// The metadata key/value pairs of a GGUF file, in file order, with typed
/// getters whose errors name the file and key.
#[derive(Clone, Debug)]
pub struct GgufMetadata {
    file: PathBuf,
    version: u32,
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl GgufMetadata {
    /// The file the metadata was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The GGUF version of the file.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and values in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`, or [`Error::MissingKey`].
    pub fn require(&self, key: &str) -> Result<&Value, Error> {
        self.get(key).ok_or_else(|| Error::MissingKey {
            file: self.file.clone(),
            key: key.to_string(),
        })
    }

    fn wrong(&self, key: &str, expected: &'static str, v: &Value) -> Error {
        Error::WrongKeyType {
            file: self.file.clone(),
            key: key.to_string(),
            expected,
            found: v.type_name(),
        }
    }

    fn range(&self, key: &str, v: &Value, reason: &str) -> Error {
        Error::BadValue {
            file: self.file.clone(),
            key: key.to_string(),
            value: v.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A `STRING` value.
    pub fn get_str(&self, key: &str) -> Result<&str, Error> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "STRING", v))
    }

    /// A non-negative integer value of any integer type.
    pub fn get_u64(&self, key: &str) -> Result<u64, Error> {
        let v = self.require(key)?;
        let i = v.as_int().ok_or_else(|| self.wrong(key, "an integer", v))?;
        u64::try_from(i).map_err(|_| self.range(key, v, "must not be negative"))
    }

    /// An integer value of any integer type that fits `u32` (token ids).
    pub fn get_u32(&self, key: &str) -> Result<u32, Error> {
        let n = self.get_u64(key)?;
        u32::try_from(n).map_err(|_| self.range(key, &Value::U64(n), "does not fit 32 bits"))
    }

    /// An integer value of any integer type that fits `i64`.
    pub fn get_i64(&self, key: &str) -> Result<i64, Error> {
        let v = self.require(key)?;
        let i = v.as_int().ok_or_else(|| self.wrong(key, "an integer", v))?;
        i64::try_from(i).map_err(|_| self.range(key, v, "does not fit 64 signed bits"))
    }

    /// A `FLOAT32` or `FLOAT64` value.
    pub fn get_f64(&self, key: &str) -> Result<f64, Error> {
        let v = self.require(key)?;
        v.as_f64()
            .ok_or_else(|| self.wrong(key, "FLOAT32 or FLOAT64", v))
    }

    /// A `BOOL` value.
    pub fn get_bool(&self, key: &str) -> Result<bool, Error> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "BOOL", v))
    }

    /// An `ARRAY` value.
    pub fn get_array(&self, key: &str) -> Result<&Array, Error> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "ARRAY", v))
    }

    /// An array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    pub fn get_str_array(&self, key: &str) -> Result<&[String], Error> {
        let v = self.require(key)?;
        v.as_array()
            .and_then(Array::as_strings)
            .ok_or_else(|| self.wrong(key, "ARRAY[STRING]", v))
    }

    /// An array of integers of any integer type, widened to `i64`
    /// (`tokenizer.ggml.token_type`).
    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>, Error> {
        let v = self.require(key)?;
        let a = v
            .as_array()
            .ok_or_else(|| self.wrong(key, "an integer ARRAY", v))?;
        match a {
            Array::U8(_)
            | Array::I8(_)
            | Array::U16(_)
            | Array::I16(_)
            | Array::U32(_)
            | Array::I32(_)
            | Array::U64(_)
            | Array::I64(_) => a
                .to_i64_vec()
                .ok_or_else(|| self.range(key, v, "an element does not fit 64 signed bits")),
            _ => Err(self.wrong(key, "an integer ARRAY", v)),
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, Error> {
        self.get_str("general.architecture")
    }
}

/// One tensor info of a GGUF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Dimensions as stored: `dims[0]` is the innermost (input) dimension.
    pub dims: Vec<u64>,
    /// Type.
    pub ty: GgmlType,
    /// Offset of the data relative to the data section, as stored.
    pub rel_offset: u64,
    /// Absolute byte offset of the data in the file.
    pub data_offset: u64,
    /// Size of the data in bytes (`None` for types this reader does not know).
    pub n_bytes: Option<u64>,
    /// Byte offset of the tensor info record itself.
    pub info_offset: u64,
}

impl TensorInfo {
    /// Number of elements (dims are checked not to overflow at parse time).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Length of one row (`dims[0]`; 1 for a zero-dimensional tensor).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows (product of the outer dimensions).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// A parsed GGUF file.
pub struct GgufFile {
    path: PathBuf,
    bytes: Backing,
    metadata: GgufMetadata,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    alignment: u64,
    data_section: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("version", &self.metadata.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .finish()
    }
}

/// Reads only the metadata of a GGUF file (memory-mapped; tensor data is not
/// touched). What a tokenizer needs.
pub fn read_metadata(path: &Path) -> Result<GgufMetadata, Error> {
    Ok(GgufFile::open(path)?.into_metadata())
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    file: &'a Path,
}

impl<'a> Cur<'a> {
    fn remaining(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn truncated(&self, what: String, needed: u64) -> Error {
        Error::Truncated {
            file: self.file.to_path_buf(),
            what,
            offset: self.pos as u64,
            needed,
            available: self.remaining(),
        }
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(self.truncated(what(), n));
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], Error> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, Error> {
        self.arr(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, Error> {
        self.arr(what).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `each` bytes can fit.
    fn fits(&self, count: u64, each: u64, what: &dyn Fn() -> String) -> Result<(), Error> {
        let need = count.saturating_mul(each);
        if need > self.remaining() {
            return Err(self.truncated(what(), need));
        }
        Ok(())
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, Error> {
        let n = self.u64(&|| format!("length of {}", what()))?;
        let at = self.pos as u64;
        let s = self.take(n, what)?;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(Error::InvalidUtf8 {
                file: self.file.to_path_buf(),
                what: what(),
                offset: at,
            }),
        }
    }
}

/// Smallest encoded size of one metadata value of type `t`.
fn min_size(t: u32) -> u64 {
    match t {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 | vt::STRING => 8,
        vt::ARRAY => 12,
        _ => 1,
    }
}

fn read_fixed<T, const N: usize>(
    cur: &mut Cur<'_>,
    count: u64,
    what: &dyn Fn() -> String,
    conv: fn([u8; N]) -> T,
) -> Result<Vec<T>, Error> {
    let bytes = cur.take(count.saturating_mul(N as u64), what)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            conv(a)
        })
        .collect())
}

fn read_array(cur: &mut Cur<'_>, key: &str, depth: u32) -> Result<Array, Error> {
    let at = cur.pos as u64;
    if depth >= MAX_ARRAY_DEPTH {
        return Err(Error::NestingTooDeep {
            file: cur.file.to_path_buf(),
            key: key.to_string(),
            offset: at,
        });
    }
    let what = || format!("array header of metadata key {key:?}");
    let t = cur.u32(&what)?;
    let type_at = at;
    let n = cur.u64(&what)?;
    let elems = || format!("{n} array elements of metadata key {key:?}");
    if t > vt::F64 {
        return Err(Error::BadValueType {
            file: cur.file.to_path_buf(),
            key: key.to_string(),
            offset: type_at,
            type_id: t,
        });
    }
    cur.fits(n, min_size(t), &elems)?;
    // `fits` bounds `n` by the file size, so the capacities below are too.
    let n_us = n as usize;
    Ok(match t {
        vt::U8 => Array::U8(cur.take(n, &elems)?.to_vec()),
        vt::I8 => Array::I8(read_fixed(cur, n, &elems, |[b]| b as i8)?),
        vt::U16 => Array::U16(read_fixed(cur, n, &elems, u16::from_le_bytes)?),
        vt::I16 => Array::I16(read_fixed(cur, n, &elems, i16::from_le_bytes)?),
        vt::U32 => Array::U32(read_fixed(cur, n, &elems, u32::from_le_bytes)?),
        vt::I32 => Array::I32(read_fixed(cur, n, &elems, i32::from_le_bytes)?),
        vt::F32 => Array::F32(read_fixed(cur, n, &elems, f32::from_le_bytes)?),
        vt::BOOL => Array::Bool(read_fixed(cur, n, &elems, |[b]| b != 0)?),
        vt::U64 => Array::U64(read_fixed(cur, n, &elems, u64::from_le_bytes)?),
        vt::I64 => Array::I64(read_fixed(cur, n, &elems, i64::from_le_bytes)?),
        vt::F64 => Array::F64(read_fixed(cur, n, &elems, f64::from_le_bytes)?),
        vt::STRING => {
            let mut v = Vec::with_capacity(n_us);
            for i in 0..n_us {
                v.push(cur.string(&|| format!("element {i} of metadata key {key:?}"))?);
            }
            Array::String(v)
        }
        _ => {
            // vt::ARRAY
            let mut v = Vec::with_capacity(n_us);
            for _ in 0..n_us {
                v.push(read_array(cur, key, depth + 1)?);
            }
            Array::Array(v)
        }
    })
}

fn read_value(cur: &mut Cur<'_>, key: &str) -> Result<Value, Error> {
    let type_at = cur.pos as u64;
    let what = || format!("value of metadata key {key:?}");
    let t = cur.u32(&|| format!("value type of metadata key {key:?}"))?;
    Ok(match t {
        vt::U8 => Value::U8(cur.arr::<1>(&what)?[0]),
        vt::I8 => Value::I8(cur.arr::<1>(&what)?[0] as i8),
        vt::U16 => Value::U16(u16::from_le_bytes(cur.arr(&what)?)),
        vt::I16 => Value::I16(i16::from_le_bytes(cur.arr(&what)?)),
        vt::U32 => Value::U32(u32::from_le_bytes(cur.arr(&what)?)),
        vt::I32 => Value::I32(i32::from_le_bytes(cur.arr(&what)?)),
        vt::F32 => Value::F32(f32::from_le_bytes(cur.arr(&what)?)),
        vt::BOOL => Value::Bool(cur.arr::<1>(&what)?[0] != 0),
        vt::STRING => Value::String(cur.string(&what)?),
        vt::ARRAY => Value::Array(read_array(cur, key, 0)?),
        vt::U64 => Value::U64(u64::from_le_bytes(cur.arr(&what)?)),
        vt::I64 => Value::I64(i64::from_le_bytes(cur.arr(&what)?)),
        vt::F64 => Value::F64(f64::from_le_bytes(cur.arr(&what)?)),
        _ => {
            return Err(Error::BadValueType {
                file: cur.file.to_path_buf(),
                key: key.to_string(),
                offset: type_at,
                type_id: t,
            })
        }
    })
}

impl GgufFile {
    /// Opens and parses a GGUF file, memory-mapped (read fully when the file
    /// cannot be mapped).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let bytes = Backing::open(path)?;
        Self::parse(path.to_path_buf(), bytes)
    }

    /// Parses GGUF bytes held in memory; `label` names them in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, Error> {
        Self::parse(label.into(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Backing) -> Result<Self, Error> {
        let (metadata, tensors, index, alignment, data_section) = {
            let b: &[u8] = &bytes;
            let mut cur = Cur {
                b,
                pos: 0,
                file: &path,
            };
            let magic: [u8; 4] = cur.arr(&|| "magic".into())?;
            if magic != MAGIC {
                return Err(Error::BadMagic {
                    file: path.clone(),
                    found: magic,
                });
            }
            let version = cur.u32(&|| "version".into())?;
            if version != 2 && version != 3 {
                return Err(Error::UnsupportedVersion {
                    file: path.clone(),
                    version,
                });
            }
            let n_tensors = cur.u64(&|| "tensor count".into())?;
            let n_kv = cur.u64(&|| "metadata count".into())?;
            // a key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes
            cur.fits(n_kv, 13, &|| format!("{n_kv} metadata key/value pairs"))?;
            let mut entries = Vec::with_capacity(n_kv as usize);
            let mut kv_index = HashMap::with_capacity(n_kv as usize);
            for i in 0..n_kv {
                let at = cur.pos as u64;
                let key = cur.string(&|| format!("key of metadata pair #{i}"))?;
                let value = read_value(&mut cur, &key)?;
                if kv_index.contains_key(&key) {
                    return Err(Error::DuplicateKey {
                        file: path.clone(),
                        key,
                        offset: at,
                    });
                }
                kv_index.insert(key.clone(), entries.len());
                entries.push((key, value));
            }
            let metadata = GgufMetadata {
                file: path.clone(),
                version,
                entries,
                index: kv_index,
            };
            let alignment = match metadata.get("general.alignment") {
                None => DEFAULT_ALIGNMENT,
                Some(v) => {
                    let a = v.as_u64().ok_or_else(|| Error::WrongKeyType {
                        file: path.clone(),
                        key: "general.alignment".into(),
                        expected: "UINT32",
                        found: v.type_name(),
                    })?;
                    if !a.is_power_of_two() {
                        return Err(Error::BadAlignment {
                            file: path.clone(),
                            value: a,
                        });
                    }
                    a
                }
            };
            // a tensor info takes at least 8 (name length) + 4 + 4 + 8 bytes
            cur.fits(n_tensors, 24, &|| format!("{n_tensors} tensor infos"))?;
            let mut tensors = Vec::with_capacity(n_tensors as usize);
            let mut index = HashMap::with_capacity(n_tensors as usize);
            for i in 0..n_tensors {
                let at = cur.pos as u64;
                let name = cur.string(&|| format!("name of tensor info #{i}"))?;
                let what = || format!("tensor info of {name:?}");
                let n_dims = cur.u32(&what)?;
                if n_dims > MAX_DIMS {
                    return Err(Error::BadTensorDims {
                        file: path.clone(),
                        tensor: name,
                        offset: at,
                        dims: Vec::new(),
                        reason: format!("{n_dims} dimensions (at most {MAX_DIMS})"),
                    });
                }
                let mut dims = Vec::with_capacity(n_dims as usize);
                for _ in 0..n_dims {
                    dims.push(cur.u64(&what)?);
                }
                let ty = GgmlType::from_id(cur.u32(&what)?);
                let rel_offset = cur.u64(&what)?;
                if index.contains_key(&name) {
                    return Err(Error::DuplicateTensor {
                        file: path.clone(),
                        tensor: name,
                        offset: at,
                    });
                }
                index.insert(name.clone(), tensors.len());
                tensors.push(TensorInfo {
                    name,
                    dims,
                    ty,
                    rel_offset,
                    data_offset: 0,
                    n_bytes: None,
                    info_offset: at,
                });
            }
            let end_of_infos = cur.pos as u64;
            // end_of_infos <= file length, so this cannot overflow
            let data_section = end_of_infos.div_ceil(alignment) * alignment;
            let file_len = b.len() as u64;
            for t in &mut tensors {
                let (data_offset, n_bytes) =
                    check_tensor(&path, t, alignment, data_section, file_len)?;
                t.data_offset = data_offset;
                t.n_bytes = n_bytes;
            }
            (metadata, tensors, index, alignment, data_section)
        };
        Ok(Self {
            path,
            bytes,
            metadata,
            tensors,
            index,
            alignment,
            data_section,
        })
    }

    /// The file's path (or the label given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.metadata.version
    }

    /// The metadata.
    pub fn metadata(&self) -> &GgufMetadata {
        &self.metadata
    }

    /// The metadata, releasing the file.
    pub fn into_metadata(self) -> GgufMetadata {
        self.metadata
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor info of `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The tensor info of `name`, or [`Error::MissingTensor`].
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo, Error> {
        self.tensor(name).ok_or_else(|| Error::MissingTensor {
            file: self.path.clone(),
            tensor: name.to_string(),
        })
    }

    /// Alignment of the data section.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute byte offset of the data section.
    pub fn data_section(&self) -> u64 {
        self.data_section
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn unsupported(&self, t: &TensorInfo) -> Error {
        Error::UnsupportedTensorType {
            file: self.path.clone(),
            tensor: t.name.clone(),
            offset: t.data_offset,
            ty: t.ty,
        }
    }

    /// The raw data bytes of a tensor.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> Result<&[u8], Error> {
        let n = t.n_bytes.ok_or_else(|| self.unsupported(t))?;
        // bounds were checked at parse time
        Ok(&self.bytes[t.data_offset as usize..(t.data_offset + n) as usize])
    }

    /// Dequantizes a whole tensor to f32, in stored order (row-major, `dims[0]`
    /// values per row).
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>, Error> {
        let rows = usize::try_from(t.n_rows()).unwrap_or(usize::MAX);
        self.dequantize_row_range(t, 0..rows)
    }

    /// Dequantizes rows `range` of a tensor.
    pub fn dequantize_row_range(
        &self,
        t: &TensorInfo,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<f32>, Error> {
        let src = self.tensor_bytes(t)?;
        let n_rows = t.n_rows();
        if range.start > range.end || range.end as u64 > n_rows {
            return Err(Error::BadTensorDims {
                file: self.path.clone(),
                tensor: t.name.clone(),
                offset: t.info_offset,
                dims: t.dims.clone(),
                reason: format!("rows {range:?} asked for, the tensor has {n_rows}"),
            });
        }
        // the tensor lies inside the file, so these products fit usize
        let row_len = t.row_len() as usize;
        let row_bytes = (src.len() as u64 / n_rows.max(1)) as usize;
        let src = &src[range.start * row_bytes..range.end * row_bytes];
        let mut out = vec![0.0f32; (range.end - range.start) * row_len];
        par_dequantize(t.ty, src, &mut out, row_len, row_bytes).map_err(|_| self.unsupported(t))?;
        Ok(out)
    }

    /// Dequantizes the listed rows of a tensor, in the order given.
    pub fn dequantize_rows(&self, t: &TensorInfo, rows: &[u32]) -> Result<Vec<f32>, Error> {
        let src = self.tensor_bytes(t)?;
        let n_rows = t.n_rows();
        let row_len = t.row_len() as usize;
        let row_bytes = (src.len() as u64 / n_rows.max(1)) as usize;
        if let Some(&r) = rows.iter().find(|&&r| r as u64 >= n_rows) {
            return Err(Error::BadTensorDims {
                file: self.path.clone(),
                tensor: t.name.clone(),
                offset: t.info_offset,
                dims: t.dims.clone(),
                reason: format!("row {r} asked for, the tensor has {n_rows}"),
            });
        }
        let mut out = vec![0.0f32; rows.len().saturating_mul(row_len)];
        for (o, &r) in out.chunks_exact_mut(row_len.max(1)).zip(rows) {
            let r = r as usize;
            quant::dequantize(t.ty, &src[r * row_bytes..(r + 1) * row_bytes], o)
                .map_err(|_| self.unsupported(t))?;
        }
        Ok(out)
    }
}

/// Dequantizes whole rows, split over a few threads when there is enough work
/// (each value is computed independently: the result does not depend on it).
fn par_dequantize(
    ty: GgmlType,
    src: &[u8],
    out: &mut [f32],
    row_len: usize,
    row_bytes: usize,
) -> Result<(), quant::QuantError> {
    let n_rows = out.len().checked_div(row_len).unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads <= 1 || out.len() < (1 << 20) || n_rows < threads || row_bytes == 0 {
        return quant::dequantize(ty, src, out);
    }
    let per = n_rows.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = src
            .chunks(per * row_bytes)
            .zip(out.chunks_mut(per * row_len))
            .map(|(src, out)| s.spawn(move || quant::dequantize(ty, src, out)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or(Err(quant::QuantError::Unsupported(ty))))
    })
}

/// Checks a tensor's dims, alignment and bounds; returns its absolute data
/// offset and byte size (`None` for a type this reader does not know).
fn check_tensor(
    path: &Path,
    t: &TensorInfo,
    alignment: u64,
    data_section: u64,
    file_len: u64,
) -> Result<(u64, Option<u64>), Error> {
    let dims_err = |reason: String| Error::BadTensorDims {
        file: path.to_path_buf(),
        tensor: t.name.clone(),
        offset: t.info_offset,
        dims: t.dims.clone(),
        reason,
    };
    let n = t
        .dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| dims_err("element count overflows 64 bits".into()))?;
    if t.rel_offset % alignment != 0 {
        return Err(Error::MisalignedTensor {
            file: path.to_path_buf(),
            tensor: t.name.clone(),
            offset: t.rel_offset,
            alignment,
        });
    }
    let abs = data_section.checked_add(t.rel_offset);
    let data_offset = abs.unwrap_or(u64::MAX);
    let Some((bs, _)) = t.ty.block() else {
        return Ok((data_offset, None));
    };
    if t.row_len() % bs as u64 != 0 {
        return Err(dims_err(format!(
            "row length {} is not a multiple of the {} block size {bs}",
            t.row_len(),
            t.ty.name()
        )));
    }
    let size =
        quant::bytes_for(t.ty, n).ok_or_else(|| dims_err("byte size overflows 64 bits".into()))?;
    let end = abs.and_then(|a| a.checked_add(size));
    if end.is_none_or(|e| e > file_len) {
        return Err(Error::TensorOutOfBounds {
            file: path.to_path_buf(),
            tensor: t.name.clone(),
            offset: data_offset,
            size,
            file_len,
        });
    }
    Ok((data_offset, Some(size)))
}

use crate::qwen2::gguf_keys::{
    CTX as K_CTX, EPS as K_EPS, FFN as K_FFN, HEADS as K_HEADS, HIDDEN as K_HIDDEN, KV as K_KV,
    LAYERS as K_LAYERS, THETA as K_THETA,
};
use crate::qwen2::{tensor_name, Naming};

struct GgufSource<'a>(&'a GgufFile);

impl TensorSource for GgufSource<'_> {
    fn name(&self, part: Part, l: usize) -> String {
        tensor_name(Naming::Gguf, part, l)
    }

    fn read(&self, name: &str, shape: Shape, rows: Option<&[u32]>) -> Result<Vec<f32>, Error> {
        let f = self.0;
        let t = f.require_tensor(name)?;
        // GGUF lists dims input-first: an [out][in] matrix is [in, out]
        let expected: Vec<u64> = match shape {
            Shape::Vector(n) => vec![n as u64],
            Shape::Matrix { rows, cols } => vec![cols as u64, rows as u64],
        };
        if t.dims != expected {
            return Err(Error::ShapeMismatch {
                file: f.path.clone(),
                tensor: name.to_string(),
                offset: t.data_offset,
                found: t.dims.clone(),
                expected,
                order: "GGUF order, input dimension first",
            });
        }
        match rows {
            Some(r) => f.dequantize_rows(t, r),
            None => f.dequantize(t),
        }
    }
}

/// The model configuration (validated against the options) and RMSNorm
/// epsilon of a qwen2 GGUF file, without reading any tensor data.
pub fn qwen2_config(file: &GgufFile, opts: &LoadOptions) -> Result<(Config, f32), Error> {
    let md = &file.metadata;
    let arch = md.architecture()?;
    if arch != "qwen2" {
        return Err(Error::UnsupportedArchitecture {
            file: file.path.clone(),
            arch: arch.to_string(),
        });
    }
    let emb = file.require_tensor("token_embd.weight")?;
    if emb.dims.len() != 2 {
        return Err(Error::BadTensorDims {
            file: file.path.clone(),
            tensor: emb.name.clone(),
            offset: emb.info_offset,
            dims: emb.dims.clone(),
            reason: "the embedding must have 2 dimensions [hidden, vocab]".into(),
        });
    }
    let hyper = Hyper {
        n_layers: md.get_u64(K_LAYERS)?,
        hidden: md.get_u64(K_HIDDEN)?,
        ffn: md.get_u64(K_FFN)?,
        n_heads: md.get_u64(K_HEADS)?,
        n_kv_heads: md.get_u64(K_KV)?,
        vocab: emb.dims[1],
        rope_theta: md.get_f64(K_THETA)?,
        eps: md.get_f64(K_EPS)?,
        train_ctx: match md.get(K_CTX) {
            None => None,
            Some(_) => Some((md.get_u64(K_CTX)?, K_CTX)),
        },
    };
    build::make_config(
        &file.path,
        &hyper,
        [
            K_LAYERS,
            K_HIDDEN,
            K_FFN,
            K_HEADS,
            K_KV,
            "token_embd.weight rows (vocab)",
            K_THETA,
            K_EPS,
        ],
        opts,
    )
}

/// Builds the float model of a qwen2 GGUF file.
pub fn load_qwen2(
    file: &GgufFile,
    opts: &LoadOptions,
    progress: Progress<'_>,
) -> Result<FloatModel, Error> {
    let (config, eps) = qwen2_config(file, opts)?;
    build::build(&GgufSource(file), config, eps, opts, progress)
}

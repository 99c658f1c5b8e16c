//! The manifest of a vector suite or HW image directory (docs/VECTORS.md §2):
//! one JSON object per file (operator, case, role, element type and bit width,
//! shape, layout, byte length, SHA-256), plus one object per case with its
//! scalar parameters.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Name of the manifest file at the root of a suite or an export.
pub const MANIFEST: &str = "manifest.json";
/// Value of the manifest's `format` field.
pub const FORMAT: &str = "edgedecoding-vectors";
/// Value of the manifest's `version` field.
pub const VERSION: u64 = 1;

/// Element type of a raw little-endian file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// `int8_t`.
    I8,
    /// `uint8_t`.
    U8,
    /// `int16_t`.
    I16,
    /// `uint16_t`.
    U16,
    /// `int32_t`.
    I32,
    /// `uint32_t`.
    U32,
    /// `int64_t`.
    I64,
    /// `uint64_t`.
    U64,
}

impl DType {
    /// Every type, for parsing.
    pub const ALL: [DType; 8] = [
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
    ];

    /// Manifest spelling: `i8`, `u8`, ... `u64`.
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::I64 => "i64",
            DType::U64 => "u64",
        }
    }

    /// The C type of one element.
    pub fn c_type(self) -> &'static str {
        match self {
            DType::I8 => "int8_t",
            DType::U8 => "uint8_t",
            DType::I16 => "int16_t",
            DType::U16 => "uint16_t",
            DType::I32 => "int32_t",
            DType::U32 => "uint32_t",
            DType::I64 => "int64_t",
            DType::U64 => "uint64_t",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 => 4,
            DType::I64 | DType::U64 => 8,
        }
    }

    /// Whether the type is signed (two's complement).
    pub fn signed(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// Parses the manifest spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Element `i` of a little-endian buffer of this type, widened.
    pub fn value_at(self, bytes: &[u8], i: usize) -> i128 {
        let n = self.size();
        let b = &bytes[i * n..(i + 1) * n];
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(b);
        let u = u64::from_le_bytes(raw);
        if self.signed() {
            let sh = 64 - 8 * n as u32;
            (((u << sh) as i64) >> sh) as i128
        } else {
            u as i128
        }
    }
}

/// An element type of a tensor held in memory.
pub trait Elem: Copy {
    /// Its manifest type.
    const DTYPE: DType;
    /// Appends its little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! elem {
    ($t:ty, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}
elem!(i8, I8);
elem!(u8, U8);
elem!(i16, I16);
elem!(u16, U16);
elem!(i32, I32);
elem!(u32, U32);
elem!(i64, I64);
elem!(u64, U64);

/// Little-endian bytes of a slice.
pub fn le_bytes<T: Elem>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * T::DTYPE.size());
    for &x in v {
        x.put(&mut out);
    }
    out
}

/// Whether a file is read by the device under test or produced by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An input (or a constant: weights, ROM contents).
    In,
    /// A golden output, compared by `verify`.
    Out,
}

impl Role {
    /// Manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            Role::In => "in",
            Role::Out => "out",
        }
    }
}

/// One file of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the manifest's directory, `/`-separated.
    pub path: String,
    /// Operator (kernel name, or `decoder_layer`, `prefill`, `decode`, `rom`,
    /// `weights`, `hw_image`).
    pub operator: String,
    /// Case name, unique within the operator.
    pub case: String,
    /// Tensor name within the case.
    pub name: String,
    /// In or out.
    pub role: Role,
    /// Container type.
    pub dtype: DType,
    /// Significant bits of every value (two's complement for signed types),
    /// at most the container's width.
    pub bits: u32,
    /// Dimensions, outermost first; the file holds their product elements.
    pub shape: Vec<usize>,
    /// Meaning of the dimensions and of the values, e.g. `[token][channel] Q12`.
    pub layout: String,
    /// File length in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

impl FileEntry {
    /// Number of elements (product of the shape).
    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }

    fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "operator": self.operator,
            "case": self.case,
            "name": self.name,
            "role": self.role.name(),
            "dtype": self.dtype.name(),
            "bits": self.bits,
            "shape": self.shape,
            "layout": self.layout,
            "bytes": self.bytes,
            "sha256": self.sha256,
        })
    }

    fn from_json(v: &Value) -> Result<Self> {
        let s = |k: &str| -> Result<String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("file entry without string field `{k}`: {v}"))
        };
        let u = |k: &str| -> Result<u64> {
            v.get(k)
                .and_then(Value::as_u64)
                .with_context(|| format!("file entry without integer field `{k}`: {v}"))
        };
        let role = match s("role")?.as_str() {
            "in" => Role::In,
            "out" => Role::Out,
            r => bail!("file entry with unknown role `{r}`: {v}"),
        };
        let dt = s("dtype")?;
        let dtype = DType::parse(&dt).with_context(|| format!("unknown dtype `{dt}`"))?;
        let shape = v
            .get("shape")
            .and_then(Value::as_array)
            .context("file entry without `shape`")?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).context("shape entry"))
            .collect::<Result<Vec<_>>>()?;
        let e = FileEntry {
            path: s("path")?,
            operator: s("operator")?,
            case: s("case")?,
            name: s("name")?,
            role,
            dtype,
            bits: u("bits")? as u32,
            shape,
            layout: s("layout")?,
            bytes: u("bytes")?,
            sha256: s("sha256")?,
        };
        // checked: a hostile manifest must not wrap the element count
        let size = e
            .shape
            .iter()
            .try_fold(e.dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
        match size {
            None => bail!(
                "{}: shape {:?} x {} overflows 64 bits",
                e.path,
                e.shape,
                e.dtype.name()
            ),
            Some(n) if n != e.bytes => bail!(
                "{}: manifest says {} bytes but shape {:?} x {} is {n} bytes",
                e.path,
                e.bytes,
                e.shape,
                e.dtype.name()
            ),
            Some(_) => {}
        }
        if e.path.starts_with('/') || e.path.split('/').any(|c| c == "..") {
            bail!(
                "{}: manifest paths must be relative and stay inside",
                e.path
            );
        }
        Ok(e)
    }
}

/// One case: its operator, name, scalar parameters and files.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseEntry {
    /// Operator.
    pub operator: String,
    /// Case name.
    pub case: String,
    /// Directory of its files, relative.
    pub dir: String,
    /// Scalar parameters (numbers or strings), sorted by key.
    pub params: Map<String, Value>,
}

/// A whole manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Free-form description of what produced the directory (generator, model).
    pub info: Map<String, Value>,
    /// Cases in generation order.
    pub cases: Vec<CaseEntry>,
    /// Files in generation order.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Serializes: the top level pretty-printed, one line per case and per file
    /// (easy to grep and diff).
    pub fn to_json_string(&self) -> String {
        let mut s = String::new();
        s.push_str("{\n");
        s.push_str(&format!("  \"format\": {},\n", json!(FORMAT)));
        s.push_str(&format!("  \"version\": {VERSION},\n"));
        s.push_str(&format!(
            "  \"info\": {},\n",
            Value::Object(self.info.clone())
        ));
        s.push_str("  \"cases\": [");
        for (i, c) in self.cases.iter().enumerate() {
            let v = json!({
                "operator": c.operator,
                "case": c.case,
                "dir": c.dir,
                "params": Value::Object(c.params.clone()),
            });
            s.push_str(if i == 0 { "\n    " } else { ",\n    " });
            s.push_str(&v.to_string());
        }
        s.push_str("\n  ],\n  \"files\": [");
        for (i, f) in self.files.iter().enumerate() {
            s.push_str(if i == 0 { "\n    " } else { ",\n    " });
            s.push_str(&f.to_json().to_string());
        }
        s.push_str("\n  ]\n}\n");
        s
    }

    /// Parses a manifest; checks the format tag, the version and every entry.
    pub fn parse(text: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text).context("manifest is not valid JSON")?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            bail!("not an {FORMAT} manifest (field `format`)");
        }
        match v.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            other => bail!("manifest version {other:?}, this build reads {VERSION}"),
        }
        let info = v
            .get("info")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let cases = v
            .get("cases")
            .and_then(Value::as_array)
            .context("manifest without `cases`")?
            .iter()
            .map(|c| {
                let s = |k: &str| {
                    c.get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .with_context(|| format!("case entry without `{k}`: {c}"))
                };
                Ok(CaseEntry {
                    operator: s("operator")?,
                    case: s("case")?,
                    dir: s("dir")?,
                    params: c
                        .get("params")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let files = v
            .get("files")
            .and_then(Value::as_array)
            .context("manifest without `files`")?
            .iter()
            .map(FileEntry::from_json)
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashMap::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            if let Some(first) = seen.insert(f.path.as_str(), i) {
                bail!(
                    "`files` lists {} twice (entries {first} and {i}): a manifest names each file once",
                    f.path
                );
            }
        }
        Ok(Self { info, cases, files })
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let p = dir.join(MANIFEST);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", p.display()))
    }
}

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of bytes.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A multi-dimensional position `[i][j]...` of flat index `flat` in `shape`.
pub struct Position<'a> {
    /// Shape.
    pub shape: &'a [usize],
    /// Flat (row-major) index.
    pub flat: usize,
}

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut idx = vec![0usize; self.shape.len()];
        let mut rest = self.flat;
        for (k, &d) in self.shape.iter().enumerate().rev() {
            let d = d.max(1);
            idx[k] = rest % d;
            rest /= d;
        }
        for i in idx {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_every_type() {
        let b = le_bytes(&[i16::MIN, -1, 0, i16::MAX]);
        assert_eq!(DType::I16.value_at(&b, 0), i16::MIN as i128);
        assert_eq!(DType::I16.value_at(&b, 1), -1);
        assert_eq!(DType::U16.value_at(&b, 1), 65535);
        let b = le_bytes(&[u64::MAX, 7]);
        assert_eq!(DType::U64.value_at(&b, 0), u64::MAX as i128);
        assert_eq!(DType::I64.value_at(&b, 0), -1);
        assert_eq!(DType::I8.value_at(&[0x80], 0), -128);
        for d in DType::ALL {
            assert_eq!(DType::parse(d.name()), Some(d));
        }
    }

    #[test]
    fn position_is_row_major() {
        let p = Position {
            shape: &[2, 3, 4],
            flat: 23,
        };
        assert_eq!(p.to_string(), "[1][2][3]");
        let p = Position {
            shape: &[5],
            flat: 4,
        };
        assert_eq!(p.to_string(), "[4]");
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn manifest_round_trip() {
        let mut params = Map::new();
        params.insert("rows".into(), json!(16));
        let m = Manifest {
            info: Map::new(),
            cases: vec![CaseEntry {
                operator: "linear".into(),
                case: "a".into(),
                dir: "ops/linear/a".into(),
                params,
            }],
            files: vec![FileEntry {
                path: "ops/linear/a/y.bin".into(),
                operator: "linear".into(),
                case: "a".into(),
                name: "y".into(),
                role: Role::Out,
                dtype: DType::I32,
                bits: 32,
                shape: vec![2, 3],
                layout: "[token][row] Q12".into(),
                bytes: 24,
                sha256: sha256_hex(&[0; 24]),
            }],
        };
        assert_eq!(Manifest::parse(&m.to_json_string()).unwrap(), m);
        let bad = m.to_json_string().replace("\"bytes\":24", "\"bytes\":20");
        assert!(Manifest::parse(&bad).is_err());
        // shapes whose element count overflows are refused, not wrapped (a
        // [2^62 + 8] i32 shape wrapped to 32 bytes before the checked product)
        for (shape, bytes) in [
            ("[4611686018427387912]", "32"),
            ("[1099511627776,1099511627776]", "0"),
        ] {
            let j = m
                .to_json_string()
                .replace("[2,3]", shape)
                .replace("\"bytes\":24", &format!("\"bytes\":{bytes}"));
            let err = Manifest::parse(&j).unwrap_err();
            assert!(format!("{err:#}").contains("overflows"), "{err:#}");
        }
    }
}

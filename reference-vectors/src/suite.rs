//! Writing a vector directory: raw little-endian files, the manifest, the
//! plain-text case index, C headers for small cases and `$readmemh` files for
//! ROM tables (docs/VECTORS.md §2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::manifest::{le_bytes, sha256_hex, CaseEntry, DType, Elem, FileEntry, Manifest, Role};

/// Name of the plain-text case index (one line per case).
pub const INDEX: &str = "index.txt";

/// One tensor of a case, held as little-endian bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Name (the file is `<name>.bin` in the case directory).
    pub name: String,
    /// In or out.
    pub role: Role,
    /// Container type.
    pub dtype: DType,
    /// Significant bits.
    pub bits: u32,
    /// Shape.
    pub shape: Vec<usize>,
    /// Layout description.
    pub layout: String,
    /// Little-endian contents.
    pub bytes: Vec<u8>,
}

impl Tensor {
    /// A tensor of `data` with `shape` (the product must equal `data.len()`);
    /// `bits` defaults to the container width.
    pub fn new<T: Elem>(name: &str, role: Role, data: &[T], shape: &[usize], layout: &str) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor {name}: shape {shape:?} does not match {} elements",
            data.len()
        );
        Self {
            name: name.to_string(),
            role,
            dtype: T::DTYPE,
            bits: 8 * T::DTYPE.size() as u32,
            shape: shape.to_vec(),
            layout: layout.to_string(),
            bytes: le_bytes(data),
        }
    }

    /// Sets the significant bit width.
    pub fn bits(&mut self, bits: u32) -> &mut Self {
        self.bits = bits;
        self
    }

    /// Number of elements.
    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }

    /// Element `i`, widened.
    pub fn value(&self, i: usize) -> i128 {
        self.dtype.value_at(&self.bytes, i)
    }
}

/// A case: operator, name, parameters and tensors.
#[derive(Clone, Debug)]
pub struct Case {
    /// Operator.
    pub operator: String,
    /// Case name.
    pub name: String,
    /// Directory relative to the suite root.
    pub dir: String,
    /// Scalar parameters.
    pub params: Map<String, Value>,
    /// Tensors in order.
    pub tensors: Vec<Tensor>,
}

impl Case {
    /// A kernel operator case, stored in `ops/<operator>/<name>/`.
    pub fn op(operator: &str, name: &str) -> Self {
        Self::at(operator, name, &format!("ops/{operator}/{name}"))
    }

    /// A case stored in `dir`.
    pub fn at(operator: &str, name: &str, dir: &str) -> Self {
        Self {
            operator: operator.to_string(),
            name: name.to_string(),
            dir: dir.to_string(),
            params: Map::new(),
            tensors: Vec::new(),
        }
    }

    /// Adds a scalar parameter.
    pub fn param(&mut self, key: &str, v: impl Into<Value>) -> &mut Self {
        self.params.insert(key.to_string(), v.into());
        self
    }

    /// Adds an input tensor.
    pub fn input<T: Elem>(
        &mut self,
        name: &str,
        data: &[T],
        shape: &[usize],
        layout: &str,
    ) -> &mut Tensor {
        self.tensors
            .push(Tensor::new(name, Role::In, data, shape, layout));
        self.tensors.last_mut().expect("just pushed")
    }

    /// Adds a golden output tensor.
    pub fn output<T: Elem>(
        &mut self,
        name: &str,
        data: &[T],
        shape: &[usize],
        layout: &str,
    ) -> &mut Tensor {
        self.tensors
            .push(Tensor::new(name, Role::Out, data, shape, layout));
        self.tensors.last_mut().expect("just pushed")
    }

    /// Total elements of all tensors.
    pub fn elems(&self) -> usize {
        self.tensors.iter().map(Tensor::elems).sum()
    }
}

/// Counts of what a suite holds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Cases per operator.
    pub cases: BTreeMap<String, usize>,
    /// Raw files.
    pub files: usize,
    /// Raw bytes.
    pub bytes: u64,
    /// C headers written.
    pub headers: usize,
    /// `$readmemh` files written.
    pub hex_files: usize,
}

impl Summary {
    /// Total cases.
    pub fn total_cases(&self) -> usize {
        self.cases.values().sum()
    }
}

/// A vector directory being written.
pub struct Suite {
    root: PathBuf,
    header_max: usize,
    files: Vec<FileEntry>,
    cases: Vec<CaseEntry>,
    index: String,
    headers: Vec<String>,
    summary: Summary,
}

/// Whether `dir` can be written into: absent, or an empty directory.
pub fn prepare_out_dir(dir: &Path) -> Result<()> {
    check_out_dir(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// `dir` can receive a new suite: absent, or an empty directory (not a file).
/// Creates nothing.
pub fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{} is a file, not a directory; give a directory for the output",
            dir.display()
        );
    }
    if dir.exists() {
        let mut it =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if it.next().is_some() {
            bail!(
                "{} is not empty; remove it or choose another directory",
                dir.display()
            );
        }
    }
    Ok(())
}

fn c_ident(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A C literal of `v` for type `d` (the most negative values are written as
/// expressions, as C has no negative literals).
pub fn c_literal(d: DType, v: i128) -> String {
    match d {
        DType::I64 if v == i64::MIN as i128 => "(-INT64_C(9223372036854775807) - 1)".into(),
        DType::I64 => format!("INT64_C({v})"),
        DType::U64 => format!("UINT64_C({v})"),
        DType::I32 if v == i32::MIN as i128 => "(-2147483647 - 1)".into(),
        DType::U32 => format!("{v}u"),
        _ => v.to_string(),
    }
}

impl Suite {
    /// Starts a suite in `root` (absent or empty). Cases with at most
    /// `header_max` elements in total also get a C header.
    pub fn create(root: &Path, header_max: usize) -> Result<Self> {
        prepare_out_dir(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            header_max,
            files: Vec::new(),
            cases: Vec::new(),
            index: String::from(
                "# edgedecoding golden vectors: one line per case\n\
                 # operator case directory key=value ...  (files: <directory>/<tensor>.bin, see manifest.json)\n",
            ),
            headers: Vec::new(),
            summary: Summary::default(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write_file(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        crate::check_interrupt()?;
        let p = self.root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    }

    /// Writes a case: one `.bin` per tensor, its manifest entries, its index
    /// line and, when small, a C header.
    pub fn add(&mut self, case: Case) -> Result<()> {
        if self
            .cases
            .iter()
            .any(|c| c.operator == case.operator && c.case == case.name)
        {
            bail!("duplicate case {}/{}", case.operator, case.name);
        }
        for t in &case.tensors {
            let rel = format!("{}/{}.bin", case.dir, t.name);
            self.write_file(&rel, &t.bytes)?;
            self.summary.files += 1;
            self.summary.bytes += t.bytes.len() as u64;
            self.files.push(FileEntry {
                path: rel,
                operator: case.operator.clone(),
                case: case.name.clone(),
                name: t.name.clone(),
                role: t.role,
                dtype: t.dtype,
                bits: t.bits,
                shape: t.shape.clone(),
                layout: t.layout.clone(),
                bytes: t.bytes.len() as u64,
                sha256: sha256_hex(&t.bytes),
            });
        }
        let mut line = format!("{} {} {}", case.operator, case.name, case.dir);
        for (k, v) in &case.params {
            match v {
                Value::String(s) => write!(line, " {k}={s}")?,
                other => write!(line, " {k}={other}")?,
            }
        }
        self.index.push_str(&line);
        self.index.push('\n');
        if case.elems() <= self.header_max {
            self.write_header(&case)?;
        }
        *self.summary.cases.entry(case.operator.clone()).or_default() += 1;
        self.cases.push(CaseEntry {
            operator: case.operator,
            case: case.name,
            dir: case.dir,
            params: case.params,
        });
        Ok(())
    }

    fn write_header(&mut self, case: &Case) -> Result<()> {
        let id = c_ident(&format!("{}_{}", case.operator, case.name));
        let up = id.to_uppercase();
        let mut h = String::new();
        writeln!(
            h,
            "/* Generated by `edgedecoding vectors` (docs/VECTORS.md); do not edit.\n   \
             Operator {}, case {}; the same values as {}/<tensor>.bin. */",
            case.operator, case.name, case.dir
        )?;
        writeln!(
            h,
            "#ifndef EDV_{up}_H\n#define EDV_{up}_H\n\n#include <stdint.h>\n"
        )?;
        for (k, v) in &case.params {
            let k = c_ident(k).to_uppercase();
            match v {
                Value::String(s) => writeln!(h, "#define EDV_{up}_{k} \"{s}\"")?,
                Value::Bool(b) => writeln!(h, "#define EDV_{up}_{k} {}", u8::from(*b))?,
                other => writeln!(h, "#define EDV_{up}_{k} {other}")?,
            }
        }
        for t in &case.tensors {
            let n = t.elems();
            writeln!(
                h,
                "\n/* {} {}: {} {:?} ({} bits), {} */",
                t.role.name(),
                t.name,
                t.dtype.c_type(),
                t.shape,
                t.bits,
                t.layout
            )?;
            writeln!(
                h,
                "static const {} edv_{id}_{}[{}] = {{",
                t.dtype.c_type(),
                c_ident(&t.name),
                n.max(1)
            )?;
            let mut line = String::from("   ");
            for i in 0..n {
                let lit = c_literal(t.dtype, t.value(i));
                if line.len() + lit.len() + 2 > 100 {
                    writeln!(h, "{line}")?;
                    line = String::from("   ");
                }
                write!(line, " {lit},")?;
            }
            if n == 0 {
                line.push_str(" 0");
            }
            writeln!(h, "{line}\n}};")?;
        }
        writeln!(h, "\n#endif /* EDV_{up}_H */")?;
        let rel = format!(
            "include/{}/{}.h",
            c_ident(&case.operator),
            c_ident(&case.name)
        );
        self.write_file(&rel, h.as_bytes())?;
        self.headers.push(rel);
        self.summary.headers += 1;
        Ok(())
    }

    /// Writes a ROM table: the raw file (a case of operator `rom`) and a
    /// `$readmemh` file with one `digits`-hex-digit word per line (two's
    /// complement for signed values).
    pub fn add_rom(&mut self, case: Case, comment: &str) -> Result<()> {
        let t = case
            .tensors
            .first()
            .context("a ROM case holds one tensor")?
            .clone();
        let digits = t.bits.div_ceil(4) as usize;
        let mask: i128 = (1i128 << (4 * digits)) - 1;
        let mut s = String::new();
        for line in comment.lines() {
            writeln!(s, "// {line}")?;
        }
        for i in 0..t.elems() {
            writeln!(s, "{:0digits$x}", t.value(i) & mask)?;
        }
        let rel = format!("{}/{}.hex", case.dir, t.name);
        self.write_file(&rel, s.as_bytes())?;
        self.summary.hex_files += 1;
        self.add(case)
    }

    /// Writes the manifest, the index and the umbrella header; returns counts.
    pub fn finish(mut self, info: Map<String, Value>) -> Result<Summary> {
        let m = Manifest {
            info,
            cases: std::mem::take(&mut self.cases),
            files: std::mem::take(&mut self.files),
        };
        self.write_file(crate::manifest::MANIFEST, m.to_json_string().as_bytes())?;
        self.write_file(INDEX, self.index.as_bytes())?;
        let mut all = String::from(
            "/* Generated by `edgedecoding vectors`: every small case's header. */\n\
             #ifndef EDV_ALL_H\n#define EDV_ALL_H\n",
        );
        for h in &self.headers {
            let rel = h.strip_prefix("include/").unwrap_or(h);
            writeln!(all, "#include \"{rel}\"")?;
        }
        all.push_str("#endif\n");
        self.write_file("include/all_cases.h", all.as_bytes())?;
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_literals_of_extremes() {
        assert_eq!(
            c_literal(DType::I64, i64::MIN as i128),
            "(-INT64_C(9223372036854775807) - 1)"
        );
        assert_eq!(c_literal(DType::I32, i32::MIN as i128), "(-2147483647 - 1)");
        assert_eq!(c_literal(DType::U32, 7), "7u");
        assert_eq!(c_literal(DType::I8, -128), "-128");
    }
}

//! `edgedecoding verify`: compares a device's output files with the golden
//! ones, entry by entry of the golden manifest (role `out`).

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::manifest::{sha256_hex, FileEntry, Manifest, Position, Role};

/// Options of [`verify`].
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Check only entries whose operator equals one of these or whose path
    /// starts with one of these (empty: every `out` entry).
    pub only: Vec<String>,
    /// Mismatches listed per file.
    pub max_report: usize,
    /// Also list the files that match.
    pub verbose: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            only: Vec::new(),
            max_report: 10,
            verbose: false,
        }
    }
}

/// One differing element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Flat (row-major) element index.
    pub flat: usize,
    /// Golden value.
    pub expected: i128,
    /// Device value.
    pub got: i128,
}

/// Outcome for one golden output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Identical bytes.
    Match,
    /// No such file in the device directory.
    Missing,
    /// The device file has the wrong length.
    WrongSize {
        /// Bytes the golden file has.
        expected: u64,
        /// Bytes the device file has.
        got: u64,
    },
    /// The device path exists but is not a readable file (a directory, no
    /// permission): a failure of this file, not of the whole run.
    Unreadable {
        /// Why (the I/O error).
        reason: String,
    },
    /// Same length, different values.
    Differ {
        /// Number of differing elements.
        count: usize,
        /// The first differing elements (at most `max_report`).
        first: Vec<Mismatch>,
    },
}

/// Result for one file.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// The golden manifest entry.
    pub entry: FileEntry,
    /// What was found.
    pub outcome: Outcome,
}

/// The whole comparison.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// One per golden output file checked, in manifest order.
    pub files: Vec<FileReport>,
    /// Whether matching files are listed by `Display`.
    pub verbose: bool,
    /// Files in the device directory that are no golden output of the suite
    /// (relative paths, sorted): reported, not compared, not a failure.
    pub extra: Vec<String>,
}

impl VerifyReport {
    /// True when every checked file matches.
    pub fn passed(&self) -> bool {
        self.files.iter().all(|f| f.outcome == Outcome::Match)
    }

    /// (matching, differing, missing or unreadable, wrong size).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for f in &self.files {
            match f.outcome {
                Outcome::Match => c.0 += 1,
                Outcome::Differ { .. } => c.1 += 1,
                Outcome::Missing | Outcome::Unreadable { .. } => c.2 += 1,
                Outcome::WrongSize { .. } => c.3 += 1,
            }
        }
        c
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.files {
            let e = &r.entry;
            let what = format!("{} {:?}, {}", e.dtype.name(), e.shape, e.layout);
            match &r.outcome {
                Outcome::Match => {
                    if self.verbose {
                        writeln!(f, "ok        {} ({} values)", e.path, e.elems())?;
                    }
                }
                Outcome::Missing => writeln!(
                    f,
                    "MISSING   {}: no such file in the device directory ({what})",
                    e.path
                )?,
                Outcome::Unreadable { reason } => writeln!(
                    f,
                    "UNREADABLE {}: not a readable file in the device directory: {reason}",
                    e.path
                )?,
                Outcome::WrongSize { expected, got } => writeln!(
                    f,
                    "SIZE      {}: expected {expected} bytes ({} values of {}), got {got} bytes",
                    e.path,
                    e.elems(),
                    e.dtype.name()
                )?,
                Outcome::Differ { count, first } => {
                    writeln!(
                        f,
                        "MISMATCH  {}: {count} of {} values differ ({what})",
                        e.path,
                        e.elems()
                    )?;
                    for m in first {
                        writeln!(
                            f,
                            "          flat index {} at {}: expected {}, got {}",
                            m.flat,
                            Position {
                                shape: &e.shape,
                                flat: m.flat
                            },
                            m.expected,
                            m.got
                        )?;
                    }
                    if *count > first.len() {
                        writeln!(f, "          ... and {} more", count - first.len())?;
                    }
                }
            }
        }
        for x in self.extra.iter().take(20) {
            writeln!(
                f,
                "EXTRA     {x}: not a golden output of this suite (ignored)"
            )?;
        }
        if self.extra.len() > 20 {
            writeln!(
                f,
                "          ... and {} more extra files",
                self.extra.len() - 20
            )?;
        }
        let (ok, differ, missing, size) = self.counts();
        write!(
            f,
            "verify: {} files checked: {ok} match, {differ} differ, {missing} missing, {size} wrong size",
            self.files.len(),
        )?;
        if !self.extra.is_empty() {
            write!(f, ", {} extra files ignored", self.extra.len())?;
        }
        write!(f, " -> {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// Compares the device directory `dut` with the golden suite `golden`: every
/// golden `out` file (restricted by `only`) must exist in `dut` at the same
/// relative path with identical bytes. Golden files are checked against their
/// SHA-256 first; a corrupt golden directory is an error, not a mismatch.
pub fn verify(golden: &Path, dut: &Path, o: &VerifyOptions) -> Result<VerifyReport> {
    let m = Manifest::read(golden)?;
    if !dut.is_dir() {
        bail!("device directory {} does not exist", dut.display());
    }
    let sel: Vec<&FileEntry> = m
        .files
        .iter()
        .filter(|e| e.role == Role::Out)
        .filter(|e| {
            o.only.is_empty()
                || o.only
                    .iter()
                    .any(|s| e.operator == *s || e.path.starts_with(s.as_str()))
        })
        .collect();
    if sel.is_empty() {
        bail!(
            "no golden output matches {:?} (operators in this suite: {})",
            o.only,
            operators(&m).join(", ")
        );
    }
    let mut files = Vec::with_capacity(sel.len());
    for e in sel {
        let gp = golden.join(&e.path);
        let g = std::fs::read(&gp)
            .with_context(|| format!("golden file {} (listed in the manifest)", gp.display()))?;
        if g.len() as u64 != e.bytes || sha256_hex(&g) != e.sha256 {
            bail!("golden file {} does not match its manifest entry (length or SHA-256): the golden directory is corrupt", gp.display());
        }
        let dp = dut.join(&e.path);
        let outcome = match std::fs::read(&dp) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Outcome::Missing,
            Err(err) => Outcome::Unreadable {
                reason: if dp.is_dir() {
                    "a directory".to_string()
                } else {
                    err.to_string()
                },
            },
            Ok(d) if d.len() != g.len() => Outcome::WrongSize {
                expected: g.len() as u64,
                got: d.len() as u64,
            },
            Ok(d) if d == g => Outcome::Match,
            Ok(d) => {
                let mut count = 0;
                let mut first = Vec::new();
                for i in 0..e.elems() {
                    let (a, b) = (e.dtype.value_at(&g, i), e.dtype.value_at(&d, i));
                    if a != b {
                        count += 1;
                        if first.len() < o.max_report {
                            first.push(Mismatch {
                                flat: i,
                                expected: a,
                                got: b,
                            });
                        }
                    }
                }
                Outcome::Differ { count, first }
            }
        };
        files.push(FileReport {
            entry: e.clone(),
            outcome,
        });
    }
    let outputs: std::collections::HashSet<&str> = m
        .files
        .iter()
        .filter(|e| e.role == Role::Out)
        .map(|e| e.path.as_str())
        .collect();
    let mut extra = Vec::new();
    list_files(dut, "", &mut extra)?;
    extra.retain(|p| !outputs.contains(p.as_str()));
    extra.sort();
    Ok(VerifyReport {
        files,
        verbose: o.verbose,
        extra,
    })
}

/// Every regular file under `dir`, as `prefix`-relative paths with `/`.
/// Symbolic links are not followed.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for ent in rd {
        let ent = ent.with_context(|| format!("listing {}", dir.display()))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let ty = ent
            .file_type()
            .with_context(|| format!("listing {}", dir.display()))?;
        if ty.is_dir() {
            list_files(&ent.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

fn operators(m: &Manifest) -> Vec<String> {
    let mut v: Vec<String> = m
        .files
        .iter()
        .filter(|e| e.role == Role::Out)
        .map(|e| e.operator.clone())
        .collect();
    v.dedup();
    v.sort();
    v.dedup();
    v
}

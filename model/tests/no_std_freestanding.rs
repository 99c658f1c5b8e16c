//! std == freestanding.
//!
//! Computes the self-test hash in this ordinary `std` process, builds
//! `no_std-check/` (its own workspace: `#![no_std]`, `#![no_main]`, own
//! `_start`, raw system calls, no libc, no C runtime) with that hash as
//! `EDGEDECODING_EXPECTED_HASH`, runs it, and checks that it agrees and exits 0.
//! Then reads the executable's ELF headers to show it is fully static and links
//! no C library.
//!
//! The inner build uses its own target directory (`no_std-check/target`), so it
//! does not wait on the lock of the outer build.

use std::path::{Path, PathBuf};
use std::process::Command;

use edgedecoding_kernels::selftest;

/// The workloads of the freestanding binary, computed here with `std`: the
/// same functions in the same order as `WORKLOADS` in
/// `no_std-check/src/main.rs`. Adding a workload there means adding it here.
fn std_workloads() -> Vec<(&'static str, u64)> {
    vec![
        ("kernels", selftest::workload_hash()),
        ("model", edgedecoding_model::selftest::workload_hash()),
    ]
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("model/ has a parent directory")
        .to_path_buf()
}

#[test]
fn freestanding_binary_computes_the_std_hash() {
    let workloads = std_workloads();
    let hashes: Vec<u64> = workloads.iter().map(|&(_, h)| h).collect();
    let combined = selftest::combine(&hashes);

    let root = repo_root();
    let check_dir = root.join("no_std-check");
    let target_dir = check_dir.join("target");
    let exe = build_freestanding(&check_dir, &target_dir, combined);

    // --- run it -----------------------------------------------------------
    let run = Command::new(&exe)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let report = format!(
        "freestanding binary {}\n  exit status: {}\n  stdout:\n{}\n  stderr:\n{}\n  \
         std hashes: {}\n  std combined: hash=0x{combined:016x}",
        exe.display(),
        run.status,
        indent(&stdout),
        indent(&stderr),
        workloads
            .iter()
            .map(|(n, h)| format!("{n}-hash=0x{h:016x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "the freestanding binary did not exit 0 (1 = hash mismatch, 3 = no expected \
         hash compiled in, 101 = panic)\n{report}"
    );
    for (name, h) in &workloads {
        let want = format!("{name}-hash=0x{h:016x}");
        assert!(
            stdout.lines().any(|l| l.trim() == want),
            "stdout lacks `{want}` (the std value)\n{report}"
        );
    }
    let want = format!("hash=0x{combined:016x}");
    assert!(
        stdout.lines().any(|l| l.trim() == want),
        "stdout lacks `{want}` (the std value)\n{report}"
    );

    // --- it links no C library ---------------------------------------------
    let bytes =
        std::fs::read(&exe).unwrap_or_else(|e| panic!("cannot read {}: {e}", exe.display()));
    let mut failures = elf_failures(&bytes);
    for needle in ["GLIBC", "libc.so", "ld-linux"] {
        if find(&bytes, needle.as_bytes()).is_some() {
            failures.push(format!(
                "the file contains the string {needle:?}: something from the C library got linked"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} is not a freestanding static executable:\n  - {}",
        exe.display(),
        failures.join("\n  - ")
    );
    eprintln!(
        "ok: {} ({} bytes) printed {want}, exit 0, static ELF64 without PT_INTERP/PT_DYNAMIC",
        exe.display(),
        bytes.len()
    );

    check_lockfiles_agree(&root);
}

/// The ELF checks can fail: this test executable is an ordinary dynamically
/// linked program (glibc, `ld-linux`), which they must reject.
#[test]
fn elf_checks_reject_an_ordinary_std_executable() {
    let me = std::env::current_exe().expect("path of the test executable");
    let bytes = std::fs::read(&me).expect("read the test executable");
    let failures = elf_failures(&bytes);
    assert!(
        !failures.is_empty(),
        "{} passed the freestanding checks although it links the C library",
        me.display()
    );
}

/// `cargo build --release` of `no_std-check` with the expected hash; returns
/// the executable's path.
fn build_freestanding(check_dir: &Path, target_dir: &Path, expected: u64) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(check_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(check_dir)
        .env("EDGEDECODING_EXPECTED_HASH", format!("0x{expected:016x}"));
    // The freestanding build must be the plain one: flags meant for the outer
    // build (coverage instrumentation, sanitizers, another target, profile
    // overrides) would change or break how it links.
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let drop = matches!(
            k,
            "RUSTFLAGS"
                | "CARGO_ENCODED_RUSTFLAGS"
                | "CARGO_BUILD_RUSTFLAGS"
                | "CARGO_BUILD_TARGET"
                | "CARGO_TARGET_DIR"
                | "CARGO_BUILD_TARGET_DIR"
        ) || k.starts_with("CARGO_PROFILE_")
            || (k.starts_with("CARGO_TARGET_") && k.ends_with("_RUSTFLAGS"));
        if drop {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", env!("CARGO")));
    assert!(
        out.status.success(),
        "building the freestanding check failed ({}): {:?}\n  stdout:\n{}\n  stderr:\n{}",
        out.status,
        cmd,
        indent(&String::from_utf8_lossy(&out.stdout)),
        indent(&String::from_utf8_lossy(&out.stderr)),
    );
    let exe = target_dir.join("release").join("edgedecoding-no-std-check");
    assert!(
        exe.is_file(),
        "cargo reported success but {} does not exist",
        exe.display()
    );
    exe
}

fn indent(s: &str) -> String {
    if s.trim().is_empty() {
        return "    (empty)".to_string();
    }
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// A minimal ELF64 little-endian reader: just enough to list program headers,
// section types and symbols. Every read is bounds-checked.

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;

struct Elf<'a>(&'a [u8]);

impl Elf<'_> {
    fn bytes<const N: usize>(&self, off: u64) -> Result<[u8; N], String> {
        let start = usize::try_from(off).map_err(|_| format!("offset {off:#x} too large"))?;
        self.0
            .get(start..start.saturating_add(N))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("read of {N} bytes at {off:#x} is past the end of the file"))
    }
    fn u16(&self, off: u64) -> Result<u16, String> {
        self.bytes(off).map(u16::from_le_bytes)
    }
    fn u32(&self, off: u64) -> Result<u32, String> {
        self.bytes(off).map(u32::from_le_bytes)
    }
    fn u64(&self, off: u64) -> Result<u64, String> {
        self.bytes(off).map(u64::from_le_bytes)
    }
    fn cstr(&self, off: u64) -> Result<&str, String> {
        let start = usize::try_from(off).map_err(|_| format!("offset {off:#x} too large"))?;
        let tail = self
            .0
            .get(start..)
            .ok_or_else(|| format!("string at {off:#x} is past the end"))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        std::str::from_utf8(&tail[..end]).map_err(|_| "symbol name is not UTF-8".to_string())
    }
}

/// Everything that keeps the file from being a static, interpreter-free,
/// self-started x86_64 executable (empty if it is one).
fn elf_failures(bytes: &[u8]) -> Vec<String> {
    match elf_failures_inner(bytes) {
        Ok(f) => f,
        Err(e) => vec![format!("malformed ELF: {e}")],
    }
}

fn elf_failures_inner(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut fail = Vec::new();
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Ok(vec!["not an ELF file (bad magic)".into()]);
    }
    if bytes[4] != 2 {
        fail.push(format!("EI_CLASS is {}, not 2 (ELF64)", bytes[4]));
        return Ok(fail);
    }
    if bytes[5] != 1 {
        fail.push(format!("EI_DATA is {}, not 1 (little endian)", bytes[5]));
        return Ok(fail);
    }
    let elf = Elf(bytes);
    let e_type = elf.u16(0x10)?;
    let e_machine = elf.u16(0x12)?;
    let e_entry = elf.u64(0x18)?;
    let e_phoff = elf.u64(0x20)?;
    let e_shoff = elf.u64(0x28)?;
    let e_phentsize = u64::from(elf.u16(0x36)?);
    let e_phnum = u64::from(elf.u16(0x38)?);
    let e_shentsize = u64::from(elf.u16(0x3a)?);
    let e_shnum = u64::from(elf.u16(0x3c)?);
    if e_machine != EM_X86_64 {
        fail.push(format!("e_machine is {e_machine}, not 62 (x86_64)"));
    }
    if e_type != ET_EXEC {
        fail.push(format!(
            "e_type is {e_type}, not 2 (ET_EXEC): a position-independent executable needs \
             a loader or self-relocation"
        ));
    }
    if e_phnum == 0 {
        fail.push("no program headers".into());
    }
    for i in 0..e_phnum {
        let p_type = elf.u32(e_phoff + i * e_phentsize)?;
        match p_type {
            PT_INTERP => fail.push(format!(
                "program header {i} is PT_INTERP: the kernel would start a dynamic loader"
            )),
            PT_DYNAMIC => fail.push(format!(
                "program header {i} is PT_DYNAMIC: the file is dynamically linked"
            )),
            _ => {}
        }
    }
    // sections (optional in an executable, but present unless stripped hard)
    let mut symtab = None;
    for i in 0..e_shnum {
        let sh = e_shoff + i * e_shentsize;
        match elf.u32(sh + 4)? {
            SHT_DYNAMIC => fail.push(format!("section {i} is SHT_DYNAMIC")),
            SHT_DYNSYM => fail.push(format!(
                "section {i} is SHT_DYNSYM (dynamic symbols to import)"
            )),
            SHT_SYMTAB => symtab = Some(sh),
            _ => {}
        }
    }
    // the entry point is our `_start`, and no symbol is left undefined
    match symtab {
        None => eprintln!(
            "note: no .symtab (stripped); entry-point and undefined-symbol checks skipped"
        ),
        Some(sh) => {
            let off = elf.u64(sh + 24)?;
            let size = elf.u64(sh + 32)?;
            let link = u64::from(elf.u32(sh + 40)?);
            let strtab = elf.u64(e_shoff + link * e_shentsize + 24)?;
            let mut start = None;
            let mut undefined = Vec::new();
            for k in 1..size / 24 {
                let sym = off + k * 24;
                let name = elf.cstr(strtab + u64::from(elf.u32(sym)?))?;
                let shndx = elf.u16(sym + 6)?;
                if shndx == 0 && !name.is_empty() {
                    undefined.push(name.to_string());
                }
                if name == "_start" {
                    start = Some(elf.u64(sym + 8)?);
                }
            }
            match start {
                None => fail.push("no `_start` symbol".into()),
                Some(s) if s != e_entry => fail.push(format!(
                    "entry point {e_entry:#x} is not `_start` ({s:#x}): a C runtime start file?"
                )),
                Some(_) => {}
            }
            if !undefined.is_empty() {
                fail.push(format!("undefined symbols: {}", undefined.join(", ")));
            }
        }
    }
    Ok(fail)
}

// ---------------------------------------------------------------------------

/// `no_std-check` has its own `Cargo.lock`. The proof is only about the same
/// source if both builds compile the same versions of the shared dependencies
/// (`libm` computes the RoPE table and the float quantizer).
fn check_lockfiles_agree(root: &Path) {
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
    };
    let outer = lock_packages(&read(root.join("Cargo.lock")));
    let inner = lock_packages(&read(root.join("no_std-check").join("Cargo.lock")));
    let mut drift = Vec::new();
    for (name, version) in &inner {
        let outer_versions: Vec<&str> = outer
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        if !outer_versions.is_empty() && !outer_versions.contains(&version.as_str()) {
            drift.push(format!(
                "{name}: no_std-check/Cargo.lock has {version}, the workspace has {} (fix: \
                 cargo update --manifest-path no_std-check/Cargo.toml -p {name} --precise {})",
                outer_versions.join(", "),
                outer_versions[0],
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "the freestanding build compiled other dependency versions than the std build:\n  - {}",
        drift.join("\n  - ")
    );
}

/// `(name, version)` of every `[[package]]` of a `Cargo.lock`.
fn lock_packages(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                out.push((n, v.trim_matches('"').to_string()));
            }
        }
    }
    out
}

//! std == freestanding.
//!
//! Computes the self-test hash in this ordinary `std` process, builds
//! `no_std-check/` (its own workspace: `#![no_std]`, `#![no_main]`, own
//! `_start`, raw system calls, no libc, no C runtime) with that hash as
//! `EDGEDECODING_EXPECTED_HASH`, runs it, and checks that it agrees and exits 0.
//! Then reads the executable's ELF headers to show it is fully static and links
//! no C library.
//!
//! A second test disassembles the executable and fails if any floating-point
//! arithmetic, comparison or conversion instruction is in it (SPEC §6.1: the run
//! time is integer-only, the RoPE table is a ROM read from the model file).
//!
//! The inner build uses its own target directory (`no_std-check/target`), so it
//! does not wait on the lock of the outer build; both tests share one build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// Known answers, pinned (RustCrypto style): the std build's workload hashes
/// must not drift silently — a change here is a change of the kernels' or the
/// decoder's bits (or of the self-test itself) and must be explained. (The
/// kernels' value changed once on purpose: `out_frac` became unsigned, so the
/// self-test's `linear(.., out_frac = -1, ..)` error case could no longer be
/// written and was dropped.)
#[test]
fn selftest_hashes_are_pinned() {
    let w = std_workloads();
    assert_eq!(w[0], ("kernels", 0xafae_9d4f_a10c_4c3f));
    assert_eq!(w[1], ("model", 0x90f2_d18f_18b1_c9b0));
    assert_eq!(selftest::combine(&[w[0].1, w[1].1]), 0xee17_354c_7e95_3c7e);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("model/ has a parent directory")
        .to_path_buf()
}

/// The std workloads, their combination, and the freestanding executable built
/// with that combination as its expected hash (built once per test process).
struct Built {
    workloads: Vec<(&'static str, u64)>,
    combined: u64,
    exe: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workloads = std_workloads();
        let hashes: Vec<u64> = workloads.iter().map(|&(_, h)| h).collect();
        let combined = selftest::combine(&hashes);
        let check_dir = repo_root().join("no_std-check");
        let target_dir = check_dir.join("target");
        let exe = build_freestanding(&check_dir, &target_dir, combined);
        Built {
            workloads,
            combined,
            exe,
        }
    })
}

#[test]
fn freestanding_binary_computes_the_std_hash() {
    let Built {
        workloads,
        combined,
        exe,
    } = built();
    let (combined, root) = (*combined, repo_root());

    // --- run it -----------------------------------------------------------
    let run = Command::new(exe)
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
    for (name, h) in workloads {
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
    let bytes = std::fs::read(exe).unwrap_or_else(|e| panic!("cannot read {}: {e}", exe.display()));
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

/// Issue 15, SPEC §6.1: the decoder's run time does no floating-point
/// arithmetic. The freestanding executable holds the kernels' self-test and
/// the model's workload (load a model file, prefill, decode, parity decode): its
/// whole code — a superset of what the decoder's entry points reach — must
/// contain no x87, SSE or AVX floating-point arithmetic, comparison or
/// conversion instruction. (Integer SIMD, moves, shuffles and bit logic on
/// xmm registers are allowed: they are not floating point.)
#[test]
fn freestanding_binary_has_no_floating_point_instructions() {
    let exe = &built().exe;
    let objdump = find_objdump();
    let listing = disassemble(&objdump, exe);
    let funcs = listing.iter().filter(|l| l.is_function_start()).count();
    let insns = listing.len() - funcs;
    // the decoder is really in there (a listing of something else proves nothing)
    let symbols: Vec<&str> = listing
        .iter()
        .filter(|l| l.is_function_start())
        .map(|l| l.func.as_str())
        .collect();
    for want in ["_start", "edgedecoding_model::", "edgedecoding_kernels::"] {
        assert!(
            symbols.iter().any(|s| s.contains(want)),
            "{} has no function named like {want:?}: is this the freestanding check?",
            exe.display()
        );
    }
    assert!(insns > 10_000, "only {insns} instructions disassembled");
    // and no float library in the no_std dependency graph (its own lock file
    // lists exactly the packages the freestanding build resolves)
    let lock = repo_root().join("no_std-check").join("Cargo.lock");
    let text = std::fs::read_to_string(&lock)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lock.display()));
    let packages = lock_packages(&text);
    assert!(
        !packages.iter().any(|(n, _)| n == "libm"),
        "{} lists libm: the no_std build of kernels/model must not depend on it \
         (keep it behind the kernels' `offline` feature and the model's `std`)",
        lock.display()
    );

    let hits: Vec<&Insn> = listing
        .iter()
        .filter(|l| is_float_insn(&l.mnemonic, &l.operands))
        .collect();
    if !hits.is_empty() {
        let mut by_func: Vec<(&str, Vec<&Insn>)> = Vec::new();
        for h in &hits {
            match by_func.iter_mut().find(|(f, _)| *f == h.func) {
                Some((_, v)) => v.push(h),
                None => by_func.push((&h.func, vec![h])),
            }
        }
        by_func.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let mut mnems: Vec<(&str, usize)> = Vec::new();
        for h in &hits {
            match mnems.iter_mut().find(|(m, _)| *m == h.mnemonic) {
                Some((_, n)) => *n += 1,
                None => mnems.push((&h.mnemonic, 1)),
            }
        }
        mnems.sort_by_key(|&(m, n)| (std::cmp::Reverse(n), m));
        let mut report = String::new();
        for (f, v) in &by_func {
            report.push_str(&format!("\n  {:4} in {f}", v.len()));
            for h in v.iter().take(3) {
                report.push_str(&format!("\n         {}", h.text));
            }
        }
        panic!(
            "{} floating-point instructions in {} ({} functions, {insns} instructions \
             disassembled by {}), the run time must be integer-only (SPEC §6.1):\n  by \
             mnemonic: {}\n  by function (first 3 of each):{report}",
            hits.len(),
            exe.display(),
            by_func.len(),
            objdump.display(),
            mnems
                .iter()
                .map(|(m, n)| format!("{m} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    eprintln!(
        "ok: {insns} instructions in {funcs} functions of {}, none floating point",
        exe.display()
    );
}

/// The classifier on instructions as GNU objdump and llvm-objdump print them.
#[test]
fn float_classifier_knows_float_from_integer() {
    let float = [
        ("addsd", "%xmm1,%xmm0"),
        ("mulsd", "0x8(%rsp),%xmm2"),
        ("vmulpd", "%ymm1,%ymm2,%ymm3"),
        ("sqrtsd", "%xmm0,%xmm0"),
        ("divss", "%xmm1,%xmm0"),
        ("maxsd", "%xmm1,%xmm0"),
        ("ucomisd", "%xmm1,%xmm0"),
        ("vcomiss", "%xmm1,%xmm0"),
        ("cmpltsd", "%xmm1,%xmm0"),
        ("vcmpps", "$0x1,%zmm1,%zmm2,%k1"),
        ("cvtsi2sd", "%rax,%xmm0"),
        ("cvtsi2sdl", "(%rdi),%xmm0"),
        ("cvttsd2si", "%xmm0,%rax"),
        ("vcvtdq2ps", "%ymm0,%ymm1"),
        ("vfmadd231sd", "%xmm2,%xmm1,%xmm0"),
        ("vfnmsub132ps", "%zmm2,%zmm1,%zmm0"),
        ("roundsd", "$0x4,%xmm1,%xmm0"),
        ("vrndscalesd", "$0x4,%xmm1,%xmm0,%xmm0"),
        ("vscalefsd", "%xmm1,%xmm0,%xmm0"),
        ("fadd", "%st(1),%st"),
        ("faddp", "%st,%st(1)"),
        ("fldt", "0x10(%rsp)"),
        ("fildll", "(%rax)"),
        ("fistpll", "(%rax)"),
        ("fmull", "0x8(%rsp)"),
        ("fsqrt", ""),
        ("fxch", "%st(1)"),
        ("fnstcw", "(%rsp)"),
    ];
    let integer = [
        ("vpmaddwd", "%zmm1,%zmm2,%zmm3"),
        ("vpdpbusd", "%zmm1,%zmm2,%zmm3"),
        ("vpdpwssd", "%zmm1,%zmm2,%zmm3"),
        ("vpminsd", "%ymm1,%ymm2,%ymm3"),
        ("pmaxsd", "%xmm1,%xmm0"),
        ("paddd", "%xmm1,%xmm0"),
        ("pxor", "%xmm0,%xmm0"),
        ("xorps", "%xmm0,%xmm0"),
        ("movaps", "%xmm0,(%rsp)"),
        ("movups", "(%rsi),%xmm0"),
        ("movsd", "(%rsi),%xmm0"),
        ("movq", "%xmm0,%rax"),
        ("shufps", "$0x88,%xmm1,%xmm0"),
        ("pshufd", "$0x4e,%xmm0,%xmm1"),
        ("cmpsb", "%es:(%rdi),%ds:(%rsi)"),
        ("movsl", "%ds:(%rsi),%es:(%rdi)"),
        ("cqto", ""),
        ("cltq", ""),
        ("imul", "%rcx,%rax"),
        ("addsd", "%rax,%rbx"), // not a real instruction: no xmm operand
    ];
    for (m, o) in float {
        assert!(
            is_float_insn(m, o),
            "{m} {o} should count as floating point"
        );
    }
    for (m, o) in integer {
        assert!(!is_float_insn(m, o), "{m} {o} is not floating point");
    }
    let l = parse_listing(
        "\n0000000000401000 <_start>:\n  401000:\txor    %ebp,%ebp\n  401002:\trep stos %al,%es:(%rdi)\n\n\
         0000000000401010 <f>:\n  401010: \tcvtsi2sdq\t%rax, %xmm0\n",
    );
    let insns: Vec<(&str, &str, &str)> = l
        .iter()
        .filter(|i| !i.is_function_start())
        .map(|i| (i.func.as_str(), i.mnemonic.as_str(), i.operands.as_str()))
        .collect();
    assert_eq!(
        insns,
        [
            ("_start", "xor", "%ebp,%ebp"),
            ("_start", "stos", "%al,%es:(%rdi)"),
            ("f", "cvtsi2sdq", "%rax, %xmm0"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Disassembly: objdump's text listing, parsed just enough to name each
// instruction's function, mnemonic and operands.

/// An objdump that runs: `$OBJDUMP`, `objdump` or `llvm-objdump` on the PATH,
/// or the `llvm-objdump` of rustup's `llvm-tools` component. Fails the test
/// with instructions if there is none.
fn find_objdump() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("OBJDUMP").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    candidates.push("objdump".into());
    candidates.push("llvm-objdump".into());
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    if let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Ok(dirs) = std::fs::read_dir(sysroot.join("lib").join("rustlib")) {
            for d in dirs.flatten() {
                candidates.push(d.path().join("bin").join("llvm-objdump"));
            }
        }
    }
    for c in &candidates {
        let ok = Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return c.clone();
        }
    }
    panic!(
        "no disassembler found (tried {}): this test needs objdump to inspect the \
         freestanding executable. Install GNU binutils (`apt-get install binutils`) or \
         LLVM's (`rustup component add llvm-tools`), or set OBJDUMP=/path/to/objdump",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// One line of the listing: an instruction, or (empty mnemonic) the start of
/// a function.
struct Insn {
    func: String,
    mnemonic: String,
    operands: String,
    text: String,
}

impl Insn {
    fn is_function_start(&self) -> bool {
        self.mnemonic.is_empty()
    }
}

/// `objdump -d` of every executable section, AT&T syntax, demangled names.
fn disassemble(objdump: &Path, exe: &Path) -> Vec<Insn> {
    let out = Command::new(objdump)
        .args(["-d", "--no-show-raw-insn", "--demangle"])
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", objdump.display()));
    assert!(
        out.status.success(),
        "{} -d {} failed ({}):\n{}",
        objdump.display(),
        exe.display(),
        out.status,
        indent(&String::from_utf8_lossy(&out.stderr))
    );
    parse_listing(&String::from_utf8_lossy(&out.stdout))
}

/// Instruction prefixes objdump may print before the mnemonic.
const PREFIXES: [&str; 22] = [
    "lock", "rep", "repz", "repnz", "repe", "repne", "data16", "data32", "addr32", "cs", "ds",
    "es", "fs", "gs", "ss", "notrack", "bnd", "xacquire", "xrelease", "{vex}", "{vex3}", "{evex}",
];

fn parse_listing(text: &str) -> Vec<Insn> {
    let mut out = Vec::new();
    let mut func = String::new();
    for line in text.lines() {
        // "0000000000401000 <_start>:" starts a function
        if let Some(rest) = line.strip_suffix(">:") {
            if let Some((addr, name)) = rest.split_once(" <") {
                if !addr.is_empty() && addr.chars().all(|c| c.is_ascii_hexdigit()) {
                    func = name.to_string();
                    out.push(Insn {
                        func: func.clone(),
                        mnemonic: String::new(),
                        operands: String::new(),
                        text: line.to_string(),
                    });
                    continue;
                }
            }
        }
        // "  401000:\txor    %ebp,%ebp" is an instruction
        let Some((addr, rest)) = line.split_once(':') else {
            continue;
        };
        let addr = addr.trim();
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let mut words = rest.split_whitespace().peekable();
        while words
            .peek()
            .is_some_and(|w| PREFIXES.contains(w) || w.starts_with("rex"))
        {
            words.next();
        }
        let Some(mnemonic) = words.next() else {
            continue;
        };
        let operands = words.collect::<Vec<_>>().join(" ");
        let operands = operands.split('#').next().unwrap_or("").trim().to_string();
        out.push(Insn {
            func: func.clone(),
            mnemonic: mnemonic.to_string(),
            operands,
            text: format!("{}: {}", addr, rest.trim()),
        });
    }
    out
}

/// x87 mnemonics (AT&T may append an operand-size letter: s, l, t, ll).
const X87: [&str; 62] = [
    "f2xm1", "fabs", "fadd", "faddp", "fbld", "fbstp", "fchs", "fcom", "fcomp", "fcompp", "fcomi",
    "fcomip", "fcos", "fdecstp", "fdiv", "fdivp", "fdivr", "fdivrp", "ffree", "fiadd", "ficom",
    "ficomp", "fidiv", "fidivr", "fild", "fimul", "fincstp", "fist", "fistp", "fisttp", "fisub",
    "fisubr", "fld", "fld1", "fldcw", "fldl2e", "fldl2t", "fldlg2", "fldln2", "fldpi", "fldz",
    "fmul", "fmulp", "fnstcw", "fnstsw", "fpatan", "fprem", "fprem1", "fptan", "frndint", "fscale",
    "fsin", "fsincos", "fsqrt", "fst", "fstp", "fsub", "fsubp", "fsubr", "fsubrp", "fxch", "fyl2x",
];

/// Roots of SSE/AVX floating-point arithmetic and comparison (followed by a
/// type suffix ss, sd, ps, pd, sh or ph; an optional `v` before).
const FP_ROOTS: [&str; 28] = [
    "add", "sub", "mul", "div", "min", "max", "sqrt", "rsqrt", "rcp", "rcp14", "rsqrt14", "rcp28",
    "rsqrt28", "round", "rndscale", "hadd", "hsub", "addsub", "dp", "dpbf16", "scalef", "getexp",
    "getmant", "reduce", "range", "fixupimm", "comi", "ucomi",
];

/// Whether an instruction (AT&T syntax) is floating-point arithmetic,
/// comparison or conversion: any x87 instruction; an SSE/AVX instruction on
/// float types (`cvt*`, FMA, or an arithmetic or comparison root with a float
/// suffix) with an xmm/ymm/zmm operand. Integer SIMD (`p…`, VNNI), moves,
/// shuffles and bit logic are not.
fn is_float_insn(mnemonic: &str, operands: &str) -> bool {
    let m = mnemonic;
    if m.starts_with("fcmov") || m.starts_with("fucom") {
        return true;
    }
    if X87.iter().any(|&x| {
        m.strip_prefix(x)
            .is_some_and(|s| ["", "s", "l", "t", "ll"].contains(&s))
    }) {
        return true;
    }
    if !["%xmm", "%ymm", "%zmm"]
        .iter()
        .any(|r| operands.contains(r))
    {
        return false;
    }
    let vex = m.starts_with('v');
    let base = m.strip_prefix('v').unwrap_or(m);
    if base.starts_with("cvt") {
        return true;
    }
    if vex
        && ["fmadd", "fmsub", "fnmadd", "fnmsub"]
            .iter()
            .any(|f| base.starts_with(f))
    {
        return true;
    }
    ["ss", "sd", "ps", "pd", "sh", "ph"].iter().any(|suffix| {
        base.strip_suffix(suffix)
            .is_some_and(|root| FP_ROOTS.contains(&root) || root.starts_with("cmp"))
    })
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
/// (`bytemuck`, `cpufeatures`).
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

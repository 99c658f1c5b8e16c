//! Freestanding x86_64 Linux executable that runs the kernels' self-test with
//! neither `std` nor libc nor the C runtime: its own `_start`, raw system calls,
//! its own `memcpy` family and panic handler. It prints every workload's hash
//! and their combination, and exits
//!
//! * 0 if the combination equals `EDGEDECODING_EXPECTED_HASH` (read at build
//!   time),
//! * 1 if it differs,
//! * 3 if the variable was not set (or empty) at build time.
//!
//! `model/tests/no_std_freestanding.rs` builds it with the hash computed by an
//! ordinary `std` process and runs it.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod mem;
mod sys;

use core::fmt::Write;
use edgedecoding_kernels::selftest;
use sys::{Line, STDERR, STDOUT};

/// One workload: a name (printed as `<name>-hash=0x...`) and its hash.
type Workload = (&'static str, fn() -> u64);

/// Every workload, in order; `hash=` is `selftest::combine` of their hashes.
/// To add one (e.g. the model's), add a dependency and a line here, and the
/// same function in the same position in `model/tests/no_std_freestanding.rs`.
const WORKLOADS: &[Workload] = &[
    ("kernels", selftest::workload_hash),
    ("model", edgedecoding_model::selftest::workload_hash),
];

/// The expected combined hash, parsed at compile time (a malformed value is a
/// build error).
const EXPECTED: Option<u64> = match option_env!("EDGEDECODING_EXPECTED_HASH") {
    Some(s) => parse_hex(s),
    None => None,
};

/// Parses `[0x]<1 to 16 hex digits>`, ignoring surrounding ASCII whitespace;
/// an empty value means "not set". Panics (at compile time) on anything else.
const fn parse_hex(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (mut lo, mut hi) = (0, b.len());
    while lo < hi && b[lo].is_ascii_whitespace() {
        lo += 1;
    }
    while hi > lo && b[hi - 1].is_ascii_whitespace() {
        hi -= 1;
    }
    if lo == hi {
        return None;
    }
    if hi - lo >= 2 && b[lo] == b'0' && (b[lo + 1] == b'x' || b[lo + 1] == b'X') {
        lo += 2;
    }
    if lo == hi || hi - lo > 16 {
        panic!("EDGEDECODING_EXPECTED_HASH must be 1 to 16 hex digits, optionally prefixed by 0x");
    }
    let mut v: u64 = 0;
    while lo < hi {
        let d = match b[lo] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("EDGEDECODING_EXPECTED_HASH contains a character that is not a hex digit"),
        };
        v = (v << 4) | d as u64;
        lo += 1;
    }
    Some(v)
}

/// The program: called by `_start` with an aligned stack; returns the exit code.
fn run() -> i32 {
    let mut hashes = [0u64; WORKLOADS.len()];
    for (slot, &(name, workload)) in hashes.iter_mut().zip(WORKLOADS) {
        *slot = workload();
        let mut line = Line::new();
        let _ = writeln!(line, "{name}-hash=0x{:016x}", *slot);
        line.flush(STDOUT);
    }
    let hash = selftest::combine(&hashes);
    let mut line = Line::new();
    let _ = writeln!(line, "hash=0x{hash:016x}");
    line.flush(STDOUT);

    let mut msg = Line::new();
    let code = match EXPECTED {
        None => {
            let _ = writeln!(
                msg,
                "no expected hash: EDGEDECODING_EXPECTED_HASH was not set when this binary \
                 was built"
            );
            3
        }
        Some(want) if want == hash => {
            let _ = writeln!(msg, "ok: equals the expected hash");
            0
        }
        Some(want) => {
            let _ = writeln!(
                msg,
                "MISMATCH: expected 0x{want:016x}, computed 0x{hash:016x}"
            );
            1
        }
    };
    msg.flush(if code == 0 { STDOUT } else { STDERR });
    code
}

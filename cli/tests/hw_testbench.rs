//! The C++ testbench loop (`hw-testbench/run.sh`, docs/VECTORS.md §7) from
//! `cargo test`: build `tb.cpp` (HLS-style C++ written from the SPEC), generate
//! the golden suite with this CLI, let the testbench compute every output and
//! its ROMs from the SPEC recipes, and `verify` them all; run.sh's negative
//! steps (a wrong value, a wrong ROM) must be caught.
//!
//! Needs bash, a C++17 compiler and a C compiler (`CXX` / `CC`, default g++ /
//! gcc). Without them the test prints `SKIPPED` and passes, unless
//! `EDGEDECODING_REQUIRE_CXX` is set (`.ci/run` sets it): then it fails.

use std::path::Path;
use std::process::Command;

fn works(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn cpp_testbench_reproduces_the_golden_suite() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let missing: Vec<&str> = [("bash", "bash"), (&cxx[..], "C++"), (&cc[..], "C")]
        .into_iter()
        .filter(|(c, _)| !works(c))
        .map(|(_, what)| what)
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("EDGEDECODING_REQUIRE_CXX").is_none(),
            "EDGEDECODING_REQUIRE_CXX is set but no {missing:?} compiler/shell works"
        );
        println!("SKIPPED: C++ testbench (no working {missing:?}; set CXX / CC)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("edq-hw-tb-{}", std::process::id()));
    let res = Command::new("bash")
        .arg(root.join("hw-testbench/run.sh"))
        .env("EDGEDECODING_BIN", env!("CARGO_BIN_EXE_edgedecoding"))
        .env("EDV_TB_OUT", &out)
        .env("CXX", &cxx)
        .env("CC", &cc)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        res.status.success(),
        "hw-testbench/run.sh failed\n{stdout}\n{stderr}"
    );
    // what was checked, not only that the script exited 0
    assert!(
        stdout.contains("ROMs computed from the SPEC recipes equal the suite's rom/ files"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SIGMOID_Q15[0] = 1, the SPEC recipe gives 11"),
        "{stdout}"
    );
    assert!(stdout.contains("expected 12338, got 12288"), "{stdout}");
    let tb_ops = stdout.lines().filter(|l| l.starts_with("tb: ")).count();
    assert!(
        tb_ops >= 19,
        "fewer testbench operators than expected:\n{stdout}"
    );
    let pass = stdout
        .lines()
        .rev()
        .find(|l| l.contains("PASS"))
        .unwrap_or_else(|| panic!("no PASS line from verify:\n{stdout}"));
    println!("{pass}");
}

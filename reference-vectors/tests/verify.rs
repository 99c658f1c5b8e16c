//! `verify` passes on a perfect device and reports precisely what differs.

mod common;

use edgedecoding_reference_vectors::vectors::{write_suite, SuiteOptions};
use edgedecoding_reference_vectors::verify::{verify, Mismatch, Outcome, VerifyOptions};

fn suite(name: &str, only: &[&str]) -> std::path::PathBuf {
    let buf = common::tiny();
    let m = buf.model().unwrap();
    let dir = common::tmp_dir(name);
    let opts = SuiteOptions {
        only: only.iter().map(|s| s.to_string()).collect(),
        ..SuiteOptions::default()
    };
    write_suite(&m, "tiny", &dir, &opts).unwrap();
    dir
}

fn set_u16(path: &std::path::Path, index: usize, v: u16) {
    let mut b = std::fs::read(path).unwrap();
    b[2 * index..2 * index + 2].copy_from_slice(&v.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn one_altered_value_is_reported_exactly() {
    let golden = suite("verify-golden", &["softmax", "argmax"]);
    let dut = common::tmp_dir("verify-dut");
    common::copy_outputs(&golden, &dut);
    let o = VerifyOptions::default();
    let r = verify(&golden, &dut, &o).unwrap();
    assert!(r.passed(), "{r}");
    let (ok, differ, missing, size) = r.counts();
    assert_eq!((differ, missing, size), (0, 0, 0));
    assert!(ok >= 10);
    assert!(r.to_string().ends_with("-> PASS"), "{r}");

    // SPEC §7.4: probs [12338, 7477, 614, 12338, 1]; make j = 2 wrong
    let p = dut.join("ops/softmax/spec_7_4/probs.bin");
    set_u16(&p, 2, 615);
    // and one value deep inside a 2-D file: [3][17] of an [8][64] file
    let p2 = dut.join("ops/softmax/len64/probs.bin");
    let old = u16::from_le_bytes(
        std::fs::read(&p2).unwrap()[2 * 209..2 * 209 + 2]
            .try_into()
            .unwrap(),
    );
    set_u16(&p2, 3 * 64 + 17, old ^ 1);
    let r = verify(&golden, &dut, &o).unwrap();
    assert!(!r.passed());
    let bad: Vec<_> = r
        .files
        .iter()
        .filter(|f| f.outcome != Outcome::Match)
        .collect();
    assert_eq!(bad.len(), 2, "{r}");
    assert_eq!(bad[0].entry.path, "ops/softmax/spec_7_4/probs.bin");
    assert_eq!(
        bad[0].outcome,
        Outcome::Differ {
            count: 1,
            first: vec![Mismatch {
                flat: 2,
                expected: 614,
                got: 615
            }]
        }
    );
    assert_eq!(
        bad[1].outcome,
        Outcome::Differ {
            count: 1,
            first: vec![Mismatch {
                flat: 209,
                expected: old as i128,
                got: (old ^ 1) as i128
            }]
        }
    );
    let text = r.to_string();
    assert!(
        text.contains("MISMATCH  ops/softmax/spec_7_4/probs.bin: 1 of 5 values differ (u16 [1, 5]"),
        "{text}"
    );
    assert!(
        text.contains("flat index 2 at [0][2]: expected 614, got 615"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "flat index 209 at [3][17]: expected {old}, got {}",
            old ^ 1
        )),
        "{text}"
    );
    assert!(
        text.ends_with("2 differ, 0 missing, 0 wrong size -> FAIL"),
        "{text}"
    );

    // restricting to another operator passes again; restoring the values passes
    let only_argmax = VerifyOptions {
        only: vec!["argmax".into()],
        ..VerifyOptions::default()
    };
    assert!(verify(&golden, &dut, &only_argmax).unwrap().passed());
    set_u16(&p, 2, 614);
    set_u16(&p2, 209, old);
    assert!(verify(&golden, &dut, &o).unwrap().passed());

    // a missing file and a short file
    std::fs::remove_file(dut.join("ops/argmax/random/idx.bin")).unwrap();
    let spec = dut.join("ops/softmax/spec_7_4/probs.bin");
    std::fs::write(&spec, [0u8; 8]).unwrap();
    let r = verify(&golden, &dut, &o).unwrap();
    assert!(!r.passed());
    let text = r.to_string();
    assert!(
        text.contains("MISSING   ops/argmax/random/idx.bin: no such file"),
        "{text}"
    );
    assert!(text.contains("SIZE      ops/softmax/spec_7_4/probs.bin: expected 10 bytes (5 values of u16), got 8 bytes"), "{text}");
    assert_eq!(r.counts().2, 1);
    assert_eq!(r.counts().3, 1);

    // many mismatches: counted all, listed up to max_report
    let mut b = std::fs::read(golden.join("ops/softmax/len64/probs.bin")).unwrap();
    for x in b.iter_mut() {
        *x = x.wrapping_add(1);
    }
    std::fs::write(dut.join("ops/softmax/len64/probs.bin"), &b).unwrap();
    let few = VerifyOptions {
        only: vec!["ops/softmax/len64".into()],
        max_report: 3,
        ..VerifyOptions::default()
    };
    let r = verify(&golden, &dut, &few).unwrap();
    match &r.files[0].outcome {
        Outcome::Differ { count, first } => {
            assert_eq!(*count, 512);
            assert_eq!(first.len(), 3);
        }
        o => panic!("{o:?}"),
    }
    assert!(r.to_string().contains("... and 509 more"));

    // the CLI entry point fails (exit status 1) on a failing report
    let a = edgedecoding_reference_vectors::cli::VerifyArgs {
        golden: golden.clone(),
        dut: dut.clone(),
        only: vec![],
        max_report: 10,
        verbose: false,
    };
    assert!(edgedecoding_reference_vectors::cli::verify(&a).is_err());
    let _ = std::fs::remove_dir_all(&golden);
    let _ = std::fs::remove_dir_all(&dut);
}

#[test]
fn clear_errors_for_bad_directories() {
    let golden = suite("verify-errors", &["argmax"]);
    let o = VerifyOptions::default();
    let nowhere = common::tmp_dir("verify-nowhere");
    let e = verify(&golden, &nowhere, &o).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    let e = verify(&nowhere, &golden, &o).unwrap_err();
    assert!(format!("{e:#}").contains("manifest.json"), "{e:#}");
    let none = VerifyOptions {
        only: vec!["no_such_operator".into()],
        ..VerifyOptions::default()
    };
    let e = verify(&golden, &golden, &none).unwrap_err().to_string();
    assert!(
        e.contains("no golden output matches") && e.contains("argmax"),
        "{e}"
    );
    // a corrupted golden file is an error, not a mismatch
    let p = golden.join("ops/argmax/random/idx.bin");
    let mut b = std::fs::read(&p).unwrap();
    b[0] ^= 1;
    std::fs::write(&p, b).unwrap();
    let e = verify(&golden, &golden, &o).unwrap_err().to_string();
    assert!(e.contains("corrupt"), "{e}");
    let _ = std::fs::remove_dir_all(&golden);
}

/// Issue 14, finding 4: a device "file" that is a directory is one failing
/// file, not an aborted run; files the suite does not know are reported;
/// a manifest naming a file twice is refused.
#[test]
fn directory_as_output_extra_files_and_duplicate_entries() {
    let golden = suite("verify-dir-golden", &["argmax"]);
    let dut = common::tmp_dir("verify-dir-dut");
    common::copy_outputs(&golden, &dut);
    let o = VerifyOptions::default();
    let r = verify(&golden, &dut, &o).unwrap();
    assert!(r.passed() && r.extra.is_empty(), "{r}");
    let victim = r.files[0].entry.path.clone();
    std::fs::remove_file(dut.join(&victim)).unwrap();
    std::fs::create_dir(dut.join(&victim)).unwrap();
    std::fs::write(dut.join("stray.bin"), b"x").unwrap();
    std::fs::create_dir_all(dut.join("ops/argmax/new")).unwrap();
    std::fs::write(dut.join("ops/argmax/new/out.bin"), b"y").unwrap();
    let r = verify(&golden, &dut, &o).unwrap();
    assert!(!r.passed());
    let bad: Vec<_> = r
        .files
        .iter()
        .filter(|f| f.outcome != Outcome::Match)
        .collect();
    assert_eq!(bad.len(), 1, "{r}");
    assert_eq!(bad[0].entry.path, victim);
    assert_eq!(
        bad[0].outcome,
        Outcome::Unreadable {
            reason: "a directory".into()
        }
    );
    assert_eq!(r.counts().2, 1);
    assert_eq!(
        r.counts().0,
        r.files.len() - 1,
        "the other files were still checked"
    );
    assert_eq!(r.extra, ["ops/argmax/new/out.bin", "stray.bin"]);
    let text = r.to_string();
    assert!(
        text.contains(&format!("UNREADABLE {victim}: not a readable file")),
        "{text}"
    );
    assert!(
        text.contains("EXTRA     stray.bin: not a golden output"),
        "{text}"
    );
    assert!(text.contains(", 2 extra files ignored -> FAIL"), "{text}");

    // a manifest that lists one file twice
    let mp = golden.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    let files = v["files"].as_array_mut().unwrap();
    let n = files.len();
    let dup = files[1].clone();
    files.push(dup);
    std::fs::write(&mp, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = verify(&golden, &dut, &o).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains(&format!("twice (entries 1 and {n})")), "{msg}");
    let _ = std::fs::remove_dir_all(&golden);
    let _ = std::fs::remove_dir_all(&dut);
}

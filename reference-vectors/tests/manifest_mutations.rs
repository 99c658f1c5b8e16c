//! Seeded mutations of a vectors manifest (byte flips, truncations,
//! insertions, numbers set to huge values) and of the golden and device
//! folders: `Manifest::parse` and `verify` return a result or an error, never
//! panic, and the specific corruptions give their specific answers. The
//! stable counterpart of fuzz/ (`manifest_verify` target).

use std::path::Path;

use edgedecoding_reference_vectors::manifest::{
    sha256_hex, CaseEntry, DType, FileEntry, Manifest, Role, MANIFEST,
};
use edgedecoding_reference_vectors::verify::{verify, Outcome, VerifyOptions};
use edgedecoding_testkit::{mutate_json, Lcg};
use serde_json::Map;

fn file(path: &str, role: Role, dtype: DType, shape: Vec<usize>, data: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        operator: "linear".into(),
        case: "a".into(),
        name: path.rsplit('/').next().unwrap().into(),
        role,
        dtype,
        bits: 8 * dtype.size() as u32,
        shape,
        layout: "[row]".into(),
        bytes: data.len() as u64,
        sha256: sha256_hex(data),
    }
}

/// A golden folder: manifest plus files; returns the manifest and contents.
fn golden(dir: &Path) -> (Manifest, Vec<Vec<u8>>) {
    let data: Vec<Vec<u8>> = vec![
        (0..16u8).collect(),
        (0..24u8).map(|i| i.wrapping_mul(37)).collect(),
        vec![9, 8, 7, 6, 5],
        (0..16u8).map(|i| 255 - i).collect(),
    ];
    let files = vec![
        file(
            "ops/linear/a/x.bin",
            Role::In,
            DType::I16,
            vec![8],
            &data[0],
        ),
        file(
            "ops/linear/a/y.bin",
            Role::Out,
            DType::I32,
            vec![2, 3],
            &data[1],
        ),
        file(
            "ops/linear/a/e.bin",
            Role::Out,
            DType::U8,
            vec![5],
            &data[2],
        ),
        file(
            "ops/rmsnorm/b/z.bin",
            Role::Out,
            DType::I64,
            vec![2],
            &data[3],
        ),
    ];
    let mut params = Map::new();
    params.insert("rows".into(), serde_json::json!(2));
    let m = Manifest {
        info: Map::new(),
        cases: vec![CaseEntry {
            operator: "linear".into(),
            case: "a".into(),
            dir: "ops/linear/a".into(),
            params,
        }],
        files,
    };
    write_dir(dir, &m, &data);
    (m, data)
}

fn write_dir(dir: &Path, m: &Manifest, data: &[Vec<u8>]) {
    let _ = std::fs::remove_dir_all(dir);
    for (f, d) in m.files.iter().zip(data) {
        let p = dir.join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, d).unwrap();
    }
    std::fs::write(dir.join(MANIFEST), m.to_json_string()).unwrap();
}

fn tmp(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("edv-mut-{tag}-{}", std::process::id()))
}

#[test]
fn mutated_manifests_parse_or_are_refused() {
    let dir = tmp("parse");
    let (m, _) = golden(&dir);
    let text = m.to_json_string();
    assert_eq!(Manifest::parse(&text).unwrap(), m);
    let mut r = Lcg(0x3a41_f357);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..4000 {
        let mut b = text.clone().into_bytes();
        for _ in 0..1 + r.below(2) {
            mutate_json(&mut r, &mut b);
        }
        match Manifest::parse(&String::from_utf8_lossy(&b)) {
            Ok(p) => {
                ok += 1;
                // what parses serializes and parses back to the same files
                assert_eq!(Manifest::parse(&p.to_json_string()).unwrap().files, p.files);
            }
            Err(e) => {
                err += 1;
                assert!(!format!("{e:#}").is_empty());
            }
        }
    }
    println!("{ok} parsed, {err} refused");
    assert!(ok > 100 && err > 2000, "{ok} {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Huge byte counts and shapes, paths leaving the folder, wrong format and
/// version: each refused with its message.
#[test]
fn specific_corruptions_are_refused_with_their_reason() {
    let dir = tmp("specific");
    let (m, _) = golden(&dir);
    let text = m.to_json_string();
    let refuse = |from: &str, to: &str, reason: &str| {
        assert!(text.contains(from), "{from}");
        let e = Manifest::parse(&text.replacen(from, to, 1)).unwrap_err();
        assert!(format!("{e:#}").contains(reason), "{to}: {e:#}");
    };
    refuse(
        "\"bytes\":24",
        "\"bytes\":9223372036854775808",
        "manifest says",
    );
    refuse("\"bytes\":24", "\"bytes\":-1", "integer field `bytes`");
    refuse("[2,3]", "[9223372036854775808,2]", "overflows");
    refuse(
        "[2,3]",
        "[18446744073709551615,18446744073709551615]",
        "overflows",
    );
    refuse("[2,3]", "[2,-3]", "shape entry");
    refuse("\"ops/linear/a/y.bin\"", "\"../y.bin\"", "stay inside");
    refuse("\"ops/linear/a/y.bin\"", "\"/etc/y.bin\"", "stay inside");
    refuse(
        "\"version\": 1",
        "\"version\": 18446744073709551616",
        "version",
    );
    refuse("edgedecoding-vectors", "edgedecoding-vector", "format");
    refuse("\"dtype\":\"i32\"", "\"dtype\":\"i128\"", "unknown dtype");
    refuse("\"role\":\"out\"", "\"role\":\"inout\"", "unknown role");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Device folders with seeded damage: every report agrees with the damage
/// done; a damaged golden folder is an error, not a mismatch.
#[test]
fn verify_reports_device_damage_and_refuses_golden_damage() {
    let (gdir, ddir) = (tmp("golden"), tmp("dut"));
    let (m, data) = golden(&gdir);
    let outs: Vec<usize> = (0..m.files.len())
        .filter(|&i| m.files[i].role == Role::Out)
        .collect();
    let o = VerifyOptions::default();
    let mut r = Lcg(0xd00d);
    let mut seen = [0usize; 4];
    for case in 0..300 {
        let _ = std::fs::remove_dir_all(&ddir);
        std::fs::create_dir_all(&ddir).unwrap();
        let mut want = Vec::new();
        for &i in &outs {
            let f = &m.files[i];
            let p = ddir.join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut d = data[i].clone();
            let w = match r.below(4) {
                0 => {
                    want.push(Outcome::Missing);
                    continue;
                }
                1 => {
                    let at = r.below(d.len());
                    d[at] ^= 1 + (r.next() as u8 % 255);
                    Outcome::Differ {
                        count: 1,
                        first: vec![],
                    }
                }
                2 => {
                    let n = d.len();
                    if r.next() % 2 == 0 {
                        d.truncate(r.below(n));
                    } else {
                        d.push(r.next() as u8);
                    }
                    Outcome::WrongSize {
                        expected: n as u64,
                        got: d.len() as u64,
                    }
                }
                _ => Outcome::Match,
            };
            std::fs::write(p, &d).unwrap();
            want.push(w);
        }
        let rep = verify(&gdir, &ddir, &o).unwrap();
        assert_eq!(rep.files.len(), outs.len());
        for (got, w) in rep.files.iter().zip(&want) {
            match (&got.outcome, w) {
                (Outcome::Differ { count, first }, Outcome::Differ { .. }) => {
                    // one byte changed: one element differs, reported with its index
                    assert_eq!(*count, 1);
                    assert_eq!(first.len(), 1);
                    assert!(first[0].flat < got.entry.elems());
                    seen[1] += 1;
                }
                (g, w) => {
                    assert_eq!(g, w, "case {case}");
                    seen[match g {
                        Outcome::Missing => 0,
                        Outcome::WrongSize { .. } => 2,
                        _ => 3,
                    }] += 1;
                }
            }
        }
        assert!(!rep.to_string().is_empty());
        assert_eq!(rep.passed(), want.iter().all(|w| *w == Outcome::Match));
    }
    assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    // a golden file that no longer matches its digest: an error
    let mut bad = data.clone();
    bad[1][0] ^= 1;
    write_dir(&gdir, &m, &bad);
    let e = verify(&gdir, &ddir, &o).unwrap_err();
    assert!(format!("{e:#}").contains("corrupt"), "{e:#}");
    // a mutated golden manifest: a result or an error, never a panic
    write_dir(&gdir, &m, &data);
    let text = m.to_json_string().into_bytes();
    for _ in 0..300 {
        let mut b = text.clone();
        mutate_json(&mut r, &mut b);
        std::fs::write(gdir.join(MANIFEST), &b).unwrap();
        let _ = verify(&gdir, &ddir, &o);
    }
    let _ = std::fs::remove_dir_all(&gdir);
    let _ = std::fs::remove_dir_all(&ddir);
}

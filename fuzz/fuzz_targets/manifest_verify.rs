//! The golden-vectors manifest parser (`Manifest::parse`) and `verify`.
//!
//! Input: a u32 little-endian length, that many bytes of manifest text
//! (lossy UTF-8), then a pool of bytes. A manifest that parses must survive
//! its own serialization. Then a golden folder is laid out from it: each
//! listed file gets bytes from the pool and the manifest is rewritten with
//! their SHA-256 (so `verify` gets past its integrity check); the device
//! folder gets, per output file, a copy, a changed copy, a file of another
//! length or nothing, chosen by the pool. `verify` must return a report that
//! agrees with what was laid out, or an error.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use edgedecoding_reference_vectors::manifest::{sha256_hex, Manifest, Role, MANIFEST};
use edgedecoding_reference_vectors::verify::{verify, Outcome, VerifyOptions};
use libfuzzer_sys::fuzz_target;

/// Largest file laid out (bytes); manifests with larger files skip `verify`.
const MAX_FILE: u64 = 1 << 14;
/// Most files laid out.
const MAX_FILES: usize = 16;

fn base() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("edgedecoding-fuzz-vectors-{}", std::process::id()))
    })
}

struct Pool<'a>(&'a [u8], usize);

impl Pool<'_> {
    fn byte(&mut self) -> u8 {
        if self.0.is_empty() {
            return 0;
        }
        let b = self.0[self.1 % self.0.len()];
        self.1 += 1;
        b
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> bool {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        if std::fs::create_dir_all(parent).is_err() {
            return false;
        }
    }
    std::fs::write(&p, bytes).is_ok()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = (u32::from_le_bytes(data[..4].try_into().unwrap()) as usize).min(data.len() - 4);
    let text = String::from_utf8_lossy(&data[4..4 + n]);
    let mut pool = Pool(&data[4 + n..], 0);
    let Ok(mut m) = Manifest::parse(&text) else {
        return;
    };
    let again = Manifest::parse(&m.to_json_string()).expect("a parsed manifest reparses");
    assert_eq!(again.files, m.files);
    assert_eq!(again.cases.len(), m.cases.len());

    if m.files.len() > MAX_FILES || m.files.iter().any(|e| e.bytes > MAX_FILE) {
        return;
    }
    let root = base();
    let _ = std::fs::remove_dir_all(root);
    let (golden, dut) = (root.join("golden"), root.join("dut"));
    std::fs::create_dir_all(&golden).expect("fuzz folder");
    std::fs::create_dir_all(&dut).expect("fuzz folder");
    // the golden files and their digests
    let mut contents = Vec::with_capacity(m.files.len());
    for e in m.files.iter_mut() {
        let g: Vec<u8> = (0..e.bytes).map(|_| pool.byte()).collect();
        e.sha256 = sha256_hex(&g);
        contents.push(g);
    }
    // written after the manifest is serialized, so a listed file named
    // manifest.json replaces it (verify then reports that manifest's problem)
    std::fs::write(golden.join(MANIFEST), m.to_json_string()).expect("manifest");
    for (e, g) in m.files.iter().zip(&contents) {
        write(&golden, &e.path, g);
        let d = match pool.byte() % 4 {
            0 => None,
            1 => {
                let mut d = g.clone();
                if !d.is_empty() {
                    let i = pool.byte() as usize % d.len();
                    d[i] ^= 1 | pool.byte();
                }
                Some(d)
            }
            2 => Some(vec![pool.byte(); pool.byte() as usize]),
            _ => Some(g.clone()),
        };
        if let Some(d) = d {
            write(&dut, &e.path, &d);
        }
    }
    let only = match pool.byte() % 4 {
        0 => vec![],
        1 => m
            .files
            .first()
            .map(|e| vec![e.operator.clone()])
            .unwrap_or_default(),
        2 => vec!["ops/".into()],
        _ => vec![String::from_utf8_lossy(&[pool.byte(), pool.byte()]).into_owned()],
    };
    let o = VerifyOptions {
        only,
        max_report: pool.byte() as usize % 8,
        verbose: pool.byte() & 1 == 1,
    };
    if let Ok(report) = verify(&golden, &dut, &o) {
        let _ = report.to_string();
        let (ok, differ, missing, size) = report.counts();
        assert_eq!(ok + differ + missing + size, report.files.len());
        assert_eq!(report.passed(), ok == report.files.len());
        for r in &report.files {
            assert_eq!(r.entry.role, Role::Out);
            if let Outcome::Differ { count, first } = &r.outcome {
                assert!(*count >= 1 && first.len() <= o.max_report.min(*count));
            }
        }
    }
});

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use edgedecoding_model::owned::ModelBuf;

/// A fresh, empty directory under the system temp dir (removed first if a
/// previous run left it).
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edv-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The committed tiny model (2 layers, hidden 64, 4/2 heads of 16, vocab 256, 64 positions).
pub fn tiny() -> ModelBuf {
    ModelBuf::from_bytes(edgedecoding_model::selftest::tiny_edq())
}

/// Copies every `out` file of a golden suite into `dut` (a perfect device).
pub fn copy_outputs(golden: &std::path::Path, dut: &std::path::Path) {
    let m = edgedecoding_reference_vectors::manifest::Manifest::read(golden).unwrap();
    for f in m
        .files
        .iter()
        .filter(|f| f.role == edgedecoding_reference_vectors::manifest::Role::Out)
    {
        let to = dut.join(&f.path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(golden.join(&f.path), to).unwrap();
    }
}

//! Golden vectors, DDR images and a verifier for the EdgeDecoding hardware
//! team (docs/VECTORS.md).
//!
//! * [`vectors::write_suite`] — `edgedecoding vectors`: seeded random and edge
//!   cases of every kernel operator, per-layer intermediates of the decoder,
//!   whole prefill chunks and decode steps, and the ROM tables, as raw
//!   little-endian files with a JSON manifest, a plain-text index, C headers for
//!   small cases and `$readmemh` files for the ROMs.
//! * [`export::export_hw`] — `edgedecoding export-hw`: the accelerator's DDR
//!   images (23-word runs of 256-bit words, split over two AXI ports).
//! * [`verify::verify`] — `edgedecoding verify`: compares a device's output
//!   files with the golden ones.
//!
//! Everything here is computed with the kernels of `edgedecoding-kernels` and
//! the decoder of `edgedecoding-model`; the per-layer capture ([`layer`]) is
//! what the decoder reports through its stage probe while it runs.

/// Set (by the CLI's interrupt handler) to stop a suite or an export being
/// written: the next file write fails with [`Interrupted`], and the caller's
/// error path removes the unfinished output.
pub static INTERRUPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The error of a write stopped by [`INTERRUPT`].
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` once [`INTERRUPT`] is set: called before every file
/// this crate writes.
pub fn check_interrupt() -> anyhow::Result<()> {
    if INTERRUPT.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Interrupted.into());
    }
    Ok(())
}

pub mod cli;
pub mod export;
pub mod hw;
pub mod layer;
pub mod manifest;
pub mod ops;
pub mod rng;
pub mod suite;
pub mod vectors;
pub mod verify;

use edgedecoding_model::Config;
use serde_json::{json, Value};

/// Generator tag written into every manifest.
pub const GENERATOR: &str = concat!("edgedecoding-reference-vectors ", env!("CARGO_PKG_VERSION"));

/// A model configuration as JSON.
pub fn config_json(c: &Config) -> Value {
    json!({
        "n_layers": c.n_layers,
        "hidden": c.hidden,
        "ffn": c.ffn,
        "n_heads": c.n_heads,
        "n_kv_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "vocab": c.vocab,
        "n_kept": c.n_kept,
        "rope_theta": c.rope_theta,
        "ctx": c.ctx,
    })
}

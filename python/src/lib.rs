//! The Python module `edgedecoding`: a face on top of the workspace. It parses
//! Python arguments, calls the kernels (`edgedecoding-kernels`), the decoder
//! (`edgedecoding-model`) and the model sources, tokenizers and sampler of
//! `edgedecoding-runtime`, and returns numpy arrays and Python values. No
//! operator, format or pipeline is written again here.
//!
//! * operators ([`ops`]): every SPEC operator on numpy integer arrays;
//! * [`model::Model`]: a model loaded from a `.edq` file or a checkpoint, its
//!   tokenizer and one CPU decoder (generate, stream, chat, perplexity,
//!   prefill / decode steps with numpy logits, the stage probe, bench).
#![deny(unsafe_code)]

mod arrays;
mod model;
mod ops;

use pyo3::prelude::*;

/// Bit-exact integer golden model of the EdgeDecoding accelerator (Qwen2.5-0.5B)
/// and its CPU decoder. Operators take and return numpy integer arrays in the
/// formats of docs/SPEC.md; `Model.load` runs a whole model.
#[pymodule]
#[pyo3(name = "edgedecoding")]
fn edgedecoding_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    ops::register(m)?;
    model::register(m)?;
    Ok(())
}

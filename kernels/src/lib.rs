//! Bit-exact integer kernels of the EdgeDecoding accelerator.
//!
//! Every function in this crate is the normative software twin of one hardware
//! operator. The contract each one implements is written in `docs/SPEC.md`; the
//! doc comment of every public kernel names its section there.
//!
//! * `#![no_std]`, no heap: all buffers belong to the caller.
//! * No floating point at run time. The ROMs are data: the softmax and sigmoid
//!   tables are compile-time constants ([`tables`]), the RoPE table is stored in
//!   the model file. The only floating-point code is offline, behind the
//!   feature `offline` (on by default; the no_std decoder builds without it):
//!   the float quantizer (`quant::quantize_row_f32`) and the RoPE ROM recipe
//!   (`rope::build_rope_table`), plus the table generators in `examples/`; they
//!   use `libm` so that every platform produces the same bits.
//! * `unsafe` only in two places: the two marker impls that let
//!   [`bfp::BfpBlock`] live in caller-provided byte buffers (`bytemuck::Pod`),
//!   and the SIMD backends of [`fast`] (`fast/avx2.rs`, `fast/avx512.rs`),
//!   whose entry points check the CPU features themselves and whose blocks
//!   carry `// SAFETY:` arguments.
//! * Shapes and parameters are validated once per call ([`KernelError`]); the
//!   inner loops cannot fail.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod argmax;
pub mod attention;
pub mod bfp;
pub mod embedding;
mod error;
pub mod fast;
pub mod format;
pub mod linear;
pub mod lm_head;
pub mod quant;
pub mod residual;
pub mod rmsnorm;
pub mod rope;
pub mod round;
#[cfg(any(test, feature = "selftest"))]
pub mod selftest;
pub mod silu;
pub mod tables;

pub use error::KernelError;

/// Fractional bits of every activation that is not in a 16-bit attention
/// format: residual stream, RMSNorm outputs, linear inputs and outputs, SiLU and
/// SwiGLU values, logits. A real value `v` is stored as the `i32` nearest
/// `v * 2^ACT_FRAC` (SPEC §1.2).
pub const ACT_FRAC: u32 = 12;

/// Input channels per weight group and per block-floating-point block (SPEC §2, §3).
pub const GROUP: usize = 8;

/// Tokens processed per pass over a weight matrix by the accelerator (SPEC §4).
pub const TOKENS_PER_PASS: usize = 8;

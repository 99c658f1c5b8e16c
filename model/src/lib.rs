//! The integer Qwen2 decoder of the EdgeDecoding accelerator.
//!
//! * `no_std` core, no heap needed: the model is parsed zero-copy from a byte
//!   slice ([`Model::from_bytes`]), the run state and KV cache live in caller
//!   memory ([`state_bytes`], [`State::new`]), and [`Decoder`] runs prefill in
//!   chunks of 8 tokens, incremental decode and accelerator-parity decode with
//!   the kernels of `edgedecoding-kernels` only. No floating point at run time:
//!   the RoPE table is a ROM read from the model file ([`Model::rope`]).
//!   Every intermediate of a pass can be observed through a [`Probe`]
//!   ([`Decoder::prefill_probed`]); normal runs use [`NoProbe`], which costs
//!   nothing.
//! * `alloc`: owned conveniences ([`StateMem`], [`owned::ModelBuf`],
//!   [`owned::OwnedHead`]) and the `.edq` writer.
//! * `std`: the fast SIMD backend ([`fast::Fast`]) and a simple threaded one
//!   ([`parallel::Threaded`]), the built-in
//!   model generator ([`builtin`]), the offline quantizer of float weights
//!   ([`convert`]) and the f32 reference forward pass ([`float_ref`]).
#![no_std]
#![warn(missing_docs)]
// `unsafe` only where argued: the f32 reference's AVX tile (`float_ref`), the
// memory map (`owned`) and the pool's lifetime erasure (`pool`).
#![deny(unsafe_code)]

#[cfg(target_endian = "big")]
compile_error!("the .edq format is read zero-copy and is little-endian");

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod config;
pub mod decoder;
pub mod edq;
mod error;
pub mod probe;
pub mod selftest;
pub mod state;
pub mod weights;

#[cfg(feature = "std")]
pub mod builtin;
#[cfg(feature = "std")]
pub mod convert;
#[cfg(feature = "std")]
pub mod fast;
#[cfg(feature = "std")]
#[allow(unsafe_code)]
pub mod float_ref;
#[cfg(feature = "std")]
pub mod gptq;
#[cfg(feature = "alloc")]
#[allow(unsafe_code)]
pub mod owned;
#[cfg(feature = "std")]
pub mod parallel;
#[cfg(feature = "std")]
#[allow(unsafe_code)]
pub mod pool;

pub use config::{Config, ConfigError};
pub use decoder::{Backend, Decoder, Head, MatId, Serial, Which};
pub use error::{ModelError, TensorName};
pub use probe::{NoProbe, Probe, Site, Stage, StageRef, Values};
#[cfg(feature = "alloc")]
pub use state::StateMem;
pub use state::{cpu_chunk, state_bytes, state_bytes_chunked, State, CPU_CHUNK};
pub use weights::{Layer, LayerFormats, Model, RopeRom};

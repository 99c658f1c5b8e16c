//! Running the integer model on a CPU, for the faces on top (the `edgedecoding`
//! command, the Python package): where a model comes from, its tokenizer,
//! sampling, and the CPU decoder set-up.
//!
//! * [`source`]: a `.edq` file (memory-mapped) or a checkpoint (GGUF file,
//!   Hugging Face folder) converted on the fly; the tokenizer that goes with a
//!   model; the CPU decoder ([`source::cpu_decoder`]).
//! * [`convert`]: checkpoint → `.edq` bytes with the tokenizer inside
//!   (calibration text, vocabulary pruning).
//! * [`keep`]: the one rule that picks a pruned vocabulary's keep list, and
//!   keep-list files.
//! * [`generate`]: the loops of `generate` and `chat`, one token per call.
//! * [`bench`]: the timed prefill + decode run of `bench`.
//! * [`text`]: tokenizers behind one trait (Qwen2 BPE with a pruned
//!   vocabulary re-spelled in byte tokens, bytes, bare ids), the chat template
//!   turns, sampling from Q12 logits and log-likelihoods.
//!
//! No user interface here: progress is reported through callbacks, nothing is
//! printed.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bench;
pub mod convert;
pub mod generate;
pub mod keep;
pub mod source;
pub mod text;

pub use edgedecoding_model::convert::Progress;

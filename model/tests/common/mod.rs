#![allow(dead_code)]
//! Shared helpers of the model tests.

use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{Config, Decoder, Head, Model, Serial, State, StateMem};

/// The tiny built-in model with `ctx` positions.
pub fn tiny(ctx: usize) -> ModelBuf {
    tiny_cfg(Config {
        ctx,
        ..Config::tiny()
    })
}

pub fn tiny_cfg(c: Config) -> ModelBuf {
    ModelBuf::from_bytes(&generate(&c, DEFAULT_SEED, 2, &mut |_, _, _| {}).expect("generate"))
}

/// Seeded token stream.
pub fn tokens(n: usize, vocab: u32, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

/// The scalar decoder of `m` with its derived head, on a fresh state in `mem`.
pub fn scalar_decoder<'m, 's>(m: Model<'m>, mem: &'s mut StateMem) -> Decoder<'m, 's, Serial> {
    Decoder::new(
        m,
        Head::derived(&m).expect("head"),
        State::new(&m.config, mem.bytes()).expect("state"),
        Serial,
    )
    .expect("decoder")
}

//! A fixed decode workload of the tiny built-in model, heap-free and no_std,
//! for the freestanding check (`no_std-check/`). The model file is committed
//! (`model/data/tiny.edq`); the test `tests/tiny_fixture.rs` regenerates it
//! with the built-in generator and requires identical bytes.

use edgedecoding_kernels::selftest::Fnv64;

use crate::config::Config;
use crate::decoder::{Decoder, Head, Serial};
use crate::error::ModelError;
use crate::state::{state_bytes, State};
use crate::weights::Model;

/// Configuration of the committed tiny model: [`Config::tiny`] with 64 positions.
pub const TINY_CONFIG: Config = Config {
    ctx: 64,
    ..Config::tiny()
};

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static TINY: &Aligned<[u8]> = &Aligned(*include_bytes!("../data/tiny.edq"));

/// The committed tiny model file (built-in generator, [`crate::builtin`]'s
/// default seed, [`TINY_CONFIG`]).
pub fn tiny_edq() -> &'static [u8] {
    &TINY.0
}

const STATE_WORDS: usize = state_bytes(&TINY_CONFIG).div_ceil(8);

/// Prefill of 11 tokens, 6 incremental decode steps, and the same in a second
/// state with accelerator-parity decode; every logit, token and KV-cache entry
/// goes into an FNV-1a hash. `Err` only if the committed model is broken.
pub fn workload() -> Result<u64, ModelError> {
    let m = Model::from_bytes(tiny_edq())?;
    let mut h = Fnv64::new();
    let prompt = [1u32, 200, 3, 77, 128, 255, 0, 42, 42, 9, 100];
    for parity in [false, true] {
        let mut mem = [0u64; STATE_WORDS];
        let st = State::new(&m.config, bytemuck::cast_slice_mut(&mut mem))?;
        let mut d = Decoder::new(m, Head::derived(&m)?, st, Serial)?;
        let mut next = d.prefill(&prompt)?;
        for _ in 0..6 {
            h.write_u64(next as u64);
            for &v in d.logits() {
                h.write_i64(v as i64);
            }
            next = if parity {
                d.decode_parity(next)?
            } else {
                d.decode(next)?
            };
        }
        h.write_u64(next as u64);
        let used = d.pos() * m.config.kv_dim();
        for l in 0..m.config.n_layers {
            for &v in d.state().k_cache(l)[..used]
                .iter()
                .chain(&d.state().v_cache(l)[..used])
            {
                h.write_i64(v as i64);
            }
        }
        // errors are part of the contract too
        h.write_u64(matches!(d.decode(9999), Err(ModelError::TokenOutOfRange { .. })) as u64);
    }
    Ok(h.finish())
}

/// [`workload`] as a plain hash (an error hashes to 0).
pub fn workload_hash() -> u64 {
    workload().unwrap_or(0)
}

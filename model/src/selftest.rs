//! A fixed decode workload of the tiny built-in model, heap-free and no_std,
//! for the freestanding check (`no_std-check/`). The model file is committed
//! (`model/data/tiny.edq`); the test `tests/tiny_fixture.rs` regenerates it
//! with the built-in generator and requires identical bytes.

#[cfg(feature = "selftest")]
use edgedecoding_kernels::selftest::Fnv64;

use crate::config::Config;
use crate::decoder::{Decoder, Head, Serial};
use crate::edq::{checksum, EdqFile, CHECKSUM_AT, ENTRY_LEN, HEADER_LEN, ROPE_NAME};
use crate::error::{ModelError, TensorName};
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

#[cfg(feature = "selftest")]
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
    h.write_u64(file_without_rom_handled()? as u64);
    Ok(h.finish())
}

const TINY_WORDS: usize = include_bytes!("../data/tiny.edq").len().div_ceil(8);

/// The committed model as a file written before the RoPE ROM was stored
/// (its last entry, `rope_rom`, removed; checksum resealed) gets the handling
/// of its build: without `std`, the decoder refuses it with
/// [`ModelError::NoRopeRom`]; with `std`, it builds the table from the recipe
/// and decodes exactly as with the ROM. Returns `true` when the build did its
/// part (the same value in both, so the workload hashes agree).
pub fn file_without_rom_handled() -> Result<bool, ModelError> {
    let full = tiny_edq();
    let f = EdqFile::parse(full)?;
    let last = f.len() - 1;
    if f.entry(last)?.name != TensorName::new(ROPE_NAME) {
        return Ok(false);
    }
    let at = HEADER_LEN + last * ENTRY_LEN;
    let rd = |o: usize| u64::from_le_bytes(full[o..o + 8].try_into().unwrap_or([0; 8]));
    let end = rd(at + 48) as usize; // the ROM's payload offset: the old file ends there
    let mut words = [0u64; TINY_WORDS];
    let old: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut words)[..end];
    old.copy_from_slice(&full[..end]);
    old[32..36].copy_from_slice(&(last as u32).to_le_bytes()); // n_tensors
    old[16..24].copy_from_slice(&(end as u64).to_le_bytes()); // file_len
    old[at..at + ENTRY_LEN].fill(0);
    let sum = checksum(old);
    old[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    let m = Model::from_bytes(old)?;
    if m.rope.is_some() {
        return Ok(false);
    }
    let prompt = [5u32, 17, 250, 3, 99];
    let mut mem = [0u64; STATE_WORDS];
    let st = State::new(&m.config, bytemuck::cast_slice_mut(&mut mem))?;
    match Decoder::new(m, Head::derived(&m)?, st, Serial) {
        Err(ModelError::NoRopeRom) => Ok(cfg!(not(feature = "std"))),
        Err(e) => Err(e),
        Ok(mut built) => {
            let with_rom = Model::from_bytes(full)?;
            let mut mem2 = [0u64; STATE_WORDS];
            let st2 = State::new(&with_rom.config, bytemuck::cast_slice_mut(&mut mem2))?;
            let mut rom = Decoder::new(with_rom, Head::derived(&with_rom)?, st2, Serial)?;
            let same = built.prefill(&prompt)? == rom.prefill(&prompt)?
                && built.logits() == rom.logits()
                && built.decode(7)? == rom.decode(7)?
                && built.logits() == rom.logits();
            Ok(cfg!(feature = "std") && same)
        }
    }
}

/// [`workload`] as a plain hash (an error hashes to 0).
#[cfg(feature = "selftest")]
pub fn workload_hash() -> u64 {
    workload().unwrap_or(0)
}

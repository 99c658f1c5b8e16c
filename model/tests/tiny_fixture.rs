//! The committed tiny model is exactly what the built-in generator produces,
//! and its no_std workload runs (the freestanding check compares its hash).

use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::convert::{rope_rom, with_rope_rom};
use edgedecoding_model::edq::{write::with_extras, EdqFile, Extras};
use edgedecoding_model::selftest::{file_without_rom_handled, tiny_edq, workload, TINY_CONFIG};
use edgedecoding_model::Model;

#[test]
fn committed_tiny_model_is_reproducible() {
    let fresh = generate(&TINY_CONFIG, DEFAULT_SEED, 2, &mut |_, _, _| {}).unwrap();
    assert!(
        fresh == tiny_edq(),
        "model/data/tiny.edq differs from the generator's output; regenerate with `cargo run -p edgedecoding-model --example gen_tiny_fixture`"
    );
}

#[test]
fn workload_runs_and_depends_on_the_model() {
    let h = workload().unwrap();
    assert_ne!(h, 0);
    assert_eq!(h, workload().unwrap());
}

/// The committed file stores the RoPE ROM its recipe builds, as its last
/// entry; the same file written without it (as before the ROM was stored)
/// upgrades back to exactly the committed bytes, so the ROM is the only
/// difference from the previous format.
#[test]
fn committed_tiny_model_stores_the_rope_rom() {
    let f = EdqFile::parse(tiny_edq()).unwrap();
    let stored: &[i16] = bytemuck::cast_slice(f.rope_rom().expect("rope_rom entry"));
    assert_eq!(stored, &rope_rom(&TINY_CONFIG).unwrap()[..]);
    let m = Model::from_bytes(tiny_edq()).unwrap();
    let rom = m.rope.unwrap();
    assert_eq!((rom.cos.len(), rom.sin.len()), (64 * 8, 64 * 8));
    assert!(rom.cos[..8].iter().all(|&c| c == 16384) && rom.sin[..8].iter().all(|&s| s == 0));

    let old = with_extras(
        tiny_edq(),
        &Extras {
            rope_rom: None,
            ..f.extras()
        },
    )
    .unwrap();
    assert_eq!(old.len(), tiny_edq().len() - 64 - 2 * 64 * 8 * 2);
    assert!(EdqFile::parse(&old).unwrap().rope_rom().is_none());
    assert!(with_rope_rom(&old).unwrap() == tiny_edq());
    assert!(with_rope_rom(tiny_edq()).unwrap() == tiny_edq());
}

/// A file without the ROM: the std decoder builds the table and decodes as
/// with the ROM (the no_std build refuses it; the freestanding check runs
/// the same function).
#[test]
fn file_without_the_rom_decodes_the_same_in_std() {
    assert!(file_without_rom_handled().unwrap());
}

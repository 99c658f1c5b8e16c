//! Seeded mutations beyond `malformed.rs` / `hf_model.rs`: every GGUF length
//! field (counts, key and string lengths, array counts, tensor dimensions)
//! set to huge values; random mutations of the many-types GGUF fixture with
//! huge values written at random places; and mutations of a Hugging Face
//! folder's `config.json` and shard index. Loading returns a model or a typed
//! error, never panics and never tries a huge allocation. The stable
//! counterpart of fuzz/ (`gguf` and `safetensors_hf` targets).

mod common;

use common::*;
use edgedecoding_checkpoint::{gguf, load_float_model, Error, GgufFile, LoadOptions};
use edgedecoding_testkit::{mutate_json, Lcg};
use std::collections::BTreeMap;

const HUGE: [u64; 6] = [
    1 << 63,
    u64::MAX,
    (1 << 63) + 1,
    1 << 32,
    u32::MAX as u64,
    1 << 40,
];

fn parse(b: Vec<u8>) -> Result<GgufFile, Error> {
    GgufFile::from_bytes("mut.gguf", b)
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn load(f: &GgufFile) -> Result<(), Error> {
    gguf::load_qwen2(f, &LoadOptions::new(16), &mut |_, _, _| {}).map(|_| ())
}

#[test]
fn every_length_field_set_to_huge_values_is_refused() {
    let good = fixture_bytes("tiny_qwen2.gguf");
    load(&parse(good.clone()).unwrap()).unwrap();
    let arch = kv_type_offset(&good, "general.architecture");
    let toks = kv_type_offset(&good, "tokenizer.ggml.tokens");
    let info = info_offsets(&good, "blk.0.attn_q.weight");
    for v in HUGE {
        // tensor count, metadata count: more than the file can hold
        for at in [8, 16] {
            let mut b = good.clone();
            set_u64(&mut b, at, v);
            let e = parse(b).unwrap_err();
            assert!(
                matches!(e, Error::Truncated { .. }),
                "count at {at} = {v}: {e:?}"
            );
        }
        // the first key's length, a string value's length, an array's count
        for (at, what) in [
            (24, "key length"),
            (arch + 4, "string length"),
            (toks + 8, "array count"),
        ] {
            let mut b = good.clone();
            set_u64(&mut b, at, v);
            let e = parse(b).unwrap_err();
            assert!(matches!(e, Error::Truncated { .. }), "{what} = {v}: {e:?}");
        }
        // a tensor dimension: the tensor is refused (its size overflows or
        // runs past the file), by name
        let mut b = good.clone();
        set_u64(&mut b, info.dims, v);
        let e = parse(b).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadTensorDims { ref tensor, .. } | Error::TensorOutOfBounds { ref tensor, .. }
                    if tensor == "blk.0.attn_q.weight"
            ),
            "dim = {v}: {e:?}"
        );
        // a tensor's data offset
        let mut b = good.clone();
        set_u64(&mut b, info.rel_offset, v);
        let e = parse(b).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TensorOutOfBounds { .. } | Error::MisalignedTensor { .. }
            ),
            "offset = {v}: {e:?}"
        );
    }
    // a dimension count far past the format's 4
    let mut b = good.clone();
    b[info.n_dims..info.n_dims + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse(b).is_err());
}

/// The fixture with every metadata type and tensor type: seeded flips,
/// truncations, insertions, deletions and huge values at random places.
#[test]
fn random_mutations_of_the_types_fixture_never_panic() {
    let orig = fixture_bytes("types.gguf");
    let f = parse(orig.clone()).unwrap();
    // every tensor dequantizes, except the one of a type the reader refuses
    for t in f.tensors() {
        let r = f.dequantize(t);
        assert_eq!(r.is_ok(), !t.name.contains("unsupported"), "{}", t.name);
    }
    let data = f.data_section() as usize;
    let mut rng = Rng(0x7e5_7e5);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = 0;
    for _ in 0..3000 {
        let mut b = orig.clone();
        match rng.below(5) {
            0 => b.truncate(rng.below(orig.len())),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(data);
                    b[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let i = rng.below(data - 8);
                set_u64(&mut b, i, HUGE[rng.below(HUGE.len())]);
            }
            3 => {
                let i = rng.below(data);
                let n = 1 + rng.below(16);
                let v = rng.next() as u8;
                b.splice(i..i, std::iter::repeat_n(v, n));
            }
            _ => {
                let i = rng.below(data);
                let n = (1 + rng.below(16)).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
        match parse(b) {
            Ok(f) => {
                ok += 1;
                for t in f.tensors() {
                    let _ = f.dequantize_rows(t, &[0, 1]);
                }
                for (k, v) in f.metadata().iter() {
                    let _ = (v.to_string(), f.metadata().get_int_array(k));
                }
            }
            Err(e) => {
                assert!(e.to_string().contains("mut.gguf"), "{e}");
                let name = format!("{e:?}");
                let kind = name.split([' ', '{', '(']).next().unwrap().to_string();
                *kinds.entry(kind).or_insert(0) += 1;
            }
        }
    }
    println!("{ok} parsed, rejected: {kinds:?}");
    assert!(ok > 100, "{ok}");
    for k in ["Truncated", "BadValueType", "UnsupportedVersion"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k}: {kinds:?}");
    }
}

/// `config.json` and `model.safetensors.index.json` of the sharded folder,
/// mutated: a model or a typed error.
#[test]
fn mutated_config_and_index_load_or_give_typed_errors() {
    let opts = LoadOptions::new(16);
    let d = TempDir::copy_of("mut", "tiny_hf_sharded");
    load_float_model(d.path(), &opts).unwrap();
    let cfg = std::fs::read(d.path().join("config.json")).unwrap();
    let idx = std::fs::read(d.path().join("model.safetensors.index.json")).unwrap();
    let mut rng = Lcg(0xc0f1);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = 0;
    for case in 0..800 {
        let (name, orig) = if case % 2 == 0 {
            ("config.json", &cfg)
        } else {
            ("model.safetensors.index.json", &idx)
        };
        let mut b = orig.clone();
        mutate_json(&mut rng, &mut b);
        std::fs::write(d.path().join(name), &b).unwrap();
        match load_float_model(d.path(), &opts) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                let dbg = format!("{e:?}");
                let kind = dbg.split([' ', '{', '(']).next().unwrap().to_string();
                *kinds.entry(kind).or_insert(0) += 1;
            }
        }
        std::fs::write(d.path().join(name), orig).unwrap();
    }
    println!("{ok} loaded, rejected: {kinds:?}");
    assert!(ok > 20, "{ok}");
    for k in ["Json", "WrongKeyType", "BadSafetensors"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k}: {kinds:?}");
    }
}

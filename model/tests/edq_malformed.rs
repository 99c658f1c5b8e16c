//! Every malformed-file case yields its typed error; seeded random mutations
//! and truncations never panic.

mod common;

use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::edq::{checksum, CHECKSUM_AT, ENTRY_LEN, HEADER_LEN};
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{
    Config, ConfigError, Decoder, Head, Model, ModelError, Serial, State, StateMem,
};

fn tiny_bytes() -> Vec<u8> {
    generate(
        &Config {
            ctx: 16,
            ..Config::tiny()
        },
        DEFAULT_SEED,
        2,
        &mut |_, _, _| {},
    )
    .unwrap()
}

fn reseal(b: &mut [u8]) {
    let s = checksum(b);
    b[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&s.to_le_bytes());
}

fn parse(b: &[u8]) -> Result<(), ModelError> {
    let buf = ModelBuf::from_bytes(b);
    buf.model().map(|_| ())
}

fn entry_at(i: usize) -> usize {
    HEADER_LEN + i * ENTRY_LEN
}

#[test]
fn same_seed_same_bytes_and_different_seed_differs() {
    let a = tiny_bytes();
    let b = tiny_bytes();
    assert_eq!(a, b);
    let c = generate(
        &Config {
            ctx: 16,
            ..Config::tiny()
        },
        DEFAULT_SEED + 1,
        1,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert_ne!(a, c);
    // thread count does not change the bytes
    let d = generate(
        &Config {
            ctx: 16,
            ..Config::tiny()
        },
        DEFAULT_SEED,
        1,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert_eq!(a, d);
    parse(&a).unwrap();
}

#[test]
fn each_malformation_has_its_error() {
    let good = tiny_bytes();
    let n = good.len();
    // truncated
    assert!(matches!(
        parse(&good[..10]),
        Err(ModelError::Truncated { what: "header", .. })
    ));
    assert!(matches!(
        parse(&good[..n - 1]),
        Err(ModelError::Truncated { .. })
    ));
    // bad magic, version
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(ModelError::BadMagic));
    let mut b = good.clone();
    b[8] = 9;
    assert_eq!(parse(&b), Err(ModelError::UnsupportedVersion(9)));
    // checksum: flip a payload byte
    let mut b = good.clone();
    b[n - 3] ^= 0x40;
    assert!(matches!(parse(&b), Err(ModelError::Checksum { .. })));
    // config inconsistent (hidden 72 with 4 heads of 16), resealed
    let mut b = good.clone();
    b[44..48].copy_from_slice(&72u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::Config(ConfigError::HeadsTimesDim { .. }))
    ));
    // wrong tensor name (order)
    let mut b = good.clone();
    b[entry_at(0)] = b'X';
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::MissingTensor { index: 0, .. })
    ));
    // wrong shape of an entry
    let mut b = good.clone();
    b[entry_at(1) + 40..entry_at(1) + 44].copy_from_slice(&65u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(ModelError::Shape { .. })));
    // unknown dtype
    let mut b = good.clone();
    b[entry_at(1) + 32..entry_at(1) + 36].copy_from_slice(&99u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::BadEntry {
            reason: "unknown dtype",
            ..
        })
    ));
    // overlapping tensors: point entry 1 at entry 0's payload
    let mut b = good.clone();
    let off0 = b[entry_at(0) + 48..entry_at(0) + 56].to_vec();
    b[entry_at(1) + 48..entry_at(1) + 56].copy_from_slice(&off0);
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(ModelError::Overlap { .. })));
    // out of range offset
    let mut b = good.clone();
    b[entry_at(1) + 48..entry_at(1) + 56]
        .copy_from_slice(&((n as u64 + 64) / 64 * 64).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::Truncated {
            what: "tensor payload",
            ..
        })
    ));
    // misaligned offset
    let mut b = good.clone();
    let off = u64::from_le_bytes(b[entry_at(1) + 48..entry_at(1) + 56].try_into().unwrap());
    b[entry_at(1) + 48..entry_at(1) + 56].copy_from_slice(&(off + 2).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::BadEntry {
            reason: "payload offset not 64-byte aligned",
            ..
        })
    ));
    // embedding code outside 10 bits
    let mut b = good.clone();
    let off =
        u64::from_le_bytes(b[entry_at(0) + 48..entry_at(0) + 56].try_into().unwrap()) as usize;
    b[off..off + 2].copy_from_slice(&600i16.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(ModelError::BadValue { .. })));
    // header field out of range
    let mut b = good.clone();
    b[84..88].copy_from_slice(&16u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::BadHeader {
            field: "final_norm_frac",
            ..
        })
    ));
    // misaligned buffer
    let mut v = vec![0u8; n + 1];
    v[1..].copy_from_slice(&good);
    let aligned_ok = v.as_ptr() as usize % 8 == 0;
    if aligned_ok {
        assert_eq!(
            Model::from_bytes(&v[1..]).err(),
            Some(ModelError::Misaligned)
        );
    }
    // every error message names the problem
    assert!(format!("{}", parse(&good[..n - 1]).unwrap_err()).contains("truncated"));
}

/// Thousands of seeded mutations (with and without resealing the checksum)
/// and truncations: parsing returns Ok or Err, never panics; a file that still
/// parses runs a few decode steps without panicking.
#[test]
fn random_mutations_never_panic() {
    let good = tiny_bytes();
    let n = good.len();
    let mut rng = 0x1234_5678u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 17
    };
    let (mut ok, mut err) = (0, 0);
    for case in 0..3000 {
        let mut b = good.clone();
        match case % 4 {
            0 => b.truncate((next() as usize) % n),
            _ => {
                let flips = 1 + next() % 4;
                for _ in 0..flips {
                    // bias toward header and directory, where structure lives
                    let limit = if next() % 2 == 0 {
                        HEADER_LEN + 90 * ENTRY_LEN
                    } else {
                        n
                    };
                    let i = (next() as usize) % limit.min(n);
                    b[i] = next() as u8;
                }
                if case % 4 != 1 {
                    reseal(&mut b);
                }
            }
        }
        let buf = ModelBuf::from_bytes(&b);
        match buf.model() {
            Ok(m) => {
                ok += 1;
                let mut mem = StateMem::new(&m.config);
                if let Ok(st) = State::new(&m.config, mem.bytes()) {
                    if let Ok(mut d) = Decoder::new(m, Head::derived(&m).unwrap(), st, Serial) {
                        let _ = d.prefill(&[1, 2, 3]);
                        let _ = d.decode(4);
                    }
                }
            }
            Err(_) => err += 1,
        }
    }
    println!("{ok} mutated files still valid, {err} rejected");
    // both outcomes occur: most mutations are caught, and files whose
    // mutation hit only padding or resealed values still load and decode
    assert!(err > 1000, "{err} rejected");
    assert!(ok > 0, "no mutated file stayed valid");
}

/// The SIMD section (FORMAT.md §6): accepted when intact; rejected, each
/// with its reason, when its body, magic, record format, reserved bytes or
/// length are wrong or when it belongs to other weights; mutations never panic.
#[test]
fn simd_section_is_checked() {
    use edgedecoding_model::edq::{simd_len, write::with_simd, SIMD_HEADER};
    use edgedecoding_model::fast::simd_section;
    let plain = tiny_bytes();
    let m0 = ModelBuf::from_bytes(&plain);
    let sec = simd_section(&m0.model().unwrap(), 2, &mut |_, _| {}).unwrap();
    assert_eq!(sec.len(), simd_len(&m0.model().unwrap().config));
    let good = with_simd(&plain, &sec).unwrap();
    let n = good.len();
    let at = n - sec.len(); // the section is the last payload
    {
        let buf = ModelBuf::from_bytes(&good);
        let m = buf.model().unwrap();
        assert_eq!(
            m.file().simd_section().unwrap()[SIMD_HEADER..],
            sec[SIMD_HEADER..]
        );
        // the canonical part is unchanged: same tensors as the plain file
        assert_eq!(m.emb, m0.model().unwrap().emb);
    }
    let reason = |b: &[u8]| match parse(b) {
        Err(ModelError::BadValue { reason, .. }) => reason,
        other => panic!("expected BadValue, got {other:?}"),
    };
    // the header checksum covers only the bytes before the section
    let reseal_before = |b: &mut Vec<u8>| {
        let s = checksum(&b[..at]);
        b[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&s.to_le_bytes());
    };
    let mut b = good.clone();
    b[at + SIMD_HEADER + 100] ^= 1;
    assert!(reason(&b).contains("content hash"));
    let mut b = good.clone();
    b[at] = b'X';
    assert!(reason(&b).contains("magic"));
    let mut b = good.clone();
    b[at + 8] = 3;
    assert!(reason(&b).contains("record format"));
    let mut b = good.clone();
    b[at + 40] = 1;
    assert!(reason(&b).contains("reserved"));
    // a weight byte changed (and the header resealed): the section is stale
    let mut b = good.clone();
    b[at - 64] ^= 0x10;
    reseal_before(&mut b);
    assert!(reason(&b).contains("other weights"));
    let mut b = good.clone();
    b[HEADER_LEN + 200] ^= 0x10; // directory byte, not resealed
    assert!(matches!(parse(&b), Err(ModelError::Checksum { .. })));
    assert!(matches!(
        parse(&good[..n - 64]),
        Err(ModelError::Truncated { .. })
    ));
    // seeded mutations of the whole file: Ok or Err, never a panic
    let mut rng = 0x5eed_u64;
    for case in 0..400 {
        let mut b = good.clone();
        for _ in 0..1 + case % 3 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = if case % 2 == 0 {
                at + (rng >> 20) as usize % sec.len()
            } else {
                (rng >> 20) as usize % n
            };
            b[i] = (rng >> 8) as u8;
        }
        if case % 3 == 0 {
            reseal_before(&mut b);
        }
        let _ = parse(&b);
    }
}

/// The RoPE ROM entry (FORMAT.md §3): stored by the converter, checked for
/// shape, order and Q14 range, covered by the header checksum (also when a
/// SIMD section follows it).
#[test]
fn rope_rom_entry_is_checked() {
    use edgedecoding_model::convert::rope_rom;
    use edgedecoding_model::edq::{write::with_extras, write::with_simd, EdqFile, Extras};
    use edgedecoding_model::fast::simd_section;
    use edgedecoding_model::TensorName;
    let good = tiny_bytes();
    let f = EdqFile::parse(&good).unwrap();
    let i = f.len() - 1;
    assert_eq!(f.entry(i).unwrap().name, TensorName::new("rope_rom"));
    let cfg = f.config;
    let stored: Vec<i16> = f
        .rope_rom()
        .unwrap()
        .chunks_exact(2)
        .map(|w| i16::from_le_bytes([w[0], w[1]]))
        .collect();
    assert_eq!(stored, rope_rom(&cfg).unwrap());
    let off =
        u64::from_le_bytes(good[entry_at(i) + 48..entry_at(i) + 56].try_into().unwrap()) as usize;
    // values outside Q14
    for v in [16385i16, -16385, i16::MIN] {
        let mut b = good.clone();
        b[off + 6..off + 8].copy_from_slice(&v.to_le_bytes());
        reseal(&mut b);
        assert!(
            matches!(parse(&b), Err(ModelError::BadValue { reason, .. }) if reason.contains("Q14")),
            "{v}"
        );
    }
    let mut b = good.clone();
    b[off + 6..off + 8].copy_from_slice(&(-16384i16).to_le_bytes());
    reseal(&mut b);
    parse(&b).unwrap();
    // not resealed: the checksum covers it
    let mut b = good.clone();
    b[off + 1] ^= 1;
    assert!(matches!(parse(&b), Err(ModelError::Checksum { .. })));
    // wrong shape
    let mut b = good.clone();
    b[entry_at(i) + 36..entry_at(i) + 40].copy_from_slice(&(cfg.ctx as u32).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(parse(&b), Err(ModelError::Shape { .. })));
    // unknown name at the optional position
    let mut b = good.clone();
    b[entry_at(i) + 7] = b'x';
    reseal(&mut b);
    assert!(matches!(
        parse(&b),
        Err(ModelError::MissingTensor { expected, .. }) if expected == TensorName::new("tokenizer")
    ));

    // all three optional entries, then each out of order
    let m0 = ModelBuf::from_bytes(&good);
    let sec = simd_section(&m0.model().unwrap(), 2, &mut |_, _| {}).unwrap();
    let full = with_extras(
        &good,
        &Extras {
            tokenizer: Some(b"{\"x\": 1}"),
            simd: Some(&sec),
            ..f.extras()
        },
    )
    .unwrap();
    let ff = EdqFile::parse(&full).unwrap();
    let n = ff.len();
    assert_eq!(ff.tokenizer().unwrap(), b"{\"x\": 1}");
    assert_eq!(ff.rope_rom(), f.rope_rom());
    assert!(ff.simd_section().is_some());
    assert_eq!(with_simd(&full, &sec).unwrap(), full);
    // with a SIMD section the header checksum covers the bytes before it
    let simd_at = full.len() - sec.len();
    let rename = |b: &mut Vec<u8>, k: usize, name: &str| {
        b[entry_at(k)..entry_at(k) + 32].fill(0);
        b[entry_at(k)..entry_at(k) + name.len()].copy_from_slice(name.as_bytes());
        let s = checksum(&b[..simd_at]);
        b[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&s.to_le_bytes());
    };
    let mut b = full.clone();
    rename(&mut b, n - 2, "tokenizer"); // a second tokenizer in the ROM's place
    assert!(matches!(
        parse(&b),
        Err(ModelError::MissingTensor { expected, .. }) if expected == TensorName::new("rope_rom")
    ));
    let mut b = full.clone();
    rename(&mut b, n - 1, "rope_rom"); // a second ROM in the SIMD section's place
    reseal(&mut b); // (no SIMD section by name now: the checksum covers all)
    assert!(matches!(
        parse(&b),
        Err(ModelError::MissingTensor { expected, .. }) if expected == TensorName::new("simd_panels")
    ));
    // the ROM is before the SIMD section: covered by the header checksum
    let rom_at = u64::from_le_bytes(
        full[entry_at(n - 2) + 48..entry_at(n - 2) + 56]
            .try_into()
            .unwrap(),
    ) as usize;
    let mut b = full.clone();
    b[rom_at + 3] ^= 1;
    assert!(matches!(parse(&b), Err(ModelError::Checksum { .. })));

    // a file without the ROM (written before it was stored) still loads
    let old = with_extras(
        &good,
        &Extras {
            rope_rom: None,
            ..f.extras()
        },
    )
    .unwrap();
    let buf = ModelBuf::from_bytes(&old);
    assert!(buf.model().unwrap().rope.is_none());
}

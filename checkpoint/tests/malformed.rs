//! Malformed GGUF input: every case gives its typed error, nothing panics.

mod common;

use common::*;
use edgedecoding_checkpoint::{gguf, Error, GgmlType, GgufFile, LoadOptions};
use edgedecoding_model::float_ref::FloatModel;

fn tiny() -> Vec<u8> {
    fixture_bytes("tiny_qwen2.gguf")
}

fn parse(b: Vec<u8>) -> Result<GgufFile, Error> {
    GgufFile::from_bytes("mut.gguf", b)
}

fn load(b: Vec<u8>) -> Result<FloatModel, Error> {
    let f = parse(b)?;
    gguf::load_qwen2(&f, &LoadOptions::new(64), &mut |_, _, _| {})
}

#[test]
fn truncation_at_every_offset_of_the_header_and_metadata() {
    let b = tiny();
    let data = GgufFile::from_bytes("x", b.clone()).unwrap().data_section() as usize;
    let mut n_trunc = 0;
    for n in 0..data {
        match parse(b[..n].to_vec()) {
            Err(e @ Error::Truncated { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("mut.gguf") && msg.contains("byte offset"),
                    "{msg}"
                );
                n_trunc += 1;
            }
            // cut in the padding after the last tensor info: the data is gone
            Err(Error::TensorOutOfBounds { .. }) => {}
            other => panic!("cut at {n} of {data}: {:?}", other.map(|_| ())),
        }
    }
    assert!(n_trunc > data * 9 / 10);
    // cuts inside the data section: some tensor runs past the end
    let f = GgufFile::from_bytes("x", b.clone()).unwrap();
    let end = f
        .tensors()
        .iter()
        .map(|t| t.data_offset + t.n_bytes.unwrap())
        .max()
        .unwrap() as usize;
    for n in (data..end).step_by(97) {
        let e = parse(b[..n].to_vec()).unwrap_err();
        match &e {
            Error::TensorOutOfBounds {
                tensor, file_len, ..
            } => {
                assert_eq!(*file_len, n as u64);
                assert!(e.to_string().contains(tensor.as_str()));
            }
            other => panic!("cut at {n}: {other:?}"),
        }
    }
}

#[test]
fn bad_magic_and_versions() {
    let mut b = tiny();
    b[0] = b'X';
    let e = parse(b).unwrap_err();
    assert!(matches!(e, Error::BadMagic { found, .. } if &found == b"XGUF"));
    assert!(e.to_string().contains("magic"));
    for (v, be) in [
        (1u32, false),
        (4, false),
        (0, false),
        (3u32.swap_bytes(), true),
    ] {
        let mut b = tiny();
        b[4..8].copy_from_slice(&v.to_le_bytes());
        let e = parse(b).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { version, .. } if version == v));
        assert_eq!(e.to_string().contains("big-endian"), be, "{e}");
    }
    assert!(matches!(parse(Vec::new()), Err(Error::Truncated { .. })));
}

#[test]
fn unknown_tensor_type() {
    let mut b = tiny();
    let o = info_offsets(&b, "blk.1.ffn_gate.weight");
    b[o.ty..o.ty + 4].copy_from_slice(&99u32.to_le_bytes());
    // the file still parses (unknown types are only refused when read) ...
    let f = parse(b.clone()).unwrap();
    assert_eq!(
        f.tensor("blk.1.ffn_gate.weight").unwrap().ty,
        GgmlType::Other(99)
    );
    // ... and loading names the tensor and the type
    let e = load(b).unwrap_err();
    match &e {
        Error::UnsupportedTensorType { tensor, ty, .. } => {
            assert_eq!(tensor, "blk.1.ffn_gate.weight");
            assert_eq!(ty.id(), 99);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("blk.1.ffn_gate.weight") && msg.contains("type id 99"),
        "{msg}"
    );
}

#[test]
fn wrong_architecture() {
    let mut b = tiny();
    let at = kv_type_offset(&b, "general.architecture");
    assert_eq!(&b[at + 12..at + 17], b"qwen2");
    b[at + 12..at + 17].copy_from_slice(b"llama");
    let e = load(b).unwrap_err();
    assert!(matches!(e, Error::UnsupportedArchitecture { ref arch, .. } if arch == "llama"));
    assert!(e
        .to_string()
        .contains("unsupported architecture llama (only qwen2)"));
}

#[test]
fn missing_tensor_and_missing_key() {
    let mut b = tiny();
    let o = info_offsets(&b, "blk.1.ffn_up.weight");
    b[o.name + 11] = b'v'; // blk.1.ffn_uv.weight
    let e = load(b).unwrap_err();
    assert!(
        matches!(e, Error::MissingTensor { ref tensor, .. } if tensor == "blk.1.ffn_up.weight"),
        "{e:?}"
    );
    assert!(e.to_string().contains("mut.gguf"));

    let mut b = tiny();
    let at = kv_type_offset(&b, "qwen2.block_count");
    b[at - 5] = b'X'; // qwen2.block_Xount
    let e = load(b).unwrap_err();
    assert!(matches!(e, Error::MissingKey { ref key, .. } if key == "qwen2.block_count"));

    let mut b = tiny();
    let at = kv_type_offset(&b, "qwen2.attention.head_count");
    b[at..at + 4].copy_from_slice(&6u32.to_le_bytes()); // UINT32 -> FLOAT32
    let e = load(b).unwrap_err();
    assert!(
        matches!(e, Error::WrongKeyType { ref key, .. } if key == "qwen2.attention.head_count")
    );
}

#[test]
fn shape_mismatch() {
    // dims [64, 32] -> [32, 64]: same size, wrong shape
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_k.weight");
    b[o.dims..o.dims + 8].copy_from_slice(&32u64.to_le_bytes());
    b[o.dims + 8..o.dims + 16].copy_from_slice(&64u64.to_le_bytes());
    let e = load(b).unwrap_err();
    match &e {
        Error::ShapeMismatch {
            tensor,
            found,
            expected,
            ..
        } => {
            assert_eq!(tensor, "blk.0.attn_k.weight");
            assert_eq!(found, &[32, 64]);
            assert_eq!(expected, &[64, 32]);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("input dimension first"));
    // metadata disagreeing with the tensors
    let mut b = tiny();
    let at = kv_type_offset(&b, "qwen2.feed_forward_length");
    b[at + 4..at + 8].copy_from_slice(&136u32.to_le_bytes());
    let e = load(b).unwrap_err();
    assert!(
        matches!(e, Error::ShapeMismatch { ref tensor, .. } if tensor == "blk.0.ffn_gate.weight"),
        "{e:?}"
    );
    // inconsistent heads
    let mut b = tiny();
    let at = kv_type_offset(&b, "qwen2.attention.head_count");
    b[at + 4..at + 8].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(load(b), Err(Error::BadValue { .. })));
    let mut b = tiny();
    let at = kv_type_offset(&b, "qwen2.attention.head_count");
    b[at + 4..at + 8].copy_from_slice(&2u32.to_le_bytes()); // head_dim 32
    assert!(matches!(load(b), Err(Error::Config { .. })));
}

#[test]
fn structural_errors() {
    // absurd counts and lengths
    for (at, what) in [(8usize, "tensor count"), (16, "metadata count")] {
        let mut b = tiny();
        b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = parse(b).unwrap_err();
        assert!(matches!(e, Error::Truncated { .. }), "{what}: {e:?}");
    }
    let mut b = tiny();
    let at = kv_type_offset(&b, "tokenizer.ggml.tokens");
    b[at + 8..at + 16].copy_from_slice(&(1u64 << 40).to_le_bytes()); // element count
    let e = parse(b).unwrap_err();
    assert!(e.to_string().contains("tokenizer.ggml.tokens"), "{e}");
    let mut b = tiny();
    let at = kv_type_offset(&b, "tokenizer.ggml.pre");
    b[at + 4..at + 12].copy_from_slice(&u64::MAX.to_le_bytes()); // string length
    assert!(matches!(parse(b), Err(Error::Truncated { .. })));
    // unknown value type
    let mut b = tiny();
    let at = kv_type_offset(&b, "general.name");
    b[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
    let e = parse(b).unwrap_err();
    assert!(
        matches!(e, Error::BadValueType { type_id: 13, ref key, offset, .. }
        if key == "general.name" && offset == at as u64)
    );
    // invalid UTF-8
    let mut b = tiny();
    let at = kv_type_offset(&b, "tokenizer.ggml.pre");
    b[at + 12] = 0xff;
    assert!(matches!(parse(b), Err(Error::InvalidUtf8 { .. })));
    // bad alignment
    let mut b = tiny();
    let at = kv_type_offset(&b, "general.alignment");
    b[at + 4..at + 8].copy_from_slice(&48u32.to_le_bytes());
    assert!(matches!(
        parse(b),
        Err(Error::BadAlignment { value: 48, .. })
    ));
    // misaligned tensor
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.bias");
    let v = u64::from_le_bytes(b[o.rel_offset..o.rel_offset + 8].try_into().unwrap());
    b[o.rel_offset..o.rel_offset + 8].copy_from_slice(&(v + 4).to_le_bytes());
    assert!(matches!(
        parse(b),
        Err(Error::MisalignedTensor { alignment: 64, .. })
    ));
    // out-of-bounds tensor
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.bias");
    b[o.rel_offset..o.rel_offset + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        parse(b),
        Err(Error::TensorOutOfBounds { ref tensor, .. }) if tensor == "blk.0.attn_q.bias"
    ));
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.bias");
    b[o.rel_offset..o.rel_offset + 8].copy_from_slice(&(u64::MAX - 63).to_le_bytes());
    assert!(matches!(parse(b), Err(Error::TensorOutOfBounds { .. })));
    // too many dims, overflowing dims, rows not whole blocks
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.weight");
    b[o.n_dims..o.n_dims + 4].copy_from_slice(&5u32.to_le_bytes());
    assert!(matches!(parse(b), Err(Error::BadTensorDims { .. })));
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.weight");
    b[o.dims + 8..o.dims + 16].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(parse(b), Err(Error::BadTensorDims { .. })));
    let mut b = tiny();
    let o = info_offsets(&b, "blk.0.attn_q.weight"); // Q4_0: blocks of 32
    b[o.dims..o.dims + 8].copy_from_slice(&48u64.to_le_bytes());
    let e = parse(b).unwrap_err();
    assert!(e.to_string().contains("block size 32"), "{e}");
    // duplicate tensor name
    let mut b = tiny();
    let o = info_offsets(&b, "blk.1.attn_q.bias");
    b[o.name + 4] = b'0';
    assert!(matches!(
        parse(b),
        Err(Error::DuplicateTensor { ref tensor, .. }) if tensor == "blk.0.attn_q.bias"
    ));
    // duplicate key
    let mut b = tiny();
    let at = kv_type_offset(&b, "tokenizer.ggml.eos_token_id");
    b[at - 12..at - 9].copy_from_slice(b"bos"); // eos_token_id -> bos_token_id
    let e = parse(b).unwrap_err();
    assert!(matches!(e, Error::DuplicateKey { .. }), "{e:?}");
}

#[test]
fn nesting_depth_is_bounded() {
    // 20 nested arrays of one element each, then an i32
    let mut payload = Vec::new();
    for _ in 0..20 {
        payload.extend_from_slice(&9u32.to_le_bytes());
        payload.extend_from_slice(&1u64.to_le_bytes());
    }
    payload.extend_from_slice(&5u32.to_le_bytes());
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&7i32.to_le_bytes());
    let b = GgufBytes::new().kv("deep", 9, payload).bytes();
    assert!(matches!(
        parse(b),
        Err(Error::NestingTooDeep { ref key, .. }) if key == "deep"
    ));
    // shallow nesting is fine
    let b = GgufBytes::new()
        .kv(
            "ok",
            9,
            [
                9u32.to_le_bytes().as_slice(),
                &1u64.to_le_bytes(),
                &5u32.to_le_bytes(),
                &1u64.to_le_bytes(),
                &7i32.to_le_bytes(),
            ]
            .concat(),
        )
        .bytes();
    let f = parse(b).unwrap();
    assert_eq!(f.tensors().len(), 0);
    assert_eq!(
        f.metadata().get_array("ok").unwrap().len(),
        1,
        "one nested array"
    );
    // a metadata-only file with no architecture
    let b = GgufBytes::new().kv_u32("x", 1).bytes();
    let f = parse(b).unwrap();
    let e = gguf::load_qwen2(&f, &LoadOptions::new(64), &mut |_, _, _| {}).unwrap_err();
    assert!(matches!(e, Error::MissingKey { ref key, .. } if key == "general.architecture"));
    let b = GgufBytes::new()
        .kv_str("general.architecture", "qwen2")
        .bytes();
    let e =
        gguf::load_qwen2(&parse(b).unwrap(), &LoadOptions::new(64), &mut |_, _, _| {}).unwrap_err();
    assert!(matches!(e, Error::MissingTensor { ref tensor, .. } if tensor == "token_embd.weight"));
}

/// Random byte mutations and truncations of the tiny model: errors are fine,
/// panics are not; whatever parses is loaded and every tensor dequantized.
#[test]
fn random_mutations_never_panic() {
    let orig = tiny();
    let data = GgufFile::from_bytes("x", orig.clone())
        .unwrap()
        .data_section() as usize;
    let mut rng = Rng(0x5eed);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..3000 {
        let mut b = orig.clone();
        match rng.below(6) {
            0 => b.truncate(rng.below(orig.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(data);
                    b[i] = rng.next() as u8;
                }
            }
            2 => {
                // a plausible-but-wrong small integer in a header field
                let i = rng.below(data - 8);
                let v = [0u64, 1, 2, 3, 31, 64, 255, 1 << 32, u64::MAX][rng.below(9)];
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            3 => {
                let i = rng.below(data);
                let n = rng.below(16).min(b.len() - i);
                b.drain(i..i + n);
            }
            4 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            _ => {
                let i = rng.below(data);
                let fill = rng.next() as u8;
                for _ in 0..rng.below(8) {
                    b.insert(i, fill);
                }
            }
        }
        match GgufFile::from_bytes("m.gguf", b) {
            Ok(f) => {
                ok += 1;
                for t in f.tensors() {
                    let _ = f.dequantize(t);
                    let _ = f.dequantize_rows(t, &[0, 3, 1000]);
                }
                let _ = gguf::load_qwen2(
                    &f,
                    &LoadOptions {
                        ctx: 64,
                        keep: Some(vec![1, 2, 200]),
                        use_output_head: true,
                    },
                    &mut |_, _, _| {},
                );
            }
            Err(e) => {
                err += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}

//! Every supported GGML type dequantizes bit-for-bit like `gguf.quants`
//! (fixture `types.gguf`), and every metadata value type reads back.

mod common;

use common::*;
use edgedecoding_checkpoint::{
    load_float_model, Array, Error, GgmlType, GgufFile, LoadOptions, Value,
};

const TYPES: [&str; 11] = [
    "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K",
];

#[test]
fn every_type_matches_the_python_oracle_bit_for_bit() {
    let f = GgufFile::open(&fixture("types.gguf")).unwrap();
    let manifest = fixture_json("types_expected.json");
    let expected = fixture_f32("types_expected.bin");
    let entries = manifest["tensors"].as_array().unwrap();
    let mut seen = Vec::new();
    for e in entries {
        let name = e["name"].as_str().unwrap();
        let ty = e["type"].as_str().unwrap();
        let off = e["offset"].as_u64().unwrap() as usize;
        let n = e["count"].as_u64().unwrap() as usize;
        let want = &expected[off..off + n];
        let t = f.tensor(name).unwrap();
        assert_eq!(t.ty.name(), ty);
        assert!(t.ty.is_supported());
        let dims: Vec<u64> = e["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{name}");
        let got = f.dequantize(t).unwrap();
        assert_bits_eq(&got, want, name);
        assert_eq!(wsum(&got), e["wsum"].as_u64().unwrap(), "{name}");
        // row access paths agree with the whole-tensor path
        let cols = dims[0] as usize;
        let swapped = f.dequantize_rows(t, &[1, 0]).unwrap();
        assert_bits_eq(&swapped[..cols], &want[cols..], name);
        assert_bits_eq(&swapped[cols..], &want[..cols], name);
        let second = f.dequantize_row_range(t, 1..2).unwrap();
        assert_bits_eq(&second, &want[cols..], name);
        seen.push(ty.to_string());
    }
    assert_eq!(seen, TYPES);
}

#[test]
fn f16_specials_are_exact() {
    let f = GgufFile::open(&fixture("types.gguf")).unwrap();
    let v = f.dequantize(f.tensor("types.F16").unwrap()).unwrap();
    let row1 = &v[512..];
    assert_eq!(row1[0].to_bits(), 0);
    assert_eq!(row1[1].to_bits(), 0x8000_0000);
    assert_eq!(row1[2], 2f32.powi(-24));
    assert_eq!(row1[8], f32::INFINITY);
    assert_eq!(row1[9], f32::NEG_INFINITY);
    assert!(row1[10].is_nan());
    assert_eq!(row1[12], 1.0);
}

#[test]
fn unsupported_type_is_a_typed_error_naming_tensor_and_type() {
    let f = GgufFile::open(&fixture("types.gguf")).unwrap();
    let t = f.tensor("types.unsupported_Q2_K").unwrap();
    assert_eq!(t.ty, GgmlType::Other(10));
    assert_eq!(t.n_bytes, None);
    let e = f.dequantize(t).unwrap_err();
    match &e {
        Error::UnsupportedTensorType { tensor, ty, .. } => {
            assert_eq!(tensor, "types.unsupported_Q2_K");
            assert_eq!(*ty, GgmlType::Other(10));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("types.unsupported_Q2_K") && msg.contains("Q2_K"));
    assert!(msg.contains("types.gguf") && msg.contains("byte offset"));
}

#[test]
fn every_metadata_value_type_reads_back() {
    let f = GgufFile::open(&fixture("types.gguf")).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    let md = f.metadata();
    assert_eq!(md.get("test.u8"), Some(&Value::U8(200)));
    assert_eq!(md.get("test.i8"), Some(&Value::I8(-100)));
    assert_eq!(md.get("test.u16"), Some(&Value::U16(60000)));
    assert_eq!(md.get("test.i16"), Some(&Value::I16(-30000)));
    assert_eq!(md.get("test.u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(md.get("test.i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(md.get("test.f32"), Some(&Value::F32(0.125)));
    assert_eq!(md.get("test.bool"), Some(&Value::Bool(true)));
    assert_eq!(md.get_str("test.string").unwrap(), "héllo ✓");
    assert_eq!(md.get("test.u64"), Some(&Value::U64((1 << 63) + 5)));
    assert_eq!(md.get("test.i64"), Some(&Value::I64(-(1 << 62))));
    assert_eq!(md.get("test.f64"), Some(&Value::F64(-2.5e-300)));
    assert_eq!(
        md.get_array("test.arr_i32").unwrap(),
        &Array::I32(vec![1, -2, 3])
    );
    assert_eq!(md.get_int_array("test.arr_i32").unwrap(), vec![1, -2, 3]);
    assert_eq!(md.get_str_array("test.arr_str").unwrap(), ["a", "", "ü"]);
    assert_eq!(
        md.get_array("test.arr_f32").unwrap(),
        &Array::F32(vec![0.5, -1.0])
    );
    assert_eq!(
        md.get_array("test.arr_bool").unwrap(),
        &Array::Bool(vec![true, false])
    );
    assert_eq!(
        md.get_array("test.arr_u64").unwrap(),
        &Array::U64(vec![1, u64::MAX])
    );
    assert_eq!(
        md.get_array("test.arr_nested").unwrap(),
        &Array::Array(vec![
            Array::I32(vec![1, 2]),
            Array::String(vec!["x".into()])
        ])
    );
    // typed getters convert between integer widths and check ranges
    assert_eq!(md.get_u64("test.u8").unwrap(), 200);
    assert_eq!(md.get_u32("test.u32").unwrap(), 4_000_000_000);
    assert_eq!(md.get_i64("test.i8").unwrap(), -100);
    assert_eq!(md.get_f64("test.f32").unwrap(), 0.125);
    assert!(md.get_bool("test.bool").unwrap());
    assert!(matches!(
        md.get_u64("test.i8"),
        Err(Error::BadValue { ref key, .. }) if key == "test.i8"
    ));
    assert!(matches!(
        md.get_u32("test.u64"),
        Err(Error::BadValue { .. })
    ));
    assert!(matches!(
        md.get_int_array("test.arr_u64"),
        Err(Error::BadValue { .. })
    ));
    let e = md.get_str("test.u32").unwrap_err();
    assert!(matches!(e, Error::WrongKeyType { .. }));
    assert!(e.to_string().contains("test.u32") && e.to_string().contains("UINT32"));
    let e = md.get_str_array("test.arr_i32").unwrap_err();
    assert!(e.to_string().contains("ARRAY[INT32]"), "{e}");
    let e = md.get_u64("no.such.key").unwrap_err();
    assert!(matches!(e, Error::MissingKey { ref key, .. } if key == "no.such.key"));
    assert!(e.to_string().contains("types.gguf"));
    // file order is kept
    let keys: Vec<&str> = md.iter().map(|(k, _)| k).collect();
    assert_eq!(keys[0], "general.architecture");
    assert!(keys.contains(&"test.arr_nested"));
}

#[test]
fn wrong_architecture_is_rejected_clearly() {
    let e = load_float_model(&fixture("types.gguf"), &LoadOptions::new(64)).unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedArchitecture { arch, .. } if arch == "test"),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .contains("unsupported architecture test (only qwen2)"));
}

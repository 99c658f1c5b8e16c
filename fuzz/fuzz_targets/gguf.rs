//! The GGUF reader (`GgufFile::from_bytes`: header, every metadata type,
//! tensor infos, alignment) and what is built on it: the typed metadata
//! getters, dequantization of a few rows of every tensor, and loading the
//! Qwen2 float model.
#![no_main]

use edgedecoding_checkpoint::{gguf, GgufFile, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    let md = f.metadata();
    for (k, v) in md.iter().take(64) {
        let _ = v.to_string();
        let _ = (v.as_int(), v.as_f64(), v.as_bool(), v.as_str());
        if let Some(a) = v.as_array() {
            let _ = (a.len(), a.elem_type_name(), a.as_strings());
            if a.len() <= 4096 {
                let _ = (a.to_i64_vec(), a.to_f64_vec());
            }
        }
        let _ = (md.get_u32(k), md.get_str_array(k));
    }
    let _ = md.architecture();
    for t in f.tensors().iter().take(32) {
        let _ = f.tensor_bytes(t);
        let rows = t.n_rows().min(2) as usize;
        if t.row_len() <= 1 << 16 {
            let _ = f.dequantize_row_range(t, 0..rows);
            let _ = f.dequantize_rows(t, &[0, 1]);
        }
    }
    let _ = gguf::qwen2_config(&f, &LoadOptions::new(16));
    if let Ok(m) = gguf::load_qwen2(&f, &LoadOptions::new(16), &mut |_, _, _| {}) {
        assert_eq!(m.layers.len(), m.config.n_layers);
        let _ = m.forward(&[0, 1], 1, None, 1..2, &mut |_, _| {});
    }
});

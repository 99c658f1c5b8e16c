//! `export-hw` on small models: every group of every image decodes back to
//! the model's weights (K/V widened), side files and pruning are consistent.

mod common;

use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::lm_head::DerivedHead;
use edgedecoding_model::builtin::{generate, DEFAULT_SEED};
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{Config, Model};
use edgedecoding_reference_vectors::export::{export_hw, ExportOptions};
use edgedecoding_reference_vectors::hw::{
    runs_of, unpack_group, widened_source_row, HALF_BYTES, RUN_WORDS,
};
use edgedecoding_reference_vectors::manifest::{sha256_hex, Manifest};
use serde_json::Value;

fn read<T: Copy, const N: usize>(p: &std::path::Path, f: fn([u8; N]) -> T) -> Vec<T> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(N)
        .map(|b| f(b.try_into().unwrap()))
        .collect()
}

fn check_export(m: &Model<'_>, keep_at_export: Option<Vec<u32>>, name: &str) {
    let c = m.config;
    let dir = common::tmp_dir(name);
    let opts = ExportOptions {
        keep: keep_at_export.clone(),
        threads: 2,
        seed: 1,
    };
    let sum = export_hw(m, "test", &dir, &opts).unwrap();
    let man = Manifest::read(&dir).unwrap();
    for f in &man.files {
        let b = std::fs::read(dir.join(&f.path)).unwrap();
        assert_eq!(
            (b.len() as u64, sha256_hex(&b)),
            (f.bytes, f.sha256.clone()),
            "{}",
            f.path
        );
    }
    let layout: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("layout.json")).unwrap()).unwrap();
    let lo = std::fs::read(dir.join("decoder_weights.lo.bin")).unwrap();
    let hi = std::fs::read(dir.join("decoder_weights.hi.bin")).unwrap();
    let rexp: Vec<i8> = read(&dir.join("decoder_rexp.bin"), i8::from_le_bytes);
    let bias: Vec<i32> = read(&dir.join("decoder_bias.bin"), i32::from_le_bytes);
    assert_eq!(lo.len(), hi.len());
    assert_eq!(lo.len() as u64 + hi.len() as u64, sum.decoder_bytes);
    let h = c.hidden;
    let mats = layout["decoder_matrices"].as_array().unwrap();
    assert_eq!(mats.len(), 7 * c.n_layers);
    let mut words = 0usize;
    for (i, mj) in mats.iter().enumerate() {
        let (l, name) = (i / 7, mj["name"].as_str().unwrap());
        let lw = m.layer(l).unwrap();
        let src = match name {
            "q" => lw.q,
            "k" => lw.k,
            "v" => lw.v,
            "o" => lw.o,
            "gate" => lw.gate,
            "up" => lw.up,
            "down" => lw.down,
            _ => unreachable!(),
        };
        let widened = name == "k" || name == "v";
        let rows = if widened { h } else { src.rows() };
        let cols = src.cols();
        assert_eq!(mj["rows"].as_u64().unwrap() as usize, rows);
        assert_eq!(
            mj["word_offset"].as_u64().unwrap() as usize,
            words,
            "{name} of layer {l}"
        );
        let runs = runs_of(rows, cols);
        let (a, b) = (words * HALF_BYTES, (words + runs * RUN_WORDS) * HALF_BYTES);
        let ro = mj["rexp_offset"].as_u64().unwrap() as usize;
        for r in 0..rows {
            let sr = if widened {
                widened_source_row(r, c.n_heads, c.n_kv_heads, c.head_dim)
            } else {
                r
            };
            assert_eq!(rexp[ro + r], src.row(sr).0);
            for g in 0..cols / 8 {
                assert_eq!(
                    unpack_group(&lo[a..b], &hi[a..b], rows, cols, r, g),
                    src.group(sr, g, ()),
                    "layer {l} {name} row {r} group {g}"
                );
            }
        }
        words += runs * RUN_WORDS;
        if name == "k" || name == "v" {
            let (bsrc, k) = if name == "k" {
                (lw.k_bias, 1)
            } else {
                (lw.v_bias, 2)
            };
            for r in 0..h {
                assert_eq!(
                    bias[(l * 3 + k) * h + r],
                    bsrc[widened_source_row(r, c.n_heads, c.n_kv_heads, c.head_dim)]
                );
            }
        }
    }
    assert_eq!(words * HALF_BYTES, lo.len());
    // vocabulary, head, embedding, activations
    let keep: Vec<u32> = read(&dir.join("keep.bin"), u32::from_le_bytes);
    let want: Vec<u32> = match (&keep_at_export, m.keep) {
        (Some(k), _) => k.clone(),
        (None, Some(k)) => k.to_vec(),
        (None, None) => (0..c.vocab as u32).collect(),
    };
    assert_eq!(keep, want);
    let rows_of_emb: Vec<u32> = match keep_at_export {
        Some(_) => keep.clone(),
        None => (0..c.n_kept as u32).collect(),
    };
    let emb: Vec<i16> = read(&dir.join("embedding.bin"), i16::from_le_bytes);
    assert_eq!(emb.len(), keep.len() * h);
    for (i, &r) in rows_of_emb.iter().enumerate() {
        assert_eq!(
            emb[i * h..(i + 1) * h],
            m.emb[r as usize * h..(r as usize + 1) * h]
        );
    }
    let head = DerivedHead::new(m.emb, h, m.globals.emb_exp, Some(&rows_of_emb)).unwrap();
    let hlo = std::fs::read(dir.join("lm_head.lo.bin")).unwrap();
    let hhi = std::fs::read(dir.join("lm_head.hi.bin")).unwrap();
    assert_eq!(hlo.len(), runs_of(keep.len(), h) * RUN_WORDS * HALF_BYTES);
    let hrexp: Vec<i8> = read(&dir.join("lm_head_rexp.bin"), i8::from_le_bytes);
    for r in 0..keep.len() {
        let (e, ctx) = head.row(r);
        assert_eq!(hrexp[r], e);
        for g in 0..h / 8 {
            assert_eq!(
                unpack_group(&hlo, &hhi, keep.len(), h, r, g),
                head.group(r, g, ctx)
            );
        }
    }
    assert_eq!(sum.head_rows, keep.len());
    let act: Vec<i32> = read(&dir.join("activations.bin"), i32::from_le_bytes);
    let pr: Vec<u32> = read(&dir.join("activations_pruned.bin"), u32::from_le_bytes);
    let full: Vec<u32> = read(&dir.join("activations_tokens.bin"), u32::from_le_bytes);
    for t in 0..8 {
        let p = pr[t] as usize;
        assert_eq!(full[t], keep[p]);
        let mut want = vec![0i32; h];
        embed_row(&emb[p * h..(p + 1) * h], m.globals.emb_exp, &mut want).unwrap();
        assert_eq!(act[t * h..(t + 1) * h], want[..]);
    }
    assert!(dir.join("hw_layout.h").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tiny_model_full_vocabulary_and_pruned_at_export() {
    let buf = common::tiny();
    let m = buf.model().unwrap();
    check_export(&m, None, "export-full");
    // every 4th id, and an irregular list
    let every4: Vec<u32> = (0..m.config.vocab as u32).step_by(4).collect();
    check_export(&m, Some(every4), "export-keep4");
    check_export(
        &m,
        Some(vec![0, 1, 2, 3, 10, 77, 200, 255]),
        "export-keep-list",
    );
    for (bad, why) in [
        (vec![], "empty"),
        (vec![3, 3], "not strictly increasing (3 then 3)"),
        (vec![5, 2], "not strictly increasing (5 then 2)"),
        (
            vec![1, 256],
            "id 256, outside the model's vocabulary (ids 0..255)",
        ),
    ] {
        let e = export_hw(
            &m,
            "t",
            &common::tmp_dir("export-keep-bad"),
            &ExportOptions {
                keep: Some(bad),
                threads: 1,
                seed: 1,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(why), "{e}");
    }
}

#[test]
fn pruned_model_uses_its_keep_list() {
    let cfg = Config {
        n_kept: 64,
        ctx: 32,
        ..Config::tiny()
    };
    let bytes = generate(&cfg, DEFAULT_SEED, 2, &mut |_, _, _| {}).unwrap();
    let buf = ModelBuf::from_bytes(&bytes);
    let m = buf.model().unwrap();
    assert!(m.keep.is_some());
    check_export(&m, None, "export-pruned");
    let e = export_hw(
        &m,
        "t",
        &common::tmp_dir("export-pruned-keep"),
        &ExportOptions {
            keep: Some(vec![0, 4, 8]),
            threads: 1,
            seed: 1,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("already pruned"), "{e}");
}

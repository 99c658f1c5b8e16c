//! The conversion cache's key follows everything that decides the bytes: a
//! change of quantizer, of its settings or of the calibration text gives
//! another cached file; round-to-nearest keys do not carry GPTQ settings.

use edgedecoding_runtime::convert::{quantizer_key, Opts, Quantizer, GPTQ_TOKENS};
use edgedecoding_runtime::source::cached_path;
use std::path::PathBuf;

fn opts(q: Quantizer, calib: Option<&str>) -> Opts {
    Opts {
        ctx: None,
        keep: None,
        output_head: false,
        threads: 2,
        quantizer: q,
        calib: calib.map(str::to_string),
    }
}

/// A fresh directory `tag` holding a stand-in checkpoint (the key reads its
/// metadata only): `(dir, model)`.
fn fake_model(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("edq-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.gguf");
    std::fs::write(&model, b"not read").unwrap();
    (dir, model)
}

#[test]
fn cache_key_follows_quantizer_settings_and_calibration_text() {
    let (dir, model) = fake_model("cache-key");
    assert_eq!(quantizer_key(&opts(Quantizer::Rtn, None)), "");
    let g = quantizer_key(&opts(Quantizer::Gptq, None));
    let damp = format!("damp {}", edgedecoding_model::gptq::DAMP);
    assert!(g.contains(&damp), "{g}");
    assert!(g.contains(&format!("tokens {GPTQ_TOKENS}")), "{g}");
    let path = |o: &Opts| cached_path(&dir, &model, o).unwrap();
    let keys = [
        path(&opts(Quantizer::Rtn, None)),
        path(&opts(Quantizer::Gptq, None)),
        path(&opts(Quantizer::Gptq, Some("a calibration text"))),
        path(&opts(Quantizer::Gptq, Some("another calibration text"))),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // the same options give the same file
    assert_eq!(keys[1], path(&opts(Quantizer::Gptq, None)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cache_key_follows_the_keep_files_contents() {
    use edgedecoding_runtime::keep::Keep;
    let (dir, model) = fake_model("cache-keep");
    let file = dir.join("keep.txt");
    for keep in [
        Keep::List(file.clone()),
        Keep::Count {
            n: 300,
            corpus: Some(file.clone()),
        },
    ] {
        let o = Opts {
            keep: Some(keep),
            ..opts(Quantizer::Rtn, None)
        };
        std::fs::write(&file, b"0 1 2").unwrap();
        let before = cached_path(&dir, &model, &o).unwrap();
        assert_eq!(before, cached_path(&dir, &model, &o).unwrap());
        // the same path with other contents (another size) is another key
        std::fs::write(&file, b"0 1 2 3").unwrap();
        assert_ne!(before, cached_path(&dir, &model, &o).unwrap());
        // a keep file that is gone is an error that names it
        std::fs::remove_file(&file).unwrap();
        let e = format!("{:#}", cached_path(&dir, &model, &o).unwrap_err());
        assert!(e.contains("keep.txt"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

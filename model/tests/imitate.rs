//! The float reference imitating the integer stages (`perplexity
//! --attribute`): with every stage imitated it must land near the integer
//! model's logits, far nearer than the plain float reference; imitating
//! nothing must be the plain float reference bit for bit. (A random model
//! amplifies small differences, so what the imitation misses — rounding
//! inside the kernels — is a larger share here than on a real model: there
//! `perplexity --attribute` reports it as a KL.)

mod common;

use edgedecoding_model::builtin::{float_model, DEFAULT_SEED};
use edgedecoding_model::float_ref::{FloatModel, Imitate, Parts};
use edgedecoding_model::{Config, StateMem};

fn logits(m: &FloatModel, toks: &[u32], im: &Imitate) -> Vec<f32> {
    let mut out = Vec::new();
    m.forward_imitating(toks, 2, None, 0..toks.len(), im, &mut |_, l| {
        out.extend_from_slice(l)
    })
    .unwrap();
    out
}

/// RMS distance of float logits from Q12 integer logits.
fn rms(f: &[f32], int: &[i32]) -> f64 {
    let s: f64 = f
        .iter()
        .zip(int)
        .map(|(&a, &b)| (a as f64 - b as f64 / 4096.0).powi(2))
        .sum();
    (s / f.len() as f64).sqrt()
}

#[test]
fn imitating_every_stage_lands_on_the_integer_model() {
    let cfg = Config {
        ctx: 128,
        ..Config::tiny()
    };
    let buf = common::tiny_cfg(cfg);
    let m = buf.model().unwrap();
    let toks = common::tokens(128, 256, 31);
    let mut mem = StateMem::new(&cfg);
    let mut d = common::scalar_decoder(m, &mut mem);
    let mut int = Vec::new();
    d.prefill_all(&toks, &mut |_, l| int.extend_from_slice(l))
        .unwrap();

    let fm = float_model(&cfg, DEFAULT_SEED).unwrap();
    let dq = FloatModel::dequantized(&m).unwrap();
    let fracs: Vec<[u32; 3]> = (0..cfg.n_layers)
        .map(|l| {
            let f = m.layer(l).unwrap().fmt;
            [f.q_frac, f.k_frac, f.v_frac]
        })
        .collect();
    let all = Imitate {
        bfp: true,
        q12: true,
        qkv16: fracs.clone(),
        tables: true,
    };
    let plain = logits(&fm, &toks, &Imitate::default());
    let mixed_none = fm.mixed(&dq, Parts::default()).unwrap();
    let none = logits(&mixed_none, &toks, &Imitate::default());
    assert!(
        plain
            .iter()
            .zip(&none)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "imitating nothing changed the float reference"
    );
    let every = logits(&fm.mixed(&dq, Parts::ALL).unwrap(), &toks, &all);
    let weights_only = logits(&dq, &toks, &Imitate::default());
    let (d_plain, d_weights, d_all) = (
        rms(&plain, &int),
        rms(&weights_only, &int),
        rms(&every, &int),
    );
    println!("rms logit distance from the integer model: float {d_plain:.5}, dequantized parameters {d_weights:.5}, every stage {d_all:.5}");
    // the parameters carry most of the distance; the activation stages most of the rest
    assert!(d_weights < 0.5 * d_plain, "{d_weights} vs {d_plain}");
    let check_all = d_all < 0.6 * d_weights;
    // BFP, the largest activation-side stage, moves the dequantized model
    // toward the integer one; no stage moves it away
    for (name, im) in [
        (
            "bfp",
            Imitate {
                bfp: true,
                ..Imitate::default()
            },
        ),
        (
            "q12",
            Imitate {
                q12: true,
                ..Imitate::default()
            },
        ),
        (
            "qkv16",
            Imitate {
                qkv16: fracs.clone(),
                ..Imitate::default()
            },
        ),
        (
            "tables",
            Imitate {
                tables: true,
                ..Imitate::default()
            },
        ),
    ] {
        let d = rms(&logits(&dq, &toks, &im), &int);
        println!("  dequantized parameters + {name}: {d:.5}");
        let bound = if name == "bfp" { 0.9 } else { 1.001 };
        assert!(d < bound * d_weights, "{name}: {d} vs {d_weights}");
    }
    assert!(check_all, "{d_all} vs {d_weights}");
    // a wrong format count is an error, not a panic
    let bad = Imitate {
        qkv16: vec![[8, 8, 8]],
        ..Imitate::default()
    };
    assert!(fm
        .forward_imitating(&toks[..4], 1, None, 0..4, &bad, &mut |_, _| {})
        .is_err());
}

#[test]
fn logits_of_a_window_equal_those_of_single_positions() {
    // the head runs over chunks of positions; a position's logits must not
    // depend on which others are computed with it (plain and imitating)
    let cfg = Config {
        ctx: 160,
        ..Config::tiny()
    };
    let buf = common::tiny_cfg(cfg);
    let m = buf.model().unwrap();
    let fm = float_model(&cfg, DEFAULT_SEED).unwrap();
    let dq = FloatModel::dequantized(&m).unwrap();
    let toks = common::tokens(150, 256, 7);
    let all = Imitate {
        bfp: true,
        q12: true,
        qkv16: Vec::new(),
        tables: true,
    };
    for (model, im) in [(&fm, Imitate::default()), (&dq, all)] {
        let whole = logits(model, &toks, &im);
        let v = whole.len() / toks.len();
        for t in [0usize, 1, 63, 64, 65, 127, 128, 149] {
            let mut one = Vec::new();
            model
                .forward_imitating(&toks, 1, None, t..t + 1, &im, &mut |i, l| {
                    assert_eq!(i, t);
                    one.extend_from_slice(l)
                })
                .unwrap();
            assert_eq!(one.len(), v);
            assert!(
                one.iter()
                    .zip(&whole[t * v..(t + 1) * v])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "position {t}"
            );
        }
        // a range past the end stops at the last token
        let mut seen = Vec::new();
        model
            .forward_imitating(&toks, 2, None, 140..400, &im, &mut |i, _| seen.push(i))
            .unwrap();
        assert_eq!(seen, (140..150).collect::<Vec<_>>());
    }
}

use std::vec;
use std::vec::Vec;

use super::*;
use crate::bfp::{quantize_bfp, BfpBlock};
use crate::format::{pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix};
use crate::linear::linear;

use edgedecoding_testkit::Lcg;

/// Every implementation this CPU runs (the portable one always).
fn isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn detection_agrees_with_std() {
    let avx512 = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni");
    assert_eq!(Isa::Avx512Vnni.supported(), avx512);
    let avx2 = std::is_x86_feature_detected!("avx2");
    assert_eq!(Isa::Avx2.supported(), avx2);
    assert_eq!(
        Isa::Avx2Vnni.supported(),
        avx2 && std::is_x86_feature_detected!("avxvnni")
    );
    assert!(Isa::Scalar.supported());
    std::println!(
        "backends this CPU runs (all tested): {:?}",
        Isa::ALL
            .iter()
            .filter(|i| i.supported())
            .collect::<Vec<_>>()
    );
    if avx512 {
        assert_eq!(Isa::detect(), Isa::Avx512Vnni);
    }
    for i in Isa::ALL {
        assert_eq!(Isa::from_name(i.name()), Some(i));
    }
}

fn random_matrix(
    rng: &mut Lcg,
    rows: usize,
    cols: usize,
    extreme: bool,
) -> (Vec<u8>, Vec<u8>, Vec<i8>) {
    let mut codes = vec![0u8; packed_codes_len(rows, cols)];
    let mut exps = vec![0u8; packed_exps_len(rows, cols)];
    let mut rexp = vec![0i8; rows];
    for r in 0..rows {
        rexp[r] = -((rng.next() % 24) as i8);
        for g in 0..cols / 8 {
            let grp = match (extreme, rng.next() % 4) {
                (true, 0) => ApotGroup {
                    codes: [-16; 8],
                    s1: 7,
                    s2: 7,
                },
                (true, 1) => ApotGroup {
                    codes: [15; 8],
                    s1: 7,
                    s2: 7,
                },
                (_, 2) => ApotGroup::default(),
                _ => ApotGroup {
                    codes: core::array::from_fn(|_| (rng.next() % 32) as i8 - 16),
                    s1: (rng.next() % 8) as u8,
                    s2: (rng.next() % 8) as u8,
                },
            };
            pack_group(&mut codes, &mut exps, r * (cols / 8) + g, &grp).unwrap();
        }
    }
    (codes, exps, rexp)
}

/// BFP blocks of several kinds: random, the bound's extreme (all −128 at
/// e = 15), alternating exponents 0/15 (split pairs), exponent steps of 6
/// and 7 (the segment rule's edge), zero groups, a uniform exponent.
fn random_blocks(rng: &mut Lcg, n: usize, kind: u64) -> Vec<BfpBlock> {
    (0..n)
        .map(|i| {
            let m: [i8; 8] = core::array::from_fn(|_| (rng.next() % 256) as u8 as i8);
            match kind % 7 {
                0 => BfpBlock {
                    m: [-128; 8],
                    e: 15,
                },
                1 => BfpBlock {
                    m,
                    e: if i % 2 == 0 { 0 } else { 15 },
                },
                2 => BfpBlock {
                    m,
                    e: [0u8, 6, 12, 5, 12, 15, 8][i % 7],
                },
                3 => BfpBlock {
                    m: if rng.next() % 3 == 0 { [0; 8] } else { m },
                    e: (rng.next() % 16) as u8,
                },
                4 => BfpBlock { m, e: 9 },
                5 => BfpBlock {
                    m: [if rng.next() % 2 == 0 { -128 } else { 127 }; 8],
                    e: (rng.next() % 16) as u8,
                },
                _ => BfpBlock {
                    m,
                    e: (rng.next() % 16) as u8,
                },
            }
        })
        .collect()
}

fn run_fast(
    isa: Isa,
    w: &Repacked<'_>,
    x: &[BfpBlock],
    bias: Option<&[i32]>,
    out_frac: u32,
    panels: Range<usize>,
) -> Vec<i32> {
    let cols = w.cols();
    let tokens = x.len() / (cols / 8);
    let mut acts = vec![PairAct::default(); prepared_len(tokens, cols)];
    let mut flags = vec![0u8; plan_len(tokens, cols)];
    let prep = prepare(x, cols, &mut acts, &mut flags).unwrap();
    let n = (panels.end * 16).min(w.rows()) - (panels.start * 16).min(w.rows());
    let mut out = vec![0i32; tokens * n];
    linear_fast(isa, w, &prep, bias, out_frac, panels, &mut out).unwrap();
    out
}

/// Every backend equals the scalar reference on random and extreme weights
/// and activations, token counts across blocks, any panel split, rows not a
/// multiple of 16, odd group counts.
#[test]
fn fast_equals_reference() {
    let mut rng = Lcg(42);
    for case in 0..140 {
        let rows = [16usize, 37, 64, 130, 5][case % 5];
        let cols = [8usize, 64, 896, 256, 24, 40, 4864][case % 7];
        let extreme = case % 3 == 0;
        let (c, e, r) = random_matrix(&mut rng, rows, cols, extreme);
        let m = ApotMatrix::new(rows, cols, &c, &e, &r).unwrap();
        let mut data = vec![0u8; repacked_len(rows, cols)];
        let mut rexp = vec![0i8; rows];
        repack(&m, &mut data, &mut rexp).unwrap();
        let fast = Repacked::new(rows, cols, &data, &rexp).unwrap();
        let tokens = 1 + case % 19;
        let blocks = if case % 2 == 0 {
            let xs: Vec<i32> = (0..tokens * cols)
                .map(|_| match (extreme, rng.next() % 6) {
                    (true, 0) => i32::MAX,
                    (true, 1) => i32::MIN,
                    (true, 2) => 0,
                    _ => (rng.next() % (1 << 24)) as i32 - (1 << 23),
                })
                .collect();
            let mut blocks = vec![BfpBlock::default(); tokens * cols / 8];
            quantize_bfp(&xs, &mut blocks).unwrap();
            blocks
        } else {
            random_blocks(&mut rng, tokens * cols / 8, case as u64 / 2)
        };
        let bias: Vec<i32> = (0..rows)
            .map(|_| (rng.next() % 100000) as i32 - 50000)
            .collect();
        let out_frac = (rng.next() % 20) as u32;
        let mut want = vec![0i32; tokens * rows];
        linear(&m, &blocks, Some(&bias), out_frac, &mut want).unwrap();
        for isa in isas() {
            let got = run_fast(isa, &fast, &blocks, Some(&bias), out_frac, 0..fast.panels());
            assert_eq!(got, want, "case {case} {isa:?}");
            if fast.panels() > 1 {
                let s = fast.panels() / 2;
                let n0 = (s * 16).min(rows);
                let a = run_fast(isa, &fast, &blocks, Some(&bias), out_frac, 0..s);
                let b = run_fast(isa, &fast, &blocks, Some(&bias), out_frac, s..fast.panels());
                for t in 0..tokens {
                    assert_eq!(&a[t * n0..(t + 1) * n0], &want[t * rows..t * rows + n0]);
                    assert_eq!(
                        &b[t * (rows - n0)..(t + 1) * (rows - n0)],
                        &want[t * rows + n0..(t + 1) * rows]
                    );
                }
            }
        }
    }
}

/// The plan's segments: every segment's worst case fits `i32` (checked here
/// from the blocks themselves, independently of `prepare`'s own bookkeeping),
/// relative shifts stay within 6, the last pair flushes, split pairs are the
/// ones whose exponents differ by more than 6.
#[test]
fn plan_respects_its_bounds() {
    let mut rng = Lcg(5);
    for case in 0..300 {
        let cols = [16usize, 24, 896, 4864][case % 4];
        let tokens = 1 + case % 12;
        let groups = cols / 8;
        let x = random_blocks(&mut rng, tokens * groups, case as u64);
        let mut acts = vec![PairAct::default(); prepared_len(tokens, cols)];
        let mut flags = vec![0u8; plan_len(tokens, cols)];
        let p = prepare(&x, cols, &mut acts, &mut flags).unwrap();
        let np = pairs(cols);
        let grp = |t: usize, g: usize| {
            if g < groups {
                x[t * groups + g]
            } else {
                BfpBlock {
                    m: [0; 8],
                    e: x[t * groups + g - 1].e,
                }
            }
        };
        for b in 0..tokens.div_ceil(TOKEN_BLOCK) {
            let (a, f, nt) = p.block(b);
            assert_eq!(f[np - 1] & (plan::FLUSH | plan::SPLIT), f[np - 1]);
            assert!(f[np - 1] != 0, "the last pair must close its segment");
            for t in 0..nt {
                let tok = b * TOKEN_BLOCK + t;
                let mut worst: i128 = 0;
                for j in 0..np {
                    let e = [grp(tok, 2 * j).e as u32, grp(tok, 2 * j + 1).e as u32];
                    let x = &a[t * np + j];
                    if f[j] & plan::SPLIT != 0 {
                        assert!((0..nt).any(|u| {
                            let t2 = b * TOKEN_BLOCK + u;
                            grp(t2, 2 * j).e.abs_diff(grp(t2, 2 * j + 1).e) > 6
                        }));
                        assert_eq!(x.shift, e[0] | e[1] << 16);
                        assert_eq!(worst, 0, "split pair inside an open segment");
                        continue;
                    }
                    let d = [x.shift & 0xffff, x.shift >> 16];
                    for h in 0..2 {
                        assert!(d[h] <= 6 && e[h] == x.base + d[h], "case {case}");
                        let amag: i128 = grp(tok, 2 * j + h)
                            .m
                            .iter()
                            .map(|&v| (v as i128).abs())
                            .sum();
                        worst += (16 * amag * 256) << d[h];
                    }
                    assert!(worst < 1 << 31, "case {case}: segment bound {worst}");
                    if f[j] & plan::FLUSH != 0 {
                        worst = 0;
                    }
                }
            }
        }
    }
}

/// Fast attention equals the reference on random, extreme (all -32768,
/// all 32767) and long inputs, for GQA and head dims with and without SIMD.
#[test]
fn attention_fast_equals_reference() {
    use crate::attention::attention;
    let mut rng = Lcg(7);
    for case in 0..80 {
        let (nh, nkv, hd) = [(14, 2, 64), (4, 2, 16), (2, 1, 256), (4, 4, 64)][case % 4];
        let p = AttnParams {
            n_heads: nh,
            n_kv_heads: nkv,
            head_dim: hd,
            q_frac: (rng.next() % 16) as u32,
            k_frac: (rng.next() % 16) as u32,
            v_frac: (rng.next() % 16) as u32,
            out_frac: (rng.next() % 31) as u32,
        };
        let len = [1usize, 2, 17, 192, 1024, 3000][case % 6];
        let kvd = nkv * hd;
        let gen = |rng: &mut Lcg, n: usize| -> Vec<i16> {
            (0..n)
                .map(|_| match case % 5 {
                    0 => i16::MIN,
                    1 => {
                        if rng.next() % 2 == 0 {
                            i16::MIN
                        } else {
                            i16::MAX
                        }
                    }
                    2 => (rng.next() % 64) as i16 - 32,
                    _ => (rng.next() % 65536) as u16 as i16,
                })
                .collect()
        };
        let q = gen(&mut rng, nh * hd);
        let k = gen(&mut rng, len * kvd);
        let v = gen(&mut rng, len * kvd);
        let mut s = vec![0i64; len];
        let mut pr = vec![0u16; len];
        let mut want = vec![0i32; nh * hd];
        attention(&p, &q, &k, &v, len, &mut s, &mut pr, &mut want).unwrap();
        for isa in isas() {
            let mut w = vec![0u32; len];
            let mut pb = vec![0u16; len];
            let mut got = vec![0i32; nh * hd];
            attention_fast(
                isa,
                &p,
                &q,
                &k,
                &v,
                len,
                0..nh,
                &mut s,
                &mut w,
                &mut pb,
                &mut got,
            )
            .unwrap();
            assert_eq!(got, want, "case {case} {isa:?}");
            let h0 = nh / 2;
            let mut part = vec![0i32; (nh - h0) * hd];
            attention_fast(
                isa,
                &p,
                &q,
                &k,
                &v,
                len,
                h0..nh,
                &mut s,
                &mut w,
                &mut pb,
                &mut part,
            )
            .unwrap();
            assert_eq!(part, want[h0 * hd..]);
        }
    }
}

#[test]
fn repacked_bits_per_weight_and_errors() {
    assert_eq!(repacked_len(896, 896) * 8, 896 * 896 * 6);
    assert_eq!(
        Repacked::new(16, 16, &[0; 191], &[0; 16]).unwrap_err(),
        KernelError::Length {
            what: "repacked data",
            expected: 192,
            got: 191
        }
    );
    let data = [0u8; 192];
    let w = Repacked::new(16, 16, &data, &[0; 16]).unwrap();
    let x = [BfpBlock::default(); 2];
    let mut acts = [PairAct::default(); 1];
    let mut flags = [0u8; 1];
    let p = prepare(&x, 16, &mut acts, &mut flags).unwrap();
    let mut out = [0i32; 16];
    assert!(matches!(
        linear_fast(Isa::Scalar, &w, &p, None, 12, 0..2, &mut out),
        Err(KernelError::Param {
            what: "panel range end",
            ..
        })
    ));
    assert!(matches!(
        linear_fast(Isa::Scalar, &w, &p, None, 12, 0..1, &mut out[..15]),
        Err(KernelError::Length { what: "output", .. })
    ));
    assert!(matches!(
        prepare(
            &[BfpBlock { m: [0; 8], e: 16 }, BfpBlock::default()],
            16,
            &mut acts,
            &mut flags
        ),
        Err(KernelError::Param {
            what: "bfp exponent",
            value: 16,
            ..
        })
    ));
    let p = prepare(&x, 16, &mut acts, &mut flags).unwrap();
    assert!(linear_fast(Isa::Scalar, &w, &p, None, 12, 0..1, &mut out).is_ok());
}

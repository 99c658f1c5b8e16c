//! Criterion benchmarks of the scalar reference kernels.
//!
//! Inputs are random but deterministic (a seeded LCG), so every run measures
//! the same data. Run with `cargo bench -p edgedecoding-benches`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use edgedecoding_kernels::attention::{attention, AttnParams};
use edgedecoding_kernels::bfp::{quantize_bfp, BfpBlock};
use edgedecoding_kernels::fast::{
    attention_fast, linear_fast, plan_len, prepare, prepared_len, repack, repacked_len, Isa,
    PairAct, Repacked,
};
use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_kernels::linear::linear;
use edgedecoding_kernels::rmsnorm::{rmsnorm, EPS_1E6_Q40};
use edgedecoding_kernels::{ACT_FRAC, GROUP};

use edgedecoding_testkit::Lcg;

/// A packed APoT matrix owned by the benchmark.
struct PackedMatrix {
    rows: usize,
    cols: usize,
    codes: Vec<u8>,
    exps: Vec<u8>,
    row_exps: Vec<i8>,
}

impl PackedMatrix {
    /// Random codes in `[-16, 15]`, exponents in `[0, 7]`, row exponents in
    /// `[-19, 0]`, packed with `format::pack_group`.
    fn random(rows: usize, cols: usize, rng: &mut Lcg) -> Self {
        let groups = cols / GROUP;
        let mut codes = vec![0u8; packed_codes_len(rows, cols)];
        let mut exps = vec![0u8; packed_exps_len(rows, cols)];
        let mut row_exps = vec![0i8; rows];
        for (r, e) in row_exps.iter_mut().enumerate() {
            *e = -((rng.next() % 20) as i8);
            for g in 0..groups {
                let grp = ApotGroup {
                    codes: core::array::from_fn(|_| (rng.next() % 32) as i8 - 16),
                    s1: (rng.next() % 8) as u8,
                    s2: (rng.next() % 8) as u8,
                };
                pack_group(&mut codes, &mut exps, r * groups + g, &grp).expect("valid group");
            }
        }
        Self {
            rows,
            cols,
            codes,
            exps,
            row_exps,
        }
    }

    fn view(&self) -> ApotMatrix<'_> {
        ApotMatrix::new(
            self.rows,
            self.cols,
            &self.codes,
            &self.exps,
            &self.row_exps,
        )
        .expect("consistent lengths")
    }
}

/// `n` random Q12 activations, `|x| < 2^19` (real values in `[-128, 128)`).
fn random_activations(n: usize, rng: &mut Lcg) -> Vec<i32> {
    (0..n).map(|_| rng.signed(1 << 19) as i32).collect()
}

fn short<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn bench_linear(c: &mut Criterion) {
    let mut g = c.benchmark_group("linear");
    short(&mut g);
    // Tens of milliseconds per call for the big shapes: the same iteration
    // count in every sample keeps the run inside the measurement time.
    g.sampling_mode(SamplingMode::Flat);
    let mut rng = Lcg(0x5eed_0001);
    for (rows, cols) in [(896, 896), (4864, 896), (896, 4864)] {
        let m = PackedMatrix::random(rows, cols, &mut rng);
        let w = m.view();
        for tokens in [1usize, 8] {
            let xs = random_activations(tokens * cols, &mut rng);
            let mut x = vec![BfpBlock::default(); tokens * cols / GROUP];
            quantize_bfp(&xs, &mut x).expect("shape");
            let mut out = vec![0i32; tokens * rows];
            g.throughput(Throughput::Elements((rows * cols * tokens) as u64));
            g.bench_function(
                BenchmarkId::new(format!("{rows}x{cols}"), format!("t{tokens}")),
                |b| {
                    b.iter(|| {
                        linear(
                            black_box(&w),
                            black_box(&x),
                            None,
                            ACT_FRAC,
                            black_box(&mut out),
                        )
                        .expect("shape")
                    })
                },
            );
        }
    }
    g.finish();
}

fn bench_attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention");
    short(&mut g);
    // Qwen2-0.5B: 14 query heads, 2 KV heads, head_dim 64.
    let p = AttnParams {
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        q_frac: 8,
        k_frac: 8,
        v_frac: 10,
        out_frac: 12,
    };
    let kv_dim = p.n_kv_heads * p.head_dim;
    let mut rng = Lcg(0x5eed_0002);
    for len in [192usize, 1024] {
        // Q, K in Q8 within [-8, 8), V in Q10 within [-2, 2).
        let q: Vec<i16> = (0..p.n_heads * p.head_dim)
            .map(|_| rng.signed(2048) as i16)
            .collect();
        let k: Vec<i16> = (0..len * kv_dim).map(|_| rng.signed(2048) as i16).collect();
        let v: Vec<i16> = (0..len * kv_dim).map(|_| rng.signed(2048) as i16).collect();
        let mut scores = vec![0i64; len];
        let mut probs = vec![0u16; len];
        let mut out = vec![0i32; p.n_heads * p.head_dim];
        // MACs: q.k and p.v, each n_heads * len * head_dim.
        g.throughput(Throughput::Elements(
            (2 * p.n_heads * len * p.head_dim) as u64,
        ));
        g.bench_function(BenchmarkId::new("qwen2", format!("len{len}")), |b| {
            b.iter(|| {
                attention(
                    black_box(&p),
                    black_box(&q),
                    black_box(&k),
                    black_box(&v),
                    len,
                    &mut scores,
                    &mut probs,
                    black_box(&mut out),
                )
                .expect("shape")
            })
        });
        let isa = Isa::detect();
        let mut weights = vec![0u32; len];
        g.bench_function(
            BenchmarkId::new(format!("qwen2_fast_{isa:?}"), format!("len{len}")),
            |b| {
                b.iter(|| {
                    attention_fast(
                        isa,
                        black_box(&p),
                        black_box(&q),
                        black_box(&k),
                        black_box(&v),
                        len,
                        0..p.n_heads,
                        &mut scores,
                        &mut weights,
                        &mut probs,
                        black_box(&mut out),
                    )
                    .expect("shape")
                })
            },
        );
    }
    g.finish();
}

fn bench_rmsnorm(c: &mut Criterion) {
    let mut g = c.benchmark_group("rmsnorm");
    short(&mut g);
    let n = 896;
    let mut rng = Lcg(0x5eed_0003);
    let x = random_activations(n, &mut rng);
    // gamma in Q12 within [-4, 4).
    let gamma: Vec<i16> = (0..n).map(|_| rng.signed(1 << 14) as i16).collect();
    let mut out = vec![0i32; n];
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| {
            rmsnorm(
                black_box(&x),
                black_box(&gamma),
                12,
                EPS_1E6_Q40,
                black_box(&mut out),
            )
            .expect("shape")
        })
    });
    g.finish();
}

fn bench_quantize_bfp(c: &mut Criterion) {
    let mut g = c.benchmark_group("quantize_bfp");
    short(&mut g);
    let n = 4864;
    let mut rng = Lcg(0x5eed_0004);
    let x = random_activations(n, &mut rng);
    let mut out = vec![BfpBlock::default(); n / GROUP];
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| quantize_bfp(black_box(&x), black_box(&mut out)).expect("shape"))
    });
    g.finish();
}

/// The repacked SIMD linear kernel (`kernels::fast`, the CPU fallback's hot
/// loop) on the detected ISA, single-threaded, same shapes as `linear`.
fn bench_linear_fast(c: &mut Criterion) {
    let mut g = c.benchmark_group("linear_fast");
    short(&mut g);
    g.sampling_mode(SamplingMode::Flat);
    let mut rng = Lcg(0x5eed_0002);
    for (rows, cols) in [(896, 896), (4864, 896), (896, 4864), (151936, 896)] {
        let m = PackedMatrix::random(rows, cols, &mut rng);
        let w = m.view();
        let mut data = vec![0u8; repacked_len(rows, cols)];
        let mut rexp = vec![0i8; rows];
        repack(&w, &mut data, &mut rexp).expect("repack");
        let fast = Repacked::new(rows, cols, &data, &rexp).expect("shape");
        for tokens in [1usize, 8] {
            if rows > 10000 && tokens > 1 {
                continue;
            }
            let xs = random_activations(tokens * cols, &mut rng);
            let mut x = vec![BfpBlock::default(); tokens * cols / GROUP];
            quantize_bfp(&xs, &mut x).expect("shape");
            let mut acts = vec![PairAct::default(); prepared_len(tokens, cols)];
            let mut flags = vec![0u8; plan_len(tokens, cols)];
            let prep = prepare(&x, cols, &mut acts, &mut flags).expect("shape");
            let mut out = vec![0i32; tokens * rows];
            g.throughput(Throughput::Elements((rows * cols * tokens) as u64));
            // every backend this CPU runs, side by side (the scalar one only on
            // the small shapes: it is ~50x slower)
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                if isa == Isa::Scalar && rows * cols * tokens > 896 * 896 * 8 {
                    continue;
                }
                g.bench_function(
                    BenchmarkId::new(format!("{rows}x{cols}/{isa:?}"), format!("t{tokens}")),
                    |b| {
                        b.iter(|| {
                            linear_fast(
                                isa,
                                black_box(&fast),
                                black_box(&prep),
                                None,
                                ACT_FRAC,
                                0..fast.panels(),
                                black_box(&mut out),
                            )
                            .expect("shape")
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

/// The thread pool's fork-join cost: `Pool::map` of a no-op over 2 threads
/// (one dispatch per linear layer and per attention call in a decode step).
fn bench_pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    short(&mut g);
    let pool = edgedecoding_model::pool::Pool::new(2);
    g.bench_function("map_noop_2_threads", |b| {
        b.iter(|| black_box(pool.map(2, &|i| black_box(i))))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_linear,
    bench_linear_fast,
    bench_attention,
    bench_rmsnorm,
    bench_quantize_bfp,
    bench_pool
);
criterion_main!(benches);

//! The fast CPU backend (feature `std`): every matrix and the derived lm_head
//! in the SIMD panel layout of `edgedecoding_kernels::fast` (AVX-512 VNNI
//! when the CPU has it, portable code otherwise), panels split over a
//! persistent thread pool. Bit-identical to [`crate::Serial`] for any thread
//! count and backend (tested).
//!
//! The layout is the `.edq` file's SIMD section (FORMAT.md §6): borrowed from
//! the file (zero-copy, e.g. memory-mapped) when it has one, else built once
//! at start ([`simd_section`]) — one representation either way.

use std::borrow::Cow;
use std::sync::Mutex;
use std::vec;
use std::vec::Vec;

use edgedecoding_kernels::attention::AttnParams;
use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_kernels::fast::{
    attention_fast, linear_fast, plan_len, prepare, prepared_len, repack_panels, Isa, PairAct,
    Repacked, PANEL,
};
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::lm_head::DerivedHead;
use edgedecoding_kernels::KernelError;

use crate::decoder::{Backend, MatId};
use crate::edq::{simd_len, simd_matrix};
use crate::error::ModelError;
use crate::pool::Pool;
use crate::weights::Model;

/// The SIMD section of a model (FORMAT.md §6; its 64-byte header left zero
/// for the writer): every matrix repacked, the lm_head derived and repacked,
/// on `threads` threads. `progress(done, total)` is called per matrix.
pub fn simd_section(
    model: &Model<'_>,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>, ModelError> {
    let c = model.config;
    let mut sec = vec![0u8; simd_len(&c)];
    let total = c.n_layers * 7 + 1;
    let head = DerivedHead::new(model.emb, c.hidden, model.globals.emb_exp, None)?;
    for i in 0..total {
        let (rows, cols, at, len, rexp_at) =
            simd_matrix(&c, i).ok_or(ModelError::Internal("SIMD section layout"))?;
        let (head_part, tail) = sec.split_at_mut(rexp_at);
        let data = &mut head_part[at..at + len];
        let rexp: &mut [i8] = bytemuck::cast_slice_mut(&mut tail[..rows]);
        if i == c.n_layers * 7 {
            repack_threads(&head, data, rexp, threads)?;
        } else {
            let lw = model.layer(i / 7)?;
            let m = [&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down][i % 7];
            debug_assert_eq!((m.rows(), m.cols()), (rows, cols));
            repack_threads(m, data, rexp, threads)?;
        }
        progress(i + 1, total);
    }
    Ok(sec)
}

/// Repacks `w` with its panels split over `threads` scoped threads, each
/// writing its own part of `data` and `rexp`.
fn repack_threads<W: ApotWeights + Sync + ?Sized>(
    w: &W,
    data: &mut [u8],
    rexp: &mut [i8],
    threads: usize,
) -> Result<(), KernelError> {
    let panels = w.rows().div_ceil(PANEL);
    let n = threads.clamp(1, panels.max(1));
    let per_panel = data.len() / panels.max(1);
    std::thread::scope(|s| {
        let mut rest_d = data;
        let mut rest_r = rexp;
        let mut handles = Vec::new();
        for i in 0..n {
            let (p0, p1) = (i * panels / n, (i + 1) * panels / n);
            let rows = (p1 * PANEL).min(w.rows()) - (p0 * PANEL).min(w.rows());
            let (d, rd) = core::mem::take(&mut rest_d).split_at_mut((p1 - p0) * per_panel);
            let (r, rr) = core::mem::take(&mut rest_r).split_at_mut(rows);
            rest_d = rd;
            rest_r = rr;
            handles.push(s.spawn(move || repack_panels(w, p0..p1, d, r)));
        }
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or(Err(KernelError::Param {
                what: "repack thread panicked (a bug)",
                value: 0,
                min: 0,
                max: 0,
            }))
        })
    })
}

/// The fast backend over a model's SIMD section.
pub struct Fast<'m> {
    isa: Isa,
    pool: Pool,
    section: Cow<'m, [u8]>,
    stored: bool,
    config: crate::Config,
    /// Where each matrix lies in `section` (`edq::simd_matrix`), computed once
    /// instead of on every linear call.
    layout: Vec<(usize, usize, usize, usize, usize)>,
    /// One scratch per pool thread (`Fast::scratch_bytes` after warm-up).
    scratch: Vec<Mutex<Scratch>>,
    prep: Mutex<Prep>,
}

impl<'m> Fast<'m> {
    /// The backend for `model` on `threads` threads: its stored SIMD section
    /// when the file has one, else one built now ([`simd_section`]). The ISA
    /// is the best the CPU supports, or the one named by the environment
    /// variable `EDGEDECODING_ISA` (`scalar`, `avx2`, `avx2vnni`, `avx512vnni`; an unknown or
    /// unsupported name is an error).
    pub fn new(model: &Model<'m>, threads: usize) -> Result<Self, ModelError> {
        Self::with_progress(model, threads, &mut |_, _| {})
    }

    /// [`Fast::new`], reporting the build of a missing SIMD section.
    pub fn with_progress(
        model: &Model<'m>,
        threads: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, ModelError> {
        let isa = isa_from_env()?;
        let (section, stored) = match model.file().simd_section() {
            Some(s) => (Cow::Borrowed(s), true),
            None => (Cow::Owned(simd_section(model, threads, progress)?), false),
        };
        let pool = Pool::new(threads);
        let layout = (0..=model.config.n_layers * 7)
            .map(|i| {
                simd_matrix(&model.config, i).ok_or(ModelError::Internal("SIMD section layout"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layout,
            isa,
            scratch: (0..pool.threads()).map(|_| Mutex::default()).collect(),
            prep: Mutex::default(),
            pool,
            section,
            stored,
            config: model.config,
        })
    }

    /// Forces an implementation (tests and `bench` compare every one with the
    /// reference); an ISA the CPU lacks runs the portable code.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa.or_scalar();
        self
    }

    /// The implementation in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether the SIMD layout came from the file (no build at start).
    pub fn stored(&self) -> bool {
        self.stored
    }

    /// Threads in use.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Bytes of repacked weights (all matrices and the head).
    pub fn weight_bytes(&self) -> usize {
        self.layout
            .iter()
            .map(|&(rows, _, _, len, _)| len + rows)
            .sum()
    }

    /// Scratch memory this backend holds at most for prefill chunks of
    /// `chunk` tokens: per thread, attention buffers for the whole context and
    /// its share of the widest linear output; once, the prepared activations.
    /// Allocated on first use and reused (no allocation per call).
    pub fn scratch_bytes(&self, chunk: usize) -> usize {
        let c = &self.config;
        let t = self.pool.threads();
        let widest = c.n_kept.max(c.ffn).max(c.hidden);
        let per_thread = c.ctx * (8 + 4 + 2) + 4 * chunk * (widest.div_ceil(t) + PANEL);
        let prep = prepared_len(chunk, c.ffn.max(c.hidden)) * core::mem::size_of::<PairAct>()
            + plan_len(chunk, c.ffn.max(c.hidden));
        t * per_thread + prep
    }

    /// Bytes of repacked weights read per token by one decode step.
    pub fn bytes_per_token(&self) -> usize {
        self.weight_bytes()
    }

    fn matrix(&self, idx: usize) -> Result<Repacked<'_>, KernelError> {
        let bad = KernelError::Param {
            what: "matrix index",
            value: idx as i64,
            min: 0,
            max: (self.config.n_layers * 7) as i64,
        };
        let &(rows, cols, at, len, rexp) = self.layout.get(idx).ok_or(bad)?;
        Repacked::new(
            rows,
            cols,
            &self.section[at..at + len],
            bytemuck::cast_slice(&self.section[rexp..rexp + rows]),
        )
    }
}

/// The ISA named by `EDGEDECODING_ISA`, or the best one detected.
pub fn isa_from_env() -> Result<Isa, ModelError> {
    match std::env::var("EDGEDECODING_ISA") {
        Ok(name) if !name.is_empty() => match Isa::from_name(&name) {
            Some(i) if i.supported() => Ok(i),
            Some(_) => Err(ModelError::Unsupported(
                "EDGEDECODING_ISA names an instruction set this CPU lacks",
            )),
            None => Err(ModelError::Unsupported(
                "EDGEDECODING_ISA must be `scalar`, `avx2`, `avx2vnni` or `avx512vnni`",
            )),
        },
        _ => Ok(Isa::detect()),
    }
}

/// Collects per-worker results: a missing one (a panicked worker) is an error.
fn collect<T>(parts: Vec<Option<Result<T, KernelError>>>) -> Result<Vec<T>, ModelError> {
    parts
        .into_iter()
        .map(|r| match r {
            Some(r) => Ok(r?),
            None => Err(ModelError::Internal("a fast-backend worker panicked")),
        })
        .collect()
}

/// Grows `v` to at least `n` elements (never shrinks) and returns the first `n`.
fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// A worker's scratch: attention buffers and its part of a linear output.
#[derive(Default)]
struct Scratch {
    scores: Vec<i64>,
    weights: Vec<u32>,
    probs: Vec<u16>,
    out: Vec<i32>,
}

/// The prepared activations of the current linear call (the caller's).
#[derive(Default)]
struct Prep {
    acts: Vec<PairAct>,
    flags: Vec<u8>,
}

impl Backend for Fast<'_> {
    /// The caller's `scores` and `probs` serve the single-threaded path; with
    /// several threads each worker uses its own scratch (sized once, then
    /// reused: no allocation per call once the longest context was seen).
    fn attention(
        &self,
        p: &AttnParams,
        q: &[i16],
        k_cache: &[i16],
        v_cache: &[i16],
        len: usize,
        scores: &mut [i64],
        probs: &mut [u16],
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        let hd = p.head_dim;
        // short contexts are not worth a fork-join
        let n = if len < 64 {
            1
        } else {
            self.pool.threads().min(p.n_heads).max(1)
        };
        if n == 1 {
            let mut s = lock(&self.scratch[0]);
            let weights = grow(&mut s.weights, len);
            attention_fast(
                self.isa,
                p,
                q,
                k_cache,
                v_cache,
                len,
                0..p.n_heads,
                scores,
                weights,
                probs,
                out,
            )?;
            return Ok(());
        }
        if out.len() != p.n_heads * hd {
            return Err(KernelError::Length {
                what: "attention output",
                expected: p.n_heads * hd,
                got: out.len(),
            }
            .into());
        }
        collect(self.pool.map(n, &|i| {
            let (h0, h1) = (i * p.n_heads / n, (i + 1) * p.n_heads / n);
            let mut guard = lock(&self.scratch[i]);
            let s = &mut *guard;
            grow(&mut s.scores, len);
            grow(&mut s.weights, len);
            grow(&mut s.probs, len);
            attention_fast(
                self.isa,
                p,
                q,
                k_cache,
                v_cache,
                len,
                h0..h1,
                &mut s.scores,
                &mut s.weights,
                &mut s.probs,
                grow(&mut s.out, (h1 - h0) * hd),
            )
        }))?;
        for i in 0..n {
            let (h0, h1) = (i * p.n_heads / n, (i + 1) * p.n_heads / n);
            out[h0 * hd..h1 * hd].copy_from_slice(&lock(&self.scratch[i]).out[..(h1 - h0) * hd]);
        }
        Ok(())
    }

    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        let m = self.matrix(id.index(self.config.n_layers))?;
        if (m.rows(), m.cols()) != (w.rows(), w.cols()) {
            return Err(ModelError::Mismatch(
                "the SIMD layout's matrix has another shape than the model's",
            ));
        }
        let rows = m.rows();
        let groups = m.cols() / edgedecoding_kernels::GROUP;
        if x.len() % groups != 0 {
            return Err(KernelError::NotMultiple {
                what: "activation blocks",
                value: x.len(),
                of: groups,
            }
            .into());
        }
        let tokens = x.len() / groups;
        if out.len() != tokens * rows {
            return Err(KernelError::Length {
                what: "output",
                expected: tokens * rows,
                got: out.len(),
            }
            .into());
        }
        let mut pg = lock(&self.prep);
        let pr = &mut *pg;
        let prep = prepare(
            x,
            m.cols(),
            grow(&mut pr.acts, prepared_len(tokens, m.cols())),
            grow(&mut pr.flags, plan_len(tokens, m.cols())),
        )?;
        // panels split over the threads; each part writes its own rows
        let panels = m.panels();
        let n = self.pool.threads().min(panels).max(1);
        let part = |i: usize| {
            let (p0, p1) = (i * panels / n, (i + 1) * panels / n);
            (p0, p1, (p0 * PANEL).min(rows), (p1 * PANEL).min(rows))
        };
        collect(self.pool.map(n, &|i| {
            let (p0, p1, r0, r1) = part(i);
            let mut s = lock(&self.scratch[i]);
            let buf = grow(&mut s.out, tokens * (r1 - r0));
            linear_fast(self.isa, &m, &prep, bias, out_frac, p0..p1, buf)
        }))?;
        for i in 0..n {
            let (_, _, r0, r1) = part(i);
            let nr = r1 - r0;
            let s = lock(&self.scratch[i]);
            for t in 0..tokens {
                out[t * rows + r0..t * rows + r1].copy_from_slice(&s.out[t * nr..(t + 1) * nr]);
            }
        }
        Ok(())
    }
}

/// Locks a scratch mutex; a poisoned one (a worker panicked while holding it)
/// only held scratch values, so it is used as is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The fast CPU backend (feature `std`): every matrix repacked once into the
//! SIMD panel layout of `edgedecoding_kernels::fast` (AVX-512 VNNI when the CPU
//! has it, portable code otherwise), panels split over a persistent thread
//! pool. Bit-identical to [`crate::Serial`] for any thread count (tested).

use std::vec;
use std::vec::Vec;

use edgedecoding_kernels::attention::AttnParams;
use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_kernels::fast::attention_fast;
use edgedecoding_kernels::fast::{
    linear_fast, pairs, plan_len, prepare, prepared_len, repack_panels, repacked_len, Isa, PairAct,
    Repacked, PANEL, RECORD,
};
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::{KernelError, GROUP};

use crate::decoder::{Backend, Head, MatId, Which};
use crate::error::ModelError;
use crate::pool::Pool;
use crate::weights::Model;

struct Owned {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
    row_exps: Vec<i8>,
}

impl Owned {
    fn view(&self) -> Result<Repacked<'_>, KernelError> {
        Repacked::new(self.rows, self.cols, &self.data, &self.row_exps)
    }
}

/// Repacked weights of a whole model plus a thread pool.
pub struct Fast {
    isa: Isa,
    pool: Pool,
    mats: Vec<Owned>,
    n_layers: usize,
}

/// Collects per-worker results: a missing one (a panicked worker) is an error.
fn collect<T>(parts: Vec<Option<Result<T, KernelError>>>) -> Result<Vec<T>, KernelError> {
    parts
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or(Err(KernelError::Param {
                what: "worker panicked",
                value: i as i64,
                min: 0,
                max: 0,
            }))
        })
        .collect()
}

fn repack_par<W: ApotWeights + Sync + ?Sized>(w: &W, pool: &Pool) -> Result<Owned, ModelError> {
    let (rows, cols) = (w.rows(), w.cols());
    let panels = rows.div_ceil(PANEL);
    let n = pool.threads();
    let parts = collect(pool.map(n, &|i| {
        let p0 = i * panels / n;
        let p1 = (i + 1) * panels / n;
        let r0 = p0 * PANEL;
        let r1 = (p1 * PANEL).min(rows);
        let mut data = vec![0u8; (p1 - p0) * pairs(cols) * RECORD];
        let mut rexp = vec![0i8; r1.saturating_sub(r0)];
        repack_panels(w, p0..p1, &mut data, &mut rexp).map(|_| (data, rexp))
    }))?;
    let mut data = Vec::with_capacity(repacked_len(rows, cols));
    let mut row_exps = Vec::with_capacity(rows);
    for (d, r) in parts {
        data.extend_from_slice(&d);
        row_exps.extend_from_slice(&r);
    }
    Ok(Owned {
        rows,
        cols,
        data,
        row_exps,
    })
}

impl Fast {
    /// Repacks every matrix of `model` and the lm_head `head` (derived rows are
    /// derived once here) on `threads` threads.
    pub fn new(model: &Model<'_>, head: &Head<'_>, threads: usize) -> Result<Self, ModelError> {
        let pool = Pool::new(threads);
        let c = model.config;
        let mut mats = Vec::with_capacity(c.n_layers * 7 + 1);
        for l in 0..c.n_layers {
            let lw = model.layer(l)?;
            for m in [&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down] {
                mats.push(repack_par(m, &pool)?);
            }
        }
        mats.push(repack_par(head, &pool)?);
        Ok(Self {
            isa: Isa::detect(),
            pool,
            mats,
            n_layers: c.n_layers,
        })
    }

    /// Forces an implementation (tests compare every one with the reference);
    /// an ISA the CPU lacks falls back to the portable code.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    /// The implementation in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Threads in use.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Bytes of repacked weights (all matrices and the head).
    pub fn weight_bytes(&self) -> usize {
        self.mats
            .iter()
            .map(|m| m.data.len() + m.row_exps.len())
            .sum()
    }

    /// Bytes of repacked weights read per token by one decode step.
    pub fn bytes_per_token(&self) -> usize {
        self.weight_bytes()
    }
}

impl Backend for Fast {
    fn attention(
        &self,
        p: &AttnParams,
        q: &[i16],
        k_cache: &[i16],
        v_cache: &[i16],
        len: usize,
        _scores: &mut [i64],
        _probs: &mut [u16],
        out: &mut [i32],
    ) -> Result<(), KernelError> {
        let hd = p.head_dim;
        // short contexts are not worth a fork-join
        let n = if len < 64 {
            1
        } else {
            self.pool.threads().min(p.n_heads).max(1)
        };
        if out.len() != p.n_heads * hd {
            return Err(KernelError::Length {
                what: "attention output",
                expected: p.n_heads * hd,
                got: out.len(),
            });
        }
        let parts = collect(self.pool.map(n, &|i| {
            let (h0, h1) = (i * p.n_heads / n, (i + 1) * p.n_heads / n);
            let mut scores = vec![0i64; len];
            let mut weights = vec![0u32; len];
            let mut probs = vec![0u16; len];
            let mut buf = vec![0i32; (h1 - h0) * hd];
            attention_fast(
                self.isa,
                p,
                q,
                k_cache,
                v_cache,
                len,
                h0..h1,
                &mut scores,
                &mut weights,
                &mut probs,
                &mut buf,
            )
            .map(|_| buf)
        }))?;
        let mut at = 0;
        for buf in parts {
            out[at..at + buf.len()].copy_from_slice(&buf);
            at += buf.len();
        }
        Ok(())
    }

    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: i32,
        out: &mut [i32],
    ) -> Result<(), KernelError> {
        let idx = id.index(self.n_layers);
        let m = match self.mats.get(idx) {
            Some(m)
                if m.rows == w.rows()
                    && m.cols == w.cols()
                    && (id.which == Which::Head || idx < self.n_layers * 7) =>
            {
                m.view()?
            }
            _ => {
                return Err(KernelError::Param {
                    what: "matrix id not repacked",
                    value: idx as i64,
                    min: 0,
                    max: self.mats.len() as i64 - 1,
                })
            }
        };
        let rows = m.rows();
        let groups = m.cols() / GROUP;
        if x.len() % groups != 0 {
            return Err(KernelError::NotMultiple {
                what: "activation blocks",
                value: x.len(),
                of: groups,
            });
        }
        let tokens = x.len() / groups;
        if out.len() != tokens * rows {
            return Err(KernelError::Length {
                what: "output",
                expected: tokens * rows,
                got: out.len(),
            });
        }
        let mut acts = vec![PairAct::default(); prepared_len(tokens, m.cols())];
        let mut flags = vec![0u8; plan_len(tokens, m.cols())];
        let prep = prepare(x, m.cols(), &mut acts, &mut flags)?;
        // panels split over the threads; each part writes its own rows
        let panels = m.panels();
        let n = self.pool.threads().min(panels).max(1);
        let parts = collect(self.pool.map(n, &|i| {
            let (p0, p1) = (i * panels / n, (i + 1) * panels / n);
            let nr = (p1 * PANEL).min(rows) - (p0 * PANEL).min(rows);
            let mut buf = vec![0i32; tokens * nr];
            linear_fast(self.isa, &m, &prep, bias, out_frac, p0..p1, &mut buf).map(|_| buf)
        }))?;
        let mut r0 = 0;
        for buf in parts {
            let nr = buf.len() / tokens.max(1);
            for t in 0..tokens {
                out[t * rows + r0..t * rows + r0 + nr].copy_from_slice(&buf[t * nr..(t + 1) * nr]);
            }
            r0 += nr;
        }
        Ok(())
    }
}

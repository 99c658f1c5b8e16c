//! The integer decoder: chunked prefill (8 tokens per pass like the
//! accelerator, or longer chunks on the CPU: SPEC §4.4), incremental and
//! accelerator-parity decode (docs/SPEC.md §9.3), every stage observable
//! through a [`Probe`].

use core::ops::Range;

use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::attention::{attention, AttnParams};
use edgedecoding_kernels::bfp::{quantize_bfp, BfpBlock};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::{ApotGroup, ApotMatrix, ApotWeights};
use edgedecoding_kernels::linear::linear;
use edgedecoding_kernels::lm_head::DerivedHead;
use edgedecoding_kernels::residual::residual_add;
use edgedecoding_kernels::rmsnorm::rmsnorm;
use edgedecoding_kernels::rope::rope_apply;
use edgedecoding_kernels::round::sat_i16;
use edgedecoding_kernels::silu::swiglu;
use edgedecoding_kernels::{ACT_FRAC, TOKENS_PER_PASS};

use crate::config::Config;
use crate::error::ModelError;
use crate::probe::{NoProbe, Probe, Site, Stage, StageRef, Values};
use crate::state::State;
use crate::weights::{Model, RopeRom};

const T: usize = TOKENS_PER_PASS;

/// Which matrix of the model a linear layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    /// q projection.
    Q,
    /// k projection.
    K,
    /// v projection.
    V,
    /// Output projection.
    O,
    /// MLP gate.
    Gate,
    /// MLP up.
    Up,
    /// MLP down.
    Down,
    /// The lm_head (layer 0).
    Head,
}

/// Identifies a matrix: a backend may keep its own copy of every matrix (e.g.
/// repacked for SIMD) and look it up by this id instead of reading `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatId {
    /// Layer index (0 for the head).
    pub layer: usize,
    /// Which matrix.
    pub which: Which,
}

impl MatId {
    /// Dense index: `layer * 7 + k` for layer matrices, `n_layers * 7` for the head.
    pub fn index(&self, n_layers: usize) -> usize {
        match self.which {
            Which::Head => n_layers * 7,
            w => self.layer * 7 + w as usize,
        }
    }
}

/// How linear layers and attention are executed. Every implementation must produce exactly
/// the values of [`edgedecoding_kernels::linear::linear`] of `w`.
pub trait Backend {
    /// `out = linear(w, x, bias, out_frac)`; `id` names `w` in the model.
    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError>;

    /// Attention of one query position (SPEC §7.3); the default is the scalar
    /// reference kernel. Every implementation must give its exact outputs.
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
        Ok(attention(p, q, k_cache, v_cache, len, scores, probs, out)?)
    }
}

/// A shared reference to a backend is a backend (one repacked model can serve
/// several decoders).
impl<B: Backend> Backend for &B {
    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        (**self).linear(id, w, x, bias, out_frac, out)
    }

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
        (**self).attention(p, q, k_cache, v_cache, len, scores, probs, out)
    }
}

/// The scalar reference, single-threaded (no_std).
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Backend for Serial {
    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        _id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        Ok(linear(w, x, bias, out_frac, out)?)
    }
}

/// The lm_head: derived row by row from the embedding while it is read (no
/// extra memory), or a packed copy derived once (faster; needs memory).
#[derive(Clone, Copy, Debug)]
pub enum Head<'m> {
    /// Derived on the fly from the tied embedding.
    Derived(DerivedHead<'m>),
    /// Derived once and stored packed (see `OwnedHead` with `alloc`).
    Packed(ApotMatrix<'m>),
}

impl<'m> Head<'m> {
    /// The on-the-fly head of a model (kept rows only when pruned).
    pub fn derived(m: &Model<'m>) -> Result<Self, ModelError> {
        Ok(Head::Derived(DerivedHead::new(
            m.emb,
            m.config.hidden,
            m.globals.emb_exp,
            None,
        )?))
    }
}

impl ApotWeights for Head<'_> {
    type Row = i32;
    fn rows(&self) -> usize {
        match self {
            Head::Derived(h) => h.rows(),
            Head::Packed(h) => h.rows(),
        }
    }
    fn cols(&self) -> usize {
        match self {
            Head::Derived(h) => h.cols(),
            Head::Packed(h) => h.cols(),
        }
    }
    #[inline]
    fn row(&self, r: usize) -> (i8, i32) {
        match self {
            Head::Derived(h) => h.row(r),
            Head::Packed(h) => (h.row(r).0, 0),
        }
    }
    #[inline]
    fn group(&self, r: usize, g: usize, ctx: i32) -> ApotGroup {
        match self {
            Head::Derived(h) => h.group(r, g, ctx),
            Head::Packed(h) => h.group(r, g, ()),
        }
    }
}

/// Where the decoder reads the RoPE table (SPEC §6.1).
enum Rope<'m> {
    /// The model file's ROM, in place (no copy, no arithmetic).
    Rom(RopeRom<'m>),
    /// A file without the ROM, `std` only: the table built once by its recipe
    /// when the decoder is made (cos rows, then sin rows).
    #[cfg(feature = "std")]
    Built(std::vec::Vec<i16>),
}

impl Rope<'_> {
    fn table(&self) -> RopeRom<'_> {
        match self {
            Rope::Rom(r) => *r,
            #[cfg(feature = "std")]
            Rope::Built(v) => RopeRom::from_stored(v),
        }
    }
}

/// An integer decoder over a model and caller-provided state.
pub struct Decoder<'m, 's, B: Backend = Serial> {
    model: Model<'m>,
    head: Head<'m>,
    rope: Rope<'m>,
    st: State<'s>,
    backend: B,
}

impl<'m, 's, B: Backend> Decoder<'m, 's, B> {
    /// Combines a model, its lm_head, a state for the same config and a backend.
    /// RoPE reads the model's ROM ([`Model::rope`]); a model without one is
    /// refused with [`ModelError::NoRopeRom`], except in a `std` build, which
    /// builds the table here from its recipe (SPEC §6.1).
    pub fn new(
        model: Model<'m>,
        head: Head<'m>,
        state: State<'s>,
        backend: B,
    ) -> Result<Self, ModelError> {
        // the state may hold fewer positions than the model supports (a
        // run-time context): everything else must be the model's
        let same_but_ctx = Config {
            ctx: model.config.ctx,
            ..state.config
        };
        if same_but_ctx != model.config || state.config.ctx > model.config.ctx {
            return Err(ModelError::Mismatch(
                "the state was made for another config than the model's (or for more positions than its RoPE table holds)",
            ));
        }
        if head.rows() != model.config.n_kept || head.cols() != model.config.hidden {
            return Err(ModelError::Shape {
                name: crate::error::TensorName::new("lm_head"),
                expected: (model.config.n_kept as u64, model.config.hidden as u64),
                got: (head.rows() as u64, head.cols() as u64),
            });
        }
        let rope = match model.rope {
            Some(rom) => Rope::Rom(rom),
            #[cfg(feature = "std")]
            None => Rope::Built(crate::convert::rope_rom(&model.config)?),
            #[cfg(not(feature = "std"))]
            None => return Err(ModelError::NoRopeRom),
        };
        Ok(Self {
            model,
            head,
            rope,
            st: state,
            backend,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The state (KV cache, position).
    pub fn state(&self) -> &State<'s> {
        &self.st
    }

    /// Positions used.
    pub fn pos(&self) -> usize {
        self.st.pos
    }

    /// Forgets the context.
    pub fn reset(&mut self) {
        self.st.reset();
    }

    fn check(&self, tokens: &[u32]) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Empty);
        }
        let cap = self.st.config.ctx;
        if self.st.pos + tokens.len() > cap {
            return Err(ModelError::ContextFull {
                pos: self.st.pos as u32,
                requested: tokens.len() as u32,
                capacity: cap as u32,
            });
        }
        for &t in tokens {
            self.model.row_of_token(t)?;
        }
        Ok(())
    }

    /// Runs `tokens` through the model in chunks aligned to multiples of 8
    /// positions (one pass over every weight matrix per chunk) and returns the
    /// greedy next token. Logits of the last token are then in [`Self::logits`].
    /// On error nothing changes.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<u32, ModelError> {
        self.prefill_with(tokens, false, &mut |_, _| {}, &mut NoProbe)?;
        Ok(self.next_token())
    }

    /// Like [`Self::prefill`], calling `sink(i, logits)` for every token `i` of
    /// `tokens` (logits of the prediction after it; Q12, `n_kept` values).
    pub fn prefill_all(
        &mut self,
        tokens: &[u32],
        sink: &mut dyn FnMut(usize, &[i32]),
    ) -> Result<u32, ModelError> {
        self.prefill_with(tokens, true, sink, &mut NoProbe)?;
        Ok(self.next_token())
    }

    /// Like [`Self::prefill_all`], reporting every stage of every pass to
    /// `probe` ([`crate::probe`]): the final norm and the logits of every token
    /// are computed and reported. (An incremental decode step is a prefill of
    /// one token.) If an error is returned, the stages reported so far are
    /// incomplete.
    pub fn prefill_probed<P: Probe>(
        &mut self,
        tokens: &[u32],
        probe: &mut P,
    ) -> Result<u32, ModelError> {
        self.prefill_with(tokens, true, &mut |_, _| {}, probe)?;
        Ok(self.next_token())
    }

    fn prefill_with<P: Probe>(
        &mut self,
        tokens: &[u32],
        all: bool,
        sink: &mut dyn FnMut(usize, &[i32]),
        probe: &mut P,
    ) -> Result<(), ModelError> {
        self.check(tokens)?;
        let mut i = 0;
        while i < tokens.len() {
            let p = self.st.pos;
            // up to `cap` tokens per pass, ending on a multiple of 8 positions
            let n = (self.st.cap - p % T).min(tokens.len() - i);
            let chunk = &tokens[i..i + n];
            let last = i + n == tokens.len();
            let slots = if all {
                0..n
            } else if last {
                n - 1..n
            } else {
                n..n
            };
            self.run(chunk, p, slots, &mut |s, l| sink(i + s, l), probe)?;
            for (k, &t) in chunk.iter().enumerate() {
                self.st.chunk[(p + k) % T] = t;
            }
            self.st.pos += n;
            i += n;
        }
        Ok(())
    }

    /// Feeds one token at the next position and returns the greedy next token
    /// (incremental decode: only this position is computed).
    pub fn decode(&mut self, token: u32) -> Result<u32, ModelError> {
        self.prefill(core::slice::from_ref(&token))
    }

    /// Feeds one token exactly as the accelerator does: the whole current chunk
    /// of 8 positions is re-run (earlier tokens of the chunk recomputed, slots
    /// after the new token padded with it) and the result is read at the new
    /// token's slot. Equal to [`Self::decode`] by causality; tested.
    pub fn decode_parity(&mut self, token: u32) -> Result<u32, ModelError> {
        self.decode_parity_probed(token, &mut NoProbe)
    }

    /// Like [`Self::decode_parity`], reporting every stage of the re-run chunk
    /// to `probe` ([`crate::probe`]): the layer stages for all of its slots
    /// (padding included), the final norm and logits for the new token's slot.
    pub fn decode_parity_probed<P: Probe>(
        &mut self,
        token: u32,
        probe: &mut P,
    ) -> Result<u32, ModelError> {
        self.check(core::slice::from_ref(&token))?;
        let p = self.st.pos;
        let c0 = p - p % T;
        let slot = p % T;
        self.st.chunk[slot] = token;
        let mut toks = [token; T];
        toks[..=slot].copy_from_slice(&self.st.chunk[..=slot]);
        let n = T.min(self.st.config.ctx - c0);
        self.run(&toks[..n], c0, slot..slot + 1, &mut |_, _| {}, probe)?;
        self.st.pos = p + 1;
        Ok(self.next_token())
    }

    /// Logits (Q12, one per kept vocabulary row) of the last computed position.
    pub fn logits(&self) -> &[i32] {
        let v = self.model.config.n_kept;
        let k = self.st.logits_valid.saturating_sub(1);
        &self.st.logits[k * v..(k + 1) * v]
    }

    /// Full token id with the largest logit of the last position (lowest row
    /// wins ties).
    pub fn next_token(&self) -> u32 {
        let row = argmax_i32(self.logits()).unwrap_or(0);
        self.model.token_of_row(row)
    }

    /// One pass over the model for `tokens` at positions `start..`, writing
    /// their K/V rows, and logits for `slots`: computed 8 at a time into the
    /// logits rows, each handed to `sink(slot, logits)`; the last group stays
    /// in the logits rows. Every stage is reported to `probe` as soon as it is
    /// computed.
    fn run<P: Probe>(
        &mut self,
        tokens: &[u32],
        start: usize,
        slots: Range<usize>,
        sink: &mut dyn FnMut(usize, &[i32]),
        probe: &mut P,
    ) -> Result<(), ModelError> {
        let c = self.model.config;
        let (n, h, kvd, f, hd) = (tokens.len(), c.hidden, c.kv_dim(), c.ffn, c.head_dim);
        let half = hd / 2;
        let cap = self.st.config.ctx;
        let eps = self.model.globals.eps_q40;
        let st = &mut self.st;
        let be = &self.backend;
        let rope = self.rope.table();
        let emb = Site::Embedding;
        for (t, &tok) in tokens.iter().enumerate() {
            let row = self.model.row_of_token(tok)?;
            tap(probe, emb, Stage::Rows, start + t, 1, &[row as u32][..]);
            embed_row(
                &self.model.emb[row * h..(row + 1) * h],
                self.model.globals.emb_exp,
                &mut st.x[t * h..(t + 1) * h],
            )?;
        }
        tap(probe, emb, Stage::XEmbed, start, n, &st.x[..n * h]);
        for l in 0..c.n_layers {
            let lw = self.model.layer(l)?;
            let fm = lw.fmt;
            let at = Site::Layer(l);
            tap(probe, at, Stage::XIn, start, n, &st.x[..n * h]);
            // --- attention block: norm, quantize, q/k/v, RoPE, cache, attention, o, residual
            for t in 0..n {
                rmsnorm(
                    &st.x[t * h..(t + 1) * h],
                    lw.attn_norm,
                    fm.attn_norm_frac,
                    eps,
                    &mut st.xn[t * h..(t + 1) * h],
                )?;
            }
            tap(probe, at, Stage::AttnNorm, start, n, &st.xn[..n * h]);
            quantize_bfp(&st.xn[..n * h], &mut st.blocks[..n * h / 8])?;
            let xb = &st.blocks[..n * h / 8];
            tap(probe, at, Stage::AttnBfp, start, n, xb);
            be.linear(
                MatId {
                    layer: l,
                    which: Which::Q,
                },
                &lw.q,
                xb,
                Some(lw.q_bias),
                fm.q_frac,
                &mut st.q[..n * h],
            )?;
            be.linear(
                MatId {
                    layer: l,
                    which: Which::K,
                },
                &lw.k,
                xb,
                Some(lw.k_bias),
                fm.k_frac,
                &mut st.k_new[..n * kvd],
            )?;
            be.linear(
                MatId {
                    layer: l,
                    which: Which::V,
                },
                &lw.v,
                xb,
                Some(lw.v_bias),
                fm.v_frac,
                &mut st.v_new[..n * kvd],
            )?;
            tap(probe, at, Stage::Q, start, n, &st.q[..n * h]);
            tap(probe, at, Stage::K, start, n, &st.k_new[..n * kvd]);
            tap(probe, at, Stage::V, start, n, &st.v_new[..n * kvd]);
            let kc = &mut st.k_cache[l * cap * kvd..(l + 1) * cap * kvd];
            let vc = &mut st.v_cache[l * cap * kvd..(l + 1) * cap * kvd];
            for t in 0..n {
                let p = start + t;
                let (cos, sin) = rope.row(p, half);
                let krow = &mut kc[p * kvd..(p + 1) * kvd];
                for (d, &s) in krow.iter_mut().zip(&st.k_new[t * kvd..(t + 1) * kvd]) {
                    *d = sat_i16(s as i64);
                }
                rope_apply(krow, hd, cos, sin)?;
                for (d, &s) in vc[p * kvd..(p + 1) * kvd]
                    .iter_mut()
                    .zip(&st.v_new[t * kvd..(t + 1) * kvd])
                {
                    *d = sat_i16(s as i64);
                }
            }
            let rows = start * kvd..(start + n) * kvd;
            tap(probe, at, Stage::KRow, start, n, &kc[rows.clone()]);
            tap(probe, at, Stage::VRow, start, n, &vc[rows]);
            let params = AttnParams {
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: hd,
                q_frac: fm.q_frac,
                k_frac: fm.k_frac,
                v_frac: fm.v_frac,
                out_frac: ACT_FRAC,
            };
            for t in 0..n {
                let p = start + t;
                for (d, &s) in st.q16.iter_mut().zip(&st.q[t * h..(t + 1) * h]) {
                    *d = sat_i16(s as i64);
                }
                let (cos, sin) = rope.row(p, half);
                rope_apply(st.q16, hd, cos, sin)?;
                tap(probe, at, Stage::QRot, p, 1, &st.q16[..]);
                be.attention(
                    &params,
                    st.q16,
                    kc,
                    vc,
                    p + 1,
                    st.scores,
                    st.probs,
                    &mut st.att[t * h..(t + 1) * h],
                )?;
            }
            tap(probe, at, Stage::Attn, start, n, &st.att[..n * h]);
            quantize_bfp(&st.att[..n * h], &mut st.blocks[..n * h / 8])?;
            tap(probe, at, Stage::OBfp, start, n, &st.blocks[..n * h / 8]);
            be.linear(
                MatId {
                    layer: l,
                    which: Which::O,
                },
                &lw.o,
                &st.blocks[..n * h / 8],
                None,
                ACT_FRAC,
                &mut st.proj[..n * h],
            )?;
            tap(probe, at, Stage::OProj, start, n, &st.proj[..n * h]);
            residual_add(&mut st.x[..n * h], &st.proj[..n * h])?;
            tap(probe, at, Stage::XAttn, start, n, &st.x[..n * h]);
            // --- MLP block: norm, quantize, gate/up, SwiGLU, quantize, down, residual
            for t in 0..n {
                rmsnorm(
                    &st.x[t * h..(t + 1) * h],
                    lw.ffn_norm,
                    fm.ffn_norm_frac,
                    eps,
                    &mut st.xn[t * h..(t + 1) * h],
                )?;
            }
            tap(probe, at, Stage::MlpNorm, start, n, &st.xn[..n * h]);
            quantize_bfp(&st.xn[..n * h], &mut st.blocks[..n * h / 8])?;
            tap(probe, at, Stage::MlpBfp, start, n, &st.blocks[..n * h / 8]);
            be.linear(
                MatId {
                    layer: l,
                    which: Which::Gate,
                },
                &lw.gate,
                &st.blocks[..n * h / 8],
                None,
                ACT_FRAC,
                &mut st.gate[..n * f],
            )?;
            be.linear(
                MatId {
                    layer: l,
                    which: Which::Up,
                },
                &lw.up,
                &st.blocks[..n * h / 8],
                None,
                ACT_FRAC,
                &mut st.up[..n * f],
            )?;
            tap(probe, at, Stage::Gate, start, n, &st.gate[..n * f]);
            tap(probe, at, Stage::Up, start, n, &st.up[..n * f]);
            swiglu(&st.gate[..n * f], &st.up[..n * f], &mut st.ffn_h[..n * f])?;
            tap(probe, at, Stage::Swiglu, start, n, &st.ffn_h[..n * f]);
            quantize_bfp(&st.ffn_h[..n * f], &mut st.blocks[..n * f / 8])?;
            tap(probe, at, Stage::DownBfp, start, n, &st.blocks[..n * f / 8]);
            be.linear(
                MatId {
                    layer: l,
                    which: Which::Down,
                },
                &lw.down,
                &st.blocks[..n * f / 8],
                None,
                ACT_FRAC,
                &mut st.proj[..n * h],
            )?;
            tap(probe, at, Stage::Down, start, n, &st.proj[..n * h]);
            residual_add(&mut st.x[..n * h], &st.proj[..n * h])?;
            tap(probe, at, Stage::XOut, start, n, &st.x[..n * h]);
        }
        // --- final norm and lm_head for the requested slots, 8 at a time
        let v = c.n_kept;
        let mut g0 = slots.start;
        while g0 < slots.end {
            let ns = (slots.end - g0).min(T);
            let (fin, first) = (Site::Final, start + g0);
            for k in 0..ns {
                let t = g0 + k;
                rmsnorm(
                    &st.x[t * h..(t + 1) * h],
                    self.model.final_norm,
                    self.model.globals.final_norm_frac,
                    eps,
                    &mut st.xn[k * h..(k + 1) * h],
                )?;
            }
            tap(probe, fin, Stage::FinalNorm, first, ns, &st.xn[..ns * h]);
            quantize_bfp(&st.xn[..ns * h], &mut st.blocks[..ns * h / 8])?;
            let fb = &st.blocks[..ns * h / 8];
            tap(probe, fin, Stage::FinalBfp, first, ns, fb);
            be.linear(
                MatId {
                    layer: 0,
                    which: Which::Head,
                },
                &self.head,
                fb,
                None,
                ACT_FRAC,
                &mut st.logits[..ns * v],
            )?;
            let logits = &st.logits[..ns * v];
            tap(probe, Site::Head, Stage::Logits, first, ns, logits);
            st.logits_valid = ns;
            for k in 0..ns {
                sink(g0 + k, &st.logits[k * v..(k + 1) * v]);
            }
            g0 += ns;
        }
        Ok(())
    }
}

/// Reports one stage of positions `start..start + tokens` to `probe` (nothing
/// at all for [`NoProbe`]).
#[inline(always)]
fn tap<'a, P: Probe>(
    probe: &mut P,
    site: Site,
    stage: Stage,
    start: usize,
    tokens: usize,
    values: impl Into<Values<'a>>,
) {
    probe.stage(StageRef {
        site,
        stage,
        start,
        tokens,
        values: values.into(),
    });
}

//! The decoder's stage probe: every intermediate of a pass, lent to an
//! observer while the pass runs (no copy, no heap, no_std).
//!
//! [`crate::Decoder::prefill_probed`] and [`crate::Decoder::decode_parity_probed`]
//! call [`Probe::stage`] once per stage of the one real pass (whatever the
//! backend), in pass order, with a borrowed slice of the stage's integers.
//! Normal runs use [`NoProbe`], whose empty `stage` is inlined away.
//!
//! A stage's values are token-major, `[tokens][width]`, for the positions
//! `start..start + tokens`. Most stages come once per chunk the decoder runs
//! (the chunk's first position and token count: a consumer must not assume a
//! chunk length); `rows` and `q_rot` come once per token (`tokens == 1`), and
//! the final stages and `logits` once per chunk for the positions whose logits
//! are computed. A consumer that appends each call's values per (site, stage)
//! gets every stage for consecutive positions, however the positions were
//! chunked.

use edgedecoding_kernels::bfp::BfpBlock;

/// Which part of the model a stage belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// The embedding lookup (SPEC §9.2).
    Embedding,
    /// Decoder layer `l` (0-based).
    Layer(usize),
    /// The final RMSNorm and its BFP quantization.
    Final,
    /// The lm_head.
    Head,
}

/// One stage of the pass. [`Stage::name`] is the tensor name of docs/VECTORS.md
/// §4 and of the golden manifest (a BFP stage `s` is written there as the two
/// files `s_m` and `s_e`). Listed in pass order; the type of the values is
/// given per stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// [`Site::Embedding`], `u32 [1]` per token: the embedding row (pruned id).
    Rows,
    /// [`Site::Embedding`], `i32 [C]` Q12: the embedding lookup (= layer 0's `x_in`).
    XEmbed,
    /// `i32 [C]` Q12: the residual entering the layer.
    XIn,
    /// `i32 [C]` Q12: attention RMSNorm.
    AttnNorm,
    /// `BfpBlock [C/8]`: its BFP blocks.
    AttnBfp,
    /// `i32 [C]` Q(q_frac): q projection with bias.
    Q,
    /// `i32 [kv_dim]` Q(k_frac): k projection with bias.
    K,
    /// `i32 [kv_dim]` Q(v_frac): v projection with bias.
    V,
    /// `i16 [kv_dim]`: the K cache rows written (`sat_i16(k)`, then RoPE).
    KRow,
    /// `i16 [kv_dim]`: the V cache rows written (`sat_i16(v)`).
    VRow,
    /// `i16 [C]` per token: the rotated queries (`sat_i16(q)`, then RoPE).
    QRot,
    /// `i32 [C]` Q12: attention output.
    Attn,
    /// `BfpBlock [C/8]`: its BFP blocks.
    OBfp,
    /// `i32 [C]` Q12: output projection.
    OProj,
    /// `i32 [C]` Q12: the residual after attention.
    XAttn,
    /// `i32 [C]` Q12: MLP RMSNorm.
    MlpNorm,
    /// `BfpBlock [C/8]`: its BFP blocks.
    MlpBfp,
    /// `i32 [F]` Q12: gate projection.
    Gate,
    /// `i32 [F]` Q12: up projection.
    Up,
    /// `i32 [F]` Q12: SwiGLU.
    Swiglu,
    /// `BfpBlock [F/8]`: its BFP blocks.
    DownBfp,
    /// `i32 [C]` Q12: down projection.
    Down,
    /// `i32 [C]` Q12: the residual leaving the layer.
    XOut,
    /// [`Site::Final`], `i32 [C]` Q12: final RMSNorm.
    FinalNorm,
    /// [`Site::Final`], `BfpBlock [C/8]`: its BFP blocks.
    FinalBfp,
    /// [`Site::Head`], `i32 [n_kept]` Q12: logits.
    Logits,
}

impl Stage {
    /// Every stage, in pass order.
    pub const ALL: [Stage; 26] = [
        Stage::Rows,
        Stage::XEmbed,
        Stage::XIn,
        Stage::AttnNorm,
        Stage::AttnBfp,
        Stage::Q,
        Stage::K,
        Stage::V,
        Stage::KRow,
        Stage::VRow,
        Stage::QRot,
        Stage::Attn,
        Stage::OBfp,
        Stage::OProj,
        Stage::XAttn,
        Stage::MlpNorm,
        Stage::MlpBfp,
        Stage::Gate,
        Stage::Up,
        Stage::Swiglu,
        Stage::DownBfp,
        Stage::Down,
        Stage::XOut,
        Stage::FinalNorm,
        Stage::FinalBfp,
        Stage::Logits,
    ];

    /// The stage's tensor name in docs/VECTORS.md §4 and the golden manifest.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Rows => "rows",
            Stage::XEmbed => "x_embed",
            Stage::XIn => "x_in",
            Stage::AttnNorm => "attn_norm",
            Stage::AttnBfp => "attn_bfp",
            Stage::Q => "q",
            Stage::K => "k",
            Stage::V => "v",
            Stage::KRow => "k_row",
            Stage::VRow => "v_row",
            Stage::QRot => "q_rot",
            Stage::Attn => "attn",
            Stage::OBfp => "o_bfp",
            Stage::OProj => "o_proj",
            Stage::XAttn => "x_attn",
            Stage::MlpNorm => "mlp_norm",
            Stage::MlpBfp => "mlp_bfp",
            Stage::Gate => "gate",
            Stage::Up => "up",
            Stage::Swiglu => "swiglu",
            Stage::DownBfp => "down_bfp",
            Stage::Down => "down",
            Stage::XOut => "x_out",
            Stage::FinalNorm => "final_norm",
            Stage::FinalBfp => "final_bfp",
            Stage::Logits => "logits",
        }
    }
}

/// A stage's values, borrowed from the decoder's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values<'a> {
    /// Q-format activations, projections, logits.
    I32(&'a [i32]),
    /// Saturated 16-bit values (rotated queries, K/V cache rows).
    I16(&'a [i16]),
    /// BFP blocks of 8 values.
    Bfp(&'a [BfpBlock]),
    /// Embedding rows.
    U32(&'a [u32]),
}

impl Values<'_> {
    /// Number of elements (blocks for [`Values::Bfp`]).
    pub fn len(&self) -> usize {
        match self {
            Values::I32(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::Bfp(v) => v.len(),
            Values::U32(v) => v.len(),
        }
    }

    /// No elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a [i32]> for Values<'a> {
    fn from(v: &'a [i32]) -> Self {
        Values::I32(v)
    }
}

impl<'a> From<&'a [i16]> for Values<'a> {
    fn from(v: &'a [i16]) -> Self {
        Values::I16(v)
    }
}

impl<'a> From<&'a [BfpBlock]> for Values<'a> {
    fn from(v: &'a [BfpBlock]) -> Self {
        Values::Bfp(v)
    }
}

impl<'a> From<&'a [u32]> for Values<'a> {
    fn from(v: &'a [u32]) -> Self {
        Values::U32(v)
    }
}

/// One stage of one pass: where, which, for which positions, and the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageRef<'a> {
    /// The part of the model.
    pub site: Site,
    /// The stage.
    pub stage: Stage,
    /// Position of the first token of `values`.
    pub start: usize,
    /// Tokens in `values` (positions `start..start + tokens`), at least 1.
    pub tokens: usize,
    /// `[tokens][width]`, token-major.
    pub values: Values<'a>,
}

/// An observer of the decoder's stages (see the module documentation).
pub trait Probe {
    /// Called once per stage of a pass, in pass order; the values are only
    /// borrowed for the call.
    fn stage(&mut self, s: StageRef<'_>);
}

/// The probe of normal runs: does nothing, and costs nothing (the decoder is
/// generic over the probe, so this empty call is inlined away).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    #[inline(always)]
    fn stage(&mut self, _: StageRef<'_>) {}
}

/// Any `FnMut(StageRef)` closure is a probe.
impl<F: FnMut(StageRef<'_>)> Probe for F {
    #[inline]
    fn stage(&mut self, s: StageRef<'_>) {
        self(s)
    }
}

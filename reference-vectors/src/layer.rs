//! Every intermediate of the decoder over a chunk of tokens (the values the
//! hardware exposes between operators), collected from the decoder's stage
//! probe ([`edgedecoding_model::probe`]) while the real
//! `edgedecoding_model::Decoder` runs: nothing here computes a stage.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_model::{Backend, Decoder, Probe, Site, Stage, StageRef, Values};

/// Every intermediate of one decoder layer for `n` tokens, token-major.
#[derive(Clone, Debug, Default)]
pub struct LayerCapture {
    /// Residual input, `[n][C]` Q12.
    pub x_in: Vec<i32>,
    /// K cache rows the chunk found, positions `0..start`, `[start][kv_dim]`.
    pub k_cache_in: Vec<i16>,
    /// V cache rows the chunk found, positions `0..start`.
    pub v_cache_in: Vec<i16>,
    /// Attention RMSNorm output, `[n][C]` Q12.
    pub attn_norm: Vec<i32>,
    /// Its BFP blocks, `[n][C/8]`.
    pub attn_bfp: Vec<BfpBlock>,
    /// q projection (with bias), `[n][C]` Q(q_frac) i32.
    pub q: Vec<i32>,
    /// k projection (with bias), `[n][kv_dim]` Q(k_frac) i32.
    pub k: Vec<i32>,
    /// v projection (with bias), `[n][kv_dim]` Q(v_frac) i32.
    pub v: Vec<i32>,
    /// Rotated queries, `[n][C]` i16 (saturated, then RoPE).
    pub q_rot: Vec<i16>,
    /// K cache rows written (saturated, then RoPE), `[n][kv_dim]` i16.
    pub k_row: Vec<i16>,
    /// V cache rows written (saturated), `[n][kv_dim]` i16.
    pub v_row: Vec<i16>,
    /// Attention output, `[n][C]` Q12.
    pub attn: Vec<i32>,
    /// Its BFP blocks.
    pub o_bfp: Vec<BfpBlock>,
    /// Output projection, `[n][C]` Q12.
    pub o_proj: Vec<i32>,
    /// Residual after attention, `[n][C]` Q12.
    pub x_attn: Vec<i32>,
    /// MLP RMSNorm output, `[n][C]` Q12.
    pub mlp_norm: Vec<i32>,
    /// Its BFP blocks.
    pub mlp_bfp: Vec<BfpBlock>,
    /// Gate projection, `[n][F]` Q12.
    pub gate: Vec<i32>,
    /// Up projection, `[n][F]` Q12.
    pub up: Vec<i32>,
    /// SwiGLU, `[n][F]` Q12.
    pub swiglu: Vec<i32>,
    /// Its BFP blocks.
    pub down_bfp: Vec<BfpBlock>,
    /// Down projection, `[n][C]` Q12.
    pub down: Vec<i32>,
    /// Residual out, `[n][C]` Q12.
    pub x_out: Vec<i32>,
}

/// One chunk through the whole model.
#[derive(Clone, Debug, Default)]
pub struct ChunkCapture {
    /// Position of the first token.
    pub start: usize,
    /// Full token ids.
    pub tokens: Vec<u32>,
    /// Embedding rows (pruned ids).
    pub rows: Vec<u32>,
    /// Embedding lookup, `[n][C]` Q12 (= layer 0's `x_in`).
    pub x_embed: Vec<i32>,
    /// Per layer.
    pub layers: Vec<LayerCapture>,
    /// Final RMSNorm, `[n][C]` Q12.
    pub final_norm: Vec<i32>,
    /// Its BFP blocks.
    pub final_bfp: Vec<BfpBlock>,
    /// Logits, `[n][n_kept]` Q12.
    pub logits: Vec<i32>,
    /// Argmax per token (pruned id, lowest on ties).
    pub argmax: Vec<u32>,
}

impl ChunkCapture {
    /// Feeds `tokens` (full ids) to `dec` at its current position with
    /// [`Decoder::prefill_probed`] and keeps every stage the decoder reports,
    /// plus the K/V cache rows it found (positions `0..start`). However the
    /// decoder chunks the tokens, the capture holds every stage for every token.
    pub fn run<B: Backend>(dec: &mut Decoder<'_, '_, B>, tokens: &[u32]) -> Result<Self> {
        let start = dec.pos();
        let kvd = dec.model().config.kv_dim();
        let layers = (0..dec.model().config.n_layers)
            .map(|l| LayerCapture {
                k_cache_in: dec.state().k_cache(l)[..start * kvd].to_vec(),
                v_cache_in: dec.state().v_cache(l)[..start * kvd].to_vec(),
                ..Default::default()
            })
            .collect();
        let mut col = Collector {
            cap: ChunkCapture {
                start,
                tokens: tokens.to_vec(),
                layers,
                ..Default::default()
            },
            covered: BTreeMap::new(),
            error: None,
        };
        let next = dec.prefill_probed(tokens, &mut col)?;
        if let Some(e) = col.error {
            bail!("stage probe of the chunk at position {start}: {e}");
        }
        col.require_all(tokens.len())?;
        let mut cap = col.cap;
        // the greedy choice of every token, by the decoder's rule (SPEC §10)
        let v = dec.model().config.n_kept;
        cap.argmax = cap
            .logits
            .chunks_exact(v)
            .map(|lg| argmax_i32(lg).unwrap_or(0) as u32)
            .collect();
        let last = cap.argmax.last().map_or(0, |&r| r as usize);
        if dec.model().token_of_row(last) != next {
            bail!("captured logits of the chunk at position {start} disagree with the decoder's next token");
        }
        Ok(cap)
    }
}

/// The probe: appends every reported stage to its field of the capture.
struct Collector {
    cap: ChunkCapture,
    /// Tokens received per (site, stage).
    covered: BTreeMap<(Site, Stage), usize>,
    /// The first inconsistency (a probe cannot return an error).
    error: Option<String>,
}

/// A field of the capture, typed.
enum Field<'c> {
    I32(&'c mut Vec<i32>),
    I16(&'c mut Vec<i16>),
    Bfp(&'c mut Vec<BfpBlock>),
    U32(&'c mut Vec<u32>),
}

impl ChunkCapture {
    /// The field a stage is kept in (`None`: not kept).
    fn field(&mut self, site: Site, stage: Stage) -> Option<Field<'_>> {
        use Field::*;
        Some(match (site, stage) {
            (Site::Embedding, Stage::Rows) => U32(&mut self.rows),
            (Site::Embedding, Stage::XEmbed) => I32(&mut self.x_embed),
            (Site::Final, Stage::FinalNorm) => I32(&mut self.final_norm),
            (Site::Final, Stage::FinalBfp) => Bfp(&mut self.final_bfp),
            (Site::Head, Stage::Logits) => I32(&mut self.logits),
            (Site::Layer(l), stage) => {
                let c = self.layers.get_mut(l)?;
                match stage {
                    Stage::XIn => I32(&mut c.x_in),
                    Stage::AttnNorm => I32(&mut c.attn_norm),
                    Stage::AttnBfp => Bfp(&mut c.attn_bfp),
                    Stage::Q => I32(&mut c.q),
                    Stage::K => I32(&mut c.k),
                    Stage::V => I32(&mut c.v),
                    Stage::KRow => I16(&mut c.k_row),
                    Stage::VRow => I16(&mut c.v_row),
                    Stage::QRot => I16(&mut c.q_rot),
                    Stage::Attn => I32(&mut c.attn),
                    Stage::OBfp => Bfp(&mut c.o_bfp),
                    Stage::OProj => I32(&mut c.o_proj),
                    Stage::XAttn => I32(&mut c.x_attn),
                    Stage::MlpNorm => I32(&mut c.mlp_norm),
                    Stage::MlpBfp => Bfp(&mut c.mlp_bfp),
                    Stage::Gate => I32(&mut c.gate),
                    Stage::Up => I32(&mut c.up),
                    Stage::Swiglu => I32(&mut c.swiglu),
                    Stage::DownBfp => Bfp(&mut c.down_bfp),
                    Stage::Down => I32(&mut c.down),
                    Stage::XOut => I32(&mut c.x_out),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }
}

/// Appends `src` (positions `s.start..`) to `dst`, which must hold exactly the
/// positions `start..s.start` so far.
fn append<T: Copy>(dst: &mut Vec<T>, src: &[T], s: &StageRef<'_>, start: usize) -> bool {
    let width = src.len() / s.tokens.max(1);
    let ok = s.tokens > 0
        && src.len() == s.tokens * width
        && s.start >= start
        && dst.len() == (s.start - start) * width;
    if ok {
        dst.extend_from_slice(src);
    }
    ok
}

impl Collector {
    fn put(&mut self, s: &StageRef<'_>) -> Result<(), String> {
        let start = self.cap.start;
        let what = || format!("{:?} {}", s.site, s.stage.name());
        let ok = match (self.cap.field(s.site, s.stage), s.values) {
            (None, _) => return Err(format!("unexpected stage {}", what())),
            (Some(Field::I32(d)), Values::I32(v)) => append(d, v, s, start),
            (Some(Field::I16(d)), Values::I16(v)) => append(d, v, s, start),
            (Some(Field::Bfp(d)), Values::Bfp(v)) => append(d, v, s, start),
            (Some(Field::U32(d)), Values::U32(v)) => append(d, v, s, start),
            _ => return Err(format!("{}: unexpected value type", what())),
        };
        if !ok {
            return Err(format!(
                "{}: {} tokens at position {} do not continue the positions from {start}",
                what(),
                s.tokens,
                s.start
            ));
        }
        *self.covered.entry((s.site, s.stage)).or_default() += s.tokens;
        Ok(())
    }

    /// Every kept stage was reported for all `n` tokens.
    fn require_all(&mut self, n: usize) -> Result<()> {
        let mut sites = vec![Site::Embedding, Site::Final, Site::Head];
        sites.extend((0..self.cap.layers.len()).map(Site::Layer));
        for site in sites {
            for stage in Stage::ALL {
                if self.cap.field(site, stage).is_some() {
                    let got = self.covered.get(&(site, stage)).copied().unwrap_or(0);
                    if got != n {
                        bail!(
                            "stage probe: {site:?} {} reported for {got} of {n} tokens",
                            stage.name()
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

impl Probe for Collector {
    fn stage(&mut self, s: StageRef<'_>) {
        if self.error.is_none() {
            if let Err(e) = self.put(&s) {
                self.error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgedecoding_model::selftest::tiny_edq;
    use edgedecoding_model::{Head, Model, Serial, State, StateMem};

    fn with_decoder(f: impl FnOnce(&mut Decoder<'_, '_, Serial>)) {
        let m = Model::from_bytes(tiny_edq()).unwrap();
        let mut mem = StateMem::new(&m.config);
        let st = State::new(&m.config, mem.bytes()).unwrap();
        let mut d = Decoder::new(m, Head::derived(&m).unwrap(), st, Serial).unwrap();
        f(&mut d)
    }

    /// Per-token stages do not depend on how the positions were chunked: one
    /// capture of 11 tokens from position 3 (decoder chunks 3..8, 8..14) equals
    /// two captures of 2 and 9 tokens, joined.
    #[test]
    fn capture_is_independent_of_chunking() {
        let toks = [5u32, 200, 17, 3, 99, 255, 0, 42, 42, 7, 120];
        let mut whole = ChunkCapture::default();
        with_decoder(|d| {
            d.prefill(&[1, 2, 3]).unwrap();
            whole = ChunkCapture::run(d, &toks).unwrap();
        });
        with_decoder(|d| {
            d.prefill(&[1, 2, 3]).unwrap();
            let a = ChunkCapture::run(d, &toks[..2]).unwrap();
            let b = ChunkCapture::run(d, &toks[2..]).unwrap();
            assert_eq!((a.start, b.start), (3, 5));
            let join = |x: &[i32], y: &[i32]| [x, y].concat();
            assert_eq!(whole.logits, join(&a.logits, &b.logits));
            assert_eq!(whole.argmax, [a.argmax.clone(), b.argmax.clone()].concat());
            assert_eq!(whole.x_embed, join(&a.x_embed, &b.x_embed));
            for (l, w) in whole.layers.iter().enumerate() {
                let (la, lb) = (&a.layers[l], &b.layers[l]);
                assert_eq!(w.x_out, join(&la.x_out, &lb.x_out), "layer {l}");
                assert_eq!(w.attn, join(&la.attn, &lb.attn), "layer {l}");
                assert_eq!(w.q_rot, [la.q_rot.clone(), lb.q_rot.clone()].concat());
                assert_eq!(
                    w.down_bfp,
                    [la.down_bfp.clone(), lb.down_bfp.clone()].concat()
                );
                // the second capture found the first one's K rows in the cache
                assert_eq!(lb.k_cache_in[w.k_cache_in.len()..], la.k_row[..]);
            }
        });
    }

    /// Reports that do not continue the positions, or carry the wrong type,
    /// are refused.
    #[test]
    fn collector_refuses_inconsistent_reports() {
        let mut col = Collector {
            cap: ChunkCapture {
                start: 8,
                layers: vec![LayerCapture::default()],
                ..Default::default()
            },
            covered: BTreeMap::new(),
            error: None,
        };
        let at = |start, stage, values| StageRef {
            site: Site::Layer(0),
            stage,
            start,
            tokens: 1,
            values,
        };
        assert!(col.put(&at(8, Stage::XIn, Values::I32(&[1, 2]))).is_ok());
        assert!(col.put(&at(9, Stage::XIn, Values::I32(&[3, 4]))).is_ok());
        assert!(col.put(&at(11, Stage::XIn, Values::I32(&[5, 6]))).is_err());
        assert!(col.put(&at(10, Stage::XIn, Values::I16(&[5, 6]))).is_err());
        assert!(col.put(&at(8, Stage::Logits, Values::I32(&[1]))).is_err());
        assert_eq!(col.cap.layers[0].x_in, [1, 2, 3, 4]);
        assert!(col.require_all(2).is_err()); // the other stages are missing
    }
}

//! The stage probe: what the decoder reports, that every backend reports the
//! same values, and that probing changes no result.

mod common;

use common::{tiny, tokens};
use edgedecoding_model::fast::Fast;
use edgedecoding_model::owned::OwnedHead;
use edgedecoding_model::parallel::Threaded;
use edgedecoding_model::{
    Backend, Decoder, Head, Model, Serial, Site, Stage, StageRef, State, StateMem, Values,
};

/// One reported stage, owned (BFP blocks flattened to 8 mantissas then `e`).
#[derive(Clone, Debug, PartialEq)]
struct Rec {
    site: Site,
    stage: Stage,
    start: usize,
    tokens: usize,
    vals: Vec<i64>,
}

impl Rec {
    fn of(s: StageRef<'_>) -> Self {
        let vals = match s.values {
            Values::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Values::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Values::U32(v) => v.iter().map(|&x| x as i64).collect(),
            Values::Bfp(v) => v
                .iter()
                .flat_map(|b| b.m.iter().map(|&m| m as i64).chain([b.e as i64]))
                .collect(),
        };
        Self {
            site: s.site,
            stage: s.stage,
            start: s.start,
            tokens: s.tokens,
            vals,
        }
    }
}

/// Width per token of a stage (elements; BFP blocks count 9).
fn width(m: &Model<'_>, stage: Stage) -> usize {
    let c = m.config;
    match stage {
        Stage::Rows => 1,
        Stage::K | Stage::V | Stage::KRow | Stage::VRow => c.kv_dim(),
        Stage::Gate | Stage::Up | Stage::Swiglu => c.ffn,
        Stage::AttnBfp | Stage::OBfp | Stage::MlpBfp | Stage::FinalBfp => c.hidden / 8 * 9,
        Stage::DownBfp => c.ffn / 8 * 9,
        Stage::Logits => c.n_kept,
        _ => c.hidden,
    }
}

/// A fresh decoder, `prefill(toks[..split])` unprobed, then
/// `prefill_probed(toks[split..])` and three probed parity decode steps:
/// (records of the probed prefill, records of the steps, next tokens, logits).
fn probed_run<B: Backend>(
    m: Model<'_>,
    head: Head<'_>,
    be: B,
    toks: &[u32],
    split: usize,
) -> (Vec<Rec>, Vec<Rec>, Vec<u32>, Vec<i32>) {
    let mut mem = StateMem::new(&m.config);
    let mut d = Decoder::new(m, head, State::new(&m.config, mem.bytes()).unwrap(), be).unwrap();
    d.prefill(&toks[..split]).unwrap();
    let mut pre = vec![];
    let mut next = vec![d
        .prefill_probed(&toks[split..], &mut |s: StageRef<'_>| pre.push(Rec::of(s)))
        .unwrap()];
    let mut steps = vec![];
    for _ in 0..3 {
        let t = *next.last().unwrap();
        next.push(
            d.decode_parity_probed(t, &mut |s: StageRef<'_>| steps.push(Rec::of(s)))
                .unwrap(),
        );
    }
    (pre, steps, next, d.logits().to_vec())
}

/// The records of one (site, stage), concatenated; requires consecutive
/// positions from `from`.
fn joined(recs: &[Rec], site: Site, stage: Stage, from: usize) -> Vec<i64> {
    let mut out = vec![];
    let mut pos = from;
    for r in recs.iter().filter(|r| r.site == site && r.stage == stage) {
        assert_eq!(r.start, pos, "{site:?} {stage:?} not consecutive");
        pos += r.tokens;
        out.extend_from_slice(&r.vals);
    }
    out
}

#[test]
fn probed_prefill_reports_every_stage_and_changes_nothing() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let c = m.config;
    let toks = tokens(21, 256, 5);
    let split = 5; // chunks 5..8, 8..16, 16..21
    let (recs, _, next, _) = probed_run(m, Head::derived(&m).unwrap(), Serial, &toks, split);

    // the same run without a probe
    let mut mem = StateMem::new(&c);
    let mut d = Decoder::new(
        m,
        Head::derived(&m).unwrap(),
        State::new(&c, mem.bytes()).unwrap(),
        Serial,
    )
    .unwrap();
    d.prefill(&toks[..split]).unwrap();
    let mut logits = vec![];
    let nt = d
        .prefill_all(&toks[split..], &mut |_, l| {
            logits.extend(l.iter().map(|&x| x as i64))
        })
        .unwrap();
    assert_eq!(next[0], nt);
    assert_eq!(joined(&recs, Site::Head, Stage::Logits, split), logits);
    let kvd = c.kv_dim();
    for l in 0..c.n_layers {
        let site = Site::Layer(l);
        let k: Vec<i64> = d.state().k_cache(l)[split * kvd..toks.len() * kvd]
            .iter()
            .map(|&x| x as i64)
            .collect();
        let v: Vec<i64> = d.state().v_cache(l)[split * kvd..toks.len() * kvd]
            .iter()
            .map(|&x| x as i64)
            .collect();
        assert_eq!(joined(&recs, site, Stage::KRow, split), k, "layer {l}");
        assert_eq!(joined(&recs, site, Stage::VRow, split), v, "layer {l}");
        // the residual stream is handed from stage to stage
        let x_in = joined(&recs, site, Stage::XIn, split);
        let prev = match l {
            0 => joined(&recs, Site::Embedding, Stage::XEmbed, split),
            _ => joined(&recs, Site::Layer(l - 1), Stage::XOut, split),
        };
        assert_eq!(x_in, prev, "layer {l}");
    }
    let rows: Vec<i64> = toks[split..]
        .iter()
        .map(|&t| m.row_of_token(t).unwrap() as i64)
        .collect();
    assert_eq!(joined(&recs, Site::Embedding, Stage::Rows, split), rows);

    // every stage of every layer, for every position, with its width; pass
    // order within each chunk
    let n = toks.len() - split;
    let mut sites = vec![Site::Embedding, Site::Final, Site::Head];
    sites.extend((0..c.n_layers).map(Site::Layer));
    for r in &recs {
        assert_eq!(r.vals.len(), r.tokens * width(&m, r.stage), "{r:?}");
    }
    let mut seen = 0;
    for site in sites {
        let stages: Vec<Stage> = match site {
            Site::Embedding => vec![Stage::Rows, Stage::XEmbed],
            Site::Final => vec![Stage::FinalNorm, Stage::FinalBfp],
            Site::Head => vec![Stage::Logits],
            Site::Layer(_) => vec![
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
            ],
        };
        for stage in stages {
            let w = width(&m, stage);
            assert_eq!(
                joined(&recs, site, stage, split).len(),
                n * w,
                "{site:?} {stage:?}"
            );
            seen += recs
                .iter()
                .filter(|r| r.site == site && r.stage == stage)
                .count();
        }
    }
    assert_eq!(seen, recs.len(), "a stage outside the list was reported");
    // `Stage::ALL` is the pass order (the derived order) with distinct names
    assert!(Stage::ALL.windows(2).all(|w| w[0] < w[1]));
    let names: std::collections::BTreeSet<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), Stage::ALL.len());
    let mut chunk_start = split;
    let mut last = (Site::Embedding, Stage::Rows);
    for r in &recs {
        let key = (r.site, r.stage);
        if key < last {
            // a new chunk begins with the embedding of its first token
            assert_eq!(key, (Site::Embedding, Stage::Rows), "{r:?}");
            assert!(r.start > chunk_start);
            chunk_start = r.start;
        }
        last = key;
    }
    assert_eq!(chunk_start, 16);
}

#[test]
fn parity_decode_reports_the_rerun_chunk() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(11, 256, 6);
    let (_, steps, _, logits) = probed_run(m, Head::derived(&m).unwrap(), Serial, &toks, 4);
    // steps at positions 11, 12, 13: each re-runs the chunk of 8 at 8
    let xe: Vec<&Rec> = steps.iter().filter(|r| r.stage == Stage::XEmbed).collect();
    assert_eq!(xe.len(), 3);
    assert!(xe.iter().all(|r| r.start == 8 && r.tokens == 8));
    let lg: Vec<&Rec> = steps.iter().filter(|r| r.stage == Stage::Logits).collect();
    let starts: Vec<(usize, usize)> = lg.iter().map(|r| (r.start, r.tokens)).collect();
    assert_eq!(starts, [(11, 1), (12, 1), (13, 1)]);
    let last: Vec<i64> = logits.iter().map(|&x| x as i64).collect();
    assert_eq!(lg[2].vals, last);
}

/// The probe is called by the one pass every backend runs: the reference,
/// the threaded backend with a packed head and the SIMD backend report
/// identical stages.
#[test]
fn every_backend_reports_the_same_stages() {
    let buf = tiny(64);
    let m = buf.model().unwrap();
    let toks = tokens(13, 256, 7);
    let head = Head::derived(&m).unwrap();
    let want = probed_run(m, head, Serial, &toks, 3);
    let owned = OwnedHead::derive(&m).unwrap();
    let packed = Head::Packed(owned.matrix());
    assert_eq!(
        probed_run(m, packed, Threaded::new(3), &toks, 3),
        want,
        "threaded"
    );
    assert_eq!(
        probed_run(m, head, Fast::new(&m, 2).unwrap(), &toks, 3),
        want,
        "fast"
    );
}

//! `edgedecoding export-hw`: the accelerator's DDR images of a model
//! (docs/VECTORS.md §5): decoder weights of every layer (K and V widened),
//! the lm_head derived from the 10-bit embedding, the kept embedding, the keep
//! list, side files (row exponents, biases, gammas, formats) and the
//! activation buffer of one chunk of 8 tokens.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgedecoding_kernels::embedding::embed_row;
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::lm_head::DerivedHead;
use edgedecoding_kernels::TOKENS_PER_PASS;
use edgedecoding_model::builtin::Rng;
use edgedecoding_model::Model;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::hw::{
    pack_image, runs_of, split_halves, widened_source_row, Widened, HALF_BYTES, RUN_BYTES,
    RUN_WEIGHTS, RUN_WORDS,
};
use crate::manifest::{hex, le_bytes, sha256_hex, DType, Elem, FileEntry, Manifest, Role};
use crate::suite::prepare_out_dir;

/// Options of [`export_hw`].
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Prune the vocabulary at export to these full ids (strictly increasing,
    /// below the vocabulary; the CLI computes them with the keep-list rule of
    /// `edgedecoding_runtime::keep`). `None`: the model's own vocabulary,
    /// pruned or not. Refused for an already pruned model.
    pub keep: Option<Vec<u32>>,
    /// Threads for packing and the lm_head derivation (bytes do not depend on it).
    pub threads: usize,
    /// Seed of the 8 tokens of the activation buffer.
    pub seed: u64,
}

/// One matrix of the decoder image.
#[derive(Clone, Debug)]
pub struct MatrixLayout {
    /// Layer.
    pub layer: usize,
    /// `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub name: &'static str,
    /// Rows in the image (K and V widened).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Runs of 23 words.
    pub runs: usize,
    /// First word in the stream (same index in both halves' files: word `w` is
    /// bytes `16w .. 16w + 16` of each).
    pub word_offset: usize,
    /// First row exponent in `decoder_rexp.bin`.
    pub rexp_offset: usize,
}

/// Sizes of an export, for the report.
#[derive(Clone, Debug, Default)]
pub struct ExportSummary {
    /// Lines describing the export.
    pub report: String,
    /// Decoder image bytes (both halves).
    pub decoder_bytes: u64,
    /// Weights the decoder image stores (K and V widened).
    pub decoder_image_weights: u64,
    /// Distinct weights of the model's decoder layers (K and V not widened).
    pub decoder_model_weights: u64,
    /// lm_head rows.
    pub head_rows: usize,
    /// lm_head image bytes.
    pub head_bytes: u64,
    /// Embedding bytes.
    pub embedding_bytes: u64,
}

struct Stream {
    w: BufWriter<File>,
    sha: Sha256,
    bytes: u64,
}

impl Stream {
    fn create(p: &Path) -> Result<Self> {
        crate::check_interrupt()?;
        Ok(Self {
            w: BufWriter::new(
                File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ),
            sha: Sha256::new(),
            bytes: 0,
        })
    }
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.sha.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }
    fn finish(mut self) -> Result<(u64, String)> {
        self.w.flush()?;
        Ok((self.bytes, hex(&self.sha.finalize())))
    }
}

struct Out {
    dir: PathBuf,
    files: Vec<FileEntry>,
}

impl Out {
    fn entry(
        &mut self,
        path: &str,
        case: &str,
        dtype: DType,
        bits: u32,
        shape: &[usize],
        layout: &str,
        bytes: u64,
        sha: String,
    ) {
        self.files.push(FileEntry {
            path: path.to_string(),
            operator: "hw_image".into(),
            case: case.to_string(),
            name: path.trim_end_matches(".bin").to_string(),
            role: Role::In,
            dtype,
            bits,
            shape: shape.to_vec(),
            layout: layout.to_string(),
            bytes,
            sha256: sha,
        });
    }

    fn write<T: Elem>(
        &mut self,
        path: &str,
        case: &str,
        data: &[T],
        bits: u32,
        shape: &[usize],
        layout: &str,
    ) -> Result<()> {
        crate::check_interrupt()?;
        let b = le_bytes(data);
        let p = self.dir.join(path);
        std::fs::write(&p, &b).with_context(|| format!("writing {}", p.display()))?;
        self.entry(
            path,
            case,
            T::DTYPE,
            bits,
            shape,
            layout,
            b.len() as u64,
            sha256_hex(&b),
        );
        Ok(())
    }
}

/// Names of the decoder matrices in image order within a layer.
pub const MATRIX_ORDER: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];

/// Writes the DDR images of `model` into `out` (absent or empty).
pub fn export_hw(
    model: &Model<'_>,
    source: &str,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary> {
    let c = model.config;
    let (h, f) = (c.hidden, c.ffn);
    // --- vocabulary: which embedding rows are exported, and their full ids
    let (rows_of_emb, keep_ids): (Vec<usize>, Vec<u32>) = match (&opts.keep, model.keep) {
        (Some(_), Some(_)) => bail!("the model is already pruned ({} of {} ids kept); pruning at export (--keep-vocab, --keep-list) applies to a full vocabulary", c.n_kept, c.vocab),
        (Some(ids), None) => {
            if ids.is_empty() {
                bail!("the keep list is empty");
            }
            if let Some(w) = ids.windows(2).find(|w| w[0] >= w[1]) {
                bail!("the keep list is not strictly increasing ({} then {})", w[0], w[1]);
            }
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= c.vocab) {
                bail!("the keep list has id {id}, outside the model's vocabulary (ids 0..{})", c.vocab - 1);
            }
            (ids.iter().map(|&i| i as usize).collect(), ids.clone())
        }
        (None, Some(k)) => ((0..c.n_kept).collect(), k.to_vec()),
        (None, None) => ((0..c.n_kept).collect(), (0..c.n_kept as u32).collect()),
    };
    let n_kept = keep_ids.len();
    prepare_out_dir(out)?;
    let mut o = Out {
        dir: out.to_path_buf(),
        files: Vec::new(),
    };
    let mut sum = ExportSummary::default();

    // --- decoder weights
    let mut lo = Stream::create(&out.join("decoder_weights.lo.bin"))?;
    let mut hi = Stream::create(&out.join("decoder_weights.hi.bin"))?;
    let mut layout: Vec<MatrixLayout> = Vec::new();
    let mut rexp: Vec<i8> = Vec::new();
    let mut bias: Vec<i32> = Vec::new();
    let mut gamma: Vec<i16> = Vec::new();
    let mut formats: Vec<u8> = Vec::new();
    let mut words = 0usize;
    for l in 0..c.n_layers {
        let lw = model.layer(l)?;
        let kw = Widened {
            inner: &lw.k,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
        };
        let vw = Widened { inner: &lw.v, ..kw };
        let mats: [(&'static str, &(dyn DynRows + Sync)); 7] = [
            ("q", &lw.q),
            ("k", &kw),
            ("v", &vw),
            ("o", &lw.o),
            ("gate", &lw.gate),
            ("up", &lw.up),
            ("down", &lw.down),
        ];
        for (name, m) in mats {
            let img = m.image(opts.threads);
            let (a, b) = split_halves(&img);
            lo.put(&a)?;
            hi.put(&b)?;
            let (rows, cols) = (m.nrows(), m.ncols());
            layout.push(MatrixLayout {
                layer: l,
                name,
                rows,
                cols,
                runs: runs_of(rows, cols),
                word_offset: words,
                rexp_offset: rexp.len(),
            });
            words += img.len() / 32;
            sum.decoder_image_weights += (rows * cols) as u64;
            m.row_exps(&mut rexp);
        }
        sum.decoder_model_weights += (2 * h * h + 2 * c.kv_dim() * h + 3 * h * f) as u64;
        let widen = |b: &[i32]| -> Vec<i32> {
            (0..h)
                .map(|r| b[widened_source_row(r, c.n_heads, c.n_kv_heads, c.head_dim)])
                .collect()
        };
        bias.extend_from_slice(lw.q_bias);
        bias.extend(widen(lw.k_bias));
        bias.extend(widen(lw.v_bias));
        gamma.extend_from_slice(lw.attn_norm);
        gamma.extend_from_slice(lw.ffn_norm);
        let fm = lw.fmt;
        formats.extend_from_slice(&[
            fm.q_frac as u8,
            fm.k_frac as u8,
            fm.v_frac as u8,
            fm.attn_norm_frac as u8,
            fm.ffn_norm_frac as u8,
            0,
            0,
            0,
        ]);
    }
    let (nb, sha) = lo.finish()?;
    o.entry("decoder_weights.lo.bin", "decoder", DType::U8, 8, &[words, HALF_BYTES], "DDR image, port 0: bytes 0..16 (bits 0..127) of every 256-bit word; runs of 23 words, see layout.json", nb, sha);
    let (nb2, sha) = hi.finish()?;
    o.entry(
        "decoder_weights.hi.bin",
        "decoder",
        DType::U8,
        8,
        &[words, HALF_BYTES],
        "DDR image, port 1: bytes 16..32 (bits 128..255) of every 256-bit word",
        nb2,
        sha,
    );
    sum.decoder_bytes = nb + nb2;
    let rl = rexp.len();
    o.write(
        "decoder_rexp.bin",
        "decoder",
        &rexp,
        8,
        &[rl],
        "row exponent e_row per image row, [layer][q,k,v,o,gate,up,down][row] (K/V widened)",
    )?;
    o.write(
        "decoder_bias.bin",
        "decoder",
        &bias,
        32,
        &[c.n_layers, 3, h],
        "[layer][q,k,v][row] int32 in Q(q_frac|k_frac|v_frac) (K/V widened)",
    )?;
    o.write(
        "decoder_gamma.bin",
        "decoder",
        &gamma,
        16,
        &[c.n_layers, 2, h],
        "[layer][attn_norm,ffn_norm][channel] int16 in Q(gamma_frac)",
    )?;
    o.write(
        "decoder_formats.bin",
        "decoder",
        &formats,
        8,
        &[c.n_layers, 8],
        "[layer][q_frac,k_frac,v_frac,attn_norm_frac,ffn_norm_frac,0,0,0]",
    )?;
    o.write(
        "final_norm.bin",
        "final_norm",
        model.final_norm,
        16,
        &[h],
        "[channel] int16 in Q(final_norm_frac)",
    )?;

    // --- lm_head derived from the kept 10-bit embedding rows
    let keep_rows: Vec<u32> = rows_of_emb.iter().map(|&r| r as u32).collect();
    let head = DerivedHead::new(model.emb, h, model.globals.emb_exp, Some(&keep_rows))?;
    let img = pack_image(&head, opts.threads);
    let (a, b) = split_halves(&img);
    let hw = img.len() / 32;
    o.write(
        "lm_head.lo.bin",
        "lm_head",
        &a,
        8,
        &[hw, HALF_BYTES],
        "DDR image of the derived lm_head, port 0 (bytes 0..16 of every word)",
    )?;
    o.write(
        "lm_head.hi.bin",
        "lm_head",
        &b,
        8,
        &[hw, HALF_BYTES],
        "DDR image of the derived lm_head, port 1 (bytes 16..32 of every word)",
    )?;
    let head_rexp: Vec<i8> = (0..n_kept).map(|r| head.row(r).0).collect();
    o.write(
        "lm_head_rexp.bin",
        "lm_head",
        &head_rexp,
        8,
        &[n_kept],
        "row exponent e_row per head row (pruned id)",
    )?;
    sum.head_rows = n_kept;
    sum.head_bytes = img.len() as u64;

    // --- embedding, keep list, activation buffer
    let mut emb: Vec<i16> = Vec::with_capacity(n_kept * h);
    for &r in &rows_of_emb {
        emb.extend_from_slice(&model.emb[r * h..(r + 1) * h]);
    }
    o.write(
        "embedding.bin",
        "embedding",
        &emb,
        10,
        &[n_kept, h],
        "[pruned id][channel] 10-bit codes in int16, real = code * 2^emb_exp",
    )?;
    sum.embedding_bytes = emb.len() as u64 * 2;
    o.write(
        "keep.bin",
        "keep",
        &keep_ids,
        32,
        &[n_kept],
        "[pruned id] -> full token id, strictly increasing",
    )?;
    let mut rng = Rng::new(opts.seed ^ 0xac7);
    let pruned: Vec<u32> = (0..TOKENS_PER_PASS)
        .map(|_| rng.below(n_kept as u64) as u32)
        .collect();
    let mut act = vec![0i32; TOKENS_PER_PASS * h];
    for (t, &p) in pruned.iter().enumerate() {
        embed_row(
            &emb[p as usize * h..(p as usize + 1) * h],
            model.globals.emb_exp,
            &mut act[t * h..(t + 1) * h],
        )?;
    }
    o.write("activations.bin", "activations", &act, 32, &[TOKENS_PER_PASS, h], "[token][channel] int32 Q12: residual input of layer 0 (embedding lookup) for activations_tokens")?;
    let full: Vec<u32> = pruned.iter().map(|&p| keep_ids[p as usize]).collect();
    o.write(
        "activations_tokens.bin",
        "activations",
        &full,
        32,
        &[TOKENS_PER_PASS],
        "full token ids of the 8 chunk slots",
    )?;
    o.write(
        "activations_pruned.bin",
        "activations",
        &pruned,
        32,
        &[TOKENS_PER_PASS],
        "pruned ids (embedding rows) of the 8 chunk slots",
    )?;

    // --- layout description
    let mut info = Map::new();
    info.insert("generator".into(), json!(crate::GENERATOR));
    info.insert("model".into(), json!(source));
    info.insert("config".into(), crate::config_json(&c));
    info.insert("globals".into(), json!({"emb_exp": model.globals.emb_exp, "final_norm_frac": model.globals.final_norm_frac, "eps_q40": model.globals.eps_q40}));
    info.insert("n_kept".into(), json!(n_kept));
    info.insert("pruned_at_export".into(), json!(opts.keep.is_some()));
    info.insert("run_words".into(), json!(RUN_WORDS));
    info.insert(
        "kv_widening".into(),
        json!(format!(
            "widened row r = source row (r / {hd} / {g}) * {hd} + r % {hd}",
            hd = c.head_dim,
            g = c.n_heads / c.n_kv_heads
        )),
    );
    let mats: Vec<Value> = layout
        .iter()
        .map(|m| json!({"layer": m.layer, "name": m.name, "rows": m.rows, "cols": m.cols, "runs": m.runs, "word_offset": m.word_offset, "rexp_offset": m.rexp_offset}))
        .collect();
    let mut lj = info.clone();
    lj.insert("decoder_matrices".into(), Value::Array(mats));
    lj.insert("decoder_words".into(), json!(words));
    lj.insert(
        "lm_head".into(),
        json!({"rows": n_kept, "cols": h, "runs": runs_of(n_kept, h), "words": hw}),
    );
    let lt = serde_json::to_string_pretty(&Value::Object(lj))?;
    crate::check_interrupt()?;
    std::fs::write(out.join("layout.json"), &lt)?;
    std::fs::write(
        out.join("hw_layout.h"),
        layout_header(model, &layout, words, n_kept),
    )?;
    let m = Manifest {
        info,
        cases: Vec::new(),
        files: o.files,
    };
    std::fs::write(out.join(crate::manifest::MANIFEST), m.to_json_string())?;

    // --- report
    let r = &mut sum.report;
    let mib = |b: u64| b as f64 / 1048576.0;
    writeln!(r, "export of {source}")?;
    writeln!(
        r,
        "config: {} layers, hidden {h}, ffn {f}, heads {}/{} x {}, vocab {} ({} rows exported{})",
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.vocab,
        n_kept,
        if opts.keep.is_some() {
            ", pruned at export"
        } else {
            ""
        }
    )?;
    let bpw = |bytes: u64, weights: u64| bytes as f64 * 8.0 / weights as f64;
    writeln!(
        r,
        "decoder image: {words} words, {} bytes ({:.1} MiB; {nb} + {nb2} bytes per port)",
        sum.decoder_bytes,
        mib(sum.decoder_bytes)
    )?;
    writeln!(
        r,
        "  {} weights stored (K/V widened) -> {:.4} bits/weight; {} model weights -> {:.4} bits each",
        sum.decoder_image_weights,
        bpw(sum.decoder_bytes, sum.decoder_image_weights),
        sum.decoder_model_weights,
        bpw(sum.decoder_bytes, sum.decoder_model_weights)
    )?;
    writeln!(
        r,
        "side files: row exponents {} bytes (+{:.4} bits/weight), biases {} bytes, gammas {} bytes",
        rl,
        rl as f64 * 8.0 / sum.decoder_image_weights as f64,
        bias.len() * 4,
        gamma.len() * 2
    )?;
    writeln!(
        r,
        "lm_head: {n_kept} rows x {h}, {} runs, {} bytes ({:.1} MiB) -> {:.4} bits/weight",
        runs_of(n_kept, h),
        sum.head_bytes,
        mib(sum.head_bytes),
        bpw(sum.head_bytes, (n_kept * h) as u64)
    )?;
    writeln!(
        r,
        "embedding: {} x {h} int16 = {} bytes ({:.1} MiB); keep list {} bytes",
        n_kept,
        sum.embedding_bytes,
        mib(sum.embedding_bytes),
        n_kept * 4
    )?;
    writeln!(
        r,
        "one run = {RUN_WORDS} words = {RUN_BYTES} bytes = {RUN_WEIGHTS} weights"
    )?;
    Ok(sum)
}

/// What the exporter needs of a matrix, object-safe (the head and the stored
/// matrices have different row contexts).
trait DynRows {
    fn nrows(&self) -> usize;
    fn ncols(&self) -> usize;
    fn image(&self, threads: usize) -> Vec<u8>;
    fn row_exps(&self, out: &mut Vec<i8>);
}

impl<W: ApotWeights + Sync> DynRows for W {
    fn nrows(&self) -> usize {
        self.rows()
    }
    fn ncols(&self) -> usize {
        self.cols()
    }
    fn image(&self, threads: usize) -> Vec<u8> {
        pack_image(self, threads)
    }
    fn row_exps(&self, out: &mut Vec<i8>) {
        out.extend((0..self.rows()).map(|r| self.row(r).0));
    }
}

fn layout_header(
    model: &Model<'_>,
    layout: &[MatrixLayout],
    words: usize,
    n_kept: usize,
) -> String {
    let c = model.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by `edgedecoding export-hw` (docs/VECTORS.md §5); do not edit. */"
    );
    let _ = writeln!(
        s,
        "#ifndef EDHW_LAYOUT_H\n#define EDHW_LAYOUT_H\n#include <stdint.h>\n"
    );
    for (k, v) in [
        ("N_LAYERS", c.n_layers),
        ("HIDDEN", c.hidden),
        ("FFN", c.ffn),
        ("N_HEADS", c.n_heads),
        ("N_KV_HEADS", c.n_kv_heads),
        ("HEAD_DIM", c.head_dim),
        ("VOCAB", c.vocab),
        ("N_KEPT", n_kept),
        ("RUN_WORDS", RUN_WORDS),
        ("RUN_BYTES", RUN_BYTES),
        ("DECODER_WORDS", words),
        ("LM_HEAD_RUNS", runs_of(n_kept, c.hidden)),
    ] {
        let _ = writeln!(s, "#define EDHW_{k} {v}u");
    }
    let _ = writeln!(s, "#define EDHW_EMB_EXP ({})", model.globals.emb_exp);
    let _ = writeln!(
        s,
        "#define EDHW_FINAL_NORM_FRAC {}u",
        model.globals.final_norm_frac
    );
    let _ = writeln!(
        s,
        "#define EDHW_EPS_Q40 UINT64_C({})\n",
        model.globals.eps_q40
    );
    let _ = writeln!(
        s,
        "/* matrix order within a layer: q k v o gate up down (k, v widened to HIDDEN rows) */"
    );
    let _ = writeln!(s, "typedef struct {{ uint32_t layer, matrix, rows, cols, runs, word_offset, rexp_offset; }} edhw_matrix_t;");
    let _ = writeln!(
        s,
        "static const edhw_matrix_t EDHW_DECODER_MATRICES[{}] = {{",
        layout.len()
    );
    for m in layout {
        let idx = MATRIX_ORDER.iter().position(|&n| n == m.name).unwrap_or(0);
        let _ = writeln!(
            s,
            "    {{{}u, {}u, {}u, {}u, {}u, {}u, {}u}}, /* layer {} {} */",
            m.layer, idx, m.rows, m.cols, m.runs, m.word_offset, m.rexp_offset, m.layer, m.name
        );
    }
    let _ = writeln!(s, "}};\n\n#endif");
    s
}

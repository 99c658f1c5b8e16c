//! Offline conversion of a float model to the integer `.edq` format (feature
//! `std`). Float math is used here, deterministically (exact powers of two,
//! `libm` rounding, per-row work split over threads without changing results).

use std::vec;
use std::vec::Vec;

use edgedecoding_kernels::format::{pack_group, packed_codes_len, packed_exps_len, ApotGroup};
use edgedecoding_kernels::quant::quantize_row_f32;
use edgedecoding_kernels::GROUP;

use crate::config::Config;
use crate::edq::write::{with_extras, write_edq};
use crate::edq::{n_tensors, DType, EdqFile, Extras, Globals, FORMATS_LEN};
use crate::error::{ModelError, TensorName};
use crate::float_ref::{FloatModel, Stats};

/// Headroom factor kept above the calibrated maximum of Q and K (RoPE can grow
/// a component by sqrt(2); unseen text can be larger).
pub const QK_HEADROOM: f32 = 2.0;
/// Headroom factor above the calibrated maximum of V.
pub const V_HEADROOM: f32 = 2.0;

/// How the converter picks a matrix's codes and exponents (the format is the
/// same either way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantizer {
    /// Each group rounded to its nearest grid point (SPEC §2.4); the built-in
    /// models and the golden vectors use it.
    Rtn,
    /// Error-compensating ([`crate::gptq`]; the default: closer to the float
    /// model than [`Quantizer::Rtn`] on every text measured, SPEC §2.4.1):
    /// Hessians of the q/k/v and gate/up inputs from the round-to-nearest
    /// integer model on [`ConvertOptions::gptq_tokens`], then GPTQ per matrix.
    #[default]
    Gptq,
}

/// Options of [`quantize_model`].
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Tokens the float reference runs on to calibrate the Q/K/V formats.
    pub calib_tokens: Vec<u32>,
    /// Threads for quantization and calibration (results do not depend on it).
    pub threads: usize,
    /// Tokenizer blob stored as the file's optional `tokenizer` entry.
    pub tokenizer: Option<Vec<u8>>,
    /// The quantizer of the weight matrices.
    pub quantizer: Quantizer,
    /// Tokens the integer model runs on to collect the GPTQ Hessians (run in
    /// windows of at most the model's context; empty: `calib_tokens`).
    pub gptq_tokens: Vec<u32>,
}

/// A progress callback: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// The RoPE ROM of a config as the `rope_rom` entry stores it (FORMAT.md §3):
/// the recipe `build_rope_table` (SPEC §6.1) for positions `0..ctx`, the cos
/// rows then the sin rows, `2 · ctx · head_dim/2` values.
pub fn rope_rom(c: &Config) -> Result<Vec<i16>, ModelError> {
    let n = c.ctx * (c.head_dim / 2);
    let mut rom = vec![0i16; 2 * n];
    let (cos, sin) = rom.split_at_mut(n);
    edgedecoding_kernels::rope::build_rope_table(c.rope_theta, c.head_dim, c.ctx, cos, sin)?;
    Ok(rom)
}

/// The model file `bytes` with its RoPE ROM: unchanged if it has one, else
/// rewritten with the recipe's table added (tokenizer and SIMD section kept).
/// Upgrades files written before the ROM was stored.
pub fn with_rope_rom(bytes: &[u8]) -> Result<Vec<u8>, ModelError> {
    let f = EdqFile::parse(bytes)?;
    if f.rope_rom().is_some() {
        return Ok(bytes.to_vec());
    }
    let rom = rope_rom(&f.config)?;
    with_extras(
        bytes,
        &Extras {
            rope_rom: Some(bytemuck::cast_slice(&rom)),
            ..f.extras()
        },
    )
}

/// Largest fraction `f <= 15` with `max * 2^f * headroom <= 32767`.
pub fn frac_for(max: f32, headroom: f32) -> u32 {
    let mut f = 15u32;
    while f > 0 && (max as f64) * libm::ldexp(1.0, f as i32) * headroom as f64 > 32767.0 {
        f -= 1;
    }
    f
}

/// Codes, exponents and row exponents of a range of rows.
type PackedParts = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Quantized APoT matrix: packed codes, packed exponents, row exponents.
pub struct PackedMatrix {
    /// Codes stream.
    pub codes: Vec<u8>,
    /// Exponents stream.
    pub exps: Vec<u8>,
    /// Row exponents.
    pub rexp: Vec<u8>,
}

/// Quantizes a `rows x cols` row-major float matrix (SPEC §2.4), rows split
/// over `threads`; the result does not depend on `threads`.
pub fn quantize_matrix(
    w: &[f32],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Result<PackedMatrix, ModelError> {
    let g = cols / GROUP;
    let parts = threads.clamp(1, rows.max(1));
    // split on multiples of 4 rows so every part's exponent stream is whole bytes
    let chunk = rows.div_ceil(parts).div_ceil(4) * 4;
    let results: Vec<Result<PackedParts, ModelError>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..rows)
            .step_by(chunk.max(1))
            .map(|r0| {
                let r1 = (r0 + chunk).min(rows);
                s.spawn(move || -> Result<_, ModelError> {
                    let n = r1 - r0;
                    let mut codes = vec![0u8; packed_codes_len(n, cols)];
                    let mut exps = vec![0u8; packed_exps_len(n, cols)];
                    let mut rexp = vec![0u8; n];
                    let mut groups = vec![ApotGroup::default(); g];
                    for r in r0..r1 {
                        rexp[r - r0] =
                            quantize_row_f32(&w[r * cols..(r + 1) * cols], &mut groups) as u8;
                        for (j, grp) in groups.iter().enumerate() {
                            pack_group(&mut codes, &mut exps, (r - r0) * g + j, grp)?;
                        }
                    }
                    Ok((codes, exps, rexp))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or(Err(ModelError::Empty)))
            .collect()
    });
    let mut out = PackedMatrix {
        codes: Vec::new(),
        exps: Vec::new(),
        rexp: Vec::new(),
    };
    for r in results {
        let (c, e, x) = r?;
        out.codes.extend_from_slice(&c);
        out.exps.extend_from_slice(&e);
        out.rexp.extend_from_slice(&x);
    }
    Ok(out)
}

fn to_i16_frac(v: &[f32], frac: u32) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| {
            (libm::round(libm::ldexp(x as f64, frac as i32)).clamp(-32768.0, 32767.0) as i16)
                .to_le_bytes()
        })
        .collect()
}

fn to_i32_frac(v: &[f32], frac: u32) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| {
            (libm::round(libm::ldexp(x as f64, frac as i32)).clamp(i32::MIN as f64, i32::MAX as f64)
                as i32)
                .to_le_bytes()
        })
        .collect()
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// Smallest `e` with `511 * 2^e >= max|emb|` (no embedding value clips).
pub fn emb_exp_for(max: f32) -> i32 {
    let mut e = -30;
    while e < 8 && 511.0 * libm::ldexp(1.0, e) < max as f64 {
        e += 1;
    }
    e
}

/// The embedding exponent the error-compensating converter picks (SPEC
/// §2.4.1): of `e0 - 3 ..= e0` (`e0` = [`emb_exp_for`], no value clips; never
/// below `EMB_EXP_RANGE`'s minimum) the one whose 10-bit codes — rounded half
/// away, clamped to `[-512, 511]` — have the smallest sum of squared errors,
/// summed in order in `f64`; on a tie the larger exponent. A finer step for
/// nearly every value can be worth clipping a few outliers: on
/// Qwen2.5-0.5B's embedding `e0 - 1` halves the RMS error (0.80 → 0.42 % of
/// the RMS value) and clips 187 of 136 M values.
pub fn emb_exp_min_error(emb: &[f32]) -> i32 {
    let e0 = emb_exp_for(max_abs(emb));
    let sq_err = |e: i32| -> f64 {
        emb.iter()
            .map(|&x| {
                let x = f64::from(x);
                let c = libm::round(libm::ldexp(x, -e)).clamp(-512.0, 511.0);
                let d = libm::ldexp(c, e) - x;
                d * d
            })
            .sum()
    };
    let lo = (e0 - 3).max(edgedecoding_kernels::embedding::EMB_EXP_RANGE.0);
    let mut best = (e0, sq_err(e0));
    for e in (lo..e0).rev() {
        let err = sq_err(e);
        if err < best.1 {
            best = (e, err);
        }
    }
    best.0
}

/// An entry of a file being written: dtype, rows, cols, bytes.
type Entry = (DType, u64, u64, Vec<u8>);

/// A matrix GPTQ quantizes again: layer `l`'s `rows × cols` weights `w`,
/// whose codes are the entry `at` (exponents and row exponents follow) and
/// whose input is `gptq::INPUTS[input]`.
struct Redo<'w> {
    at: usize,
    input: usize,
    l: usize,
    w: &'w [f32],
    rows: usize,
    cols: usize,
}

/// The entries of the file being built, in directory order, and the
/// matrices GPTQ quantizes again.
struct Entries<'w> {
    owned: Vec<Entry>,
    redo: Vec<Redo<'w>>,
    threads: usize,
}

impl<'w> Entries<'w> {
    /// Pushes the round-to-nearest codes, exponents and row exponents of
    /// layer `l`'s matrix `name` (`w`, `rows × cols`); `input`: its input in
    /// `gptq::INPUTS` (o and down have none: they keep round-to-nearest).
    fn mat(
        &mut self,
        l: usize,
        name: &'static str,
        w: &'w [f32],
        (rows, cols): (usize, usize),
        input: Option<usize>,
    ) -> Result<(), ModelError> {
        if w.iter().any(|x| !x.is_finite()) {
            return Err(ModelError::BadValue {
                name: TensorName::layer(l, name),
                reason: "non-finite weight",
            });
        }
        let p = quantize_matrix(w, rows, cols, self.threads)?;
        if let Some(input) = input {
            let at = self.owned.len();
            self.redo.push(Redo {
                at,
                input,
                l,
                w,
                rows,
                cols,
            });
        }
        let (r, c) = (rows as u64, cols as u64);
        self.owned.push((DType::ApotCodes, r, c, p.codes));
        self.owned.push((DType::ApotExps, r, c, p.exps));
        self.owned.push((DType::I8, 1, r, p.rexp));
        Ok(())
    }
}

/// Converts a float model to `.edq` bytes: calibrates the Q/K/V formats with
/// the float reference on `opts.calib_tokens`, quantizes every matrix with the
/// exhaustive APoT search, the embedding to 10 bits, norms and biases to their
/// fixed-point formats, and stores the RoPE ROM ([`rope_rom`]) and the
/// tokenizer. With [`Quantizer::Gptq`] that round-to-nearest model (with the
/// least-squares embedding exponent) is then run on
/// [`ConvertOptions::gptq_tokens`] and the matrices that read [`crate::gptq::INPUTS`]
/// are quantized again by GPTQ; the rest of the file is the same. Same input,
/// same bytes.
pub fn quantize_model(
    fm: &FloatModel,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<Vec<u8>, ModelError> {
    let c = fm.config;
    c.validate()?;
    for (name, v) in [("token_embd", &fm.emb), ("output_norm", &fm.final_norm)] {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ModelError::BadValue {
                name: TensorName::new(name),
                reason: "non-finite value",
            });
        }
    }
    progress("calibrate", 0, 1);
    let mut stats = Stats::default();
    if opts.calib_tokens.is_empty() {
        return Err(ModelError::Empty);
    }
    fm.forward(
        &opts.calib_tokens,
        opts.threads,
        Some(&mut stats),
        0..0,
        &mut |_, _| {},
    )?;
    progress("calibrate", 1, 1);
    let h = c.hidden;
    let emb_exp = match opts.quantizer {
        Quantizer::Rtn => emb_exp_for(max_abs(&fm.emb)),
        Quantizer::Gptq => emb_exp_min_error(&fm.emb),
    };
    let emb_codes: Vec<u8> = fm
        .emb
        .iter()
        .flat_map(|&x| {
            (libm::round(libm::ldexp(x as f64, -emb_exp)).clamp(-512.0, 511.0) as i16).to_le_bytes()
        })
        .collect();
    let final_norm_frac = frac_for(max_abs(&fm.final_norm), 1.0);
    let globals = Globals {
        emb_exp,
        final_norm_frac,
        eps_q40: libm::round(fm.eps as f64 * libm::ldexp(1.0, 40))
            .clamp((1u64 << 20) as f64, (1u64 << 40) as f64) as u64,
    };
    let mut e = Entries {
        owned: Vec::new(),
        redo: Vec::new(),
        threads: opts.threads,
    };
    e.owned
        .push((DType::I16, c.n_kept as u64, h as u64, emb_codes));
    e.owned.push((
        DType::I16,
        1,
        h as u64,
        to_i16_frac(&fm.final_norm, final_norm_frac),
    ));
    if c.pruned() {
        let keep = fm.keep.as_ref().ok_or(ModelError::BadValue {
            name: TensorName::new("vocab_keep"),
            reason: "pruned config without a keep list",
        })?;
        e.owned.push((
            DType::U32,
            1,
            c.n_kept as u64,
            keep.iter().flat_map(|k| k.to_le_bytes()).collect(),
        ));
    }
    let kv = c.kv_dim();
    for (l, lw) in fm.layers.iter().enumerate() {
        progress("quantize", l, c.n_layers);
        let q_frac = frac_for(stats.max_q[l], QK_HEADROOM);
        let k_frac = frac_for(stats.max_k[l], QK_HEADROOM);
        let v_frac = frac_for(stats.max_v[l], V_HEADROOM);
        let an = frac_for(max_abs(&lw.attn_norm), 1.0);
        let fnf = frac_for(max_abs(&lw.ffn_norm), 1.0);
        let mut formats = [0u8; FORMATS_LEN];
        formats[..5].copy_from_slice(&[
            q_frac as u8,
            k_frac as u8,
            v_frac as u8,
            an as u8,
            fnf as u8,
        ]);
        e.owned
            .push((DType::I16, 1, h as u64, to_i16_frac(&lw.attn_norm, an)));
        e.owned
            .push((DType::U8, 1, FORMATS_LEN as u64, formats.to_vec()));
        e.mat(l, "attn_q", &lw.q_w, (h, h), Some(0))?;
        e.owned
            .push((DType::I32, 1, h as u64, to_i32_frac(&lw.q_b, q_frac)));
        e.mat(l, "attn_k", &lw.k_w, (kv, h), Some(0))?;
        e.owned
            .push((DType::I32, 1, kv as u64, to_i32_frac(&lw.k_b, k_frac)));
        e.mat(l, "attn_v", &lw.v_w, (kv, h), Some(0))?;
        e.owned
            .push((DType::I32, 1, kv as u64, to_i32_frac(&lw.v_b, v_frac)));
        e.mat(l, "attn_output", &lw.o_w, (h, h), None)?;
        e.owned
            .push((DType::I16, 1, h as u64, to_i16_frac(&lw.ffn_norm, fnf)));
        e.mat(l, "ffn_gate", &lw.gate, (c.ffn, h), Some(1))?;
        e.mat(l, "ffn_up", &lw.up, (c.ffn, h), Some(1))?;
        e.mat(l, "ffn_down", &lw.down, (h, c.ffn), None)?;
    }
    progress("quantize", c.n_layers, c.n_layers);
    let rom = rope_rom(&c)?;
    let write = |tensors: &[(DType, u64, u64, &[u8])], tokenizer: Option<&[u8]>| {
        let extras = Extras {
            tokenizer,
            rope_rom: Some(bytemuck::cast_slice(&rom)),
            simd: None,
        };
        write_edq(&c, &globals, tensors, &extras)
    };
    fn refs(owned: &[Entry]) -> Vec<(DType, u64, u64, &[u8])> {
        owned
            .iter()
            .map(|(d, r, cl, v)| (*d, *r, *cl, v.as_slice()))
            .collect()
    }
    if opts.quantizer == Quantizer::Rtn {
        return write(&refs(&e.owned), opts.tokenizer.as_deref());
    }
    // GPTQ: the round-to-nearest integer model computes the inputs; its file
    // is then the source of every entry GPTQ does not replace
    let rtn = write(&refs(&e.owned), None)?;
    let Entries { owned, redo, .. } = e;
    drop(owned);
    let toks = if opts.gptq_tokens.is_empty() {
        &opts.calib_tokens
    } else {
        &opts.gptq_tokens
    };
    let inputs = crate::gptq::collect_inputs(&rtn, toks, opts.threads, progress)?;
    let mut packed = Vec::with_capacity(redo.len());
    let mut next = redo.iter().peekable();
    for l in 0..c.n_layers {
        progress("gptq", l, c.n_layers);
        // the upper Cholesky factors of the inverse Hessians of the inputs
        let u = inputs.layer_factors(l, opts.threads)?;
        while let Some(r) = next.next_if(|r| r.l == l) {
            let p =
                crate::gptq::quantize_matrix_gptq(r.w, r.rows, r.cols, &u[r.input], opts.threads)?;
            packed.push((r.at, p));
        }
    }
    drop(inputs);
    progress("gptq", c.n_layers, c.n_layers);
    let f = EdqFile::parse(&rtn)?;
    let mut tensors = (0..n_tensors(&c))
        .map(|i| f.entry(i).map(|e| (e.dtype, e.rows, e.cols, e.data)))
        .collect::<Result<Vec<_>, _>>()?;
    for (at, p) in &packed {
        tensors[*at].3 = &p.codes;
        tensors[*at + 1].3 = &p.exps;
        tensors[*at + 2].3 = &p.rexp;
    }
    write(&tensors, opts.tokenizer.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values whose errors are known exactly: `n` copies of `101 · 2^-13`
    /// (a tie at step `2^-12`: error `2^-13` each, exact at `2^-13`) and one
    /// `outlier · 2^-13`.
    fn emb(n: usize, outlier: f32) -> Vec<f32> {
        let mut v = vec![101.0 * 2f32.powi(-13); n];
        v.push(outlier * 2f32.powi(-13));
        v
    }

    #[test]
    fn embedding_exponent_trades_clipping_for_resolution() {
        // 520 · 2^-13 does not fit 511 · 2^-13: the no-clip exponent is -12
        assert_eq!(emb_exp_for(520.0 * 2f32.powi(-13)), -12);
        // at -12: 1000 · (2^-13)² = 250 · 2^-24; at -13: only the outlier
        // clips, (520 - 511)² · 2^-26 ≈ 20 · 2^-24; at -14 the outlier is
        // 1040 and clips by 529 steps of 2^-14: -13 is the least error
        assert_eq!(emb_exp_min_error(&emb(1000, 520.0)), -13);
        // a larger outlier, 600 · 2^-13: clipping it costs 89² · 2^-26
        // ≈ 1980 · 2^-24 > 250 · 2^-24, so the no-clip exponent stays
        assert_eq!(emb_exp_min_error(&emb(1000, 600.0)), -12);
        // with 10 copies the tie error (2.5 · 2^-24) is below the clip's 20
        assert_eq!(emb_exp_min_error(&emb(10, 520.0)), -12);
        // 511.25 · 2^-13 rounds to 511 at -13 (error 0.25 · 2^-13) but to
        // 256 at -12 (error 0.75 · 2^-13): no clip, and still finer wins
        assert_eq!(emb_exp_min_error(&[511.25 * 2f32.powi(-13)]), -13);
        // all errors zero (a tie): the larger exponent, here the lowest allowed
        assert_eq!(emb_exp_min_error(&[0.0; 4]), -30);
    }
}

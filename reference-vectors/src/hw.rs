//! The accelerator's DDR weight image (docs/VECTORS.md §5, which records the
//! accelerator design facts it follows): streams of 256-bit words in runs of 23, each run
//! holding sixteen 8x8 packs of 5-bit codes (20 words) and their 256 3-bit
//! exponents (3 words), every word split into a low and a high 16-byte half for
//! the two AXI ports.
//!
//! Bit positions inside one run (a 5888-bit little-endian field: run bit `b` is
//! bit `b % 8` of byte `b / 8`, and word `w` is bytes `32w .. 32w + 32`):
//!
//! ```text
//! code  of pack k (0..16), row i (0..8), lane j (0..8):  bits [320k + 40i + 5j, +5)
//! s1    of pack k, row i:                                 bits [5120 + 3(16k + 2i), +3)
//! s2    of pack k, row i:                                 bits [5120 + 3(16k + 2i + 1), +3)
//! ```
//!
//! Pack `P` of a matrix covers output rows `8 (P / cb) .. + 8` and input channels
//! `8 (P % cb) .. + 8` with `cb = cols / 8` ([row block][channel block] order);
//! run `n` holds packs `16n .. 16n + 16`.

use edgedecoding_kernels::format::{ApotGroup, ApotWeights};
use edgedecoding_kernels::GROUP;

/// Bits of one DDR word.
pub const WORD_BITS: usize = 256;
/// Bytes of one DDR word.
pub const WORD_BYTES: usize = WORD_BITS / 8;
/// Bytes of each AXI half of a word: bytes `0..16` (bits 0..127) go to the
/// first port region ("lo"), bytes `16..32` (bits 128..255) to the second ("hi").
pub const HALF_BYTES: usize = WORD_BYTES / 2;
/// Output rows of one pack.
pub const PACK_ROWS: usize = 8;
/// Input channels of one pack (one weight group).
pub const PACK_COLS: usize = GROUP;
/// Packs per run.
pub const PACKS_PER_RUN: usize = 16;
/// Bits of one code.
pub const CODE_BITS: usize = 5;
/// Bits of one exponent.
pub const EXP_BITS: usize = 3;
/// Bits of one pack's codes: 8 x 8 x 5 = 320. Decision: codes are row-major
/// inside the pack (row `i`, then lane `j`), i.e. each row's group is the same
/// 40-bit little-endian word as in SPEC §2.1.
pub const PACK_CODE_BITS: usize = PACK_ROWS * PACK_COLS * CODE_BITS;
/// Words of codes per run: 16 x 320 / 256 = 20.
pub const CODE_WORDS: usize = PACKS_PER_RUN * PACK_CODE_BITS / WORD_BITS;
/// Exponents per run: 16 packs x 8 rows x (s1, s2) = 256. Decision: ordered by
/// pack, then row, then s1 before s2 (exponent index `16k + 2i + s`).
pub const EXPS_PER_RUN: usize = PACKS_PER_RUN * PACK_ROWS * 2;
/// Words of exponents per run: 256 x 3 / 256 = 3.
pub const EXP_WORDS: usize = EXPS_PER_RUN * EXP_BITS / WORD_BITS;
/// Words per run: 23.
pub const RUN_WORDS: usize = CODE_WORDS + EXP_WORDS;
/// Bytes per run: 736.
pub const RUN_BYTES: usize = RUN_WORDS * WORD_BYTES;
/// Weights per run: 16 x 64 = 1024 (5.75 bits per weight).
pub const RUN_WEIGHTS: usize = PACKS_PER_RUN * PACK_ROWS * PACK_COLS;
/// First bit of the exponent area in a run.
pub const EXP_BASE_BIT: usize = CODE_WORDS * WORD_BITS;

const _: () = assert!(CODE_WORDS * WORD_BITS == PACKS_PER_RUN * PACK_CODE_BITS);
const _: () = assert!(EXP_WORDS * WORD_BITS == EXPS_PER_RUN * EXP_BITS);
const _: () = assert!(RUN_WORDS == 23);

/// Decision: when the matrix's pack count is not a multiple of 16, the last run
/// is completed with all-zero packs (codes 0, s1 = s2 = 0; they stand for
/// weight 0); when `rows` is not a multiple of 8, the last row block is
/// completed with all-zero rows. Every matrix image starts on a run boundary.
pub const PAD_VALUE: u8 = 0;

/// Bit position of the code of (pack `k` in the run, row `i`, lane `j`).
pub const fn code_bit(k: usize, i: usize, j: usize) -> usize {
    k * PACK_CODE_BITS + i * PACK_COLS * CODE_BITS + j * CODE_BITS
}

/// Bit position of exponent `s` (0 = s1, 1 = s2) of (pack `k`, row `i`).
pub const fn exp_bit(k: usize, i: usize, s: usize) -> usize {
    EXP_BASE_BIT + EXP_BITS * (k * PACK_ROWS * 2 + 2 * i + s)
}

/// Packs (row blocks x channel blocks) of a `rows x cols` matrix.
pub const fn packs_of(rows: usize, cols: usize) -> usize {
    rows.div_ceil(PACK_ROWS) * (cols / PACK_COLS)
}

/// Runs of a `rows x cols` matrix image.
pub const fn runs_of(rows: usize, cols: usize) -> usize {
    packs_of(rows, cols).div_ceil(PACKS_PER_RUN)
}

/// Bytes of a `rows x cols` matrix image (both halves together).
pub const fn image_bytes(rows: usize, cols: usize) -> usize {
    runs_of(rows, cols) * RUN_BYTES
}

fn put_bits(buf: &mut [u64], pos: usize, v: u64, width: usize) {
    let (w, b) = (pos / 64, pos % 64);
    buf[w] |= v << b;
    if b + width > 64 {
        buf[w + 1] |= v >> (64 - b);
    }
}

/// Packs runs `runs` of the image of `w` into `out` (`runs.len() * RUN_BYTES`
/// bytes, whole 32-byte words in order).
pub fn pack_runs<W: ApotWeights + ?Sized>(w: &W, runs: core::ops::Range<usize>, out: &mut [u8]) {
    let (rows, cols) = (w.rows(), w.cols());
    let cb = cols / PACK_COLS;
    let total = packs_of(rows, cols);
    assert_eq!(out.len(), runs.len() * RUN_BYTES, "image buffer length");
    let mut cached_rb = usize::MAX;
    let mut ctx: [Option<W::Row>; PACK_ROWS] = [None; PACK_ROWS];
    for (n, run) in runs.enumerate() {
        let mut bits = [0u64; RUN_BYTES / 8];
        for k in 0..PACKS_PER_RUN {
            let p = run * PACKS_PER_RUN + k;
            if p >= total {
                break; // zero padding packs
            }
            let (rb, g) = (p / cb, p % cb);
            if rb != cached_rb {
                cached_rb = rb;
                for (i, c) in ctx.iter_mut().enumerate() {
                    let r = rb * PACK_ROWS + i;
                    *c = (r < rows).then(|| w.row(r).1);
                }
            }
            for (i, c) in ctx.iter().enumerate() {
                let Some(c) = *c else { continue }; // zero padding rows
                let grp: ApotGroup = w.group(rb * PACK_ROWS + i, g, c);
                for (j, &q) in grp.codes.iter().enumerate() {
                    put_bits(
                        &mut bits,
                        code_bit(k, i, j),
                        u64::from((q as u8) & 31),
                        CODE_BITS,
                    );
                }
                put_bits(&mut bits, exp_bit(k, i, 0), u64::from(grp.s1 & 7), EXP_BITS);
                put_bits(&mut bits, exp_bit(k, i, 1), u64::from(grp.s2 & 7), EXP_BITS);
            }
        }
        let dst = &mut out[n * RUN_BYTES..(n + 1) * RUN_BYTES];
        for (d, limb) in dst.chunks_exact_mut(8).zip(bits) {
            d.copy_from_slice(&limb.to_le_bytes());
        }
    }
}

/// The whole image of `w` as 32-byte words, computed on `threads` threads
/// (the bytes do not depend on the thread count).
pub fn pack_image<W: ApotWeights + Sync + ?Sized>(w: &W, threads: usize) -> Vec<u8> {
    let runs = runs_of(w.rows(), w.cols());
    let mut out = vec![0u8; runs * RUN_BYTES];
    let parts = threads.clamp(1, 64).min(runs.max(1));
    let per = runs.div_ceil(parts).max(1);
    std::thread::scope(|s| {
        for (i, chunk) in out.chunks_mut(per * RUN_BYTES).enumerate() {
            let r0 = i * per;
            let r1 = r0 + chunk.len() / RUN_BYTES;
            s.spawn(move || pack_runs(w, r0..r1, chunk));
        }
    });
    out
}

/// Splits 32-byte words into their low halves (bytes 0..16 of every word) and
/// high halves (bytes 16..32), the two AXI port regions.
pub fn split_halves(words: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(words.len() % WORD_BYTES, 0);
    let n = words.len() / WORD_BYTES;
    let mut lo = Vec::with_capacity(n * HALF_BYTES);
    let mut hi = Vec::with_capacity(n * HALF_BYTES);
    for w in words.chunks_exact(WORD_BYTES) {
        lo.extend_from_slice(&w[..HALF_BYTES]);
        hi.extend_from_slice(&w[HALF_BYTES..]);
    }
    (lo, hi)
}

/// Reads back one group from an image (both halves), for tests and tools:
/// the inverse of [`pack_runs`] for real (non-padding) rows.
pub fn unpack_group(
    lo: &[u8],
    hi: &[u8],
    rows: usize,
    cols: usize,
    r: usize,
    g: usize,
) -> ApotGroup {
    assert!(r < rows && g < cols / PACK_COLS);
    let cb = cols / PACK_COLS;
    let p = (r / PACK_ROWS) * cb + g;
    let (run, k, i) = (p / PACKS_PER_RUN, p % PACKS_PER_RUN, r % PACK_ROWS);
    let bit = |pos: usize| -> u64 {
        let word = run * RUN_WORDS + pos / WORD_BITS;
        let wb = pos % WORD_BITS;
        let (half, hb) = if wb < 128 { (lo, wb) } else { (hi, wb - 128) };
        u64::from(half[word * HALF_BYTES + hb / 8] >> (hb % 8) & 1)
    };
    let field = |pos: usize, width: usize| (0..width).fold(0u64, |a, t| a | bit(pos + t) << t);
    let mut grp = ApotGroup::default();
    for j in 0..PACK_COLS {
        let v = field(code_bit(k, i, j), CODE_BITS) as u8;
        grp.codes[j] = edgedecoding_kernels::format::sign_extend5(v);
    }
    grp.s1 = field(exp_bit(k, i, 0), EXP_BITS) as u8;
    grp.s2 = field(exp_bit(k, i, 1), EXP_BITS) as u8;
    grp
}

/// Row `r` of a K or V projection widened from `n_kv_heads` to `n_heads` heads
/// (DESIGN §3: "the 2 KV heads repeated to 14"): widened row `r` belongs to
/// query head `h = r / head_dim`, dimension `d = r % head_dim`, and is row
/// `(h / (n_heads / n_kv_heads)) * head_dim + d` of the original — i.e. query
/// head `h` gets the K/V head grouped-query attention pairs it with
/// (Qwen2.5-0.5B: widened rows 0..448 repeat KV rows 0..64 seven times, rows
/// 448..896 repeat KV rows 64..128).
pub const fn widened_source_row(
    r: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
) -> usize {
    let h = r / head_dim;
    let d = r % head_dim;
    (h / (n_heads / n_kv_heads)) * head_dim + d
}

/// A K or V matrix widened to `n_heads * head_dim` rows (see
/// [`widened_source_row`]); row exponents follow their rows.
#[derive(Clone, Copy, Debug)]
pub struct Widened<'a, W: ?Sized> {
    /// The `n_kv_heads * head_dim`-row matrix.
    pub inner: &'a W,
    /// Query heads.
    pub n_heads: usize,
    /// KV heads.
    pub n_kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
}

impl<W: ApotWeights + ?Sized> ApotWeights for Widened<'_, W> {
    type Row = W::Row;
    fn rows(&self) -> usize {
        self.n_heads * self.head_dim
    }
    fn cols(&self) -> usize {
        self.inner.cols()
    }
    fn row(&self, r: usize) -> (i8, W::Row) {
        self.inner.row(self.src(r))
    }
    fn group(&self, r: usize, g: usize, ctx: W::Row) -> ApotGroup {
        self.inner.group(self.src(r), g, ctx)
    }
}

impl<W: ?Sized> Widened<'_, W> {
    fn src(&self, r: usize) -> usize {
        widened_source_row(r, self.n_heads, self.n_kv_heads, self.head_dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgedecoding_kernels::format::{pack_group, packed_codes_len, packed_exps_len, ApotMatrix};

    fn matrix(rows: usize, cols: usize) -> (Vec<u8>, Vec<u8>, Vec<i8>) {
        let mut codes = vec![0u8; packed_codes_len(rows, cols)];
        let mut exps = vec![0u8; packed_exps_len(rows, cols)];
        for r in 0..rows {
            for g in 0..cols / 8 {
                let grp = ApotGroup {
                    codes: core::array::from_fn(|j| {
                        (((r * 7 + (8 * g + j) * 13 + 5) % 32) as i8) - 16
                    }),
                    s1: ((r + 3 * g) % 8) as u8,
                    s2: ((5 * r + g + 1) % 8) as u8,
                };
                pack_group(&mut codes, &mut exps, r * (cols / 8) + g, &grp).unwrap();
            }
        }
        (codes, exps, vec![0; rows])
    }

    #[test]
    fn constants_match_the_design() {
        assert_eq!(CODE_WORDS, 20);
        assert_eq!(EXP_WORDS, 3);
        assert_eq!(RUN_BYTES, 736);
        assert_eq!(RUN_BYTES as f64 * 8.0 / RUN_WEIGHTS as f64, 5.75);
        assert_eq!(exp_bit(15, 7, 1) + 3, RUN_WORDS * WORD_BITS);
    }

    #[test]
    fn pack_then_unpack_every_group_with_padding_and_threads() {
        for (rows, cols) in [(16, 64), (20, 136), (8, 8), (40, 24)] {
            let (c, e, x) = matrix(rows, cols);
            let m = ApotMatrix::new(rows, cols, &c, &e, &x).unwrap();
            let img = pack_image(&m, 1);
            assert_eq!(img.len(), image_bytes(rows, cols));
            for t in [2, 3, 7] {
                assert_eq!(pack_image(&m, t), img, "threads {t}");
            }
            let (lo, hi) = split_halves(&img);
            for r in 0..rows {
                for g in 0..cols / 8 {
                    assert_eq!(unpack_group(&lo, &hi, rows, cols, r, g), m.group(r, g, ()));
                }
            }
            // padding is zero: no more bits set than the real groups hold
            let real_bits = rows * cols * 5 + rows * (cols / 8) * 6;
            let set: u32 = img.iter().map(|b| b.count_ones()).sum();
            assert!(set as usize <= real_bits);
        }
    }

    #[test]
    fn widening_maps_heads_to_their_kv_head() {
        // Qwen2.5-0.5B: 14 heads, 2 KV heads, 64 dims
        assert_eq!(widened_source_row(0, 14, 2, 64), 0);
        assert_eq!(widened_source_row(447, 14, 2, 64), 63);
        assert_eq!(widened_source_row(448, 14, 2, 64), 64);
        assert_eq!(widened_source_row(64 * 6 + 5, 14, 2, 64), 5);
        assert_eq!(widened_source_row(895, 14, 2, 64), 127);
        let (c, e, x) = matrix(16, 16);
        let m = ApotMatrix::new(16, 16, &c, &e, &x).unwrap();
        let w = Widened {
            inner: &m,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 8,
        };
        assert_eq!(w.rows(), 32);
        assert_eq!(w.group(9, 1, ()), m.group(1, 1, ()));
        assert_eq!(w.group(17, 0, ()), m.group(9, 0, ()));
    }
}

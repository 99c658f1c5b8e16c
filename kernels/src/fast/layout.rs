//! The repacked weight layout (SPEC §4.4): panels of 16 rows, records of two
//! weight groups (16 input columns), 6 bits per weight.
//!
//! One 192-byte record per (panel, pair of groups `2j`, `2j+1`), groups `a`
//! and `b`:
//!
//! ```text
//! [  0,  64)  nibbles of group a: byte 4*l + i = ((q[r][8a+i] + 16) & 15) | ((q[r][8a+4+i] + 16) & 15) << 4
//!                                 for lane l in 0..16 (row r = 16*panel + l), i in 0..4
//! [ 64, 128)  nibbles of group b, the same way
//! [128, 136)  u64 LE: bit 4*l + i = (q[r][8a+i] + 16) >> 4      (fifth bit, codes 0..3 of a)
//! [136, 144)  u64 LE: bit 4*l + i = (q[r][8a+4+i] + 16) >> 4    (fifth bit, codes 4..7 of a)
//! [144, 160)  the same two masks for group b
//! [160, 192)  u8: byte 2*l = scale[r][a] - 1, byte 2*l + 1 = scale[r][b] - 1  (scale = 2^s1 + 2^s2)
//! ```
//!
//! Rows beyond the matrix (padding to 16) and the missing group `b` of an odd
//! group count hold code 0 and scale 2: their dot products are 0 whatever the
//! activations. Codes are stored offset by 16 (unsigned 5 bits) so a u8 × i8
//! dot-product instruction can use them: `Σ m·q = Σ m·(q+16) − 16·Σ m`.

use core::ops::Range;

use crate::error::{check_len, check_multiple, check_range};
use crate::format::ApotWeights;
use crate::linear::MAX_COLS;
use crate::{KernelError, GROUP};

/// Rows per panel.
pub const PANEL: usize = 16;
/// Weight groups per record.
pub const PAIR: usize = 2;
/// Bytes per (panel, pair of groups) record.
pub const RECORD: usize = 192;
/// Offset of the fifth-bit masks in a record.
pub(crate) const MASKS: usize = 128;
/// Offset of the interleaved scales in a record.
pub(crate) const SCALES: usize = 160;

/// Pairs of groups of a matrix with `cols` input columns (the last one may be half empty).
pub const fn pairs(cols: usize) -> usize {
    (cols / GROUP).div_ceil(PAIR)
}

/// Bytes of the repacked data of a `rows × cols` matrix.
pub const fn repacked_len(rows: usize, cols: usize) -> usize {
    rows.div_ceil(PANEL) * pairs(cols) * RECORD
}

/// Repacks any APoT weights (a stored matrix or the derived lm_head) into
/// `data` (`repacked_len` bytes) and `row_exps` (`rows` values).
pub fn repack<W: ApotWeights + ?Sized>(
    w: &W,
    data: &mut [u8],
    row_exps: &mut [i8],
) -> Result<(), KernelError> {
    repack_panels(w, 0..w.rows().div_ceil(PANEL), data, row_exps)
}

/// [`repack`] for panels `panels` only (to split the work over threads):
/// `data` holds those panels' records, `row_exps` their rows.
pub fn repack_panels<W: ApotWeights + ?Sized>(
    w: &W,
    panels: Range<usize>,
    data: &mut [u8],
    row_exps: &mut [i8],
) -> Result<(), KernelError> {
    let (rows, cols) = (w.rows(), w.cols());
    check_multiple("cols", cols, GROUP)?;
    let groups = cols / GROUP;
    let np = pairs(cols);
    if panels.end > rows.div_ceil(PANEL) || panels.start > panels.end {
        return Err(KernelError::Param {
            what: "panel range end",
            value: panels.end as i64,
            min: panels.start as i64,
            max: rows.div_ceil(PANEL) as i64,
        });
    }
    let r0 = panels.start * PANEL;
    let r1 = (panels.end * PANEL).min(rows);
    check_len("repacked data", panels.len() * np * RECORD, data.len())?;
    check_len(
        "repacked row exponents",
        r1.saturating_sub(r0),
        row_exps.len(),
    )?;
    for (pi, p) in panels.clone().enumerate() {
        for lane in 0..PANEL {
            let r = p * PANEL + lane;
            let ctx = if r < rows {
                let (e, ctx) = w.row(r);
                row_exps[r - r0] = e;
                Some(ctx)
            } else {
                None
            };
            for g in 0..np * PAIR {
                // padding (row or group): code 0, scale 2
                let (codes, scale) = match ctx {
                    Some(ctx) if g < groups => {
                        let grp = w.group(r, g, ctx);
                        (grp.codes, grp.scale())
                    }
                    _ => ([0; GROUP], 2),
                };
                let rec = &mut data[(pi * np + g / PAIR) * RECORD..][..RECORD];
                let half = g % PAIR;
                for i in 0..4 {
                    let a = (codes[i] + 16) as u8;
                    let b = (codes[i + 4] + 16) as u8;
                    let k = 4 * lane + i;
                    rec[64 * half + k] = (a & 15) | (b & 15) << 4;
                    let m = MASKS + 16 * half;
                    set_bit(&mut rec[m..m + 8], k, a >> 4);
                    set_bit(&mut rec[m + 8..m + 16], k, b >> 4);
                }
                rec[SCALES + 2 * lane + half] = (scale - 1) as u8;
            }
        }
    }
    Ok(())
}

fn set_bit(bytes: &mut [u8], k: usize, bit: u8) {
    let m = 1u8 << (k % 8);
    if bit != 0 {
        bytes[k / 8] |= m;
    } else {
        bytes[k / 8] &= !m;
    }
}

/// A repacked matrix borrowed from memory.
#[derive(Clone, Copy, Debug)]
pub struct Repacked<'a> {
    rows: usize,
    cols: usize,
    pub(crate) data: &'a [u8],
    pub(crate) row_exps: &'a [i8],
}

impl<'a> Repacked<'a> {
    /// Wraps repacked data; checks lengths.
    pub fn new(
        rows: usize,
        cols: usize,
        data: &'a [u8],
        row_exps: &'a [i8],
    ) -> Result<Self, KernelError> {
        check_multiple("cols", cols, GROUP)?;
        check_range("cols", cols as i64, GROUP as i64, MAX_COLS as i64)?;
        check_len("repacked data", repacked_len(rows, cols), data.len())?;
        check_len("repacked row exponents", rows, row_exps.len())?;
        Ok(Self {
            rows,
            cols,
            data,
            row_exps,
        })
    }
    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Number of 16-row panels.
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }
    /// The records of panel `p` (`pairs(cols)` records).
    pub(crate) fn panel(&self, p: usize) -> &'a [u8] {
        let n = pairs(self.cols) * RECORD;
        &self.data[p * n..(p + 1) * n]
    }
}

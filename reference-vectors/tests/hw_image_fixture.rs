//! The DDR image packer against the committed fixture made by an independent
//! numpy implementation of docs/VECTORS.md §5.2
//! (`tests/fixtures/hw_image/make_fixture.py`).

use edgedecoding_kernels::format::{
    pack_group, packed_codes_len, packed_exps_len, ApotGroup, ApotMatrix,
};
use edgedecoding_reference_vectors::hw::{pack_image, split_halves, unpack_group};

/// The fixture's matrix: `q[r][c] = ((7r + 13c + 5) mod 32) - 16`,
/// `s1[r][g] = (r + 3g) mod 8`, `s2[r][g] = (5r + g + 1) mod 8`, packed as
/// SPEC §2.1 streams.
fn fixture_matrix(rows: usize, cols: usize) -> (Vec<u8>, Vec<u8>, Vec<i8>) {
    let mut codes = vec![0u8; packed_codes_len(rows, cols)];
    let mut exps = vec![0u8; packed_exps_len(rows, cols)];
    for r in 0..rows {
        for g in 0..cols / 8 {
            let grp = ApotGroup {
                codes: core::array::from_fn(|j| ((7 * r + 13 * (8 * g + j) + 5) % 32) as i8 - 16),
                s1: ((r + 3 * g) % 8) as u8,
                s2: ((5 * r + g + 1) % 8) as u8,
            };
            pack_group(&mut codes, &mut exps, r * (cols / 8) + g, &grp).unwrap();
        }
    }
    (codes, exps, vec![0; rows])
}

fn check(rows: usize, cols: usize, lo_fix: &[u8], hi_fix: &[u8]) {
    let (c, e, x) = fixture_matrix(rows, cols);
    let m = ApotMatrix::new(rows, cols, &c, &e, &x).unwrap();
    let (lo, hi) = split_halves(&pack_image(&m, 2));
    assert_eq!(lo.len(), lo_fix.len(), "{rows}x{cols} low port length");
    assert_eq!(hi.len(), hi_fix.len(), "{rows}x{cols} high port length");
    for (i, (a, b)) in lo.iter().zip(lo_fix).enumerate() {
        assert_eq!(a, b, "{rows}x{cols} low port byte {i}");
    }
    for (i, (a, b)) in hi.iter().zip(hi_fix).enumerate() {
        assert_eq!(a, b, "{rows}x{cols} high port byte {i}");
    }
    // and the fixture decodes back to the matrix
    for r in 0..rows {
        for g in 0..cols / 8 {
            use edgedecoding_kernels::format::ApotWeights;
            assert_eq!(
                unpack_group(lo_fix, hi_fix, rows, cols, r, g),
                m.group(r, g, ())
            );
        }
    }
}

#[test]
fn one_full_run_16x64() {
    check(
        16,
        64,
        include_bytes!("fixtures/hw_image/m16x64.lo.bin"),
        include_bytes!("fixtures/hw_image/m16x64.hi.bin"),
    );
}

#[test]
fn padded_rows_and_packs_20x136() {
    check(
        20,
        136,
        include_bytes!("fixtures/hw_image/m20x136.lo.bin"),
        include_bytes!("fixtures/hw_image/m20x136.hi.bin"),
    );
}

#[test]
fn worked_example_bytes_of_vectors_md() {
    // docs/VECTORS.md §8.2
    let lo = include_bytes!("fixtures/hw_image/m16x64.lo.bin");
    assert_eq!(lo[..5], [0x55, 0x3c, 0x9e, 0xec, 0x80]);
    assert_eq!(lo[320..322], [0x48, 0xac]);
}

//! Multi-threaded execution (feature `std`), bit-identical to [`crate::Serial`].
//!
//! A linear layer's output rows are independent, so splitting the rows over
//! threads and computing each range with the same kernel
//! ([`edgedecoding_kernels::linear::linear_rows`]) gives exactly the
//! single-threaded values, for any thread count.

use std::thread;
use std::vec::Vec;

use crate::ModelError;
use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_kernels::format::ApotWeights;
use edgedecoding_kernels::linear::linear_rows;

use crate::decoder::{Backend, MatId};

/// Splits every linear layer's rows over `threads` scoped threads.
#[derive(Clone, Copy, Debug)]
pub struct Threaded {
    threads: usize,
}

impl Threaded {
    /// `threads >= 1` (0 is treated as 1).
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
        }
    }

    /// Number of threads used.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

/// Rows below which splitting is not worth a thread.
const MIN_ROWS_PER_THREAD: usize = 64;

impl Backend for Threaded {
    fn linear<W: ApotWeights + Sync + ?Sized>(
        &self,
        _id: MatId,
        w: &W,
        x: &[BfpBlock],
        bias: Option<&[i32]>,
        out_frac: u32,
        out: &mut [i32],
    ) -> Result<(), ModelError> {
        let rows = w.rows();
        let parts = self.threads.min(rows / MIN_ROWS_PER_THREAD).max(1);
        if parts == 1 {
            return Ok(linear_rows(w, x, bias, out_frac, 0..rows, out)?);
        }
        let tokens = out.len() / rows.max(1);
        let bounds: Vec<usize> = (0..=parts).map(|i| i * rows / parts).collect();
        let results: Vec<Result<Vec<i32>, ModelError>> = thread::scope(|s| {
            let handles: Vec<_> = (0..parts)
                .map(|i| {
                    let (r0, r1) = (bounds[i], bounds[i + 1]);
                    s.spawn(move || {
                        let mut buf = std::vec![0i32; tokens * (r1 - r0)];
                        linear_rows(w, x, bias, out_frac, r0..r1, &mut buf)
                            .map(|_| buf)
                            .map_err(ModelError::from)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or(Err(ModelError::Internal(
                        "a threaded-backend worker panicked",
                    )))
                })
                .collect()
        });
        // Validate the whole call once more on the full shape so errors match Serial.
        if out.len() != tokens * rows {
            return Ok(linear_rows(w, x, bias, out_frac, 0..rows, out)?);
        }
        for (i, res) in results.into_iter().enumerate() {
            let buf = res?;
            let (r0, r1) = (bounds[i], bounds[i + 1]);
            let nr = r1 - r0;
            for t in 0..tokens {
                out[t * rows + r0..t * rows + r1].copy_from_slice(&buf[t * nr..(t + 1) * nr]);
            }
        }
        Ok(())
    }
}

//! Seeded test-data generator (SplitMix64 of the model crate's built-in
//! generator; floats only shape the random data, they never reach a kernel).

use edgedecoding_model::builtin::Rng;

/// A seeded generator with the helpers the case builders need.
pub struct Gen(Rng);

impl Gen {
    /// A generator for `seed` and a stream name (each case gets its own stream,
    /// so adding a case does not change the others).
    pub fn new(seed: u64, stream: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(Rng::new(seed ^ h))
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        if span > u64::MAX as u128 {
            return self.u64() as i64;
        }
        (lo as i128 + (self.u64() as u128 % span) as i128) as i64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        self.0.normal()
    }

    /// `round(N(0, sigma^2))` clamped to `[lo, hi]`.
    pub fn gauss(&mut self, sigma: f64, lo: i64, hi: i64) -> i64 {
        let v = (self.normal() * sigma).round();
        (v.clamp(lo as f64, hi as f64)) as i64
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One element of a slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

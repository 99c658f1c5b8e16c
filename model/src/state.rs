//! Run state and KV cache in caller-provided memory.

use edgedecoding_kernels::bfp::BfpBlock;
use edgedecoding_kernels::TOKENS_PER_PASS;

use crate::config::Config;
use crate::error::ModelError;

const T: usize = TOKENS_PER_PASS;

/// Splits one byte buffer into typed, aligned slices.
struct Arena<'s> {
    rest: &'s mut [u8],
    used: usize,
}

impl<'s> Arena<'s> {
    fn take<U: bytemuck::Pod>(&mut self, n: usize) -> Result<&'s mut [U], ModelError> {
        let align = core::mem::align_of::<U>();
        let pad = self.rest.as_ptr().align_offset(align);
        let bytes = n * core::mem::size_of::<U>();
        let need = pad + bytes;
        if need > self.rest.len() {
            return Err(ModelError::StateTooSmall {
                need: (self.used + need) as u64,
                got: (self.used + self.rest.len()) as u64,
            });
        }
        let rest = core::mem::take(&mut self.rest);
        let (head, tail) = rest.split_at_mut(need);
        self.rest = tail;
        self.used += need;
        let s: &mut [U] =
            bytemuck::try_cast_slice_mut(&mut head[pad..]).map_err(|_| ModelError::Misaligned)?;
        s.fill(U::zeroed());
        Ok(s)
    }
}

/// Element counts of every state buffer of a config.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    kv: usize,
    act: usize,
    kvnew: usize,
    ffn: usize,
    blocks: usize,
    ctx: usize,
    logits: usize,
    head: usize,
}

impl Sizes {
    const fn of(c: &Config, chunk: usize) -> Self {
        Self {
            kv: c.n_layers * c.ctx * c.kv_dim(),
            act: chunk * c.hidden,
            kvnew: chunk * c.kv_dim(),
            ffn: chunk * c.ffn,
            blocks: chunk * (if c.hidden > c.ffn { c.hidden } else { c.ffn }) / 8,
            ctx: c.ctx,
            logits: T * c.n_kept,
            head: c.hidden,
        }
    }
}

/// Bytes of state memory a config needs (KV cache, activations of one chunk of
/// 8 tokens, logits of 8 tokens), including worst-case alignment padding. Pass
/// at least this many bytes to [`State::new`]. (The RoPE table is not state:
/// the decoder reads it from the model file, SPEC §6.1.)
pub const fn state_bytes(c: &Config) -> usize {
    state_bytes_chunked(c, T)
}

/// Prefill chunk the CPU fallback uses: every weight is streamed once per 64
/// tokens instead of once per 8 (results are identical for any chunking,
/// SPEC §4.4).
pub const CPU_CHUNK: usize = 64;

/// The prefill chunk the CPU fallback uses for `c`: [`CPU_CHUNK`], or the
/// context rounded up to 8 when that is shorter.
pub const fn cpu_chunk(c: &Config) -> usize {
    let ctx = c.ctx.div_ceil(T) * T;
    if ctx < CPU_CHUNK {
        ctx
    } else {
        CPU_CHUNK
    }
}

/// [`state_bytes`] for prefill chunks of `chunk` tokens (rounded up to a
/// multiple of 8; see [`State::with_chunk`]).
pub const fn state_bytes_chunked(c: &Config, chunk: usize) -> usize {
    let chunk = if chunk < T { T } else { chunk.div_ceil(T) * T };
    let s = Sizes::of(c, chunk);
    let slack = 16 * 8; // one alignment pad per buffer at most
    2 * s.kv * 2
        + 5 * s.act * 4
        + 2 * s.kvnew * 4
        + 3 * s.ffn * 4
        + s.blocks * 9
        + s.ctx * (8 + 2)
        + s.logits * 4
        + s.head * 2
        + slack
}

/// The decoder's mutable state, borrowed from caller memory.
///
/// Buffers (shapes in elements):
/// * `k_cache`, `v_cache`: `(n_layers, ctx, kv_dim)` i16, grouped-query layout
///   (2 KV heads for Qwen2.5-0.5B, not widened);
/// * `x`: `(8, hidden)` Q12 residual of the current chunk; `xn`, `att`, `proj`
///   `(8, hidden)` i32; `q` `(8, hidden)` i32; `k_new`, `v_new` `(8, kv_dim)` i32;
/// * `gate`, `up`, `ffn_h`: `(8, ffn)` i32; `blocks`: `(8, max(hidden, ffn)/8)` BFP;
/// * `scores` i64, `probs` u16: `(ctx)`; `logits`: `(8, n_kept)` Q12 i32;
/// * `q16`: `(hidden)` i16, one token's rotated queries.
pub struct State<'s> {
    pub(crate) config: Config,
    pub(crate) k_cache: &'s mut [i16],
    pub(crate) v_cache: &'s mut [i16],
    pub(crate) x: &'s mut [i32],
    pub(crate) xn: &'s mut [i32],
    pub(crate) att: &'s mut [i32],
    pub(crate) proj: &'s mut [i32],
    pub(crate) q: &'s mut [i32],
    pub(crate) k_new: &'s mut [i32],
    pub(crate) v_new: &'s mut [i32],
    pub(crate) gate: &'s mut [i32],
    pub(crate) up: &'s mut [i32],
    pub(crate) ffn_h: &'s mut [i32],
    pub(crate) blocks: &'s mut [BfpBlock],
    pub(crate) scores: &'s mut [i64],
    pub(crate) probs: &'s mut [u16],
    pub(crate) logits: &'s mut [i32],
    pub(crate) q16: &'s mut [i16],
    /// Positions filled in the KV cache.
    pub(crate) pos: usize,
    /// Tokens of the current (partial) chunk of 8, for accelerator parity.
    pub(crate) chunk: [u32; T],
    /// Slots of `logits` holding valid rows, and the position of slot 0.
    pub(crate) logits_valid: usize,
    /// Tokens per prefill pass (a multiple of 8).
    pub(crate) cap: usize,
}

impl<'s> State<'s> {
    /// Carves the state out of `mem` (at least [`state_bytes`] bytes). Integer
    /// work only (no table is built here: the RoPE ROM is in the model file).
    pub fn new(config: &Config, mem: &'s mut [u8]) -> Result<Self, ModelError> {
        Self::with_chunk(config, mem, T)
    }

    /// [`State::new`] for prefill passes of up to `chunk` tokens (a multiple
    /// of 8, at most `ctx` rounded up; `mem` at least
    /// [`state_bytes_chunked`]). Chunks are aligned to multiples of 8
    /// positions; outputs are identical for any chunk (tested).
    pub fn with_chunk(
        config: &Config,
        mem: &'s mut [u8],
        chunk: usize,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if chunk < T || chunk % T != 0 || chunk > config.ctx.div_ceil(T) * T + T {
            return Err(ModelError::OutOfRange {
                what: "prefill chunk (a multiple of 8 up to the context)",
                value: chunk as u64,
                max: (config.ctx.div_ceil(T) * T + T) as u64,
            });
        }
        let s = Sizes::of(config, chunk);
        let mut a = Arena { rest: mem, used: 0 };
        let mut st = State {
            config: *config,
            k_cache: a.take(s.kv)?,
            v_cache: a.take(s.kv)?,
            x: a.take(s.act)?,
            xn: a.take(s.act)?,
            att: a.take(s.act)?,
            proj: a.take(s.act)?,
            q: a.take(s.act)?,
            k_new: a.take(s.kvnew)?,
            v_new: a.take(s.kvnew)?,
            gate: a.take(s.ffn)?,
            up: a.take(s.ffn)?,
            ffn_h: a.take(s.ffn)?,
            blocks: a.take(s.blocks)?,
            scores: a.take(s.ctx)?,
            probs: a.take(s.ctx)?,
            logits: a.take(s.logits)?,
            q16: a.take(s.head)?,
            pos: 0,
            chunk: [0; T],
            logits_valid: 0,
            cap: chunk,
        };
        st.reset();
        Ok(st)
    }

    /// Forgets every position (the KV cache contents become unreachable).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.chunk = [0; T];
        self.logits_valid = 0;
    }

    /// Positions used so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// KV cache capacity.
    pub fn capacity(&self) -> usize {
        self.config.ctx
    }

    /// The K cache rows of layer `l`, `(ctx, kv_dim)`.
    pub fn k_cache(&self, l: usize) -> &[i16] {
        let n = self.config.ctx * self.config.kv_dim();
        &self.k_cache[l * n..(l + 1) * n]
    }

    /// The V cache rows of layer `l`, `(ctx, kv_dim)`.
    pub fn v_cache(&self, l: usize) -> &[i16] {
        let n = self.config.ctx * self.config.kv_dim();
        &self.v_cache[l * n..(l + 1) * n]
    }
}

/// Owned state memory (needs `alloc`): a `u64` buffer, so 8-byte aligned.
#[cfg(feature = "alloc")]
pub struct StateMem(alloc::vec::Vec<u64>);

#[cfg(feature = "alloc")]
impl StateMem {
    /// Memory for a config.
    pub fn new(c: &Config) -> Self {
        Self(alloc::vec![0u64; state_bytes(c).div_ceil(8)])
    }
    /// Memory for a config with prefill chunks of `chunk` tokens.
    pub fn with_chunk(c: &Config, chunk: usize) -> Self {
        Self(alloc::vec![0u64; state_bytes_chunked(c, chunk).div_ceil(8)])
    }
    /// The bytes.
    pub fn bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `state_bytes` is enough at every base alignment, and one byte less fails
    /// for an aligned base.
    #[test]
    fn state_bytes_is_exact_enough() {
        for c in [
            Config::tiny(),
            Config {
                ctx: 7,
                ..Config::tiny()
            },
            Config::qwen2_5_0_5b(16),
        ] {
            let n = state_bytes(&c);
            let mut buf = std::vec![0u64; n / 8 + 2];
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            for off in 0..8 {
                State::new(&c, &mut bytes[off..off + n]).unwrap();
            }
            assert!(State::new(&c, &mut bytes[..n - 16 * 8 - 1]).is_err());
        }
    }
}

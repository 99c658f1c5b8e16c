//! Model configuration of the Qwen2 family (FORMAT.md §2).

use core::fmt;

/// Shape of a Qwen2-family decoder and the run-time limits of one build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Decoder layers.
    pub n_layers: usize,
    /// Hidden size C.
    pub hidden: usize,
    /// FFN size CM (SwiGLU intermediate).
    pub ffn: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub n_kv_heads: usize,
    /// Head dimension (a power of 4: 1/sqrt is a shift).
    pub head_dim: usize,
    /// Full vocabulary size (token ids of the tokenizer).
    pub vocab: usize,
    /// Rows stored in the embedding: `vocab`, or the kept vocabulary size when
    /// the vocabulary is pruned.
    pub n_kept: usize,
    /// RoPE theta (1e6 for Qwen2).
    pub rope_theta: u32,
    /// Context length: capacity of the KV cache (192 or 1024 on the
    /// accelerator; any length on the CPU).
    pub ctx: usize,
}

/// The ways a [`Config`] can be inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A field is zero or above its limit.
    Range {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: usize,
        /// Largest allowed.
        max: usize,
    },
    /// `field` must be a multiple of `of`.
    NotMultiple {
        /// Field name.
        field: &'static str,
        /// Its value.
        value: usize,
        /// Required divisor.
        of: usize,
    },
    /// `hidden != n_heads * head_dim`.
    HeadsTimesDim {
        /// hidden
        hidden: usize,
        /// n_heads
        n_heads: usize,
        /// head_dim
        head_dim: usize,
    },
    /// `head_dim` is not a power of 4.
    HeadDim(usize),
    /// More kept rows than the vocabulary has.
    KeptAboveVocab {
        /// n_kept
        n_kept: usize,
        /// vocab
        vocab: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Range { field, value, max } => {
                write!(f, "config: {field} = {value} must be in 1..={max}")
            }
            ConfigError::NotMultiple { field, value, of } => {
                write!(f, "config: {field} = {value} must be a multiple of {of}")
            }
            ConfigError::HeadsTimesDim {
                hidden,
                n_heads,
                head_dim,
            } => {
                write!(
                    f,
                    "config: hidden = {hidden} but n_heads * head_dim = {n_heads} * {head_dim}"
                )
            }
            ConfigError::HeadDim(d) => write!(
                f,
                "config: head_dim = {d} must be a power of 4 (4, 16, 64, 256)"
            ),
            ConfigError::KeptAboveVocab { n_kept, vocab } => {
                write!(f, "config: n_kept = {n_kept} exceeds vocab = {vocab}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Context length of the accelerator's fast bitstream.
pub const CTX_FAST: usize = 192;
/// Context length of the accelerator's long-context bitstream.
pub const CTX_LONG: usize = 1024;

impl Config {
    /// Qwen2.5-0.5B(-Instruct): 24 layers, 896 hidden, 4864 FFN, 14/2 heads of 64,
    /// vocabulary 151936, theta 1e6, full vocabulary kept.
    pub const fn qwen2_5_0_5b(ctx: usize) -> Self {
        Self {
            n_layers: 24,
            hidden: 896,
            ffn: 4864,
            n_heads: 14,
            n_kv_heads: 2,
            head_dim: 64,
            vocab: 151_936,
            n_kept: 151_936,
            rope_theta: 1_000_000,
            ctx,
        }
    }

    /// A tiny model of the same structure for tests and the freestanding check:
    /// 2 layers, hidden 64 (4 heads of 16, 2 KV heads), FFN 128, vocab 256.
    pub const fn tiny() -> Self {
        Self {
            n_layers: 2,
            hidden: 64,
            ffn: 128,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            vocab: 256,
            n_kept: 256,
            rope_theta: 10_000,
            ctx: 64,
        }
    }

    /// Width of one K or V row: `n_kv_heads * head_dim`.
    pub const fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Whether the embedding stores only a kept subset of the vocabulary.
    pub const fn pruned(&self) -> bool {
        self.n_kept != self.vocab
    }

    /// Checks every invariant the decoder relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |field, value: usize, max| {
            if value == 0 || value > max {
                Err(ConfigError::Range { field, value, max })
            } else {
                Ok(())
            }
        };
        range("n_layers", self.n_layers, 256)?;
        range("hidden", self.hidden, 8184)?;
        range("ffn", self.ffn, 8184)?;
        range("n_heads", self.n_heads, 256)?;
        range("n_kv_heads", self.n_kv_heads, self.n_heads.max(1))?;
        range("head_dim", self.head_dim, 256)?;
        range("vocab", self.vocab, 1 << 24)?;
        range("n_kept", self.n_kept, 1 << 24)?;
        range("rope_theta", self.rope_theta as usize, u32::MAX as usize)?;
        range("ctx", self.ctx, 1 << 16)?;
        let mult = |field, value: usize, of: usize| {
            if value % of != 0 {
                Err(ConfigError::NotMultiple { field, value, of })
            } else {
                Ok(())
            }
        };
        mult("hidden", self.hidden, 8)?;
        mult("ffn", self.ffn, 8)?;
        mult("n_heads", self.n_heads, self.n_kv_heads)?;
        if !(self.head_dim.is_power_of_two()
            && self.head_dim.trailing_zeros() % 2 == 0
            && self.head_dim >= 4)
        {
            return Err(ConfigError::HeadDim(self.head_dim));
        }
        if self.n_heads * self.head_dim != self.hidden {
            return Err(ConfigError::HeadsTimesDim {
                hidden: self.hidden,
                n_heads: self.n_heads,
                head_dim: self.head_dim,
            });
        }
        mult("kv_dim", self.kv_dim(), 8)?;
        if self.n_kept > self.vocab {
            return Err(ConfigError::KeptAboveVocab {
                n_kept: self.n_kept,
                vocab: self.vocab,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        Config::qwen2_5_0_5b(CTX_FAST).validate().unwrap();
        Config::qwen2_5_0_5b(CTX_LONG).validate().unwrap();
        Config::tiny().validate().unwrap();
    }

    #[test]
    fn inconsistent_configs_are_rejected() {
        let c = Config::tiny();
        assert_eq!(
            Config { hidden: 72, ..c }.validate(),
            Err(ConfigError::HeadsTimesDim {
                hidden: 72,
                n_heads: 4,
                head_dim: 16
            })
        );
        assert_eq!(
            Config { n_kv_heads: 3, ..c }.validate(),
            Err(ConfigError::NotMultiple {
                field: "n_heads",
                value: 4,
                of: 3
            })
        );
        assert_eq!(
            Config {
                head_dim: 32,
                n_heads: 2,
                ..c
            }
            .validate(),
            Err(ConfigError::HeadDim(32))
        );
        assert!(matches!(
            Config { ffn: 100, ..c }.validate(),
            Err(ConfigError::NotMultiple { field: "ffn", .. })
        ));
        assert!(matches!(
            Config { ctx: 0, ..c }.validate(),
            Err(ConfigError::Range { field: "ctx", .. })
        ));
        assert!(matches!(
            Config { n_kept: 300, ..c }.validate(),
            Err(ConfigError::KeptAboveVocab { .. })
        ));
        assert!(matches!(
            Config { n_layers: 0, ..c }.validate(),
            Err(ConfigError::Range {
                field: "n_layers",
                ..
            })
        ));
    }
}

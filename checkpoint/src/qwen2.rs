//! The Qwen2 architecture's tensor names in each container format, in one
//! table: the only place that knows how GGUF (llama.cpp's `blk.N.*`) and
//! Hugging Face (`model.layers.N.*`) name the decoder's logical tensors
//! ([`Part`]). The container readers (`gguf.rs`, `hf.rs`) parse files; the
//! float model is assembled from [`Part`]s by `build.rs`.

use crate::build::Part;

/// The container formats whose Qwen2 tensor names are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    /// llama.cpp's GGUF names.
    Gguf,
    /// Hugging Face `transformers` names.
    Hf,
}

/// `(part, GGUF name, Hugging Face name)`; per-layer names get the layer
/// prefix (`blk.N.` / `model.layers.N.`), global ones are complete.
const NAMES: [(Part, &str, &str); 15] = [
    (Part::Emb, "token_embd.weight", "model.embed_tokens.weight"),
    (Part::Head, "output.weight", "lm_head.weight"),
    (Part::FinalNorm, "output_norm.weight", "model.norm.weight"),
    (Part::AttnNorm, "attn_norm.weight", "input_layernorm.weight"),
    (Part::QW, "attn_q.weight", "self_attn.q_proj.weight"),
    (Part::QB, "attn_q.bias", "self_attn.q_proj.bias"),
    (Part::KW, "attn_k.weight", "self_attn.k_proj.weight"),
    (Part::KB, "attn_k.bias", "self_attn.k_proj.bias"),
    (Part::VW, "attn_v.weight", "self_attn.v_proj.weight"),
    (Part::VB, "attn_v.bias", "self_attn.v_proj.bias"),
    (Part::OW, "attn_output.weight", "self_attn.o_proj.weight"),
    (
        Part::FfnNorm,
        "ffn_norm.weight",
        "post_attention_layernorm.weight",
    ),
    (Part::Gate, "ffn_gate.weight", "mlp.gate_proj.weight"),
    (Part::Up, "ffn_up.weight", "mlp.up_proj.weight"),
    (Part::Down, "ffn_down.weight", "mlp.down_proj.weight"),
];

/// The name of `part` (of layer `layer` for per-layer parts) in `naming`.
pub(crate) fn tensor_name(naming: Naming, part: Part, layer: usize) -> String {
    let (_, gguf, hf) = NAMES
        .iter()
        .copied()
        .find(|&(p, _, _)| p == part)
        .unwrap_or(NAMES[0]);
    let global = matches!(part, Part::Emb | Part::Head | Part::FinalNorm);
    match (naming, global) {
        (Naming::Gguf, true) => gguf.into(),
        (Naming::Hf, true) => hf.into(),
        (Naming::Gguf, false) => format!("blk.{layer}.{gguf}"),
        (Naming::Hf, false) => format!("model.layers.{layer}.{hf}"),
    }
}

/// GGUF metadata keys of the Qwen2 hyper-parameters.
pub(crate) mod gguf_keys {
    pub const LAYERS: &str = "qwen2.block_count";
    pub const HIDDEN: &str = "qwen2.embedding_length";
    pub const FFN: &str = "qwen2.feed_forward_length";
    pub const HEADS: &str = "qwen2.attention.head_count";
    pub const KV: &str = "qwen2.attention.head_count_kv";
    pub const THETA: &str = "qwen2.rope.freq_base";
    pub const EPS: &str = "qwen2.attention.layer_norm_rms_epsilon";
    pub const CTX: &str = "qwen2.context_length";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_has_both_names() {
        for &(p, g, h) in &NAMES {
            assert_eq!(NAMES.iter().filter(|n| n.0 == p).count(), 1);
            assert!(!g.is_empty() && !h.is_empty());
        }
        assert_eq!(
            tensor_name(Naming::Gguf, Part::QW, 3),
            "blk.3.attn_q.weight"
        );
        assert_eq!(
            tensor_name(Naming::Hf, Part::Down, 23),
            "model.layers.23.mlp.down_proj.weight"
        );
        assert_eq!(tensor_name(Naming::Gguf, Part::Emb, 5), "token_embd.weight");
        assert_eq!(tensor_name(Naming::Hf, Part::Head, 0), "lm_head.weight");
    }
}

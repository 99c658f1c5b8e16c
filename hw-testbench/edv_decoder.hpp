// One decoder layer and a whole chunk of up to 8 tokens, composed from the
// operators of edv_ops.hpp in the order of docs/VECTORS.md section 4 (norm,
// quantize, q/k/v, RoPE, cache, attention, o, residual, norm, quantize,
// gate/up, SwiGLU, quantize, down, residual; then final norm, lm_head, argmax).
#pragma once

#include <cstdint>
#include <vector>

#include "edv_ops.hpp"

namespace edv {

struct Dims {
    int hidden, ffn, n_heads, n_kv_heads, head_dim, ctx;
    uint64_t eps_q40;
    int kv_dim() const { return n_kv_heads * head_dim; }
};

// A matrix as SPEC 2.1 streams.
struct Matrix {
    int rows = 0, cols = 0;
    std::vector<uint8_t> codes, exps;
    std::vector<int8_t> rexp;
};

struct LayerWeights {
    std::vector<int16_t> attn_norm, ffn_norm;
    std::vector<uint8_t> formats;  // q_frac, k_frac, v_frac, attn_norm_frac, ffn_norm_frac
    Matrix q, k, v, o, gate, up, down;
    std::vector<int32_t> q_bias, k_bias, v_bias;
};

// Every stage of one layer for n tokens, token-major.
struct LayerStages {
    std::vector<int32_t> attn_norm, q, k, v, attn, o_proj, x_attn, mlp_norm, gate, up, swiglu, down, x_out;
    std::vector<int8_t> attn_bfp_m, o_bfp_m, mlp_bfp_m, down_bfp_m;
    std::vector<uint8_t> attn_bfp_e, o_bfp_e, mlp_bfp_e, down_bfp_e;
    std::vector<int16_t> q_rot, k_row, v_row;
};

inline std::vector<BfpBlock> quantize(const std::vector<int32_t>& x, std::vector<int8_t>& m, std::vector<uint8_t>& e) {
    std::vector<BfpBlock> b(x.size() / G);
    m.resize(x.size());
    e.resize(b.size());
    for (size_t g = 0; g < b.size(); g++) {
        b[g] = bfp_quantize_block(&x[g * G]);
        for (int i = 0; i < G; i++) m[g * G + i] = b[g].m[i];
        e[g] = b[g].e;
    }
    return b;
}

inline void lin(const Matrix& w, const std::vector<BfpBlock>& x, int n, const std::vector<int32_t>* bias, int out_frac,
                std::vector<int32_t>& y) {
    y.assign(static_cast<size_t>(n) * w.rows, 0);
    linear_spec(w.codes.data(), w.exps.data(), w.exps.size(), w.rexp.data(), w.rows, w.cols, x.data(), n,
                bias ? bias->data() : nullptr, out_frac, y.data());
}

// One layer over tokens at positions start..start+n-1. kc / vc: this layer's
// caches [ctx][kv_dim]; rows 0..start are read, rows start..start+n written.
// cos / sin: the RoPE ROM [ctx][head_dim/2]. exp2 / sig: the softmax and
// sigmoid ROMs.
inline LayerStages run_layer(const Dims& d, const LayerWeights& w, const std::vector<int32_t>& x_in, int start, int n,
                             std::vector<int16_t>& kc, std::vector<int16_t>& vc, const std::vector<int16_t>& cos,
                             const std::vector<int16_t>& sin, const uint16_t* exp2, const uint16_t* sig) {
    const int C = d.hidden, F = d.ffn, KV = d.kv_dim(), half = d.head_dim / 2;
    const unsigned q_frac = w.formats[0], k_frac = w.formats[1], v_frac = w.formats[2];
    LayerStages s;
    // attention block
    s.attn_norm.assign(static_cast<size_t>(n) * C, 0);
    for (int t = 0; t < n; t++) rmsnorm(&x_in[t * C], w.attn_norm.data(), C, w.formats[3], d.eps_q40, &s.attn_norm[t * C]);
    const auto xb = quantize(s.attn_norm, s.attn_bfp_m, s.attn_bfp_e);
    lin(w.q, xb, n, &w.q_bias, static_cast<int>(q_frac), s.q);
    lin(w.k, xb, n, &w.k_bias, static_cast<int>(k_frac), s.k);
    lin(w.v, xb, n, &w.v_bias, static_cast<int>(v_frac), s.v);
    s.k_row.resize(s.k.size());
    s.v_row.resize(s.v.size());
    for (size_t i = 0; i < s.k.size(); i++) s.k_row[i] = sat_i16(s.k[i]);
    for (size_t i = 0; i < s.v.size(); i++) s.v_row[i] = sat_i16(s.v[i]);
    for (int t = 0; t < n; t++) {
        const int p = start + t;
        rope_apply(&s.k_row[t * KV], KV, d.head_dim, &cos[p * half], &sin[p * half]);
        for (int i = 0; i < KV; i++) {
            kc[static_cast<size_t>(p) * KV + i] = s.k_row[t * KV + i];
            vc[static_cast<size_t>(p) * KV + i] = s.v_row[t * KV + i];
        }
    }
    s.q_rot.resize(s.q.size());
    for (size_t i = 0; i < s.q.size(); i++) s.q_rot[i] = sat_i16(s.q[i]);
    s.attn.assign(static_cast<size_t>(n) * C, 0);
    const AttnParams ap{d.n_heads, d.n_kv_heads, d.head_dim, q_frac, k_frac, v_frac, ACT_FRAC};
    std::vector<int64_t> scores(static_cast<size_t>(d.ctx));
    std::vector<uint16_t> probs(static_cast<size_t>(d.ctx));
    for (int t = 0; t < n; t++) {
        const int p = start + t;
        rope_apply(&s.q_rot[t * C], C, d.head_dim, &cos[p * half], &sin[p * half]);
        attention(exp2, ap, &s.q_rot[t * C], kc.data(), vc.data(), p + 1, scores.data(), probs.data(), &s.attn[t * C]);
    }
    const auto ob = quantize(s.attn, s.o_bfp_m, s.o_bfp_e);
    lin(w.o, ob, n, nullptr, ACT_FRAC, s.o_proj);
    s.x_attn.resize(x_in.size());
    for (size_t i = 0; i < x_in.size(); i++) s.x_attn[i] = residual_add(x_in[i], s.o_proj[i]);
    // MLP block
    s.mlp_norm.assign(static_cast<size_t>(n) * C, 0);
    for (int t = 0; t < n; t++)
        rmsnorm(&s.x_attn[t * C], w.ffn_norm.data(), C, w.formats[4], d.eps_q40, &s.mlp_norm[t * C]);
    const auto mb = quantize(s.mlp_norm, s.mlp_bfp_m, s.mlp_bfp_e);
    lin(w.gate, mb, n, nullptr, ACT_FRAC, s.gate);
    lin(w.up, mb, n, nullptr, ACT_FRAC, s.up);
    s.swiglu.resize(static_cast<size_t>(n) * F);
    for (size_t i = 0; i < s.swiglu.size(); i++) s.swiglu[i] = swiglu(sig, s.gate[i], s.up[i]);
    const auto db = quantize(s.swiglu, s.down_bfp_m, s.down_bfp_e);
    lin(w.down, db, n, nullptr, ACT_FRAC, s.down);
    s.x_out.resize(x_in.size());
    for (size_t i = 0; i < x_in.size(); i++) s.x_out[i] = residual_add(s.x_attn[i], s.down[i]);
    return s;
}

// The lm_head derived from embedding rows, as a group table [rows][cols/8] plus e_row.
struct DerivedHead {
    int rows = 0, cols = 0;
    std::vector<ApotGroup> groups;
    std::vector<int8_t> rexp;
};

inline DerivedHead derive_head(const std::vector<int16_t>& emb, int cols, int emb_exp) {
    DerivedHead h;
    h.cols = cols;
    h.rows = static_cast<int>(emb.size() / static_cast<size_t>(cols));
    h.groups.resize(static_cast<size_t>(h.rows) * (cols / G));
    h.rexp.resize(static_cast<size_t>(h.rows));
    for (int r = 0; r < h.rows; r++)
        h.rexp[r] = derive_head_row(&emb[static_cast<size_t>(r) * cols], cols, emb_exp,
                                    &h.groups[static_cast<size_t>(r) * (cols / G)]);
    return h;
}

inline void head_logits(const DerivedHead& h, const std::vector<BfpBlock>& x, int n, std::vector<int32_t>& y) {
    y.assign(static_cast<size_t>(n) * h.rows, 0);
    linear([&](int r, int g) { return h.groups[static_cast<size_t>(r) * (h.cols / G) + g]; }, h.rexp.data(), h.rows,
           h.cols, x.data(), n, nullptr, ACT_FRAC, y.data());
}

}  // namespace edv

// EdgeDecoding operators in HLS-style C++17, written from docs/SPEC.md and the
// kernel doc comments (not from the Rust code): fixed-width integer types,
// loops over fixed sizes, the widths of the contract written at every step.
//
// Each operator has a fixed maximum shape (the accelerator's) and takes the
// actual shape as arguments bounded by it; the loops run over the fixed sizes
// with the actual size as an exit condition, as an HLS top function would.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edv {

// ---------------------------------------------------------------- constants
constexpr int ACT_FRAC = 12;          // Q12 activations (SPEC 1.2)
constexpr int G = 8;                  // input channels per weight group / BFP block
constexpr int T = 8;                  // tokens per pass over the weights
constexpr int MAX_COLS = 8184;        // 1023 groups: the 48-bit accumulator bound (SPEC 4.1)
constexpr int MAX_GROUPS = MAX_COLS / G;
constexpr int MAX_SOFTMAX_LEN = 65536;
constexpr int64_t LOG2E_Q16 = 94548;  // round(log2(e) * 2^16)

// DDR image of a weight matrix (docs/VECTORS.md section 5)
constexpr int RUN_WORDS = 23;         // 20 code words + 3 exponent words
constexpr int WORD_BYTES = 32;        // 256-bit words
constexpr int HALF_BYTES = 16;        // each port gets 16 bytes of every word
constexpr int PACKS_PER_RUN = 16;
constexpr int PACK_CODE_BITS = 8 * 8 * 5;            // 320
constexpr int EXP_BASE_BIT = 20 * 256;               // 5120

// ---------------------------------------------------------------- primitives (SPEC 1)

// floor(x / 2^s + 1/2): ties toward +infinity; s >= 64 gives 0.
inline int64_t round_shift(int64_t x, unsigned s) {
    if (s == 0) return x;
    if (s >= 64) return 0;
    return (x >> s) + ((x >> (s - 1)) & 1);  // == ((x >> (s-1)) + 1) >> 1 without overflow
}

// x * 2^-k: rounding right shift for k >= 0, saturating (int64) left shift for k < 0.
inline int64_t shift_round_sat(int64_t x, int k) {
    if (k >= 0) return round_shift(x, static_cast<unsigned>(k));
    const unsigned l = static_cast<unsigned>(-k);
    if (x == 0) return 0;
    if (l >= 63) return x > 0 ? INT64_MAX : INT64_MIN;
    const int64_t lim = INT64_MAX >> l;
    if (x > lim) return INT64_MAX;
    if (x < -lim - 1) return INT64_MIN;
    return static_cast<int64_t>(static_cast<uint64_t>(x) << l);  // exact, |x| <= lim
}

inline int64_t sat_bits(int64_t x, unsigned bits) {
    const int64_t hi = (static_cast<int64_t>(1) << (bits - 1)) - 1;
    const int64_t lo = -hi - 1;
    return x > hi ? hi : (x < lo ? lo : x);
}
inline int16_t sat_i16(int64_t x) { return static_cast<int16_t>(sat_bits(x, 16)); }
inline int32_t sat_i32(int64_t x) { return static_cast<int32_t>(sat_bits(x, 32)); }

// floor(sqrt(n)), restoring bit-by-bit square root (SPEC 1.4).
inline uint64_t isqrt_u64(uint64_t n) {
    unsigned __int128 rem = n, root = 0, bit = static_cast<unsigned __int128>(1) << 62;
    while (bit > rem) bit >>= 2;
    while (bit != 0) {
        if (rem >= root + bit) {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return static_cast<uint64_t>(root);
}

// ---------------------------------------------------------------- BFP (SPEC 3.1)

struct BfpBlock {
    int8_t m[G];  // mantissas [-128, 127]
    uint8_t e;    // exponent 0..15 (4 bits)
};

inline BfpBlock bfp_quantize_block(const int32_t x[G]) {
    int32_t hi = x[0], lo = x[0];
    for (int i = 1; i < G; i++) {
        hi = x[i] > hi ? x[i] : hi;
        lo = x[i] < lo ? x[i] : lo;
    }
    unsigned e = 0;
    while (e < 15 && (round_shift(hi, e) > 127 || round_shift(lo, e) < -128)) e++;
    BfpBlock b{};
    for (int i = 0; i < G; i++) {
        int64_t v = round_shift(x[i], e);
        b.m[i] = static_cast<int8_t>(v > 127 ? 127 : (v < -128 ? -128 : v));
    }
    b.e = static_cast<uint8_t>(e);
    return b;
}

// ---------------------------------------------------------------- weights

struct ApotGroup {
    int8_t q[G];  // 5-bit codes [-16, 15]
    uint8_t s1, s2;  // 3-bit exponents
};

inline int8_t sign_extend5(uint32_t v) { return static_cast<int8_t>(v < 16 ? v : static_cast<int>(v) - 32); }

// Bit `b` of an image stream given as its two port halves (VECTORS 5):
// word w = bits 256w.., bytes 0..15 of a word in `lo`, bytes 16..31 in `hi`.
inline uint32_t image_bit(const uint8_t* lo, const uint8_t* hi, uint64_t b) {
    const uint64_t word = b / 256, wb = b % 256;
    const uint8_t* half = wb < 128 ? lo : hi;
    const uint64_t hb = wb % 128;
    return (half[word * HALF_BYTES + hb / 8] >> (hb % 8)) & 1u;
}

inline uint32_t image_field(const uint8_t* lo, const uint8_t* hi, uint64_t b, int width) {
    uint32_t v = 0;
    for (int t = 0; t < width; t++) v |= image_bit(lo, hi, b + t) << t;
    return v;
}

// Group g of row r of a rows x cols matrix stored as a DDR image: pack
// P = (r / 8) * (cols / 8) + g, run P / 16, slot k = P % 16, row i = r % 8;
// code j at run bit 320k + 40i + 5j, s1 / s2 at 5120 + 3 (16k + 2i + 0 / 1).
inline ApotGroup image_group(const uint8_t* lo, const uint8_t* hi, int cols, int r, int g) {
    const uint64_t P = static_cast<uint64_t>(r / 8) * (cols / 8) + g;
    const uint64_t run0 = (P / PACKS_PER_RUN) * RUN_WORDS * 256;
    const int k = static_cast<int>(P % PACKS_PER_RUN), i = r % 8;
    ApotGroup a{};
    for (int j = 0; j < G; j++)
        a.q[j] = sign_extend5(image_field(lo, hi, run0 + PACK_CODE_BITS * k + 40 * i + 5 * j, 5));
    a.s1 = static_cast<uint8_t>(image_field(lo, hi, run0 + EXP_BASE_BIT + 3 * (16 * k + 2 * i), 3));
    a.s2 = static_cast<uint8_t>(image_field(lo, hi, run0 + EXP_BASE_BIT + 3 * (16 * k + 2 * i + 1), 3));
    return a;
}

// Group gi (= r * cols/8 + g) of the SPEC 2.1 packed streams: 40-bit little-endian
// code word at bytes 5gi.., 6-bit exponent field (s1 | s2 << 3) at bit 6gi.
inline ApotGroup spec_group(const uint8_t* codes, const uint8_t* exps, size_t exps_len, uint64_t gi) {
    uint64_t w = 0;
    for (int b = 0; b < 5; b++) w |= static_cast<uint64_t>(codes[gi * 5 + b]) << (8 * b);
    ApotGroup a{};
    for (int j = 0; j < G; j++) a.q[j] = sign_extend5(static_cast<uint32_t>((w >> (5 * j)) & 31));
    const uint64_t bit = gi * 6, byte = bit / 8;
    uint32_t v = exps[byte];
    if (byte + 1 < exps_len) v |= static_cast<uint32_t>(exps[byte + 1]) << 8;
    v = (v >> (bit % 8)) & 63;
    a.s1 = static_cast<uint8_t>(v & 7);
    a.s2 = static_cast<uint8_t>(v >> 3);
    return a;
}

// ---------------------------------------------------------------- linear (SPEC 4)

// One group term: p = sum m * q (16 bits), ((p << s1) + (p << s2)) << e (39 bits).
inline int64_t group_term(const BfpBlock& b, const ApotGroup& w) {
    int32_t p = 0;
    for (int i = 0; i < G; i++) p += static_cast<int32_t>(b.m[i]) * static_cast<int32_t>(w.q[i]);
    const int64_t p64 = p;
    return ((p64 << w.s1) + (p64 << w.s2)) << b.e;
}

// y = sat_i32(shift_round_sat(acc, 12 - out_frac - e_row) + bias)
inline int32_t rescale(int64_t acc, int8_t e_row, int out_frac, int32_t bias) {
    const int k = ACT_FRAC - out_frac - e_row;
    const int64_t s = shift_round_sat(acc, k);
    // saturating int64 add of the bias
    int64_t sum;
    if (__builtin_add_overflow(s, static_cast<int64_t>(bias), &sum)) sum = s > 0 ? INT64_MAX : INT64_MIN;
    return sat_i32(sum);
}

// y[t][r] for `tokens` tokens; x: [tokens][cols/8] blocks; `group(r, g)`
// fetches a weight group; rexp: [rows]; bias: [rows] or null. One pass over the
// weights per 8 tokens: each weight group feeds T accumulators.
template <class GroupOf>
inline void linear(GroupOf group, const int8_t* rexp, int rows, int cols, const BfpBlock* x, int tokens,
                   const int32_t* bias, int out_frac, int32_t* y) {
    const int groups = cols / G;
    for (int t0 = 0; t0 < tokens; t0 += T) {
        const int nt = tokens - t0 < T ? tokens - t0 : T;
        for (int r = 0; r < rows; r++) {
            int64_t acc[T] = {0, 0, 0, 0, 0, 0, 0, 0};  // 48 bits used
            for (int g = 0; g < MAX_GROUPS; g++) {
                if (g >= groups) break;
                const ApotGroup w = group(r, g);
                for (int t = 0; t < T; t++) {
                    if (t < nt) acc[t] += group_term(x[(t0 + t) * groups + g], w);
                }
            }
            for (int t = 0; t < T; t++) {
                if (t < nt) y[(t0 + t) * rows + r] = rescale(acc[t], rexp[r], out_frac, bias ? bias[r] : 0);
            }
        }
    }
}

// linear with the weights read from a DDR image (both port halves)
inline void linear_image(const uint8_t* w_lo, const uint8_t* w_hi, const int8_t* rexp, int rows, int cols,
                         const BfpBlock* x, int tokens, const int32_t* bias, int out_frac, int32_t* y) {
    linear([&](int r, int g) { return image_group(w_lo, w_hi, cols, r, g); }, rexp, rows, cols, x, tokens, bias,
           out_frac, y);
}

// linear with the weights read from the SPEC 2.1 streams
inline void linear_spec(const uint8_t* codes, const uint8_t* exps, size_t exps_len, const int8_t* rexp, int rows,
                        int cols, const BfpBlock* x, int tokens, const int32_t* bias, int out_frac, int32_t* y) {
    linear([&](int r, int g) { return spec_group(codes, exps, exps_len, static_cast<uint64_t>(r) * (cols / G) + g); },
           rexp, rows, cols, x, tokens, bias, out_frac, y);
}

// ---------------------------------------------------------------- lm_head derivation (SPEC 2.2, 2.3, 2.5)

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
    int64_t q = a / b;
    if ((a % b != 0) && (a < 0)) q--;
    return q;
}

// smallest e with 3840 * 2^e >= m, for 1 <= m < 2^40
inline int row_exp_for_int(int64_t m) {
    int e = -12;
    for (;;) {
        const bool fits = e >= 0 ? (static_cast<int64_t>(3840) << e) >= m : 3840 >= (m << (-e));
        if (fits) return e;
        e++;
    }
}

// the group search, literally: 36 pairs s1 <= s2, per-lane codes rounded half up and
// clamped, least squared error wins, ties to the smaller scale (unit 1)
inline ApotGroup search_group(const int64_t t[G]) {
    ApotGroup best{};
    int64_t best_err = INT64_MAX, best_scale = INT64_MAX;
    for (int s1 = 0; s1 <= 7; s1++) {
        for (int s2 = s1; s2 <= 7; s2++) {
            const int64_t d = (static_cast<int64_t>(1) << s1) + (static_cast<int64_t>(1) << s2);
            ApotGroup g{};
            int64_t err = 0;  // lm_head: |t| <= 3840, err < 2^29
            for (int i = 0; i < G; i++) {
                int64_t q = floor_div(2 * t[i] + d, 2 * d);
                q = q < -16 ? -16 : (q > 15 ? 15 : q);
                g.q[i] = static_cast<int8_t>(q);
                err += (t[i] - q * d) * (t[i] - q * d);
            }
            if (err < best_err || (err == best_err && d < best_scale)) {
                best_err = err;
                best_scale = d;
                g.s1 = static_cast<uint8_t>(s1);
                g.s2 = static_cast<uint8_t>(s2);
                best = g;
            }
        }
    }
    return best;
}

inline int16_t clamp10(int16_t c) { return c < -512 ? -512 : (c > 511 ? 511 : c); }

// one head row from one embedding row of `cols` codes; returns e_row
inline int8_t derive_head_row(const int16_t* row, int cols, int emb_exp, ApotGroup* out) {
    int64_t m = 0;
    for (int i = 0; i < cols; i++) {
        const int64_t a = clamp10(row[i]) < 0 ? -clamp10(row[i]) : clamp10(row[i]);
        m = a > m ? a : m;
    }
    if (m == 0) {
        for (int g = 0; g < cols / G; g++) out[g] = ApotGroup{};
        return static_cast<int8_t>(emb_exp);
    }
    const int eh = row_exp_for_int(m);  // in [-11, -2] for 10-bit codes
    for (int g = 0; g < cols / G; g++) {
        int64_t t[G];
        bool zero = true;
        for (int i = 0; i < G; i++) {
            t[i] = static_cast<int64_t>(clamp10(row[g * G + i])) * (static_cast<int64_t>(1) << (-eh));
            zero = zero && t[i] == 0;
        }
        out[g] = zero ? ApotGroup{} : search_group(t);
    }
    return static_cast<int8_t>(eh + emb_exp);
}

// ---------------------------------------------------------------- RMSNorm (SPEC 5)

inline void rmsnorm(const int32_t* x, const int16_t* gamma, int n, unsigned gamma_frac, uint64_t eps_q40,
                    int32_t* y) {
    unsigned __int128 ss = 0;  // <= 2^78
    for (int i = 0; i < n; i++) {
        const int64_t v = x[i];
        ss += static_cast<uint64_t>(v * v);
    }
    const unsigned __int128 m = ((ss << 16) / static_cast<unsigned>(n)) + eps_q40;  // mean square, Q40, < 2^79
    int b = 0;  // bit length of m
    for (unsigned __int128 t = m; t != 0; t >>= 1) b++;
    const int d = b - 29;
    const int k = d >= 0 ? d / 2 : -((-d + 1) / 2);  // floor((b - 29) / 2)
    const uint64_t mn = k >= 0 ? static_cast<uint64_t>(m >> (2 * k)) : static_cast<uint64_t>(m << (-2 * k));
    const uint64_t inv = isqrt_u64((static_cast<uint64_t>(1) << 60) / mn);  // [2^15, 2^16]
    const unsigned shift = static_cast<unsigned>(10 + static_cast<int>(gamma_frac) + k);
    for (int i = 0; i < n; i++) {
        const int64_t prod = static_cast<int64_t>(x[i]) * gamma[i] * static_cast<int64_t>(inv);  // <= 2^62
        y[i] = sat_i32(round_shift(prod, shift));
    }
}

// ---------------------------------------------------------------- softmax (SPEC 7.2)

// e = 2^(-u/256) in Q23 for a distance d >= 0 in Q(F)
inline uint64_t exp_weight(const uint16_t exp2_rom[256], int64_t d, unsigned F) {
    const int64_t dc = d < (static_cast<int64_t>(1) << 40) ? d : (static_cast<int64_t>(1) << 40);
    const int64_t u = round_shift(dc * LOG2E_Q16, 16 + F - 8);  // Q8
    const int64_t n = u >> 8;
    if (n > 24) return 0;
    return static_cast<uint64_t>(round_shift(static_cast<int64_t>(exp2_rom[u & 255]) << 8, static_cast<unsigned>(n)));
}

inline void softmax_q15(const uint16_t exp2_rom[256], const int64_t* s, int len, unsigned F, uint16_t* p) {
    int64_t mx = s[0];
    for (int j = 1; j < len; j++) mx = s[j] > mx ? s[j] : mx;
    auto dist = [&](int64_t v) -> int64_t {  // mx - v in 65 bits, clamped
        const __int128 d = static_cast<__int128>(mx) - v;
        return d > (static_cast<__int128>(1) << 40) ? (static_cast<int64_t>(1) << 40) : static_cast<int64_t>(d);
    };
    uint64_t S = 0;  // <= 2^39
    for (int j = 0; j < MAX_SOFTMAX_LEN; j++) {
        if (j >= len) break;
        S += exp_weight(exp2_rom, dist(s[j]), F);
    }
    const uint64_t R = (static_cast<uint64_t>(1) << 62) / S;  // [2^23, 2^39]
    for (int j = 0; j < MAX_SOFTMAX_LEN; j++) {
        if (j >= len) break;
        const uint64_t e = exp_weight(exp2_rom, dist(s[j]), F);
        p[j] = static_cast<uint16_t>(round_shift(static_cast<int64_t>(e * R), 47));  // e * R <= 2^62
    }
}

// ---------------------------------------------------------------- attention (SPEC 7.3)

struct AttnParams {
    int n_heads, n_kv_heads, head_dim;
    unsigned q_frac, k_frac, v_frac, out_frac;
};

// one query position over positions 0..len-1; scores/probs: scratch of len
inline void attention(const uint16_t exp2_rom[256], const AttnParams& a, const int16_t* q, const int16_t* k,
                      const int16_t* v, int len, int64_t* scores, uint16_t* probs, int32_t* out) {
    unsigned shift = 0;  // log2(sqrt(head_dim)) = trailing zeros / 2
    for (int h = a.head_dim; h > 1; h >>= 1) shift++;
    shift /= 2;
    const unsigned F = a.q_frac + a.k_frac + shift;
    const int kvd = a.n_kv_heads * a.head_dim, group = a.n_heads / a.n_kv_heads;
    const int out_shift = 15 + static_cast<int>(a.v_frac) - static_cast<int>(a.out_frac);
    for (int h = 0; h < a.n_heads; h++) {
        const int kh = h / group;
        for (int j = 0; j < len; j++) {
            int64_t s = 0;  // <= head_dim * 2^30
            for (int d = 0; d < a.head_dim; d++)
                s += static_cast<int64_t>(q[h * a.head_dim + d]) * k[j * kvd + kh * a.head_dim + d];
            scores[j] = s;
        }
        softmax_q15(exp2_rom, scores, len, F, probs);
        for (int d = 0; d < a.head_dim; d++) {
            int64_t o = 0;
            for (int j = 0; j < len; j++) o += static_cast<int64_t>(probs[j]) * v[j * kvd + kh * a.head_dim + d];
            out[h * a.head_dim + d] = sat_i32(shift_round_sat(o, out_shift));
        }
    }
}

// ---------------------------------------------------------------- RoPE (SPEC 6.2)

inline void rope_apply(int16_t* x, int width, int head_dim, const int16_t* cos_row, const int16_t* sin_row) {
    const int half = head_dim / 2;
    for (int h0 = 0; h0 < width; h0 += head_dim) {
        for (int i = 0; i < half; i++) {
            const int64_t a = x[h0 + i], b = x[h0 + i + half], c = cos_row[i], s = sin_row[i];
            x[h0 + i] = sat_i16(round_shift(a * c - b * s, 14));
            x[h0 + i + half] = sat_i16(round_shift(b * c + a * s, 14));
        }
    }
}

// ---------------------------------------------------------------- SiLU (SPEC 8)

inline int32_t sigmoid_q15(const uint16_t sig_rom[257], int32_t x) {
    if (x < -32768) return 0;
    if (x >= 32768) return 32768;
    const int32_t idx = x + 32768;  // 16 bits
    const int32_t i = idx >> 8, f = idx & 255;
    return (sig_rom[i] * (256 - f) + sig_rom[i + 1] * f + 128) >> 8;
}

inline int32_t silu_q12(const uint16_t sig_rom[257], int32_t x) {
    return static_cast<int32_t>(round_shift(static_cast<int64_t>(x) * sigmoid_q15(sig_rom, x), 15));
}

inline int32_t swiglu(const uint16_t sig_rom[257], int32_t gate, int32_t up) {
    return sat_i32(round_shift(static_cast<int64_t>(silu_q12(sig_rom, gate)) * up, ACT_FRAC));
}

// ---------------------------------------------------------------- residual, embedding, argmax (SPEC 9, 10)

inline int32_t residual_add(int32_t a, int32_t d) { return sat_i32(static_cast<int64_t>(a) + d); }

inline int32_t embed(int16_t code, int emb_exp) {
    const int16_t c = code < -512 ? -512 : (code > 511 ? 511 : code);
    return static_cast<int32_t>(shift_round_sat(c, -(ACT_FRAC + emb_exp)));
}

// lowest index wins ties: strict > scan
inline uint32_t argmax_i32(const int32_t* x, int n) {
    uint32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = static_cast<uint32_t>(i);
    return best;
}

}  // namespace edv

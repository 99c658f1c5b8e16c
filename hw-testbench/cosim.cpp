// Co-simulation: the testbench's own HLS-style operators (edv_ops.hpp, written
// from docs/SPEC.md) against the golden model linked as a library
// (capi/include/edgedecoding.h, libedgedecoding.a), on seeded random stimuli
// with the adversarial extremes mixed in: every output compared exactly.
// With --golden and --model it also runs the library's decoder (prefill,
// parity decode, stage probe) through the C ABI and compares it with the
// stored golden vectors of the same model.
//
//   cosim [--cases N] [--seed S] [--only op1,op2] [--golden DIR --model FILE.edq]
//
// Exit status 0 only if every comparison matched.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "edgedecoding.h"
#include "edv_ops.hpp"

namespace {

// ---------------------------------------------------------------- stimuli

struct Rng {
    uint64_t s;
    uint64_t next() {  // splitmix64
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return n ? next() % n : 0; }
    int64_t range(int64_t lo, int64_t hi) {  // inclusive
        return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
    }
    bool one_in(uint64_t n) { return below(n) == 0; }
};

// A value of `bits` bits (two's complement): 1 in 8 an extreme (the range
// ends, 0, +-1, +-2^k, +-2^k +- 1), else random with a random magnitude.
int64_t any_bits(Rng& r, unsigned bits) {
    const int64_t hi = bits >= 64 ? INT64_MAX : (static_cast<int64_t>(1) << (bits - 1)) - 1;
    const int64_t lo = bits >= 64 ? INT64_MIN : -hi - 1;
    if (r.one_in(8)) {
        const unsigned k = static_cast<unsigned>(r.below(bits - 1));
        const int64_t p = static_cast<int64_t>(1) << k;
        const int64_t pick[] = {lo, lo + 1, hi, hi - 1, 0, 1, -1, p, -p, p - 1, p + 1, -p - 1, -p + 1};
        int64_t v = pick[r.below(sizeof pick / sizeof pick[0])];
        return v < lo ? lo : (v > hi ? hi : v);
    }
    const int64_t v = static_cast<int64_t>(r.next()) >> r.below(64);  // random magnitude
    if (bits >= 64) return v;
    return v < lo ? lo : (v > hi ? hi : v);
}
int64_t any_i64(Rng& r) { return any_bits(r, 64); }
int32_t any_i32(Rng& r) { return static_cast<int32_t>(any_bits(r, 32)); }
int16_t any_i16(Rng& r) { return static_cast<int16_t>(any_bits(r, 16)); }

// ---------------------------------------------------------------- bookkeeping

struct Op {
    std::string name, unit;
    uint64_t cases = 0, values = 0, bad = 0;
    double secs = 0;
};

std::vector<Op> g_ops;
Op* g_cur = nullptr;
int g_reports = 0;

template <class... A>
void mismatch(const char* fmt, A... a) {
    g_cur->bad++;
    if (g_reports < 30) {
        g_reports++;
        std::fprintf(stderr, "MISMATCH %s: ", g_cur->name.c_str());
        std::fprintf(stderr, fmt, a...);
        std::fprintf(stderr, "\n");
    }
}

// the library's status must be OK for valid stimuli
bool ok(edgedecoding_status st, const char* what) {
    if (st == EDGEDECODING_OK) return true;
    mismatch("%s returned %s: %s", what, edgedecoding_status_name(st), edgedecoding_last_error());
    return false;
}

template <class T>
void cmp(const T* want, const T* got, size_t n, const char* what) {
    g_cur->values += n;
    for (size_t i = 0; i < n; i++) {
        if (want[i] != got[i]) {
            mismatch("%s[%zu]: testbench %lld, library %lld", what, i, static_cast<long long>(want[i]),
                     static_cast<long long>(got[i]));
            return;
        }
    }
}
template <class T>
void cmp1(T want, T got, const char* what) { cmp(&want, &got, 1, what); }

uint16_t g_exp2[256], g_sig[257];

// ---------------------------------------------------------------- operators

void op_round_shift(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        const int64_t x = any_i64(r);
        const unsigned s = static_cast<unsigned>(r.one_in(4) ? r.below(71) : r.below(20));
        cmp1(edv::round_shift(x, s), edgedecoding_round_shift(x, s), "y");
        g_cur->cases++;
    }
}

void op_shift_round_sat(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        const int64_t x = any_i64(r);
        const int k = static_cast<int>(r.range(-70, 70));
        cmp1(edv::shift_round_sat(x, k), edgedecoding_shift_round_sat(x, k), "y");
        g_cur->cases++;
    }
}

void op_div_round(Rng& r, uint64_t n) {
    const int64_t lim = (static_cast<int64_t>(1) << 61) - 1;
    for (uint64_t c = 0; c < n; c++) {
        int64_t a = any_i64(r), b = any_i64(r);
        a = a > lim ? lim : (a < -lim ? -lim : a);
        b = b < 1 ? 1 + static_cast<int64_t>(r.below(1000)) : (b > lim ? lim : b);
        int64_t got = 0;
        if (ok(edgedecoding_div_round(a, b, &got), "div_round")) cmp1(edv::floor_div(2 * a + b, 2 * b), got, "y");
        g_cur->cases++;
    }
}

void op_sat(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        const int64_t x = any_i64(r);
        const unsigned bits = static_cast<unsigned>(r.range(1, 63));
        int64_t got = 0;
        if (ok(edgedecoding_sat_bits(x, bits, &got), "sat_bits")) cmp1(edv::sat_bits(x, bits), got, "sat_bits");
        cmp1(edv::sat_i16(x), edgedecoding_sat_i16(x), "sat_i16");
        cmp1(edv::sat_i32(x), edgedecoding_sat_i32(x), "sat_i32");
        const int64_t b = any_i64(r);
        int64_t want;
        if (__builtin_add_overflow(x, b, &want)) want = x > 0 ? INT64_MAX : INT64_MIN;
        cmp1(want, edgedecoding_sat_add_i64(x, b), "sat_add_i64");
        g_cur->cases++;
    }
}

void op_isqrt(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        uint64_t x = r.next() >> r.below(64);
        if (r.one_in(8)) {
            const unsigned p = static_cast<unsigned>(r.below(64));
            x = (static_cast<uint64_t>(1) << p) + static_cast<uint64_t>(r.range(-1, 1));
        }
        if (c < 4096) x = c;  // the small ones exhaustively
        cmp1(edv::isqrt_u64(x), edgedecoding_isqrt_u64(x), "r");
        g_cur->cases++;
    }
}

// one BFP block: random magnitudes, the e-thresholds, the saturation band
void block_stimulus(Rng& r, int32_t x[8]) {
    const int mode = static_cast<int>(r.below(4));
    const unsigned e = static_cast<unsigned>(r.below(16));
    for (int i = 0; i < 8; i++) {
        if (mode == 0) {
            x[i] = any_i32(r);
        } else if (mode == 1) {  // around the thresholds of exponent e: 255 * 2^(e-1) - 1, -257 * 2^(e-1)
            const int64_t t = e == 0 ? (r.one_in(2) ? 127 : -128)
                                     : (r.one_in(2) ? 255 * (static_cast<int64_t>(1) << (e - 1)) - 1
                                                    : -257 * (static_cast<int64_t>(1) << (e - 1)));
            x[i] = static_cast<int32_t>(t + r.range(-2, 2));
        } else if (mode == 2) {  // exact halves at shift e
            x[i] = static_cast<int32_t>((r.range(-128, 127) * 2 + 1) * (e ? (static_cast<int64_t>(1) << (e - 1)) : 1));
        } else {
            x[i] = static_cast<int32_t>(r.range(-(static_cast<int64_t>(1) << (4 + e + 8)), static_cast<int64_t>(1) << (4 + e + 8)));
        }
    }
}

void op_bfp_quantize(Rng& r, uint64_t n) {
    int32_t x[64];
    edgedecoding_bfp_block blk[8];
    for (uint64_t c = 0; c < n; c++) {
        block_stimulus(r, x);
        const edv::BfpBlock want = edv::bfp_quantize_block(x);
        int8_t m[8];
        uint8_t e = 0;
        if (ok(edgedecoding_bfp_quantize_block(x, m, &e), "bfp_quantize_block")) {
            cmp(want.m, m, 8, "m");
            cmp1(want.e, e, "e");
        }
        if (c % 64 == 0) {  // the vector form, 8 blocks
            for (int b = 1; b < 8; b++) block_stimulus(r, x + 8 * b);
            if (ok(edgedecoding_bfp_quantize(x, 64, blk, 8), "bfp_quantize")) {
                for (int b = 0; b < 8; b++) {
                    const edv::BfpBlock w = edv::bfp_quantize_block(x + 8 * b);
                    cmp(w.m, blk[b].m, 8, "m");
                    cmp1(w.e, blk[b].e, "e");
                }
            }
        }
        g_cur->cases++;
    }
}

void op_linear_rescale(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        int64_t acc = r.one_in(4) ? any_i64(r) : any_bits(r, 48);
        if (r.one_in(8)) acc = (acc >> 20) * (1 << 20) + (static_cast<int64_t>(1) << 19) * (r.one_in(2) ? 1 : -1);  // ties
        const int8_t e_row = static_cast<int8_t>(r.one_in(4) ? any_bits(r, 8) : r.range(-20, 8));
        const int out_frac = static_cast<int>(r.range(0, 30));
        const int32_t bias = r.one_in(2) ? 0 : any_i32(r);
        int32_t got = 0;
        if (ok(edgedecoding_linear_rescale(acc, e_row, out_frac, bias, &got), "linear_rescale"))
            cmp1(edv::rescale(acc, e_row, out_frac, bias), got, "y");
        g_cur->cases++;
    }
}

void op_group_term(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        edgedecoding_bfp_block b{};
        edgedecoding_apot_group g{};
        edv::BfpBlock eb{};
        edv::ApotGroup eg{};
        for (int i = 0; i < 8; i++) {
            b.m[i] = eb.m[i] = static_cast<int8_t>(r.one_in(8) ? -128 : r.range(-128, 127));
            g.codes[i] = eg.q[i] = static_cast<int8_t>(r.one_in(8) ? -16 : r.range(-16, 15));
        }
        b.e = eb.e = static_cast<uint8_t>(r.below(16));
        g.s1 = eg.s1 = static_cast<uint8_t>(r.below(8));
        g.s2 = eg.s2 = static_cast<uint8_t>(r.below(8));
        int64_t got = 0;
        if (ok(edgedecoding_linear_group_term(&b, &g, &got), "group_term")) cmp1(edv::group_term(eb, eg), got, "term");
        g_cur->cases++;
    }
}

// random SPEC 2.1 streams: any bits are valid codes (5-bit) and exponents (3-bit)
void random_streams(Rng& r, int rows, int cols, std::vector<uint8_t>& codes, std::vector<uint8_t>& exps,
                    std::vector<int8_t>& rexp) {
    size_t cl = 0, el = 0;
    edgedecoding_packed_lens(static_cast<size_t>(rows), static_cast<size_t>(cols), &cl, &el);
    codes.resize(cl);
    exps.resize(el);
    rexp.resize(static_cast<size_t>(rows));
    for (auto& b : codes) b = static_cast<uint8_t>(r.next());
    for (auto& b : exps) b = static_cast<uint8_t>(r.next());
    for (auto& e : rexp) e = static_cast<int8_t>(r.one_in(8) ? any_bits(r, 8) : r.range(-24, 4));
}

void op_linear(Rng& r, uint64_t n) {
    std::vector<uint8_t> codes, exps;
    std::vector<int8_t> rexp;
    for (uint64_t c = 0; c < n; c++) {
        const bool big = c % 20000 == 19999;  // now and then the widest input, all extremes
        const int rows = big ? 3 : static_cast<int>(r.range(1, 12));
        const int cols = big ? edv::MAX_COLS : 8 * static_cast<int>(r.range(1, 6));
        const int tokens = big ? 2 : static_cast<int>(r.range(1, 11));
        const int groups = cols / 8;
        random_streams(r, rows, cols, codes, exps, rexp);
        std::vector<edgedecoding_bfp_block> xb(static_cast<size_t>(tokens) * groups);
        std::vector<edv::BfpBlock> eb(xb.size());
        for (size_t i = 0; i < xb.size(); i++) {
            for (int j = 0; j < 8; j++)
                xb[i].m[j] = eb[i].m[j] = static_cast<int8_t>(big ? -128 : (r.one_in(8) ? -128 : r.range(-128, 127)));
            xb[i].e = eb[i].e = static_cast<uint8_t>(big ? 15 : r.below(16));
        }
        if (big) {  // q = -16, s1 = s2 = 7: every code field 10000, every exponent field 111111
            for (size_t i = 0; i < codes.size(); i += 5) {
                const uint64_t w = 0x8421084210ull;  // 8 fields of 10000b
                for (int b = 0; b < 5; b++) codes[i + b] = static_cast<uint8_t>(w >> (8 * b));
            }
            std::fill(exps.begin(), exps.end(), 0xff);
            std::fill(rexp.begin(), rexp.end(), static_cast<int8_t>(r.one_in(2) ? 127 : -128));
        }
        std::vector<int32_t> bias;
        if (r.one_in(2)) {
            bias.resize(static_cast<size_t>(rows));
            for (auto& b : bias) b = any_i32(r);
        }
        const int out_frac = static_cast<int>(r.range(0, 30));
        std::vector<int32_t> want(static_cast<size_t>(tokens) * rows), got(want.size());
        edv::linear_spec(codes.data(), exps.data(), exps.size(), rexp.data(), rows, cols, eb.data(), tokens,
                         bias.empty() ? nullptr : bias.data(), out_frac, want.data());
        const edgedecoding_apot_matrix w{static_cast<size_t>(rows), static_cast<size_t>(cols), codes.data(), codes.size(),
                                         exps.data(), exps.size(), rexp.data(), rexp.size()};
        if (ok(edgedecoding_linear(&w, xb.data(), xb.size(), bias.empty() ? nullptr : bias.data(), bias.size(),
                                   out_frac, got.data(), got.size()),
               "linear"))
            cmp(want.data(), got.data(), want.size(), "y");
        g_cur->cases++;
    }
}

void op_apot_unpack(Rng& r, uint64_t n) {
    std::vector<uint8_t> codes, exps;
    std::vector<int8_t> rexp;
    int rows = 0, cols = 0;
    for (uint64_t c = 0; c < n; c++) {
        if (c % 64 == 0) {
            rows = static_cast<int>(r.range(1, 9));
            cols = 8 * static_cast<int>(r.range(1, 9));
            random_streams(r, rows, cols, codes, exps, rexp);
        }
        const int row = static_cast<int>(r.below(static_cast<uint64_t>(rows)));
        const int g = static_cast<int>(r.below(static_cast<uint64_t>(cols / 8)));
        const edv::ApotGroup want = edv::spec_group(codes.data(), exps.data(), exps.size(),
                                                    static_cast<uint64_t>(row) * (cols / 8) + g);
        const edgedecoding_apot_matrix w{static_cast<size_t>(rows), static_cast<size_t>(cols), codes.data(), codes.size(),
                                         exps.data(), exps.size(), rexp.data(), rexp.size()};
        edgedecoding_apot_group got{};
        int8_t e = 0;
        if (ok(edgedecoding_unpack_group(&w, static_cast<size_t>(row), static_cast<size_t>(g), &got, &e), "unpack")) {
            cmp(want.q, got.codes, 8, "codes");
            cmp1(want.s1, got.s1, "s1");
            cmp1(want.s2, got.s2, "s2");
            cmp1(rexp[static_cast<size_t>(row)], e, "e_row");
        }
        // pack it again: the library's packer gives the same stream bytes
        if (c % 64 == 63) {
            std::vector<uint8_t> c2(codes.size(), 0), e2(exps.size(), 0);
            for (int rr = 0; rr < rows; rr++)
                for (int gg = 0; gg < cols / 8; gg++) {
                    const size_t gi = static_cast<size_t>(rr) * (cols / 8) + gg;
                    const edv::ApotGroup a = edv::spec_group(codes.data(), exps.data(), exps.size(), gi);
                    edgedecoding_apot_group p{};
                    std::memcpy(p.codes, a.q, 8);
                    p.s1 = a.s1;
                    p.s2 = a.s2;
                    ok(edgedecoding_pack_group(c2.data(), c2.size(), e2.data(), e2.size(), gi, &p), "pack");
                }
            cmp(codes.data(), c2.data(), codes.size(), "packed codes");
            // the exponent stream's padding bits are zero after packing
            const size_t used = static_cast<size_t>(rows) * (cols / 8) * 6;
            for (size_t b = 0; b < used; b++) {
                const int want_bit = (exps[b / 8] >> (b % 8)) & 1, got_bit = (e2[b / 8] >> (b % 8)) & 1;
                if (want_bit != got_bit) {
                    mismatch("packed exponent bit %zu", b);
                    break;
                }
            }
        }
        g_cur->cases++;
    }
}

void op_search_group(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        int64_t t[8];
        const int64_t lim = r.one_in(4) ? 3840 : (static_cast<int64_t>(1) << r.range(1, 20));
        for (auto& v : t) v = r.one_in(6) ? (r.one_in(2) ? lim : -lim) : r.range(-lim, lim);
        if (r.one_in(8)) for (auto& v : t) v = t[0];  // ties between scales
        const edv::ApotGroup want = edv::search_group(t);
        edgedecoding_apot_group got{};
        if (ok(edgedecoding_search_group(t, 8, 1, &got), "search_group")) {
            cmp(want.q, got.codes, 8, "codes");
            cmp1(want.s1, got.s1, "s1");
            cmp1(want.s2, got.s2, "s2");
        }
        g_cur->cases++;
    }
}

void op_lm_head_derive(Rng& r, uint64_t n) {
    int16_t row[64];
    edv::ApotGroup want[8];
    edgedecoding_apot_group got[8];
    for (uint64_t c = 0; c < n; c++) {
        const int cols = 8 * static_cast<int>(r.range(1, 4));
        const int mag = static_cast<int>(r.one_in(4) ? 512 : (1 << r.range(0, 9)));
        for (int i = 0; i < cols; i++) {
            row[i] = static_cast<int16_t>(r.one_in(10) ? 0 : r.range(-mag, mag - 1));
            if (r.one_in(64)) row[i] = any_i16(r);  // outside 10 bits: clamped
        }
        if (r.one_in(16)) std::memset(row, 0, sizeof row);
        const int emb_exp = static_cast<int>(r.range(-30, 8));
        const int8_t we = edv::derive_head_row(row, cols, emb_exp, want);
        int8_t ge = 0;
        if (ok(edgedecoding_lm_head_derive_row(row, static_cast<size_t>(cols), emb_exp, got,
                                               static_cast<size_t>(cols / 8), &ge),
               "lm_head_derive_row")) {
            cmp1(we, ge, "e_row");
            for (int g = 0; g < cols / 8; g++) {
                cmp(want[g].q, got[g].codes, 8, "codes");
                cmp1(want[g].s1, got[g].s1, "s1");
                cmp1(want[g].s2, got[g].s2, "s2");
            }
        }
        g_cur->cases++;
    }
}

void op_rmsnorm(Rng& r, uint64_t n) {
    std::vector<int32_t> x, want, got;
    std::vector<int16_t> gamma;
    for (uint64_t c = 0; c < n; c++) {
        const int len = c % 50000 == 49999 ? 896 : static_cast<int>(r.range(1, 24));
        x.resize(static_cast<size_t>(len));
        gamma.resize(x.size());
        want.assign(x.size(), 0);
        got.assign(x.size(), 0);
        const unsigned mb = static_cast<unsigned>(r.range(1, 32));
        for (auto& v : x) v = static_cast<int32_t>(r.one_in(16) ? any_i32(r) : any_bits(r, mb));
        if (r.one_in(32)) std::fill(x.begin(), x.end(), 0);
        for (auto& g : gamma) g = any_i16(r);
        const unsigned gf = static_cast<unsigned>(r.below(16));
        const uint64_t eps = r.one_in(4) ? EDGEDECODING_EPS_1E6_Q40
                                         : (static_cast<uint64_t>(1) << 20) + r.below((static_cast<uint64_t>(1) << 40) - (1u << 20) + 1);
        edv::rmsnorm(x.data(), gamma.data(), len, gf, eps, want.data());
        if (ok(edgedecoding_rmsnorm(x.data(), x.size(), gamma.data(), gamma.size(), gf, eps, got.data(), got.size()),
               "rmsnorm"))
            cmp(want.data(), got.data(), want.size(), "y");
        g_cur->cases++;
    }
}

void op_rope(Rng& r, uint64_t n) {
    int16_t x[256], want[256], cs[64], sn[64];
    for (uint64_t c = 0; c < n; c++) {
        const int hd = 2 * static_cast<int>(r.range(1, 32));
        const int heads = static_cast<int>(r.range(1, 4));
        const int w = hd * heads;
        for (int i = 0; i < hd / 2; i++) {
            cs[i] = static_cast<int16_t>(r.one_in(8) ? (r.one_in(2) ? 16384 : -16384) : r.range(-16384, 16384));
            sn[i] = static_cast<int16_t>(r.one_in(8) ? (r.one_in(2) ? 16384 : -16384) : r.range(-16384, 16384));
        }
        for (int i = 0; i < w; i++) x[i] = want[i] = any_i16(r);
        edv::rope_apply(want, w, hd, cs, sn);
        if (ok(edgedecoding_rope_apply(x, static_cast<size_t>(w), static_cast<size_t>(hd), cs,
                                       static_cast<size_t>(hd / 2), sn, static_cast<size_t>(hd / 2)),
               "rope_apply"))
            cmp(want, x, static_cast<size_t>(w), "y");
        g_cur->cases++;
    }
}

void op_exp_weight(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        int64_t d = any_i64(r);
        d = d < 0 ? (d == INT64_MIN ? INT64_MAX : -d) : d;
        const unsigned F = static_cast<unsigned>(r.below(36));
        uint64_t got = 0;
        if (ok(edgedecoding_exp_weight(d, F, &got), "exp_weight")) cmp1(edv::exp_weight(g_exp2, d, F), got, "e");
        g_cur->cases++;
    }
}

void op_softmax(Rng& r, uint64_t n) {
    std::vector<int64_t> s;
    std::vector<uint16_t> want, got;
    for (uint64_t c = 0; c < n; c++) {
        const int len = c % 100000 == 99999 ? 65536 : (c % 10000 == 9999 ? 1024 : static_cast<int>(r.range(1, 24)));
        s.resize(static_cast<size_t>(len));
        const unsigned F = static_cast<unsigned>(r.below(36));
        const unsigned mb = static_cast<unsigned>(r.range(2, 64));
        for (auto& v : s) v = r.one_in(16) ? any_i64(r) : any_bits(r, mb);
        if (r.one_in(16)) for (auto& v : s) v = s[0];  // all equal
        want.assign(s.size(), 0);
        got.assign(s.size(), 0);
        edv::softmax_q15(g_exp2, s.data(), len, F, want.data());
        if (ok(edgedecoding_softmax_q15(s.data(), s.size(), F, got.data(), got.size()), "softmax"))
            cmp(want.data(), got.data(), want.size(), "p");
        g_cur->cases++;
    }
}

void op_attention(Rng& r, uint64_t n) {
    std::vector<int16_t> q, k, v;
    std::vector<int64_t> s1, s2;
    std::vector<uint16_t> p1, p2;
    std::vector<int32_t> want, got;
    for (uint64_t c = 0; c < n; c++) {
        const int kvh = static_cast<int>(r.range(1, 2));
        const int nh = kvh * static_cast<int>(r.range(1, 3));
        const int hd = r.one_in(4) ? 16 : 4;
        const int len = c % 20000 == 19999 ? 1024 : static_cast<int>(r.range(1, 8));
        edv::AttnParams a{nh, kvh, hd, static_cast<unsigned>(r.below(16)), static_cast<unsigned>(r.below(16)),
                          static_cast<unsigned>(r.below(16)), static_cast<unsigned>(r.below(31))};
        const int extra = static_cast<int>(r.below(3));  // caches may hold more positions than len
        q.resize(static_cast<size_t>(nh * hd));
        k.resize(static_cast<size_t>((len + extra) * kvh * hd));
        v.resize(k.size());
        const bool ext = r.one_in(16);
        for (auto& x : q) x = ext ? (r.one_in(2) ? 32767 : -32768) : any_i16(r);
        for (auto& x : k) x = ext ? (r.one_in(2) ? 32767 : -32768) : any_i16(r);
        for (auto& x : v) x = ext ? (r.one_in(2) ? 32767 : -32768) : any_i16(r);
        s1.assign(static_cast<size_t>(len), 0);
        s2 = s1;
        p1.assign(s1.size(), 0);
        p2 = p1;
        want.assign(q.size(), 0);
        got.assign(q.size(), 0);
        edv::attention(g_exp2, a, q.data(), k.data(), v.data(), len, s1.data(), p1.data(), want.data());
        const edgedecoding_attn_params ap{static_cast<uint32_t>(nh), static_cast<uint32_t>(kvh), static_cast<uint32_t>(hd),
                                          a.q_frac, a.k_frac, a.v_frac, a.out_frac};
        if (ok(edgedecoding_attention(&ap, q.data(), q.size(), k.data(), k.size(), v.data(), v.size(),
                                      static_cast<size_t>(len), s2.data(), s2.size(), p2.data(), p2.size(), got.data(),
                                      got.size()),
               "attention"))
            cmp(want.data(), got.data(), want.size(), "out");
        g_cur->cases++;
    }
}

void op_silu(Rng& r, uint64_t n) {
    for (uint64_t c = 0; c < n; c++) {
        // every Q12 value of [-32, 32) first (the whole table and both clamps), then random
        const int32_t x = c < 262144 ? static_cast<int32_t>(c) - 131072 : any_i32(r);
        cmp1(edv::sigmoid_q15(g_sig, x), edgedecoding_sigmoid_q15(x), "sigmoid");
        cmp1(edv::silu_q12(g_sig, x), edgedecoding_silu_q12(x), "silu");
        g_cur->cases++;
    }
}

void op_swiglu(Rng& r, uint64_t n) {
    int32_t g[16], u[16], want[16], got[16];
    for (uint64_t c = 0; c < n; c++) {
        const int len = static_cast<int>(r.range(1, 16));
        for (int i = 0; i < len; i++) {
            g[i] = r.one_in(2) ? static_cast<int32_t>(r.range(-70000, 70000)) : any_i32(r);
            u[i] = any_i32(r);
            want[i] = edv::swiglu(g_sig, g[i], u[i]);
        }
        if (ok(edgedecoding_swiglu(g, static_cast<size_t>(len), u, static_cast<size_t>(len), got, static_cast<size_t>(len)),
               "swiglu"))
            cmp(want, got, static_cast<size_t>(len), "y");
        g_cur->cases++;
    }
}

void op_residual_add(Rng& r, uint64_t n) {
    int32_t a[16], d[16], want[16];
    for (uint64_t c = 0; c < n; c++) {
        const int len = static_cast<int>(r.range(1, 16));
        for (int i = 0; i < len; i++) {
            a[i] = any_i32(r);
            d[i] = any_i32(r);
            want[i] = edv::residual_add(a[i], d[i]);
        }
        if (ok(edgedecoding_residual_add(a, static_cast<size_t>(len), d, static_cast<size_t>(len)), "residual_add"))
            cmp(want, a, static_cast<size_t>(len), "y");
        g_cur->cases++;
    }
}

void op_embed(Rng& r, uint64_t n) {
    int16_t row[16];
    int32_t want[16], got[16];
    for (uint64_t c = 0; c < n; c++) {
        const int len = static_cast<int>(r.range(1, 16));
        const int e = static_cast<int>(r.range(-30, 8));
        for (int i = 0; i < len; i++) {
            row[i] = r.one_in(16) ? any_i16(r) : static_cast<int16_t>(r.range(-512, 511));
            want[i] = edv::embed(row[i], e);
        }
        if (ok(edgedecoding_embed_row(row, static_cast<size_t>(len), e, got, static_cast<size_t>(len)), "embed_row"))
            cmp(want, got, static_cast<size_t>(len), "y");
        g_cur->cases++;
    }
}

void op_argmax(Rng& r, uint64_t n) {
    int32_t x[64];
    for (uint64_t c = 0; c < n; c++) {
        const int len = static_cast<int>(r.range(1, 64));
        const int mode = static_cast<int>(r.below(3));
        for (int i = 0; i < len; i++)
            x[i] = mode == 0 ? any_i32(r) : (mode == 1 ? static_cast<int32_t>(r.range(-3, 3)) : (r.one_in(2) ? INT32_MIN : INT32_MAX));
        size_t got = 0;
        if (ok(edgedecoding_argmax_i32(x, static_cast<size_t>(len), &got), "argmax"))
            cmp1(static_cast<uint64_t>(edv::argmax_i32(x, len)), static_cast<uint64_t>(got), "idx");
        g_cur->cases++;
    }
}

// The ROMs: the library's normative tables against the SPEC recipes computed
// here with <cmath> (the tables hold no exact tie, so any accurate libm agrees).
void op_rom(Rng&, uint64_t) {
    uint16_t want_e[256], want_s[257];
    for (int f = 0; f < 256; f++) want_e[f] = static_cast<uint16_t>(std::round(32768.0 * std::exp2(-f / 256.0)));
    for (int i = 0; i <= 256; i++) want_s[i] = static_cast<uint16_t>(std::round(32768.0 / (1.0 + std::exp(-(-8.0 + i / 16.0)))));
    cmp(want_e, g_exp2, 256, "EXP2_NEG_Q15");
    cmp(want_s, g_sig, 257, "SIGMOID_Q15");
    g_cur->cases += 2;
}

struct Entry {
    const char* name;
    const char* unit;
    void (*fn)(Rng&, uint64_t);
    uint64_t scale;  // cases = N * scale / 4 (cheap scalar ops run more)
};

const Entry kOps[] = {
    {"round_shift", "(x, s)", op_round_shift, 4},
    {"shift_round_sat", "(x, k)", op_shift_round_sat, 4},
    {"div_round", "(a, b)", op_div_round, 4},
    {"sat", "x: sat_bits, sat_i16, sat_i32, sat_add_i64", op_sat, 4},
    {"isqrt", "n", op_isqrt, 4},
    {"bfp_quantize", "block of 8 (+ 8-block vectors)", op_bfp_quantize, 4},
    {"linear_group_term", "group", op_group_term, 4},
    {"linear_rescale", "accumulator", op_linear_rescale, 4},
    {"linear", "call: 1-12 rows x 8-48 cols x 1-11 tokens (+ 8184 cols)", op_linear, 4},
    {"apot_unpack_pack", "group (+ whole-matrix repack)", op_apot_unpack, 4},
    {"search_group", "8 targets", op_search_group, 4},
    {"lm_head_derive", "row of 8-32 codes", op_lm_head_derive, 4},
    {"rmsnorm", "vector of 1-24 (+ 896)", op_rmsnorm, 4},
    {"rope", "1-4 heads of 2-64", op_rope, 4},
    {"exp_weight", "(d, F)", op_exp_weight, 4},
    {"softmax", "row of 1-24 (+ 1024, 65536)", op_softmax, 4},
    {"attention", "query: 1-6 heads, len 1-8 (+ 1024)", op_attention, 4},
    {"sigmoid_silu", "x (exhaustive over [-32, 32) first)", op_silu, 4},
    {"swiglu", "call of 1-16 pairs", op_swiglu, 4},
    {"residual_add", "call of 1-16", op_residual_add, 4},
    {"embed", "call of 1-16 codes", op_embed, 4},
    {"argmax", "vector of 1-64", op_argmax, 4},
    {"rom", "table", op_rom, 0},
};

// ---------------------------------------------------------------- model level

template <class T>
std::vector<T> load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<T> v(bytes.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
    return v;
}

struct Capture {
    // (layer, stage name) -> values of positions 0.. (appended in position order), as int64
    std::map<std::pair<int, std::string>, std::vector<int64_t>> layer;
    std::vector<int32_t> logits;  // every token's logits, in order
    size_t first_pos = 0;
};

void capture(void* user, const edgedecoding_stage_data* s) {
    Capture& c = *static_cast<Capture*>(user);
    if (s->site == EDGEDECODING_SITE_HEAD) {
        const int32_t* v = static_cast<const int32_t*>(s->values);
        c.logits.insert(c.logits.end(), v, v + s->len);
        return;
    }
    if (s->site != EDGEDECODING_SITE_LAYER) return;
    auto& out = c.layer[{s->layer, s->name}];
    switch (s->dtype) {
        case EDGEDECODING_DTYPE_I32:
            for (size_t i = 0; i < s->len; i++) out.push_back(static_cast<const int32_t*>(s->values)[i]);
            break;
        case EDGEDECODING_DTYPE_I16:
            for (size_t i = 0; i < s->len; i++) out.push_back(static_cast<const int16_t*>(s->values)[i]);
            break;
        case EDGEDECODING_DTYPE_BFP: {  // mantissas under the name, exponents under name + "_e"
            auto& e = c.layer[{s->layer, std::string(s->name) + "_e"}];
            auto& m = c.layer[{s->layer, std::string(s->name) + "_m"}];
            const edgedecoding_bfp_block* b = static_cast<const edgedecoding_bfp_block*>(s->values);
            for (size_t i = 0; i < s->len; i++) {
                for (int j = 0; j < 8; j++) m.push_back(b[i].m[j]);
                e.push_back(b[i].e);
            }
            break;
        }
        default:
            break;
    }
}

// index.txt lines of one operator: case name -> (dir, params)
std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> index_of(const std::string& golden,
                                                                                            const std::string& op) {
    std::ifstream in(golden + "/index.txt");
    if (!in) throw std::runtime_error("cannot open " + golden + "/index.txt");
    std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        std::string o, name, dir, kv;
        ss >> o >> name >> dir;
        if (o != op) continue;
        std::map<std::string, std::string> p;
        while (ss >> kv) {
            const auto eq = kv.find('=');
            if (eq != std::string::npos) p[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        out[name] = {dir, p};
    }
    return out;
}

template <class T>
void cmp_file(const std::string& path, const std::vector<int64_t>& got, size_t from, const char* what) {
    const std::vector<T> want = load<T>(path);
    if (got.size() < from + want.size()) {
        mismatch("%s: %zu values captured, need %zu", path.c_str(), got.size(), from + want.size());
        return;
    }
    std::vector<int64_t> w(want.begin(), want.end());
    cmp(w.data(), got.data() + from, w.size(), what);
}

// The decoder through the C ABI against the suite's model-level vectors:
// the prefill chunks and parity decode steps (logits, next tokens), and
// every layer stage of the first chunk captured by the probe.
void model_level(const std::string& golden, const std::string& model, uint32_t backend) {
    edgedecoding_model* m = nullptr;
    if (!ok(edgedecoding_model_open(model.c_str(), backend, 0, &m), "model_open")) return;
    edgedecoding_model_info info{};
    ok(edgedecoding_model_get_info(m, &info), "get_info");
    const size_t V = info.n_kept;
    Capture cap;
    const auto pre = index_of(golden, "prefill");
    for (const char* name : {"chunk0", "chunk1", "chunk2"}) {
        auto it = pre.find(name);
        if (it == pre.end()) {
            mismatch("prefill/%s missing from the suite", name);
            continue;
        }
        const std::string dir = golden + "/" + it->second.first;
        const auto toks = load<uint32_t>(dir + "/tokens.bin");
        cap.logits.clear();
        uint32_t next = 0;
        if (!ok(edgedecoding_model_prefill_probed(m, toks.data(), toks.size(), capture, &cap, &next), "prefill_probed"))
            continue;
        cmp_file<int32_t>(dir + "/logits.bin", std::vector<int64_t>(cap.logits.begin(), cap.logits.end()), 0, "prefill logits");
        const auto nt = load<uint32_t>(dir + "/next_token.bin");
        if (!nt.empty()) cmp1(nt.back(), next, "prefill next_token");
        g_cur->cases++;
    }
    // every stage of every layer for positions 0..7 (model/layers/chunk0/layerLL)
    const auto layers = index_of(golden, "decoder_layer");
    int checked = 0;
    for (const auto& [name, dp] : layers) {
        const auto& p = dp.second;
        if (p.count("start") == 0 || p.at("start") != "0") continue;
        const int l = std::stoi(p.at("layer"));
        const std::string dir = golden + "/" + dp.first;
        for (const char* st : {"attn_norm", "q", "k", "v", "attn", "o_proj", "x_attn", "mlp_norm", "gate", "up",
                               "swiglu", "down", "x_out"})
            cmp_file<int32_t>(dir + "/" + st + ".bin", cap.layer[{l, st}], 0, st);
        for (const char* st : {"q_rot", "k_row", "v_row"}) cmp_file<int16_t>(dir + "/" + st + ".bin", cap.layer[{l, st}], 0, st);
        for (const char* st : {"attn_bfp", "o_bfp", "mlp_bfp", "down_bfp"}) {
            cmp_file<int8_t>(dir + "/" + st + "_m.bin", cap.layer[{l, std::string(st) + "_m"}], 0, st);
            cmp_file<uint8_t>(dir + "/" + st + "_e.bin", cap.layer[{l, std::string(st) + "_e"}], 0, st);
        }
        checked++;
        g_cur->cases++;
    }
    if (checked == 0) mismatch("no decoder_layer case at start 0 in the suite");
    // parity decode steps, in order
    const auto dec = index_of(golden, "decode");
    for (int s = 0;; s++) {
        auto it = dec.find("step" + std::to_string(s));
        if (it == dec.end()) {
            if (s == 0) mismatch("no decode steps in the suite");
            break;
        }
        const std::string dir = golden + "/" + it->second.first;
        const auto chunk = load<uint32_t>(dir + "/chunk_tokens.bin");
        const int slot = std::stoi(it->second.second.at("slot"));
        uint32_t next = 0;
        if (!ok(edgedecoding_model_decode_parity(m, chunk[static_cast<size_t>(slot)], &next), "decode_parity")) break;
        std::vector<int32_t> logits(V);
        ok(edgedecoding_model_logits(m, logits.data(), V), "logits");
        cmp_file<int32_t>(dir + "/logits.bin", std::vector<int64_t>(logits.begin(), logits.end()), 0, "decode logits");
        cmp1(load<uint32_t>(dir + "/next_token.bin").at(0), next, "decode next_token");
        g_cur->cases++;
    }
    ok(edgedecoding_model_close(m), "close");
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t cases = 1000000, seed = 1;
    std::string only, golden, model;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--cases") cases = std::stoull(val());
        else if (a == "--seed") seed = std::stoull(val());
        else if (a == "--only") only = "," + val() + ",";
        else if (a == "--golden") golden = val();
        else if (a == "--model") model = val();
        else {
            std::fprintf(stderr, "usage: cosim [--cases N] [--seed S] [--only a,b] [--golden DIR --model FILE.edq]\n");
            return 2;
        }
    }
    if (edgedecoding_abi_version() != EDGEDECODING_ABI_VERSION) {
        std::fprintf(stderr, "cosim: library ABI %u, header ABI %u\n", edgedecoding_abi_version(), EDGEDECODING_ABI_VERSION);
        return 2;
    }
    if (edgedecoding_rom_exp2_neg_q15(g_exp2, 256) != EDGEDECODING_OK || edgedecoding_rom_sigmoid_q15(g_sig, 257) != EDGEDECODING_OK) {
        std::fprintf(stderr, "cosim: cannot read the ROMs: %s\n", edgedecoding_last_error());
        return 2;
    }
    std::printf("co-simulation: testbench operators (edv_ops.hpp) vs libedgedecoding %s (ABI %u), seed %llu, %llu cases per operator\n",
                edgedecoding_version(), edgedecoding_abi_version(), static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(cases));
    try {
        for (const Entry& e : kOps) {
            if (!only.empty() && only.find("," + std::string(e.name) + ",") == std::string::npos) continue;
            g_ops.push_back(Op{e.name, e.unit});
            g_cur = &g_ops.back();
            Rng r{seed * 0x100000001b3ull + std::hash<std::string>{}(e.name)};
            const auto t0 = std::chrono::steady_clock::now();
            e.fn(r, cases * e.scale / 4);
            g_cur->secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        if (!golden.empty() && !model.empty()) {
            for (uint32_t be : {EDGEDECODING_BACKEND_REFERENCE, EDGEDECODING_BACKEND_FAST}) {
                g_ops.push_back(Op{be == EDGEDECODING_BACKEND_FAST ? "model (fast backend)" : "model (reference backend)",
                                   "prefill chunk / decode step / layer of chunk0 vs golden"});
                g_cur = &g_ops.back();
                const auto t0 = std::chrono::steady_clock::now();
                model_level(golden, model, be);
                g_cur->secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cosim: %s\n", e.what());
        return 2;
    }
    uint64_t bad = 0, total = 0;
    std::printf("\n| operator | cases | values compared | mismatches | seconds | a case is |\n|---|---:|---:|---:|---:|---|\n");
    for (const Op& o : g_ops) {
        std::printf("| %s | %llu | %llu | %llu | %.2f | %s |\n", o.name.c_str(), static_cast<unsigned long long>(o.cases),
                    static_cast<unsigned long long>(o.values), static_cast<unsigned long long>(o.bad), o.secs, o.unit.c_str());
        bad += o.bad;
        total += o.cases;
    }
    std::printf("\ncosim: %llu cases, %llu mismatches -> %s\n", static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(bad), bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}

"""Every operator and the decoder against the golden vectors the CLI writes
(docs/VECTORS.md): bit for bit."""

import numpy as np
import pytest

import edgedecoding as ed

eq = np.testing.assert_array_equal


def test_rom_tables(golden):
    (c,) = [c for c in golden.cases("rom") if c["case"] == "exp2_neg_q15"]
    eq(ed.exp2_neg_q15_table(), golden.tensor(c, "exp2_neg_q15").ravel())
    (c,) = [c for c in golden.cases("rom") if c["case"] == "sigmoid_q15"]
    eq(ed.sigmoid_q15_table(), golden.tensor(c, "sigmoid_q15").ravel())
    cfg = golden.manifest["info"]["config"]
    cos, sin = ed.rope_table(cfg["rope_theta"], cfg["head_dim"], cfg["ctx"])
    for name, table in [("rope_cos_q14", cos), ("rope_sin_q14", sin)]:
        (c,) = [c for c in golden.cases("rom") if c["case"] == name]
        eq(table.ravel(), golden.tensor(c, name).ravel())


def test_round_shift(golden):
    for c in golden.cases("round_shift"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        eq(ed.round_shift(t("x"), t("s")), t("y"), err_msg=c["case"])


def test_shift_round_sat(golden):
    for c in golden.cases("shift_round_sat"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        eq(ed.shift_round_sat(t("x"), t("k")), t("y"), err_msg=c["case"])


def test_isqrt(golden):
    for c in golden.cases("isqrt"):
        eq(ed.isqrt(golden.tensor(c, "n")), golden.tensor(c, "r"), err_msg=c["case"])


def test_bfp_quantize(golden):
    for c in golden.cases("bfp_quantize"):
        m, e = ed.bfp_quantize(golden.tensor(c, "x"))
        eq(m, golden.tensor(c, "m"), err_msg=c["case"])
        eq(e, golden.tensor(c, "e"), err_msg=c["case"])
        # dequantized blocks are within half a step of the input, unless saturated
        x = golden.tensor(c, "x").astype(np.int64)
        err = np.abs(ed.bfp_dequantize(m, e) - x).reshape(-1, 8)
        step = (1 << e.astype(np.int64)).reshape(-1, 1)
        sat = (np.abs(x).reshape(-1, 8) >= 127 << 15).any(axis=1)
        assert (err[~sat] * 2 <= step[~sat]).all(), c["case"]


def test_linear(golden):
    for c in golden.cases("linear"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        p = c["params"]
        bias = t("bias") if p["has_bias"] else None
        y = ed.linear(t("w_codes"), t("w_exps"), t("w_rexp"), t("x_m"), t("x_e"), bias, p["out_frac"])
        eq(y, t("y"), err_msg=c["case"])
        # the same weights packed and unpacked, the same activations quantized
        codes, exps = ed.apot_pack(t("w_q"), t("w_s1"), t("w_s2"))
        eq(codes, t("w_codes"))
        eq(exps, t("w_exps"))
        q, s1, s2 = ed.apot_unpack(t("w_codes"), t("w_exps"), p["rows"], p["cols"])
        eq(q, t("w_q"))
        eq(s1, t("w_s1"))
        eq(s2, t("w_s2"))
        m, e = ed.bfp_quantize(t("x"))
        eq(m, t("x_m"))
        eq(e, t("x_e"))


def test_linear_is_group_terms_and_rescale(golden):
    """linear == sum of group_term over groups, then rescale (SPEC §4.1, §4.2)."""
    (c,) = [c for c in golden.cases("linear") if c["case"] == "rand_40x96_t3"]
    t = lambda n: golden.tensor(c, n)  # noqa: E731
    p = c["params"]
    g = p["cols"] // 8
    m = t("x_m").reshape(p["tokens"], 1, g, 8)
    e = t("x_e").reshape(p["tokens"], 1, g)
    q = np.broadcast_to(t("w_q").reshape(1, p["rows"], g, 8), (p["tokens"], p["rows"], g, 8))
    s1 = np.broadcast_to(t("w_s1").reshape(1, p["rows"], g), (p["tokens"], p["rows"], g))
    s2 = np.broadcast_to(t("w_s2").reshape(1, p["rows"], g), (p["tokens"], p["rows"], g))
    m = np.broadcast_to(m, q.shape)
    e = np.broadcast_to(e, s1.shape)
    acc = ed.group_term(m, e, q, s1, s2).sum(axis=-1)
    rexp = np.broadcast_to(t("w_rexp"), acc.shape)
    eq(ed.rescale(acc, rexp, p["out_frac"]), t("y"))


def test_lm_head_derive(golden):
    for c in golden.cases("lm_head_derive"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        q, s1, s2, e_row = ed.lm_head_derive(t("emb"), c["params"]["emb_exp"])
        for a, n in [(q, "q"), (s1, "s1"), (s2, "s2"), (e_row, "e_row")]:
            eq(a, t(n), err_msg=f"{c['case']} {n}")


def test_rmsnorm(golden):
    for c in golden.cases("rmsnorm"):
        p = c["params"]
        y = ed.rmsnorm(golden.tensor(c, "x"), golden.tensor(c, "gamma"), p["gamma_frac"], p["eps_q40"])
        eq(y, golden.tensor(c, "y"), err_msg=c["case"])


def test_rope(golden):
    for c in golden.cases("rope"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        p = c["params"]
        eq(ed.rope_apply(t("x"), p["head_dim"], t("cos"), t("sin")), t("y"), err_msg=c["case"])
        cos, sin = ed.rope_table(p["theta"], p["head_dim"], p["table_positions"])
        pos = t("pos").ravel()
        eq(cos[pos], t("cos"))
        eq(sin[pos], t("sin"))


def test_softmax(golden):
    for c in golden.cases("softmax"):
        p = golden.tensor(c, "probs")
        eq(ed.softmax(golden.tensor(c, "scores"), c["params"]["score_frac"]), p, err_msg=c["case"])


def test_attention(golden):
    for c in golden.cases("attention"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        p = c["params"]
        args = [p[k] for k in ("n_heads", "n_kv_heads", "head_dim", "q_frac", "k_frac", "v_frac", "out_frac")]
        k = t("k_cache").reshape(p["len"], -1)
        v = t("v_cache").reshape(p["len"], -1)
        eq(ed.attention(t("q").ravel(), k, v, *args).reshape(t("out").shape), t("out"), err_msg=c["case"])


def test_silu(golden):
    for c in golden.cases("silu"):
        x = golden.tensor(c, "x")
        eq(ed.sigmoid(x), golden.tensor(c, "sigmoid"), err_msg=c["case"])
        eq(ed.silu(x), golden.tensor(c, "silu"), err_msg=c["case"])


def test_swiglu(golden):
    for c in golden.cases("swiglu"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        eq(ed.swiglu(t("gate"), t("up")), t("y"), err_msg=c["case"])


def test_residual_add(golden):
    for c in golden.cases("residual_add"):
        t = lambda n: golden.tensor(c, n)  # noqa: E731
        acc = t("acc")
        before = acc.copy()
        eq(ed.residual_add(acc, t("delta")), t("y"), err_msg=c["case"])
        eq(acc, before)  # inputs are not modified


def test_embed(golden):
    for c in golden.cases("embed"):
        y = ed.embed(golden.tensor(c, "codes"), c["params"]["emb_exp"])
        eq(y, golden.tensor(c, "y"), err_msg=c["case"])


def test_argmax(golden):
    for c in golden.cases("argmax"):
        x = golden.tensor(c, "x")
        eq(ed.argmax(x), golden.tensor(c, "idx"), err_msg=c["case"])
        assert ed.argmax(x[0]) == golden.tensor(c, "idx")[0]


def _by_case(golden, op):
    return {c["case"]: c for c in golden.cases(op)}


def test_prefill_and_parity_decode(golden, small):
    """The prefill chunks then the accelerator-parity decode steps, one
    sequence on one decoder (VECTORS §4)."""
    small.reset()
    pre = _by_case(golden, "prefill")
    for name in ["chunk0", "chunk1", "chunk2"]:
        c = pre[name]
        logits = small.prefill(golden.tensor(c, "tokens"), all_logits=True)
        eq(logits, golden.tensor(c, "logits"), err_msg=name)
        eq(ed.argmax(logits), golden.tensor(c, "argmax"))
        assert small.next_token() == golden.tensor(c, "next_token")[-1]
    dec = _by_case(golden, "decode")
    for s in range(len(dec)):
        c = dec[f"step{s}"]
        token = golden.tensor(c, "chunk_tokens").ravel()[c["params"]["slot"]]
        assert small.pos == c["params"]["position"]
        eq(small.decode(int(token), parity=True), golden.tensor(c, "logits").ravel(), err_msg=f"step{s}")
        assert small.next_token() == golden.tensor(c, "next_token").ravel()[0]


def test_stage_probe_equals_layer_vectors(golden, small):
    """The probed stages of the first chunk equal the golden layer and chunk
    files (which come from the same probe in Rust)."""
    chunks = _by_case(golden, "decoder_chunk")
    c = chunks["chunk0"]
    tokens = golden.tensor(c, "tokens").ravel()
    small.reset()
    probed = small.prefill_probed(tokens)
    n = len(tokens)
    assert probed["embedding"]["start"] == 0
    eq(probed["embedding"]["rows"].ravel(), golden.tensor(c, "rows").ravel())
    eq(probed["embedding"]["x_embed"], golden.tensor(c, "x_embed"))
    for name in ["final_norm", "final_bfp_m", "final_bfp_e"]:
        eq(probed["final"][name][:n], golden.tensor(c, name), err_msg=name)
    eq(probed["head"]["logits"][:n], golden.tensor(c, "logits"))
    layers = [lc for lc in golden.cases("decoder_layer") if lc["case"].startswith("chunk0_")]
    assert len(layers) == len(probed["layers"])
    compared = 0
    for lc in layers:
        got = probed["layers"][lc["params"]["layer"]]
        for f in golden.manifest["files"]:
            if f["operator"] == "decoder_layer" and f["case"] == lc["case"] and f["role"] == "out":
                eq(got[f["name"]][:n], golden.tensor(lc, f["name"]), err_msg=f"{lc['case']} {f['name']}")
                compared += 1
        eq(got["x_in"][:n], golden.tensor(lc, "x_in"))
    assert compared >= 4 * 20


def test_parity_probe_reports_the_chunk(small):
    small.reset()
    small.prefill([72, 101, 108, 108, 111, 32, 119, 111, 114, 108])  # 10 positions
    probed = small.decode_parity_probed(100)
    # the chunk of positions 8..15 is re-run; logits for position 10 only
    assert probed["layers"][0]["start"] == 8
    assert probed["layers"][0]["x_in"].shape[0] == 8
    assert probed["head"]["start"] == 10
    assert probed["head"]["logits"].shape == (1, small.config["n_kept"])
    eq(probed["head"]["logits"][0], small.logits())

"""Operators refuse bad input with ValueError (never a crash), and accept any
integer dtype whose values fit."""

import numpy as np
import pytest

import edgedecoding as ed


def test_dtype_is_checked_not_cast_silently():
    with pytest.raises(ValueError, match="integer"):
        ed.sigmoid(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="integer"):
        ed.sigmoid(np.array([True]))
    with pytest.raises(ValueError, match="does not fit int32"):
        ed.sigmoid(np.array([2**31], dtype=np.int64))
    with pytest.raises(ValueError, match="does not fit int8"):
        ed.bfp_dequantize(np.array([300] * 8), np.array([0]))
    with pytest.raises(ValueError, match="float32"):
        ed.apot_quantize(np.zeros((2, 8), dtype=np.float64))
    # exact casts are fine: int8 into int32, lists of small ints
    assert ed.sigmoid(np.array([0], dtype=np.int8))[0] == 16384
    assert ed.silu([4096]).dtype == np.int32
    # non-contiguous views are read correctly
    x = np.arange(32, dtype=np.int32).reshape(4, 8)[:, ::2]
    np.testing.assert_array_equal(ed.sigmoid(x), ed.sigmoid(np.ascontiguousarray(x)))


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="multiple of 8"):
        ed.bfp_quantize(np.zeros(12, dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        ed.bfp_dequantize(np.zeros(16, dtype=np.int8), np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        ed.swiglu(np.zeros(4, dtype=np.int32), np.zeros(5, dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        ed.residual_add(np.zeros(4, dtype=np.int32), np.zeros(5, dtype=np.int32))
    with pytest.raises(ValueError, match="gamma"):
        ed.rmsnorm(np.zeros(8, dtype=np.int32), np.zeros(7, dtype=np.int16), 12)
    with pytest.raises(ValueError):
        ed.rope_apply(np.zeros(64, dtype=np.int16), 64, np.zeros(31, dtype=np.int16), np.zeros(31, dtype=np.int16))
    with pytest.raises(ValueError):
        ed.rope_apply(np.zeros(60, dtype=np.int16), 64, np.zeros(32, dtype=np.int16), np.zeros(32, dtype=np.int16))
    with pytest.raises(ValueError):
        ed.argmax(np.zeros(0, dtype=np.int32))
    with pytest.raises(ValueError):
        ed.softmax(np.zeros((2, 0), dtype=np.int64), 8)
    with pytest.raises(ValueError):
        ed.apot_unpack(np.zeros(4, dtype=np.uint8), np.zeros(1, dtype=np.uint8), 1, 8)
    with pytest.raises(ValueError):
        ed.linear(np.zeros(5, np.uint8), np.zeros(1, np.uint8), np.zeros(1, np.int8), np.zeros((2, 16), np.int8), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="k_cache"):
        ed.attention(np.zeros(64, np.int16), np.zeros((3, 60), np.int16), np.zeros((3, 60), np.int16), 1, 1, 64, 8, 8, 8)


def test_ranges_are_checked():
    with pytest.raises(ValueError, match="bits"):
        ed.sat_bits(np.array([5]), 0)
    with pytest.raises(ValueError, match="bits"):
        ed.sat_bits(np.array([5]), 64)
    with pytest.raises(ValueError, match="s"):
        ed.round_shift(np.array([5]), -1)
    with pytest.raises(ValueError, match="b"):
        ed.div_round(np.array([5]), 0)
    with pytest.raises(ValueError, match="bfp exponent"):
        ed.bfp_dequantize(np.zeros(8, np.int8), np.array([16], np.uint8))
    with pytest.raises(ValueError, match="bfp exponent"):
        ed.linear(np.zeros(5, np.uint8), np.zeros(1, np.uint8), np.zeros(1, np.int8), np.zeros(8, np.int8), np.array([16], np.uint8))
    with pytest.raises(ValueError, match="out_frac"):
        ed.linear(np.zeros(5, np.uint8), np.zeros(1, np.uint8), np.zeros(1, np.int8), np.zeros(8, np.int8), np.zeros(1, np.uint8), out_frac=31)
    with pytest.raises(ValueError, match="code"):
        ed.apot_pack(np.full((1, 8), 16, np.int8), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match="s1"):
        ed.apot_pack(np.zeros((1, 8), np.int8), np.full((1, 1), 8, np.uint8), np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match="gamma_frac"):
        ed.rmsnorm(np.zeros(8, np.int32), np.zeros(8, np.int16), 16)
    with pytest.raises(ValueError, match="eps_q40"):
        ed.rmsnorm(np.zeros(8, np.int32), np.zeros(8, np.int16), 12, eps_q40=0)
    with pytest.raises(ValueError, match="eps_q40"):
        ed.inv_rms(np.zeros(8, np.int32), eps_q40=0)
    with pytest.raises(ValueError, match="score_frac"):
        ed.softmax(np.zeros(4, np.int64), 36)
    with pytest.raises(ValueError, match="head_dim"):
        ed.attention(np.zeros(48, np.int16), np.zeros((3, 48), np.int16), np.zeros((3, 48), np.int16), 1, 1, 48, 8, 8, 8)
    with pytest.raises(ValueError, match="emb_exp"):
        ed.embed(np.zeros(4, np.int16), 9)
    with pytest.raises(ValueError, match="emb_exp"):
        ed.lm_head_derive(np.zeros((2, 8), np.int16), -31)
    with pytest.raises(ValueError, match="theta"):
        ed.rope_table(1, 64, 4)
    with pytest.raises(ValueError, match=r"\|t\|"):
        ed.search_group(np.full(8, 2**40), 1)
    with pytest.raises(ValueError, match="unit"):
        ed.search_group(np.zeros(8, np.int64), 0)
    with pytest.raises(ValueError, match="d"):
        ed.exp_weight(np.array([-1]), 8)


def test_spec_examples():
    # SPEC §1.1
    np.testing.assert_array_equal(ed.round_shift(np.array([5, -5, 1, -1, -3]), 1), [3, -2, 1, 0, -1])
    np.testing.assert_array_equal(ed.round_shift(np.array([6, -6, -7]), 2), [2, -1, -2])
    # SPEC §2.3: t = [6; 8], unit 1 -> (0, 0), q = 3
    q, s1, s2 = ed.search_group(np.full(8, 6), 1)
    assert list(q) == [3] * 8 and s1 == 0 and s2 == 0
    # SPEC §3.1
    m, e = ed.bfp_quantize(np.array([12288, 0, 0, 0, 0, 0, 0, -8192], np.int32))
    assert e[0] == 7 and m[0] == 96 and m[7] == -64
    m, e = ed.bfp_quantize(np.full(8, 2**31 - 1, np.int32))
    assert e[0] == 15 and (m == 127).all()
    # SPEC §4.3 worked example
    w = np.array([[0.12, -0.05, 0.031, 0, 0.2, -0.11, 0.07, 0.015, -0.3, 0.25, 0.004, -0.06, 0.09, 0, -0.021, 0.14]], np.float32)
    q, s1, s2, e_row = ed.apot_quantize(w)
    assert e_row[0] == -13
    assert list(q[0, :8]) == [7, -3, 2, 0, 12, -7, 4, 1] and (s1[0, 0], s2[0, 0]) == (3, 7)
    codes, exps = ed.apot_pack(q, s1, s2)
    assert bytes(codes) == bytes.fromhex("a70bc03209b1815ec03f") and bytes(exps) == bytes.fromhex("7b0f")
    x = np.array([6144, -1024, 12288, 512, -8192, 3072, 0, 4096, 40960, -2048, 1229, 9011, -4506, 205, 16384, -30720], np.int32)
    xm, xe = ed.bfp_quantize(x)
    y = ed.linear(codes, exps, e_row, xm, xe, bias=np.array([2048], np.int32), out_frac=12)
    assert y.tolist() == [-16730]
    # SPEC §7.4 worked example
    p = ed.softmax(np.array([524288, 262144, -1048576, 524288, -4718592]), 19)
    assert p.tolist() == [12338, 7477, 614, 12338, 1]
    # SPEC §10: ties go to the lowest index
    assert ed.argmax(np.array([1, 5, 5, 2], np.int32)) == 1
    assert ed.isqrt(np.array([2**64 - 1], np.uint64))[0] == 2**32 - 1
    assert ed.sat_i8(np.array([300, -300])).tolist() == [127, -128]


def test_negative_counts_are_value_errors():
    with pytest.raises(ValueError, match="rows"):
        ed.apot_unpack(np.zeros(5, np.uint8), np.zeros(1, np.uint8), -1, 8)
    with pytest.raises(ValueError, match="positions"):
        ed.rope_table(10000, 64, -1)
    with pytest.raises(ValueError, match="q_frac"):
        ed.attention(np.zeros(64, np.int16), np.zeros((1, 64), np.int16), np.zeros((1, 64), np.int16), 1, 1, 64, -1, 8, 8)
    with pytest.raises(ValueError, match="length"):
        ed.attention(np.zeros(64, np.int16), np.zeros((1, 64), np.int16), np.zeros((1, 64), np.int16), 1, 1, 64, 8, 8, 8, length=2)

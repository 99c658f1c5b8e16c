"""cocotb: the SV BFP block quantizer (SPEC §3.1) against the golden model,
`edgedecoding.bfp_quantize`, on edge and random blocks."""

import random

import cocotb
import numpy as np
from cocotb.triggers import Timer

import edgedecoding as ed

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def edge_blocks():
    """Every exponent's thresholds (the largest max / smallest min that fit
    and the next value, which does not), exact halves at every exponent,
    zeros and the int32 extremes."""
    out = [[0] * 8, [I32_MAX] * 8, [I32_MIN] * 8, [I32_MIN, I32_MAX] * 4, [-1] * 8, [1] * 8]
    for k in range(16):
        top = 127 if k == 0 else 255 * 2 ** (k - 1) - 1
        bot = -128 if k == 0 else -257 * 2 ** (k - 1)
        for h in (top, top + 1):
            out.append([h, 0, 1, -1, 2, -2, 3, -3])
        for lo in (bot, bot - 1):
            out.append([lo, 0, 1, -1, 2, -2, 3, -3])
        if k > 0:
            half = 2 ** (k - 1)
            # lanes at exact halves, both signs, with the block's exponent k
            out.append([top, -(2 * half + half), -half, half, 3 * half, -5 * half, bot, 0])
    return [[max(I32_MIN, min(I32_MAX, v)) for v in b] for b in out]


def random_blocks(n, rng):
    out = []
    for _ in range(n):
        scale = 2 ** rng.randrange(0, 31)
        b = [rng.randrange(-scale, scale + 1) for _ in range(8)]
        if rng.random() < 0.3:
            # exact halves of the block's own exponent
            e = rng.randrange(1, 16)
            b = [(2 * rng.randrange(-127, 128) + 1) * 2 ** (e - 1) for _ in range(8)]
        out.append([max(I32_MIN, min(I32_MAX, v)) for v in b])
    return out


def pack(block):
    return sum((v & 0xFFFFFFFF) << (32 * i) for i, v in enumerate(block))


def unpack_m(word):
    lanes = [(word >> (8 * i)) & 0xFF for i in range(8)]
    return [v - 256 if v >= 128 else v for v in lanes]


@cocotb.test()
async def bfp_block_matches_golden_model(dut):
    rng = random.Random(20261129)
    blocks = edge_blocks() + random_blocks(3000, rng)
    want_m, want_e = ed.bfp_quantize(np.array(blocks, dtype=np.int32))
    bad = []
    for i, b in enumerate(blocks):
        dut.x.value = pack(b)
        await Timer(1, units="ns")
        got_e = int(dut.e.value)
        got_m = unpack_m(int(dut.m.value))
        if got_e != int(want_e[i, 0]) or got_m != want_m[i].tolist():
            bad.append(i)
            if len(bad) <= 5:
                dut._log.error(
                    "block %d %s: DUT e=%d m=%s, golden e=%d m=%s",
                    i, b, got_e, got_m, want_e[i, 0], want_m[i].tolist(),
                )
    dut._log.info("%d blocks, %d mismatches", len(blocks), len(bad))
    assert not bad, f"{len(bad)} of {len(blocks)} blocks differ from the golden model"

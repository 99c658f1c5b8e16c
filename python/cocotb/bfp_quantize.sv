// The block-floating-point quantizer of one block of 8 activations (SPEC §3.1),
// written from the SPEC as the hardware would be: max / min of 8, 15 + 15
// constant comparisons and a priority encoder for the exponent, then one
// rounding shift (ties toward +infinity) and a clamp per lane. Combinational.
//
// BROKEN = 1 is a deliberately wrong variant for the testbench to catch: it
// rounds ties away from zero (C's round()), which the SPEC's one rounding rule
// excludes; it differs only on negative exact halves.
`timescale 1ns / 1ps
module bfp_quantize #(
    parameter bit BROKEN = 1'b0
) (
    input  logic [8*32-1:0] x,  // lane i = x[32*i +: 32]: int32, Q12
    output logic [ 8*8-1:0] m,  // lane i = m[8*i +: 8]: int8 mantissa
    output logic [     3:0] e   // the block's exponent, 0..15
);
  logic signed [31:0] xs[8];
  logic signed [31:0] hi, lo;

  always_comb begin
    for (int i = 0; i < 8; i++) xs[i] = x[32*i+:32];
    hi = xs[0];
    lo = xs[0];
    for (int i = 1; i < 8; i++) begin
      if (xs[i] > hi) hi = xs[i];
      if (xs[i] < lo) lo = xs[i];
    end
  end

  // Exponent k fits the block: k = 0 iff hi <= 127 and lo >= -128; k >= 1 iff
  // hi <= 255 * 2^(k-1) - 1 and lo >= -257 * 2^(k-1) (SPEC §3.1).
  function automatic logic fits(input logic signed [31:0] h, input logic signed [31:0] l,
                                input int k);
    logic signed [47:0] h48, l48, top, bot;
    h48 = 48'(h);
    l48 = 48'(l);
    if (k == 0) return h48 <= 127 && l48 >= -128;
    top = (48'sd255 <<< (k - 1)) - 48'sd1;
    bot = -(48'sd257 <<< (k - 1));
    return h48 <= top && l48 >= bot;
  endfunction

  always_comb begin
    e = 4'd15;  // the priority encoder: the smallest k that fits, else 15
    for (int k = 14; k >= 0; k--) if (fits(hi, lo, k)) e = 4'(k);
  end

  // round_shift(v, s) = (v >> s) + ((v >> (s-1)) & 1), ties up (SPEC §1.1),
  // then clamp to [-128, 127].
  function automatic logic signed [7:0] mantissa(input logic signed [31:0] v, input logic [3:0] s);
    logic signed [33:0] v34, r, a;
    v34 = 34'(v);
    if (s == 0) r = v34;
    else if (!BROKEN || v34 >= 0) r = (v34 >>> s) + ((v34 >>> (s - 1)) & 34'sd1);
    else begin
      a = -v34;  // half away from zero: round the magnitude up, negate
      r = -((a >>> s) + ((a >>> (s - 1)) & 34'sd1));
    end
    if (r > 127) return 8'sd127;
    if (r < -128) return -8'sd128;
    return 8'(r);
  endfunction

  always_comb for (int i = 0; i < 8; i++) m[8*i+:8] = mantissa(xs[i], e);
endmodule

// Synthesizable RTL of two EdgeDecoding operators, written from docs/SPEC.md:
//   edv_bfp_quantize    one block of 8 Q12 values -> 8 int8 mantissas + 4-bit exponent (SPEC 3.1)
//   edv_linear_rescale  the linear layer's output stage: 48-bit accumulator -> int32 (SPEC 4.2)
// Both purely combinational. `define EDV_BROKEN_ROUNDING flips the one rounding
// rule of the contract (ties toward -inf instead of +inf): the DPI-C
// testbench must catch it.

/* verilator lint_off DECLFILENAME */  // two small modules in one file

// round_shift(v, k) = floor(v / 2^k + 1/2), ties up, as ((v >>> (k-1)) + 1) >>> 1
// (SPEC 1.1); evaluated in the width of the caller's context.
`ifdef EDV_BROKEN_ROUNDING
`define EDV_ROUND(v, k) (-((((-(v)) >>> ((k) - 1)) + 1) >>> 1))
`else
`define EDV_ROUND(v, k) ((((v) >>> ((k) - 1)) + 1) >>> 1)
`endif

module edv_bfp_quantize (
    input  logic signed [31:0] x [8],
    output logic signed [7:0]  m [8],
    output logic        [3:0]  e
);
  logic signed [31:0] hi, lo;

  always_comb begin
    hi = x[0];
    lo = x[0];
    for (int i = 1; i < 8; i++) begin
      if (x[i] > hi) hi = x[i];
      if (x[i] < lo) lo = x[i];
    end
  end

  // e fits iff round_shift(hi, e) <= 127 and round_shift(lo, e) >= -128, i.e.
  // hi <= 127, lo >= -128 for e = 0 and hi <= 255 * 2^(e-1) - 1,
  // lo >= -257 * 2^(e-1) for e >= 1: 15 + 15 constant comparisons.
  function automatic logic fits(input logic signed [31:0] h, input logic signed [31:0] l, input int k);
    logic signed [40:0] th, tl;
    if (k == 0) return h <= 127 && l >= -128;
    th = (41'sd255 <<< (k - 1)) - 41'sd1;
    tl = -(41'sd257 <<< (k - 1));
    return 41'(h) <= th && 41'(l) >= tl;
  endfunction

  // priority encoder: the smallest e that fits, 15 if none
  always_comb begin
    e = 4'd15;
    for (int k = 14; k >= 0; k--)
      if (fits(hi, lo, k)) e = 4'(k);
  end

  function automatic logic signed [7:0] mant(input logic signed [31:0] v, input logic [3:0] k);
    logic signed [32:0] r, v33;
    v33 = 33'(v);
    if (k == 0) r = v33;
    else r = `EDV_ROUND(v33, 33'(k));
    if (r > 33'sd127) return 8'sd127;  // only when e = 15 does not fit
    if (r < -33'sd128) return -8'sd128;
    return r[7:0];
  endfunction

  always_comb
    for (int i = 0; i < 8; i++) m[i] = mant(x[i], e);
endmodule

module edv_linear_rescale (
    input  logic signed [47:0] acc,       // 48-bit accumulator, units of 2^(e_row - 12)
    input  logic signed [7:0]  e_row,
    input  logic        [4:0]  out_frac,  // 0..30
    input  logic signed [31:0] bias,      // Q(out_frac)
    output logic signed [31:0] y          // Q(out_frac)
);
  // y = sat_i32(shift_round_sat(acc, k) + bias), k = 12 - out_frac - e_row in [-145, 140]
  logic signed [9:0] k;
  logic signed [80:0] a81, shifted;
  logic signed [81:0] sum;

  always_comb begin
    k = 10'sd12 - $signed({5'b0, out_frac}) - 10'(e_row);
    a81 = 81'(acc);
    if (k > 0) begin
      shifted = `EDV_ROUND(a81, 81'(k));  // k >= 48 gives 0 (sign bits only)
    end else if (acc == 48'sd0) begin
      shifted = '0;
    end else if (-k >= 10'sd33) begin
      // |acc * 2^-k| >= 2^33: the output saturates whatever the bias (SPEC 4.2)
      shifted = acc < 0 ? -(81'sd1 <<< 40) : (81'sd1 <<< 40);
    end else begin
      shifted = a81 <<< (-k);  // exact: |acc| < 2^47, shift <= 32
    end
    sum = 82'(shifted) + 82'(bias);
    if (sum > 82'sd2147483647) y = 32'sh7fffffff;
    else if (sum < -82'sd2147483648) y = 32'sh80000000;
    else y = sum[31:0];
  end
endmodule

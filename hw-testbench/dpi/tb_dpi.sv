// Testbench (built with Verilator): drives the RTL of edv_rtl.sv with seeded random and
// edge stimuli, one of each operator per clock, and checks every output
// against the golden model through DPI-C imports of libedgedecoding (the
// library's own C symbols: no wrapper). The C++ driver (sim_main.cpp) clocks
// it until `done` and exits non-zero if `errors` is not 0.
// A testbench, not hardware: its clocked process updates its own counters and
// the generator state with blocking assignments.
/* verilator lint_off BLKSEQ */
module tb_dpi #(
    parameter int unsigned N = 100000,  // stimuli per operator
    parameter int unsigned SEED = 1
) (
    input  logic        clk,
    output logic        done,
    output int unsigned checked,
    output int unsigned errors
);
  // edgedecoding.h: edgedecoding_status edgedecoding_bfp_quantize_block(const int32_t *x, int8_t *m, uint8_t *e);
  import "DPI-C" function int edgedecoding_bfp_quantize_block(input int x[8], output byte m[8], output byte unsigned e);
  // edgedecoding.h: edgedecoding_status edgedecoding_linear_rescale(int64_t acc, int8_t e_row, int32_t out_frac, int32_t bias, int32_t *y);
  import "DPI-C" function int edgedecoding_linear_rescale(input longint acc, input byte e_row, input int out_frac,
                                                          input int bias, output int y);

  // ---- the devices under test
  logic signed [31:0] x [8];
  logic signed [7:0] m [8];
  logic [3:0] e;
  edv_bfp_quantize u_bfp (.x(x), .m(m), .e(e));

  logic signed [47:0] acc;
  logic signed [7:0] e_row;
  logic [4:0] out_frac;
  logic signed [31:0] bias, y;
  edv_linear_rescale u_rescale (.acc(acc), .e_row(e_row), .out_frac(out_frac), .bias(bias), .y(y));

  // ---- stimuli: splitmix64, seeded
  longint unsigned rng = 64'(SEED);
  function automatic longint unsigned next64();
    longint unsigned z;
    rng = rng + 64'h9e3779b97f4a7c15;
    z = rng;
    z = (z ^ (z >> 30)) * 64'hbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 64'h94d049bb133111eb;
    return z ^ (z >> 31);
  endfunction
  function automatic int unsigned below(int unsigned n);
    return int'(next64() % 64'(n));
  endfunction
  // a random value of random magnitude, 1 in 8 an extreme
  function automatic longint any64();
    longint v;
    int unsigned k;
    k = below(63);
    case (below(16))
      0: v = 64'sh8000000000000000;
      1: v = 64'sh7fffffffffffffff;
      2: v = longint'(64'd1 << k);
      3: v = -longint'(64'd1 << k);
      default: v = longint'(next64()) >>> below(64);
    endcase
    return v;
  endfunction
  function automatic longint clampv(longint v, longint lo, longint hi);
    return v < lo ? lo : (v > hi ? hi : v);
  endfunction

  task automatic new_bfp_stimulus();
    int unsigned mode, k;
    longint t;
    mode = below(4);
    k = below(16);
    for (int i = 0; i < 8; i++) begin
      case (mode)
        0: t = clampv(any64(), -64'sd2147483648, 64'sd2147483647);
        1: begin  // +-2 around the window edges of exponent k
          if (k == 0) t = below(2) == 0 ? 127 : -128;
          else t = below(2) == 0 ? (255 * (64'sd1 <<< (k - 1))) - 1 : -(257 * (64'sd1 <<< (k - 1)));
          t = t + longint'(below(5)) - 2;
        end
        2: begin  // exact halves at shift k: the rounding ties
          t = (2 * (longint'(below(256)) - 128) + 1) * (k == 0 ? 64'sd1 : (64'sd1 <<< (k - 1)));
        end
        default: t = longint'(next64() % (64'd1 << (k + 13))) - (64'sd1 <<< (k + 12));
      endcase
      x[i] <= 32'(clampv(t, -64'sd2147483648, 64'sd2147483647));
    end
  endtask

  task automatic new_rescale_stimulus();
    logic signed [7:0] er;
    logic [4:0] of;
    int kk;
    longint a;
    er = below(4) == 0 ? 8'(next64()) : 8'(int'(below(29)) - 24);
    of = 5'(below(31));
    kk = 12 - int'(of) - int'(er);
    case (below(4))
      0: a = clampv(any64(), -(64'sd1 <<< 47), (64'sd1 <<< 47) - 1);
      1: begin  // a tie of the rounding at shift kk: odd * 2^(kk-1)
        if (kk >= 1 && kk <= 47) a = (2 * (longint'(next64() % (64'd1 << (48 - kk))) - (64'sd1 <<< (47 - kk))) + 1) <<< (kk - 1);
        else a = longint'(below(7)) - 3;
      end
      2: a = longint'(next64() >> 16) >>> below(48);
      default: a = below(2) == 0 ? -(64'sd1 <<< 47) : (64'sd1 <<< 47) - 1 - longint'(below(3));
    endcase
    acc <= 48'(clampv(a, -(64'sd1 <<< 47), (64'sd1 <<< 47) - 1));
    e_row <= er;
    out_frac <= of;
    case (below(4))
      0: bias <= 32'sd0;
      1: bias <= below(2) == 0 ? 32'sh7fffffff : 32'sh80000000;
      default: bias <= 32'(any64());
    endcase
  endtask

  // ---- checker (a testbench process: blocking updates of its counters)
  int unsigned n = 0;  // stimuli applied
  int unsigned n_checked = 0, n_errors = 0, reported = 0;
  logic fin = 1'b0;
  int st;
  int xi [8];
  byte gm [8];
  byte unsigned ge;
  int gy;
  assign done = fin;
  assign checked = n_checked;
  assign errors = n_errors;

  always @(posedge clk) begin
    if (n > 0 && !fin) begin
      // the stimulus applied at the previous edge: the outputs have settled
      for (int i = 0; i < 8; i++) xi[i] = x[i];
      st = edgedecoding_bfp_quantize_block(xi, gm, ge);
      for (int i = 0; i < 8; i++)
        if (st != 0 || m[i] != gm[i] || e != 4'(ge)) begin
          if (reported < 10) begin
            $display("MISMATCH bfp_quantize #%0d: x = %0d %0d %0d %0d %0d %0d %0d %0d: rtl m[%0d] = %0d e = %0d, golden m = %0d e = %0d (status %0d)",
                     n, x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], i, m[i], e, gm[i], ge, st);
            reported++;
          end
          n_errors++;
          break;
        end
      st = edgedecoding_linear_rescale(longint'(acc), e_row, int'(out_frac), bias, gy);
      if (st != 0 || y != gy) begin
        if (reported < 10) begin
          $display("MISMATCH linear_rescale #%0d: acc = %0d e_row = %0d out_frac = %0d bias = %0d: rtl %0d, golden %0d (status %0d)",
                   n, acc, e_row, out_frac, bias, y, gy, st);
          reported++;
        end
        n_errors++;
      end
      n_checked++;
    end
    if (n == N) begin
      fin = 1'b1;
    end else begin
      new_bfp_stimulus();
      new_rescale_stimulus();
      n++;
    end
  end
endmodule

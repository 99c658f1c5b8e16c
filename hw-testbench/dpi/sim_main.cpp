// Verilator driver of tb_dpi: clocks it until `done`, reports, and exits
// non-zero when any output differed from the golden model.
#include <cstdio>
#include <memory>

#include "Vtb_dpi.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const std::unique_ptr<Vtb_dpi> top{new Vtb_dpi{ctx.get()}};
    top->clk = 0;
    top->eval();
    unsigned long cycles = 0;
    while (!top->done && !ctx->gotFinish()) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        cycles++;
    }
    top->final();
    std::printf("tb_dpi: %lu cycles, %u stimuli per operator checked (bfp_quantize, linear_rescale), %u errors -> %s\n",
                cycles, top->checked, top->errors, top->errors ? "FAIL" : "PASS");
    return top->errors || top->checked == 0 ? 1 : 0;
}

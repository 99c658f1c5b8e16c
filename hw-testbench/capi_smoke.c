/* Plain C99 against the shared library, as an HLS C-simulation testbench
 * would link it: version check, two operators, an error path, and the
 * SPEC 7.4 worked softmax example. Exit status 0 on success. */
#include <stdio.h>
#include <string.h>

#include "edgedecoding.h"

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "capi_smoke: %s failed (line %d): %s\n", #cond, __LINE__, \
                    edgedecoding_last_error());                         \
            return 1;                                                   \
        }                                                               \
    } while (0)

int main(void) {
    CHECK(edgedecoding_abi_version() == EDGEDECODING_ABI_VERSION);
    /* SPEC 1.1: ties toward +infinity */
    CHECK(edgedecoding_round_shift(5, 1) == 3 && edgedecoding_round_shift(-5, 1) == -2);
    CHECK(edgedecoding_round_shift(-7, 2) == -2);
    /* SPEC 7.4: [1.0, 0.5, -2.0, 1.0, -9.0] in Q19 -> [12338, 7477, 614, 12338, 1] */
    const int64_t s[5] = {524288, 262144, -1048576, 524288, -4718592};
    const uint16_t want[5] = {12338, 7477, 614, 12338, 1};
    uint16_t p[5];
    CHECK(edgedecoding_softmax_q15(s, 5, 19, p, 5) == EDGEDECODING_OK);
    CHECK(memcmp(p, want, sizeof want) == 0);
    /* an error: the message names the argument */
    CHECK(edgedecoding_softmax_q15(s, 5, 19, p, 4) == EDGEDECODING_ERR_LENGTH);
    CHECK(strstr(edgedecoding_last_error(), "probs") != NULL);
    /* SPEC 3.1: [3.0, ..., -2.0] in Q12 -> e = 7, m = 96 .. -64 */
    const int32_t x[8] = {12288, 0, 0, 0, 0, 0, 0, -8192};
    int8_t m[8];
    uint8_t e = 0;
    CHECK(edgedecoding_bfp_quantize_block(x, m, &e) == EDGEDECODING_OK);
    CHECK(e == 7 && m[0] == 96 && m[7] == -64);
    printf("capi_smoke: libedgedecoding %s (ABI %u): OK\n", edgedecoding_version(), edgedecoding_abi_version());
    return 0;
}

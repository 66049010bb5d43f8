/*
 * libFuzzer target for the vocab.json / merges.txt parsers: the input is
 * "<vocab.json bytes> NUL <merges.txt bytes>". Loading must either fail with
 * SLM_EFORMAT (or SLM_ENOMEM) and a message, or succeed; a model that loads
 * must encode text (here the merges bytes) and decode it back exactly.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_bpe_load.c src/tokenizer/\*.c src/core/error.c -o fuzz_bpe_load
 *   ./fuzz_bpe_load -dict=... tests/fuzz/corpus/bpe_load
 */
#include "slm.h"
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encodes text with m and checks that the tokens' bytes give it back. */
static void round_trip(const bpe_model *m, const uint8_t *text, size_t len)
{
    bpe_encoder *e;
    int32_t *ids;
    size_t n;
    if (bpe_encoder_init(&e)) return;
    if (bpe_encode(m, e, text, len, NULL, 0)) abort();
    bpe_encoder_take(e, &ids, &n);
    bpe_encoder_free(e);
    if (!ids) abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->n_tokens || ids[i] == m->eot) abort();
        size_t tl = m->tok_len[ids[i]];
        if (k + tl > len || memcmp(text + k, m->blob + m->tok_off[ids[i]], tl)) abort();
        k += tl;
    }
    if (k != len) abort();
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t vn = nul ? (size_t)(nul - data) : size;
    const uint8_t *merges = nul ? nul + 1 : data + size;
    size_t mn = size - vn - (nul ? 1 : 0);
    char err[256] = "";
    bpe_model *m;
    int rc = bpe_model_from_memory(data, vn, "vocab.json", merges, mn, "merges.txt", &m, err,
                                   sizeof err);
    if (rc) {
        if ((rc != SLM_EFORMAT && rc != SLM_ENOMEM) || !err[0] || m) abort();
        return 0;
    }
    round_trip(m, merges, mn);
    round_trip(m, data, vn);
    bpe_model_free(m);
    return 0;
}

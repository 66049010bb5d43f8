/*
 * libFuzzer target: any bytes encode with the GPT-2 tokenizer and decode back
 * to exactly the same bytes; ids are in the vocabulary and never the
 * <|endoftext|> token; the pre-tokenizer's pieces tile the input. The byte
 * tokenizer round-trips too.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_tokenizer.c src/tokenizer/\*.c src/core/error.c -o fuzz_tokenizer
 *   ./fuzz_tokenizer tests/fuzz/corpus/tokenizer        (from the repository root;
 *   SLM_FUZZ_GPT2_DIR overrides data/gpt2)
 */
#include "slm.h"
#include "tokenizer/pretokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static slm_tokenizer *gpt2, *byte; /* loaded once per fuzzing process */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("SLM_FUZZ_GPT2_DIR");
    char err[512];
    if (slm_tokenizer_load(SLM_TOKENIZER_GPT2, dir ? dir : "data/gpt2", 0, &gpt2, err,
                           sizeof err) ||
        slm_tokenizer_load(SLM_TOKENIZER_BYTE, NULL, 0, &byte, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    return 0;
}

static void round_trip(const slm_tokenizer *t, const uint8_t *data, size_t size)
{
    int32_t *ids;
    size_t n, len;
    char *text;
    if (slm_tokenizer_encode(t, (const char *)data, size, &ids, &n, NULL, 0)) abort();
    if (size && !n) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= slm_tokenizer_vocab_size(t) || ids[i] == slm_tokenizer_eot(t))
            abort();
    if (slm_tokenizer_decode(t, ids, n, &text, &len, NULL, 0)) abort();
    if (len != size || memcmp(text, data, size) || text[len]) abort();
    free(text);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        size_t end = tok_pretokenize_next(data, size, pos);
        if (end <= pos || end > size) abort();
        pos = end;
    }
    round_trip(gpt2, data, size);
    round_trip(byte, data, size);
    return 0;
}

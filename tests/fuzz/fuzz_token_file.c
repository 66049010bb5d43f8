/*
 * libFuzzer target for token files (src/io/token_file.c). Each input is
 * parsed twice: as is, and with its checksum field fixed up so the id
 * checks behind the checksum are reached too. Accepted files must yield ids
 * below their vocab_size; refused ones a message.
 *
 *   make fuzz   (or: build/fuzz/fuzz_token_file tests/fuzz/corpus/token_file)
 */
#include "io/token_file.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *buf, size_t size)
{
    int32_t *ids;
    size_t n;
    slm_token_meta meta;
    char err[256] = "";
    int rc = token_file_parse(buf, size, "fuzz", &ids, &n, &meta, err, sizeof err);
    if (rc) {
        if ((rc != SLM_EFORMAT && rc != SLM_ENOMEM) || !err[0]) abort();
        return;
    }
    size_t payload = size - SLM_TOKEN_HEADER_BYTES;
    if (payload != n * 2 && payload != n * 4) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= meta.vocab_size) abort();
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    parse(buf, size);
    if (size >= SLM_TOKEN_HEADER_BYTES) {
        uint64_t h = slm_hash64(buf + SLM_TOKEN_HEADER_BYTES, size - SLM_TOKEN_HEADER_BYTES);
        for (int i = 0; i < 8; i++)
            buf[48 + i] = (uint8_t)(h >> (8 * i));
        parse(buf, size);
    }
    free(buf);
    return 0;
}

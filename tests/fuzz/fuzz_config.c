/*
 * libFuzzer target for config.json (src/io/config.c). Any input must be
 * accepted or refused with a message; an accepted config must be valid,
 * and writing it and reading it back must give the same config.
 *
 *   make fuzz   (or: build/fuzz/fuzz_config tests/fuzz/corpus/config)
 */
#include "io/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    slm_config c, back;
    char err[256] = "";
    int rc = config_parse((const char *)data, size, "fuzz", &c, err, sizeof err);
    if (rc) {
        if (rc >= 0 || !err[0]) abort();
        return 0;
    }
    if (slm_config_validate(&c, NULL, 0)) abort();
    char *text;
    size_t len;
    if (config_to_json(&c, &text, &len, err, sizeof err)) abort();
    if (config_parse(text, len, "again", &back, err, sizeof err)) abort();
    if (memcmp(&c, &back, sizeof c)) abort();
    free(text);
    return 0;
}

/*
 * libFuzzer target for the safetensors reader (src/io/safetensors.c). Any
 * input must be accepted or refused with a message; an accepted file's
 * tensors must tile its data section, be findable by name, and read (with
 * F16/BF16 → F32 conversion) without touching memory outside the input.
 *
 *   make fuzz   (or: build/fuzz/fuzz_safetensors tests/fuzz/corpus/safetensors)
 */
#include "io/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    slm_safetensors *f;
    char err[512] = "";
    int rc = st_open_memory(buf, size, "fuzz", &f, err, sizeof err);
    if (rc) {
        if ((rc != SLM_EFORMAT && rc != SLM_ENOMEM) || !err[0]) abort();
        free(buf);
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < slm_safetensors_count(f); i++) {
        const slm_safetensors_tensor *t = slm_safetensors_tensor_at(f, i);
        total += t->nbytes;
        if (slm_safetensors_find(f, t->name) != t) abort();
        int as_float = t->dtype == SLM_DTYPE_F16 || t->dtype == SLM_DTYPE_BF16;
        size_t bytes = as_float ? t->numel * 4 : t->nbytes;
        void *out = malloc(bytes ? bytes : 1);
        rc = slm_safetensors_read(f, t, as_float ? SLM_DTYPE_F32 : t->dtype, 0, t->numel, out, err,
                                  sizeof err);
        if (rc) abort();
        free(out);
    }
    if (total != f->data_len) abort();
    (void)slm_safetensors_metadata(f, "format");
    slm_safetensors_close(f);
    free(buf);
    return 0;
}

/*
 * slm_model_forward for a quantized model: evaluation only. Such a model
 * has no fp32 weight matrices for the batched training forward (gpt.c), so
 * each sequence of the batch goes through the KV-cache decoder with the
 * int8/bf16 kernels, which returns the logits of every position; the loss
 * is the same cross-entropy (lm_head.c) over the non-ignored targets.
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "model/layers.h"
#include "model/quant_model.h"

#include <stdlib.h>

int quant_model_forward(slm_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                        int training, float *loss, char *err, size_t errlen)
{
    if (training)
        return fail(err, errlen, SLM_EUNSUPPORTED,
                    "a quantized (%s) model cannot be trained; train the fp32 model it was "
                    "made from",
                    m->quant->dtype == SLM_QUANT_INT8 ? "int8" : "bf16");
    int V = m->cfg.vocab_size;
    slm_kv_cache *c = NULL;
    int rc = check_memory(4.0 * T * (double)V, "the logits of a sequence", err, errlen);
    if (!rc) rc = slm_kv_cache_create(m, T, &c, err, errlen);
    if (rc) return rc;
    float *logits = alloc_aligned((size_t)T * V * sizeof *logits);
    float *lse = malloc((size_t)T * sizeof *lse);
    if (!logits || !lse) rc = fail(err, errlen, SLM_ENOMEM, "out of memory for %d logits", T);
    double total = 0.0;
    size_t n_valid = 0;
    for (int b = 0; b < B && !rc; b++) {
        slm_kv_cache_reset(c);
        rc = model_decode_rows(m, c, tokens + (size_t)b * T, T, logits, 1, err, errlen);
        if (!rc && targets) {
            size_t here = 0;
            total +=
                cross_entropy_forward(lse, logits, targets + (size_t)b * T, (size_t)T, V, &here);
            n_valid += here;
        }
    }
    if (!rc && loss) *loss = n_valid ? (float)(total / (double)n_valid) : 0.0f;
    free(lse);
    free_aligned(logits);
    slm_kv_cache_free(c);
    return rc;
}

int slm_model_quantization(const slm_model *m, int *group_size, const char **kernel)
{
    int dtype = m && m->quant ? m->quant->dtype : SLM_QUANT_NONE;
    if (group_size) *group_size = dtype == SLM_QUANT_INT8 ? m->quant->group : 0;
    if (kernel) *kernel = dtype ? qpath_name(dtype, m->quant->path) : "fp32";
    return dtype;
}

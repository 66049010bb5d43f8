/*
 * slm_model_ffn_activations: the hidden layer of a block's position-wise
 * feed-forward network, act(LayerNorm_2(x)·W_fc + b_fc) [T][4C], as one
 * inference forward pass (slm_model_forward, dropout off) left it in the
 * activation block (feed_forward.c writes it as fc_act for backward).
 */
#include "core/error.h"
#include "model/gpt.h"

#include <string.h>

int slm_model_ffn_activations(slm_model *m, const int32_t *tokens, int T, int layer, float *act,
                              char *err, size_t errlen)
{
    if (!m) return fail(err, errlen, SLM_EINVAL, "ffn activations: no model");
    if (!act) return fail(err, errlen, SLM_EINVAL, "ffn activations: no output buffer");
    if (layer < 0 || layer >= m->cfg.n_layer)
        return fail(err, errlen, SLM_ERANGE, "ffn activations: layer %d is outside [0, %d)",
                    layer, m->cfg.n_layer);
    int rc = gpt_forward_keeping_layers(m, tokens, T, err, errlen);
    if (rc) return rc;
    memcpy(act, m->train->shard[0].layer[layer].fc_act, (size_t)T * 4 * m->cfg.n_embd * sizeof *act);
    return SLM_OK;
}

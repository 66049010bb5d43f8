/*
 * slm_model_attention_weights: what each token looks at, per layer and head.
 * One inference forward pass (slm_model_forward, dropout off) leaves every
 * layer's q, k and attention log-sum-exp in the activation block; the weights
 * are read back from those (multi_head_attention_weights), so they are the
 * probabilities the model's own attention kernel used, not a re-derivation.
 */
#include "core/error.h"
#include "model/layers.h"

int slm_model_attention_weights(slm_model *m, const int32_t *tokens, int T, int layer,
                                float *weights, char *err, size_t errlen)
{
    if (!m) return fail(err, errlen, SLM_EINVAL, "attention weights: no model");
    if (!weights) return fail(err, errlen, SLM_EINVAL, "attention weights: no output buffer");
    const slm_config *c = &m->cfg;
    if (layer < -1 || layer >= c->n_layer)
        return fail(err, errlen, SLM_ERANGE,
                    "attention weights: layer %d is outside [0, %d) (or -1 for all)", layer,
                    c->n_layer);
    int rc = gpt_forward_keeping_layers(m, tokens, T, err, errlen);
    if (rc) return rc;
    const struct gpt_train_state *t = m->train;
    size_t per_layer = (size_t)c->n_head * (size_t)T * (size_t)T;
    int first = layer < 0 ? 0 : layer, last = layer < 0 ? c->n_layer - 1 : layer;
    for (int l = first; l <= last; l++) {
        rc = multi_head_attention_weights(&t->shard[0].dims, &t->shard[0].layer[l],
                                          weights + (size_t)(l - first) * per_layer);
        if (rc) return fail(err, errlen, rc, "attention weights: %s", slm_strerror(rc));
    }
    return SLM_OK;
}

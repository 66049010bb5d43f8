/*
 * A quantized model's weight matrices (slm quantize): int8 or bf16 in the
 * kernels' form (src/kernels/quant.h), held instead of the fp32 matrices,
 * which such a model does not have (its params block holds only wpe, the
 * LayerNorms and the biases). Used by decoding and evaluation; training
 * refuses such a model.
 */
#ifndef SLM_MODEL_QUANT_MODEL_H
#define SLM_MODEL_QUANT_MODEL_H

#include "kernels/quant.h"
#include "model/model.h"

enum { QW_ATTN, QW_PROJ, QW_FC, QW_MLP_PROJ, QW_PER_LAYER };

typedef struct quant_weights {
    int dtype;      /* SLM_QUANT_INT8 or SLM_QUANT_BF16                     */
    int group;      /* int8: weights per scale in the file                  */
    int path;       /* kernel path (QPATH_*), chosen when loaded            */
    qmatrix wte;    /* W = wteᵀ (C,V): the LM head; its rows embed tokens   */
    qmatrix *layer; /* [n_layer][QW_PER_LAYER]: c_attn, c_proj, c_fc, mlp.c_proj */
} quant_weights;

/* The matrix of layer l, kind QW_*, or NULL for an fp32 model. */
static inline const qmatrix *quant_matrix(const slm_model *m, int l, int kind)
{
    return m->quant ? &m->quant->layer[(size_t)l * QW_PER_LAYER + kind] : NULL;
}

/* Is table tensor t one a quantized model holds quantized (every weight
 * matrix but the position embedding)? */
int quant_tensor_is_matrix(const slm_tensor_info *t);

/* An empty quantized model (dtype SLM_QUANT_INT8 or BF16, int8 group
 * size): tensor table, fp32 storage for the tensors that stay fp32,
 * matrices not yet allocated. */
int quant_model_alloc(const slm_config *cfg, int dtype, int group, slm_model **out, char *err,
                      size_t errlen);
void quant_weights_free(quant_weights *q, int n_layer);

/* slm_model_forward for a quantized model (no training): each sequence
 * through the KV-cache decoder, logits of every position, cross-entropy. */
int quant_model_forward(slm_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                        int training, float *loss, char *err, size_t errlen);

/* slm_model_decode; with all_rows set, logits [n][V] of every position
 * rather than [V] of the last (decode.c). */
int model_decode_rows(slm_model *m, slm_kv_cache *c, const int32_t *tokens, int n, float *logits,
                      int all_rows, char *err, size_t errlen);

#endif

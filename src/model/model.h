/*
 * The model object shared inside src/model and src/io: configuration, the
 * tensor table, one allocation of parameters (and one of gradients), and
 * per-layer views into both. Forward/backward state is owned by the model too
 * but lives behind `train` (see gpt.h) so that loading and saving need not
 * know about it.
 */
#ifndef SLM_MODEL_MODEL_H
#define SLM_MODEL_MODEL_H

#include "model/params.h"
#include "slm.h"

/* Views of one transformer block's parameters (or of their gradients).
 * Conv1D weights are [in][out]: y = x·W + b. */
typedef struct {
    float *ln_1_w, *ln_1_b;     /* [C]                                        */
    float *c_attn_w, *c_attn_b; /* [C][3C], [3C]   fused Q,K,V projection      */
    float *c_proj_w, *c_proj_b; /* [C][C], [C]     W^C, after concatenation    */
    float *ln_2_w, *ln_2_b;     /* [C]                                        */
    float *c_fc_w, *c_fc_b;     /* [C][4C], [4C]   feed-forward in             */
    float *mlp_proj_w, *mlp_proj_b; /* [4C][C], [C] feed-forward out           */
} gpt_layer_views;

typedef struct {
    float *wte;         /* [V][C]  token embedding, also the LM head (tied)    */
    float *wpe;         /* [P][C]  learned position embedding                  */
    gpt_layer_views *h; /* [n_layer]                                           */
    float *ln_f_w, *ln_f_b;
} gpt_views;

struct gpt_train_state; /* activations, optimizer moments: see gpt.h         */
struct quant_weights;   /* a quantized model's matrices: see quant_model.h    */

struct slm_model {
    slm_config cfg;
    int n_tensors;
    slm_tensor_info *tensors; /* names point into name_storage                  */
    char *name_storage;
    size_t n_params;
    float *params; /* one allocation, 64-byte aligned                          */
    float *grads;  /* same layout; NULL until first needed                     */
    gpt_views w;   /* views into params                                        */
    gpt_views g;   /* views into grads (valid once grads is allocated)         */
    struct gpt_train_state *train;
    struct quant_weights *quant; /* int8/bf16 matrices (quant_model.h); NULL: fp32 */
};

/* Fills `v` with views of `base` (params or grads) laid out like m's table. */
void gpt_views_bind(const slm_model *m, float *base, gpt_views *v);
/* Frees m->train (train_state.c). */
void gpt_train_state_free(struct gpt_train_state *t);

#endif

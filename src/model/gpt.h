/*
 * Training state of the GPT-2 model (owned by slm_model::train): the shapes of
 * the last forward pass, one allocation holding every activation backward
 * needs plus the scratch buffers both passes share, and the AdamW moments.
 *
 * Activation layout for B·T = N rows (llm.c style, one block, views into it;
 * a pass split into shards, gpt_shard below, has it once per shard for the
 * shard's rows, except the logits and the token copies: the pass's rows,
 * shard after shard):
 *
 *   res[0]            [N,C]      embeddings after dropout = residual stream in
 *   per layer l:
 *     ln1             [N,C]      LayerNorm 1 output; ln1_mean, ln1_rstd [N]
 *     qkv             [3,B,H,T,D] c_attn output split into heads (q, k, v)
 *     atty            [B,H,T,D]  attention output per head, before concat
 *     att_lse         [B,H,T]    log-sum-exp of each attention row
 *     res_mid         [N,C]      x + dropout(c_proj(attention))
 *     ln2             [N,C]      LayerNorm 2 output; ln2_mean, ln2_rstd [N]
 *     fc_pre          [N,4C]     c_fc output (+bias), before the activation
 *     fc_act          [N,4C]     GELU/ReLU of fc_pre
 *     res_out         [N,C]      res_mid + dropout(FFN) = next layer's input
 *   lnf               [N,C]      final LayerNorm; lnf_mean, lnf_rstd [N]
 *   logits            [N,V]      overwritten by dlogits in backward
 *   ce_lse            [N]        log Σ exp(logits) per row (softmax denominator)
 *   scratch           10·N·C     reused by every layer (see gpt_scratch)
 *   tokens, targets   [N] int32  copies of the inputs for backward
 *
 * With bf16 activation storage (stash = 1: dtype bf16 where the GEMMs stay
 * fp32, see gpt_gemm_prepare) each layer keeps for backward only
 *   xhat1, xhat2      [N,C]  bf16  LayerNorm inputs normalised, (x − μ)·rstd
 *   qkv [3N·C], atty [N·C], fc_pre [N,4C]  bf16
 * plus its fp32 means, rstds and log-sum-exps. The layer itself runs in one
 * fp32 working layer (`work`, where fc_pre and fc_act share one buffer: the
 * activation is made in place) shared by all layers, the residual stream in
 * two fp32 buffers used in turn (resid[l & 1] is layer l's input, res0 =
 * resid[0]). Backward recomputes LN's outputs into `work` (x̂·w + b), the
 * attention backward reads q, k, v and atty in bf16 (widening head by head),
 * and the activation is remade from fc_pre by the epilogue of d(fc_act)'s
 * GEMM, which reads fc_pre for act' anyway, 256 rows at a time into the
 * first rows of work.fc_act (feed_forward.c). LayerNorm backward
 * reads x̂, not x: x̂ is O(1) where x may carry a large common offset that
 * bf16 rounding of x would turn into a large error in x − μ.
 */
#ifndef SLM_MODEL_GPT_H
#define SLM_MODEL_GPT_H

#include "model/model.h"

#include <stdint.h>

/* Sizes of one pass. N = B·T rows; D = C/H. */
typedef struct {
    int B, T, C, H, D, V;
    size_t N;
} gpt_dims;

/* Layer l's bf16 copies of what backward reads (stash mode, above). */
typedef struct {
    uint16_t *xhat1, *qkv, *atty, *xhat2, *fc_pre;
} gpt_layer_stash;

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;
    float *qkv;     /* q at 0, k at N·C, v at 2·N·C, each [B,H,T,D]        */
    float *atty;
    float *att_lse;
    float *res_mid;
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc_pre, *fc_act;
    float *res_out;
    /* bf16 activation storage only (else all NULL): the layer's stash,
     * which forward rounds each value into as it makes it (when backward
     * follows); backward reads fc_pre from bf16.fc_pre where it is set. */
    gpt_layer_stash bf16;
    /* Backward in bf16 storage: 1 where qkv and atty do not hold this
     * layer and attention backward reads bf16.qkv and bf16.atty instead
     * (every layer but the last, gpt_unstash_attention); 0 otherwise. */
    int qkv_in_bf16;
} gpt_layer_acts;

/* How the Conv1D and LM-head GEMMs of a pass run (linear.c, lm_head.c):
 * fp32, or (bf16 = 1) with both inputs rounded to bf16 and fp32
 * accumulation. Weights are rounded once per forward pass into wbf (laid
 * out like params); activation operands when a GEMM reads them, into xa
 * (N·max(4C,V)) and xb (N·4C). Attention stays fp32.
 * grad_beta is the weight gradients' GEMMs' beta: 1 (add, as backward
 * does), 0 while a backward overwrites them (gpt_backward_overwrite). */
typedef struct {
    int bf16;
    float grad_beta;
    const float *params; /* the fp32 parameters wbf mirrors */
    size_t n_params;
    uint16_t *wbf, *xa, *xb;
} gpt_gemm;

/* Buffers reused layer after layer, in forward and backward:
 *   dres  [N,C]   gradient of the residual stream (backward)
 *   a, b  [N,C]   branch output, concatenated heads, d(LayerNorm input)
 *   big   [N,4C]  d(fc_act)/d(fc_pre); [N,3C] dqkv
 *   heads [3N·C]  c_attn GEMM output (forward); dq, dk, dv (backward) */
typedef struct {
    float *dres, *a, *b, *big, *heads;
    gpt_gemm mm; /* how this pass's Conv1D and LM-head GEMMs run */
} gpt_scratch;

/* Dropout of one pass: off unless training with p > 0. Each site (the
 * embeddings, and per layer the attention weights and both residual
 * branches) draws from its own stream derived from `seed`. Rows are
 * numbered from batch_offset (slm_forward_opts): batch b of this pass draws
 * the masks of batch batch_offset + b. */
typedef struct {
    float p;
    uint64_t seed;
    int batch_offset;
    size_t row0; /* batch_offset·T: the first row's index, for (N,C) sites */
} gpt_dropout;

/* One (N,C) site's stream: element (r,c) is kept iff the hash of
 * (seed, row0 + r, c) says so (core/dropout_mask.h). */
typedef struct {
    float p;
    uint64_t seed;
    size_t row0;
} dropout_site;

enum { SITE_EMBED = 0, SITE_ATTN = 1, SITE_ATTN_RESID = 2, SITE_FFN_RESID = 3 };
/* Stream of a site in layer l (l ignored for SITE_EMBED). */
dropout_site gpt_dropout_site(const gpt_dropout *d, int site, int layer);

/* Most shards a pass is split into (gpt.c, pass_shards). */
#define GPT_MAX_SHARDS 8

/*
 * One batch slice of a pass, a "shard": sequences b0 .. b0+dims.B-1 with
 * activations and scratch of their own, laid out as a whole pass of its rows
 * would be. With S > 1 shards each thread runs the whole layer stack on its
 * own slice, its kernels single-threaded: no barrier between layers and no
 * GEMM split between threads (gpt.c, pass_shards). With one shard it is the
 * pass.
 */
typedef struct {
    gpt_dims dims;            /* B: the shard's sequences, N = B·T its rows  */
    int b0;                   /* its first sequence within the pass          */
    gpt_layer_acts *layer;    /* [n_layer] views                             */
    gpt_layer_stash *stashed; /* [n_layer] bf16 views (stash mode)           */
    gpt_layer_acts work;      /* the fp32 working layer (stash mode)         */
    float *resid[2];          /* the residual stream's two buffers (stash)   */
    float *res0, *lnf, *lnf_mean, *lnf_rstd, *ce_lse;
    float *logits;            /* its rows of the pass's logits               */
    int32_t *tokens, *targets; /* its rows of the pass's copies              */
    gpt_scratch s;
    gpt_dropout drop;         /* the pass's, numbered from its first row     */
    double ce_sum;            /* forward: Σ (lse − logit[target]), its rows  */
    size_t n_valid;           /* its targets that are not SLM_IGNORE_INDEX   */
    char err[192];            /* why it failed, if it did                    */
} gpt_shard;

struct gpt_train_state {
    /* activations */
    size_t capacity; /* rows (B·T) the block holds, all shards; 0 = none yet */
    void *block;     /* the one allocation                                   */
    size_t block_bytes;
    int stash;       /* 1: the block is laid out for bf16 storage           */
    int n_shards;    /* shards the block is laid out for                    */
    size_t shard_rows; /* rows each shard's part holds                      */
    gpt_shard shard[GPT_MAX_SHARDS];
    gpt_layer_acts *layer_views;   /* [GPT_MAX_SHARDS][n_layer], the shards' */
    gpt_layer_stash *stash_views;  /* [GPT_MAX_SHARDS][n_layer]              */
    float *logits;   /* [capacity, V] the pass's rows, shard after shard     */
    int32_t *tokens, *targets;

    /* the last forward pass */
    int shards;      /* shards it ran on (<= n_shards)                      */
    gpt_dims dims;
    int have_targets;
    size_t n_valid;  /* targets that are not SLM_IGNORE_INDEX                */
    gpt_dropout drop;
    int backward_ready; /* training forward with targets, not yet consumed   */
    int attn_impl;      /* SLM_ATTN_*: see multi_head_attention.c            */

    /* bf16 GEMM operands (gpt_gemm), allocated on the first bf16 pass */
    void *bf16_block;
    size_t bf16_rows;     /* rows each shard's operand buffers hold          */
    int bf16_shards;      /* shards they are laid out for                    */
    size_t bf16_bytes;    /* its size                                        */

    /* Shards 1 .. S-1's weight gradients (shard 0 writes the model's own),
     * added into the model's at the end of backward: (S-1)·n_params floats,
     * allocated on the first sharded backward. */
    float *shard_grads;
    int shard_grads_count;           /* gradient copies it holds            */
    gpt_views shard_g[GPT_MAX_SHARDS]; /* [k-1]: views into copy k-1        */
    gpt_layer_views *shard_g_layers; /* their per-layer views               */

    /* AdamW moments m, v: one allocation of 2·n_params floats */
    float *adam;
};

/* The attention kernel multi-head attention calls (multi_head_attention.c). */
int gpt_attention_impl(void);

/* The model's training state, created on first use (NULL if out of memory). */
struct gpt_train_state *gpt_train_state_get(slm_model *m);
/* Makes the activation block fit a pass of B·T rows split into `shards`
 * batch slices, in the layout `stash` asks for (reallocates only if a
 * shard's rows grow, or the layout or the number of shards changes; a pass
 * on fewer shards than the block has uses the first ones) and binds each
 * shard's rows of the pass (dims, b0, logits, tokens, targets).
 * SLM_OK or SLM_ENOMEM/SLM_ERANGE with a message. */
int gpt_train_state_reserve(slm_model *m, int B, int T, int stash, int shards, char *err,
                            size_t errlen);
/* Makes room for the weight gradients of shards 1 .. shards-1 (views in
 * t->shard_g). SLM_OK or SLM_ENOMEM with a message. */
int gpt_shard_grads_reserve(slm_model *m, int shards, char *err, size_t errlen);

/* Sets each shard's s.mm for a pass in fp32 (dtype SLM_DTYPE_F32) or, if
 * gemm_bf16_enabled(), bf16 (SLM_DTYPE_BF16): allocates the operand buffers
 * (each shard its own, for the block's shard_rows) and rounds the weights
 * (once, shared). SLM_OK or SLM_ENOMEM with a message. */
int gpt_gemm_prepare(slm_model *m, int dtype, char *err, size_t errlen);

/* An fp32 inference pass over one sequence (B = 1) that leaves every
 * layer's activations in t->layer (the fp32 layout), for readers of them
 * (attention weights, FFN activations). As slm_model_forward. */
int gpt_forward_keeping_layers(slm_model *m, const int32_t *tokens, int T, char *err,
                               size_t errlen);

/* slm_model_backward that writes the gradients instead of adding to them,
 * as if slm_model_zero_grad had come first but without its pass over the
 * buffer: the weight matrices' GEMMs run with beta = 0 (so they do not read
 * the old values either) and only the small tensors are zeroed. For the
 * trainer's first micro-batch of a step. */
int gpt_backward_overwrite(slm_model *m, float loss_scale, char *err, size_t errlen);

/* 1 if a pass of this dtype stores activations in bf16: dtype bf16 where
 * its GEMMs stay fp32 (gemm_bf16_enabled() is 0). */
int gpt_stash_wanted(int dtype);

/* ---- activation_stash.c --------------------------------------------------- */
/* The working layer set up for layer l's forward (stash mode): l's means,
 * rstds and log-sum-exps, res_out = resid[(l + 1) & 1], and if `keep`
 * (backward follows) l's stash as the bf16 copies that LayerNorm, the head
 * split and merge and c_fc's epilogue write as they make each value. */
gpt_layer_acts *gpt_work_layer(gpt_shard *sh, int l, int keep);
/* Layer l's working layer in backward (stash mode), each part made right
 * before the branch that reads it, so it is still in cache there:
 * gpt_unstash_ffn makes ln2 = x̂₂·w + b (fc_pre stays bf16, bf16.fc_pre;
 * fc_act is remade from it in feed_forward_backward), gpt_unstash_attention
 * ln1 = x̂₁·w + b (q, k, v and the attention output are read from their bf16
 * copies: qkv_in_bf16). `last` (l is the last layer): nothing is
 * widened, the working layer still holds that layer's exact fp32 values,
 * since its forward ran last and backward directly follows the forward. */
const gpt_layer_acts *gpt_unstash_ffn(gpt_shard *sh, int l, const gpt_layer_views *w, int last);
const gpt_layer_acts *gpt_unstash_attention(gpt_shard *sh, int l, const gpt_layer_views *w,
                                            int last);

#endif

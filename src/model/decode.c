/*
 * Incremental decoding with a KV cache: generation's hot path.
 *
 * Each new token needs its own query but the keys and values of every earlier
 * position, which never change; the cache keeps them per layer as
 * [H][max_tokens][D], so a step is one pass over the weights (matrix-vector
 * products, memory-bound) plus attention of one query over the cache.
 *
 * Attention goes through slm_attention_forward with Tk = max_tokens and
 * kv_len = positions filled: keys past the filled length are invisible, and
 * the flash kernel skips their tiles. A multi-token chunk (the prompt) adds
 * the causal mask relative to its start position: query i sees key j iff
 * j <= start + i, the bottom-right alignment of slm_attn_opts.causal
 * (include/slm.h).
 */
#include "core/alloc.h"
#include "core/error.h"
#include "core/memory.h"
#include "kernels/kernels.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/quant_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct slm_kv_cache {
    int n_layer, n_head, head_dim, max_tokens, chunk;
    int length;     /* positions filled                                    */
    int attn_impl;  /* SLM_ATTN_*: gpt_attention_impl(), as training uses   */
    float *k, *v;   /* [n_layer][H][max_tokens][D]                         */
    float *x;       /* [chunk][C]   residual stream                        */
    float *h;       /* [chunk][C]   normalised input of a sub-layer        */
    float *qkv;     /* [chunk][3C]                                         */
    float *q;       /* [H][chunk][D]                                       */
    float *att;     /* [H][chunk][D] attention output per head            */
    float *cat;     /* [chunk][C]   heads concatenated                     */
    float *ff;      /* [chunk][4C]                                         */
    float *mask;    /* [chunk][max_tokens] causal mask of a multi-token chunk */
    float *mean, *rstd; /* [chunk] LayerNorm statistics (unused after)     */
    void *qwork;    /* quantized models: the kernels' scratch (quant.h)    */
};

/* Tokens processed per pass; longer prompts go in several chunks so the
 * scratch stays small. */
#define DECODE_CHUNK 64

int slm_kv_cache_create(const slm_model *m, int max_tokens, slm_kv_cache **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    const slm_config *cfg = &m->cfg;
    if (max_tokens <= 0 || max_tokens > cfg->n_positions)
        return fail(err, errlen, SLM_ERANGE, "KV cache size %d outside 1..%d (the context)",
                        max_tokens, cfg->n_positions);
    int C = cfg->n_embd, chunk = DECODE_CHUNK < max_tokens ? DECODE_CHUNK : max_tokens;
    /* k and v, plus the scratch rows below (x, h, qkv, q, att, cat, ff, mask). */
    double bytes = 4.0 * ((double)cfg->n_layer * max_tokens * C * 2.0 +
                          (double)chunk * (12.0 * C + max_tokens));
    int rc = check_memory(bytes, "the KV cache and its scratch", err, errlen);
    if (rc) return rc;
    slm_kv_cache *c = calloc(1, sizeof *c);
    if (!c) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    c->n_layer = cfg->n_layer;
    c->n_head = cfg->n_head;
    c->head_dim = C / cfg->n_head;
    c->max_tokens = max_tokens;
    c->chunk = chunk;
    c->attn_impl = gpt_attention_impl();
    size_t cache = (size_t)cfg->n_layer * max_tokens * C * sizeof(float);
    size_t row = (size_t)c->chunk * sizeof(float);
    c->k = alloc_aligned(cache);
    c->v = alloc_aligned(cache);
    c->x = alloc_aligned(row * C);
    c->h = alloc_aligned(row * C);
    c->qkv = alloc_aligned(row * 3 * C);
    c->q = alloc_aligned(row * C);
    c->att = alloc_aligned(row * C);
    c->cat = alloc_aligned(row * C);
    c->ff = alloc_aligned(row * 4 * C);
    c->mask = alloc_aligned(row * max_tokens);
    c->mean = alloc_aligned(row);
    c->rstd = alloc_aligned(row);
    if (m->quant) c->qwork = alloc_aligned(qlinear_work_bytes(c->chunk, 4 * C));
    if (!c->k || !c->v || !c->x || !c->h || !c->qkv || !c->q || !c->att || !c->cat || !c->ff ||
        !c->mask || !c->mean || !c->rstd || (m->quant && !c->qwork)) {
        slm_kv_cache_free(c);
        return fail(err, errlen, SLM_ENOMEM, "out of memory for a %d-token KV cache (%.1f MiB)",
                        max_tokens, 2.0 * (double)cache / 1048576.0);
    }
    /* The reference kernel multiplies every key and value, visible or not
     * (0 × whatever the memory held could be NaN), so its cache starts at
     * zero; the flash kernel never reads past kv_len. */
    if (c->attn_impl == SLM_ATTN_REFERENCE) {
        memset(c->k, 0, cache);
        memset(c->v, 0, cache);
    }
    *out = c;
    return SLM_OK;
}

void slm_kv_cache_free(slm_kv_cache *c)
{
    if (!c) return;
    float *bufs[] = {c->k,   c->v,   c->x,  c->h,    c->qkv, c->q,
                     c->att, c->cat, c->ff, c->mask, c->mean, c->rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free_aligned(bufs[i]);
    free_aligned(c->qwork);
    free(c);
}

void slm_kv_cache_reset(slm_kv_cache *c) { c->length = 0; }
int slm_kv_cache_length(const slm_kv_cache *c) { return c->length; }

/* x[C] = wte[token] + wpe[pos]: token embedding plus learned position. */
static void embed(float *x, const float *wte, const float *wpe, int32_t token, int pos, int C)
{
    const float *te = wte + (size_t)token * C, *pe = wpe + (size_t)pos * C;
    for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
}

/* x += y: the residual connection. */
static void add_residual(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* y[n][out] = x[n][in] · W[in][out] (+ b unless NULL): a matrix-vector
 * product for one token (memory-bound: streams W once), a GEMM for a chunk. */
static void linear(const float *x, const float *W, const float *b, float *y, int n, int in,
                   int out)
{
    for (int t = 0; t < n; t++) {
        if (b) memcpy(y + (size_t)t * out, b, (size_t)out * sizeof *y);
        else memset(y + (size_t)t * out, 0, (size_t)out * sizeof *y);
    }
    gemm_f32('N', 'N', n, out, in, 1.0f, x, in, W, out, 1.0f, y, out);
}

/* linear() with the weights of a quantized model when it has them (qw). */
static void project(const slm_model *m, slm_kv_cache *c, const qmatrix *qw, const float *x,
                    const float *W, const float *b, float *y, int n, int in, int out)
{
    if (qw) qlinear_forward(m->quant->path, y, x, qw, b, n, c->qwork);
    else linear(x, W, b, y, n, in, out);
}

/* Multi-head attention of n new tokens at positions start.. over the cache
 * of layer l: split the fused QKV rows into heads, append K and V to the
 * cache, attend, and concatenate the heads back into [n][C]. */
static int cached_attention(slm_kv_cache *c, int l, int n, int start, int C)
{
    int H = c->n_head, D = c->head_dim, T = c->max_tokens;
    float *K = c->k + (size_t)l * H * T * D, *V = c->v + (size_t)l * H * T * D;
    for (int t = 0; t < n; t++) {
        const float *row = c->qkv + (size_t)t * 3 * C;
        for (int h = 0; h < H; h++) {
            memcpy(c->q + ((size_t)h * n + t) * D, row + h * D, (size_t)D * sizeof(float));
            memcpy(K + ((size_t)h * T + start + t) * D, row + C + h * D, (size_t)D * sizeof(float));
            memcpy(V + ((size_t)h * T + start + t) * D, row + 2 * C + h * D,
                   (size_t)D * sizeof(float));
        }
    }
    int filled = start + n;
    slm_attn_opts o = {.impl = c->attn_impl, .kv_len = &filled};
    if (n > 1) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < T; j++)
                c->mask[(size_t)i * T + j] = j <= start + i ? 0.0f : -INFINITY;
        o.mask = c->mask;
    }
    int rc = slm_attention_forward(&o, 1, H, n, T, D, c->q, K, V, c->att, NULL);
    if (rc) return rc;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < H; h++)
            memcpy(c->cat + (size_t)t * C + h * D, c->att + ((size_t)h * n + t) * D,
                   (size_t)D * sizeof(float));
    return SLM_OK;
}

/* One chunk of n <= c->chunk tokens through every block. */
static int decode_chunk(slm_model *m, slm_kv_cache *c, const int32_t *tokens, int n)
{
    const slm_config *cfg = &m->cfg;
    int C = cfg->n_embd, start = c->length;
    float eps = cfg->layer_norm_epsilon;
    for (int t = 0; t < n; t++) {
        float *x = c->x + (size_t)t * C;
        if (m->quant) { /* the row of the quantized wte, then + wpe as embed() */
            qmatrix_row(&m->quant->wte, tokens[t], x);
            add_residual(x, m->w.wpe + (size_t)(start + t) * C, (size_t)C);
        } else {
            embed(x, m->w.wte, m->w.wpe, tokens[t], start + t, C);
        }
    }
    for (int l = 0; l < cfg->n_layer; l++) {
        const gpt_layer_views *w = &m->w.h[l];
        layer_norm_forward(c->h, c->mean, c->rstd, NULL, c->x, w->ln_1_w, w->ln_1_b, (size_t)n, C,
                           eps);
        project(m, c, quant_matrix(m, l, QW_ATTN), c->h, w->c_attn_w, w->c_attn_b, c->qkv, n, C,
                3 * C);
        int rc = cached_attention(c, l, n, start, C);
        if (rc) return rc;
        project(m, c, quant_matrix(m, l, QW_PROJ), c->cat, w->c_proj_w, w->c_proj_b, c->h, n, C,
                C);
        add_residual(c->x, c->h, (size_t)n * C);
        layer_norm_forward(c->h, c->mean, c->rstd, NULL, c->x, w->ln_2_w, w->ln_2_b, (size_t)n, C,
                           eps);
        project(m, c, quant_matrix(m, l, QW_FC), c->h, w->c_fc_w, NULL, c->ff, n, C, 4 * C);
        bias_activation_forward(c->ff, c->ff, w->c_fc_b, (size_t)n, 4 * C, cfg->activation);
        project(m, c, quant_matrix(m, l, QW_MLP_PROJ), c->ff, w->mlp_proj_w, w->mlp_proj_b, c->h,
                n, 4 * C, C);
        add_residual(c->x, c->h, (size_t)n * C);
    }
    c->length += n;
    return SLM_OK;
}

/* Output layer for rows [r0, r0+n) of the chunk's residual stream: ln_f,
 * then logits[n][V] = wte · x. */
static void output_logits(slm_model *m, slm_kv_cache *c, int r0, int n, float *logits)
{
    const slm_config *cfg = &m->cfg;
    int C = cfg->n_embd;
    layer_norm_forward(c->h, c->mean, c->rstd, NULL, c->x + (size_t)r0 * C, m->w.ln_f_w,
                       m->w.ln_f_b, (size_t)n, C, cfg->layer_norm_epsilon);
    if (m->quant)
        qlinear_forward(m->quant->path, logits, c->h, &m->quant->wte, NULL, n, c->qwork);
    else
        gemm_f32('N', 'T', n, cfg->vocab_size, C, 1.0f, c->h, C, m->w.wte, C, 0.0f, logits,
                 cfg->vocab_size);
}

int slm_model_decode(slm_model *m, slm_kv_cache *c, const int32_t *tokens, int n, float *logits,
                     char *err, size_t errlen)
{
    return model_decode_rows(m, c, tokens, n, logits, 0, err, errlen);
}

/* slm_model_decode; with all_rows, logits [n][V] of every position (for
 * evaluating a model that only decodes: quant_forward.c). */
int model_decode_rows(slm_model *m, slm_kv_cache *c, const int32_t *tokens, int n,
                      float *logits, int all_rows, char *err, size_t errlen)
{
    const slm_config *cfg = &m->cfg;
    if (!tokens || n <= 0 || !logits) return fail(err, errlen, SLM_EINVAL, "no tokens");
    if (c->n_layer != cfg->n_layer || c->n_head != cfg->n_head ||
        c->head_dim * c->n_head != cfg->n_embd)
        return fail(err, errlen, SLM_EINVAL, "KV cache was made for another model");
    if (n > c->max_tokens - c->length)
        return fail(err, errlen, SLM_ERANGE,
                        "%d more tokens do not fit the context (%d of %d used)", n, c->length,
                        c->max_tokens);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= cfg->vocab_size)
            return fail(err, errlen, SLM_ERANGE, "token id %d outside the vocabulary (0..%d)",
                            tokens[t], cfg->vocab_size - 1);
    for (int done = 0; done < n;) {
        int step = n - done < c->chunk ? n - done : c->chunk;
        int rc = decode_chunk(m, c, tokens + done, step);
        if (rc) return fail(err, errlen, rc, "attention failed: %s", slm_strerror(rc));
        if (all_rows) output_logits(m, c, 0, step, logits + (size_t)done * cfg->vocab_size);
        done += step;
    }
    /* Generation needs the output layer for the last position only. */
    if (!all_rows) output_logits(m, c, (n - 1) % c->chunk, 1, logits);
    return SLM_OK;
}

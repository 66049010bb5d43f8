/* Shared by the attention implementations and their dispatcher. */
#ifndef SLM_ATTENTION_INTERNAL_H
#define SLM_ATTENTION_INTERNAL_H

#include "slm.h"

/* A call whose arguments the dispatcher already validated: scale resolved
 * (never 0), sizes positive, pointers non-NULL where required. */
typedef struct {
    int B, H, Tq, Tk, D;
    int causal;
    float scale;
    const float *mask;  /* [Tq][Tk] or NULL */
    const int *kv_len;  /* [B] or NULL      */
    float dropout;
    uint64_t seed;
    int b0;             /* dropout: batch b draws the masks of b0 + b */
    /* Backward only, from attention_backward_bf16_inputs: q, k, v and out
     * as bf16 (the float pointers are then NULL); NULL otherwise. */
    const uint16_t *q16, *k16, *v16, *out16;
} attn_call;

/* Number of keys visible to query i of batch b under causal + kv_len (not the
 * additive mask): keys 0 .. visible-1. Causal is aligned bottom-right. */
static inline int attn_visible_keys(const attn_call *c, int b, int i)
{
    int n = c->Tk;
    if (c->causal) {
        int last = i + (c->Tk - c->Tq); /* last visible key */
        n = last + 1 < n ? last + 1 : n;
    }
    if (c->kv_len && c->kv_len[b] < n) n = c->kv_len[b];
    return n < 0 ? 0 : n;
}

int attn_reference_forward(const attn_call *c, const float *q, const float *k,
                           const float *v, float *out, float *lse);
int attn_reference_backward(const attn_call *c, const float *q, const float *k,
                            const float *v, const float *out, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv);
size_t attn_reference_workspace_bytes(const attn_call *c, int backward);

int attn_flash_forward(const attn_call *c, const float *q, const float *k, const float *v,
                       float *out, float *lse);
int attn_flash_backward(const attn_call *c, const float *q, const float *k, const float *v,
                        const float *out, const float *lse, const float *dout, float *dq,
                        float *dk, float *dv);
size_t attn_flash_workspace_bytes(const attn_call *c, int backward);

/* P = exp(scale·q·kᵀ + mask − lse) with hidden entries exactly 0 (weights.c). */
int attn_weights(const attn_call *c, const float *q, const float *k, const float *lse,
                 float *p);

#endif

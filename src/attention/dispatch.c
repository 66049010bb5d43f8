/*
 * Public entry points of the attention core: validate everything before any
 * byte is written, resolve defaults (scale = 1/sqrt(D)), pick an
 * implementation. AUTO is the flash kernel: it is never slower than the
 * materialised reference and needs O(Tq+Tk) memory instead of O(Tq·Tk).
 */
#include "attention/attention_bf16.h"
#include "attention/attention_internal.h"
#include "core/alloc.h"
#include "kernels/bf16.h"

#include <math.h>
#include <stdint.h>

/* Largest element count of one tensor we accept: keeps every index product in
 * range of size_t and of the int loops over rows. */
#define ATTN_MAX_ELEMS ((size_t)1 << 40)

static int fits(int a, int b, int c, int d)
{
    size_t n = (size_t)a;
    size_t f[3] = {(size_t)b, (size_t)c, (size_t)d};
    for (int i = 0; i < 3; i++) {
        if (n > ATTN_MAX_ELEMS / f[i]) return 0;
        n *= f[i];
    }
    return 1;
}

static int validate(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                    attn_call *c)
{
    if (!o) return SLM_EINVAL;
    if (B <= 0 || H <= 0 || Tq <= 0 || Tk <= 0 || D <= 0) return SLM_EINVAL;
    if (!fits(B, H, Tq, D) || !fits(B, H, Tk, D) || !fits(1, 1, Tq, Tk)) return SLM_EINVAL;
    if (o->impl != SLM_ATTN_AUTO && o->impl != SLM_ATTN_REFERENCE && o->impl != SLM_ATTN_FLASH)
        return SLM_EINVAL;
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f)) return SLM_EINVAL; /* also NaN */
    if (o->batch_offset < 0 || o->batch_offset > INT32_MAX - B) return SLM_EINVAL;
    if (!isfinite(o->scale)) return SLM_EINVAL;
    if (o->kv_len)
        for (int b = 0; b < B; b++)
            if (o->kv_len[b] < 0 || o->kv_len[b] > Tk) return SLM_EINVAL;
    c->B = B;
    c->H = H;
    c->Tq = Tq;
    c->Tk = Tk;
    c->D = D;
    c->causal = o->causal != 0;
    c->scale = o->scale != 0.0f ? o->scale : 1.0f / sqrtf((float)D);
    c->mask = o->mask;
    c->kv_len = o->kv_len;
    c->dropout = o->dropout;
    c->seed = o->seed;
    c->b0 = o->batch_offset;
    c->q16 = c->k16 = c->v16 = c->out16 = NULL;
    return SLM_OK;
}

int slm_attention_forward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                          const float *q, const float *k, const float *v, float *out,
                          float *lse)
{
    attn_call c;
    int rc = validate(o, B, H, Tq, Tk, D, &c);
    if (rc) return rc;
    if (!q || !k || !v || !out) return SLM_EINVAL;
    if (o->impl == SLM_ATTN_REFERENCE) return attn_reference_forward(&c, q, k, v, out, lse);
    return attn_flash_forward(&c, q, k, v, out, lse);
}

int slm_attention_backward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                           const float *q, const float *k, const float *v, const float *out,
                           const float *lse, const float *dout, float *dq, float *dk,
                           float *dv)
{
    attn_call c;
    int rc = validate(o, B, H, Tq, Tk, D, &c);
    if (rc) return rc;
    if (!q || !k || !v || !out || !lse || !dout || !dq || !dk || !dv) return SLM_EINVAL;
    if (o->impl == SLM_ATTN_REFERENCE)
        return attn_reference_backward(&c, q, k, v, out, lse, dout, dq, dk, dv);
    return attn_flash_backward(&c, q, k, v, out, lse, dout, dq, dk, dv);
}

/* The reference implementation's route for bf16 inputs: whole widened
 * copies (it exists to be read and checked against, not to be fast). */
static int reference_backward_bf16(const attn_call *c, const uint16_t *q, const uint16_t *k,
                                   const uint16_t *v, const uint16_t *out, const float *lse,
                                   const float *dout, float *dq, float *dk, float *dv)
{
    size_t nq = (size_t)c->B * c->H * c->Tq * c->D, nk = (size_t)c->B * c->H * c->Tk * c->D;
    float *buf = alloc_aligned((2 * nq + 2 * nk) * sizeof *buf);
    if (!buf) return SLM_ENOMEM;
    float *fq = buf, *fo = fq + nq, *fk = fo + nq, *fv = fk + nk;
    bf16_widen_array(fq, q, nq);
    bf16_widen_array(fo, out, nq);
    bf16_widen_array(fk, k, nk);
    bf16_widen_array(fv, v, nk);
    int rc = attn_reference_backward(c, fq, fk, fv, fo, lse, dout, dq, dk, dv);
    free_aligned(buf);
    return rc;
}

int attention_backward_bf16_inputs(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                                   const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                   const uint16_t *out, const float *lse, const float *dout,
                                   float *dq, float *dk, float *dv)
{
    attn_call c;
    int rc = validate(o, B, H, Tq, Tk, D, &c);
    if (rc) return rc;
    if (!q || !k || !v || !out || !lse || !dout || !dq || !dk || !dv) return SLM_EINVAL;
    if (o->impl == SLM_ATTN_REFERENCE)
        return reference_backward_bf16(&c, q, k, v, out, lse, dout, dq, dk, dv);
    c.q16 = q, c.k16 = k, c.v16 = v, c.out16 = out;
    return attn_flash_backward(&c, NULL, NULL, NULL, NULL, lse, dout, dq, dk, dv);
}

size_t slm_attention_workspace_bytes(int impl, int B, int H, int Tq, int Tk, int D,
                                     int backward)
{
    slm_attn_opts o = {.impl = impl};
    attn_call c;
    if (validate(&o, B, H, Tq, Tk, D, &c)) return 0;
    if (impl == SLM_ATTN_REFERENCE) return attn_reference_workspace_bytes(&c, backward);
    return attn_flash_workspace_bytes(&c, backward);
}

int slm_attention_weights(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                          const float *q, const float *k, const float *lse, float *weights)
{
    attn_call c;
    int rc = validate(o, B, H, Tq, Tk, D, &c);
    if (rc) return rc;
    if (!q || !k || !lse || !weights) return SLM_EINVAL;
    return attn_weights(&c, q, k, lse, weights);
}

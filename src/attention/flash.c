/* Placeholder until the tiled kernel lands: see issue 3. */
#include "attention/attention_internal.h"

int attn_flash_forward(const attn_call *c, const float *q, const float *k, const float *v,
                       float *out, float *lse)
{
    (void)c; (void)q; (void)k; (void)v; (void)out; (void)lse;
    return SLM_EUNSUPPORTED;
}
int attn_flash_backward(const attn_call *c, const float *q, const float *k, const float *v,
                        const float *out, const float *lse, const float *dout, float *dq,
                        float *dk, float *dv)
{
    (void)c; (void)q; (void)k; (void)v; (void)out; (void)lse; (void)dout; (void)dq; (void)dk; (void)dv;
    return SLM_EUNSUPPORTED;
}
size_t attn_flash_workspace_bytes(const attn_call *c, int backward)
{
    (void)c; (void)backward;
    return 0;
}

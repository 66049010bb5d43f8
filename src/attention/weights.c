/*
 * The attention weights themselves, P = softmax(Q·Kᵀ·scale + M), recovered
 * from what the forward pass already produced instead of recomputed from
 * scratch:
 *
 *   P_ij = exp(scale·q_i·k_j + mask_ij − lse_i)   if key j is visible to i
 *   P_ij = 0                                       otherwise
 *
 * where lse_i = log Σ_j exp(scale·q_i·k_j + mask_ij) is the row's
 * log-sum-exp that slm_attention_forward writes (the flash kernel keeps it for
 * backward anyway). One dot product and one exp per entry: no second pass
 * for the row maximum or the sum, and the normaliser is exactly the one the
 * kernel used, so Σ_j P_ij·v_j reproduces the kernel's output (without
 * dropout). This is the FlashAttention-2 backward's recomputation of P
 * (Dao 2023, Alg. 2, line 11), written out for people to look at.
 */
#include "attention/attention_internal.h"

#include <math.h>

// q [B][H][Tq][D], k [B][H][Tk][D], lse [B][H][Tq] → p [B][H][Tq][Tk]
int attn_weights(const attn_call *c, const float *q, const float *k, const float *lse,
                 float *p)
{
    long rows = (long)c->B * c->H * c->Tq;
    int D = c->D, Tq = c->Tq, Tk = c->Tk;
#pragma omp parallel for schedule(static) if ((double)rows * Tk * D > 65536.0)
    for (long r = 0; r < rows; r++) {
        long head = r / Tq;
        int i = (int)(r % Tq), b = (int)(head / c->H);
        const float *qi = q + (size_t)r * D;
        const float *K = k + (size_t)head * Tk * D;
        float *row = p + (size_t)r * Tk;
        int visible = attn_visible_keys(c, b, i);
        float l = lse[r];
        for (int j = 0; j < Tk; j++) {
            float add = c->mask ? c->mask[(size_t)i * Tk + j] : 0.0f;
            if (j >= visible || add == -INFINITY || l == -INFINITY) {
                row[j] = 0.0f; /* hidden: exactly 0, as e^(−∞) */
                continue;
            }
            const float *kj = K + (size_t)j * D;
            float s = 0.0f;
            for (int e = 0; e < D; e++) s += qi[e] * kj[e];
            row[j] = expf(s * c->scale + add - l);
        }
    }
    return SLM_OK;
}

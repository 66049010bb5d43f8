/*
 * SLM_ATTN_REFERENCE: scaled dot-product attention exactly as Vaswani et al.
 * 2017, eq. 1 writes it (plus the mask and dropout of slm_attn_opts in
 * include/slm.h), with every intermediate materialised per head:
 *
 *   S = Q·Kᵀ·scale             scores            [Tq][Tk]
 *   S = S + M                  M = mask matrix   (0 where visible, -inf where not)
 *   P = softmax(S)             row-wise; lse = log Σ exp(S)
 *   P = dropout(P)             counter-based, survivors scaled by 1/(1-p)
 *   O = P·V                                      [Tq][D]
 *
 * It costs O(Tq·Tk) memory and exists to be read and to check the flash kernel
 * against. GEMMs go through gemm_f32 (kernels.h); the rest are plain loops.
 */
#include "attention/attention_internal.h"
#include "core/dropout_mask.h"
#include "core/alloc.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* M[i][j] = user mask + (0 if key j is visible to query i, else -inf), for
 * batch element b (kv_len is per batch). M is [Tq][Tk]. */
static void build_mask_matrix(const attn_call *c, int b, float *M)
{
    for (int i = 0; i < c->Tq; i++) {
        int visible = attn_visible_keys(c, b, i);
        float *row = M + (size_t)i * c->Tk;
        for (int j = 0; j < c->Tk; j++) {
            float add = c->mask ? c->mask[(size_t)i * c->Tk + j] : 0.0f;
            row[j] = j < visible ? add : -INFINITY;
        }
    }
}

/* Scales surviving weights of row i by 1/(1-p) and zeroes dropped ones. */
static void dropout_row(const attn_call *c, int b, int h, int i, float *p_row)
{
    uint64_t key = dropout_row_key(c->seed, c->b0 + b, h, i);
    uint32_t threshold = dropout_threshold(c->dropout);
    float keep_scale = 1.0f / (1.0f - c->dropout);
    for (int j = 0; j < c->Tk; j++)
        p_row[j] = dropout_keep(key, j, threshold) ? p_row[j] * keep_scale : 0.0f;
}

/* S = Q·Kᵀ·scale + M for one head. Q [Tq][D], K [Tk][D], S and M [Tq][Tk]. */
static void masked_scores(const attn_call *c, const float *Q, const float *K, const float *M,
                          float *S)
{
    gemm_f32('N', 'T', c->Tq, c->Tk, c->D, c->scale, Q, c->D, K, c->D, 0.0f, S, c->Tk);
    size_t n = (size_t)c->Tq * c->Tk;
    for (size_t e = 0; e < n; e++) S[e] += M[e];
}

size_t attn_reference_workspace_bytes(const attn_call *c, int backward)
{
    size_t tt = (size_t)c->Tq * c->Tk;
    return (backward ? 3 : 2) * tt * sizeof(float);
}

int attn_reference_forward(const attn_call *c, const float *q, const float *k,
                           const float *v, float *out, float *lse)
{
    size_t tt = (size_t)c->Tq * c->Tk;
    float *M = alloc_aligned(tt * sizeof(float));
    float *S = alloc_aligned(tt * sizeof(float));
    if (!M || !S) {
        free_aligned(M);
        free_aligned(S);
        return SLM_ENOMEM;
    }
    for (int b = 0; b < c->B; b++) {
        build_mask_matrix(c, b, M);
        for (int h = 0; h < c->H; h++) {
            size_t head = (size_t)b * c->H + h;
            const float *Q = q + head * c->Tq * c->D;
            const float *K = k + head * c->Tk * c->D;
            const float *V = v + head * c->Tk * c->D;
            masked_scores(c, Q, K, M, S);
            for (int i = 0; i < c->Tq; i++) {
                float *row = S + (size_t)i * c->Tk;
                float row_lse = slm_softmax(row, c->Tk);
                if (lse) lse[head * c->Tq + i] = row_lse;
                if (c->dropout > 0.0f) dropout_row(c, b, h, i, row);
            }
            gemm_f32('N', 'N', c->Tq, c->D, c->Tk, 1.0f, S, c->Tk, V, c->D, 0.0f, out + head * c->Tq * c->D, c->D);
        }
    }
    free_aligned(M);
    free_aligned(S);
    return SLM_OK;
}

/*
 * Backward, recomputing P from lse (never stored by forward):
 *   dV  = Pdᵀ·dO                  Pd = P after dropout
 *   dPd = dO·Vᵀ
 *   dS  = P ∘ (dPd∘Z − Δ)         Z = keep/(1−p), Δ_i = Σ_d dO_id·O_id
 *   dQ  = dS·K·scale,  dK = dSᵀ·Q·scale
 * (Δ_i = Σ_j Pd_ij·dPd_ij, the softmax Jacobian's row term, FlashAttention-2 §3.1.)
 */
int attn_reference_backward(const attn_call *c, const float *q, const float *k,
                            const float *v, const float *out, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv)
{
    size_t tt = (size_t)c->Tq * c->Tk;
    float *M = alloc_aligned(tt * sizeof(float));
    float *P = alloc_aligned(tt * sizeof(float));
    float *dP = alloc_aligned(tt * sizeof(float));
    if (!M || !P || !dP) {
        free_aligned(M);
        free_aligned(P);
        free_aligned(dP);
        return SLM_ENOMEM;
    }
    uint32_t threshold = dropout_threshold(c->dropout);
    float keep_scale = 1.0f / (1.0f - c->dropout);
    int Tq = c->Tq, Tk = c->Tk, D = c->D;
    for (int b = 0; b < c->B; b++) {
        build_mask_matrix(c, b, M);
        for (int h = 0; h < c->H; h++) {
            size_t head = (size_t)b * c->H + h;
            const float *Q = q + head * Tq * D, *K = k + head * Tk * D;
            const float *V = v + head * Tk * D, *O = out + head * Tq * D;
            const float *dO = dout + head * Tq * D;
            masked_scores(c, Q, K, M, P);
            for (int i = 0; i < Tq; i++) {
                float l = lse[head * Tq + i];
                float *row = P + (size_t)i * Tk;
                for (int j = 0; j < Tk; j++)
                    row[j] = l == -INFINITY ? 0.0f : expf(row[j] - l);
            }
            /* dPd = dO·Vᵀ, before P is overwritten by its dropped version. */
            gemm_f32('N', 'T', Tq, Tk, D, 1.0f, dO, D, V, D, 0.0f, dP, Tk);
            for (int i = 0; i < Tq; i++) {
                float *p_row = P + (size_t)i * Tk, *dp_row = dP + (size_t)i * Tk;
                float delta = 0.0f;
                for (int d = 0; d < D; d++) delta += dO[(size_t)i * D + d] * O[(size_t)i * D + d];
                uint64_t key = dropout_row_key(c->seed, c->b0 + b, h, i);
                for (int j = 0; j < Tk; j++) {
                    int keep = c->dropout == 0.0f || dropout_keep(key, j, threshold);
                    float z = keep ? (c->dropout > 0.0f ? keep_scale : 1.0f) : 0.0f;
                    float p = p_row[j];
                    dp_row[j] = p * (dp_row[j] * z - delta); /* dS */
                    p_row[j] = p * z;                        /* Pd */
                }
            }
            gemm_f32('T', 'N', Tk, D, Tq, 1.0f, P, Tk, dO, D, 0.0f, dv + head * Tk * D, D);
            gemm_f32('N', 'N', Tq, D, Tk, c->scale, dP, Tk, K, D, 0.0f, dq + head * Tq * D, D);
            gemm_f32('T', 'N', Tk, D, Tq, c->scale, dP, Tk, Q, D, 0.0f, dk + head * Tk * D, D);
        }
    }
    free_aligned(M);
    free_aligned(P);
    free_aligned(dP);
    return SLM_OK;
}

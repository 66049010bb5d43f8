/*
 * An independent float64 attention for the tests: plain loops, no BLAS, every
 * option of slm_attention_forward/backward (include/slm.h), written from the math
 * rather than from src/attention/reference.c, so the two can check each other.
 *
 *   S_ij = scale·q_i·k_j + mask_ij      for visible j (causal, kv_len, mask ≠ -inf)
 *   P_ij = exp(S_ij − lse_i),  lse_i = log Σ_j exp(S_ij)
 *   Z_ij = keep(seed,b,h,i,j)/(1−p)     the dropout factor (1 without dropout)
 *   out_i = Σ_j P_ij Z_ij v_j
 *
 * Inputs are double so that finite differences can perturb them finely; the
 * options take the same float mask / int kv_len arrays as the C API.
 */
#ifndef SLM_TEST_REF_ATTENTION64_H
#define SLM_TEST_REF_ATTENTION64_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int B, H, Tq, Tk, D;
    int causal;        /* j visible to i iff j <= i + (Tk - Tq)          */
    double scale;      /* 0 → 1/sqrt(D)                                   */
    const float *mask; /* [Tq][Tk] additive, or NULL                      */
    const int *kv_len; /* [B], or NULL                                    */
    float dropout;     /* float, as the C API takes it (same threshold)   */
    uint64_t seed;
} ref64_opts;

/* Z_ij of the dropout: 0 if (b,h,i,j) is dropped, else 1/(1-p) (1 if p = 0).
 * Uses the hash of src/core/dropout_mask.h, which is the contract. */
double ref64_dropout_factor(const ref64_opts *o, int b, int h, int i, int j);

/* q [B][H][Tq][D], k,v [B][H][Tk][D] → out [B][H][Tq][D], lse [B][H][Tq]
 * (lse may be NULL). A row with no visible key: out 0, lse -inf. */
void ref64_forward(const ref64_opts *o, const double *q, const double *k, const double *v,
                   double *out, double *lse);

/* Gradients of Σ dout∘out with respect to q, k, v (overwritten). */
void ref64_backward(const ref64_opts *o, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv);

/* Widening / narrowing copies. */
void ref64_widen(const float *x, double *y, size_t n);

#endif

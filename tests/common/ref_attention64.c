/*
 * Float64 attention, one query row at a time, straight from the definitions
 * (see ref_attention64.h). Slow on purpose: O(Tq·Tk·D) plain loops, no tiling,
 * no BLAS, nothing shared with the library except the dropout hash, which is
 * part of the contract (slm_attn_opts in include/slm.h: both implementations
 * drop the same elements).
 */
#include "ref_attention64.h"

#include "core/dropout_mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref64_widen(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

static double resolved_scale(const ref64_opts *o)
{
    return o->scale != 0.0 ? o->scale : 1.0 / sqrt((double)o->D);
}

double ref64_dropout_factor(const ref64_opts *o, int b, int h, int i, int j)
{
    if (o->dropout == 0.0f) return 1.0;
    uint64_t key = dropout_row_key(o->seed, b, h, i);
    uint32_t threshold = dropout_threshold(o->dropout);
    return dropout_bits(key, j) >= threshold ? 1.0 / (1.0 - (double)o->dropout) : 0.0;
}

/* Scores of query row i of head (b,h) into s[Tk]; invisible keys get -inf.
 * Returns lse_i (-inf if no key is visible) and turns s into P_i·(row has
 * keys), i.e. s[j] = exp(s_j - lse_i), 0 where invisible. */
static double row_probs(const ref64_opts *o, int b, const double *qi, const double *K, int i,
                        double *s)
{
    const int Tk = o->Tk, D = o->D;
    const double scale = resolved_scale(o);
    double m = -INFINITY;
    for (int j = 0; j < Tk; j++) {
        int visible = 1;
        if (o->causal && j > i + (Tk - o->Tq)) visible = 0;
        if (o->kv_len && j >= o->kv_len[b]) visible = 0;
        double add = o->mask ? (double)o->mask[(size_t)i * Tk + j] : 0.0;
        if (add == -INFINITY) visible = 0;
        if (!visible) {
            s[j] = -INFINITY;
            continue;
        }
        double dot = 0.0;
        for (int d = 0; d < D; d++)
            dot += qi[d] * K[(size_t)j * D + d];
        s[j] = scale * dot + add;
        if (s[j] > m) m = s[j];
    }
    if (m == -INFINITY) {
        for (int j = 0; j < Tk; j++)
            s[j] = 0.0;
        return -INFINITY;
    }
    double sum = 0.0;
    for (int j = 0; j < Tk; j++)
        sum += s[j] == -INFINITY ? 0.0 : exp(s[j] - m);
    double lse = m + log(sum);
    for (int j = 0; j < Tk; j++)
        s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - lse);
    return lse;
}

void ref64_forward(const ref64_opts *o, const double *q, const double *k, const double *v,
                   double *out, double *lse)
{
    const int Tq = o->Tq, Tk = o->Tk, D = o->D;
    double *p = malloc((size_t)Tk * sizeof *p);
    if (!p) abort(); /* test code: a few KiB */
    for (int b = 0; b < o->B; b++)
        for (int h = 0; h < o->H; h++) {
            size_t head = (size_t)b * o->H + h;
            const double *Q = q + head * Tq * D, *K = k + head * Tk * D, *V = v + head * Tk * D;
            double *O = out + head * Tq * D;
            for (int i = 0; i < Tq; i++) {
                double l = row_probs(o, b, Q + (size_t)i * D, K, i, p);
                if (lse) lse[head * Tq + i] = l;
                for (int d = 0; d < D; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < Tk; j++)
                        if (p[j] != 0.0)
                            acc +=
                                p[j] * ref64_dropout_factor(o, b, h, i, j) * V[(size_t)j * D + d];
                    O[(size_t)i * D + d] = acc;
                }
            }
        }
    free(p);
}

/*
 * For L = Σ dout∘out, with Pd_ij = P_ij Z_ij:
 *   dv_j  = Σ_i Pd_ij dout_i
 *   dP_ij = ∂L/∂P_ij = Z_ij (dout_i · v_j)
 *   dS_ij = P_ij (dP_ij − Σ_l P_il dP_il)        softmax Jacobian
 *   dq_i  = scale Σ_j dS_ij k_j,   dk_j = scale Σ_i dS_ij q_i
 * Invisible keys have P_ij = 0, so they get no gradient, and a row with no
 * visible key contributes nothing.
 */
void ref64_backward(const ref64_opts *o, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv)
{
    const int B = o->B, H = o->H, Tq = o->Tq, Tk = o->Tk, D = o->D;
    const double scale = resolved_scale(o);
    memset(dq, 0, (size_t)B * H * Tq * D * sizeof *dq);
    memset(dk, 0, (size_t)B * H * Tk * D * sizeof *dk);
    memset(dv, 0, (size_t)B * H * Tk * D * sizeof *dv);
    double *p = malloc((size_t)Tk * sizeof *p), *dp = malloc((size_t)Tk * sizeof *dp);
    if (!p || !dp) abort();
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t head = (size_t)b * H + h;
            const double *Q = q + head * Tq * D, *K = k + head * Tk * D, *V = v + head * Tk * D;
            const double *dO = dout + head * Tq * D;
            double *dQ = dq + head * Tq * D, *dK = dk + head * Tk * D, *dV = dv + head * Tk * D;
            for (int i = 0; i < Tq; i++) {
                const double *qi = Q + (size_t)i * D, *gi = dO + (size_t)i * D;
                row_probs(o, b, qi, K, i, p);
                double rowsum = 0.0;
                for (int j = 0; j < Tk; j++) {
                    double z = ref64_dropout_factor(o, b, h, i, j), g = 0.0;
                    for (int d = 0; d < D; d++)
                        g += gi[d] * V[(size_t)j * D + d];
                    dp[j] = z * g;
                    rowsum += p[j] * dp[j];
                    for (int d = 0; d < D; d++)
                        dV[(size_t)j * D + d] += p[j] * z * gi[d];
                }
                for (int j = 0; j < Tk; j++) {
                    double ds = p[j] * (dp[j] - rowsum);
                    for (int d = 0; d < D; d++) {
                        dQ[(size_t)i * D + d] += scale * ds * K[(size_t)j * D + d];
                        dK[(size_t)j * D + d] += scale * ds * qi[d];
                    }
                }
            }
        }
    free(p);
    free(dp);
}

#include "attn_case.h"

#include "../test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A deterministic value in [0,1) for index e of stream `seed` (splitmix64). */
static double hash01(uint64_t seed, uint64_t e)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + e * 0xd1b54a32d192ed03ULL + 1;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_mask(attn_case *c)
{
    const attn_shape *s = &c->s;
    for (int i = 0; i < s->Tq; i++)
        for (int j = 0; j < s->Tk; j++) {
            size_t e = (size_t)i * s->Tk + j;
            double u = hash01(77, e);
            c->mask[e] = u < 0.25 ? -INFINITY : (float)(-1.0 + 1.5 * hash01(78, e));
            if (s->mask_kind == MASK_DEAD_ROWS && (i == 1 % s->Tq || i == s->Tq - 1))
                c->mask[e] = -INFINITY;
        }
}

int attn_case_init(attn_case *c, const attn_shape *s, unsigned long long data_seed)
{
    memset(c, 0, sizeof *c);
    c->s = *s;
    c->nq = (size_t)s->B * s->H * s->Tq * s->D;
    c->nk = (size_t)s->B * s->H * s->Tk * s->D;
    c->nl = (size_t)s->B * s->H * s->Tq;
    float **f[] = {&c->q, &c->dout, &c->out, &c->dq};
    float **g[] = {&c->k, &c->v, &c->dk, &c->dv};
    double **f64[] = {&c->q64, &c->dout64, &c->out64, &c->dq64};
    double **g64[] = {&c->k64, &c->v64, &c->dk64, &c->dv64};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        ok &= (*f[i] = malloc(c->nq * sizeof(float))) != NULL;
        ok &= (*g[i] = malloc(c->nk * sizeof(float))) != NULL;
        ok &= (*f64[i] = malloc(c->nq * sizeof(double))) != NULL;
        ok &= (*g64[i] = malloc(c->nk * sizeof(double))) != NULL;
    }
    ok &= (c->lse = malloc(c->nl * sizeof(float))) != NULL;
    ok &= (c->lse64 = malloc(c->nl * sizeof(double))) != NULL;
    if (s->mask_kind) ok &= (c->mask = malloc((size_t)s->Tq * s->Tk * sizeof(float))) != NULL;
    if (s->kv_kind) ok &= (c->kv_len = malloc((size_t)s->B * sizeof(int))) != NULL;
    if (!ok) {
        attn_case_free(c);
        return -1;
    }
    test_fill_uniform(c->q, c->nq, data_seed, -2.0f, 2.0f);
    test_fill_uniform(c->k, c->nk, data_seed + 1, -2.0f, 2.0f);
    test_fill_uniform(c->v, c->nk, data_seed + 2, -1.0f, 1.0f);
    test_fill_uniform(c->dout, c->nq, data_seed + 3, -1.0f, 1.0f);
    if (c->mask) fill_mask(c);
    if (c->kv_len)
        for (int b = 0; b < s->B; b++)
            c->kv_len[b] = b == 0 ? 0 : b == s->B - 1 ? s->Tk : (2 * s->Tk + 2) / 3;
    attn_case_widen(c);
    return 0;
}

void attn_case_widen(attn_case *c)
{
    ref64_widen(c->q, c->q64, c->nq);
    ref64_widen(c->k, c->k64, c->nk);
    ref64_widen(c->v, c->v64, c->nk);
    ref64_widen(c->dout, c->dout64, c->nq);
}

void attn_case_free(attn_case *c)
{
    void *all[] = {c->mask,   c->kv_len, c->q,     c->k,    c->v,    c->dout, c->out,
                   c->lse,    c->dq,     c->dk,    c->dv,   c->q64,  c->k64,  c->v64,
                   c->dout64, c->out64,  c->lse64, c->dq64, c->dk64, c->dv64};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
    memset(c, 0, sizeof *c);
}

slm_attn_opts attn_case_opts(const attn_case *c, int impl)
{
    slm_attn_opts o = {.impl = impl,
                       .causal = c->s.causal,
                       .scale = c->s.scale,
                       .mask = c->mask,
                       .kv_len = c->kv_len,
                       .dropout = c->s.dropout,
                       .seed = c->s.seed};
    return o;
}

ref64_opts attn_case_opts64(const attn_case *c)
{
    ref64_opts o = {.B = c->s.B,
                    .H = c->s.H,
                    .Tq = c->s.Tq,
                    .Tk = c->s.Tk,
                    .D = c->s.D,
                    .causal = c->s.causal,
                    .scale = c->s.scale,
                    .mask = c->mask,
                    .kv_len = c->kv_len,
                    .dropout = c->s.dropout,
                    .seed = c->s.seed};
    return o;
}

void attn_case_run64(attn_case *c)
{
    ref64_opts o = attn_case_opts64(c);
    ref64_forward(&o, c->q64, c->k64, c->v64, c->out64, c->lse64);
    ref64_backward(&o, c->q64, c->k64, c->v64, c->dout64, c->dq64, c->dk64, c->dv64);
}

static void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

int attn_case_run(attn_case *c, int impl)
{
    const attn_shape *s = &c->s;
    slm_attn_opts o = attn_case_opts(c, impl);
    fill_nan(c->out, c->nq);
    fill_nan(c->lse, c->nl);
    fill_nan(c->dq, c->nq);
    fill_nan(c->dk, c->nk);
    fill_nan(c->dv, c->nk);
    int rc =
        slm_attention_forward(&o, s->B, s->H, s->Tq, s->Tk, s->D, c->q, c->k, c->v, c->out, c->lse);
    if (rc) return rc;
    return slm_attention_backward(&o, s->B, s->H, s->Tq, s->Tk, s->D, c->q, c->k, c->v, c->out,
                                  c->lse, c->dout, c->dq, c->dk, c->dv);
}

double attn_max_abs(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* The size of the terms each output is summed from (see the header): out_i =
 * Σ_j P_ij v_j is bounded by max|v|; dv by max|dout|; dq = scale·Σ dS·k with
 * |dS| <~ max|dout|·max|v|; dk likewise with q; lse by its scores (>= 1). */
static void term_scales(const attn_case *c, double t[5])
{
    double scale = c->s.scale != 0.0f ? c->s.scale : 1.0 / sqrt((double)c->s.D);
    double mq = attn_max_abs(c->q64, c->nq), mk = attn_max_abs(c->k64, c->nk);
    double mv = attn_max_abs(c->v64, c->nk), mg = attn_max_abs(c->dout64, c->nq);
    t[0] = mv;
    t[1] = 1.0;
    t[2] = fabs(scale) * mk * mg * mv;
    t[3] = fabs(scale) * mq * mg * mv;
    t[4] = mg;
}

double attn_case_err64(const attn_case *c, double rtol, const char **what)
{
    const float *got[] = {c->out, c->lse, c->dq, c->dk, c->dv};
    const double *want[] = {c->out64, c->lse64, c->dq64, c->dk64, c->dv64};
    const size_t n[] = {c->nq, c->nl, c->nq, c->nk, c->nk};
    const char *names[] = {"out", "lse", "dq", "dk", "dv"};
    double terms[5], worst = 0.0;
    term_scales(c, terms);
    *what = "nothing";
    for (int t = 0; t < 5; t++) {
        double m = attn_max_abs(want[t], n[t]);
        double atol = rtol * (m > terms[t] ? m : terms[t]);
        double e = test_max_err_fd(got[t], want[t], n[t], rtol, atol);
        if (t == 0 || e > worst) {
            worst = e;
            *what = names[t];
        }
    }
    return worst;
}

/*
 * SLM_ATTN_FLASH against SLM_ATTN_REFERENCE (the materialised seed
 * algorithm), forward and backward, over the shapes and options where a tiled
 * kernel goes wrong: one token, odd sizes, sizes that are not a multiple of
 * the 64-wide tiles, more keys than queries (bottom-right causal), head sizes
 * with vector remainders, masks, padding, dropout, rows with nothing to see,
 * the split-key backward used when heads are few, and invalid arguments.
 */
/* The vector type of the widest kernels this build compiles for (the ones
 * the CPU that builds the tests runs), for the 2^x accuracy test; the
 * kernels themselves are reached through the public API. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__FMA__)
#define FLASH_ISA 2 /* FLASH_ISA_AVX512 */
#elif defined(__AVX2__) && defined(__FMA__)
#define FLASH_ISA 1 /* FLASH_ISA_AVX2 */
#endif
#include "attention/attention_bf16.h"
#include "attention/flash_simd.h"
#include "kernels/bf16.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Agreement required between the two implementations, from fp32 rounding at
 * the case's shapes rather than tuned on one CPU: each output is a chain of at
 * most max(Tq, Tk) accumulations fed by D-term dot products, plus a few
 * roundings in exp, log and divisions, so each implementation is within
 * (max(Tq,Tk) + D + 16)·2⁻²⁴ of the exact result relative to the size of the
 * summed terms, and the two within twice that. Relative to each element, with
 * an absolute floor of the same fraction of the tensor's largest magnitude
 * (elements that cancel to ~0 carry only absolute error). */
#define ERR_FLOOR 1e-3

static double shape_rtol(int Tq, int Tk, int D)
{
    return 2.0 * ((Tq > Tk ? Tq : Tk) + D + 16) * 0x1p-24;
}

typedef struct {
    int B, H, Tq, Tk, D;
    int causal;
    float scale, dropout;
    uint64_t seed;
    int with_mask;     /* random finite mask with some -inf entries */
    const int *kv_len; /* or NULL */
    float qk_range;    /* inputs uniform in [-r, r] (default 1) */
} shape;

typedef struct {
    float *q, *k, *v, *dout, *mask;
    float *out, *lse, *dq, *dk, *dv; /* one set per implementation */
} tensors;

static float *fill(size_t n, unsigned long long seed, float r)
{
    float *x = malloc(n * sizeof *x);
    test_fill_uniform(x, n, seed, -r, r);
    return x;
}

static slm_attn_opts opts_of(const shape *s, int impl, const float *mask)
{
    slm_attn_opts o = {.impl = impl,
                       .causal = s->causal,
                       .scale = s->scale,
                       .mask = mask,
                       .kv_len = s->kv_len,
                       .dropout = s->dropout,
                       .seed = s->seed};
    return o;
}

/* Runs forward + backward with one implementation into freshly allocated
 * outputs (pre-filled with NaN, so anything not written shows up). */
static int run_impl(const shape *s, int impl, const tensors *in, tensors *res)
{
    size_t nq = (size_t)s->B * s->H * s->Tq * s->D, nk = (size_t)s->B * s->H * s->Tk * s->D;
    size_t nl = (size_t)s->B * s->H * s->Tq;
    res->out = malloc(nq * sizeof(float));
    res->lse = malloc(nl * sizeof(float));
    res->dq = malloc(nq * sizeof(float));
    res->dk = malloc(nk * sizeof(float));
    res->dv = malloc(nk * sizeof(float));
    for (size_t e = 0; e < nq; e++)
        res->out[e] = res->dq[e] = NAN;
    for (size_t e = 0; e < nk; e++)
        res->dk[e] = res->dv[e] = NAN;
    for (size_t e = 0; e < nl; e++)
        res->lse[e] = NAN;
    slm_attn_opts o = opts_of(s, impl, in->mask);
    int rc = slm_attention_forward(&o, s->B, s->H, s->Tq, s->Tk, s->D, in->q, in->k, in->v,
                                   res->out, res->lse);
    if (rc) return rc;
    return slm_attention_backward(&o, s->B, s->H, s->Tq, s->Tk, s->D, in->q, in->k, in->v, res->out,
                                  res->lse, in->dout, res->dq, res->dk, res->dv);
}

static void free_results(tensors *t)
{
    free(t->out), free(t->lse), free(t->dq), free(t->dk), free(t->dv);
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* Worst error of a vs b in units of the tolerance rtol (<= 1 passes). */
static double err(const float *a, const float *b, size_t n, double rtol)
{
    double m = max_abs(b, n);
    return test_max_err_f(a, b, n, rtol, rtol * (m > ERR_FLOOR ? m : ERR_FLOOR));
}

static void make_inputs(const shape *s, tensors *in)
{
    size_t nq = (size_t)s->B * s->H * s->Tq * s->D, nk = (size_t)s->B * s->H * s->Tk * s->D;
    float r = s->qk_range > 0 ? s->qk_range : 1.0f;
    in->q = fill(nq, 1 + s->seed, r);
    in->k = fill(nk, 2 + s->seed, r);
    in->v = fill(nk, 3 + s->seed, 1.0f);
    in->dout = fill(nq, 4 + s->seed, 1.0f);
    in->mask = NULL;
    if (s->with_mask) {
        size_t nm = (size_t)s->Tq * s->Tk;
        in->mask = fill(nm, 5 + s->seed, 2.0f);
        for (size_t e = 0; e < nm; e++)
            if (in->mask[e] > 1.4f) in->mask[e] = -INFINITY; /* ~15 % hidden */
    }
}

static void free_inputs(tensors *in)
{
    free(in->q), free(in->k), free(in->v), free(in->dout), free(in->mask);
}

/* Flash vs reference on one shape; `what` names the case in messages. */
static void compare(const shape *s, const char *what)
{
    tensors in, ref, fl;
    make_inputs(s, &in);
    int rc1 = run_impl(s, SLM_ATTN_REFERENCE, &in, &ref);
    int rc2 = run_impl(s, SLM_ATTN_FLASH, &in, &fl);
    CHECK(rc1 == 0 && rc2 == 0, "%s: rc ref %d flash %d", what, rc1, rc2);
    if (rc1 == 0 && rc2 == 0) {
        size_t nq = (size_t)s->B * s->H * s->Tq * s->D;
        size_t nk = (size_t)s->B * s->H * s->Tk * s->D, nl = (size_t)s->B * s->H * s->Tq;
        double rtol = shape_rtol(s->Tq, s->Tk, s->D);
        double e_out = err(fl.out, ref.out, nq, rtol),
               e_lse = test_max_err_f(fl.lse, ref.lse, nl, rtol, rtol);
        double e_dq = err(fl.dq, ref.dq, nq, rtol), e_dk = err(fl.dk, ref.dk, nk, rtol);
        double e_dv = err(fl.dv, ref.dv, nk, rtol);
        if (getenv("SLM_TEST_VERBOSE"))
            printf("  %-28s out %.3f lse %.3f dq %.3f dk %.3f dv %.3f\n", what, e_out, e_lse, e_dq,
                   e_dk, e_dv);
        CHECK(e_out <= 1, "%s: out off by %.2f tolerances", what, e_out);
        CHECK(e_lse <= 1, "%s: lse off by %.2f tolerances", what, e_lse);
        CHECK(e_dq <= 1, "%s: dq off by %.2f tolerances", what, e_dq);
        CHECK(e_dk <= 1, "%s: dk off by %.2f tolerances", what, e_dk);
        CHECK(e_dv <= 1, "%s: dv off by %.2f tolerances", what, e_dv);
    }
    free_results(&ref);
    free_results(&fl);
    free_inputs(&in);
}

/* One query, one key: softmax is 1, so out = v, lse = q·k·scale, dv = dout,
 * and dq = dk = 0 exactly in real arithmetic (dS = P·(dP − Δ) with Δ = dP),
 * so they are checked as known answers rather than relative to ~1e-8 noise. */
static void test_single_token(void)
{
    enum { H = 2, D = 16 };
    float q[H * D], k[H * D], v[H * D], dout[H * D], out[H * D], lse[H], dq[H * D], dk[H * D],
        dv[H * D];
    test_fill_uniform(q, H * D, 1, -1, 1);
    test_fill_uniform(k, H * D, 2, -1, 1);
    test_fill_uniform(v, H * D, 3, -1, 1);
    test_fill_uniform(dout, H * D, 4, -1, 1);
    for (int causal = 0; causal <= 1; causal++) {
        slm_attn_opts o = {.impl = SLM_ATTN_FLASH, .causal = causal};
        CHECK(slm_attention_forward(&o, 1, H, 1, 1, D, q, k, v, out, lse) == 0, "forward");
        CHECK(slm_attention_backward(&o, 1, H, 1, 1, D, q, k, v, out, lse, dout, dq, dk, dv) == 0,
              "backward");
        for (int h = 0; h < H; h++) {
            double qk = 0;
            for (int d = 0; d < D; d++)
                qk += (double)q[h * D + d] * k[h * D + d];
            CHECK_CLOSE(lse[h], qk / 4.0, 1e-6, 1e-6, "lse[%d] %g", h, lse[h]);
        }
        for (int e = 0; e < H * D; e++) {
            CHECK_CLOSE(out[e], v[e], 1e-6, 0, "out[%d]", e);
            CHECK_CLOSE(dv[e], dout[e], 1e-6, 0, "dv[%d]", e);
            CHECK(fabsf(dq[e]) < 1e-6f && fabsf(dk[e]) < 1e-6f, "dq/dk[%d] %g %g", e, dq[e], dk[e]);
        }
    }
    compare(&(shape){1, 2, 1, 2, 16, 1, 0, 0, 1, 0, NULL, 0}, "Tq=1 Tk=2 causal");
    compare(&(shape){2, 1, 2, 3, 16, 0, 0, 0, 1, 0, NULL, 0}, "Tq=2 Tk=3");
}

static void test_odd_sizes(void)
{
    compare(&(shape){1, 1, 37, 37, 3, 1, 0, 0, 2, 0, NULL, 0}, "T=37 D=3 causal");
    compare(&(shape){2, 3, 53, 53, 7, 0, 0, 0, 3, 0, NULL, 0}, "T=53 D=7");
}

static void test_sizes_not_multiple_of_tile(void)
{
    compare(&(shape){2, 3, 100, 100, 64, 1, 0, 0, 4, 0, NULL, 0}, "T=100 causal");
    compare(&(shape){1, 2, 130, 130, 64, 0, 0, 0, 5, 0, NULL, 0}, "T=130");
    compare(&(shape){1, 1, 193, 193, 32, 1, 0, 0, 6, 0, NULL, 0}, "T=193 causal");
}

static void test_more_keys_than_queries_bottom_right(void)
{
    compare(&(shape){1, 2, 50, 130, 32, 1, 0, 0, 7, 0, NULL, 0}, "Tq=50 Tk=130 causal");
    compare(&(shape){1, 2, 1, 300, 64, 1, 0, 0, 8, 0, NULL, 0}, "decode Tq=1 Tk=300");
    compare(&(shape){1, 1, 17, 200, 16, 0, 0, 0, 9, 0, NULL, 0}, "Tq=17 Tk=200");
}

/* One query (decoding: forward_one_query's path): head sizes with a vector
 * tail, more keys than one chunk of scores (1,024) with large scores so the
 * running max moves between chunks, a mask with hidden keys, and kv_len with
 * an empty row. */
static void test_one_query_decoding(void)
{
    static const int Ds[] = {64, 48, 17, 3};
    char what[64];
    for (size_t i = 0; i < sizeof Ds / sizeof *Ds; i++) {
        snprintf(what, sizeof what, "Tq=1 Tk=2500 D=%d large scores", Ds[i]);
        compare(&(shape){1, 3, 1, 2500, Ds[i], 1, 0, 0, 70 + i, 0, NULL, 3.0f}, what);
    }
    compare(&(shape){2, 2, 1, 1100, 32, 0, 0, 0, 75, 1, NULL, 0}, "Tq=1 Tk=1100 mask");
    static const int kv[] = {0, 1030, 9};
    compare(&(shape){3, 2, 1, 1200, 48, 1, 0, 0, 76, 1, kv, 2.0f}, "Tq=1 kv_len {0,1030,9} + mask");
}

/* Tq > Tk with causal: the first Tq−Tk queries see nothing (out 0, lse −inf). */
static void test_more_queries_than_keys_causal(void)
{
    compare(&(shape){1, 2, 90, 40, 16, 1, 0, 0, 10, 0, NULL, 0}, "Tq=90 Tk=40 causal");
}

static void test_head_sizes(void)
{
    static const int Ds[] = {16, 32, 64, 80, 96, 128, 3, 1, 17};
    char what[64];
    for (size_t i = 0; i < sizeof Ds / sizeof *Ds; i++) {
        snprintf(what, sizeof what, "D=%d causal", Ds[i]);
        compare(&(shape){1, 2, 70, 70, Ds[i], 1, 0, 0, 11 + i, 0, NULL, 0}, what);
        snprintf(what, sizeof what, "D=%d", Ds[i]);
        compare(&(shape){1, 1, 45, 77, Ds[i], 0, 0, 0, 31 + i, 0, NULL, 0}, what);
    }
}

static void test_custom_scale_and_large_scores(void)
{
    compare(&(shape){1, 2, 150, 150, 32, 1, 0.37f, 0, 40, 0, NULL, 0}, "scale 0.37");
    /* Scores up to ~±60: the running max changes across tiles, exercising the
     * e^(m_old − m_new) rescale of O and l. */
    compare(&(shape){1, 2, 150, 200, 32, 0, 0, 0, 41, 0, NULL, 3.0f}, "large scores");
}

static void test_mask_with_causal(void)
{
    compare(&(shape){2, 2, 90, 90, 32, 1, 0, 0, 50, 1, NULL, 0}, "mask + causal");
    compare(&(shape){1, 2, 40, 140, 16, 0, 0, 0, 51, 1, NULL, 0}, "mask, Tk > Tq");
}

static void test_kv_len_padding_with_empty_batch(void)
{
    static const int kv[3] = {0, 17, 70};
    compare(&(shape){3, 2, 70, 70, 32, 0, 0, 0, 60, 0, kv, 0}, "kv_len {0,17,70}");
    compare(&(shape){3, 2, 70, 70, 32, 1, 0, 0, 61, 0, kv, 0}, "kv_len + causal");
    static const int kv2[2] = {130, 65};
    compare(&(shape){2, 1, 20, 140, 32, 1, 0, 0, 62, 1, kv2, 0}, "kv_len + causal + mask");
}

static void test_dropout_matches_reference(void)
{
    compare(&(shape){2, 2, 100, 100, 32, 1, 0, 0.3f, 70, 0, NULL, 0}, "dropout 0.3 causal");
    compare(&(shape){1, 2, 33, 150, 64, 0, 0, 0.1f, 71, 1, NULL, 0}, "dropout 0.1 + mask");
}

/* Dropout really drops: the output moves away from the no-dropout one, and a
 * different seed drops different elements. */
static void test_dropout_changes_output(void)
{
    shape s = {1, 1, 64, 64, 16, 0, 0, 0.5f, 80, 0, NULL, 0};
    shape other_seed = s, no_dropout = s;
    other_seed.seed = 81;
    no_dropout.dropout = 0;
    tensors in, a, b, c;
    make_inputs(&s, &in); /* the same inputs for all three runs */
    run_impl(&s, SLM_ATTN_FLASH, &in, &a);
    run_impl(&other_seed, SLM_ATTN_FLASH, &in, &b);
    run_impl(&no_dropout, SLM_ATTN_FLASH, &in, &c);
    double ab = 0, ac = 0;
    for (size_t e = 0; e < 64 * 16; e++) {
        ab += fabs(a.out[e] - b.out[e]);
        ac += fabs(a.out[e] - c.out[e]);
    }
    CHECK(ab > 1.0, "seeds 80 and 81 gave the same output (sum |diff| = %g)", ab);
    CHECK(ac > 1.0, "dropout 0.5 left the output unchanged (sum |diff| = %g)", ac);
    free_results(&a);
    free_results(&b);
    free_results(&c);
    free_inputs(&in);
}

/* A mask row of only −inf hides everything: out 0, lse −inf, zero gradient
 * for that query, no NaN anywhere. */
static void test_fully_masked_rows(void)
{
    shape s = {1, 2, 70, 70, 32, 0, 0, 0, 90, 1, NULL, 0};
    tensors in, fl;
    make_inputs(&s, &in);
    for (int j = 0; j < 70; j++)
        in.mask[3 * 70 + j] = in.mask[66 * 70 + j] = -INFINITY;
    int rc = run_impl(&s, SLM_ATTN_FLASH, &in, &fl);
    CHECK(rc == 0, "rc %d", rc);
    size_t nq = 2 * 70 * 32, nl = 2 * 70;
    for (size_t e = 0; e < nq; e++) {
        CHECK(isfinite(fl.out[e]) && isfinite(fl.dq[e]), "non-finite at %zu", e);
        CHECK(isfinite(fl.dk[e]) && isfinite(fl.dv[e]), "non-finite dk/dv at %zu", e);
    }
    for (size_t e = 0; e < nl; e++) {
        int hidden = e % 70 == 3 || e % 70 == 66;
        CHECK(hidden ? fl.lse[e] == -INFINITY : isfinite(fl.lse[e]), "lse[%zu] = %g", e, fl.lse[e]);
        if (!hidden) continue;
        for (int d = 0; d < 32; d++) {
            CHECK(fl.out[e * 32 + d] == 0.0f, "out row %zu not 0", e);
            CHECK(fl.dq[e * 32 + d] == 0.0f, "dq row %zu not 0", e);
        }
    }
    free_results(&fl);
    free_inputs(&in);
    compare(&s, "fully masked rows vs reference");
}

/* Backward overwrites dq, dk, dv: the NaN pre-fill of run_impl must be gone
 * everywhere, including keys no query sees (kv_len) and the first Tq−Tk
 * queries of a causal Tq > Tk call. */
static void test_gradients_overwritten(void)
{
    static const int kv[2] = {0, 33};
    shape s = {2, 1, 80, 64, 16, 1, 0, 0, 95, 0, kv, 0};
    tensors in, fl;
    make_inputs(&s, &in);
    CHECK(run_impl(&s, SLM_ATTN_FLASH, &in, &fl) == 0, "rc");
    for (size_t e = 0; e < 2 * 80 * 16; e++)
        CHECK(isfinite(fl.dq[e]), "dq[%zu] not written", e);
    for (size_t e = 0; e < 2 * 64 * 16; e++) {
        CHECK(isfinite(fl.dk[e]) && isfinite(fl.dv[e]), "dk/dv[%zu] not written", e);
        if (e < 64 * 16 || e % (64 * 16) >= 33 * 16)
            CHECK(fl.dk[e] == 0 && fl.dv[e] == 0, "invisible key %zu has gradient", e);
    }
    free_results(&fl);
    free_inputs(&in);
}

/* With 3 heads on 2 threads the backward spreads one head's key blocks over
 * the threads (private dQ buffers); 1 thread takes whole heads. Both agree
 * with the reference, and a repeated run is bit-identical. */
static void test_threads_and_determinism(void)
{
    int saved = omp_get_max_threads();
    shape s = {1, 3, 300, 300, 64, 1, 0, 0.2f, 100, 0, NULL, 0};
    for (int nt = 1; nt <= 2; nt++) {
        omp_set_num_threads(nt);
        compare(&s, nt == 1 ? "1 thread" : "2 threads (split backward)");
        tensors in, a, b;
        make_inputs(&s, &in);
        run_impl(&s, SLM_ATTN_FLASH, &in, &a);
        run_impl(&s, SLM_ATTN_FLASH, &in, &b);
        size_t nq = 3 * 300 * 64;
        CHECK(!memcmp(a.out, b.out, nq * 4) && !memcmp(a.dq, b.dq, nq * 4) &&
                  !memcmp(a.dk, b.dk, nq * 4) && !memcmp(a.dv, b.dv, nq * 4),
              "%d threads: repeated run differs", nt);
        free_results(&a);
        free_results(&b);
        free_inputs(&in);
    }
    omp_set_num_threads(saved);
}

/* The backward pass from bf16 q, k, v and out (attention_bf16.h, for bf16
 * activation storage) equals slm_attention_backward on the widened tensors
 * bit for bit: both implementations, with dropout, on 1 thread and on 2
 * with 3 heads (the split backward), Tq < Tk causal. */
static void test_backward_from_bf16_inputs(void)
{
    enum { B = 2, H = 3, TQ = 70, TK = 90, D = 24 };
    size_t nq = (size_t)B * H * TQ * D, nk = (size_t)B * H * TK * D, nl = (size_t)B * H * TQ;
    float *f = malloc((2 * nq + 2 * nk) * sizeof *f), *lse = malloc(nl * sizeof *lse);
    float *dout = malloc(nq * sizeof *dout), *g = malloc(2 * (nq + 2 * nk) * sizeof *g);
    uint16_t *h = malloc((2 * nq + 2 * nk) * sizeof *h);
    CHECK(f && lse && dout && g && h, "alloc");
    if (!f || !lse || !dout || !g || !h) goto done;
    float *fq = f, *fo = fq + nq, *fk = fo + nq, *fv = fk + nk;
    uint16_t *hq = h, *ho = hq + nq, *hk = ho + nq, *hv = hk + nk;
    test_fill_uniform(f, 2 * nq + 2 * nk, 81, -2.0f, 2.0f);
    test_fill_uniform(dout, nq, 82, -1.0f, 1.0f);
    for (size_t i = 0; i < 2 * nq + 2 * nk; i++) h[i] = bf16_round(f[i]);
    for (size_t i = 0; i < 2 * nq + 2 * nk; i++) f[i] = bf16_widen(h[i]);
    float *a = g, *b = g + nq + 2 * nk; /* dq, dk, dv of each route */
    int saved = omp_get_max_threads();
    static const int impls[2] = {SLM_ATTN_FLASH, SLM_ATTN_REFERENCE};
    for (int nt = 1; nt <= 2; nt++)
        for (int i = 0; i < 2; i++) {
            omp_set_num_threads(nt);
            slm_attn_opts o = {.impl = impls[i], .causal = 1, .dropout = 0.2f, .seed = 5};
            float *scratch = malloc(nq * sizeof *scratch);
            int rc = scratch ? slm_attention_forward(&o, B, H, TQ, TK, D, fq, fk, fv, scratch, lse)
                             : SLM_ENOMEM;
            free(scratch);
            for (size_t e = 0; e < 2 * (nq + 2 * nk); e++) g[e] = NAN;
            rc |= slm_attention_backward(&o, B, H, TQ, TK, D, fq, fk, fv, fo, lse, dout, a,
                                         a + nq, a + nq + nk);
            rc |= attention_backward_bf16_inputs(&o, B, H, TQ, TK, D, hq, hk, hv, ho, lse, dout,
                                                 b, b + nq, b + nq + nk);
            CHECK(rc == 0, "impl %d, %d threads: rc", impls[i], nt);
            size_t bad = 0;
            for (size_t e = 0; e < nq + 2 * nk; e++) bad += !(a[e] == b[e]);
            CHECK(bad == 0, "impl %d, %d threads: %zu gradients differ from the fp32 route",
                  impls[i], nt, bad);
        }
    omp_set_num_threads(saved);
done:
    free(f), free(lse), free(dout), free(g), free(h);
}

/* Invalid arguments return SLM_EINVAL and leave every output untouched. */
static void test_invalid_arguments_write_nothing(void)
{
    float q[2 * 4], k[2 * 4], v[2 * 4], out[2 * 4], lse[2], dq[8], dk[8], dv[8];
    test_fill_uniform(q, 8, 1, -1, 1);
    test_fill_uniform(k, 8, 2, -1, 1);
    test_fill_uniform(v, 8, 3, -1, 1);
    for (int i = 0; i < 8; i++)
        out[i] = dq[i] = dk[i] = dv[i] = 42.0f;
    lse[0] = lse[1] = 42.0f;
    slm_attn_opts o = {.impl = SLM_ATTN_FLASH};
    int bad_kv[1] = {3};
    struct {
        slm_attn_opts o;
        int D;
        const float *q;
    } cases[] = {
        {{.impl = SLM_ATTN_FLASH, .dropout = 1.0f}, 4, q},
        {{.impl = SLM_ATTN_FLASH, .dropout = -0.1f}, 4, q},
        {{.impl = SLM_ATTN_FLASH, .dropout = NAN}, 4, q},
        {{.impl = SLM_ATTN_FLASH, .scale = INFINITY}, 4, q},
        {{.impl = SLM_ATTN_FLASH, .kv_len = bad_kv}, 4, q},
        {{.impl = 7}, 4, q},
        {o, 0, q},
        {o, 4, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int rc =
            slm_attention_forward(&cases[c].o, 1, 1, 2, 2, cases[c].D, cases[c].q, k, v, out, lse);
        CHECK(rc == SLM_EINVAL, "case %zu: forward rc %d", c, rc);
        rc = slm_attention_backward(&cases[c].o, 1, 1, 2, 2, cases[c].D, cases[c].q, k, v, q, lse,
                                    q, dq, dk, dv);
        CHECK(rc == SLM_EINVAL, "case %zu: backward rc %d", c, rc);
    }
    CHECK(slm_attention_forward(&o, 1, 1, 2, 0, 4, q, k, v, out, lse) == SLM_EINVAL, "Tk 0");
    CHECK(slm_attention_backward(&o, 1, 1, 2, 2, 4, q, k, v, q, NULL, q, dq, dk, dv) == SLM_EINVAL,
          "NULL lse in backward");
    for (int i = 0; i < 8; i++)
        CHECK(out[i] == 42.0f && dq[i] == 42.0f && dk[i] == 42.0f && dv[i] == 42.0f,
              "output %d written", i);
    CHECK(lse[0] == 42.0f && lse[1] == 42.0f, "lse written");
}

/* Long contexts fit: a T = 16384, 12-head, D = 64 forward + backward step
 * needs well under 64 MiB of working memory (the reference would need 3 GiB). */
static void test_workspace_is_linear_in_length(void)
{
    size_t fl = slm_attention_workspace_bytes(SLM_ATTN_FLASH, 1, 12, 16384, 16384, 64, 1);
    size_t ref = slm_attention_workspace_bytes(SLM_ATTN_REFERENCE, 1, 12, 16384, 16384, 64, 1);
    CHECK(fl > 0 && fl < (size_t)64 << 20, "flash workspace %zu bytes", fl);
    CHECK(ref > (size_t)1 << 30, "reference workspace %zu bytes", ref);
    size_t f1 = slm_attention_workspace_bytes(SLM_ATTN_FLASH, 1, 1, 4096, 4096, 64, 1);
    size_t f2 = slm_attention_workspace_bytes(SLM_ATTN_FLASH, 1, 1, 8192, 8192, 64, 1);
    CHECK(f2 < 3 * f1, "doubling T grew flash workspace from %zu to %zu", f1, f2);
}

/* The vectorised 2^x behind the online softmax (scores in base 2): within
 * 2 ulp of exp2 over the range softmax uses (x <= 0), exactly 0 for -inf (a
 * masked score) and for arguments whose 2^x is below the smallest float,
 * exact at integers, and NaN carried through. */
static void test_vector_exp2_accuracy(void)
{
    float x[VF_W], y[VF_W];
    double worst = 0;
    for (int n = 0; n < 200000; n++) {
        for (int l = 0; l < VF_W; l++)
            x[l] = -126.0f * (float)(n * VF_W + l) / 3.2e6f;
        vf_store(y, vf_exp2(vf_load(x)));
        for (int l = 0; l < VF_W; l++) {
            double want = exp2((double)x[l]);
            double ulp = nextafterf((float)want, INFINITY) - (float)want;
            double e = fabs(y[l] - want) / ulp;
            worst = e > worst ? e : worst;
        }
    }
    CHECK(worst <= 2.0, "vf_exp2 off by %.2f ulp", worst);
    float special[VF_W] = {-INFINITY, 0.0f, -150.5f, -200.0f, 1.0f, 126.0f, -1e30f, NAN, -3.0f};
    vf_store(y, vf_exp2(vf_load(special)));
    CHECK(y[0] == 0.0f && y[2] == 0.0f && y[3] == 0.0f && y[6] == 0.0f, "tiny -> %g %g %g %g", y[0],
          y[2], y[3], y[6]);
    CHECK(y[1] == 1.0f && y[4] == 2.0f && y[8] == 0.125f, "2^0 = %.9g, 2^1 = %.9g, 2^-3 = %.9g",
          y[1], y[4], y[8]);
    CHECK(y[5] == 0x1p126f, "2^126 = %g", y[5]);
    CHECK(isnan(y[7]), "2^NaN = %g", y[7]);
}

int main(void)
{
    RUN(test_vector_exp2_accuracy);
    RUN(test_single_token);
    RUN(test_odd_sizes);
    RUN(test_sizes_not_multiple_of_tile);
    RUN(test_more_keys_than_queries_bottom_right);
    RUN(test_more_queries_than_keys_causal);
    RUN(test_head_sizes);
    RUN(test_custom_scale_and_large_scores);
    RUN(test_mask_with_causal);
    RUN(test_kv_len_padding_with_empty_batch);
    RUN(test_dropout_matches_reference);
    RUN(test_dropout_changes_output);
    RUN(test_fully_masked_rows);
    RUN(test_gradients_overwritten);
    RUN(test_one_query_decoding);
    RUN(test_threads_and_determinism);
    RUN(test_backward_from_bf16_inputs);
    RUN(test_invalid_arguments_write_nothing);
    RUN(test_workspace_is_linear_in_length);
    return test_summary();
}

/*
 * Attention gradients against central finite differences, and dropout
 * (slm_attn_opts in include/slm.h: a counter-based hash of (seed,b,h,i,j) decides; survivors scaled
 * by 1/(1-p); every impl drops the same elements).
 *
 * Finite differences run in float64 on small shapes (B ≤ 2, H = 2, T ≤ 8,
 * D ≤ 8) so every input element can be perturbed: first they validate the
 * float64 reference's analytic backward, then each C impl's float32 backward
 * is held to the same 1e-5 criterion as in test_attention.c.
 */
#include "common/attn_case.h"
#include "slm.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>


static const attn_shape fd_shapes[] = {
    {"causal_T5_D4", 1, 2, 5, 5, 4, 1, 0, 0, 0, 0, 0},
    {"kvcache_kvlen_Tq3_Tk7_D8", 2, 2, 3, 7, 8, 1, 0, 0, KV_RAGGED, 0, 0},
    {"mask_deadrows_scale0.7_T6_D3", 1, 2, 6, 6, 3, 0, 0.7f, MASK_DEAD_ROWS, 0, 0, 0},
    {"drop0.3_mask_Tq4_Tk8_D5", 2, 2, 4, 8, 5, 0, 0, MASK_RANDOM, 0, 0.3f, 7},
    {"causal_Tq8_Tk3_D2", 1, 2, 8, 3, 2, 1, 0, 0, 0, 0, 0},
    {"drop0.5_causal_kvlen_T8_D8", 2, 2, 8, 8, 8, 1, 0, 0, KV_RAGGED, 0.5f, 3},
};

/* L = Σ dout∘out of the float64 forward, out written to scratch [nq]. */
static double loss64(const attn_case *c, double *scratch)
{
    ref64_opts o = attn_case_opts64(c);
    ref64_forward(&o, c->q64, c->k64, c->v64, scratch, NULL);
    double l = 0.0;
    for (size_t e = 0; e < c->nq; e++)
        l += c->dout64[e] * scratch[e];
    return l;
}

/* Central differences of loss64 with respect to every element of x [n]:
 * step 1e-5 on O(1) inputs leaves truncation error ~1e-10·f''' and
 * rounding error ~1e-16/1e-5, both far below the 1e-6 we check. */
static void fd_grad(attn_case *c, double *x, size_t n, double *grad, double *scratch)
{
    const double h = 1e-5;
    for (size_t e = 0; e < n; e++) {
        double x0 = x[e];
        x[e] = x0 + h;
        double lp = loss64(c, scratch);
        x[e] = x0 - h;
        double lm = loss64(c, scratch);
        x[e] = x0;
        grad[e] = (lp - lm) / (2.0 * h);
    }
}

static double max_err64(const double *a, const double *b, size_t n, double rtol, double atol)
{
    double worst = 0.0;
    for (size_t e = 0; e < n; e++) {
        double r = fabs(a[e] - b[e]) / (atol + rtol * fabs(b[e]));
        if (!(r <= worst)) worst = r; /* NaN becomes the worst */
    }
    return worst;
}

/* The float64 reference's analytic gradients vs finite differences: this is
 * what makes it a trustworthy oracle for everything else. */
static void test_f64_gradients_match_finite_differences(void)
{
    for (size_t s = 0; s < N(fd_shapes); s++) {
        attn_case c;
        if (attn_case_init(&c, &fd_shapes[s], 500 + s)) {
            CHECK(0, "out of memory");
            return;
        }
        attn_case_run64(&c);
        double *fd = malloc((c.nq > c.nk ? c.nq : c.nk) * sizeof *fd);
        double *scratch = malloc(c.nq * sizeof *scratch);
        if (fd && scratch) {
            double *x[] = {c.q64, c.k64, c.v64};
            const double *g[] = {c.dq64, c.dk64, c.dv64};
            const size_t n[] = {c.nq, c.nk, c.nk};
            const char *names[] = {"dq", "dk", "dv"};
            for (int t = 0; t < 3; t++) {
                fd_grad(&c, x[t], n[t], fd, scratch);
                double e = max_err64(g[t], fd, n[t], 1e-6, 1e-8);
                CHECK(e <= 1.0, "%s: %s off by %.3g× (rtol 1e-6, atol 1e-8)", fd_shapes[s].name,
                      names[t], e);
            }
        } else {
            CHECK(0, "out of memory");
        }
        free(fd);
        free(scratch);
        attn_case_free(&c);
    }
}

/* Each impl's float32 gradients vs finite differences of the float64
 * forward (not vs the float64 backward): an error shared by both backward
 * implementations cannot hide here. */
static void gradients_match_finite_differences(int impl)
{
    for (size_t s = 0; s < N(fd_shapes); s++) {
        attn_case c;
        if (attn_case_init(&c, &fd_shapes[s], 500 + s)) {
            CHECK(0, "out of memory");
            return;
        }
        int rc = attn_case_run(&c, impl);
        CHECK(rc == SLM_OK, "%s: %s returned %s", fd_shapes[s].name, attn_impl_name(impl),
              slm_strerror(rc));
        double *scratch = malloc(c.nq * sizeof *scratch);
        if (rc == SLM_OK && scratch) {
            ref64_opts o = attn_case_opts64(&c);
            ref64_forward(&o, c.q64, c.k64, c.v64, c.out64, c.lse64);
            fd_grad(&c, c.q64, c.nq, c.dq64, scratch);
            fd_grad(&c, c.k64, c.nk, c.dk64, scratch);
            fd_grad(&c, c.v64, c.nk, c.dv64, scratch);
            const char *what;
            double e = attn_case_err64(&c, 1e-5, &what);
            CHECK(e <= 1.0, "%s: %s %s off by %.3g× the tolerance", fd_shapes[s].name,
                  attn_impl_name(impl), what, e);
        }
        free(scratch);
        attn_case_free(&c);
    }
}
PER_IMPL(gradients_match_finite_differences)

/* With q = k = 0 every weight is 1/Tk, and with v = identity (Tk = D)
 * out[i][d] = Z_id / Tk: the dropout mask itself, readable from the output.
 * Returns 0 on success and leaves out in c->out. */
enum { DT = 64 };
static int dropout_pattern(attn_case *c, int impl, float p, uint64_t seed)
{
    const attn_shape s = {"pattern", 2, 2, DT, DT, DT, 0, 0, 0, 0, p, seed};
    if (attn_case_init(c, &s, 1)) return SLM_ENOMEM;
    memset(c->q, 0, c->nq * sizeof(float));
    memset(c->k, 0, c->nk * sizeof(float));
    for (size_t e = 0; e < c->nk; e++)
        c->v[e] = (e / DT) % DT == e % DT ? 1.0f : 0.0f;
    slm_attn_opts o = attn_case_opts(c, impl);
    return slm_attention_forward(&o, s.B, s.H, s.Tq, s.Tk, s.D, c->q, c->k, c->v, c->out, NULL);
}

/* Relative tolerance from fp32 rounding for a case's shapes: every output is
 * a chain of at most max(Tq, Tk) accumulations (softmax sum, P·V, dQ over
 * keys, dK and dV over queries) fed by D-term dot products (S = Q·Kᵀ,
 * dP = dO·Vᵀ, Δ = rowsum(dO∘O)), plus a few roundings in exp, log and the
 * divisions: |err| <= (max(Tq,Tk) + D + 16)·2⁻²⁴ · (the size of the summed
 * terms, attn_case_err64's atol scale). The worst-case bound γ_n = n·u. */
static double fp32_rtol(const attn_shape *s)
{
    int n = (s->Tq > s->Tk ? s->Tq : s->Tk) + s->D + 16;
    return n * 0x1p-24;
}

/* The same seed drops the same elements in `impl` as in the reference, with
 * the same 1/(1-p). Exact part: with q = k = 0 and v = I the output is the
 * scaled keep-mask itself, and its zero pattern must be identical bit for
 * bit. Value part: on general cases (masks, kv_len, causal) both impls must
 * match the float64 reference with that seed within the fp32 rounding bound
 * of the shapes (fp32_rtol), and so each other within twice that; one element
 * dropped differently would be off by ~P·v, hundreds of times the bound. */
static void dropout_same_seed_as_reference(int impl)
{
    attn_case r, x;
    int rc1 = dropout_pattern(&r, SLM_ATTN_REFERENCE, 0.3f, 77);
    int rc2 = dropout_pattern(&x, impl, 0.3f, 77);
    CHECK(rc1 == SLM_OK && rc2 == SLM_OK, "pattern: %s", slm_strerror(rc1 ? rc1 : rc2));
    if (rc1 == SLM_OK && rc2 == SLM_OK) {
        size_t differ = 0, scaled = 0;
        for (size_t e = 0; e < r.nq; e++) {
            differ += (r.out[e] == 0.0f) != (x.out[e] == 0.0f);
            /* 1/(Tk·(1-p)) in both, up to one rounding each of the product
             * and the division by the row sum (exactly Tk): 2 ulps. */
            scaled += x.out[e] != 0.0f && fabsf(x.out[e] - r.out[e]) > 0x1p-23f * r.out[e];
        }
        CHECK(differ == 0, "%s drops %zu elements the reference keeps or vice versa",
              attn_impl_name(impl), differ);
        CHECK(scaled == 0, "%s scales %zu survivors differently from the reference",
              attn_impl_name(impl), scaled);
    }
    attn_case_free(&r);
    attn_case_free(&x);

    const attn_shape shapes[] = {
        {"drop0.2_mask_causal_T70_D32", 2, 2, 70, 70, 32, 1, 0, MASK_RANDOM, 0, 0.2f, 99},
        {"drop0.5_kvlen_Tq9_Tk80_D64", 3, 1, 9, 80, 64, 1, 0, 0, KV_RAGGED, 0.5f, 1ull << 40},
    };
    for (size_t s = 0; s < N(shapes); s++) {
        attn_case c;
        if (attn_case_init(&c, &shapes[s], 31)) {
            CHECK(0, "out of memory");
            return;
        }
        double rtol = fp32_rtol(&shapes[s]);
        attn_case_run64(&c); /* float64, the same seed */
        const char *what;
        int rc = attn_case_run(&c, SLM_ATTN_REFERENCE);
        CHECK(rc == SLM_OK, "reference returned %s", slm_strerror(rc));
        double e = rc == SLM_OK ? attn_case_err64(&c, rtol, &what) : 0.0;
        CHECK(e <= 1.0, "%s: reference %s off the float64 result by %.3g× %.2g", shapes[s].name,
              what, e, rtol);
        /* The reference's float32 results become the "want" side. */
        ref64_widen(c.out, c.out64, c.nq);
        ref64_widen(c.lse, c.lse64, c.nl);
        ref64_widen(c.dq, c.dq64, c.nq);
        ref64_widen(c.dk, c.dk64, c.nk);
        ref64_widen(c.dv, c.dv64, c.nk);
        rc = attn_case_run(&c, impl);
        CHECK(rc == SLM_OK, "%s returned %s", attn_impl_name(impl), slm_strerror(rc));
        if (rc == SLM_OK) {
            e = attn_case_err64(&c, 2.0 * rtol, &what);
            CHECK(e <= 1.0, "%s: %s %s differs from reference by %.3g× %.2g", shapes[s].name,
                  attn_impl_name(impl), what, e, 2.0 * rtol);
        }
        attn_case_free(&c);
    }
}
static void test_dropout_same_seed_flash_equals_reference(void)
{
    dropout_same_seed_as_reference(SLM_ATTN_FLASH);
}
static void test_dropout_same_seed_auto_equals_reference(void)
{
    dropout_same_seed_as_reference(SLM_ATTN_AUTO);
}

static void dropout_rate_and_mask(int impl)
{
    const float ps[] = {0.1f, 0.5f};
    for (size_t t = 0; t < N(ps); t++) {
        attn_case c;
        int rc = dropout_pattern(&c, impl, ps[t], 2024 + t);
        CHECK(rc == SLM_OK, "p=%g: %s returned %s", ps[t], attn_impl_name(impl), slm_strerror(rc));
        if (rc == SLM_OK) {
            ref64_opts o = attn_case_opts64(&c);
            double keep = 1.0 / (DT * (1.0 - ps[t]));
            size_t dropped = 0, wrong = 0, bad_value = 0;
            for (int b = 0; b < 2; b++)
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < DT; i++)
                        for (int j = 0; j < DT; j++) {
                            float y = c.out[(((size_t)b * 2 + h) * DT + i) * DT + j];
                            int ref_drop = ref64_dropout_factor(&o, b, h, i, j) == 0.0;
                            dropped += y == 0.0f;
                            wrong += (y == 0.0f) != ref_drop;
                            bad_value += y != 0.0f && fabs(y - keep) > 1e-6 * keep;
                        }
            double n = 2.0 * 2 * DT * DT, frac = dropped / n;
            double sigma = sqrt(ps[t] * (1.0 - ps[t]) / n);
            CHECK(fabs(frac - ps[t]) <= 3.0 * sigma, "p=%g: dropped %.4f (3σ = %.4f)", ps[t], frac,
                  3 * sigma);
            CHECK(wrong == 0, "p=%g: %zu elements dropped differently from the hash", ps[t], wrong);
            CHECK(bad_value == 0, "p=%g: %zu survivors not scaled by 1/(1-p)", ps[t], bad_value);
        }
        attn_case_free(&c);
    }
}
PER_IMPL(dropout_rate_and_mask)

/* Fraction of positions where two [DT][DT] drop patterns disagree. */
static double pattern_diff(const float *a, const float *b)
{
    size_t n = 0;
    for (size_t e = 0; e < (size_t)DT * DT; e++)
        n += (a[e] == 0.0f) != (b[e] == 0.0f);
    return (double)n / (DT * DT);
}

/* Another seed, another head, another batch element or another row must
 * give an independent mask: two independent Bernoulli(p) patterns disagree
 * on 2p(1-p) of the positions (0.32 at p = 0.2). */
static void dropout_streams_independent(int impl)
{
    attn_case c1, c2;
    int rc1 = dropout_pattern(&c1, impl, 0.2f, 1);
    int rc2 = dropout_pattern(&c2, impl, 0.2f, 2);
    CHECK(rc1 == SLM_OK && rc2 == SLM_OK, "%s returned %s", attn_impl_name(impl),
          slm_strerror(rc1 ? rc1 : rc2));
    if (rc1 == SLM_OK && rc2 == SLM_OK) {
        const size_t head = (size_t)DT * DT;
        double want = 2 * 0.2 * 0.8, tol = 0.05;
        double seeds = pattern_diff(c1.out, c2.out);
        double heads = pattern_diff(c1.out, c1.out + head);
        double batch = pattern_diff(c1.out, c1.out + 2 * head);
        double rows = 0.0;
        for (int i = 0; i + 1 < DT; i++) {
            size_t n = 0;
            for (int j = 0; j < DT; j++)
                n += (c1.out[i * DT + j] == 0.0f) != (c1.out[(i + 1) * DT + j] == 0.0f);
            rows += (double)n / DT / (DT - 1);
        }
        CHECK(fabs(seeds - want) < tol, "seeds 1 and 2 disagree on %.3f, want %.2f", seeds, want);
        CHECK(fabs(heads - want) < tol, "heads 0 and 1 disagree on %.3f", heads);
        CHECK(fabs(batch - want) < tol, "batch 0 and 1 disagree on %.3f", batch);
        CHECK(fabs(rows - want) < tol, "adjacent rows disagree on %.3f", rows);
    }
    attn_case_free(&c1);
    attn_case_free(&c2);
}
PER_IMPL(dropout_streams_independent)

/* p = 0 is no dropout whatever the seed (bit for bit), and a p so small that
 * the drop threshold rounds to 0 drops nothing (only 1/(1-p) ≈ 1 remains). */
static void dropout_zero_is_none(int impl)
{
    const attn_shape s = {"p0", 2, 2, 33, 33, 32, 1, 0, MASK_RANDOM, 0, 0, 0};
    attn_case a, b;
    if (attn_case_init(&a, &s, 3)) {
        CHECK(0, "out of memory");
        return;
    }
    if (attn_case_init(&b, &s, 3)) {
        attn_case_free(&a);
        CHECK(0, "out of memory");
        return;
    }
    b.s.seed = 0xdeadbeef;
    int rc1 = attn_case_run(&a, impl), rc2 = attn_case_run(&b, impl);
    CHECK(rc1 == SLM_OK && rc2 == SLM_OK, "%s returned %s", attn_impl_name(impl),
          slm_strerror(rc1 ? rc1 : rc2));
    if (rc1 == SLM_OK && rc2 == SLM_OK) {
        CHECK(memcmp(a.out, b.out, a.nq * sizeof(float)) == 0 &&
                  memcmp(a.dq, b.dq, a.nq * sizeof(float)) == 0 &&
                  memcmp(a.dk, b.dk, a.nk * sizeof(float)) == 0 &&
                  memcmp(a.dv, b.dv, a.nk * sizeof(float)) == 0,
              "p=0 depends on the seed");
        b.s.dropout = 1e-12f;
        rc2 = attn_case_run(&b, impl);
        CHECK(rc2 == SLM_OK, "p=1e-12: %s", slm_strerror(rc2));
        const float *x[] = {a.out, a.dq, a.dk, a.dv}, *y[] = {b.out, b.dq, b.dk, b.dv};
        const size_t n[] = {a.nq, a.nq, a.nk, a.nk};
        for (int t = 0; t < 4 && rc2 == SLM_OK; t++)
            CHECK(test_max_err_f(y[t], x[t], n[t], 1e-6, 1e-7) <= 1.0,
                  "p=1e-12 differs from p=0 (tensor %d)", t);
    }
    attn_case_free(&a);
    attn_case_free(&b);
}
PER_IMPL(dropout_zero_is_none)

int main(void)
{
    RUN(test_f64_gradients_match_finite_differences);
    RUN_PER_IMPL(gradients_match_finite_differences);
    RUN(test_dropout_same_seed_flash_equals_reference);
    RUN(test_dropout_same_seed_auto_equals_reference);
    RUN_PER_IMPL(dropout_rate_and_mask);
    RUN_PER_IMPL(dropout_streams_independent);
    RUN_PER_IMPL(dropout_zero_is_none);
    return test_summary();
}

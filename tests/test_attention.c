/*
 * The attention core against an independent float64 implementation
 * (tests/common/ref_attention64.c): every impl (REFERENCE, FLASH, AUTO) over
 * odd sizes, head dims, KV-cache shapes, masks, padding, custom scales and
 * dropout; fully-masked rows; argument validation. Finite differences and the
 * dropout statistics are in test_attention_grad.c.
 *
 * Tolerance. The target is 1e-5 relative against float64. Element-wise relative error alone
 * is not a meaningful float32 criterion: an output that is a near-zero sum of
 * O(1) terms (Σ_j P_ij v_jd with v of both signs) carries an absolute rounding
 * error of about u·√n·|term| (u = 6e-8 for float32), whatever its own size.
 * So each element must satisfy |got - want| <= 1e-5·|want| + atol, with atol =
 * 1e-5 · max|want| over that tensor: the absolute error float32 accumulation
 * makes on the tensor's own scale (√n·u ≈ 7e-7 relative for n = 130 keys, so
 * 1e-5 leaves an honest margin and a missing or wrong term still fails).
 */
#include "common/attn_case.h"
#include "slm.h"
#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5

/* Runs `impl` and the float64 reference on each shape and CHECKs closeness. */
static void check_shapes(int impl, const attn_shape *shapes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        attn_case c;
        if (attn_case_init(&c, &shapes[i], 1000 + i)) {
            CHECK(0, "%s: out of memory", shapes[i].name);
            return;
        }
        attn_case_run64(&c);
        int rc = attn_case_run(&c, impl);
        CHECK(rc == SLM_OK, "%s: %s returned %d (%s)", shapes[i].name, attn_impl_name(impl), rc,
              slm_strerror(rc));
        if (rc == SLM_OK) {
            const char *what;
            double e = attn_case_err64(&c, RTOL, &what);
            CHECK(e <= 1.0, "%s: %s %s off by %.3g× the tolerance", shapes[i].name,
                  attn_impl_name(impl), what, e);
        }
        attn_case_free(&c);
    }
}


/* The GPT case: causal self-attention, T = 1, odd T, T not a multiple of 64
 * (tile edges), every head dim the models use. */
static const attn_shape causal_shapes[] = {
    {"T1_D16", 1, 1, 1, 1, 16, 1, 0, 0, 0, 0, 0},
    {"T17_D32", 2, 3, 17, 17, 32, 1, 0, 0, 0, 0, 0},
    {"T33_D64", 1, 2, 33, 33, 64, 1, 0, 0, 0, 0, 0},
    {"T100_D80", 2, 2, 100, 100, 80, 1, 0, 0, 0, 0, 0},
    {"T130_D96", 1, 2, 130, 130, 96, 1, 0, 0, 0, 0, 0},
    {"T64_D128", 1, 1, 64, 64, 128, 1, 0, 0, 0, 0, 0},
    {"T65_D128", 1, 2, 65, 65, 128, 1, 0, 0, 0, 0, 0},
};

/* Encoder / bidirectional attention: every key visible (the seed's table
 * without the mask). */
static const attn_shape noncausal_shapes[] = {
    {"enc_T1_D16", 1, 2, 1, 1, 16, 0, 0, 0, 0, 0, 0},
    {"enc_T33_D32", 2, 2, 33, 33, 32, 0, 0, 0, 0, 0, 0},
    {"enc_T130_D64", 1, 2, 130, 130, 64, 0, 0, 0, 0, 0, 0},
    {"enc_Tq7_Tk50_D16", 2, 1, 7, 50, 16, 0, 0, 0, 0, 0, 0},
    {"enc_Tq50_Tk7_D80", 1, 2, 50, 7, 80, 0, 0, 0, 0, 0, 0},
};

/* Tk != Tq with causal: bottom-right alignment (KV cache), and Tq > Tk,
 * where the first Tq - Tk rows see no key at all. */
static const attn_shape kv_cache_shapes[] = {
    {"Tq5_Tk40_D32", 2, 2, 5, 40, 32, 1, 0, 0, 0, 0, 0},
    {"Tq1_Tk37_D64", 1, 3, 1, 37, 64, 1, 0, 0, 0, 0, 0},
    {"Tq1_Tk130_D128", 1, 2, 1, 130, 128, 1, 0, 0, 0, 0, 0},
    {"Tq64_Tk100_D16", 1, 2, 64, 100, 16, 1, 0, 0, 0, 0, 0},
    {"Tq40_Tk5_D16", 1, 2, 40, 5, 16, 1, 0, 0, 0, 0, 0},
};

/* Additive mask (finite values and -inf), alone and with causal and kv_len. */
static const attn_shape mask_shapes[] = {
    {"mask_T33_D32", 2, 2, 33, 33, 32, 0, 0, MASK_RANDOM, 0, 0, 0},
    {"mask_causal_T33_D32", 2, 2, 33, 33, 32, 1, 0, MASK_RANDOM, 0, 0, 0},
    {"mask_causal_T100_D64", 1, 2, 100, 100, 64, 1, 0, MASK_RANDOM, 0, 0, 0},
    {"mask_causal_Tq9_Tk70_D16", 1, 2, 9, 70, 16, 1, 0, MASK_RANDOM, 0, 0, 0},
    {"mask_deadrows_causal_T17", 2, 2, 17, 17, 16, 1, 0, MASK_DEAD_ROWS, 0, 0, 0},
    {"mask_kvlen_causal_T40", 3, 2, 40, 40, 32, 1, 0, MASK_RANDOM, KV_RAGGED, 0, 0},
};

/* Padding: kv_len with one batch element of length 0. */
static const attn_shape kv_len_shapes[] = {
    {"kvlen_enc_T40_D32", 3, 2, 40, 40, 32, 0, 0, 0, KV_RAGGED, 0, 0},
    {"kvlen_causal_T70_D64", 3, 2, 70, 70, 64, 1, 0, 0, KV_RAGGED, 0, 0},
    {"kvlen_causal_Tq3_Tk66_D16", 2, 2, 3, 66, 16, 1, 0, 0, KV_RAGGED, 0, 0},
};

/* scale != 1/sqrt(D), including a large one that sharpens the softmax. */
static const attn_shape scale_shapes[] = {
    {"scale0.3_T20_D16", 1, 2, 20, 20, 16, 1, 0.3f, 0, 0, 0, 0},
    {"scale1_T33_D64", 2, 1, 33, 33, 64, 0, 1.0f, 0, 0, 0, 0},
    {"scale-0.5_T17_D32", 1, 2, 17, 17, 32, 1, -0.5f, MASK_RANDOM, 0, 0, 0},
};

/* Dropout against the float64 reference's own mask (same hash). */
static const attn_shape dropout_shapes[] = {
    {"drop0.1_causal_T33_D32", 2, 2, 33, 33, 32, 1, 0, 0, 0, 0.1f, 42},
    {"drop0.5_mask_kvlen_T40", 3, 2, 40, 40, 16, 1, 0, MASK_RANDOM, KV_RAGGED, 0.5f, 7},
    {"drop0.2_Tq5_Tk70_D80", 1, 2, 5, 70, 80, 1, 0, 0, 0, 0.2f, 123456789},
    {"drop0.9_enc_T130_D64", 1, 1, 130, 130, 64, 0, 0, 0, 0, 0.9f, 1},
};


#define SHAPE_TEST(fn, table)                                                                      \
    static void fn(int impl)                                                                       \
    {                                                                                              \
        check_shapes(impl, table, N(table));                                                       \
    }                                                                                              \
    PER_IMPL(fn)

SHAPE_TEST(causal_matches_f64, causal_shapes)
SHAPE_TEST(noncausal_matches_f64, noncausal_shapes)
SHAPE_TEST(kv_cache_causal_matches_f64, kv_cache_shapes)
SHAPE_TEST(mask_matches_f64, mask_shapes)
SHAPE_TEST(kv_len_matches_f64, kv_len_shapes)
SHAPE_TEST(custom_scale_matches_f64, scale_shapes)
SHAPE_TEST(dropout_matches_f64, dropout_shapes)

static int any_nan(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

static int all_zero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

/* Rows with no visible key: out 0, lse -inf, no gradient, no NaN, even with
 * a non-zero dout on those rows. Batch 0 is all padding (kv_len 0); in batch
 * 1 the mask kills query rows 1 and Tq-1; with dropout so that path is
 * exercised too. */
static void fully_masked_rows(int impl)
{
    const attn_shape s = {"dead", 2, 2, 6, 6, 8, 0, 0, MASK_DEAD_ROWS, KV_RAGGED, 0.25f, 5};
    attn_case c;
    if (attn_case_init(&c, &s, 9)) {
        CHECK(0, "out of memory");
        return;
    }
    attn_case_run64(&c);
    int rc = attn_case_run(&c, impl);
    CHECK(rc == SLM_OK, "%s returned %s", attn_impl_name(impl), slm_strerror(rc));
    if (rc == SLM_OK) {
        CHECK(!any_nan(c.out, c.nq) && !any_nan(c.lse, c.nl) && !any_nan(c.dq, c.nq) &&
                  !any_nan(c.dk, c.nk) && !any_nan(c.dv, c.nk),
              "NaN left the function");
        size_t half_q = c.nq / 2, half_k = c.nk / 2, half_l = c.nl / 2;
        CHECK(all_zero(c.out, half_q), "padded batch: out not 0");
        CHECK(all_zero(c.dq, half_q) && all_zero(c.dk, half_k) && all_zero(c.dv, half_k),
              "padded batch: gradient not 0");
        for (size_t r = 0; r < half_l; r++)
            CHECK(c.lse[r] == -INFINITY, "lse[%zu]=%g", r, c.lse[r]);
        for (int h = 0; h < s.H; h++)
            for (int i = 1; i < s.Tq; i += s.Tq - 2) { /* rows 1 and Tq-1 */
                size_t row = ((size_t)(s.H + h) * s.Tq + i);
                CHECK(c.lse[row] == -INFINITY, "dead row %d: lse %g", i, c.lse[row]);
                CHECK(all_zero(c.out + row * s.D, s.D), "dead row %d: out not 0", i);
                CHECK(all_zero(c.dq + row * s.D, s.D), "dead row %d: dq not 0", i);
            }
        const char *what;
        double e = attn_case_err64(&c, RTOL, &what);
        CHECK(e <= 1.0, "%s off by %.3g× the tolerance", what, e);
    }
    attn_case_free(&c);
}
PER_IMPL(fully_masked_rows)

/* Scores of ±hundreds: softmax must subtract the row max, not overflow. */
static void large_scores_stay_finite(int impl)
{
    const attn_shape s = {"large", 1, 2, 33, 33, 16, 1, 4.0f, 0, 0, 0, 0};
    attn_case c;
    if (attn_case_init(&c, &s, 11)) {
        CHECK(0, "out of memory");
        return;
    }
    for (size_t e = 0; e < c.nq; e++)
        c.q[e] *= 5.0f;
    attn_case_widen(&c);
    attn_case_run64(&c);
    int rc = attn_case_run(&c, impl);
    CHECK(rc == SLM_OK, "%s returned %s", attn_impl_name(impl), slm_strerror(rc));
    if (rc == SLM_OK) {
        const char *what;
        double e = attn_case_err64(&c, RTOL, &what);
        CHECK(e <= 1.0, "%s off by %.3g× the tolerance", what, e);
    }
    attn_case_free(&c);
}
PER_IMPL(large_scores_stay_finite)

/* lse is optional in forward; out must not depend on whether it is asked. */
static void forward_without_lse(int impl)
{
    const attn_shape s = {"nolse", 1, 2, 17, 17, 32, 1, 0, 0, 0, 0, 0};
    attn_case c;
    if (attn_case_init(&c, &s, 13)) {
        CHECK(0, "out of memory");
        return;
    }
    slm_attn_opts o = attn_case_opts(&c, impl);
    float *out2 = malloc(c.nq * sizeof *out2);
    int rc1 = slm_attention_forward(&o, 1, 2, 17, 17, 32, c.q, c.k, c.v, c.out, c.lse);
    int rc2 =
        out2 ? slm_attention_forward(&o, 1, 2, 17, 17, 32, c.q, c.k, c.v, out2, NULL) : SLM_ENOMEM;
    CHECK(rc1 == SLM_OK && rc2 == SLM_OK, "%s returned %s / %s", attn_impl_name(impl),
          slm_strerror(rc1), slm_strerror(rc2));
    if (rc1 == SLM_OK && rc2 == SLM_OK)
        CHECK(memcmp(c.out, out2, c.nq * sizeof *out2) == 0, "out differs without lse");
    free(out2);
    attn_case_free(&c);
}
PER_IMPL(forward_without_lse)

/* Every invalid call returns SLM_EINVAL (any negative code for sizes too
 * large to address) and leaves every output exactly as it was. */
enum { AB = 2, AH = 1, AT = 4, AD = 4, ANQ = AB * AH * AT * AD, ANL = AB * AH * AT };
#define SENTINEL 12345.0f

typedef struct {
    float q[ANQ], k[ANQ], v[ANQ], dout[ANQ];
    float out[ANQ], lse[ANL], dq[ANQ], dk[ANQ], dv[ANQ];
} arg_bufs;

static void arm(arg_bufs *a)
{
    float *outs[] = {a->out, a->dq, a->dk, a->dv};
    for (int t = 0; t < 4; t++)
        for (int e = 0; e < ANQ; e++)
            outs[t][e] = SENTINEL;
    for (int e = 0; e < ANL; e++)
        a->lse[e] = SENTINEL;
}

static int untouched(const arg_bufs *a)
{
    const float *outs[] = {a->out, a->dq, a->dk, a->dv};
    for (int t = 0; t < 4; t++)
        for (int e = 0; e < ANQ; e++)
            if (outs[t][e] != SENTINEL) return 0;
    for (int e = 0; e < ANL; e++)
        if (a->lse[e] != SENTINEL) return 0;
    return 1;
}

/* Forward and backward with these options and sizes; the pointer `which`
 * (1-based position among q,k,v,out,lse,dout,dq,dk,dv) replaced by NULL. */
static void expect_rejected(arg_bufs *a, const slm_attn_opts *o, const int sz[5], int which,
                            int want_einval, const char *what, int impl)
{
    const float *in[6] = {a->q, a->k, a->v, a->out, a->lse, a->dout};
    float *outp[4] = {a->out, a->dq, a->dk, a->dv};
    float *lsep = a->lse;
    if (which >= 1 && which <= 6) in[which - 1] = NULL;
    if (which == 4) outp[0] = NULL;
    if (which == 5) lsep = NULL;
    if (which >= 7) outp[which - 6] = NULL;
    int passes[2] = {which != 5 && which != 6 && which < 7, 1}; /* forward takes no dout, dq.. */
    for (int bw = 0; bw < 2; bw++) {
        if (!passes[bw]) continue;
        arm(a);
        int rc = bw ? slm_attention_backward(o, sz[0], sz[1], sz[2], sz[3], sz[4], in[0], in[1],
                                             in[2], in[3], in[4], in[5], outp[1], outp[2], outp[3])
                    : slm_attention_forward(o, sz[0], sz[1], sz[2], sz[3], sz[4], in[0], in[1],
                                            in[2], outp[0], lsep);
        CHECK(want_einval ? rc == SLM_EINVAL : rc < 0, "%s %s: %s returned %d", what,
              bw ? "backward" : "forward", attn_impl_name(impl), rc);
        CHECK(untouched(a), "%s %s: %s wrote an output", what, bw ? "backward" : "forward",
              attn_impl_name(impl));
    }
}

static void invalid_arguments_write_nothing(int impl)
{
    arg_bufs a;
    test_fill_uniform(a.q, ANQ, 1, -1, 1);
    test_fill_uniform(a.k, ANQ, 2, -1, 1);
    test_fill_uniform(a.v, ANQ, 3, -1, 1);
    test_fill_uniform(a.dout, ANQ, 4, -1, 1);
    const int ok[5] = {AB, AH, AT, AT, AD};
    const slm_attn_opts base = {.impl = impl, .causal = 1};
    char what[64];
    for (int d = 0; d < 5; d++)
        for (int bad = -1; bad <= 0; bad++) {
            int sz[5];
            memcpy(sz, ok, sizeof sz);
            sz[d] = bad;
            snprintf(what, sizeof what, "size %d = %d", d, bad);
            expect_rejected(&a, &base, sz, 0, 1, what, impl);
        }
    const int huge[5] = {INT_MAX, INT_MAX, INT_MAX, INT_MAX, INT_MAX};
    expect_rejected(&a, &base, huge, 0, 0, "INT_MAX sizes", impl);
    const int huge_t[5] = {1, 1, INT_MAX, INT_MAX, 1}; /* Tq·Tk score matrix */
    expect_rejected(&a, &base, huge_t, 0, 0, "INT_MAX Tq and Tk", impl);
    const char *ptr_names[] = {"", "q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv"};
    for (int w = 1; w <= 9; w++) {
        snprintf(what, sizeof what, "NULL %s", ptr_names[w]);
        expect_rejected(&a, &base, ok, w, 1, what, impl);
    }
    const float bad_p[] = {-0.1f, -1e-30f, 1.0f, 1.5f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < N(bad_p); i++) {
        slm_attn_opts o = base;
        o.dropout = bad_p[i];
        snprintf(what, sizeof what, "dropout %g", bad_p[i]);
        expect_rejected(&a, &o, ok, 0, 1, what, impl);
    }
    const int kv_bad[][AB] = {{AT, -1}, {AT, AT + 1}, {-5, AT}, {INT_MIN, 0}};
    for (size_t i = 0; i < N(kv_bad); i++) {
        slm_attn_opts o = base;
        o.kv_len = kv_bad[i];
        snprintf(what, sizeof what, "kv_len {%d,%d}", kv_bad[i][0], kv_bad[i][1]);
        expect_rejected(&a, &o, ok, 0, 1, what, impl);
    }
    const float bad_scale[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < N(bad_scale); i++) {
        slm_attn_opts o = base;
        o.scale = bad_scale[i];
        snprintf(what, sizeof what, "scale %g", bad_scale[i]);
        expect_rejected(&a, &o, ok, 0, 1, what, impl);
    }
    if (impl == SLM_ATTN_AUTO) { /* once is enough for these */
        const int bad_impl[] = {3, -1, 99, INT_MIN};
        for (size_t i = 0; i < N(bad_impl); i++) {
            slm_attn_opts o = base;
            o.impl = bad_impl[i];
            snprintf(what, sizeof what, "impl %d", bad_impl[i]);
            expect_rejected(&a, &o, ok, 0, 1, what, impl);
        }
        expect_rejected(&a, NULL, ok, 0, 1, "NULL opts", impl);
    }
}
PER_IMPL(invalid_arguments_write_nothing)

/* slm_attention_workspace_bytes: flash uses O(Tq+Tk) extra memory per thread, the reference
 * O(Tq·Tk). Quadrupling T must at most quadruple flash's workspace (plus
 * slack for per-thread constants) and stay far below one score matrix. */
static void test_flash_workspace_is_linear_in_T(void)
{
    for (int backward = 0; backward <= 1; backward++) {
        size_t w1 = slm_attention_workspace_bytes(SLM_ATTN_FLASH, 4, 12, 2048, 2048, 64, backward);
        size_t w4 = slm_attention_workspace_bytes(SLM_ATTN_FLASH, 4, 12, 8192, 8192, 64, backward);
        size_t ref =
            slm_attention_workspace_bytes(SLM_ATTN_REFERENCE, 4, 12, 8192, 8192, 64, backward);
        CHECK(w1 > 0 && w4 > 0, "backward=%d: flash reports no workspace (%zu, %zu)", backward, w1,
              w4);
        CHECK(w4 <= 4 * w1 + 4096, "backward=%d: T 2048→8192 grows workspace %zu→%zu bytes",
              backward, w1, w4);
        CHECK(ref >= (size_t)8192 * 8192 * sizeof(float), "reference workspace %zu", ref);
        CHECK(w4 < ref / 16, "backward=%d: flash %zu bytes vs reference %zu", backward, w4, ref);
    }
    CHECK(slm_attention_workspace_bytes(SLM_ATTN_FLASH, 0, 1, 1, 1, 1, 0) == 0, "invalid size");
}

static void test_strerror_names_every_code(void)
{
    const int codes[] = {SLM_OK,     SLM_EINVAL,   SLM_ENOMEM,       SLM_EIO,         SLM_EFORMAT,
                         SLM_ERANGE, SLM_ENUMERIC, SLM_EINTERRUPTED, SLM_EUNSUPPORTED};
    const char *unknown = slm_strerror(-1000);
    CHECK(unknown && strcmp(unknown, "unknown error") == 0, "strerror(-1000) = %s", unknown);
    for (size_t i = 0; i < N(codes); i++) {
        const char *s = slm_strerror(codes[i]);
        CHECK(s && *s && strcmp(s, unknown) != 0, "code %d has no text", codes[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, slm_strerror(codes[j])) != 0, "codes %d and %d share '%s'", codes[i],
                  codes[j], s);
    }
    const int others[] = {1, 42, -9, INT_MIN, INT_MAX};
    for (size_t i = 0; i < N(others); i++)
        CHECK(strcmp(slm_strerror(others[i]), unknown) == 0, "code %d", others[i]);
}

static void test_version_is_semver(void)
{
    const char *v = slm_version();
    int a, b, c, n = 0;
    CHECK(v && sscanf(v, "%d.%d.%d%n", &a, &b, &c, &n) == 3 && v[n] == '\0', "version '%s'",
          v ? v : "(null)");
}

int main(void)
{
    RUN_PER_IMPL(causal_matches_f64);
    RUN_PER_IMPL(noncausal_matches_f64);
    RUN_PER_IMPL(kv_cache_causal_matches_f64);
    RUN_PER_IMPL(mask_matches_f64);
    RUN_PER_IMPL(kv_len_matches_f64);
    RUN_PER_IMPL(custom_scale_matches_f64);
    RUN_PER_IMPL(dropout_matches_f64);
    RUN_PER_IMPL(fully_masked_rows);
    RUN_PER_IMPL(large_scores_stay_finite);
    RUN_PER_IMPL(forward_without_lse);
    RUN_PER_IMPL(invalid_arguments_write_nothing);
    RUN(test_flash_workspace_is_linear_in_T);
    RUN(test_strerror_names_every_code);
    RUN(test_version_is_semver);
    return test_summary();
}

/* Training with bf16 GEMM inputs (slm_train_opts.dtype = SLM_DTYPE_BF16):
 * the rounding, the bf16 GEMM (oneDNN and portable) against a float64
 * reference with a bound derived from bf16 rounding and K, the gradients of
 * a bf16 pass against fp32's, a 50-step loss curve against fp32's, and
 * resume equality. SLM_BF16_GEMM=1 is set before anything runs, so the bf16
 * path is taken on any CPU (portable loops where AVX512-BF16 is missing). */
#include "common/bf16_train_case.h"
#include "kernels/kernels.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bf16's unit roundoff (8 significant bits, round to nearest) and fp32's */
#define U_BF16 (1.0 / 256.0)
#define U_F32 (1.0 / 16777216.0)

static void test_rounding_is_nearest_even(void)
{
    /* 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1;
     * 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6. */
    CHECK(f32_to_bf16_one(1.0f) == 0x3f80, "1");
    CHECK(f32_to_bf16_one(1.0f + 0x1p-8f) == 0x3f80, "tie to even (down)");
    CHECK(f32_to_bf16_one(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even (up)");
    CHECK(f32_to_bf16_one(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "above the tie");
    CHECK(f32_to_bf16_one(-2.0f) == 0xc000, "-2");
    CHECK(f32_to_bf16_one(INFINITY) == 0x7f80 && f32_to_bf16_one(-INFINITY) == 0xff80, "inf");
    CHECK(f32_to_bf16_one(3.4e38f) == 0x7f80, "past bf16's largest finite: inf");
    CHECK(isnan(bf16_as_f32(f32_to_bf16_one(NAN))), "NaN stays NaN");
    CHECK(bf16_as_f32(f32_to_bf16_one(0x1p-130f)) == 0x1p-130f, "subnormal kept");
    /* every value: within half an ulp (relative 2^-8) */
    float x[1000];
    uint16_t h[1000];
    test_fill_uniform(x, 1000, 5, -3.0f, 3.0f);
    f32_to_bf16_array(h, x, 1000);
    double worst = 0.0;
    for (int i = 0; i < 1000; i++) {
        double e = fabs(bf16_as_f32(h[i]) - x[i]) / fabs(x[i]);
        worst = e > worst ? e : worst;
    }
    CHECK(worst <= U_BF16 && worst > U_BF16 / 4, "worst relative rounding %g", worst);
}

typedef void (*bf16_gemm_fn)(char, char, int, int, int, float, const uint16_t *, int,
                             const uint16_t *, int, float, float *, int);

/* op(A) (M,K)·op(B) (K,N) through fn against float64 sums: of the fp32
 * inputs, within (2u + u² + (K+2)·u32)·Σ|a||b| (each input rounded to bf16
 * once, products exact in fp32, K fp32 additions plus beta·C); of the
 * rounded inputs, within the fp32 part alone. The first error must exceed
 * fp32's bound somewhere: the inputs were rounded. */
static void check_gemm(bf16_gemm_fn fn, const char *name, char ta, char tb, int M, int N, int K,
                       float beta)
{
    int lda = ta == 'N' ? K + 3 : M + 1, ldb = tb == 'N' ? N + 2 : K, ldc = N + 1;
    size_t na = (size_t)(ta == 'N' ? M : K) * lda, nb = (size_t)(tb == 'N' ? K : N) * ldb;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc((size_t)M * ldc * 4);
    uint16_t *ah = malloc(na * 2), *bh = malloc(nb * 2);
    test_fill_uniform(a, na, 1 + M, -1.0f, 1.0f);
    test_fill_uniform(b, nb, 2 + N, -1.0f, 1.0f);
    test_fill_uniform(c, (size_t)M * ldc, 3 + K, -1.0f, 1.0f);
    f32_to_bf16_array(ah, a, na);
    f32_to_bf16_array(bh, b, nb);
    float *c0 = malloc((size_t)M * ldc * 4);
    memcpy(c0, c, (size_t)M * ldc * 4);
    fn(ta, tb, M, N, K, 1.0f, ah, lda, bh, ldb, beta, c, ldc);
    double worst_exact = 0.0, worst_rounded = 0.0, past_fp32 = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, sr = 0.0, sabs = 0.0;
            for (int k = 0; k < K; k++) {
                size_t ia = ta == 'N' ? (size_t)i * lda + k : (size_t)k * lda + i;
                size_t ib = tb == 'N' ? (size_t)k * ldb + j : (size_t)j * ldb + k;
                s += (double)a[ia] * b[ib];
                sr += (double)bf16_as_f32(ah[ia]) * bf16_as_f32(bh[ib]);
                sabs += fabs((double)a[ia] * b[ib]);
            }
            double cb = (double)beta * c0[(size_t)i * ldc + j], got = c[(size_t)i * ldc + j];
            double f32 = (K + 2) * U_F32 * 1.01 * (sabs * (1 + 3 * U_BF16) + fabs(cb)) + 1e-30;
            double tol = (2 * U_BF16 + U_BF16 * U_BF16) * sabs + f32;
            double e = fabs(got - (s + cb)), er = fabs(got - (sr + cb));
            worst_exact = e / tol > worst_exact ? e / tol : worst_exact;
            worst_rounded = er / f32 > worst_rounded ? er / f32 : worst_rounded;
            past_fp32 = e / f32 > past_fp32 ? e / f32 : past_fp32;
        }
    CHECK(worst_exact <= 1.0, "%s %c%c %dx%dx%d: error %.3g of the bf16 bound", name, ta, tb, M, N,
          K, worst_exact);
    CHECK(worst_rounded <= 1.0, "%s %c%c %dx%dx%d: error %.3g of fp32's bound on rounded inputs",
          name, ta, tb, M, N, K, worst_rounded);
    CHECK(K < 4 || past_fp32 > 1.0, "%s %c%c %dx%dx%d: inputs not rounded to bf16?", name, ta, tb,
          M, N, K);
    free(a), free(b), free(c), free(c0), free(ah), free(bh);
}

/* gemm_bf16_amx in check_gemm's shape: ta must be 'N' and alpha 1 */
static void amx_gemm(char ta, char tb, int M, int N, int K, float alpha, const uint16_t *A, int lda,
                     const uint16_t *B, int ldb, float beta, float *C, int ldc)
{
    CHECK(ta == 'N' && alpha == 1.0f, "amx: A not transposed, alpha 1");
    CHECK(gemm_bf16_amx(tb, M, N, K, A, lda, B, ldb, beta, C, ldc, NULL) == 0,
          "amx refused %dx%dx%d", M, N, K);
}

/* The AMX tiles where this CPU has them: full 32×32 blocks read in place,
 * edges in M, N and K through the padded copies, a depth past one 512 pass
 * (C carried between passes), beta 0, 1 and 0.5 (C scaled first). */
static void test_gemm_bf16_amx_matches_float64(void)
{
    if (!gemm_bf16_amx_supported()) {
        printf("# no AMX here (CPUID, OS or permission): gemm_bf16_amx not run\n");
        CHECK(gemm_bf16_amx('N', 4, 4, 4, NULL, 4, NULL, 4, 0.0f, NULL, 4, NULL) == -1,
              "amx must refuse where it cannot run");
        return;
    }
    const int shapes[][3] = {{64, 96, 384}, {37, 29, 53}, {1, 17, 9}, {96, 64, 1100},
                             {33, 65, 32},  {256, 768, 64}, {5, 1, 31}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 2; t++)
            for (int beta = 0; beta < 3; beta++)
                check_gemm(amx_gemm, "amx", 'N', t ? 'T' : 'N', shapes[s][0], shapes[s][1],
                           shapes[s][2], beta == 2 ? 0.5f : (float)beta);
}

/* An epilogue that shows what it saw: each element becomes 2·c + 1, and
 * colsum[j] collects the new values of column j in the order it visits. */
typedef struct {
    double *colsum;
    int *rows_seen; /* per column: the next row it expects */
    int out_of_order;
} probe_epilogue;

static void probe_block(void *ctx, float *c, int ldc, int row0, int col0, int rows, int cols)
{
    probe_epilogue *p = ctx;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float *x = &c[(size_t)r * ldc + j];
            *x = 2.0f * *x + 1.0f;
            p->colsum[col0 + j] += *x;
            if (p->rows_seen[col0 + j] != row0 + r) p->out_of_order = 1;
            p->rows_seen[col0 + j] = row0 + r + 1;
        }
}

/* gemm_bf16_fused: the product as gemm_bf16's, the epilogue applied once
 * to every element after the whole depth (a depth past one 512 pass, edges
 * in M and N), each column's rows in ascending order. */
static void test_gemm_bf16_fused_epilogue(void)
{
    const int shapes[][3] = {{70, 45, 1100}, {64, 64, 64}, {5, 33, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 2; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            char tb = t ? 'T' : 'N';
            float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
            float *c = malloc(sizeof(float) * M * N), *want = malloc(sizeof(float) * M * N);
            uint16_t *ah = malloc(2 * (size_t)M * K), *bh = malloc(2 * (size_t)K * N);
            test_fill_uniform(a, (size_t)M * K, 5, -1.0f, 1.0f);
            test_fill_uniform(b, (size_t)K * N, 6, -1.0f, 1.0f);
            f32_to_bf16_array(ah, a, (size_t)M * K);
            f32_to_bf16_array(bh, b, (size_t)K * N);
            int ldb = tb == 'N' ? N : K;
            gemm_bf16('N', tb, M, N, K, 1.0f, ah, K, bh, ldb, 0.0f, want, N);
            probe_epilogue p = {calloc(N, sizeof(double)), calloc(N, sizeof(int)), 0};
            gemm_epilogue ep = {probe_block, &p};
            gemm_bf16_fused('N', tb, M, N, K, ah, K, bh, ldb, 0.0f, c, N, &ep);
            double worst = 0.0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double w = 2.0 * want[(size_t)i * N + j] + 1.0;
                    /* the two kernels may sum in different orders */
                    double e = fabs(c[(size_t)i * N + j] - w) / (fabs(w) + 1.0);
                    worst = e > worst ? e : worst;
                }
            int rows_ok = 1;
            double sum_err = 0.0;
            for (int j = 0; j < N; j++) {
                rows_ok &= p.rows_seen[j] == M;
                double sum = 0.0;
                for (int i = 0; i < M; i++) sum += c[(size_t)i * N + j];
                sum_err = fmax(sum_err, fabs(sum - p.colsum[j]) / (fabs(sum) + 1.0));
            }
            CHECK(worst < 1e-4, "%dx%dx%d %c: fused result off by %.3g", M, N, K, tb, worst);
            CHECK(rows_ok && !p.out_of_order, "%dx%dx%d %c: rows visited out of order or not once",
                  M, N, K, tb);
            CHECK(sum_err < 1e-9, "%dx%dx%d %c: column sums off by %.3g", M, N, K, tb, sum_err);
            free(a), free(b), free(c), free(want), free(ah), free(bh), free(p.colsum),
                free(p.rows_seen);
        }
}

static void test_gemm_bf16_matches_float64(void)
{
    const int shapes[][3] = {{37, 29, 53}, {1, 17, 9}, {5, 1, 31}, {64, 96, 384}, {3, 4, 1}};
    const char tr[4][2] = {{'N', 'N'}, {'N', 'T'}, {'T', 'N'}, {'T', 'T'}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++)
            for (int beta = 0; beta < 2; beta++) {
                check_gemm(gemm_bf16, gemm_bf16_supported() ? "oneDNN" : "portable", tr[t][0],
                           tr[t][1], shapes[s][0], shapes[s][1], shapes[s][2], (float)beta);
                check_gemm(gemm_bf16_portable, "portable", tr[t][0], tr[t][1], shapes[s][0],
                           shapes[s][1], shapes[s][2], (float)beta);
            }
}

enum { V = BTC_V, CTX = BTC_CTX, B = BTC_B, LAYERS = 2 };

/* Gradients of one pass in bf16 against fp32, tensor by tensor of the whole
 * vector: relative L2 difference. Every GEMM input carries a relative
 * error of at most u = 2^-8 (random in sign), and each gradient passes
 * through at most 2·(LAYERS+1) GEMMs in forward and backward, each adding
 * two such errors: 4·(LAYERS+1)·u bounds the relative difference even if
 * they all added up. The same pass in fp32 through slm_forward_opts.dtype =
 * F32 is bit-identical to no options at all. */
static void test_bf16_gradients_within_bf16_rounding(void)
{
    slm_model *m = btc_model(LAYERS, SLM_ACT_GELU_NEW, 0.0f);
    if (!m) return;
    int32_t tok[B * CTX], tgt[B * CTX];
    for (int i = 0; i < B * CTX; i++)
        tok[i] = (i * 7) % V, tgt[i] = (i * 7 + 1) % V;
    slm_batch batch = {tok, tgt, B, CTX};
    size_t n = slm_model_num_params(m);
    double *g[3];
    float loss[3];
    char err[256];
    for (int pass = 0; pass < 3; pass++) {
        slm_forward_opts o = {.training = 1, .dtype = pass == 2 ? SLM_DTYPE_BF16 : SLM_DTYPE_F32};
        slm_model_zero_grad(m);
        CHECK(slm_model_forward(m, &batch, pass == 0 ? NULL : &o, &loss[pass], err, sizeof err) ==
                  SLM_OK,
              "%s", err);
        if (pass == 0) { /* inference pass: no backward; redo it as training */
            float l;
            slm_forward_opts t = {.training = 1};
            slm_model_forward(m, &batch, &t, &l, err, sizeof err);
            CHECK(l == loss[0], "training and inference loss differ");
        }
        CHECK(slm_model_backward(m, 1.0f, err, sizeof err) == SLM_OK, "%s", err);
        g[pass] = malloc(n * sizeof(double));
        const float *gr = slm_model_grads(m);
        for (size_t i = 0; i < n; i++)
            g[pass][i] = gr[i];
    }
    CHECK(loss[1] == loss[0] && !memcmp(g[0], g[1], n * sizeof(double)),
          "dtype F32 is not the default pass");
    double d2 = 0.0, n2 = 0.0;
    for (size_t i = 0; i < n; i++)
        d2 += (g[2][i] - g[1][i]) * (g[2][i] - g[1][i]), n2 += g[1][i] * g[1][i];
    double rel = sqrt(d2 / n2), bound = 4.0 * (LAYERS + 1) * U_BF16;
    CHECK(rel <= bound, "bf16 gradients differ from fp32 by %.3g (bound %.3g)", rel, bound);
    CHECK(rel > 0.0, "bf16 pass identical to fp32: bf16 not used");
    printf("# bf16 gradients vs fp32: relative L2 difference %.3g (bound %.3g)\n", rel, bound);
    CHECK_CLOSE(loss[2], loss[1], 2 * U_BF16, 0.0, "loss %g vs %g", loss[2], loss[1]);
    slm_forward_opts bad = {.dtype = SLM_DTYPE_F16};
    CHECK(slm_model_forward(m, &batch, &bad, NULL, err, sizeof err) == SLM_EINVAL &&
              strstr(err, "dtype"),
          "dtype F16 accepted: %s", err);
    for (int i = 0; i < 3; i++)
        free(g[i]);
    slm_model_free(m);
}

/* 50 steps in fp32 and in bf16 from the same start: the losses fall
 * alike (btc_check_loss_curves; within 1 %, issue 11's rule for the
 * validation loss). */
static void test_bf16_loss_curve_follows_fp32(void)
{
    double f32, bf16;
    btc_check_loss_curves(50, "bf16 GEMMs", &f32, &bf16);
}

/* A bf16 run stopped at step 3 and resumed from its checkpoint ends with
 * the uninterrupted run's files, byte for byte; the checkpoint records the
 * dtype and holds fp32 parameters. */
static void test_bf16_resume_is_byte_identical(void)
{
    btc_check_resume(0.0f);
}

static void test_bad_dtype_is_refused(void)
{
    slm_model *m = btc_model(LAYERS, SLM_ACT_GELU_NEW, 0.0f);
    slm_corpus *c = btc_corpus(2000);
    slm_train_opts o = btc_opts(SLM_DTYPE_F16, 5);
    slm_trainer *t = NULL;
    char err[256] = "";
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_EINVAL && !t &&
              strstr(err, "dtype"),
          "dtype F16 accepted: %s", err);
    slm_trainer_free(t);
    slm_corpus_free(c);
    slm_model_free(m);
}

int main(void)
{
    setenv("SLM_BF16_GEMM", "1", 1);
    printf("# %s\n", gemm_bf16_reason());
    RUN(test_rounding_is_nearest_even);
    RUN(test_gemm_bf16_matches_float64);
    RUN(test_gemm_bf16_amx_matches_float64);
    RUN(test_gemm_bf16_fused_epilogue);
    RUN(test_bf16_gradients_within_bf16_rounding);
    RUN(test_bf16_loss_curve_follows_fp32);
    RUN(test_bf16_resume_is_byte_identical);
    RUN(test_bad_dtype_is_refused);
    return test_summary();
}

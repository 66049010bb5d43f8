/* int8 and bf16 weights (src/kernels/quant_*, slm quantize): every kernel
 * path this CPU runs against a float64 reference of the same dequantized
 * math, with tolerances from fp32 rounding (u = 2^-24 per operation) and,
 * against the unquantized product, from the quantization step; the
 * quantized directory round trip (exact); quantized decoding and
 * evaluation against fp32 decoding of the dequantized weights. */
#include "core/alloc.h"
#include "core/cpu.h"
#include "kernels/quant.h"
#include "kernels/kernels.h"
#include "model/quant_model.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define U32 (1.0 / 16777216.0) /* fp32 unit roundoff */

/* W (in,out) fp32 from a seed, with a few large entries so groups differ in scale. */
static float *random_matrix(int in, int out, unsigned long long seed)
{
    float *W = malloc((size_t)in * out * sizeof *W);
    test_fill_uniform(W, (size_t)in * out, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < (size_t)in * out; i += 37)
        W[i] *= 8.0f;
    return W;
}

static void test_quantize_int8_known_answer(void)
{
    /* One group of 32 down column 0 of a [32][2] Conv1D weight: s = 127/127,
     * q = round(w / s) with ties away from zero. Column 1 is all zero. */
    float W[64] = {0};
    for (int i = 0; i < 32; i++)
        W[i * 2] = (float)(i - 16) + (i == 3 ? 0.5f : 0.0f);
    W[31 * 2] = 127.0f;
    int8_t q[64];
    float s[2];
    quantize_int8(W, 32, 2, 0, 32, q, s);
    CHECK(s[0] == 1.0f && s[1] == 0.0f, "scales %g %g", (double)s[0], (double)s[1]);
    CHECK(q[3 * 2] == -13, "3.5 - 16 = -12.5 rounds away from zero to -13, got %d", q[3 * 2]);
    CHECK(q[31 * 2] == 127 && q[0] == -16 && q[1] == 0, "q %d %d %d", q[62], q[0], q[1]);
    /* wte layout ([out][in]): the same group along a row. */
    float Wt[64];
    for (int i = 0; i < 32; i++)
        Wt[i] = W[i * 2], Wt[32 + i] = 0.0f;
    int8_t qt[64];
    float st[2];
    quantize_int8(Wt, 32, 2, 1, 32, qt, st);
    CHECK(st[0] == 1.0f && qt[31] == 127 && qt[3] == q[3 * 2], "transposed layout");
    CHECK(f32_to_bf16_one(1.0f) == 0x3f80 && f32_to_bf16_one(1.00390625f) == 0x3f80 &&
              f32_to_bf16_one(1.01171875f) == 0x3f82 && (f32_to_bf16_one(NAN) & 0x7fc0) == 0x7fc0,
          "bf16 rounding to nearest even");
}

/* Q8_0 of one activation row, as the kernels do it (float32 steps). */
static void q8_row(const float *x, int in, int8_t *q, float *d)
{
    for (int b = 0; b < in / 32; b++) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
        for (int i = 0; i < 32; i++)
            q[b * 32 + i] = (int8_t)roundf(x[b * 32 + i] * inv);
        d[b] = s;
    }
}

/* Every int8 path: y against Σ_b s_w·s_x·Σ q_w·q_x in float64, within
 * (blocks + 8)·u·Σ_b s_w·s_x·Σ |q_w·q_x| (the integer sums are exact; a
 * path may split a block's sum over up to 16 lanes, each partial rounded
 * twice, then one fp32 add per block and a 16-lane reduction); and against the unquantized x·W_deq
 * within the activation quantization step, Σ_i |w_i|·s_x/2, plus the same rounding. */
static void check_int8(int in, int out, int n, int group, int transposed)
{
    float *W = random_matrix(in, out, (unsigned long long)(in * 131 + out));
    float *x = malloc((size_t)n * in * sizeof *x), *y = malloc((size_t)n * out * sizeof *y);
    float *bias = malloc((size_t)out * sizeof *bias);
    int8_t *q = malloc((size_t)in * out), *xq = malloc((size_t)in);
    float *s = malloc((size_t)in * out / group * sizeof *s), *dx = malloc((size_t)in / 32 * 4);
    test_fill_uniform(x, (size_t)n * in, 3, -2.0f, 2.0f);
    test_fill_uniform(bias, (size_t)out, 4, -1.0f, 1.0f);
    for (int i = 0; i < 32; i++)
        x[i] = 0.0f; /* token 0's first block: all zero (s_x = 0) */
    quantize_int8(W, in, out, transposed, group, q, s);
    qmatrix m;
    CHECK(qmatrix_load_int8(&m, in, out, transposed, group, q, s) == 0, "load");
    void *work = alloc_aligned(qlinear_work_bytes(n, in));
    for (int path = qpath_best(QM_INT8); path >= QPATH_PORTABLE; path--) {
        if (!qpath_supported(QM_INT8, path)) continue;
        qlinear_forward(path, y, x, &m, bias, n, work);
        double worst_int = 0, worst_step = 0;
        for (int t = 0; t < n; t++) {
            q8_row(x + (size_t)t * in, in, xq, dx);
            for (int o = 0; o < out; o++) {
                double ref = bias[o], mag = fabs(bias[o]), exact = bias[o], step = 0;
                for (int b = 0; b < in / 32; b++) {
                    long dot = 0, absdot = 0;
                    double sw = 0;
                    for (int i = b * 32; i < b * 32 + 32; i++) {
                        size_t at = transposed ? (size_t)o * in + i : (size_t)i * out + o;
                        size_t sat = transposed ? (size_t)o * (in / group) + i / group
                                                : (size_t)(i / group) * out + o;
                        sw = s[sat];
                        dot += (long)q[at] * xq[i];
                        absdot += labs((long)q[at] * xq[i]);
                        exact += (double)q[at] * s[sat] * x[(size_t)t * in + i];
                        step += fabs((double)q[at] * s[sat]) * dx[b] / 2;
                    }
                    double term = sw * dx[b] * (double)dot;
                    ref += term;
                    mag += sw * dx[b] * (double)absdot;
                }
                double got = y[(size_t)t * out + o];
                double tol = (in / 32 + 8) * U32 * mag + 1e-30;
                worst_int = fmax(worst_int, fabs(got - ref) / tol);
                worst_step = fmax(worst_step, fabs(got - exact) / (step + 2 * tol));
            }
        }
        CHECK(worst_int <= 1.0, "int8 %s in %d out %d n %d: %.3g x the rounding bound",
              qpath_name(QM_INT8, path), in, out, n, worst_int);
        CHECK(worst_step <= 1.0, "int8 %s: %.3g x the quantization step bound",
              qpath_name(QM_INT8, path), worst_step);
    }
    free_aligned(work);
    qmatrix_free(&m);
    free(W), free(x), free(y), free(bias), free(q), free(xq), free(s), free(dx);
}

static void test_int8_paths_match_float64(void)
{
    check_int8(96, 37, 1, 32, 0);  /* odd block count, rows not a multiple of 4 */
    check_int8(96, 37, 5, 32, 0);  /* several tokens */
    check_int8(256, 64, 3, 64, 0); /* group of 64 */
    check_int8(64, 50, 2, 32, 1);  /* wte layout */
}

static float bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Every bf16 path: y against Σ bf16(w)·x in float64 (the products are exact
 * in fp32) within (in + 2)·u·Σ |w·x|. The vdpbf16ps tiles (several tokens
 * on AVX512-BF16) round x to bf16 first: against Σ bf16(w)·bf16(x) within
 * (in/2 + 20)·u·Σ|w·x̂| (pairs are summed before each add, then a 16-lane
 * reduction), and against the unrounded x within a further 2^-9·Σ|w·x|.
 * From 8 tokens on, oneDNN's bf16 GEMM (AMX tiles on a Xeon) multiplies the
 * same rounded operands and sums in an order of its own: (in + 2)·u·Σ|w·x̂|. */
static void check_bf16(int in, int out, int n)
{
    float *W = random_matrix(in, out, (unsigned long long)(in + out));
    float *x = malloc((size_t)n * in * sizeof *x), *y = malloc((size_t)n * out * sizeof *y);
    uint16_t *b = malloc((size_t)in * out * sizeof *b);
    test_fill_uniform(x, (size_t)n * in, 9, -2.0f, 2.0f);
    for (size_t i = 0; i < (size_t)in * out; i++)
        b[i] = f32_to_bf16_one(W[i]);
    qmatrix m;
    CHECK(qmatrix_load_bf16(&m, in, out, 0, b) == 0, "load");
    void *work = alloc_aligned(qlinear_work_bytes(n, in));
    for (int path = qpath_best(QM_BF16); path >= QPATH_PORTABLE; path--) {
        if (!qpath_supported(QM_BF16, path)) continue;
        qlinear_forward(path, y, x, &m, NULL, n, work);
        int rounded = path == QPATH_AVX512_BF16 && n > 1;
        double worst = 0;
        for (int t = 0; t < n; t++)
            for (int o = 0; o < out; o++) {
                double ref = 0, mag = 0, full = 0;
                for (int i = 0; i < in; i++) {
                    float w = bf16_value(b[(size_t)i * out + o]), xi = x[(size_t)t * in + i];
                    float xr = rounded ? bf16_value(f32_to_bf16_one(xi)) : xi;
                    ref += (double)w * xr;
                    mag += fabs((double)w * xr);
                    full += fabs((double)w * xi);
                }
                double tol = rounded && n < 8 ? (in / 2 + 20) * U32 * mag : (in + 2) * U32 * mag;
                double got = y[(size_t)t * out + o];
                worst = fmax(worst, fabs(got - ref) / tol);
                if (rounded) { /* and against the unrounded activations */
                    double exact = 0;
                    for (int i = 0; i < in; i++)
                        exact += (double)bf16_value(b[(size_t)i * out + o]) * x[(size_t)t * in + i];
                    worst = fmax(worst, fabs(got - exact) / (tol + full / 512.0));
                }
            }
        CHECK(worst <= 1.0, "bf16 %s in %d out %d n %d: %.3g x the rounding bound",
              qpath_name(QM_BF16, path), in, out, n, worst);
    }
    free_aligned(work);
    qmatrix_free(&m);
    free(W), free(x), free(y), free(b);
}

static void test_bf16_paths_match_float64(void)
{
    check_bf16(97, 37, 1); /* a tail of 1 after 16s and 8s */
    check_bf16(97, 37, 6); /* tiles: a tail of 1 after 32s, tokens not a multiple of 4 */
    check_bf16(64, 9, 4);
    check_bf16(768, 20, 3);
    check_bf16(768, 37, 13); /* a prompt: oneDNN's bf16 GEMM where the CPU has AVX512-BF16 */
    check_bf16(97, 20, 8);
}

static void test_cpu_level_lowers_the_path(void)
{
    setenv("SLM_CPU_LEVEL", "portable", 1);
    CHECK(qpath_best(QM_INT8) == QPATH_PORTABLE && qpath_best(QM_BF16) == QPATH_PORTABLE,
          "SLM_CPU_LEVEL=portable");
    setenv("SLM_CPU_LEVEL", "avx2", 1);
    CHECK(qpath_best(QM_INT8) <= QPATH_AVX_VNNI && qpath_best(QM_BF16) <= QPATH_AVX2,
          "SLM_CPU_LEVEL=avx2");
    CHECK((qpath_best(QM_INT8) == QPATH_AVX_VNNI) == (cpu_detect().avx_vnni != 0),
          "AVX-VNNI taken exactly where the CPU has it");
    unsetenv("SLM_CPU_LEVEL");
}

/* ---- model directories ------------------------------------------------- */

static slm_model *small_model(void)
{
    slm_config c = {2, 2, 64, 40, 300, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_BYTE, 0.0f};
    slm_model *m = NULL;
    if (slm_model_create(&c, 5, &m, NULL, 0)) return NULL;
    /* Wider weights than GPT-2's init so the logits are far from uniform. */
    float *p = slm_model_params(m);
    size_t n = slm_model_num_params(m);
    float *noise = malloc(n * sizeof *noise);
    test_fill_uniform(noise, n, 8, -0.2f, 0.2f);
    for (size_t i = 0; i < n; i++)
        p[i] += noise[i];
    free(noise);
    return m;
}

static char *tmpdir(const char *tag)
{
    static char buf[4][128];
    static int k;
    char *d = buf[k++ % 4];
    snprintf(d, 128, "/tmp/slm-test-quant-%s-%d", tag, (int)getpid());
    return d;
}

static void rm_dir(const char *d)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", d);
}

/* Saving then loading gives exactly the kernel form built from quantizing
 * the fp32 weights directly, and the fp32 tensors bit for bit. */
static void test_round_trip_is_exact(void)
{
    slm_model *m = small_model();
    CHECK(m != NULL, "create");
    if (!m) return;
    char err[512];
    for (int quant = SLM_QUANT_INT8; quant <= SLM_QUANT_BF16; quant++) {
        char *dir = tmpdir(quant == SLM_QUANT_INT8 ? "rt8" : "rtb");
        slm_model *q = NULL;
        int rc = slm_model_save_quantized(m, dir, quant, quant == SLM_QUANT_INT8 ? 64 : 0, err,
                                          sizeof err);
        CHECK(rc == 0, "save: %s", err);
        rc = rc ? rc : slm_model_load(dir, &q, err, sizeof err);
        CHECK(rc == 0, "load: %s", err);
        if (rc) continue;
        int group = -1;
        CHECK(slm_model_quantization(q, &group, NULL) == quant, "quantization");
        CHECK(group == (quant == SLM_QUANT_INT8 ? 64 : 0), "group %d", group);
        int mism = 0;
        for (int j = 0; j < slm_model_num_tensors(m); j++) {
            const slm_tensor_info *t = slm_model_tensor(m, j), *tq = slm_model_tensor(q, j);
            const float *src = slm_model_params(m) + t->offset;
            if (!quant_tensor_is_matrix(t)) {
                mism += memcmp(src, slm_model_params(q) + tq->offset, t->numel * 4) != 0;
                continue;
            }
            int wte = j == 0, in = wte ? t->shape[1] : t->shape[0];
            int out = wte ? t->shape[0] : t->shape[1];
            qmatrix want;
            const qmatrix *got = wte ? &q->quant->wte
                                     : &q->quant->layer[(size_t)((j - 2) / 12) * QW_PER_LAYER +
                                                        ((j - 2) % 12 == 2   ? QW_ATTN
                                                         : (j - 2) % 12 == 4 ? QW_PROJ
                                                         : (j - 2) % 12 == 8 ? QW_FC
                                                                             : QW_MLP_PROJ)];
            if (quant == SLM_QUANT_INT8) {
                int8_t *qq = malloc(t->numel);
                float *ss = malloc(t->numel / 64 * sizeof *ss);
                quantize_int8(src, in, out, wte, 64, qq, ss);
                qmatrix_load_int8(&want, in, out, wte, 64, qq, ss);
                mism += memcmp(want.q, got->q, t->numel) != 0 ||
                        memcmp(want.scale, got->scale, t->numel / 32 * sizeof(float)) != 0;
                free(qq);
                free(ss);
            } else {
                uint16_t *bb = malloc(t->numel * 2);
                for (size_t i = 0; i < t->numel; i++)
                    bb[i] = f32_to_bf16_one(src[i]);
                qmatrix_load_bf16(&want, in, out, wte, bb);
                mism += memcmp(want.bf, got->bf, t->numel * 2) != 0;
                free(bb);
            }
            qmatrix_free(&want);
        }
        CHECK(mism == 0, "%d tensors differ after the round trip", mism);
        /* A quantized model does not train or save as fp32. */
        int32_t tok[4] = {1, 2, 3, 4};
        CHECK(slm_model_forward(q, &(slm_batch){.tokens = tok, .targets = tok, .B = 1, .T = 4},
                                &(slm_forward_opts){.training = 1}, NULL, err,
                                sizeof err) == SLM_EUNSUPPORTED &&
                  strstr(err, "cannot be trained"),
              "training refused: %s", err);
        CHECK(slm_model_grads(q) == NULL, "no gradients");
        CHECK(slm_model_save(q, dir, err, sizeof err) == SLM_EUNSUPPORTED, "fp32 save refused");
        slm_model_free(q);
        rm_dir(dir);
    }
    slm_model_free(m);
}

/* bf16: decoding the bf16 model equals fp32 decoding of the same (widened)
 * weights up to fp32 summation order; int8 stays within a loose bound set
 * by its 8-bit steps. Evaluation (all-position logits through
 * slm_model_forward) agrees with decoding. */
static void test_quantized_decode_matches_fp32_of_same_weights(void)
{
    slm_model *m = small_model();
    if (!m) return;
    char err[512], *dir = tmpdir("dec");
    float *p = slm_model_params(m);
    /* Round the matrices to bf16 so the fp32 model holds exactly the bf16 weights. */
    for (int j = 0; j < slm_model_num_tensors(m); j++) {
        const slm_tensor_info *t = slm_model_tensor(m, j);
        if (!quant_tensor_is_matrix(t)) continue;
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t u = (uint32_t)f32_to_bf16_one(p[t->offset + i]) << 16;
            memcpy(&p[t->offset + i], &u, 4);
        }
    }
    int V = slm_model_config(m)->vocab_size, T = 20;
    int32_t tokens[20];
    for (int t = 0; t < T; t++)
        tokens[t] = (t * 37 + 11) % V;
    float *want = malloc((size_t)V * sizeof *want), *got = malloc((size_t)V * sizeof *got);
    slm_kv_cache *c = NULL;
    slm_kv_cache_create(m, T, &c, NULL, 0);
    slm_model_decode(m, c, tokens, T, want, NULL, 0);
    slm_kv_cache_free(c);
    for (int quant = SLM_QUANT_INT8; quant <= SLM_QUANT_BF16; quant++) {
        slm_model *q = NULL;
        int rc = slm_model_save_quantized(m, dir, quant, 0, err, sizeof err);
        if (!rc) rc = slm_model_load(dir, &q, err, sizeof err);
        CHECK(rc == 0, "%s", err);
        if (rc) continue;
        slm_kv_cache_create(q, T, &c, NULL, 0);
        /* Prompt in one chunk, then token by token: the same logits. */
        slm_model_decode(q, c, tokens, T - 3, got, NULL, 0);
        for (int t = T - 3; t < T; t++)
            slm_model_decode(q, c, tokens + t, 1, got, NULL, 0);
        double scale = 0;
        for (int v = 0; v < V; v++)
            scale = fmax(scale, fabs(want[v]));
        /* bf16: a prompt chunk's activations are rounded to bf16 (2^-9) on
         * AVX512-BF16; int8: 8-bit steps. */
        double tol = quant == SLM_QUANT_BF16 ? 0.01 * scale : 0.05 * scale;
        double worst = 0;
        for (int v = 0; v < V; v++)
            worst = fmax(worst, fabs(got[v] - want[v]));
        CHECK(worst <= tol, "%s: logits differ by %.3g (tolerance %.3g)",
              quant == SLM_QUANT_INT8 ? "int8" : "bf16", worst, tol);
        /* Evaluation's loss = the mean cross-entropy of the decode logits. */
        float loss = 0;
        int32_t targets[20];
        for (int t = 0; t < T; t++)
            targets[t] = t + 1 < T ? tokens[t + 1] : SLM_IGNORE_INDEX;
        rc =
            slm_model_forward(q, &(slm_batch){.tokens = tokens, .targets = targets, .B = 1, .T = T},
                              NULL, &loss, err, sizeof err);
        CHECK(rc == 0, "forward: %s", err);
        double ce = 0;
        slm_kv_cache_reset(c);
        for (int t = 0; t + 1 < T; t++) {
            slm_model_decode(q, c, tokens + t, 1, got, NULL, 0);
            double mx = -INFINITY, sum = 0;
            for (int v = 0; v < V; v++)
                mx = fmax(mx, got[v]);
            for (int v = 0; v < V; v++)
                sum += exp(got[v] - mx);
            ce += mx + log(sum) - got[tokens[t + 1]];
        }
        /* int8: the same Q8_0 activations either way; bf16: evaluation's
         * chunk may round activations to bf16, decoding one token does not. */
        double rtol = quant == SLM_QUANT_INT8 ? 1e-4 : 4e-3;
        CHECK_CLOSE(loss, ce / (T - 1), rtol, 1e-5, "eval loss %g vs decode %g", (double)loss,
                    ce / (T - 1));
        slm_kv_cache_free(c);
        slm_model_free(q);
        rm_dir(dir);
    }
    free(want);
    free(got);
    slm_model_free(m);
}

int main(void)
{
    RUN(test_quantize_int8_known_answer);
    RUN(test_int8_paths_match_float64);
    RUN(test_bf16_paths_match_float64);
    RUN(test_cpu_level_lowers_the_path);
    RUN(test_round_trip_is_exact);
    RUN(test_quantized_decode_matches_fp32_of_same_weights);
    return test_summary();
}

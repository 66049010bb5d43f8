/*
 * slm bench train — milliseconds per GPT-2 training step (forward + backward
 * + AdamW with clipping), fp32 (and with --dtype bf16 also bf16), on two shapes:
 *   a: GPT-2 124M (L12 H12 C768 V50257 P1024), B=4 T=64
 *   b: a small char-level model (L6 H6 C384 V128 P256), B=8 T=256
 * Reports the median step after one warm-up step, the useful GFLOP/s, that as
 * a share of a 2048³ sgemm measured in the same run, and the peak RSS (VmHWM)
 * next to the params + grads + Adam(2×) + activations lower bound.
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "slm.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: slm bench train [--shape a|b] [--steps N] [--dropout F] [--dtype fp32|bf16]\n"
    "                       [--threads N] [--json]\n\n"
    "Times GPT-2 training steps (forward + backward + AdamW with clipping, fp32)\n"
    "on random tokens and prints the median after one warm-up step:\n"
    "  a  GPT-2 124M: L12 H12 C768 V50257 P1024, B=4 T=64\n"
    "  b  small:      L6  H6  C384 V128   P256,  B=8 T=256\n"
    "(both by default). Useful FLOPs per step = tokens·(6·N_matmul + 12·L·C·T)\n"
    "with N_matmul = 12·L·C² + V·C (every weight matrix, LM head included) and\n"
    "12·L·C·T the attention scores and weighted sums, forward and backward,\n"
    "counted without the causal saving (PaLM, appendix B). 'sgemm' is a 2048³\n"
    "sgemm through slm's kernels (named on the 'kernels:' line) in the same\n"
    "run; 'peak' is VmHWM (with --dtype bf16 of both runs together); 'bound' =\n"
    "4 bytes × (4·params + the fp32 activations backward needs); 'act' is the\n"
    "working memory a step holds between forward and backward\n"
    "(slm_model_activation_bytes); 'shards' the per-thread batch slices each\n"
    "training pass ran on (slm_model_pass_shards: 1 = not split; split passes\n"
    "add a copy of the weight gradients per extra shard to 'peak').\n"
    "  --steps N     timed steps per shape (default 5)\n"
    "  --dropout F   dropout probability while training (default 0)\n"
    "  --dtype D     fp32 (default) or bf16: bf16 times each shape in fp32 and\n"
    "                then with slm train --dtype bf16 (bf16 GEMM inputs where the\n"
    "                CPU runs them faster, else fp32 GEMMs and activations stored\n"
    "                in bf16; named on the 'bf16:' line), the two runs' steps\n"
    "                interleaved, and prints the ratios of their step times\n"
    "                and activation memory\n";

typedef struct {
    const char *name;
    int L, H, C, V, P, B, T;
} shape;

static const shape shapes[] = {
    {"a", 12, 12, 768, 50257, 1024, 4, 64},
    {"b", 6, 6, 384, 128, 256, 8, 256},
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A field of /proc/self/status in MiB (VmHWM, VmRSS), or -1. */
static double proc_status_mib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double mib = -1.0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            mib = strtod(line + n + 1, NULL) / 1024.0; /* kB */
            break;
        }
    fclose(f);
    return mib;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0), so each shape's peak is
 * its own. Returns 0 if that worked. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* GFLOP/s of a 2048³ sgemm, best of 3: the machine's practical peak. */
static double sgemm_peak(void)
{
    const int n = 2048;
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double best = 0.0;
    if (a && b && c) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 7) * 0.01f;
            b[i] = (float)(i % 5) * 0.01f;
            c[i] = 0.0f;
        }
        for (int r = 0; r < 3; r++) {
            double t = now_s();
            gemm_f32('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            t = now_s() - t;
            double g = 2.0 * n * n * (double)n / t / 1e9;
            best = g > best ? g : best;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

typedef struct {
    double ms, gflops, peak_mib, bound_mib, act_mib, loss_first, loss_last;
    int shards; /* slm_model_pass_shards of the training passes */
} result;

/* Random tokens to train on: a stream 8 batches long, so windows differ. */
static int random_corpus(const shape *s, slm_corpus **out, char *err, size_t errlen)
{
    size_t n = (size_t)s->B * s->T * 8 + 1;
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return snprintf(err, errlen, "out of memory"), SLM_ENOMEM;
    uint64_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)s->V);
    }
    slm_corpus_opts co = {.context = s->T};
    int rc = slm_corpus_from_tokens(ids, n, s->V, &co, out, err, errlen);
    free(ids);
    return rc;
}

/* One shape's training run at one dtype: the library's training step
 * (src/train): forward, backward, AdamW with clipping at the scheduled
 * rate; no validation, no checkpoints. */
typedef struct {
    slm_model *m;
    slm_corpus *corpus;
    slm_trainer *t;
    double *ms;
    int done; /* steps taken, the warm-up step included */
    result r;
} run;

static void run_close(run *x)
{
    slm_trainer_free(x->t);
    slm_corpus_free(x->corpus);
    slm_model_free(x->m);
    free(x->ms);
}

static int run_open(run *x, const shape *s, int steps, float dropout, int dtype, char *err,
                    size_t errlen)
{
    slm_config cfg = {.n_layer = s->L, .n_head = s->H, .n_embd = s->C, .n_positions = s->P,
                      .vocab_size = s->V, .layer_norm_epsilon = 1e-5f,
                      .activation = SLM_ACT_GELU_NEW, .tokenizer = SLM_TOKENIZER_GPT2,
                      .dropout = dropout};
    *x = (run){0};
    x->ms = malloc((size_t)steps * sizeof *x->ms);
    slm_train_opts o;
    slm_train_opts_default(&o);
    o.batch = s->B;
    o.context = s->T;
    o.steps = steps + 1;
    o.warmup = 2;
    o.lr = 6e-4;
    o.val_fraction = 0;
    o.dtype = dtype;
    int rc = x->ms ? SLM_OK : (snprintf(err, errlen, "out of memory"), SLM_ENOMEM);
    if (!rc) rc = slm_model_create(&cfg, 1, &x->m, err, errlen);
    if (!rc) rc = random_corpus(s, &x->corpus, err, errlen);
    if (!rc) rc = slm_trainer_create(x->m, x->corpus, &o, 0, &x->t, err, errlen);
    return rc;
}

/* One step; the first (warm-up: allocation, first touch) is not timed. */
static int run_step(run *x, char *err, size_t errlen)
{
    slm_train_progress p;
    double time = now_s();
    int rc = slm_trainer_step(x->t, &p, err, errlen);
    time = now_s() - time;
    if (rc) return rc;
    if (x->done > 0) x->ms[x->done - 1] = time * 1e3;
    if (x->done == 0) x->r.loss_first = p.loss;
    x->r.loss_last = p.loss;
    x->done++;
    return SLM_OK;
}

/* The median step and what the run held (VmHWM is the process's: the
 * peak of all runs so far). */
static void run_finish(run *x, const shape *s, int steps)
{
    result *out = &x->r;
    qsort(x->ms, (size_t)steps, sizeof *x->ms, cmp_double);
    out->ms = steps % 2 ? x->ms[steps / 2] : 0.5 * (x->ms[steps / 2 - 1] + x->ms[steps / 2]);
    double L = s->L, C = s->C, T = s->T, N = (double)s->B * s->T;
    double n_matmul = 12.0 * L * C * C + (double)s->V * C;
    double flops = N * (6.0 * n_matmul + 12.0 * L * C * T);
    out->gflops = flops / (out->ms * 1e-3) / 1e9;
    out->peak_mib = proc_status_mib("VmHWM");
    out->act_mib = (double)slm_model_activation_bytes(x->m) / 1048576.0;
    out->shards = slm_model_pass_shards(x->m);
    /* What backward needs per row (src/model/gpt.h): per layer 16·C
     * floats + 4 statistics + H attention log-sum-exps; then the final
     * LayerNorm (C + 2), the logits (V) and their log-sum-exp. */
    double act = N * (C + L * (16.0 * C + 4.0 + s->H) + C + 2.0 + s->V + 1.0);
    out->bound_mib = 4.0 * (4.0 * (double)slm_model_num_params(x->m) + act) / 1048576.0;
}

/* Times shape s at each of n dtypes, their steps interleaved (fp32, bf16,
 * fp32, ...) so a noisy machine slows all of them alike. */
static int run_shape(const shape *s, int steps, float dropout, const int *dtypes, int n,
                     result *out)
{
    char err[256] = "";
    run runs[2];
    int opened = 0, rc = SLM_OK;
    reset_peak_rss();
    for (; opened < n && !rc; opened++)
        rc = run_open(&runs[opened], s, steps, dropout, dtypes[opened], err, sizeof err);
    for (int step = 0; step <= steps && !rc; step++)
        for (int k = 0; k < n && !rc; k++) rc = run_step(&runs[k], err, sizeof err);
    for (int k = 0; k < opened; k++) {
        if (!rc) {
            run_finish(&runs[k], s, steps);
            out[k] = runs[k].r;
        }
        run_close(&runs[k]);
    }
    return rc ? cli_error(CLI_RUNTIME, "bench train: %s", err) : CLI_OK;
}

static void print_row(const shape *s, const result *r, const char *dtype, double peak,
                      int nthreads, int steps, double dropout, int json)
{
    double share = peak > 0 ? r->gflops / peak : 0.0;
    if (json)
        printf("{\"bench\":\"train\",\"impl\":\"slm\",\"dtype\":\"%s\",\"shape\":\"%s\","
               "\"L\":%d,\"H\":%d,\"C\":%d,\"V\":%d,\"P\":%d,\"B\":%d,\"T\":%d,\"threads\":%d,"
               "\"steps\":%d,\"dropout\":%g,\"ms\":%.1f,\"gflops\":%.1f,\"sgemm_gflops\":%.1f,"
               "\"sgemm_share\":%.3f,\"peak_mib\":%.0f,\"bound_mib\":%.0f,\"act_mib\":%.1f,"
               "\"loss_first\":%.4f,\"loss_last\":%.4f,\"shards\":%d,\"kernels\":\"%s\"}\n",
               dtype, s->name, s->L, s->H, s->C, s->V, s->P, s->B, s->T, nthreads, steps, dropout,
               r->ms, r->gflops, peak, share, r->peak_mib, r->bound_mib, r->act_mib, r->loss_first,
               r->loss_last, r->shards, kernel_path_name());
    else
        printf("%-5s %-5s %3d %3d %4d %6d %5d %4d %6d %10.1f %8.1f %8.1f%% %9.0f %10.0f %8.1f  "
               "%.3f→%.3f\n",
               s->name, dtype, s->L, s->H, s->C, s->V, s->B, s->T, r->shards, r->ms, r->gflops,
               100.0 * share, r->peak_mib, r->bound_mib, r->act_mib, r->loss_first, r->loss_last);
    fflush(stdout);
}

int bench_train(int argc, char **argv)
{
    const char *only = NULL, *dtype = NULL;
    int steps = 5, threads = 0, json = 0;
    double dropout = 0.0;
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--shape", NULL, OPT_STRING, &only, 0, 0, NULL},
        {"--steps", NULL, OPT_INT, &steps, 1, 100000, NULL},
        {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL},
        {"--dropout", NULL, OPT_FLOAT, &dropout, 0, 0.999, NULL},
        {"--dtype", NULL, OPT_STRING, &dtype, 0, 0, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("bench train", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (only && strcmp(only, "a") && strcmp(only, "b"))
        return cli_error(CLI_USAGE, "bench train: --shape must be a or b, got '%s'", only);
    if (dtype && strcmp(dtype, "fp32") && strcmp(dtype, "bf16"))
        return cli_error(CLI_USAGE, "bench train: --dtype must be 'fp32' or 'bf16', got '%s'",
                         dtype);
    int bf16 = dtype && !strcmp(dtype, "bf16");
    cli_set_threads(threads);
    int nthreads = omp_get_max_threads();
    double peak = sgemm_peak();
    if (!json) {
        printf("slm bench train: %s, %d threads, sgemm 2048³ %.1f GFLOP/s, dropout %g\n"
               "kernels: %s\n",
               bf16 ? "fp32 and bf16" : "fp32", nthreads, peak, dropout, kernel_path_name());
        if (bf16)
            printf("bf16: %s%s\n", gemm_bf16_reason(),
                   gemm_bf16_enabled() ? "" : "; activations stored in bf16");
        printf("shape dtype   L   H    C      V     B    T shards    ms/step  GFLOP/s  of sgemm  "
               "peak MiB  bound MiB  act MiB  loss first→last\n");
    }
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const shape *s = &shapes[k];
        if (only && strcmp(only, s->name)) continue;
        const int dtypes[2] = {SLM_DTYPE_F32, SLM_DTYPE_BF16};
        result r[2] = {{0}};
        rc = run_shape(s, steps, (float)dropout, dtypes, bf16 ? 2 : 1, r);
        if (rc) return rc;
        print_row(s, &r[0], "fp32", peak, nthreads, steps, dropout, json);
        if (!bf16) continue;
        print_row(s, &r[1], "bf16", peak, nthreads, steps, dropout, json);
        if (!json)
            printf("%-5s bf16/fp32 step: %.2f, activation memory: %.2f\n", s->name,
                   r[1].ms / r[0].ms, r[1].act_mib / r[0].act_mib);
    }
    return CLI_OK;
}

/*
 * slm bench attention — causal self-attention, flash vs reference, forward
 * and forward+backward, in ms and GFLOP/s, next to this machine's sgemm
 * peak (a 2048³ sgemm through slm's gemm_f32, measured in the same run).
 *
 * FLOPs are the useful ones of causal attention, the same for every
 * implementation: forward 2·B·H·T²·D (QKᵀ and PV over the visible half),
 * forward+backward 6·B·H·T²·D (backward adds dV, dP, dQ, dK).
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "slm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: slm bench attention [--json] [--threads N] [--T LIST] [--quick]\n\n"
    "Causal attention, B=1 H=12 D=64, for each T: flash forward, flash forward+backward,\n"
    "reference forward, reference forward+backward (reference only up to T=4096), then\n"
    "a T=16384 flash forward+backward row showing its working memory. Each figure is the\n"
    "best of a few runs after a warm-up.\n\n"
    "  --json       one JSON object per line instead of a table\n"
    "  --threads N  threads (default: all cores)\n"
    "  --T LIST     comma-separated lengths (default 256,1024,4096)\n"
    "  --quick      T=256,1024 only, fewer repetitions, no T=16384 row\n";

#define MAX_T_LIST 16
#define REF_MAX_T 4096 /* the reference's T×T matrices get slow beyond */
#define LONG_T 16384   /* the long-context row                          */

typedef struct {
    int json, quick, threads;
    double peak; /* sgemm GFLOP/s */
} bench_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 2048³ sgemm GFLOP/s, best of 3 after a warm-up: the roofline the attention
 * figures are compared with. */
static double sgemm_peak(int n)
{
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < nn; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = INFINITY;
    for (int r = 0; r < 4; r++) {
        double t0 = now_s();
        gemm_f32('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

typedef struct {
    int B, H, T, D;
    float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv;
} bench_bufs;

static void free_bufs(bench_bufs *s)
{
    free(s->q), free(s->k), free(s->v), free(s->out), free(s->lse);
    free(s->dout), free(s->dq), free(s->dk), free(s->dv);
}

static int alloc_bufs(bench_bufs *s)
{
    size_t n = (size_t)s->B * s->H * s->T * s->D;
    float **all[] = {&s->q, &s->k, &s->v, &s->out, &s->dout, &s->dq, &s->dk, &s->dv};
    int ok = 1;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        ok &= (*all[i] = malloc(n * sizeof(float))) != NULL;
    ok &= (s->lse = malloc((size_t)s->B * s->H * s->T * sizeof(float))) != NULL;
    if (!ok) return -1;
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) { /* inputs in [-1, 1) */
        x = x * 1664525u + 1013904223u;
        float r = (float)(x >> 8) / 8388608.0f - 1.0f;
        s->q[i] = r, s->k[i] = -r * 0.5f, s->v[i] = r * 0.25f, s->dout[i] = r;
    }
    return 0;
}

/* One timed run of the pass; returns seconds or a negative error code. */
static double run_once(const bench_bufs *s, int impl, int backward)
{
    slm_attn_opts o = {.impl = impl, .causal = 1};
    double t0 = now_s();
    int rc =
        slm_attention_forward(&o, s->B, s->H, s->T, s->T, s->D, s->q, s->k, s->v, s->out, s->lse);
    if (!rc && backward)
        rc = slm_attention_backward(&o, s->B, s->H, s->T, s->T, s->D, s->q, s->k, s->v, s->out,
                                    s->lse, s->dout, s->dq, s->dk, s->dv);
    return rc ? rc : now_s() - t0;
}

static void report(const bench_ctx *b, const bench_bufs *s, const char *impl, const char *pass,
                   double ms, double gflops, double mib)
{
    if (b->json) {
        printf("{\"bench\":\"attention\",\"impl\":\"%s\",\"pass\":\"%s\",\"B\":%d,\"H\":%d,"
               "\"T\":%d,\"D\":%d,\"causal\":true,\"threads\":%d,\"ms\":%.3f,\"gflops\":%.2f,"
               "\"workspace_mib\":%.2f,\"pct_sgemm_peak\":%.1f}\n",
               impl, pass, s->B, s->H, s->T, s->D, b->threads, ms, gflops, mib,
               100.0 * gflops / b->peak);
    } else {
        printf("%-9s %-7s %3d %3d %6d %4d %10.2f %9.1f %14.2f %8.1f\n", impl, pass, s->B, s->H,
               s->T, s->D, ms, gflops, mib, 100.0 * gflops / b->peak);
    }
    fflush(stdout);
}

/* Best of `reps` runs after a warm-up of up to 5 runs or 0.5 s (none for a
 * single run), the same rule as bench/attention_torch.py. */
static int measure(const bench_ctx *b, const bench_bufs *s, int impl, int backward, int reps)
{
    double best = INFINITY, warm_end = now_s() + 0.5;
    for (int w = 0; reps > 1 && w < 5 && now_s() < warm_end; w++) {
        double t = run_once(s, impl, backward);
        if (t < 0) return (int)t;
    }
    for (int r = 0; r < reps; r++) {
        double t = run_once(s, impl, backward);
        if (t < 0) return (int)t;
        if (t < best) best = t;
    }
    double flop = (backward ? 6.0 : 2.0) * s->B * s->H * (double)s->T * s->T * s->D;
    size_t ws = slm_attention_workspace_bytes(impl, s->B, s->H, s->T, s->T, s->D, backward);
    report(b, s, impl == SLM_ATTN_FLASH ? "flash" : "reference", backward ? "fwd+bwd" : "fwd",
           best * 1e3, flop / best * 1e-9, (double)ws / (1 << 20));
    return 0;
}

/* Repetitions so a row takes roughly a second at most. */
static int reps_for(const bench_ctx *b, int T)
{
    int r = T <= 256 ? 20 : T <= 1024 ? 8 : T <= 4096 ? 3 : 1;
    return b->quick && r > 3 ? 3 : r;
}

static int bench_length(const bench_ctx *b, int T, int long_row)
{
    bench_bufs s = {.B = 1, .H = 12, .T = T, .D = 64};
    if (alloc_bufs(&s)) {
        free_bufs(&s);
        return cli_error(CLI_RUNTIME, "bench attention: out of memory at T=%d", T);
    }
    int reps = reps_for(b, T), rc = 0;
    if (!long_row) {
        rc = measure(b, &s, SLM_ATTN_FLASH, 0, reps);
        if (!rc) rc = measure(b, &s, SLM_ATTN_FLASH, 1, reps);
        if (!rc && T <= REF_MAX_T) rc = measure(b, &s, SLM_ATTN_REFERENCE, 0, reps > 3 ? 3 : reps);
        if (!rc && T <= REF_MAX_T) rc = measure(b, &s, SLM_ATTN_REFERENCE, 1, reps > 3 ? 3 : reps);
    } else {
        rc = measure(b, &s, SLM_ATTN_FLASH, 1, 1);
    }
    free_bufs(&s);
    if (rc) return cli_error(CLI_RUNTIME, "bench attention: T=%d: %s", T, slm_strerror(rc));
    return CLI_OK;
}

/* "256,1024" → list; 0 on success. */
static int parse_list(const char *arg, int *list, int *n)
{
    char buf[256];
    if (strlen(arg) >= sizeof buf) return -1;
    strcpy(buf, arg);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (*n >= MAX_T_LIST || cli_parse_int(tok, 1, 1 << 20, &v)) return -1;
        list[(*n)++] = (int)v;
    }
    return *n ? 0 : -1;
}

int bench_attention(int argc, char **argv)
{
    bench_ctx b = {0};
    int Ts[MAX_T_LIST] = {256, 1024, 4096}, nT = 3, custom = 0;
    const char *t_list = NULL;
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &b.json, 0, 0, NULL},
        {"--quick", NULL, OPT_FLAG, &b.quick, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &b.threads, 1, 1024, NULL},
        {"--T", NULL, OPT_STRING, &t_list, 0, 0, &custom},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("bench attention", argc, argv, opts, sizeof opts / sizeof *opts,
                               pos, 0, &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (t_list && parse_list(t_list, Ts, &nT))
        return cli_error(CLI_USAGE, "bench attention: --T wants a list like 256,1024");
    if (b.quick && !custom) nT = 2;
    if (!b.threads) b.threads = omp_get_num_procs();
    omp_set_num_threads(b.threads);

    int n_peak = b.quick ? 1024 : 2048;
    b.peak = sgemm_peak(n_peak);
    if (!(b.peak > 0)) return cli_error(CLI_RUNTIME, "bench attention: out of memory");
    if (b.json) {
        printf("{\"bench\":\"attention\",\"impl\":\"sgemm\",\"pass\":\"peak\",\"M\":%d,\"N\":%d,"
               "\"K\":%d,\"threads\":%d,\"gflops\":%.2f,\"kernels\":\"%s\"}\n",
               n_peak, n_peak, n_peak, b.threads, b.peak, kernel_path_name());
    } else {
        /* The peak is slm's own GEMM path (gemm_f32), the one the flash
         * kernels' instruction set is chosen with. */
        printf("causal attention, %d threads; sgemm %d³ peak %.1f GFLOP/s\nkernels: %s\n",
               b.threads, n_peak, b.peak, kernel_path_name());
        printf("%-9s %-7s %3s %3s %6s %4s %10s %9s %14s %8s\n", "impl", "pass", "B", "H", "T", "D",
               "ms", "GFLOP/s", "workspace MiB", "% peak");
    }
    fflush(stdout);
    for (int i = 0; i < nT; i++) {
        int rc = bench_length(&b, Ts[i], 0);
        if (rc) return rc;
    }
    if (!b.quick && !custom) return bench_length(&b, LONG_T, 1);
    return CLI_OK;
}

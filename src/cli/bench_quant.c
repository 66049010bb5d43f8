/*
 * slm bench quant — the int8 and bf16 linear kernels (src/kernels/quant_*)
 * on GPT-2 124M's matrix shapes, every path this CPU runs: one token (the
 * decode GEMV, bound by the weight bytes streamed) and a chunk of 64 tokens
 * (prompt processing, bound by the dot-product instructions). Reports the
 * best of the repeats: ms, GOP/s (2·n·in·out) and weight GB/s.
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "core/alloc.h"
#include "kernels/quant.h"
#include "kernels/kernels.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: slm bench quant [--json] [--threads N] [--tokens N] [--seconds S] [--cpu-time]\n\n"
    "Times y = x·W for int8 (Q8_0 weights and activations) and bf16 weights on\n"
    "GPT-2 124M's shapes (768x2304, 768x768, 768x3072, 3072x768, 768x50257 LM\n"
    "head) for 1 token and for --tokens N (default 64), on every kernel path\n"
    "this CPU runs (SLM_CPU_LEVEL lowers it): best time of repeats lasting about\n"
    "S seconds (default 0.3) per case. --cpu-time: one thread, timed by its CPU\n"
    "time (for a loaded machine).\n";

/* Wall time, or with --cpu-time this thread's CPU time: on a shared,
 * loaded machine one thread's CPU time is what the kernel cost, free of
 * the time slices other processes took. */
static int use_cpu_time;

static double now(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((int)(seed >> 9) - (1 << 22)) / (float)(1 << 22);
    }
}

int bench_quant(int argc, char **argv)
{
    int json = 0, threads = 0, tokens = 64;
    double seconds = 0.3;
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL},
        {"--tokens", NULL, OPT_INT, &tokens, 1, 4096, NULL},
        {"--seconds", NULL, OPT_FLOAT, &seconds, 0.001, 60, NULL},
        {"--cpu-time", NULL, OPT_FLAG, &use_cpu_time, 0, 0, NULL},
    };
    int n_pos;
    int rc = cli_parse_options("bench quant", argc, argv, opts, sizeof opts / sizeof *opts, NULL, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (use_cpu_time) threads = 1; /* CPU time of the one thread that runs it */
    cli_set_threads(threads);
    static const int shapes[][2] = {
        {768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {768, 50257}};
    int max_in = 3072, max_out = 50257;
    float *W = malloc((size_t)max_in * max_out * sizeof *W);
    float *x = alloc_aligned((size_t)tokens * max_in * sizeof *x);
    float *y = alloc_aligned((size_t)tokens * max_out * sizeof *y);
    int8_t *q = malloc((size_t)max_in * max_out);
    float *s = malloc((size_t)max_in * max_out / 32 * sizeof *s);
    uint16_t *bf = malloc((size_t)max_in * max_out * sizeof *bf);
    void *work = alloc_aligned(qlinear_work_bytes(tokens, max_in));
    if (!W || !x || !y || !q || !s || !bf || !work) {
        rc = cli_error(CLI_RUNTIME, "bench quant: out of memory");
        goto out;
    }
    fill(x, (size_t)tokens * max_in, 7);
    if (!json)
        printf("%-5s %-12s %6s %6s %5s %9s %9s %9s\n", "dtype", "path", "in", "out", "n", "ms",
               "GOP/s", "GB/s W");
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int in = shapes[si][0], out = shapes[si][1];
        fill(W, (size_t)in * out, 11 + (unsigned)si);
        for (int dt = QM_INT8; dt <= QM_BF16; dt++) {
            qmatrix m;
            if (dt == QM_INT8) {
                quantize_int8(W, in, out, 0, 32, q, s);
                rc = qmatrix_load_int8(&m, in, out, 0, 32, q, s);
            } else {
                for (size_t i = 0; i < (size_t)in * out; i++)
                    bf[i] = f32_to_bf16_one(W[i]);
                rc = qmatrix_load_bf16(&m, in, out, 0, bf);
            }
            if (rc) {
                rc = cli_error(CLI_RUNTIME, "bench quant: out of memory");
                goto out;
            }
            for (int path = qpath_best(dt); path >= QPATH_PORTABLE; path--) {
                if (!qpath_supported(dt, path)) continue;
                for (int pass = 0; pass < 2; pass++) {
                    int n = pass ? tokens : 1;
                    qlinear_forward(path, y, x, &m, NULL, n, work); /* warm-up */
                    double best = 1e30, t_end = now() + seconds;
                    int reps = 0;
                    do {
                        double t0 = now();
                        qlinear_forward(path, y, x, &m, NULL, n, work);
                        double dt_s = now() - t0;
                        best = dt_s < best ? dt_s : best;
                        reps++;
                    } while (now() < t_end || reps < 3);
                    double gops = 2.0 * n * in * out / best / 1e9;
                    double gbs = (double)qmatrix_bytes(&m) / best / 1e9;
                    const char *name = dt == QM_INT8 ? "int8" : "bf16";
                    if (json)
                        printf("{\"bench\":\"quant\",\"impl\":\"%s\",\"dtype\":\"%s\",\"in\":%d,"
                               "\"out\":%d,\"n\":%d,\"threads\":%d,\"ms\":%.4f,\"gops\":%.2f,"
                               "\"weight_gbs\":%.2f}\n",
                               qpath_name(dt, path), name, in, out, n, omp_get_max_threads(),
                               best * 1e3, gops, gbs);
                    else
                        printf("%-5s %-12s %6d %6d %5d %9.3f %9.1f %9.1f\n", name,
                               qpath_name(dt, path), in, out, n, best * 1e3, gops, gbs);
                }
            }
            qmatrix_free(&m);
        }
    }
out:
    free(W);
    free(q);
    free(s);
    free(bf);
    free_aligned(x);
    free_aligned(y);
    free_aligned(work);
    return rc;
}

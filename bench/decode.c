/*
 * bench/decode — llama-bench's two numbers for an slm model directory, so
 * slm and llama.cpp are timed the same way on the same weights:
 *   pp N  prompt processing: N tokens appended to an empty KV cache in one
 *         slm_model_decode call (one batched pass), tokens/s = N / time;
 *   tg N  text generation: N single-token decode calls from an empty cache,
 *         each fed the greedy argmax of the previous logits, tokens/s =
 *         N / time (the argmax is timed too: a generator pays for it).
 * As llama-bench: one untimed warm-up run of each, then R timed runs,
 * reported as mean ± standard deviation (and the best) of tokens/s.
 * Uses only include/slm.h, so any directory slm_model_load reads (fp32 or
 * an `slm quantize`d one) can be measured.
 */
#include "slm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 100

static const char *usage =
    "usage: decode -m DIR [-p N] [-n N] [-r R] [--threads N] [--json]\n"
    "  -p N         prompt tokens for pp (default 512; 0 = skip)\n"
    "  -n N         generated tokens for tg (default 128; 0 = skip)\n"
    "  -r R         timed repetitions (default 5)\n"
    "  --threads N  OpenMP threads (default: all cores)\n"
    "  --json       one JSON object per test instead of a table\n";

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* One pp run: n_prompt pseudo-random ids in one call. Returns seconds or -1. */
static double run_pp(slm_model *m, slm_kv_cache *c, const int32_t *ids, int n, float *logits,
                     char *err, size_t errlen)
{
    slm_kv_cache_reset(c);
    double t = now_s();
    if (slm_model_decode(m, c, ids, n, logits, err, errlen)) return -1.0;
    return now_s() - t;
}

/* One tg run: n greedy single-token steps from an empty cache. */
static double run_tg(slm_model *m, slm_kv_cache *c, int n, int vocab, float *logits, char *err,
                     size_t errlen)
{
    slm_kv_cache_reset(c);
    int32_t tok = 0;
    double t = now_s();
    for (int i = 0; i < n; i++) {
        if (slm_model_decode(m, c, &tok, 1, logits, err, errlen)) return -1.0;
        tok = argmax(logits, vocab);
    }
    return now_s() - t;
}

static void report(const char *dir, const char *test, int n, const double *s, int reps,
                   int threads, int json)
{
    double mean = 0.0, var = 0.0, best = 0.0;
    for (int r = 0; r < reps; r++) {
        double ts = n / s[r];
        mean += ts / reps;
        best = ts > best ? ts : best;
    }
    for (int r = 0; r < reps; r++) var += (n / s[r] - mean) * (n / s[r] - mean);
    double sd = reps > 1 ? sqrt(var / (reps - 1)) : 0.0;
    if (json)
        printf("{\"bench\":\"decode\",\"impl\":\"slm\",\"model\":\"%s\",\"test\":\"%s%d\","
               "\"n\":%d,\"threads\":%d,\"reps\":%d,\"tok_s\":%.2f,\"tok_s_sd\":%.2f,"
               "\"tok_s_best\":%.2f,\"ms\":%.3f}\n",
               dir, test, n, n, threads, reps, mean, sd, best, 1e3 * n / mean);
    else
        printf("%-40s %s%-5d %3d threads %9.2f ± %6.2f tok/s (best %.2f)\n", dir, test, n, threads,
               mean, sd, best);
    fflush(stdout);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int pp = 512, tg = 128, reps = 5, threads = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-m") && v) dir = argv[++i];
        else if (!strcmp(a, "-p") && v) bad = parse_int(argv[++i], 0, 1 << 20, &pp);
        else if (!strcmp(a, "-n") && v) bad = parse_int(argv[++i], 0, 1 << 20, &tg);
        else if (!strcmp(a, "-r") && v) bad = parse_int(argv[++i], 1, MAX_REPS, &reps);
        else if (!strcmp(a, "--threads") && v) bad = parse_int(argv[++i], 1, 4096, &threads);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else bad = 1;
        if (bad) {
            fprintf(stderr, "decode: bad argument '%s'\n%s", a, usage);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "decode: -m DIR is required\n%s", usage);
        return 2;
    }
    if (threads) omp_set_num_threads(threads);
    threads = omp_get_max_threads();

    char err[512];
    slm_model *m = NULL;
    slm_kv_cache *c = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int rc = 1;
    if (slm_model_load(dir, &m, err, sizeof err)) goto fail;
    const slm_config *cfg = slm_model_config(m);
    int ctx = pp > tg ? pp : tg > 0 ? tg : 1; /* each test starts from an empty cache */
    if (ctx > cfg->n_positions) {
        snprintf(err, sizeof err, "%d tokens exceed the model's context of %d", ctx,
                 cfg->n_positions);
        goto fail;
    }
    ids = malloc((size_t)(pp ? pp : 1) * sizeof *ids);
    logits = malloc((size_t)cfg->vocab_size * sizeof *logits);
    if (!ids || !logits) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    uint64_t x = 42;
    for (int i = 0; i < pp; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)cfg->vocab_size);
    }
    if (slm_kv_cache_create(m, ctx, &c, err, sizeof err)) goto fail;

    double s[MAX_REPS];
    if (pp) {
        for (int r = -1; r < reps; r++) { /* r = -1 warms up */
            double t = run_pp(m, c, ids, pp, logits, err, sizeof err);
            if (t < 0) goto fail;
            if (r >= 0) s[r] = t;
        }
        report(dir, "pp", pp, s, reps, threads, json);
    }
    if (tg) {
        for (int r = -1; r < reps; r++) {
            double t = run_tg(m, c, tg, cfg->vocab_size, logits, err, sizeof err);
            if (t < 0) goto fail;
            if (r >= 0) s[r] = t;
        }
        report(dir, "tg", tg, s, reps, threads, json);
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "decode: %s: %s\n", dir, err);
    slm_kv_cache_free(c);
    slm_model_free(m);
    free(ids);
    free(logits);
    return rc;
}

/*
 * slm bench generate — tokens/s of KV-cached decoding for GPT-2-architecture
 * models with llama2.c's stories15M and stories110M matmul sizes, the weight
 * bytes streamed per second against the measured DRAM read bandwidth, and
 * the cost per token along the position (flat apart from attention).
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
    "usage: slm bench generate [--model 15m|110m|all] [--tokens N] [--json] [--threads N]\n\n"
    "Decodes N tokens (default 256) greedily from a random-weight GPT-2-architecture\n"
    "model with llama2.c's stories15M (C288 L6 H6 V32000) or stories110M (C768 L12\n"
    "H12 V32000) sizes, and reports tokens/s, weight GB/s streamed and its share of\n"
    "the DRAM read bandwidth measured in the same run, and ms/token by position.\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read bandwidth of a 1 GiB buffer summed by all threads (best of 3), GB/s.
 * Sixteen independent partial sums per thread let the compiler vectorise
 * the loop, so it measures memory, not a chain of dependent adds. */
static double dram_read_gbs(void)
{
    size_t n = ((size_t)1 << 30) / sizeof(float);
    float *x = malloc(n * sizeof *x);
    if (!x) return 0.0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = (float)(i & 7);
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now(), total = 0.0;
#pragma omp parallel reduction(+ : total)
        {
            float lanes[16] = {0};
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 16)
                for (int l = 0; l < 16; l++) lanes[l] += x[i + l];
            for (int l = 0; l < 16; l++) total += lanes[l];
        }
        double gbs = (double)n * sizeof *x / (now() - t0) / 1e9;
        if (gbs > best && total > 0) best = gbs;
    }
    free(x);
    return best;
}

typedef struct {
    const char *name;
    slm_config cfg;
} bench_model;

static int run_one(const bench_model *bm, int n_tokens, int json, double dram)
{
    char err[512];
    slm_model *m;
    slm_kv_cache *cache = NULL;
    slm_config cfg = bm->cfg;
    if (n_tokens + 1 > cfg.n_positions) cfg.n_positions = n_tokens + 1;
    if (slm_model_create(&cfg, 1, &m, err, sizeof err))
        return cli_error(CLI_RUNTIME, "bench generate: %s", err);
    float *logits = malloc((size_t)cfg.vocab_size * sizeof *logits);
    double *ms = malloc((size_t)n_tokens * sizeof *ms);
    int rc = 0;
    if (!logits || !ms || slm_kv_cache_create(m, cfg.n_positions, &cache, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "bench generate: %s", logits && ms ? err : "out of memory");
        goto done;
    }
    for (int rep = 0; rep < 2 && !rc; rep++) { /* first pass warms caches and pages */
        slm_kv_cache_reset(cache);
        int32_t tok = 1;
        for (int i = 0; i < n_tokens; i++) {
            double t0 = now();
            if (slm_model_decode(m, cache, &tok, 1, logits, err, sizeof err)) {
                rc = cli_error(CLI_RUNTIME, "bench generate: %s", err);
                break;
            }
            int32_t best = 0;
            for (int v = 1; v < cfg.vocab_size; v++)
                if (logits[v] > logits[best]) best = v;
            tok = best;
            ms[i] = (now() - t0) * 1e3;
        }
    }
    if (rc) goto done;
    double total = 0.0;
    for (int i = 0; i < n_tokens; i++) total += ms[i];
    double tok_s = n_tokens / (total / 1e3);
    /* Streamed per token: every weight matrix and bias, and wte again as the
     * LM head; of wpe only one row. */
    size_t params = slm_model_num_params(m) - (size_t)cfg.n_positions * cfg.n_embd;
    double gbs = (double)params * 4.0 * tok_s / 1e9;
    if (json) {
        printf("{\"bench\":\"generate\",\"impl\":\"slm\",\"model\":\"%s\",\"C\":%d,\"L\":%d,"
               "\"H\":%d,\"V\":%d,\"tokens\":%d,\"threads\":%d,\"ms\":%.3f,\"tok_s\":%.1f,"
               "\"weights_gbs\":%.2f,\"dram_gbs\":%.2f,\"kernels\":\"%s\"}\n",
               bm->name, cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size, n_tokens,
               omp_get_max_threads(), total, tok_s, gbs, dram, kernel_path_name());
    } else {
        printf("%-10s C%-4d L%-3d H%-3d V%-6d %6d tokens %9.1f tok/s %8.2f ms/tok  weights "
               "%6.2f GB/s (%3.0f%% of DRAM read)\n",
               bm->name, cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.vocab_size, n_tokens, tok_s,
               total / n_tokens, gbs, dram > 0 ? 100.0 * gbs / dram : 0.0);
        printf("  ms/token by position:");
        int bins = n_tokens >= 8 ? 8 : n_tokens, per = n_tokens / bins;
        for (int b = 0; b < bins; b++) {
            double s = 0.0;
            for (int i = b * per; i < (b + 1) * per; i++) s += ms[i];
            printf(" [%d..%d) %.2f", b * per, (b + 1) * per, s / per);
        }
        printf("\n");
    }
done:
    free(ms);
    free(logits);
    slm_kv_cache_free(cache);
    slm_model_free(m);
    return rc;
}

int bench_generate(int argc, char **argv)
{
    const char *which = "all";
    int n_tokens = 256, json = 0, threads = 0;
    const cli_option opts[] = {
        {"--model", NULL, OPT_STRING, &which, 0, 0, NULL},
        {"--tokens", "-n", OPT_INT, &n_tokens, 8, 1 << 16, NULL},
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("bench generate", argc, argv, opts, sizeof opts / sizeof *opts,
                               pos, 0, &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    cli_set_threads(threads);
    const bench_model models[] = {
        {"15m", {6, 6, 288, 256, 32000, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_BYTE, 0.0f}},
        {"110m", {12, 12, 768, 1024, 32000, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_BYTE, 0.0f}},
    };
    if (strcmp(which, "all") && strcmp(which, "15m") && strcmp(which, "110m"))
        return cli_error(CLI_USAGE, "bench generate: --model must be 15m, 110m or all");
    double dram = dram_read_gbs();
    if (!json)
        printf("DRAM read bandwidth (1 GiB, %d threads): %.1f GB/s\nkernels: %s\n",
               omp_get_max_threads(), dram, kernel_path_name());
    for (size_t i = 0; i < sizeof models / sizeof *models && !rc; i++)
        if (!strcmp(which, "all") || !strcmp(which, models[i].name))
            rc = run_one(&models[i], n_tokens, json, dram);
    return rc;
}

#include "shard_case.h"

#include "../test.h"
#include "model/gpt.h"
#include "slm.h"
#include "tiny_gpt.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SC_T = 512, SC_V = 48, SC_BMAX = 5 };

static slm_model *shard_model(float dropout)
{
    return tiny_gpt(2, 32, SC_T, SC_V, SLM_ACT_GELU_NEW, dropout, 33);
}

/* One training pass of m on `threads` threads: grads start at `start`
 * (every element), backward adds to them or (overwrite) replaces them. The
 * gradients go to g, the loss to *loss; returns the shards the pass ran on. */
static int pass(slm_model *m, int threads, int dtype, int B, int overwrite, float start, float *g,
                float *loss)
{
    static int32_t tok[SC_BMAX * SC_T], tgt[SC_BMAX * SC_T];
    for (int i = 0; i < B * SC_T; i++) {
        tok[i] = (int32_t)((i * 7 + i / 5) % SC_V);
        tgt[i] = (i % 11 == 0) ? SLM_IGNORE_INDEX : (int32_t)((i * 7 + 3) % SC_V);
    }
    slm_batch batch = {tok, tgt, B, SC_T};
    slm_forward_opts o = {.training = 1, .dropout_seed = 9, .batch_offset = 2, .dtype = dtype};
    char err[256];
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    float *grads = slm_model_grads(m);
    size_t n = slm_model_num_params(m);
    for (size_t i = 0; i < n; i++)
        grads[i] = start;
    CHECK(slm_model_forward(m, &batch, &o, loss, err, sizeof err) == SLM_OK, "%s", err);
    int rc = overwrite ? gpt_backward_overwrite(m, 1.0f, err, sizeof err)
                       : slm_model_backward(m, 1.0f, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    omp_set_num_threads(saved);
    memcpy(g, grads, n * sizeof *g);
    return slm_model_pass_shards(m);
}

void shard_check_training(int dtype, float dropout, int B, double rtol)
{
    slm_model *one = shard_model(dropout), *two = shard_model(dropout);
    if (!one || !two) return;
    size_t n = slm_model_num_params(one);
    float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    CHECK(g1 && g2, "out of memory");
    for (int overwrite = 0; overwrite <= 1 && g1 && g2; overwrite++) {
        /* accumulate onto 0.25; overwrite what is there (a huge value) */
        float start = overwrite ? 1e30f : 0.25f, l1, l2;
        int s1 = pass(one, 1, dtype, B, overwrite, start, g1, &l1);
        int s2 = pass(two, 2, dtype, B, overwrite, start, g2, &l2);
        CHECK(s1 == 1 && s2 == 2, "shards: %d on 1 thread, %d on 2 (want 1, 2)", s1, s2);
        CHECK_CLOSE(l2, l1, 1e-6, 0.0, "loss %.9g in two shards, %.9g in one", l2, l1);
        double big = 0.0;
        for (size_t i = 0; i < n; i++)
            big = fmax(big, fabs((double)g1[i]));
        double e = test_max_err_f(g2, g1, n, rtol, rtol * 1e-2 * big);
        CHECK(e <= 1.0, "%s: gradients of two shards vs one: %.3g of the tolerance",
              overwrite ? "overwrite" : "accumulate", e);
    }
    free(g1);
    free(g2);
    slm_model_free(one);
    slm_model_free(two);
}

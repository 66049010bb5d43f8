/* A pass split into shards (model/gpt.h, gpt.c pass_shards): with two
 * threads and enough rows each thread runs the layer stack on its own
 * sequences, shard 1's weight gradients in a copy added at the end. The
 * result is the one-shard pass's to float rounding: loss, gradients (added
 * or overwritten), dropout masks (each shard draws its own sequences'),
 * uneven splits; evaluation reuses the training block's shards; small
 * batches stay in one shard. */
#include "common/shard_case.h"
#include "common/tiny_gpt.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_fp32_two_shards_match_one(void)
{
    shard_check_training(SLM_DTYPE_F32, 0.0f, 2, 1e-4);
}

static void test_fp32_dropout_uneven_split(void)
{
    shard_check_training(SLM_DTYPE_F32, 0.1f, 3, 1e-4);
}

/* The process's bf16 path (bf16 GEMMs where they are faster, else bf16
 * storage): both shard counts round the same inputs, only sums differ. */
static void test_bf16_two_shards_match_one(void)
{
    shard_check_training(SLM_DTYPE_BF16, 0.1f, 2, 1e-3);
}

enum { T = 256, V = 40 };

static slm_model *model(void)
{
    return tiny_gpt(2, 32, 2 * T, V, SLM_ACT_GELU_NEW, 0.0f, 5);
}

/* A pass of B sequences of length t on `threads` threads; the loss. */
static float run(slm_model *m, int threads, int B, int t, int training)
{
    static int32_t tok[4 * 2 * T], tgt[4 * 2 * T];
    for (int i = 0; i < B * t; i++)
        tok[i] = (i * 5 + 1) % V, tgt[i] = (i * 5 + 2) % V;
    slm_batch b = {tok, tgt, B, t};
    slm_forward_opts o = {.training = training};
    char err[256];
    float loss = NAN;
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    CHECK(slm_model_forward(m, &b, &o, &loss, err, sizeof err) == SLM_OK, "%s", err);
    if (training) CHECK(slm_model_backward(m, 1.0f, err, sizeof err) == SLM_OK, "%s", err);
    omp_set_num_threads(saved);
    return loss;
}

/* After a training pass in two shards (2 × 512 rows), evaluation passes of
 * other shapes that fit run on the block as it is (its size unchanged):
 * B = 3 of 256 in two shards (512 + 256 rows), B = 1 of 512 in one; their
 * losses and logits are a one-thread model's. */
static void test_evaluation_reuses_the_shards(void)
{
    slm_model *m = model(), *ref = model();
    if (!m || !ref) return;
    CHECK(slm_model_pass_shards(m) == 0, "before any pass: %d shards", slm_model_pass_shards(m));
    run(m, 2, 2, 2 * T, 1);
    CHECK(slm_model_pass_shards(m) == 2, "training pass: %d shards, want 2",
          slm_model_pass_shards(m));
    size_t bytes = slm_model_activation_bytes(m);
    const int shapes[2][3] = {{3, T, 2}, {1, 2 * T, 1}}; /* B, t, shards */
    for (int s = 0; s < 2; s++) {
        int B = shapes[s][0], t = shapes[s][1];
        float got = run(m, 2, B, t, 0), want = run(ref, 1, B, t, 0);
        CHECK(slm_model_pass_shards(m) == shapes[s][2], "B=%d: %d shards, want %d", B,
              slm_model_pass_shards(m), shapes[s][2]);
        CHECK(slm_model_activation_bytes(m) == bytes, "B=%d: the block was reallocated", B);
        CHECK_CLOSE(got, want, 1e-6, 0.0, "B=%d: loss %.9g, one thread %.9g", B, got, want);
        double e = test_max_err_f(slm_model_logits(m), slm_model_logits(ref), (size_t)B * t * V,
                                  1e-5, 1e-6);
        CHECK(e <= 1.0, "B=%d: logits differ from one thread's (%.3g of the tolerance)", B, e);
    }
    slm_model_free(m);
    slm_model_free(ref);
}

/* Shard 1's gradient copy would cost more than the split saves: a training
 * pass of 2 × 128 rows stays in one shard on two threads, as does B = 1. */
static void test_small_batches_stay_in_one_shard(void)
{
    slm_model *m = model();
    if (!m) return;
    run(m, 2, 2, 128, 1);
    CHECK(slm_model_pass_shards(m) == 1, "2 × 128 rows: %d shards, want 1",
          slm_model_pass_shards(m));
    run(m, 2, 1, 2 * T, 1);
    CHECK(slm_model_pass_shards(m) == 1, "1 × 512 rows: %d shards, want 1",
          slm_model_pass_shards(m));
    slm_model_free(m);
}

int main(void)
{
    RUN(test_fp32_two_shards_match_one);
    RUN(test_fp32_dropout_uneven_split);
    RUN(test_bf16_two_shards_match_one);
    RUN(test_evaluation_reuses_the_shards);
    RUN(test_small_batches_stay_in_one_shard);
    return test_summary();
}

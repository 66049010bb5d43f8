/* KV-cache decoding must give the logits of a full forward pass at every
 * position: token by token, in prompt chunks (also across the internal
 * 64-token chunk), and after a reset. */
#include "slm.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    slm_model *m;
    slm_config c;
    int32_t *tokens;
    float *want; /* [T][V] logits of one full forward pass */
} fixture;

/* slm_model_forward with the batch and options spelled out. */
static int fwd(slm_model *m, const int32_t *tok, const int32_t *tgt, int b, int t, int training,
               uint64_t seed, float *loss, char *err, size_t errlen)
{
    slm_batch batch = {tok, tgt, b, t};
    slm_forward_opts o = {.training = training, .dropout_seed = seed};
    return slm_model_forward(m, &batch, &o, loss, err, errlen);
}

static int setup(fixture *f, int T, int activation)
{
    f->c = (slm_config){2, 3, 48, 160, 67, 1e-5f, activation, SLM_TOKENIZER_GPT2, 0.0f};
    if (slm_model_create(&f->c, 11, &f->m, NULL, 0)) return -1;
    /* Wider than GPT-2's init so attention is far from uniform. */
    float *p = slm_model_params(f->m);
    float *noise = malloc(slm_model_num_params(f->m) * sizeof *noise);
    if (!noise) return -1;
    test_fill_uniform(noise, slm_model_num_params(f->m), 5, -0.15f, 0.15f);
    for (size_t i = 0; i < slm_model_num_params(f->m); i++) p[i] += noise[i];
    free(noise);
    f->tokens = malloc((size_t)T * sizeof *f->tokens);
    f->want = malloc((size_t)T * f->c.vocab_size * sizeof *f->want);
    if (!f->tokens || !f->want) return -1;
    for (int t = 0; t < T; t++) f->tokens[t] = (t * 7 + 3) % f->c.vocab_size;
    if (fwd(f->m, f->tokens, NULL, 1, T, 0, 0, NULL, NULL, 0)) return -1;
    memcpy(f->want, slm_model_logits(f->m), (size_t)T * f->c.vocab_size * sizeof *f->want);
    return 0;
}

static void teardown(fixture *f)
{
    slm_model_free(f->m);
    free(f->tokens);
    free(f->want);
}

/* Feeds the T tokens in chunks of the given sizes (cycled) and compares the
 * logits after each chunk with the forward pass at that chunk's last token. */
static void check_chunks(fixture *f, int T, const int *sizes, int n_sizes, const char *what)
{
    slm_kv_cache *c;
    float *logits = malloc((size_t)f->c.vocab_size * sizeof *logits);
    CHECK(slm_kv_cache_create(f->m, f->c.n_positions, &c, NULL, 0) == SLM_OK, "cache");
    int pos = 0;
    double worst = 0;
    for (int k = 0; pos < T; k++) {
        int n = sizes[k % n_sizes];
        if (n > T - pos) n = T - pos;
        char err[256];
        int rc = slm_model_decode(f->m, c, f->tokens + pos, n, logits, err, sizeof err);
        CHECK(rc == SLM_OK, "%s: decode: %s", what, err);
        if (rc) break;
        pos += n;
        CHECK(slm_kv_cache_length(c) == pos, "%s: length", what);
        double e = test_max_err_f(logits, f->want + (size_t)(pos - 1) * f->c.vocab_size,
                                  (size_t)f->c.vocab_size, 1e-4, 1e-4);
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1.0, "%s: logits differ from forward (%.2f of tolerance)", what, worst);
    slm_kv_cache_free(c);
    free(logits);
}

static void test_decode_token_by_token_matches_forward(void)
{
    fixture f;
    CHECK(setup(&f, 40, SLM_ACT_GELU_NEW) == 0, "setup");
    int one = 1;
    check_chunks(&f, 40, &one, 1, "one at a time");
    teardown(&f);
}

static void test_decode_prompt_chunks_match_forward(void)
{
    fixture f;
    CHECK(setup(&f, 150, SLM_ACT_RELU) == 0, "setup");
    const int a[] = {130, 1, 1, 18}; /* a prompt longer than the internal chunk */
    check_chunks(&f, 150, a, 4, "130+1+1+18");
    const int b[] = {5, 1, 3};
    check_chunks(&f, 150, b, 3, "5,1,3,...");
    teardown(&f);
}

static void test_decode_after_reset_starts_over(void)
{
    fixture f;
    CHECK(setup(&f, 20, SLM_ACT_GELU_NEW) == 0, "setup");
    slm_kv_cache *c;
    float *a = malloc((size_t)f.c.vocab_size * sizeof *a), *b = malloc((size_t)f.c.vocab_size * sizeof *b);
    CHECK(slm_kv_cache_create(f.m, 32, &c, NULL, 0) == SLM_OK, "cache");
    CHECK(slm_model_decode(f.m, c, f.tokens, 20, a, NULL, 0) == SLM_OK, "first");
    slm_kv_cache_reset(c);
    CHECK(slm_kv_cache_length(c) == 0, "reset length");
    CHECK(slm_model_decode(f.m, c, f.tokens, 20, b, NULL, 0) == SLM_OK, "second");
    CHECK(memcmp(a, b, (size_t)f.c.vocab_size * sizeof *a) == 0, "same logits after reset");
    slm_kv_cache_free(c);
    free(a);
    free(b);
    teardown(&f);
}

static void test_decode_rejects_overflow_and_bad_ids(void)
{
    fixture f;
    CHECK(setup(&f, 8, SLM_ACT_GELU_NEW) == 0, "setup");
    slm_kv_cache *c = NULL;
    float *logits = malloc((size_t)f.c.vocab_size * sizeof *logits);
    char err[256];
    CHECK(slm_kv_cache_create(f.m, 0, &c, err, sizeof err) == SLM_ERANGE && !c, "size 0");
    CHECK(slm_kv_cache_create(f.m, f.c.n_positions + 1, &c, err, sizeof err) == SLM_ERANGE,
          "beyond the context");
    CHECK(slm_kv_cache_create(f.m, 6, &c, NULL, 0) == SLM_OK, "cache");
    CHECK(slm_model_decode(f.m, c, f.tokens, 7, logits, err, sizeof err) == SLM_ERANGE,
          "7 tokens into 6");
    CHECK(slm_kv_cache_length(c) == 0, "nothing appended on error");
    int32_t bad[2] = {1, f.c.vocab_size};
    CHECK(slm_model_decode(f.m, c, bad, 2, logits, err, sizeof err) == SLM_ERANGE, "id >= V");
    bad[1] = -1;
    CHECK(slm_model_decode(f.m, c, bad, 2, logits, err, sizeof err) == SLM_ERANGE, "id < 0");
    CHECK(slm_model_decode(f.m, c, f.tokens, 6, logits, err, sizeof err) == SLM_OK, "fills");
    CHECK(slm_model_decode(f.m, c, f.tokens, 1, logits, err, sizeof err) == SLM_ERANGE, "full");
    slm_kv_cache_free(c);
    free(logits);
    teardown(&f);
}

int main(void)
{
    RUN(test_decode_token_by_token_matches_forward);
    RUN(test_decode_prompt_chunks_match_forward);
    RUN(test_decode_after_reset_starts_over);
    RUN(test_decode_rejects_overflow_and_bad_ids);
    return test_summary();
}

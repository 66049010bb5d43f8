/* The sampler: greedy, temperature, top-k, top-p, determinism, bad options. */
#include "slm.h"
#include "test.h"

#include <math.h>
#include <string.h>

static void test_greedy_is_argmax(void)
{
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 2.0f};
    slm_sampler *s;
    CHECK(slm_sampler_create(5, 0.0f, 0, 1.0f, 1, &s, NULL, 0) == SLM_OK, "create");
    CHECK(slm_sampler_next(s, logits) == 1, "argmax (first of ties)");
    slm_sampler_free(s);
}

/* Draw frequencies of softmax(logits/T) within 4 sigma of the expected. */
static void test_temperature_frequencies_match_softmax(void)
{
    float logits[4] = {1.0f, 2.0f, 0.0f, 1.5f};
    const float T = 0.7f;
    double p[4], z = 0;
    for (int i = 0; i < 4; i++) z += p[i] = exp(logits[i] / T);
    slm_sampler *s;
    CHECK(slm_sampler_create(4, T, 0, 1.0f, 42, &s, NULL, 0) == SLM_OK, "create");
    int counts[4] = {0}, n = 40000;
    for (int i = 0; i < n; i++) counts[slm_sampler_next(s, logits)]++;
    for (int i = 0; i < 4; i++) {
        double want = p[i] / z, sigma = sqrt(want * (1 - want) / n);
        CHECK(fabs((double)counts[i] / n - want) < 4 * sigma, "token %d: %g vs %g", i,
              (double)counts[i] / n, want);
    }
    slm_sampler_free(s);
}

static void test_top_k_only_draws_the_k_most_likely(void)
{
    float logits[6] = {0.5f, 3.0f, 0.4f, 2.9f, 0.3f, 2.8f};
    slm_sampler *s;
    CHECK(slm_sampler_create(6, 1.0f, 2, 1.0f, 7, &s, NULL, 0) == SLM_OK, "create");
    int seen[6] = {0};
    for (int i = 0; i < 2000; i++) seen[slm_sampler_next(s, logits)]++;
    CHECK(seen[1] > 0 && seen[3] > 0, "both top tokens drawn");
    CHECK(seen[0] + seen[2] + seen[4] + seen[5] == 0, "only the top 2 are drawn");
    slm_sampler_free(s);
}

static void test_top_p_keeps_the_nucleus(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05: p=0.7 keeps {0,1}; p=0.85 keeps {0,1,2}. */
    float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    const float ps[2] = {0.7f, 0.85f};
    const int keep[2] = {2, 3};
    for (int c = 0; c < 2; c++) {
        slm_sampler *s;
        CHECK(slm_sampler_create(4, 1.0f, 0, ps[c], 3, &s, NULL, 0) == SLM_OK, "create");
        int seen[4] = {0};
        for (int i = 0; i < 4000; i++) seen[slm_sampler_next(s, logits)]++;
        for (int t = 0; t < 4; t++)
            CHECK((seen[t] > 0) == (t < keep[c]), "p=%g token %d drawn %d times", ps[c], t,
                  seen[t]);
        slm_sampler_free(s);
    }
}

static void test_same_seed_same_sequence(void)
{
    float logits[50];
    for (int i = 0; i < 50; i++) logits[i] = sinf((float)i);
    slm_sampler *a, *b, *c;
    CHECK(slm_sampler_create(50, 1.0f, 10, 0.9f, 5, &a, NULL, 0) == SLM_OK, "a");
    CHECK(slm_sampler_create(50, 1.0f, 10, 0.9f, 5, &b, NULL, 0) == SLM_OK, "b");
    CHECK(slm_sampler_create(50, 1.0f, 10, 0.9f, 6, &c, NULL, 0) == SLM_OK, "c");
    int same = 1, differs = 0;
    for (int i = 0; i < 100; i++) {
        int32_t x = slm_sampler_next(a, logits), y = slm_sampler_next(b, logits);
        same &= x == y;
        differs |= x != slm_sampler_next(c, logits);
    }
    CHECK(same, "same seed, same draws");
    CHECK(differs, "another seed, other draws");
    slm_sampler_free(a);
    slm_sampler_free(b);
    slm_sampler_free(c);
}

static void test_bad_options_are_refused(void)
{
    slm_sampler *s = (slm_sampler *)1;
    char err[128];
    CHECK(slm_sampler_create(10, -1.0f, 0, 1.0f, 0, &s, err, sizeof err) == SLM_EINVAL, "T<0");
    CHECK(s == NULL, "no sampler on error");
    CHECK(slm_sampler_create(10, NAN, 0, 1.0f, 0, &s, err, sizeof err) == SLM_EINVAL, "T NaN");
    CHECK(slm_sampler_create(10, 1.0f, -1, 1.0f, 0, &s, err, sizeof err) == SLM_EINVAL, "k<0");
    CHECK(slm_sampler_create(10, 1.0f, 0, 0.0f, 0, &s, err, sizeof err) == SLM_EINVAL, "p=0");
    CHECK(slm_sampler_create(10, 1.0f, 0, 1.5f, 0, &s, err, sizeof err) == SLM_EINVAL, "p>1");
    CHECK(slm_sampler_create(0, 1.0f, 0, 1.0f, 0, &s, err, sizeof err) == SLM_EINVAL, "V=0");
}

int main(void)
{
    RUN(test_greedy_is_argmax);
    RUN(test_temperature_frequencies_match_softmax);
    RUN(test_top_k_only_draws_the_k_most_likely);
    RUN(test_top_p_keeps_the_nucleus);
    RUN(test_same_seed_same_sequence);
    RUN(test_bad_options_are_refused);
    return test_summary();
}

/* The two building blocks of causal attention: the causal mask matrix and
 * masked softmax (Vaswani et al. 2017, §3.2.3). */
#include "slm.h"
#include "test.h"

#include <string.h>

static void test_causal_mask_matches_seed_5x5(void)
{
    /* The seed's table: token i may see tokens 0..i. */
    float m[25];
    slm_causal_mask(5, 5, m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            CHECK(j <= i ? m[i * 5 + j] == 0.0f : m[i * 5 + j] == -INFINITY, "M[%d][%d]=%g", i,
                  j, m[i * 5 + j]);
}

static void test_causal_mask_bottom_right_when_keys_exceed_queries(void)
{
    /* 2 queries over 4 keys (a KV cache): the last query sees all 4 keys. */
    float m[8];
    slm_causal_mask(2, 4, m);
    const float want[8] = {0, 0, 0, -INFINITY, 0, 0, 0, 0};
    CHECK(memcmp(m, want, sizeof m) == 0, "bottom-right alignment");
}

static void test_softmax_worked_example(void)
{
    /* Token 3 of 4, affinities [1,1,1,8], future masked: [1/3,1/3,1/3,0]. */
    float s[4] = {1, 1, 1, -INFINITY};
    float lse = slm_softmax(s, 4);
    for (int j = 0; j < 3; j++) CHECK_CLOSE(s[j], 1.0 / 3.0, 1e-6, 0, "w[%d]=%g", j, s[j]);
    CHECK(s[3] == 0.0f, "masked weight %g", s[3]);
    CHECK_CLOSE(lse, 1.0 + log(3.0), 1e-6, 0, "lse %g", lse);
}

static void test_softmax_all_masked_row_is_zero(void)
{
    float s[3] = {-INFINITY, -INFINITY, -INFINITY};
    float lse = slm_softmax(s, 3);
    CHECK(s[0] == 0 && s[1] == 0 && s[2] == 0, "weights not zero");
    CHECK(lse == -INFINITY, "lse %g", lse);
}

static void test_softmax_large_scores_do_not_overflow(void)
{
    float s[2] = {1000.0f, 1000.0f};
    slm_softmax(s, 2);
    CHECK_CLOSE(s[0], 0.5, 1e-6, 0, "w0 %g", s[0]);
}

int main(void)
{
    RUN(test_causal_mask_matches_seed_5x5);
    RUN(test_causal_mask_bottom_right_when_keys_exceed_queries);
    RUN(test_softmax_worked_example);
    RUN(test_softmax_all_masked_row_is_zero);
    RUN(test_softmax_large_scores_do_not_overflow);
    return test_summary();
}

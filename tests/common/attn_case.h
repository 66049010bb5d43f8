/*
 * One attention problem for the tests: float32 inputs for the library, their
 * float64 copies for tests/common/ref_attention64.c, output buffers for both,
 * and the comparison between them. Used by tests/test_attention*.c.
 */
#ifndef SLM_TEST_ATTN_CASE_H
#define SLM_TEST_ATTN_CASE_H

#include "ref_attention64.h"
#include "slm.h"

#include <stddef.h>

/* Kinds of additive mask a case can carry. */
enum {
    MASK_NONE = 0,
    MASK_RANDOM,    /* finite values in [-1, 0.5) with ~25 % -inf entries   */
    MASK_DEAD_ROWS, /* MASK_RANDOM plus query rows 1 and Tq-1 all -inf       */
};
/* Kinds of kv_len. */
enum {
    KV_NONE = 0,
    KV_RAGGED, /* kv_len[0] = 0 (all padding), then 2/3·Tk, ..., last = Tk   */
};

typedef struct {
    const char *name;
    int B, H, Tq, Tk, D;
    int causal;
    float scale; /* 0: 1/sqrt(D) */
    int mask_kind, kv_kind;
    float dropout;
    uint64_t seed;
} attn_shape;

typedef struct {
    attn_shape s;
    size_t nq, nk, nl; /* elements of q/out/dq, k/v/dk/dv, lse */
    float *mask;
    int *kv_len;
    float *q, *k, *v, *dout;                    /* inputs                        */
    float *out, *lse, *dq, *dk, *dv;            /* library outputs               */
    double *q64, *k64, *v64, *dout64;           /* the same inputs, widened      */
    double *out64, *lse64, *dq64, *dk64, *dv64; /* float64 reference     */
} attn_case;

/* Allocates and fills a case (q,k in [-2,2), v,dout in [-1,1), from
 * `data_seed`). Returns 0, or -1 if out of memory (the case is then freed). */
int attn_case_init(attn_case *c, const attn_shape *s, unsigned long long data_seed);
void attn_case_free(attn_case *c);
/* Re-derives the float64 copies after the test edited q/k/v/dout. */
void attn_case_widen(attn_case *c);

slm_attn_opts attn_case_opts(const attn_case *c, int impl);
ref64_opts attn_case_opts64(const attn_case *c);

/* Runs the float64 reference forward + backward into *64. */
void attn_case_run64(attn_case *c);
/* Fills the library outputs with NaN (so "overwrites, never accumulates" and
 * "writes every element" are checked), then runs forward + backward with the
 * given impl. Returns the first non-zero return code, or 0. */
int attn_case_run(attn_case *c, int impl);

/* Element-wise closeness of the library outputs to the float64 reference:
 * |got - want| <= rtol·|want| + atol, with atol = rtol·(size of the terms
 * that tensor is accumulated from, or its largest |want| if larger) — see
 * test_attention.c for why. Returns the worst ratio over out, lse, dq, dk, dv
 * (<= 1 means all close) and names that tensor in *what. */
double attn_case_err64(const attn_case *c, double rtol, const char **what);

/* Largest |x| over n doubles (finite ones only). */
double attn_max_abs(const double *x, size_t n);

static inline const char *attn_impl_name(int impl)
{
    return impl == SLM_ATTN_REFERENCE ? "reference" : impl == SLM_ATTN_FLASH ? "flash" : "auto";
}

#define N(a) (sizeof(a) / sizeof *(a))

/* Defines test_NAME_reference/_flash/_auto, each calling NAME(impl). */
#define PER_IMPL(fn)                                                                               \
    static void test_##fn##_reference(void)                                                        \
    {                                                                                              \
        fn(SLM_ATTN_REFERENCE);                                                                    \
    }                                                                                              \
    static void test_##fn##_flash(void)                                                            \
    {                                                                                              \
        fn(SLM_ATTN_FLASH);                                                                        \
    }                                                                                              \
    static void test_##fn##_auto(void)                                                             \
    {                                                                                              \
        fn(SLM_ATTN_AUTO);                                                                         \
    }
#define RUN_PER_IMPL(fn)                                                                           \
    do {                                                                                           \
        RUN(test_##fn##_reference);                                                                \
        RUN(test_##fn##_flash);                                                                    \
        RUN(test_##fn##_auto);                                                                     \
    } while (0)

#endif

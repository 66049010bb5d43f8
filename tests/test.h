/*
 * A tiny test harness. Each test binary lists its cases in main():
 *
 *     int main(void) { RUN(test_mask_matches_seed); ...; return test_summary(); }
 *
 * A case passes if no CHECK inside it failed. Output, one line per case:
 * "ok <name>" or "FAIL <name>: <file>:<line>: <message>"; tests/run.sh counts them.
 */
#ifndef SLM_TEST_H
#define SLM_TEST_H

#include <math.h>
#include <stdio.h>

extern int test_case_failed_;
extern int test_passed_, test_failed_;
extern char test_first_failure_[512];

void test_fail_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void test_run_(void (*fn)(void), const char *name);
int test_summary(void);

#define RUN(fn) test_run_(fn, #fn)
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) test_fail_(__FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)
/* |a-b| <= atol + rtol·|b| */
#define CHECK_CLOSE(a, b, rtol, atol, ...)                                                 \
    CHECK(fabs((double)(a) - (double)(b)) <= (atol) + (rtol)*fabs((double)(b)), __VA_ARGS__)

/* Largest |a-b| / (atol + rtol·|b|) over n elements; <= 1 means all close.
 * NaN anywhere or mismatched infinities count as +inf. */
double test_max_err_f(const float *a, const float *b, size_t n, double rtol, double atol);
double test_max_err_fd(const float *a, const double *b, size_t n, double rtol, double atol);

/* Deterministic uniform floats in [lo, hi) from a seed. */
void test_fill_uniform(float *x, size_t n, unsigned long long seed, float lo, float hi);

#endif

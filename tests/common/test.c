#include "../test.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

int test_case_failed_;
int test_passed_, test_failed_;
char test_first_failure_[512];

void test_fail_(const char *file, int line, const char *fmt, ...)
{
    if (!test_case_failed_) {
        int n = snprintf(test_first_failure_, sizeof test_first_failure_, "%s:%d: ", file, line);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof test_first_failure_)
            vsnprintf(test_first_failure_ + n, sizeof test_first_failure_ - (size_t)n, fmt, ap);
        va_end(ap);
    }
    test_case_failed_ = 1;
}

void test_run_(void (*fn)(void), const char *name)
{
    test_case_failed_ = 0;
    fn();
    if (test_case_failed_) {
        printf("FAIL %s: %s\n", name, test_first_failure_);
        test_failed_++;
    } else {
        printf("ok %s\n", name);
        test_passed_++;
    }
    fflush(stdout);
}

int test_summary(void) { return test_failed_ ? 1 : 0; }

static double rel_err(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b)) return INFINITY;
    if (isinf(a) || isinf(b)) return a == b ? 0.0 : INFINITY;
    return fabs(a - b) / (atol + rtol * fabs(b));
}

double test_max_err_f(const float *a, const float *b, size_t n, double rtol, double atol)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(a[i], b[i], rtol, atol);
        if (e > worst) worst = e;
    }
    return worst;
}

double test_max_err_fd(const float *a, const double *b, size_t n, double rtol, double atol)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(a[i], b[i], rtol, atol);
        if (e > worst) worst = e;
    }
    return worst;
}

void test_fill_uniform(float *x, size_t n, unsigned long long seed, float lo, float hi)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

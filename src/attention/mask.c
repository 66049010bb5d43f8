/* The two building blocks of causal attention (Vaswani et al. 2017, §3.2.3:
 * "masking out (setting to −∞) all values in the input of the softmax which
 * correspond to illegal connections"), exposed for the CLI and for anyone
 * reading along: the causal mask matrix and a masked softmax. */
#include "slm.h"

#include <math.h>
#include <string.h>

/* M[i][j] = 0 if j <= i + (Tk - Tq) else -inf: lower-triangular visibility,
 * aligned bottom-right so that the last query sees every key. */
void slm_causal_mask(int Tq, int Tk, float *mask)
{
    for (int i = 0; i < Tq; i++)
        for (int j = 0; j < Tk; j++)
            mask[(size_t)i * Tk + j] = j <= i + (Tk - Tq) ? 0.0f : -INFINITY;
}

/* softmax(x)_j = exp(x_j - max) / Σ exp(x_k - max): subtracting the max keeps
 * exp from overflowing; exp(-inf) = 0 is what makes masked entries vanish. */
float slm_softmax(float *x, int n)
{
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    if (m == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof *x);
        return -INFINITY;
    }
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        x[j] = expf(x[j] - m);
        sum += x[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) x[j] *= inv;
    /* sum >= 1: the maximum itself contributes exp(0). */
    // cppcheck-suppress invalidFunctionArg
    return m + (float)log(sum);
}

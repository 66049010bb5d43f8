#include "model/infer_ops.h"

#include "slm.h"

#include <math.h>

void infer_embed(float *x, const float *wte, const float *wpe, int32_t token, int pos, int C)
{
    const float *te = wte + (size_t)token * C, *pe = wpe + (size_t)pos * C;
    for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
}

void infer_layer_norm(float *out, const float *x, const float *w, const float *b, int n, int C,
                      float eps)
{
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * C;
        float *o = out + (size_t)t * C;
        float mean = 0.0f, var = 0.0f;
        for (int i = 0; i < C; i++) mean += xr[i];
        mean /= (float)C;
        for (int i = 0; i < C; i++) var += (xr[i] - mean) * (xr[i] - mean);
        float rstd = 1.0f / sqrtf(var / (float)C + eps);
        for (int i = 0; i < C; i++) o[i] = (xr[i] - mean) * rstd * w[i] + b[i];
    }
}

void infer_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void infer_activation(float *x, size_t n, int activation)
{
    if (activation == SLM_ACT_RELU) {
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    /* GELU, tanh approximation (Hendrycks & Gimpel 2016), GPT-2's "gelu_new". */
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

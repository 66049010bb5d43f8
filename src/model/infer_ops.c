#include "model/infer_ops.h"


void infer_embed(float *x, const float *wte, const float *wpe, int32_t token, int pos, int C)
{
    const float *te = wte + (size_t)token * C, *pe = wpe + (size_t)pos * C;
    for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
}

void infer_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}


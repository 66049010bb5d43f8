/* qlinear_forward: the dtype's kernel (quant_int8.c, quant_bf16.c). */
#include "kernels/quant.h"

size_t int8_work_bytes(int n, int in);
void int8_linear(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                 void *work);
size_t bf16_work_bytes(int n, int in);
void bf16_linear(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                 void *work);

size_t qlinear_work_bytes(int n, int in)
{
    return int8_work_bytes(n, in);
}

void qlinear_forward(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                     void *work)
{
    if (w->dtype == QM_INT8)
        int8_linear(path, y, x, w, bias, n, work);
    else
        bf16_linear(path, y, x, w, bias, n, work);
}

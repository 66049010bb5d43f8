/*
 * The learning-rate schedule of GPT-3 / nanoGPT: linear warmup, then a
 * half-cosine from max_lr down to 10 % of it.
 */
#include "slm.h"

#include <math.h>

float slm_lr_schedule(float max_lr, int step, int warmup, int total)
{
    if (step < 1) step = 1;
    if (warmup < 0) warmup = 0;
    if (step <= warmup) return max_lr * (float)step / (float)warmup;
    float min_lr = 0.1f * max_lr;
    if (step >= total) return min_lr;
    double progress = (double)(step - warmup) / (double)(total - warmup); /* in (0,1) */
    return (float)(min_lr + 0.5 * (max_lr - min_lr) * (1.0 + cos(M_PI * progress)));
}

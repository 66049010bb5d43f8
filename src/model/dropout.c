/*
 * Dropout (Srivastava et al. 2014) on the embeddings and on both residual
 * branches: each element is zeroed with probability p and survivors are
 * scaled by 1/(1−p), so the expected value is unchanged.
 *
 * The keep mask is not stored. Element (r,c) of a site survives iff the
 * counter-based hash of core/dropout_mask.h says so for (seed, row r,
 * column c): the same function attention dropout uses, so backward
 * recomputes the mask from the seed and runs are reproducible bit for bit.
 * Rows count from the site's row0, so a shard of a batch (data parallelism)
 * draws the masks of its rows in the whole batch.
 */
#include "core/dropout_mask.h"
#include "model/layers.h"

#include <string.h>

dropout_site gpt_dropout_site(const gpt_dropout *d, int site, int layer)
{
    dropout_site s = {d->p, 0, d->row0};
    s.seed = mix64(d->seed ^ mix64(((uint64_t)(uint32_t)layer << 8) | (uint64_t)site));
    return s;
}

/* Key of row r of a site: element (r,c) survives iff
 * dropout_keep(key, c, threshold). */
static uint64_t row_key(dropout_site s, size_t r)
{
    return dropout_row_key(s.seed, 0, 0, (int)(s.row0 + r));
}

// res, branch, out are (N,C); bias (C). branch may be out.
void residual_forward(float *out, const float *res, const float *branch, const float *bias,
                      size_t N, int C, dropout_site site)
{
    float p = site.p;
    uint32_t threshold = dropout_threshold(p);
    float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        const float *x = res + r * C, *y = branch + r * C;
        float *o = out + r * C;
        if (p > 0.0f) {
            uint64_t key = row_key(site, r);
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float keep = dropout_keep(key, c, threshold) ? keep_scale : 0.0f;
                o[c] = x[c] + keep * (y[c] + bias[c]);
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = x[c] + (y[c] + bias[c]);
        }
    }
}

// dout, scratch are (N,C)
const float *residual_backward(float *scratch, const float *dout, size_t N, int C,
                               dropout_site site)
{
    if (site.p <= 0.0f) return dout;
    dropout_backward(scratch, dout, N, C, site);
    return scratch;
}

// x is (N,C)
void dropout_forward(float *x, size_t N, int C, dropout_site site)
{
    if (site.p <= 0.0f) return;
    dropout_backward(x, x, N, C, site); /* the same mask multiply */
}

// dy, dx are (N,C); dx may be dy
void dropout_backward(float *dx, const float *dy, size_t N, int C, dropout_site site)
{
    float p = site.p;
    if (p <= 0.0f) {
        if (dx != dy) memcpy(dx, dy, N * C * sizeof *dx);
        return;
    }
    uint32_t threshold = dropout_threshold(p);
    float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (size_t r = 0; r < N; r++) {
        uint64_t key = row_key(site, r);
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float keep = dropout_keep(key, c, threshold) ? keep_scale : 0.0f;
            dx[r * C + c] = dy[r * C + c] * keep;
        }
    }
}

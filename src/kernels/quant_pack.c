/*
 * int8 and bf16 weight matrices: quantizing fp32 weights into the file form
 * (the layout of the GPT-2 tensor, plus scales), and building the kernel
 * form (one contiguous row per output) from it. Quantization is symmetric
 * per group, as llama.cpp's Q8_0: s = max|w|/127, q = round(w/s).
 */
#include "core/alloc.h"
#include "core/cpu.h"
#include "kernels/bf16.h"
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

int qpath_best(int dtype)
{
    int level = cpu_level();
    cpu_features f = cpu_detect();
    if (level >= CPU_AVX512 && dtype == QM_INT8 && !f.avx512_vnni) level = CPU_AVX2;
    if (level >= CPU_AVX512 && dtype == QM_BF16 && f.avx512_bf16) return QPATH_AVX512_BF16;
    if (level == CPU_AVX2 && dtype == QM_INT8 && f.avx_vnni) return QPATH_AVX_VNNI;
    return level == CPU_AVX512 ? QPATH_AVX512 : level == CPU_AVX2 ? QPATH_AVX2 : QPATH_PORTABLE;
}

int qpath_supported(int dtype, int path)
{
    if (path < QPATH_PORTABLE || path > qpath_best(dtype)) return 0;
    if (path == QPATH_AVX_VNNI) return dtype == QM_INT8 && cpu_detect().avx_vnni;
    if (path == QPATH_AVX512_BF16) return dtype == QM_BF16;
    return 1;
}

const char *qpath_name(int dtype, int path)
{
    if (path == QPATH_PORTABLE) return "portable";
    if (dtype == QM_INT8)
        return path == QPATH_AVX512 ? "avx512-vnni" : path == QPATH_AVX_VNNI ? "avx-vnni" : "avx2";
    return path == QPATH_AVX512_BF16 ? "avx512-bf16" : path == QPATH_AVX512 ? "avx512" : "avx2";
}

/* Element (i, o) of W and of its group's scale in the file layout. */
static size_t w_at(int in, int out, int transposed, int i, int o)
{
    return transposed ? (size_t)o * in + i : (size_t)i * out + o;
}
static size_t s_at(int in, int out, int transposed, int group, int i, int o)
{
    int ng = in / group;
    return transposed ? (size_t)o * ng + i / group : (size_t)(i / group) * out + o;
}

void quantize_int8(const float *W, int in, int out, int transposed, int group, int8_t *q, float *s)
{
#pragma omp parallel for schedule(static) if ((size_t)in * out > 65536)
    for (int o = 0; o < out; o++) {
        for (int g = 0; g < in; g += group) {
            float amax = 0.0f;
            for (int i = g; i < g + group; i++) {
                float a = fabsf(W[w_at(in, out, transposed, i, o)]);
                amax = a > amax ? a : amax;
            }
            float scale = amax / 127.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            s[s_at(in, out, transposed, group, g, o)] = scale;
            for (int i = g; i < g + group; i++) {
                size_t at = w_at(in, out, transposed, i, o);
                float r = roundf(W[at] * inv);
                q[at] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r);
            }
        }
    }
}

int qmatrix_load_int8(qmatrix *m, int in, int out, int transposed, int group, const int8_t *q,
                      const float *s)
{
    memset(m, 0, sizeof *m);
    if (in % QBLOCK || group % QBLOCK || in % group) return -1;
    m->dtype = QM_INT8;
    m->in = in;
    m->out = out;
    m->nseg = (in + 63) / 64;
    size_t groups = ((size_t)out + 3) / 4, segs = groups * m->nseg * 4;
    m->q = alloc_aligned(segs * 64);
    m->scale = alloc_aligned(segs * 2 * sizeof *m->scale);
    if (!m->q || !m->scale) {
        qmatrix_free(m);
        return -1;
    }
#pragma omp parallel for schedule(static) if ((size_t)in * out > 65536)
    for (size_t g = 0; g < groups; g++)
        for (int r = 0; r < 4; r++) {
            int o = (int)(g * 4) + r;
            for (int p = 0; p < m->nseg; p++) {
                uint8_t *seg = m->q + 64 * qseg_index(m, o, p);
                float *sc = m->scale + 2 * qseg_index(m, o, p);
                for (int i = 0; i < 64; i++) {
                    int k = 64 * p + i;
                    seg[i] = o < out && k < in ? (uint8_t)(q[w_at(in, out, transposed, k, o)] + 128)
                                               : 128;
                }
                for (int h = 0; h < 2; h++) {
                    int k = 64 * p + QBLOCK * h;
                    sc[h] = o < out && k < in ? s[s_at(in, out, transposed, group, k, o)] : 0.0f;
                }
            }
        }
    return 0;
}

int qmatrix_load_bf16(qmatrix *m, int in, int out, int transposed, const uint16_t *bf)
{
    memset(m, 0, sizeof *m);
    m->dtype = QM_BF16;
    m->in = in;
    m->out = out;
    m->bf = alloc_aligned((size_t)out * in * sizeof *m->bf);
    if (!m->bf) return -1;
    if (transposed) {
        memcpy(m->bf, bf, (size_t)out * in * sizeof *m->bf);
        return 0;
    }
#pragma omp parallel for schedule(static) if ((size_t)in * out > 65536)
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            m->bf[(size_t)o * in + i] = bf[(size_t)i * out + o];
    return 0;
}

void qmatrix_free(qmatrix *m)
{
    free_aligned(m->q);
    free_aligned(m->scale);
    free_aligned(m->bf);
    memset(m, 0, sizeof *m);
}

size_t qmatrix_bytes(const qmatrix *m)
{
    size_t n = (size_t)m->in * m->out;
    return m->dtype == QM_INT8 ? n + n / QBLOCK * sizeof(float) : 2 * n;
}

void qmatrix_row(const qmatrix *w, int o, float *out)
{
    if (w->dtype == QM_INT8) {
        for (int i = 0; i < w->in; i++)
            out[i] = (float)((int)qseg(w, o, i / 64)[i % 64] - 128) *
                     qseg_scales(w, o, i / 64)[i % 64 / QBLOCK];
    } else {
        const uint16_t *b = w->bf + (size_t)o * w->in;
        for (int i = 0; i < w->in; i++) out[i] = bf16_widen(b[i]);
    }
}

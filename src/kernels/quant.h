/*
 * Linear layers with int8 or bf16 weights, for generation and evaluation:
 *
 *   y[n][out] = x[n][in] · W[in][out] (+ bias[out])
 *
 * W is held transposed, one row per output (W[:, o] contiguous), so every
 * output is one dot product over `in` that streams its row once: the layout
 * of llama.cpp's Q8_0 and of the VNNI and vdpbf16ps instructions.
 *
 * int8 (Q8_0 × Q8_0): weights in blocks of 32 along `in`, w ≈ s_w·q_w with
 * q_w in [-127, 127]; the activations of each token are quantized the same
 * way per call (s_x = max|x|/127 per block of 32, round to nearest even), so a
 * block's product is s_w·s_x·Σ q_w·q_x, exact in int32.
 *   avx512vnni  vpdpbusd multiplies unsigned by signed bytes: weights are
 *               stored as u = q_w + 128 and Σ u·q_x − 128·Σ q_x = Σ q_w·q_x.
 *   avx2        vpmaddubsw on |q_x| and q_w·sign(q_x) (no int16 saturation:
 *               2·127·127 < 32767), vpmaddwd to int32.
 *   portable    the same integers in C.
 * bf16: weights are the upper halves of float32s; for one token each is
 * widened in registers (a 16-bit shift) and multiplied in fp32 with fp32
 * activations: exact products, fp32 sums (decoding streams the weights, so
 * widening costs nothing measurable). For several tokens on AVX512-BF16 the
 * activations are rounded to bf16 and vdpbf16ps does 2x the FMA rate.
 *
 * Paths give the same integers per block (int8) or the same products
 * (bf16, for the same activations); only the order of the fp32 sums
 * differs between them.
 */
#ifndef SLM_KERNELS_QUANT_H
#define SLM_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define QBLOCK 32 /* int8 weights and activations per scale in the kernels */

enum { QM_INT8 = 1, QM_BF16 = 2 }; /* same values as SLM_QUANT_INT8 / BF16 */

/*
 * int8 weights are held in groups of four outputs, interleaved in 64-byte
 * segments (two blocks of 32): segment p of outputs 4g..4g+3 lies at
 * q + ((g·nseg + p)·4 + r)·64, so a kernel working on four rows reads one
 * sequential stream (as llama.cpp's repacked Q8_0): measured on the Xeon,
 * 50257x768, 2 threads, 13 GB/s with four separate rows, 17-19 interleaved.
 * Their scales follow the same order, two per segment. Rows past `out` (up
 * to a multiple of 4) and bytes past `in` (up to a multiple of 64) are
 * padding: q_w = 0 (stored 128) with scale 0, so they add exactly 0.
 */
typedef struct {
    int dtype;    /* QM_INT8 or QM_BF16                                   */
    int in, out;  /* y = x·W with W [in][out]; in % QBLOCK == 0 for int8  */
    int nseg;     /* int8: 64-byte segments per row, ceil(in / 64)        */
    uint8_t *q;   /* int8: q_w + 128, interleaved as above                */
    float *scale; /* int8: s_w, two per segment, interleaved as above     */
    uint16_t *bf; /* bf16: [out][in]                                      */
} qmatrix;

/* Index of segment p (blocks 2p and 2p+1) of int8 output row o: its 64
 * bytes are at q + 64·index, its two scales at scale + 2·index. */
static inline size_t qseg_index(const qmatrix *w, int o, int p)
{
    return ((size_t)(o >> 2) * w->nseg + p) * 4 + (o & 3);
}
static inline const uint8_t *qseg(const qmatrix *w, int o, int p)
{
    return w->q + 64 * qseg_index(w, o, p);
}
static inline const float *qseg_scales(const qmatrix *w, int o, int p)
{
    return w->scale + 2 * qseg_index(w, o, p);
}

/* Kernel paths: cpu_level() narrowed by what the CPU has. int8 AVX512 means
 * AVX512-VNNI; int8 AVX_VNNI is vpdpbusd on ymm (VEX: Alder Lake and later,
 * Sapphire/Emerald Rapids; not Zen 4), taken at level avx2 where the CPU has
 * it; bf16 AVX512_BF16 adds vdpbf16ps tiles for several tokens. */
enum {
    QPATH_PORTABLE = 0,
    QPATH_AVX2 = 1,
    QPATH_AVX_VNNI = 2,
    QPATH_AVX512 = 3,
    QPATH_AVX512_BF16 = 4
};
/* The fastest path this CPU runs for dtype, after SLM_CPU_LEVEL. */
int qpath_best(int dtype);
/* Whether this CPU can run `path` for dtype (at most qpath_best): tests and
 * `slm bench quant` walk every path from the best down, skipping the rest. */
int qpath_supported(int dtype, int path);
const char *qpath_name(int dtype, int path);

/* A matrix W (in,out) as a file holds it: `transposed` 0 for a Conv1D
 * weight stored [in][out] (groups run down its rows), 1 for wte stored
 * [out][in] = [V][C] (groups run along its rows). Scales follow the same
 * layout: [in/group][out] or [out][in/group]. */

/* fp32 W → int8 q (same layout and size as W) and scales s; group is a
 * multiple of QBLOCK dividing in. s = max|w|/127 of the group, q =
 * round(w/s) (ties away from zero), q = 0 where s = 0. */
void quantize_int8(const float *W, int in, int out, int transposed, int group, int8_t *q, float *s);

/* Builds the kernel form from the file form (allocating; qmatrix_free
 * releases it). Returns 0 or -1 when out of memory. Scales must already be
 * validated (finite, >= 0). */
int qmatrix_load_int8(qmatrix *m, int in, int out, int transposed, int group, const int8_t *q,
                      const float *s);
int qmatrix_load_bf16(qmatrix *m, int in, int out, int transposed, const uint16_t *bf);
void qmatrix_free(qmatrix *m);
/* Bytes of weights and scales (what one pass streams). */
size_t qmatrix_bytes(const qmatrix *m);

/* W[:, o] dequantized into out[in]: the embedding row of a quantized wte
 * (whose kernel form is [V][C], the LM head's rows). */
void qmatrix_row(const qmatrix *w, int o, float *out);

/* Bytes of scratch qlinear_forward needs for n rows of `in` inputs. */
size_t qlinear_work_bytes(int n, int in);

// x is (n,in), W (in,out) as w, bias (out) or NULL, y (n,out) overwritten.
// work: qlinear_work_bytes(n, in) bytes, 64-byte aligned. Threads split the
// outputs (OpenMP). path: QPATH_* no higher than qpath_best(w->dtype).
void qlinear_forward(int path, float *y, const float *x, const qmatrix *w, const float *bias, int n,
                     void *work);

#endif

/* The two steps of the inference path (decode.c) that differ from training's
 * layers: embedding at an arbitrary position, and an in-place residual add. */
#ifndef SLM_MODEL_INFER_OPS_H
#define SLM_MODEL_INFER_OPS_H

#include <stddef.h>
#include <stdint.h>

/* x[C] = wte[token] + wpe[pos]: token embedding plus learned position. */
void infer_embed(float *x, const float *wte, const float *wpe, int32_t token, int pos, int C);
/* x += y, n elements (residual connection). */
void infer_add(float *x, const float *y, size_t n);
#endif

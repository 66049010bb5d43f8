/* Row-wise kernels of the inference path (decode.c): no activations are kept
 * for a backward pass, so these work in place on small buffers. */
#ifndef SLM_MODEL_INFER_OPS_H
#define SLM_MODEL_INFER_OPS_H

#include <stddef.h>
#include <stdint.h>

/* x[C] = wte[token] + wpe[pos]: token embedding plus learned position. */
void infer_embed(float *x, const float *wte, const float *wpe, int32_t token, int pos, int C);
/* out[n][C] = LayerNorm(x[n][C]) · w + b (biased variance, like PyTorch). */
void infer_layer_norm(float *out, const float *x, const float *w, const float *b, int n, int C,
                      float eps);
/* x += y, n elements (residual connection). */
void infer_add(float *x, const float *y, size_t n);
/* In place: GELU (tanh approximation, "gelu_new") or ReLU. */
void infer_activation(float *x, size_t n, int activation);

#endif

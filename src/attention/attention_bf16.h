/*
 * The attention backward pass reading its saved inputs in bf16: for
 * training with bf16 activation storage (model/activation_stash.c), where
 * q, k, v and the output are kept as bf16 between forward and backward.
 * The flash kernel widens each head into its workspace as it starts, so no
 * fp32 copy of the whole tensors is ever made; the reference
 * implementation (impl REFERENCE) gets whole widened copies.
 *
 * Same options, checks and layout as slm_attention_backward (q, out
 * [B][H][Tq][D], k, v [B][H][Tk][D]); lse, dout, dq, dk, dv are fp32. The
 * result equals slm_attention_backward on the widened tensors, bit for bit.
 */
#ifndef SLM_ATTENTION_BF16_H
#define SLM_ATTENTION_BF16_H

#include "slm.h"

#include <stdint.h>

int attention_backward_bf16_inputs(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                                   const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                   const uint16_t *out, const float *lse, const float *dout,
                                   float *dq, float *dk, float *dv);

#endif

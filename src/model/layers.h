/*
 * The layers of GPT-2, each a *_forward / *_backward pair (llm.c style) with
 * its shapes in a comment. N = B·T rows. Backward functions ACCUMULATE into
 * parameter gradients (dw, db) and say for each input gradient whether they
 * overwrite or accumulate. No function allocates; BLAS is called only from
 * serial code (OpenBLAS and our loops share libgomp's pool).
 */
#ifndef SLM_MODEL_LAYERS_H
#define SLM_MODEL_LAYERS_H

#include "kernels/kernels.h"
#include "model/gpt.h"

#include <stddef.h>
#include <stdint.h>

/* ---- embedding.c ---------------------------------------------------------- */
/* out (B,T,C) = wte[tokens[b,t]] + wpe[t]; tokens (B,T), wte (V,C), wpe (P,C) */
void encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                     int B, int T, int C);
/* dwte, dwpe += scatter of dout (B,T,C) */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B,
                      int T, int C);

/* ---- layer_norm.c --------------------------------------------------------- */
/* out (N,C) = (inp - mean)·rstd·w + b; mean, rstd (N) kept for backward,
 * and x̂ = (inp - mean)·rstd rounded to bf16 in xhat (N,C) unless NULL */
void layer_norm_forward(float *out, float *mean, float *rstd, uint16_t *xhat, const float *inp,
                        const float *w, const float *b, size_t N, int C, float eps);
/* dinp (N,C) += ..., dw, db (C) += ...; dout (N,C) */
void layer_norm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *mean, const float *rstd, const float *w, size_t N, int C);

/* dinp (N,C) += ..., dw, db (C) += ... as layer_norm_backward, from the
 * normalised input x̂ = (x − μ)·rstd stored in bf16 (N,C) (gpt.h) */
void layer_norm_backward_xhat(float *dinp, float *dw, float *db, const float *dout,
                              const uint16_t *xhat, const float *rstd, const float *w, size_t N,
                              int C);
/* out (N,C) = x̂·w + b from x̂ stored in bf16 (N,C): LayerNorm's output again */
void layer_norm_from_xhat(float *out, const uint16_t *xhat, const float *w, const float *b,
                          size_t N, int C);

/* ---- feed_forward.c -------------------------------------------------------- */
/* pre (N,OC) += bias (OC); act (N,OC) = GELU(pre) or ReLU(pre); may alias */
void bias_activation_forward(float *pre, float *act, const float *bias, size_t N, int OC,
                             int activation);


/* ---- linear.c: Conv1D layers, y = x·W + b with W (IN,OUT) ---------------- */
/* mm (gpt_gemm) says whether the GEMMs run in fp32 or bf16; in bf16 w must
 * be a view into the parameters (its bf16 copy is read). */
/* out (N,OUT) = inp (N,IN) · w (IN,OUT) + beta·out, then ep (may be NULL)
 * on out: fused into the GEMM where its kernel can (kernels.h) */
void matmul_forward(const gpt_gemm *mm, float *out, const float *inp, const float *w, size_t N,
                    int IN, int OUT, float beta, const gemm_epilogue *ep);
/* dinp (N,IN) = dout·wᵀ (overwritten; skipped if dinp is NULL), then ep
 * (may be NULL) on dinp; dw (IN,OUT) = inpᵀ·dout + mm->grad_beta·dw */
void matmul_backward(const gpt_gemm *mm, float *dinp, float *dw, const float *dout,
                     const float *inp, const float *w, size_t N, int IN, int OUT,
                     const gemm_epilogue *ep);
/* db (OUT) += Σ_rows dout (N,OUT); rows summed in order (deterministic) */
void bias_backward(float *db, const float *dout, size_t N, int OUT);

/* ---- dropout.c: dropout and the residual connections --------------------- */
/* out (N,C) = res + dropout(branch + bias); branch may alias out. The
 * branch's output bias is added here, fused with the add. The keep mask of
 * element (r,c) is a hash of (seed, row0 + r, c): backward recomputes it. */
void residual_forward(float *out, const float *res, const float *branch, const float *bias,
                      size_t N, int C, dropout_site site);
/* The branch's gradient of out = res + dropout(branch): dout (N,C) itself
 * without dropout, else dout ∘ keep/(1-p) written to scratch (N,C). (The
 * residual passes dout through to res unchanged.) */
const float *residual_backward(float *scratch, const float *dout, size_t N, int C,
                               dropout_site site);
/* x (N,C) = dropout(x) in place (the embedding dropout) */
void dropout_forward(float *x, size_t N, int C, dropout_site site);
/* dx (N,C) = dy ∘ keep/(1-p): the gradient through dropout (dx may be dy) */
void dropout_backward(float *dx, const float *dy, size_t N, int C, dropout_site site);

/* ---- multi_head_attention.c ---------------------------------------------- */
/* out (N,C) = concat_h(attention(LN1(x)·W_h))·W^C, without c_proj's bias
 * (residual_forward adds it); reads a->ln1, writes a->qkv, a->atty,
 * a->att_lse. out is s->b. */
int multi_head_attention_forward(const gpt_dims *d, const gpt_layer_views *w, gpt_layer_acts *a,
                                 gpt_scratch *s, const gpt_dropout *drop, int layer,
                                 int attn_impl);
/* dout (N,C) = d(branch output); on return s->b (N,C) = d(ln1); grads of
 * c_attn and c_proj (its bias included) accumulated into g. dout may be
 * s->dres or s->b. The caller adds LayerNorm 1. */
int multi_head_attention_backward(const gpt_dims *d, const gpt_layer_views *w,
                                  gpt_layer_views *g, const gpt_layer_acts *a, gpt_scratch *s,
                                  const float *dout, const gpt_dropout *drop, int layer,
                                  int attn_impl);
/* weights (B,H,T,T) = softmax(q·kᵀ/sqrt(D) + M) of the last forward pass,
 * from a->qkv and a->att_lse (before dropout; see slm_attention_weights) */
int multi_head_attention_weights(const gpt_dims *d, const gpt_layer_acts *a, float *weights);

/* ---- feed_forward.c ------------------------------------------------------ */
/* out (N,C) = act(ln2·W_fc + b_fc)·W_proj, without b_proj (residual_forward
 * adds it); act = GELU (tanh approximation) or ReLU. out is s->a. */
void feed_forward_forward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                          gpt_layer_acts *a, gpt_scratch *s);
/* dout (N,C) = d(branch output); on return s->a (N,C) = d(ln2); grads
 * (b_proj included) accumulated into g. dout may be s->dres or s->b. */
void feed_forward_backward(const gpt_dims *d, int activation, const gpt_layer_views *w,
                           gpt_layer_views *g, const gpt_layer_acts *a, gpt_scratch *s,
                           const float *dout);

/* ---- lm_head.c: tied output layer and cross-entropy ---------------------- */
/* logits (N,V) = x (N,C) · wteᵀ, wte (V,C) */
void lm_head_forward(const gpt_gemm *mm, float *logits, const float *x, const float *wte,
                     size_t N, int C, int V);
/* dx (N,C) = dlogits·wte (overwritten); dwte (V,C) += dlogitsᵀ·x */
void lm_head_backward(const gpt_gemm *mm, float *dx, float *dwte, const float *dlogits,
                      const float *x, const float *wte, size_t N, int C, int V);
/* lse (N) = log Σ_v exp(logits); returns Σ over rows with a target of
 * (lse - logits[target]) and writes the count of such rows to *n_valid */
double cross_entropy_forward(float *lse, const float *logits, const int32_t *targets, size_t N,
                             int V, size_t *n_valid);
/* logits (N,V) ← dlogits = (softmax − onehot(target))·scale, in place;
 * rows with target SLM_IGNORE_INDEX become 0 */
void cross_entropy_backward(float *logits, const float *lse, const int32_t *targets, size_t N,
                            int V, float scale);

#endif

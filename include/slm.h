/*
 * slm.h — the public API of libslm, a small-language-model toolkit in C.
 *
 * Conventions
 *   - Every function that can fail returns int: 0 (SLM_OK) or a negative SLM_E*
 *     code; slm_strerror() turns a code into words. Functions that take
 *     `char *err, size_t errlen` also write a one-line human message there
 *     (may be NULL / 0).
 *   - Tensors are row-major, contiguous float32 unless said otherwise.
 *   - Nothing here keeps global mutable state; objects are owned by the caller
 *     and freed with the matching *_free.
 */
#ifndef SLM_H
#define SLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== errors and version (src/core) ==================================== */

enum {
    SLM_OK = 0,
    SLM_EINVAL = -1,       /* invalid argument (size, NULL pointer, option)   */
    SLM_ENOMEM = -2,       /* allocation failed or would exceed a limit       */
    SLM_EIO = -3,          /* reading or writing a file failed                */
    SLM_EFORMAT = -4,      /* a file is malformed (header, dtype, shape, ...)  */
    SLM_ERANGE = -5,       /* a value is out of its allowed range             */
    SLM_ENUMERIC = -6,     /* NaN or infinity where a finite value is needed  */
    SLM_EINTERRUPTED = -7, /* stopped by a signal (Ctrl-C)                    */
    SLM_EUNSUPPORTED = -8  /* valid but not supported by this build           */
};

/* Human-readable text for an SLM_E* code ("unknown error" for others). */
const char *slm_strerror(int err);
/* Library version, e.g. "0.1.0". */
const char *slm_version(void);

/* ==== attention core (src/attention) =================================== */

enum { SLM_ATTN_AUTO = 0, SLM_ATTN_REFERENCE = 1, SLM_ATTN_FLASH = 2 };

/*
 * Options of scaled dot-product attention, PyTorch semantics:
 *   out = dropout(softmax(q·kᵀ·scale + mask)) · v
 * with these additions:
 *   causal   key j is visible to query i iff j <= i + (Tk - Tq): aligned
 *            bottom-right, so with a KV cache the last query sees every key.
 *   mask     optional additive [Tq][Tk] matrix broadcast over B and H; a -inf
 *            entry hides that key.
 *   kv_len   optional [B]: keys j >= kv_len[b] are invisible (padding).
 *   dropout  element (b,h,i,j) is dropped iff a counter-based hash of
 *            (seed,b,h,i,j) says so; survivors are scaled by 1/(1-dropout).
 *            Both implementations drop the same elements.
 * A query row whose keys are all invisible yields out = 0 and lse = -inf and
 * contributes no gradient.
 */
typedef struct {
    int impl;          /* SLM_ATTN_AUTO, SLM_ATTN_REFERENCE, SLM_ATTN_FLASH */
    int causal;        /* key j visible to query i iff j <= i + (Tk - Tq)    */
    float scale;       /* 0 means 1/sqrt(D)                                  */
    const float *mask; /* optional additive mask [Tq][Tk] (0 / -inf / any)   */
    const int *kv_len; /* optional [B]: keys j >= kv_len[b] are invisible    */
    float dropout;     /* probability of dropping an attention weight        */
    uint64_t seed;     /* dropout stream                                     */
} slm_attn_opts;

/*
 * Forward pass. Shapes: q[B][H][Tq][D], k,v[B][H][Tk][D], out[B][H][Tq][D],
 * lse[B][H][Tq] (may be NULL): log-sum-exp of the masked, scaled scores.
 * Returns SLM_OK, or SLM_EINVAL (non-positive size, NULL required pointer,
 * dropout outside [0,1), kv_len[b] outside [0,Tk], unknown impl) with nothing
 * written, or SLM_ENOMEM.
 */
int slm_attention_forward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                          const float *q, const float *k, const float *v, float *out,
                          float *lse);

/*
 * Backward pass. Takes the out and lse that slm_attention_forward wrote for
 * the same inputs and options, and dout [B][H][Tq][D]; overwrites (does not
 * accumulate into) dq [B][H][Tq][D], dk and dv [B][H][Tk][D].
 * Return codes as slm_attention_forward.
 */
int slm_attention_backward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                           const float *q, const float *k, const float *v, const float *out,
                           const float *lse, const float *dout, float *dq, float *dk,
                           float *dv);

/* Bytes of working memory one call of the given impl allocates (both passes
 * together, all threads), so callers and benchmarks can check limits. */
size_t slm_attention_workspace_bytes(int impl, int B, int H, int Tq, int Tk, int D,
                                     int backward);

/* The causal mask matrix of the seeds, [Tq][Tk]: M[i][j] = 0 if key j is
 * visible to query i (j <= i + Tk - Tq), else -inf. */
void slm_causal_mask(int Tq, int Tk, float *mask);

/* In-place softmax of n scores (a -inf score gets weight 0; a row of only
 * -inf becomes all zeros). Returns the log-sum-exp, -inf for such a row. */
float slm_softmax(float *x, int n);

/* ==== model (src/model) ================================================ */

/* ==== tokenizer (src/tokenizer) ======================================== */

/* ==== files (src/io) =================================================== */

#ifdef __cplusplus
}
#endif
#endif /* SLM_H */

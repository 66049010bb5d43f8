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

/* The library's version: SLM_VERSION_MAJOR.MINOR.PATCH, as slm_version() says. */
#define SLM_VERSION_MAJOR 0
#define SLM_VERSION_MINOR 2
#define SLM_VERSION_PATCH 0
#define SLM_VERSION_STRING "0.2.0"

/* Marks the exported functions: libslm.so is built with hidden visibility,
 * so only what this header declares with SLM_API is visible to its users. */
#if defined(__GNUC__) && !defined(SLM_STATIC_ONLY)
#define SLM_API __attribute__((visibility("default")))
#else
#define SLM_API
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
SLM_API const char *slm_strerror(int err);
/* Library version, e.g. "0.1.0". */
SLM_API const char *slm_version(void);

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
    int batch_offset;  /* dropout: batch b draws the masks of batch index
                          b + batch_offset (a shard of a larger batch); 0   */
} slm_attn_opts;

/*
 * Forward pass. Shapes: q[B][H][Tq][D], k,v[B][H][Tk][D], out[B][H][Tq][D],
 * lse[B][H][Tq] (may be NULL): log-sum-exp of the masked, scaled scores.
 * Returns SLM_OK, or SLM_EINVAL (non-positive size, NULL required pointer,
 * dropout outside [0,1), kv_len[b] outside [0,Tk], unknown impl) with nothing
 * written, or SLM_ENOMEM.
 */
SLM_API int slm_attention_forward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                          const float *q, const float *k, const float *v, float *out,
                          float *lse);

/*
 * Backward pass. Takes the out and lse that slm_attention_forward wrote for
 * the same inputs and options, and dout [B][H][Tq][D]; overwrites (does not
 * accumulate into) dq [B][H][Tq][D], dk and dv [B][H][Tk][D].
 * Return codes as slm_attention_forward.
 */
SLM_API int slm_attention_backward(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                           const float *q, const float *k, const float *v, const float *out,
                           const float *lse, const float *dout, float *dq, float *dk,
                           float *dv);

/* Bytes of working memory one call of the given impl allocates (both passes
 * together, all threads), so callers and benchmarks can check limits. */
SLM_API size_t slm_attention_workspace_bytes(int impl, int B, int H, int Tq, int Tk, int D,
                                     int backward);

/* The causal mask matrix (Vaswani et al. 2017, §3.2.3), [Tq][Tk]: M[i][j] = 0 if key j is
 * visible to query i (j <= i + Tk - Tq), else -inf. */
SLM_API void slm_causal_mask(int Tq, int Tk, float *mask);

/* In-place softmax of n scores (a -inf score gets weight 0; a row of only
 * -inf becomes all zeros). Returns the log-sum-exp, -inf for such a row. */
SLM_API float slm_softmax(float *x, int n);

/*
 * The attention weights P = softmax(q·kᵀ·scale + mask) of a forward pass,
 * recovered from its inputs and the lse it wrote (exp(score − lse), one exp
 * per entry, the normaliser the kernel itself used):
 *   weights[b][h][i][j] = exp(scale·q_i·k_j + mask_ij − lse_i)  if key j is
 *                         visible to query i (causal, kv_len, mask ≠ -inf),
 *                       = 0 exactly otherwise (and for rows with lse = -inf).
 * Shapes: q[B][H][Tq][D], k[B][H][Tk][D], lse[B][H][Tq] as slm_attention_forward
 * wrote them for the same options; weights[B][H][Tq][Tk]. The weights are
 * those before dropout (o->dropout is not applied: with dropout the kernel
 * multiplied them by the keep factors). Each visible row sums to 1, and
 * weights·v is the forward's out when dropout is 0.
 * Returns SLM_OK, or SLM_EINVAL (as slm_attention_forward, or a NULL pointer)
 * with nothing written.
 */
SLM_API int slm_attention_weights(const slm_attn_opts *o, int B, int H, int Tq, int Tk, int D,
                                  const float *q, const float *k, const float *lse,
                                  float *weights);

/* ==== model (src/model) ================================================ */

/* GPT-2 architecture: token + position embeddings → n_layer pre-LN blocks
 * (x + MultiHeadAttention(LN(x)), x + FeedForward(LN(x))) → final LayerNorm →
 * LM head tied to the token embedding. */

enum { SLM_ACT_GELU_NEW = 0, SLM_ACT_RELU = 1 };     /* FFN activation       */
enum { SLM_TOKENIZER_GPT2 = 0, SLM_TOKENIZER_BYTE = 1 };
#define SLM_IGNORE_INDEX (-1) /* a target that contributes no loss (padding) */

typedef struct {
    int n_layer;              /* transformer blocks                          */
    int n_head;               /* attention heads; n_embd % n_head == 0       */
    int n_embd;               /* model width C                               */
    int n_positions;          /* context length (learned positions)          */
    int vocab_size;           /* V                                           */
    float layer_norm_epsilon; /* 1e-5                                        */
    int activation;           /* SLM_ACT_GELU_NEW ("gelu_new") or RELU       */
    int tokenizer;            /* SLM_TOKENIZER_GPT2 or SLM_TOKENIZER_BYTE    */
    float dropout;            /* embedding, attention and residual dropout
                                 probability in training mode (GPT-2: 0.1)   */
} slm_config;

/* Weight storage of a model (slm quantize; see slm_model_save_quantized). */
enum { SLM_QUANT_NONE = 0, SLM_QUANT_INT8 = 1, SLM_QUANT_BF16 = 2 };

/* Checks sizes (positive, n_embd % n_head == 0, total parameters and
 * activations within limits). SLM_OK or SLM_EINVAL/SLM_ERANGE with a message. */
SLM_API int slm_config_validate(const slm_config *cfg, char *err, size_t errlen);

typedef struct slm_model slm_model;

/* A new model with GPT-2's initialisation (normal(0, 0.02) weights, residual
 * projections scaled by 1/sqrt(2·n_layer), zero biases, unit LayerNorm gains),
 * drawn deterministically from `seed`. */
SLM_API int slm_model_create(const slm_config *cfg, uint64_t seed, slm_model **out, char *err,
                     size_t errlen);
/* Loads a Hugging Face GPT-2 directory (config.json + model.safetensors). */
SLM_API int slm_model_load(const char *dir, slm_model **out, char *err, size_t errlen);
/* Writes config.json + model.safetensors into dir (created if missing),
 * atomically, in the layout GPT2LMHeadModel.save_pretrained writes. */
SLM_API int slm_model_save(const slm_model *m, const char *dir, char *err, size_t errlen);
SLM_API void slm_model_free(slm_model *m);

/*
 * Writes an fp32 model m as a quantized model directory (config.json with
 * "slm_quantization", model.safetensors), atomically per file, which
 * slm_model_load reads back as a quantized model that generates and
 * evaluates (slm_model_decode, slm_model_forward without training) but does
 * not train. quant is SLM_QUANT_INT8 or SLM_QUANT_BF16; group_size (int8
 * only; 0 means 32) is the number of weights sharing one scale.
 *   int8: every weight matrix W (the four per layer, Conv1D [in, out], and
 *         wte [V, C], which is also the tied LM head) is stored I8 under its
 *         GPT-2 name with the same shape, plus "<name>_scale" F32: groups of
 *         group_size consecutive weights along the input (reduction)
 *         dimension share scale s = max|w|/127 and w ≈ q·s, q in
 *         [-127, 127] rounded to nearest. Conv1D: scale [in/G, out] (group
 *         of rows); wte: scale [V, C/G].
 *   bf16: the same matrices stored BF16 (round to nearest even).
 * wpe, LayerNorm gains and biases, and all biases stay F32 in both.
 * SLM_EINVAL (m already quantized, unknown quant, bad group size: not a
 * multiple of 32 dividing n_embd), SLM_EIO, SLM_ENOMEM. */
SLM_API int slm_model_save_quantized(const slm_model *m, const char *dir, int quant, int group_size,
                                     char *err, size_t errlen);
/* How m holds its weight matrices: SLM_QUANT_NONE (fp32), SLM_QUANT_INT8 (then
 * *group_size, if not NULL, is the file's weights per scale) or
 * SLM_QUANT_BF16; *kernel (if not NULL) names the kernel path the matrices
 * run on ("avx512-vnni", "avx512", "avx2", "portable"; "fp32" for NULL quant).
 * A quantized model decodes and evaluates; slm_model_params() holds only the
 * fp32 tensors (wpe, LayerNorms, biases: the table's matrices have offset 0
 * and no fp32 storage), slm_model_logits() is NULL, and the training
 * functions return SLM_EUNSUPPORTED. */
SLM_API int slm_model_quantization(const slm_model *m, int *group_size, const char **kernel);

SLM_API const slm_config *slm_model_config(const slm_model *m);

/* Parameters live in one allocation, gradients in another, in the order of
 * the tensor table below (GPT-2 names without the "transformer." prefix). */
typedef struct {
    const char *name; /* e.g. "h.0.attn.c_attn.weight"                       */
    int ndim;         /* 1 or 2                                              */
    int shape[2];     /* Conv1D weights are [in, out]                        */
    size_t offset;    /* in floats, into slm_model_params()                  */
    size_t numel;
} slm_tensor_info;

SLM_API int slm_model_num_tensors(const slm_model *m);
SLM_API const slm_tensor_info *slm_model_tensor(const slm_model *m, int index);
SLM_API const slm_tensor_info *slm_model_find_tensor(const slm_model *m, const char *name);
SLM_API size_t slm_model_num_params(const slm_model *m);
SLM_API float *slm_model_params(slm_model *m);
/* The gradient buffer (allocated on first use; NULL if that fails). */
SLM_API float *slm_model_grads(slm_model *m);


/* ---- forward and backward (src/model/gpt.c, optimizer.c) ----------------- */

/* A batch of B sequences of T tokens: tokens [B][T] (T <= n_positions, ids
 * < vocab_size); targets [B][T] (may be NULL: logits only), the token that
 * should follow each position, SLM_IGNORE_INDEX where none counts. */
typedef struct {
    const int32_t *tokens;
    const int32_t *targets;
    int B, T;
} slm_batch;

/* How a forward pass runs; NULL means inference (no dropout, no backward). */
typedef struct {
    int training;          /* apply dropout and keep what backward needs    */
    uint64_t dropout_seed; /* same seed, same masks                         */
    int batch_offset;      /* row b of this batch draws the dropout masks of
                              row batch_offset + b of a larger batch, so a
                              shard of a global batch (data parallelism)
                              drops what the whole batch would; 0 otherwise */
    int dtype;             /* SLM_DTYPE_F32 (0, default) or SLM_DTYPE_BF16:
                              where the CPU runs bf16 GEMMs faster than fp32
                              (measured once per process), the linear layers
                              and the LM head (forward and this pass's
                              backward) round both inputs to bf16 and
                              accumulate in fp32; elsewhere the math stays
                              fp32 and what backward reads of each layer is
                              stored in bf16 (about half the activation
                              memory; forward's values and the loss are
                              fp32's, the gradients see the rounded copies).
                              Weights, LayerNorm, attention, softmax and
                              loss stay fp32.                               */
} slm_forward_opts;

/* Forward pass. *loss (may be NULL) = mean cross-entropy over the
 * non-ignored targets (0 if every target is ignored, or without targets).
 * Working memory for (B,T) is allocated once and reused while B·T does not
 * grow. Returns SLM_OK; SLM_EINVAL (NULL model/tokens, B or T <= 0,
 * batch_offset < 0) or SLM_ERANGE (T > n_positions, a token or target id
 * outside [0, vocab_size)) with nothing computed; SLM_ENOMEM.
 * With several OpenMP threads and at least one sequence each, the pass may
 * be split into per-thread batch shards (slm_model_pass_shards): the same
 * result to float rounding. */
SLM_API int slm_model_forward(slm_model *m, const slm_batch *batch, const slm_forward_opts *opts,
                              float *loss, char *err, size_t errlen);
/* Logits [B][T][vocab_size] of the last forward pass (NULL before the first).
 * slm_model_backward overwrites them (the buffer becomes d loss/d logits). */
SLM_API const float *slm_model_logits(const slm_model *m);
/* Bytes of working memory the last forward pass held for backward: the
 * activations, the logits and the scratch both passes share, plus the bf16
 * copies of weights and GEMM operands under dtype bf16 (0 before the first
 * pass). Under dtype bf16 on a CPU whose GEMMs stay fp32 the activations
 * are stored in bf16 (slm_forward_opts.dtype). */
SLM_API size_t slm_model_activation_bytes(const slm_model *m);
/* Batch shards the last forward pass (and its backward) ran on: 1, or one
 * per thread where the pass was split, each thread running the whole layer
 * stack on its own sequences with single-threaded kernels (no barrier
 * between layers). A training pass is split only when each shard has at
 * least 512 rows (B·T / threads) per extra gradient copy: shards 2.. add
 * their weight gradients from copies of their own (n_params floats each,
 * allocated once). 0 before the first pass. For reports. */
SLM_API int slm_model_pass_shards(const slm_model *m);
/* Adds d(loss·loss_scale)/dθ into the gradient buffer (loss_scale = 1/accum
 * for gradient accumulation). Needs a training forward pass with targets,
 * once per forward pass (SLM_EINVAL otherwise). */
SLM_API int slm_model_backward(slm_model *m, float loss_scale, char *err, size_t errlen);
SLM_API void slm_model_zero_grad(slm_model *m);

typedef struct {
    float lr;           /* this step's learning rate                         */
    float beta1, beta2; /* 0.9, 0.95                                         */
    float eps;          /* 1e-8                                              */
    float weight_decay; /* decoupled; applied to 2-D weights only            */
    float grad_clip;    /* global L2 norm clip; 0 = off                      */
} slm_adamw_opts;

/* One AdamW update (step is 1-based, for bias correction), as PyTorch's
 * clip_grad_norm_ + AdamW: gradients scaled by min(1, clip/(norm + 1e-6)),
 * θ ← θ·(1 − lr·wd) for 2-D tensors (embeddings and weight matrices, not
 * biases or LayerNorm), then the Adam step. The gradient buffer itself is
 * not modified. Writes the global gradient norm before clipping to
 * *grad_norm (may be NULL). A non-finite norm returns SLM_ENUMERIC and leaves
 * parameters and moments unchanged; an update that leaves a weight
 * non-finite (finite gradients, a weight past FLT_MAX) is made and returns
 * SLM_ENUMERIC too (do not save such a model); invalid options or step < 1
 * SLM_EINVAL; SLM_ENOMEM; each with a message. */
SLM_API int slm_model_adamw_step(slm_model *m, const slm_adamw_opts *o, int step,
                                 float *grad_norm, char *err, size_t errlen);
/* AdamW first (which = 0) or second (which = 1) moments, laid out like the
 * parameters; allocated (zeroed) on first use; NULL if that fails. */
SLM_API float *slm_model_adam_state(slm_model *m, int which);
/* Linear warmup over `warmup` steps (step <= warmup: max_lr·step/warmup),
 * then cosine decay from max_lr at step `warmup` to 10 % of max_lr at step
 * `total`, and 10 % after. step is 1-based (values below 1 count as 1). */
SLM_API float slm_lr_schedule(float max_lr, int step, int warmup, int total);

/* ---- held-out loss (src/model/evaluate.c) -------------------------------- */

/* The rule of `slm eval` and of training's validation: tokens t0..t(n-1) are
 * cut into consecutive windows of `context` inputs; window w feeds
 * t[w·ctx .. w·ctx+ctx-1] and predicts the token after each, so every token
 * but the first is predicted exactly once (the last window may be shorter
 * and is padded with ignored targets). Windows go through the model `batch`
 * at a time. */
typedef struct {
    int context;        /* inputs per window; 0 = the model's n_positions   */
    int batch;          /* windows per forward pass; 0 = 8                  */
    size_t max_windows; /* score only the first max_windows; 0 = all        */
    /* Optional: called after each batch of windows with the predictions
     * scored so far and in all. */
    void (*on_progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
} slm_eval_opts;

typedef struct {
    double loss;        /* mean cross-entropy in nats per prediction         */
    size_t predictions; /* how many predictions it averages                  */
} slm_eval_result;

/* Mean next-token loss of ids[0..n) (n >= 2) by the rule above; opts may be
 * NULL (defaults). SLM_EINVAL (n < 2, bad options), SLM_ERANGE (context >
 * n_positions, an id >= vocab_size), SLM_ENOMEM, each with a message. */
SLM_API int slm_model_eval(slm_model *m, const int32_t *ids, size_t n, const slm_eval_opts *opts,
                           slm_eval_result *result, char *err, size_t errlen);

/* ---- generation (src/model/decode.c) ------------------------------------ */

/* Keys and values of every layer for up to max_tokens positions, so each new
 * token costs one pass over the weights plus attention over the cache. */
typedef struct slm_kv_cache slm_kv_cache;
SLM_API int slm_kv_cache_create(const slm_model *m, int max_tokens, slm_kv_cache **out, char *err,
                        size_t errlen);
SLM_API void slm_kv_cache_free(slm_kv_cache *c);
SLM_API void slm_kv_cache_reset(slm_kv_cache *c);
SLM_API int slm_kv_cache_length(const slm_kv_cache *c);
/* Appends n tokens at positions length .. length+n-1 and writes the logits of
 * the last one to logits [vocab_size]. SLM_ERANGE if the cache or the
 * context would overflow. */
SLM_API int slm_model_decode(slm_model *m, slm_kv_cache *c, const int32_t *tokens, int n,
                     float *logits, char *err, size_t errlen);

/* ---- looking inside (src/model/attention_weights.c, ffn_activations.c) --- */

/*
 * The attention weights of one real forward pass (inference: no dropout) over
 * tokens [T] (T <= n_positions), taken from the model's own attention path:
 * the q, k and log-sum-exp that the attention kernel of each layer produced
 * (slm_attention_weights), not a separate computation.
 *   layer in [0, n_layer): weights is [n_head][T][T] for that layer;
 *   layer = -1:            weights is [n_layer][n_head][T][T], every layer.
 * Row i is query i, column j is key j: weights[h][i][j] is how much token i
 * attends to token j. Entries above the diagonal (the causal mask's future)
 * are exactly 0; every row sums to 1.
 * The pass reuses the model's forward state like slm_model_forward does (it
 * replaces the logits of any earlier pass, and ends a pending backward).
 * Returns SLM_OK; SLM_EINVAL (NULL model, tokens or weights, T <= 0),
 * SLM_ERANGE (layer outside [-1, n_layer), T > n_positions, a token outside
 * [0, vocab_size)) with nothing written; SLM_ENOMEM.
 */
SLM_API int slm_model_attention_weights(slm_model *m, const int32_t *tokens, int T, int layer,
                                        float *weights, char *err, size_t errlen);

/*
 * The hidden activations of one block's position-wise feed-forward network
 * for tokens [T], from one inference forward pass:
 *   act[t][u] = activation(LayerNorm_2(x_t)·W_fc + b_fc)[u],  u < 4·n_embd
 * (GELU or ReLU as configured), for `layer` in [0, n_layer). Row t depends
 * on position t's own vector only: the FFN never mixes positions.
 * Like slm_model_attention_weights it replaces the logits of an earlier pass.
 * Returns SLM_OK; SLM_EINVAL (NULL model, tokens or act, T <= 0),
 * SLM_ERANGE (layer out of range, T > n_positions, a token outside the
 * vocabulary) with nothing written; SLM_ENOMEM.
 */
SLM_API int slm_model_ffn_activations(slm_model *m, const int32_t *tokens, int T, int layer,
                                      float *act, char *err, size_t errlen);

/* Turns logits into a token: temperature (0 = greedy argmax), then top-k
 * (0 = off), then top-p nucleus (1 = off), then a draw from the sampler's own
 * seeded stream. Scratch memory is allocated once at creation. */
typedef struct slm_sampler slm_sampler;
SLM_API int slm_sampler_create(int vocab_size, float temperature, int top_k, float top_p, uint64_t seed,
                       slm_sampler **out, char *err, size_t errlen);
SLM_API void slm_sampler_free(slm_sampler *s);
/* Samples one id from logits [vocab_size]; logits are not modified. */
SLM_API int32_t slm_sampler_next(slm_sampler *s, const float *logits);

/* ==== tokenizer (src/tokenizer) ======================================== */

/* Text ↔ token ids.
 *   SLM_TOKENIZER_BYTE: token i is byte i (0..255).
 *   SLM_TOKENIZER_GPT2: byte-level BPE from vocab.json + merges.txt in a model
 *     directory with GPT-2's pre-tokenizer regex; the ids of tiktoken
 *     r50k_base (Unicode 16.0 character classes, as tiktoken 0.14).
 * Text is plain bytes: "<|endoftext|>" in input is not parsed as a special
 * token, and any bytes (invalid UTF-8 too) encode and decode back exactly:
 * decode(encode(x)) == x.
 * A tokenizer is immutable once loaded: encode and decode keep their working
 * memory per call, so one tokenizer may be used from many threads at once. */
typedef struct slm_tokenizer slm_tokenizer;

/* dir holds vocab.json + merges.txt (ignored for SLM_TOKENIZER_BYTE, may be
 * NULL). vocab_size is the model's: at least the tokenizer's own size (256,
 * or the number of entries in vocab.json); ids from there up to vocab_size
 * are padding that decodes to nothing. vocab_size <= 0 means the tokenizer's
 * own size. Returns SLM_OK, SLM_EINVAL (kind, NULL out, vocab_size too
 * small), SLM_EIO (a file is missing or unreadable), SLM_EFORMAT (a file is
 * malformed; the message says "path:line:column: what"), SLM_ENOMEM. */
SLM_API int slm_tokenizer_load(int kind, const char *dir, int vocab_size, slm_tokenizer **out,
                       char *err, size_t errlen);
SLM_API void slm_tokenizer_free(slm_tokenizer *t);

/* Encodes len bytes (any bytes) into a malloc'd array *ids of *n_ids
 * entries (free with free(); never NULL on success, even for len 0).
 * SLM_EINVAL (NULL argument), SLM_ENOMEM, SLM_ERANGE (a single pre-token of
 * 2^31 bytes or more). */
SLM_API int slm_tokenizer_encode(const slm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n_ids, char *err, size_t errlen);
/* The bytes of one token: *bytes (not NUL-terminated) and *len (0 for
 * padding ids). SLM_OK, or SLM_ERANGE if id is outside [0, vocab_size) and
 * SLM_EINVAL for a NULL argument, with *len = 0. */
SLM_API int slm_tokenizer_token_bytes(const slm_tokenizer *t, int32_t id, const char **bytes,
                                      size_t *len);
/* Decodes ids into a malloc'd, NUL-terminated buffer *text of *len bytes
 * (the NUL not counted). SLM_ERANGE with nothing written if an id is
 * outside [0, vocab_size); SLM_EINVAL, SLM_ENOMEM. */
SLM_API int slm_tokenizer_decode(const slm_tokenizer *t, const int32_t *ids, size_t n_ids, char **text,
                         size_t *len, char *err, size_t errlen);
/* The id of <|endoftext|> (50256 for GPT-2), or -1 if there is none (always
 * -1 for SLM_TOKENIZER_BYTE). Encoding never produces it. */
SLM_API int32_t slm_tokenizer_eot(const slm_tokenizer *t);
/* The vocab_size given to (or chosen by) slm_tokenizer_load. */
SLM_API int slm_tokenizer_vocab_size(const slm_tokenizer *t);
/* SLM_TOKENIZER_BYTE or SLM_TOKENIZER_GPT2. */
SLM_API int slm_tokenizer_kind(const slm_tokenizer *t);

/* ==== files (src/io) =================================================== */

/* Every reader validates before it uses anything: sizes, offsets, dtypes,
 * shapes, exact lengths. Bad files give SLM_EFORMAT with a one-line message
 * naming the file and the problem; nothing crashes and nothing huge is
 * allocated on a file's say-so. Every writer is atomic: a temporary file in
 * the same directory, fsync, rename over the target, fsync of the directory;
 * on failure the target is untouched and the temporary file removed. */

/* ---- model directory (src/io/model_dir.c, config.c) --------------------- */

/* slm_model_load / slm_model_save (declared above) read and write
 *   DIR/config.json        GPT2Config fields (see slm_config_load)
 *   DIR/model.safetensors  F32/F16/BF16 on load (an optional "transformer."
 *                          prefix; "*.attn.bias", "*.attn.masked_bias" and a
 *                          tied "lm_head.weight" are ignored), F32 on save
 *                          with the names GPT2LMHeadModel.save_pretrained uses.
 * Load errors: SLM_EIO (missing/unreadable file), SLM_EFORMAT (malformed
 * file; a missing, extra or wrongly shaped tensor, each named with the
 * expected and found shape), SLM_EUNSUPPORTED (an lm_head.weight that
 * differs from wte.weight, a GPT-2 variant we do not implement), SLM_EINVAL /
 * SLM_ERANGE (config sizes), SLM_ENOMEM (the parameters do not fit in the
 * available memory: refused before allocating).
 * Save errors: SLM_EIO ("output directory 'x' is a file", "cannot write to
 * 'x': <reason>"). */

/* Counts the parameters of m that are NaN or infinite; with any, writes a
 * one-line report into msg (may be NULL): "3 non-finite values (NaN or inf)
 * in 1 tensor, first 'h.0.ln_1.weight'", else msg[0] = '\0'. Loading accepts
 * such weights (they are the file's); callers decide whether to warn. */
SLM_API size_t slm_model_count_nonfinite(const slm_model *m, char *msg, size_t msglen);

/* Reads config.json (path to the file). model_type must be "gpt2";
 * n_layer, n_head, n_embd, n_positions, vocab_size are required positive
 * integers; layer_norm_epsilon (default 1e-5); activation_function
 * "gelu_new" (default; "gelu_pytorch_tanh" is the same) or "relu";
 * tie_word_embeddings must be true if present; "slm_tokenizer" "byte" or
 * "gpt2" (default); dropout from resid_pdrop (default 0.1). Keys that would
 * change the architecture (n_inner ≠ 4·n_embd, scale_attn_weights false,
 * scale_attn_by_inverse_layer_idx, add_cross_attention) give
 * SLM_EUNSUPPORTED; other unknown keys are ignored. The result is checked
 * with slm_config_validate. */
SLM_API int slm_config_load(const char *path, slm_config *cfg, char *err, size_t errlen);
/* Writes cfg as a config.json that transformers' GPT2Config reads. */
SLM_API int slm_config_save(const slm_config *cfg, const char *path, char *err, size_t errlen);

/* ---- safetensors (src/io/safetensors.c) ---------------------------------- */

/* Element types of the safetensors format. Only the float types convert
 * (F16 and BF16 to F32, exactly, subnormals, inf and NaN included). */
enum {
    SLM_DTYPE_F32, SLM_DTYPE_F16, SLM_DTYPE_BF16, SLM_DTYPE_F64,
    SLM_DTYPE_I64, SLM_DTYPE_I32, SLM_DTYPE_I16, SLM_DTYPE_I8,
    SLM_DTYPE_U64, SLM_DTYPE_U32, SLM_DTYPE_U16, SLM_DTYPE_U8,
    SLM_DTYPE_BOOL, SLM_DTYPE_F8_E4M3, SLM_DTYPE_F8_E5M2,
    SLM_DTYPE_COUNT
};
/* "F32", "BF16", ... (NULL for an unknown dtype) and bytes per element (0). */
SLM_API const char *slm_dtype_name(int dtype);
SLM_API size_t slm_dtype_size(int dtype);

#define SLM_SAFETENSORS_MAX_DIMS 8
/* Header limits (the Python library's): longer headers are refused. */
#define SLM_SAFETENSORS_MAX_HEADER 100000000

typedef struct {
    const char *name;
    int dtype;  /* SLM_DTYPE_*                                                */
    int ndim;   /* 0 (a scalar) .. SLM_SAFETENSORS_MAX_DIMS                   */
    int64_t shape[SLM_SAFETENSORS_MAX_DIMS];
    size_t numel;  /* product of the shape (1 for a scalar)                   */
    size_t nbytes; /* numel · slm_dtype_size(dtype)                           */
} slm_safetensors_tensor;

/* An opened, fully validated file: 8-byte little-endian header length N
 * (≤ SLM_SAFETENSORS_MAX_HEADER, 8 + N ≤ file size), a JSON object header,
 * every tensor's dtype known, shape non-negative without overflow,
 * data_offsets [begin, end] with end − begin = nbytes exactly, tensors that
 * do not overlap and cover the data section exactly (no gap, nothing
 * trailing), unique names, "__metadata__" a string → string map. Tensor data
 * is read on demand (pread), so opening costs only the header. */
typedef struct slm_safetensors slm_safetensors;

SLM_API int slm_safetensors_open(const char *path, slm_safetensors **out, char *err, size_t errlen);
SLM_API void slm_safetensors_close(slm_safetensors *f);
/* Tensors in header order; NULL outside [0, count). */
SLM_API int slm_safetensors_count(const slm_safetensors *f);
SLM_API const slm_safetensors_tensor *slm_safetensors_tensor_at(const slm_safetensors *f, int i);
/* By name (binary search), NULL if absent. */
SLM_API const slm_safetensors_tensor *slm_safetensors_find(const slm_safetensors *f, const char *name);
/* The "__metadata__" value of key, NULL if absent. */
SLM_API const char *slm_safetensors_metadata(const slm_safetensors *f, const char *key);
/* Reads elements [start, start + count) of t into out as `dtype`: the file's
 * own dtype (raw little-endian copy) or SLM_DTYPE_F32 from F32/F16/BF16.
 * SLM_EINVAL for another conversion or a range past numel; SLM_EIO if the
 * file changed under us. */
SLM_API int slm_safetensors_read(const slm_safetensors *f, const slm_safetensors_tensor *t, int dtype,
                         size_t start, size_t count, void *out, char *err, size_t errlen);

/* One tensor to write: data holds numel elements of dtype, little-endian. */
typedef struct {
    const char *name;
    int dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
} slm_safetensors_entry;

/* Writes n tensors in the given order and metadata (n_meta key/value pairs:
 * meta[2i] → meta[2i+1]; may be NULL), header padded with spaces to 8 bytes
 * as the Python library does, atomically. Names must be unique, non-empty
 * and not "__metadata__"; SLM_EINVAL otherwise, nothing written. */
SLM_API int slm_safetensors_save(const char *path, const slm_safetensors_entry *tensors, int n,
                         const char *const *meta, int n_meta, char *err, size_t errlen);

/* ---- token files (src/io/token_file.c) ----------------------------------- */

/* The cache of a tokenized corpus: a 64-byte header (magic "SLMTOK1\0",
 * version, bytes per id 2 or 4, count, vocab_size, tokenizer, the source's
 * size and 64-bit content hash, a checksum of the ids) followed by the ids,
 * little-endian. A stale cache (the source changed, another tokenizer or
 * vocabulary) is detected by comparing slm_token_meta. */
typedef struct {
    int tokenizer;        /* SLM_TOKENIZER_* that produced the ids              */
    int vocab_size;       /* every id is < vocab_size                           */
    uint64_t source_size; /* bytes of the text the ids came from                */
    uint64_t source_hash; /* slm_hash64 of those bytes                          */
} slm_token_meta;

/* A 64-bit hash of len bytes (not cryptographic; for staleness checks). */
SLM_API uint64_t slm_hash64(const void *data, size_t len);
/* Writes ids (each in [0, meta->vocab_size)) atomically; 2-byte ids when
 * vocab_size ≤ 65536, else 4-byte. SLM_EINVAL for an id out of range. */
SLM_API int slm_token_file_write(const char *path, const int32_t *ids, size_t n,
                         const slm_token_meta *meta, char *err, size_t errlen);
/* Reads a token file into a malloc'd *ids (free with free()) of *n ids and
 * its *meta (may be NULL). Validates magic, version, id width, that the file
 * length is exactly header + count · width, the checksum, and every id <
 * vocab_size. SLM_EIO (unreadable), SLM_EFORMAT (anything else). Callers
 * compare *meta with the source's to decide whether the cache is stale. */
SLM_API int slm_token_file_read(const char *path, int32_t **ids, size_t *n, slm_token_meta *meta,
                        char *err, size_t errlen);

/* ==== training (src/train) ============================================= */

/* A training run through the library (`slm train` is a thin user of it):
 *
 *   slm_corpus    text → tokens (or the token cache) → train/validation split
 *   slm_corpus_batch   windows of a (global) batch, or one shard of it
 *   slm_trainer   steps: micro-batches of forward + backward, an optional
 *                 gradient sum across processes, AdamW at the scheduled rate;
 *                 validation by slm_model_eval's rule; checkpoints; progress
 *   slm_checkpoint     DIR/training_state.safetensors: resume exactly
 *
 * The library installs no signal handlers: to stop on Ctrl-C the caller sets
 * a flag in its own handler and returns it from should_stop (slm_train_opts).
 * A run is deterministic: the same model, corpus and options give the same
 * parameters bit for bit, and a run stopped and resumed from a checkpoint
 * ends exactly where the uninterrupted run does. */

/* ---- corpus (src/train/corpus.c) ------------------------------------------ */

typedef struct slm_corpus slm_corpus;

enum { SLM_SPLIT_TRAIN = 0, SLM_SPLIT_VAL = 1 };

typedef struct {
    int context;         /* T: the windows' length; each split needs T+1     */
    double val_fraction; /* share of the tokens held out at the end, in
                            [0, 1); at least T+1 tokens when > 0; 0 = no
                            validation split (training reports none)        */
    const char *cache_path; /* optional token cache (slm_token_file_*): used
                               instead of tokenizing when its header matches
                               the text and tokenizer; NULL = none           */
} slm_corpus_opts;

/* Tokenizes text[0..len) with tok (or reads opts->cache_path when current)
 * and splits off the validation tail. SLM_EINVAL (empty text, bad options),
 * SLM_ERANGE ("the data has N tokens; a context of T needs at least M (...)"),
 * SLM_ENOMEM, each with a message. */
SLM_API int slm_corpus_create(const slm_tokenizer *tok, const char *text, size_t len,
                              const slm_corpus_opts *opts, slm_corpus **out, char *err,
                              size_t errlen);
/* A corpus of ready token ids (copied; each < vocab_size). Its hash is
 * slm_hash64 of the ids' bytes. */
SLM_API int slm_corpus_from_tokens(const int32_t *ids, size_t n, int vocab_size,
                                   const slm_corpus_opts *opts, slm_corpus **out, char *err,
                                   size_t errlen);
SLM_API void slm_corpus_free(slm_corpus *c);
/* Writes the token cache to path unless slm_corpus_create read it from
 * there (atomically; see slm_token_file_write). */
SLM_API int slm_corpus_save_cache(const slm_corpus *c, const char *path, char *err,
                                  size_t errlen);
/* 64-bit hash of the data (slm_hash64 of the text): checkpoints record it so
 * a resumed run refuses other data, and data-parallel ranks compare it. */
SLM_API uint64_t slm_corpus_hash(const slm_corpus *c);
/* The vocabulary the ids come from (every id is below it). */
SLM_API int slm_corpus_vocab_size(const slm_corpus *c);
/* The ids of a split (SLM_SPLIT_TRAIN or SLM_SPLIT_VAL) and their count
 * (0 and NULL for an absent validation split). */
SLM_API const int32_t *slm_corpus_tokens(const slm_corpus *c, int split, size_t *n);

/* Which windows a batch holds. Window starts are a pure function of
 * (seed, step, micro): every process, and a resumed run, draws the same. */
typedef struct {
    int batch;      /* B: windows in the whole (global) micro-batch          */
    int context;    /* T: fewer than the training split's tokens             */
    uint64_t seed;
    int shard;      /* this process fills rows [shard·B/n_shards,           */
    int n_shards;   /*   (shard+1)·B/n_shards) of it; 0 or 1 = all B rows;
                       B % n_shards must be 0                               */
} slm_batch_opts;

/* Fills inputs and targets [B/n_shards][T] with micro-batch `micro` of
 * `step` (1-based) of the training split: the rows of this shard, exactly
 * the windows one process with n_shards = 1 puts there. SLM_EINVAL (bad
 * options or shard) with a message. */
SLM_API int slm_corpus_batch(const slm_corpus *c, const slm_batch_opts *o, int step, int micro,
                             int32_t *inputs, int32_t *targets, char *err, size_t errlen);

/* ---- trainer (src/train/trainer.c) ---------------------------------------- */

/* What the progress callback sees after each optimizer step. */
typedef struct {
    int step;            /* the step just taken (1-based)                    */
    int steps;           /* the run's length (the schedule's)                */
    int end_step;        /* where this invocation stops (stop_after or steps) */
    int first_step;      /* the step this invocation started after (resume)  */
    float loss;          /* mean training loss of the step (all shards)      */
    float lr;            /* learning rate used                               */
    float grad_norm;     /* global gradient norm before clipping             */
    double tokens_per_s; /* this process's tokens / wall time of the step    */
    double val_loss;     /* validation loss if evaluated at this step, else
                            NaN (also NaN without a validation split)       */
    int evaluated;       /* 1 if val_loss was computed at this step          */
    int checkpointed;    /* 1 if a checkpoint of this step was written       */
} slm_train_progress;

typedef struct {
    /* -- the run: saved in checkpoints, restored by slm_checkpoint_load -- */
    int batch;           /* B: windows per micro-batch, all shards (16)      */
    int context;         /* T: tokens per window; 0 = the model's n_positions */
    int grad_accum;      /* micro-batches per step (1)                       */
    int steps;           /* length of the run; the schedule spans it (1000)  */
    int warmup;          /* linear warmup steps; < 0 = steps/20 (-1)         */
    double lr;           /* peak learning rate (1e-3)                        */
    double weight_decay; /* AdamW decoupled decay on matrices (0.1)          */
    double grad_clip;    /* global gradient-norm clip; 0 = off (1)           */
    double val_fraction; /* recorded for resume; the corpus applies it (0.1) */
    uint64_t seed;       /* batches and dropout (1337); the caller seeds the
                            model's initialisation (slm_model_create)        */
    int eval_every;      /* validation every N steps; 0 = only at the end (100) */
    int eval_batches;    /* at most this many batches of validation windows (8) */
    int save_every;      /* checkpoint every N steps; 0 = only at the end (250) */
    int dtype;           /* SLM_DTYPE_F32 (default) or SLM_DTYPE_BF16: the
                            GEMMs of every training forward and backward
                            take bf16 inputs with fp32 accumulation where
                            this CPU runs them faster, else fp32 GEMMs with
                            activations stored in bf16 (slm_forward_opts).
                            Master weights, AdamW moments, checkpoints and
                            validation stay fp32.                         */
    const char *const *data; /* names of the data sources, recorded in the  */
    int n_data;              /*   checkpoint for resuming (may be NULL, 0)   */

    /* -- this invocation ---------------------------------------------------- */
    const char *out_dir; /* checkpoints and log.jsonl go here; NULL = none   */
    int stop_after;      /* end after this step (with a checkpoint); 0 = steps */
    int is_writer;       /* 1: this process writes checkpoints and log.jsonl
                            (data parallelism: rank 0 only) (1)             */
    int shard, n_shards; /* this process's share of every batch (0, 1)       */

    /* Optional: sums data over all processes in place (MPI_Allreduce with
     * MPI_SUM). Called with the step's gradients between the last backward
     * and AdamW (n = slm_model_num_params), and with the step's loss (n = 1).
     * Each process's gradients and loss are already scaled by 1/n_shards, so
     * the sums are the global batch's mean loss and its gradient. Every
     * process then takes the same AdamW step. Not called when n_shards <= 1.
     * Nonzero = error (the step fails with SLM_EIO). */
    int (*reduce_sum)(void *ctx, float *data, size_t n);
    void *reduce_ctx;
    /* Optional: called after each step (on every process that sets it;
     * data parallelism: rank 0). Nonzero asks the run to stop after it. */
    int (*on_progress)(void *ctx, const slm_train_progress *p);
    /* Optional: polled before each step and each micro-batch; nonzero stops
     * the run cleanly (a checkpoint of the last whole step is written). All
     * processes of a data-parallel run must agree. */
    int (*should_stop)(void *ctx);
    void *callback_ctx;  /* passed to on_progress and should_stop            */
} slm_train_opts;

/* Fills o with the defaults shown above (out_dir NULL, no callbacks). */
SLM_API void slm_train_opts_default(slm_train_opts *o);

typedef struct slm_trainer slm_trainer;

/* A trainer of m on c's training split, continuing after step start_step
 * (0 for a new run; a checkpoint's step to resume). m, c and the strings
 * and callbacks in o must outlive the trainer; m should be fresh from
 * slm_model_create or from slm_checkpoint_load (its AdamW moments). The
 * dropout probability is m's config. SLM_EINVAL (options: sizes, batch %
 * n_shards, context > n_positions or the corpus's, start_step >= steps, the
 * corpus's vocab larger than the model's) with a message, SLM_ENOMEM. */
SLM_API int slm_trainer_create(slm_model *m, const slm_corpus *c, const slm_train_opts *o,
                               int start_step, slm_trainer **out, char *err, size_t errlen);
SLM_API void slm_trainer_free(slm_trainer *t);
/* The last step taken (start_step before the first). */
SLM_API int slm_trainer_step_count(const slm_trainer *t);

/* One optimizer step: grad_accum micro-batches of forward + backward on this
 * shard's rows, reduce_sum, AdamW at slm_lr_schedule(lr, step, warmup,
 * steps). Fills p (may be NULL; no validation). SLM_ENUMERIC if the loss,
 * the gradient or the weights became non-finite (the parameters are then
 * not to be saved); SLM_EINTERRUPTED if should_stop said so between
 * micro-batches (the step is not taken); else as slm_model_forward. */
SLM_API int slm_trainer_step(slm_trainer *t, slm_train_progress *p, char *err, size_t errlen);
/* Validation loss of the model now: slm_model_eval over the first
 * eval_batches·batch windows of the validation split (NaN without one). */
SLM_API int slm_trainer_evaluate(slm_trainer *t, double *val_loss, char *err, size_t errlen);
/* Writes the checkpoint of the current step into out_dir (if is_writer). */
SLM_API int slm_trainer_save(slm_trainer *t, char *err, size_t errlen);
/* Runs steps until end_step: validation every eval_every steps and at the
 * last step of the run, a log.jsonl line per step and a checkpoint every
 * save_every steps and at the end (when out_dir is set and is_writer), then
 * on_progress. Stopped by should_stop or on_progress, it saves the last
 * whole step and returns SLM_EINTERRUPTED; SLM_OK at end_step; any error
 * leaves the last checkpoint as it was. */
SLM_API int slm_trainer_run(slm_trainer *t, char *err, size_t errlen);

/* ---- checkpoints (src/train/checkpoint.c) --------------------------------- */

/* DIR/training_state.safetensors is a whole checkpoint in one atomically
 * replaced file: parameters, AdamW moments, the step, the run's options, the
 * model's config and the data's hash. DIR/config.json + model.safetensors
 * (for other tools) are written after it, so a crash leaves a complete state
 * at worst one step off the model files (slm_checkpoint_sync_model). */
typedef struct {
    slm_train_opts opts; /* the run's options (data names point into storage;
                            the invocation's fields are defaults)           */
    slm_model *model;    /* the model of `step` with its AdamW moments; take
                            it by setting this to NULL before freeing       */
    int step;            /* steps taken                                      */
    uint64_t data_hash;  /* slm_corpus_hash of the run's data                */
    void *storage;       /* internal                                         */
} slm_checkpoint;

/* Writes DIR/training_state.safetensors, then DIR/config.json and
 * DIR/model.safetensors; DIR must exist (see slm_checkpoint_prepare_dir). */
SLM_API int slm_checkpoint_save(const char *dir, slm_model *m, const slm_train_opts *o,
                                int step, uint64_t data_hash, char *err, size_t errlen);
/* Reads DIR/training_state.safetensors. SLM_EIO, SLM_EFORMAT ("... is not an
 * slm training state"), SLM_ENOMEM with a message; *out is then empty. */
SLM_API int slm_checkpoint_load(const char *dir, slm_checkpoint *out, char *err, size_t errlen);
SLM_API void slm_checkpoint_free(slm_checkpoint *c);
/* Rewrites DIR's config.json + model.safetensors from m unless they already
 * hold exactly m (a run killed between the state and the model files);
 * *rewritten (may be NULL) says whether it did. */
SLM_API int slm_checkpoint_sync_model(const char *dir, slm_model *m, int *rewritten, char *err,
                                      size_t errlen);
/* Creates DIR (and parents), copies vocab.json and merges.txt from
 * tokenizer_dir into it when tokenizer_dir is not NULL (a GPT-2 run: the
 * directory then loads as a model with its tokenizer), and removes the
 * temporary files a killed atomic write left there. */
SLM_API int slm_checkpoint_prepare_dir(const char *dir, const char *tokenizer_dir, char *err,
                                       size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* SLM_H */

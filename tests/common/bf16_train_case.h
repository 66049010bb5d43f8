/* What the two bf16 training tests share (test_train_bf16.c: bf16 GEMMs,
 * test_train_bf16_storage.c: bf16 activation storage; separate binaries
 * because the choice between them is made once per process): a small
 * model, a corpus with structure to learn, trainer options, the loss curves
 * of fp32 and bf16 runs from one start, and the resume check. */
#ifndef SLM_TESTS_BF16_TRAIN_CASE_H
#define SLM_TESTS_BF16_TRAIN_CASE_H

#include "slm.h"

#include <stddef.h>

enum { BTC_V = 48, BTC_CTX = 16, BTC_B = 4 };

/* n_layer `layers`, 2 heads, width 32, context BTC_CTX, vocabulary BTC_V,
 * seed 21; NULL (and a failed check) if creation fails. */
slm_model *btc_model(int layers, int activation, float dropout);
/* n tokens where token i+1 mostly follows token i; 10 % held out. */
slm_corpus *btc_corpus(size_t n);
/* batch BTC_B, warm-up 2, lr 3e-3, no evaluation, no checkpoints. */
slm_train_opts btc_opts(int dtype, int steps);
/* `steps` steps of a 2-layer GELU model at dtype F32 and at BF16 from the
 * same start: the losses fall alike — every step's within 1 % (bf16's
 * per-input 0.4 % compounds through the updates; the worst is printed, with
 * `what`), the fp32 run learns (the loss falls by a quarter), and the
 * curves are not equal (bf16 was used). The first step's losses are
 * returned. */
void btc_check_loss_curves(int steps, const char *what, double *first_f32, double *first_bf16);
/* A dtype bf16 run (dropout p) stopped after step 3 and resumed from its
 * checkpoint ends with the uninterrupted run's files byte for byte; the
 * checkpoint records dtype bf16. */
void btc_check_resume(float dropout);

#endif

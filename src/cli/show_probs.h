/* `slm generate --show-probs K`: the output layer's softmax over the whole
 * vocabulary made visible, one line per generated token: the K most likely
 * next tokens with their probabilities, then the one the sampler picked. */
#ifndef SLM_CLI_SHOW_PROBS_H
#define SLM_CLI_SHOW_PROBS_H

#include "slm.h"

#include <stdio.h>

#define SHOW_PROBS_MAX 50

/* Prints "N: tok p  tok p  ...  → picked (p)" for logits [V] (probabilities
 * of softmax(logits), the model's own distribution before temperature,
 * top-k and top-p). */
void show_probs_line(FILE *f, const slm_tokenizer *tok, const float *logits, int V, int k, int n,
                     int32_t picked);

/* Prints "text: <the generated text>" (decoded, whitespace as is). */
void show_probs_text(FILE *f, const slm_tokenizer *tok, const int32_t *ids, int n);

#endif

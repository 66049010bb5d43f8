/*
 * The small GPT-2 models the training tests build: two heads, LayerNorm
 * epsilon 1e-5, the GPT-2 tokenizer tag. Used by tests/test_train*.c and
 * the shared training cases in tests/common.
 */
#ifndef SLM_TEST_TINY_GPT_H
#define SLM_TEST_TINY_GPT_H

#include "slm.h"

#include <stdint.h>

/* A model of `layers` layers, width `embd` (2 heads), context `positions`,
 * vocabulary `vocab`, activation SLM_ACT_*, dropout p, initialised from
 * seed; NULL (and a failed check) if creation fails. */
slm_model *tiny_gpt(int layers, int embd, int positions, int vocab, int activation, float dropout,
                    uint64_t seed);

#endif

/* The tokenizer object behind the public slm_tokenizer_* API. */
#ifndef SLM_TOKENIZER_TOKENIZER_H
#define SLM_TOKENIZER_TOKENIZER_H

#include "slm.h"
#include "tokenizer/bpe.h"

struct slm_tokenizer {
    int kind;           /* SLM_TOKENIZER_BYTE or SLM_TOKENIZER_GPT2           */
    int32_t vocab_size; /* the model's: ids in [n_tokens, vocab_size) decode
                           to nothing, ids outside [0, vocab_size) are errors */
    int32_t n_tokens;   /* ids that have bytes: 256, or vocab.json's count    */
    bpe_model *bpe;     /* SLM_TOKENIZER_GPT2 only                            */
    uint8_t bytes[256]; /* SLM_TOKENIZER_BYTE: token i is the byte bytes[i]   */
};

/* byte.c */
void byte_tokenizer_init(slm_tokenizer *t);
int byte_encode(const uint8_t *text, size_t len, int32_t **ids, size_t *n_ids, char *err,
                size_t errlen);

#endif

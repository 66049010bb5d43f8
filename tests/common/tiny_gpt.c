#include "tiny_gpt.h"

#include "../test.h"

slm_model *tiny_gpt(int layers, int embd, int positions, int vocab, int activation, float dropout,
                    uint64_t seed)
{
    slm_config cfg = {.n_layer = layers,
                      .n_head = 2,
                      .n_embd = embd,
                      .n_positions = positions,
                      .vocab_size = vocab,
                      .layer_norm_epsilon = 1e-5f,
                      .activation = activation,
                      .tokenizer = SLM_TOKENIZER_GPT2,
                      .dropout = dropout};
    slm_model *m = NULL;
    char err[256];
    CHECK(slm_model_create(&cfg, seed, &m, err, sizeof err) == SLM_OK, "model: %s", err);
    return m;
}

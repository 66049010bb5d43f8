/* The prompt of a figure command (slm attention, slm ffn): its token ids,
 * refused with one message when it is empty or longer than the context. */
#ifndef SLM_CLI_FIGURE_PROMPT_H
#define SLM_CLI_FIGURE_PROMPT_H

#include "slm.h"

/* Encodes prompt into a malloc'd *ids of *T tokens (1 <= T <= n_positions).
 * Returns CLI_OK, or the exit code of the error it printed as "slm: CMD: …"
 * (then *ids is NULL). */
int figure_prompt_ids(const char *cmd, const slm_tokenizer *tok, const char *prompt,
                      int n_positions, int32_t **ids, int *T);

#endif

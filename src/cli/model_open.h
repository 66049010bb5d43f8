/* Loading a model directory and its tokenizer for a subcommand, with the
 * errors turned into "slm: ..." lines. */
#ifndef SLM_CLI_MODEL_OPEN_H
#define SLM_CLI_MODEL_OPEN_H

#include "slm.h"

#include <stdio.h>

/* Loads DIR's model and tokenizer (either out-pointer may be NULL to skip
 * it). Weights with NaN or infinity print a warning, or are an error when
 * refuse_non_finite is set. Returns 0 or CLI_RUNTIME after printing the
 * error. */
int cli_open_model(const char *cmd, const char *dir, int refuse_non_finite, slm_model **model,
                   slm_tokenizer **tok);

/* Only DIR's tokenizer, as config.json names it: model.safetensors is not
 * read, so tokenizing works while the weights are missing or damaged. */
int cli_open_tokenizer(const char *cmd, const char *dir, slm_tokenizer **tok);

/* Reads all of a file ("-" = stdin) into a malloc'd buffer (NUL-terminated,
 * *len bytes). Returns 0 or CLI_RUNTIME after printing the error. */
int cli_read_file(const char *cmd, const char *path, char **data, size_t *len);
/* The same for an open stream (a pipe): `name` is what messages call it. */
int cli_read_stream(const char *cmd, FILE *f, const char *name, char **data, size_t *len);

#endif

/* slm train: the pieces of a training run, shared by its files.
 *   cmd_train.c         flags, --resume, wiring
 *   train_data.c        text → cached tokens → train/val split → batches
 *   train_loop.c        steps, progress bar, evaluation, log.jsonl, Ctrl-C
 *   train_checkpoint.c  model dir + training_state.safetensors, atomically */
#ifndef SLM_CLI_TRAIN_H
#define SLM_CLI_TRAIN_H

#include "cli/options.h"
#include "slm.h"

#include <stddef.h>
#include <stdint.h>

/* Everything that defines a run; saved in the checkpoint so --resume can
 * continue it with the same settings. */
typedef struct {
    cli_string_list data; /* text files ("-" = stdin)                        */
    const char *out;      /* output directory                                */
    int tokenizer;        /* SLM_TOKENIZER_*                                 */
    int layers, heads, dim, context;
    int batch, grad_accum, steps, warmup;
    double lr, weight_decay, dropout, val_fraction, grad_clip;
    uint64_t seed;
    int eval_every, eval_batches, save_every;
    int stop_after; /* 0 = run to --steps                                   */
    int threads;
} train_args;

typedef struct {
    int32_t *tokens; /* all tokens; train = [0, n_train), val = [n_train, n) */
    size_t n, n_train;
    slm_token_meta meta; /* what produced the tokens                       */
    int cache_stale;     /* DIR/train_data.tokens needs rewriting           */
} train_data;

/* Tokenizes the run's data (or reads DIR's cached token file when it matches
 * the sources), then splits off the validation tail. Writes nothing (see
 * train_data_save_cache). 0 or a CLI exit code. */
int train_data_load(const train_args *a, const slm_tokenizer *tok, int vocab_size,
                    uint64_t *source_hash, train_data *d);
/* Writes DIR/train_data.tokens if train_data_load did not find it current. */
int train_data_save_cache(const train_args *a, train_data *d);
void train_data_free(train_data *d);
/* Fills inputs/targets [B][T] with windows for micro-batch `micro` of `step`:
 * offsets are a pure function of (seed, step, micro), so a resumed run draws
 * exactly the windows the uninterrupted run would have. */
void train_data_batch(const train_data *d, const train_args *a, int step, int micro,
                      int32_t *inputs, int32_t *targets);

/* Creates the output directory (and, for gpt2, copies vocab.json and
 * merges.txt into it). */
int train_prepare_dir(const train_args *a, char *err, size_t errlen);
/* The tokenizer of a new run: the bundled GPT-2 vocabulary (or bytes), read
 * before DIR exists so a refused run creates nothing. */
int train_tokenizer_new(const train_args *a, int vocab_size, slm_tokenizer **tok, char *err,
                        size_t errlen);
/* Removes temporary files that a killed checkpoint write left in DIR
 * (".model.safetensors.slm-tmp.XXXXXX" and the like: atomic_clean_temps). */
void train_clean_temps(const char *dir);

/* The model config a run's arguments describe. */
void train_config(const train_args *a, slm_config *c);

/* Writes DIR/training_state.safetensors (parameters, AdamW moments, step,
 * the run's arguments and the data's hash: a complete checkpoint in one
 * atomic file), then DIR/config.json + DIR/model.safetensors for users.
 * 0 or SLM_E* with err filled. */
int train_checkpoint_save(const train_args *a, slm_model *m, int step, uint64_t data_hash,
                          char *err, size_t errlen);
/* A kill between the training state and the model files leaves the latter
 * one checkpoint behind (or missing, at the first checkpoint): rewrites them
 * from m (the state's model) unless they already hold exactly m. */
int train_checkpoint_sync(const train_args *a, slm_model *m, int *rewritten, char *err,
                          size_t errlen);
/* Reads DIR/training_state.safetensors: the run's arguments (strings point
 * into *strings, which the caller frees), its step and data hash, and a
 * model with the parameters and AdamW moments of that step. */
int train_checkpoint_load(const char *dir, train_args *a, char **strings, slm_model **m,
                          int *step, uint64_t *data_hash, char *err, size_t errlen);

/* Runs steps start+1 .. a->steps (or a->stop_after). 0 or a CLI exit code. */
int train_loop(const train_args *a, slm_model *m, const train_data *d, int start,
               uint64_t data_hash);

#endif

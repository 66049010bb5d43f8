/* slm train — train a GPT from scratch on text, or resume a run. */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/train.h"
#include "core/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *help =
    "usage: slm train --data FILE --out DIR [options]\n"
    "       slm train --resume DIR [--steps N] [--stop-after K] [--threads N]\n\n"
    "Trains a GPT from scratch on text files, checkpointing into DIR (a Hugging\n"
    "Face model directory plus training_state.safetensors).\n\n"
    "  --data FILE          training text (repeatable; '-' = stdin)\n"
    "  --out DIR            output directory\n"
    "  --tokenizer KIND     byte (default) or gpt2\n"
    "  --layers N           transformer blocks (default 4)\n"
    "  --heads N            attention heads (default 4)\n"
    "  --dim N              model width, a multiple of --heads (default 128)\n"
    "  --context N          tokens per window, n_positions (default 128)\n"
    "  --batch N            windows per micro-batch (default 16)\n"
    "  --grad-accum N       micro-batches per step (default 1)\n"
    "  --steps N            length of the whole run; the LR schedule spans it (default 1000)\n"
    "  --lr F               peak learning rate (default 1e-3)\n"
    "  --warmup N           linear warmup steps (default: steps/20)\n"
    "  --weight-decay F     AdamW decoupled weight decay on matrices (default 0.1)\n"
    "  --grad-clip F        clip the global gradient norm (default 1; 0 = off)\n"
    "  --dropout F          dropout in training (default 0)\n"
    "  --seed N             seed of initialisation, batches and dropout (default 1337)\n"
    "  --eval-every N       validation loss every N steps (default 100; 0 = only at the end)\n"
    "  --eval-batches N     validation batches per evaluation (default 8)\n"
    "  --save-every N       checkpoint every N steps (default 250; always at the end)\n"
    "  --val-fraction F     share of the data held out for validation (default 0.1)\n"
    "  --stop-after K       end this invocation after step K with a checkpoint\n"
    "  --resume DIR         continue the run saved in DIR\n"
    "  --force              start a new run in a DIR that already holds a model\n"
    "  --threads N          threads (default: all cores)\n\n"
    "Ctrl-C saves a checkpoint and exits; --resume continues exactly where it stopped.\n";

static void defaults(train_args *a)
{
    memset(a, 0, sizeof *a);
    a->tokenizer = SLM_TOKENIZER_BYTE;
    a->layers = 4;
    a->heads = 4;
    a->dim = 128;
    a->context = 128;
    a->batch = 16;
    a->grad_accum = 1;
    a->steps = 1000;
    a->warmup = -1;
    a->lr = 1e-3;
    a->weight_decay = 0.1;
    a->grad_clip = 1.0;
    a->val_fraction = 0.1;
    a->seed = 1337;
    a->eval_every = 100;
    a->eval_batches = 8;
    a->save_every = 250;
}

static int parse_tokenizer(const char *s, int *kind)
{
    if (!strcmp(s, "byte")) *kind = SLM_TOKENIZER_BYTE;
    else if (!strcmp(s, "gpt2")) *kind = SLM_TOKENIZER_GPT2;
    else return cli_error(CLI_USAGE, "train: --tokenizer must be 'byte' or 'gpt2', got '%s'", s);
    return 0;
}

/* Bytes a run holds at once: parameters, gradients and the two AdamW moments
 * (4 floats per parameter) plus the activations of one micro-batch, counted
 * as src/model/train_state.c lays them out (per row: 16C + H + 4 floats per
 * layer, and 12C + V + 4 outside the layers; rounded up here). */
static double train_memory_bytes(const slm_config *c, const train_args *a, int resumed)
{
    double C = c->n_embd, L = c->n_layer, N = (double)a->batch * a->context;
    double P = (double)c->vocab_size * C + (double)c->n_positions * C +
               L * (12.0 * C * C + 13.0 * C) + 2.0 * C;
    double act = N * (L * (17.0 * C + 6.0 + c->n_head) + c->vocab_size + 12.0 * C + 6.0);
    /* A resumed run holds its parameters and moments already. */
    return 4.0 * ((resumed ? 1.0 : 4.0) * P + act);
}

static int check_train_memory(const train_args *a, const slm_config *c, int resumed)
{
    char err[512], what[160];
    snprintf(what, sizeof what,
             "training this model (%d layer%s, width %d; batch %d × context %d)", c->n_layer,
             c->n_layer == 1 ? "" : "s", c->n_embd, a->batch, a->context);
    if (check_memory(train_memory_bytes(c, a, resumed), what, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s%s", err,
                         resumed ? "" : " (use a smaller --dim, --layers, --batch or --context)");
    return 0;
}

/* A new run: everything that can be refused (flags, memory, data) is checked
 * before DIR is created, so a refused run leaves no trace. */
static int start_run(train_args *a, int force, slm_model **m, slm_tokenizer **tok,
                     train_data *d, uint64_t *data_hash)
{
    char err[512];
    slm_config c;
    train_config(a, &c);
    if (slm_config_validate(&c, err, sizeof err)) return cli_error(CLI_USAGE, "train: %s", err);
    struct stat st;
    if (stat(a->out, &st) == 0 && !S_ISDIR(st.st_mode))
        return cli_error(CLI_RUNTIME, "train: output directory '%s' is a file", a->out);
    /* A new run never overwrites a model someone trained: it must be resumed
     * or removed on purpose. */
    const char *kept[] = {"training_state.safetensors", "model.safetensors"};
    for (int i = 0; i < 2 && !force; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", a->out, kept[i]);
        if (stat(path, &st) == 0)
            return cli_error(CLI_USAGE,
                             "train: '%s' already holds a model; continue it with --resume %s, "
                             "or pass --force to start over",
                             a->out, a->out);
    }
    int rc = check_train_memory(a, &c, 0);
    if (rc) return rc;
    if (train_tokenizer_new(a, c.vocab_size, tok, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    if ((rc = train_data_load(a, *tok, c.vocab_size, data_hash, d))) return rc;
    if (slm_model_create(&c, a->seed, m, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "train: %s", err);
    } else if (train_prepare_dir(a, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "train: %s", err);
    } else {
        train_clean_temps(a->out);
        rc = train_data_save_cache(a, d);
    }
    if (rc) {
        train_data_free(d);
        slm_model_free(*m);
        *m = NULL;
    }
    return rc;
}

/* Continuing DIR's run: the checkpoint, its vocabulary, the same data. */
static int resume_run(const char *dir, train_args *a, int steps_given, int stop_given,
                      slm_model **m, slm_tokenizer **tok, train_data *d, char **strings,
                      int *start, uint64_t *data_hash, int *finished)
{
    int rewritten = 0;
    char err[512];
    train_args saved;
    uint64_t saved_hash = 0;
    if (train_checkpoint_load(dir, &saved, strings, m, start, &saved_hash, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: cannot resume from '%s': %s", dir, err);
    /* The temporary files of a killed write are ours and of no use. */
    train_clean_temps(dir);
    if (steps_given) saved.steps = a->steps;
    saved.stop_after = stop_given ? a->stop_after : 0;
    saved.threads = a->threads;
    *a = saved;
    const slm_config *c = slm_model_config(*m);
    int rc = 0;
    if (*start >= a->steps) {
        if (train_checkpoint_sync(a, *m, &rewritten, err, sizeof err))
            return cli_error(CLI_RUNTIME, "train: %s", err);
        if (!rewritten)
            return cli_error(CLI_USAGE,
                             "train: '%s' already finished step %d of %d (raise --steps)", dir,
                             *start, a->steps);
        fprintf(stderr, "slm: train: '%s' finished step %d of %d; its model files lagged behind "
                        "the training state and are rewritten\n", dir, *start, a->steps);
        *finished = 1;
        return 0;
    }
    /* The parameters and moments are loaded; gradients and activations come. */
    if ((rc = check_train_memory(a, c, 1))) return rc;
    if (slm_tokenizer_load(c->tokenizer, a->out, c->vocab_size, tok, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    if ((rc = train_data_load(a, *tok, c->vocab_size, data_hash, d))) return rc;
    if (*data_hash != saved_hash)
        rc = cli_error(CLI_RUNTIME, "train: the training data changed since '%s' was saved; "
                                    "resuming would not continue the same run", dir);
    if (!rc) rc = train_data_save_cache(a, d);
    if (!rc && train_checkpoint_sync(a, *m, &rewritten, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "train: %s", err);
    if (rc) train_data_free(d);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    defaults(&a);
    const char *resume = NULL, *tokenizer = NULL;
    int steps_given = 0, stop_given = 0, threads_given = 0, other_given = 0, force = 0;
    const cli_option opts[] = {
        {"--data", NULL, OPT_STRING_LIST, &a.data, 0, 0, &other_given},
        {"--out", NULL, OPT_STRING, &a.out, 0, 0, &other_given},
        {"--tokenizer", NULL, OPT_STRING, &tokenizer, 0, 0, &other_given},
        {"--layers", NULL, OPT_INT, &a.layers, 1, 1024, &other_given},
        {"--heads", NULL, OPT_INT, &a.heads, 1, 65536, &other_given},
        {"--dim", NULL, OPT_INT, &a.dim, 1, 65536, &other_given},
        {"--context", NULL, OPT_INT, &a.context, 1, 1 << 20, &other_given},
        {"--batch", NULL, OPT_INT, &a.batch, 1, 1 << 16, &other_given},
        {"--grad-accum", NULL, OPT_INT, &a.grad_accum, 1, 1 << 16, &other_given},
        {"--steps", NULL, OPT_INT, &a.steps, 1, 1 << 30, &steps_given},
        {"--lr", NULL, OPT_FLOAT, &a.lr, 0, 10, &other_given},
        {"--warmup", NULL, OPT_INT, &a.warmup, 0, 1 << 30, &other_given},
        {"--weight-decay", NULL, OPT_FLOAT, &a.weight_decay, 0, 10, &other_given},
        {"--grad-clip", NULL, OPT_FLOAT, &a.grad_clip, 0, 1e9, &other_given},
        {"--dropout", NULL, OPT_FLOAT, &a.dropout, 0, 0.999, &other_given},
        {"--seed", NULL, OPT_U64, &a.seed, 0, 0, &other_given},
        {"--eval-every", NULL, OPT_INT, &a.eval_every, 0, 1 << 30, &other_given},
        {"--eval-batches", NULL, OPT_INT, &a.eval_batches, 1, 1 << 20, &other_given},
        {"--save-every", NULL, OPT_INT, &a.save_every, 0, 1 << 30, &other_given},
        {"--val-fraction", NULL, OPT_FLOAT, &a.val_fraction, 0, 0.9, &other_given},
        {"--stop-after", NULL, OPT_INT, &a.stop_after, 1, 1 << 30, &stop_given},
        {"--resume", NULL, OPT_STRING, &resume, 0, 0, NULL},
        {"--force", NULL, OPT_FLAG, &force, 0, 0, &other_given},
        {"--threads", NULL, OPT_INT, &a.threads, 1, 4096, &threads_given},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("train", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    cli_set_threads(a.threads);

    slm_model *m = NULL;
    slm_tokenizer *tok = NULL;
    char *strings = NULL;
    int start = 0, finished = 0;
    train_data d;
    uint64_t data_hash = 0;
    memset(&d, 0, sizeof d);
    if (resume) {
        if (other_given)
            return cli_error(CLI_USAGE, "train: --resume takes only --steps, --stop-after and "
                                        "--threads (the rest comes from the checkpoint)");
        rc = resume_run(resume, &a, steps_given, stop_given, &m, &tok, &d, &strings, &start,
                        &data_hash, &finished);
    } else {
        if (a.data.n == 0) return cli_error(CLI_USAGE, "train: no training data (--data FILE)");
        if (!a.out) return cli_error(CLI_USAGE, "train: no output directory (--out DIR)");
        if (tokenizer && (rc = parse_tokenizer(tokenizer, &a.tokenizer))) return rc;
        if (a.dim % a.heads)
            return cli_error(CLI_USAGE, "train: --dim (%d) must be a multiple of --heads (%d)",
                             a.dim, a.heads);
        if (a.warmup < 0) a.warmup = a.steps / 20;
        rc = start_run(&a, force, &m, &tok, &d, &data_hash);
    }
    if (!rc && !finished) {
        const slm_config *c = slm_model_config(m);
        fprintf(stderr,
                "slm: train: %d layers, %d heads, width %d, context %d, %.2fM parameters; %zu "
                "training + %zu validation tokens; %s step %d of %d\n",
                c->n_layer, c->n_head, c->n_embd, c->n_positions,
                (double)slm_model_num_params(m) / 1e6, d.n_train, d.n - d.n_train,
                start ? "resuming after" : "starting at", start ? start : 1, a.steps);
        rc = train_loop(&a, m, &d, start, data_hash);
        train_data_free(&d);
    }
    slm_tokenizer_free(tok);
    slm_model_free(m);
    free(strings);
    return rc;
}

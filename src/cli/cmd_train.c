/*
 * slm train — train a GPT from scratch on text, or resume a run: flags,
 * the run's checks (before anything is written), the progress bar and
 * Ctrl-C, over the library's trainer (include/slm.h, src/train).
 *
 * Under mpirun every rank runs this file on its share of each batch
 * (train_mpi.h): all ranks check and load, agree, compare their data, and
 * only then does rank 0 write DIR; rank 0 alone prints and checkpoints.
 */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "cli/train_mpi.h"
#include "core/memory.h"
#include "kernels/kernels.h"
#include "slm.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    "  --dtype fp32|bf16    training precision (default fp32); bf16 rounds the\n"
    "                       linear layers' and LM head's inputs to bfloat16 with fp32\n"
    "                       sums where this CPU runs that faster (measured at start-up),\n"
    "                       else keeps fp32 math and stores the activations backward\n"
    "                       reads in bf16 (half the memory). Weights, moments and\n"
    "                       checkpoints stay fp32.\n"
    "  --eval-every N       validation loss every N steps (default 100; 0 = only at the end)\n"
    "  --eval-batches N     validation batches per evaluation (default 8)\n"
    "  --save-every N       checkpoint every N steps (default 250; always at the end)\n"
    "  --val-fraction F     share of the data held out for validation (default 0.1;\n"
    "                       0 = train on everything, no validation loss)\n"
    "  --stop-after K       end this invocation after step K with a checkpoint\n"
    "  --resume DIR         continue the run saved in DIR\n"
    "  --force              start a new run in a DIR that already holds a model\n"
    "  --threads N          threads (default: all cores)\n\n"
    "Validation scores the last --val-fraction of the tokens as 'slm eval' does\n"
    "(consecutive windows of --context, the last one partial), at most\n"
    "--eval-batches × --batch windows. Ctrl-C saves a checkpoint and exits;\n"
    "--resume continues exactly where it stopped.\n";

/* A new run's model and data; the rest is the library's slm_train_opts. */
typedef struct {
    slm_train_opts o;
    cli_string_list data;
    int tokenizer, layers, heads, dim, context, threads;
    double dropout;
} train_args;

/* Everything a run holds, freed by run_free. */
typedef struct {
    slm_tokenizer *tok;
    slm_corpus *corpus;
    slm_checkpoint ckpt; /* the model (ckpt.model) and, resuming, the options */
    int start;
} run;

static void run_free(run *r)
{
    slm_corpus_free(r->corpus);
    slm_tokenizer_free(r->tok);
    slm_checkpoint_free(&r->ckpt);
}

/* ---- progress and Ctrl-C -------------------------------------------------- */

/* The one piece of process-wide state: set by the SIGINT/SIGTERM handler,
 * read by should_stop (a signal handler can do nothing else safely). */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    int tty;
    double started;
    float last_loss;
    double last_val;
    int last_step;
    train_mpi *w;        /* this rank of the job (rank 0 of 1 alone)       */
    slm_model *m;        /* for the ranks' parameter check                  */
    int save_every;      /* the ranks compare parameters at each checkpoint */
    double tokens_step;  /* this rank's tokens per step                     */
    double step_seconds; /* time in steps (for the MPI summary)             */
} progress;

/* A signal may reach one rank before the other: all stop at the same step
 * (one small allreduce per poll). */
static int should_stop(void *ctx)
{
    progress *g = ctx;
    return train_mpi_any(g->w, stop_requested != 0);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(double s, char *buf, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* One line, redrawn in place on a terminal; every ~5 % as plain lines otherwise. */
static int on_progress(void *ctx, const slm_train_progress *p)
{
    progress *g = ctx;
    g->last_loss = p->loss;
    g->last_step = p->step;
    if (p->evaluated) g->last_val = p->val_loss;
    if (p->tokens_per_s > 0) g->step_seconds += g->tokens_step / p->tokens_per_s;
    /* Every rank applied the same update to the same parameters: checked
     * at each checkpoint (a hash per rank), the job ends if not. */
    if (((g->save_every > 0 && p->step % g->save_every == 0) || p->step == p->end_step) &&
        train_mpi_check_replicas(g->w, g->m, p->step))
        train_mpi_abort(g->w, CLI_RUNTIME);
    if (g->w->rank != 0) return 0;
    double tok_s = p->tokens_per_s * g->w->size; /* the job's */
    int done = p->step - p->first_step, total = p->end_step - p->first_step;
    double eta = done > 0 ? (now_seconds() - g->started) / done * (p->end_step - p->step) : 0.0;
    char eta_s[32], bar[31], val[32] = "";
    format_duration(eta, eta_s, sizeof eta_s);
    int filled = (int)(30.0 * p->step / p->steps);
    for (int i = 0; i < 30; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[30] = '\0';
    if (!isnan(g->last_val)) snprintf(val, sizeof val, " val %.4f", g->last_val);
    int every = total >= 20 ? total / 20 : 1;
    if (g->tty)
        fprintf(stderr, "\rstep %*d/%d [%s] loss %.4f%s | %.1fk tok/s | ETA %s   ",
                (int)snprintf(NULL, 0, "%d", p->steps), p->step, p->steps, bar, p->loss, val,
                tok_s / 1000.0, eta_s);
    else if (done % every == 0 || p->step == p->end_step)
        fprintf(stderr, "step %d/%d loss %.4f%s | %.1fk tok/s | ETA %s\n", p->step, p->steps,
                p->loss, val, tok_s / 1000.0, eta_s);
    fflush(stderr);
    return 0;
}

/* ---- checks before anything is written ------------------------------------ */

/* Bytes a run holds at once: parameters, gradients and the two AdamW moments
 * (4 floats per parameter) plus the activations of one micro-batch, counted
 * as src/model/train_state.c lays them out (per row: 16C + H + 4 floats per
 * layer, and 12C + V + 4 outside the layers; rounded up here). */
static double train_memory_bytes(const slm_config *c, int batch, int resumed)
{
    double C = c->n_embd, L = c->n_layer, N = (double)batch * c->n_positions;
    double P = (double)c->vocab_size * C + (double)c->n_positions * C +
               L * (12.0 * C * C + 13.0 * C) + 2.0 * C;
    double act = N * (L * (17.0 * C + 6.0 + c->n_head) + c->vocab_size + 12.0 * C + 6.0);
    /* A resumed run holds its parameters and moments already. */
    return 4.0 * ((resumed ? 1.0 : 4.0) * P + act);
}

static int check_train_memory(const slm_config *c, int batch, int resumed)
{
    char err[512], what[160];
    snprintf(what, sizeof what,
             "training this model (%d layer%s, width %d; batch %d × context %d)", c->n_layer,
             c->n_layer == 1 ? "" : "s", c->n_embd, batch, c->n_positions);
    if (check_memory(train_memory_bytes(c, batch, resumed), what, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s%s", err,
                         resumed ? "" : " (use a smaller --dim, --layers, --batch or --context)");
    return 0;
}

/* A new run never overwrites a model someone trained: it must be resumed
 * or removed on purpose. */
static int check_out_dir(const char *out, int force)
{
    struct stat st;
    if (stat(out, &st) == 0 && !S_ISDIR(st.st_mode))
        return cli_error(CLI_RUNTIME, "train: output directory '%s' is a file", out);
    const char *kept[] = {"training_state.safetensors", "model.safetensors"};
    for (int i = 0; i < 2 && !force; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out, kept[i]);
        if (stat(path, &st) == 0)
            return cli_error(CLI_USAGE,
                             "train: '%s' already holds a model; continue it with --resume %s, "
                             "or pass --force to start over",
                             out, out);
    }
    return 0;
}

/* The bundled GPT-2 vocabulary: $SLM_DATA_DIR/gpt2, else the checkout's. */
static void gpt2_dir(char *buf, size_t n)
{
    const char *env = getenv("SLM_DATA_DIR");
    snprintf(buf, n, "%s/gpt2", env && *env ? env : SLM_DATA_DIR);
}

/* All data files, concatenated, tokenized (or the cache of DIR) and split. */
static int load_corpus(const char *const *files, int n_files, const char *out, int context,
                       double val_fraction, run *r)
{
    char *all = NULL, err[512];
    size_t n = 0;
    for (int i = 0; i < n_files; i++) {
        char *part;
        size_t part_len;
        int rc = cli_read_file("train", files[i], &part, &part_len);
        if (rc) {
            free(all);
            return rc;
        }
        char *bigger = realloc(all, n + part_len + 1);
        if (!bigger) {
            free(part);
            free(all);
            return cli_error(CLI_RUNTIME, "train: out of memory reading the data");
        }
        all = bigger;
        memcpy(all + n, part, part_len);
        n += part_len;
        all[n] = '\0';
        free(part);
    }
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/train_data.tokens", out);
    slm_corpus_opts co = {context, val_fraction, cache};
    int rc = slm_corpus_create(r->tok, all, n, &co, &r->corpus, err, sizeof err);
    free(all);
    return rc ? cli_error(CLI_RUNTIME, "train: %s", err) : 0;
}

static int save_cache(const char *out, const slm_corpus *c)
{
    char cache[4096], err[512];
    snprintf(cache, sizeof cache, "%s/train_data.tokens", out);
    if (slm_corpus_save_cache(c, cache, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    return 0;
}

/* ---- new run and resume --------------------------------------------------- */

/* Everything that can be refused (flags, memory, data) is checked before
 * DIR is created, so a refused run leaves no trace: this writes nothing
 * (start_write creates DIR once every rank is ready). */
static int start_run(train_args *a, int force, const train_mpi *w, run *r)
{
    char err[512], vocab_dir[4096];
    int rc = train_mpi_check_batch(w, a->o.batch);
    if (!rc) rc = check_out_dir(a->o.out_dir, force);
    if (rc) return rc;
    gpt2_dir(vocab_dir, sizeof vocab_dir);
    if (slm_tokenizer_load(a->tokenizer, vocab_dir, 0, &r->tok, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    /* The vocabulary is the tokenizer's: 256 bytes, or GPT-2's 50257. */
    slm_config c = {a->layers, a->heads, a->dim, a->context, slm_tokenizer_vocab_size(r->tok),
                    1e-5f, SLM_ACT_GELU_NEW, a->tokenizer, (float)a->dropout};
    if (slm_config_validate(&c, err, sizeof err)) return cli_error(CLI_USAGE, "train: %s", err);
    if ((rc = check_train_memory(&c, a->o.batch, 0))) return rc;
    rc = load_corpus(a->data.items, a->data.n, a->o.out_dir, a->context, a->o.val_fraction, r);
    if (rc) return rc;
    if (slm_model_create(&c, a->o.seed, &r->ckpt.model, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    return 0;
}

/* A new run's DIR: created, with the GPT-2 vocabulary and the token cache. */
static int start_write(const train_args *a, const run *r)
{
    char err[512], vocab_dir[4096];
    gpt2_dir(vocab_dir, sizeof vocab_dir);
    if (slm_checkpoint_prepare_dir(a->o.out_dir,
                                   a->tokenizer == SLM_TOKENIZER_GPT2 ? vocab_dir : NULL, err,
                                   sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    return save_cache(a->o.out_dir, r->corpus);
}

/* Continuing DIR's run: the checkpoint, its vocabulary, the same data
 * (resume_write then brings DIR up to date). *finished: the run was
 * complete (rank 0 makes its model files current). */
static int resume_run(const char *dir, train_args *a, int steps_given, int stop_given,
                      const train_mpi *w, run *r, int *finished)
{
    char err[512];
    int rewritten = 0;
    if (slm_checkpoint_load(dir, &r->ckpt, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: cannot resume from '%s': %s", dir, err);
    slm_train_opts *o = &r->ckpt.opts;
    if (steps_given) o->steps = a->o.steps;
    o->stop_after = stop_given ? a->o.stop_after : 0;
    o->out_dir = dir;
    r->start = r->ckpt.step;
    slm_model *m = r->ckpt.model;
    const slm_config *c = slm_model_config(m);
    if (r->start >= o->steps) {
        *finished = w->rank != 0; /* rank 0 says what happened */
        if (w->rank != 0) return 0;
        slm_checkpoint_prepare_dir(dir, NULL, NULL, 0); /* clears a killed write's temp files */
        if (slm_checkpoint_sync_model(dir, m, &rewritten, err, sizeof err))
            return cli_error(CLI_RUNTIME, "train: %s", err);
        if (!rewritten)
            return cli_error(CLI_USAGE, "train: '%s' already finished step %d of %d (raise --steps)",
                             dir, r->start, o->steps);
        fprintf(stderr, "slm: train: '%s' finished step %d of %d; its model files lagged behind "
                        "the training state and are rewritten\n", dir, r->start, o->steps);
        *finished = 1;
        return 0;
    }
    /* The parameters and moments are loaded; gradients and activations come. */
    int rc = train_mpi_check_batch(w, o->batch);
    if (!rc) rc = check_train_memory(c, o->batch, 1);
    if (rc) return rc;
    if (slm_tokenizer_load(c->tokenizer, dir, c->vocab_size, &r->tok, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: %s", err);
    if ((rc = load_corpus(o->data, o->n_data, dir, c->n_positions, o->val_fraction, r))) return rc;
    if (slm_corpus_hash(r->corpus) != r->ckpt.data_hash)
        return cli_error(CLI_RUNTIME, "train: the training data changed since '%s' was saved; "
                                      "resuming would not continue the same run", dir);
    return 0;
}

/* A resumed DIR: no temporary files of a killed write, the token cache,
 * model files as current as the training state. */
static int resume_write(const char *dir, run *r)
{
    char err[512];
    int rewritten = 0;
    slm_checkpoint_prepare_dir(dir, NULL, NULL, 0); /* clears a killed write's temp files */
    int rc = save_cache(dir, r->corpus);
    if (!rc && slm_checkpoint_sync_model(dir, r->ckpt.model, &rewritten, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "train: %s", err);
    return rc;
}

/* Runs the trainer with the progress bar and Ctrl-C; prints the summary.
 * Under MPI, a failure of one rank alone (a checkpoint rank 0 cannot write,
 * a failed gradient sum) ends the whole job (MPI_Abort): the other ranks
 * would otherwise wait for it in the next sum. */
static int train(run *r, const slm_train_opts *opts, train_mpi *w)
{
    char err[512];
    slm_model *m = r->ckpt.model;
    const slm_config *c = slm_model_config(m);
    size_t n_train = 0, n_val = 0;
    slm_corpus_tokens(r->corpus, SLM_SPLIT_TRAIN, &n_train);
    slm_corpus_tokens(r->corpus, SLM_SPLIT_VAL, &n_val);
    if (w->rank == 0)
        fprintf(stderr,
                "slm: train: %d layers, %d heads, width %d, context %d, %.2fM parameters; %zu "
                "training + %zu validation tokens; %s step %d of %d\n",
                c->n_layer, c->n_head, c->n_embd, c->n_positions,
                (double)slm_model_num_params(m) / 1e6, n_train, n_val,
                r->start ? "resuming after" : "starting at", r->start ? r->start : 1,
                opts->steps);
    if (opts->dtype == SLM_DTYPE_BF16 && w->rank == 0)
        fprintf(stderr, "slm: train: dtype bf16: %s%s\n", gemm_bf16_reason(),
                gemm_bf16_enabled() ? "" : "; activations stored in bf16");
    progress g = {isatty(STDERR_FILENO), now_seconds(), NAN, NAN, 0, w, m, opts->save_every,
                  (double)(opts->batch / w->size) * c->n_positions * opts->grad_accum, 0.0};
    slm_train_opts o = *opts;
    train_mpi_configure(w, &o);
    o.on_progress = on_progress;
    o.should_stop = should_stop;
    o.callback_ctx = &g;
    slm_trainer *t = NULL;
    int rc = slm_trainer_create(m, r->corpus, &o, r->start, &t, err, sizeof err);
    if (rc) cli_error(CLI_RUNTIME, "train: %s", err);
    if ((rc = train_mpi_agree(w, rc ? CLI_RUNTIME : 0))) return rc;

    /* Installed for the rest of the command: a Ctrl-C that lands after the
     * last step (while the summary is printed) must not kill a finished run. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    stop_requested = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = slm_trainer_run(t, err, sizeof err);
    int step = slm_trainer_step_count(t);
    slm_trainer_free(t);
    if (g.tty && g.last_step && w->rank == 0) fputc('\n', stderr);

    /* Ranks share every step's loss, gradient and weights: a non-finite one
     * stops them all at the same step, and rank 0 says so. */
    if (rc && rc != SLM_EINTERRUPTED && rc != SLM_ENUMERIC && w->size > 1) {
        cli_error(CLI_RUNTIME, "train: rank %d: %s; stopping the job", w->rank, err);
        train_mpi_abort(w, CLI_RUNTIME);
    }
    if (rc == SLM_ENUMERIC && w->rank != 0) return CLI_RUNTIME;
    if (rc == SLM_ENUMERIC)
        return cli_error(CLI_RUNTIME,
                         "train: %s; stopping (the last checkpoint in %s is kept; try a lower "
                         "--lr%s)",
                         err, o.out_dir, strstr(err, "weights") ? " or --weight-decay" : "");
    if (rc && rc != SLM_EINTERRUPTED) return cli_error(CLI_RUNTIME, "train: %s", err);
    if (w->rank != 0) return 0;
    train_mpi_report(w, o.batch, g.step_seconds);
    if (step > r->start) {
        printf("step %d: train loss %.4f", step, g.last_loss);
        if (!isnan(g.last_val)) printf(", validation loss %.4f", g.last_val);
        printf("; checkpoint in %s\n", o.out_dir);
    }
    if (rc == SLM_EINTERRUPTED)
        fprintf(stderr, "slm: train: interrupted; saved step %d in %s (continue with: slm train "
                        "--resume %s)\n", step, o.out_dir, o.out_dir);
    return 0;
}

static int parse_dtype(const char *s, int *dtype)
{
    if (!strcmp(s, "fp32")) *dtype = SLM_DTYPE_F32;
    else if (!strcmp(s, "bf16")) *dtype = SLM_DTYPE_BF16;
    else return cli_error(CLI_USAGE, "train: --dtype must be 'fp32' or 'bf16', got '%s'", s);
    return 0;
}

static int parse_tokenizer(const char *s, int *kind)
{
    if (!strcmp(s, "byte")) *kind = SLM_TOKENIZER_BYTE;
    else if (!strcmp(s, "gpt2")) *kind = SLM_TOKENIZER_GPT2;
    else return cli_error(CLI_USAGE, "train: --tokenizer must be 'byte' or 'gpt2', got '%s'", s);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_args a = {.tokenizer = SLM_TOKENIZER_BYTE, .layers = 4, .heads = 4, .dim = 128,
                    .context = 128};
    slm_train_opts_default(&a.o);
    const char *resume = NULL, *tokenizer = NULL, *dtype = NULL;
    int steps_given = 0, stop_given = 0, threads_given = 0, other_given = 0, force = 0;
    const cli_option opts[] = {
        {"--data", NULL, OPT_STRING_LIST, &a.data, 0, 0, &other_given},
        {"--out", NULL, OPT_STRING, &a.o.out_dir, 0, 0, &other_given},
        {"--tokenizer", NULL, OPT_STRING, &tokenizer, 0, 0, &other_given},
        {"--layers", NULL, OPT_INT, &a.layers, 1, 1024, &other_given},
        {"--heads", NULL, OPT_INT, &a.heads, 1, 65536, &other_given},
        {"--dim", NULL, OPT_INT, &a.dim, 1, 65536, &other_given},
        {"--context", NULL, OPT_INT, &a.context, 1, 1 << 20, &other_given},
        {"--batch", NULL, OPT_INT, &a.o.batch, 1, 1 << 16, &other_given},
        {"--grad-accum", NULL, OPT_INT, &a.o.grad_accum, 1, 1 << 16, &other_given},
        {"--steps", NULL, OPT_INT, &a.o.steps, 1, 1 << 30, &steps_given},
        {"--lr", NULL, OPT_FLOAT, &a.o.lr, 0, 10, &other_given},
        {"--warmup", NULL, OPT_INT, &a.o.warmup, 0, 1 << 30, &other_given},
        {"--weight-decay", NULL, OPT_FLOAT, &a.o.weight_decay, 0, 10, &other_given},
        {"--grad-clip", NULL, OPT_FLOAT, &a.o.grad_clip, 0, 1e9, &other_given},
        {"--dropout", NULL, OPT_FLOAT, &a.dropout, 0, 0.999, &other_given},
        {"--seed", NULL, OPT_U64, &a.o.seed, 0, 0, &other_given},
        {"--dtype", NULL, OPT_STRING, &dtype, 0, 0, &other_given},
        {"--eval-every", NULL, OPT_INT, &a.o.eval_every, 0, 1 << 30, &other_given},
        {"--eval-batches", NULL, OPT_INT, &a.o.eval_batches, 1, 1 << 20, &other_given},
        {"--save-every", NULL, OPT_INT, &a.o.save_every, 0, 1 << 30, &other_given},
        {"--val-fraction", NULL, OPT_FLOAT, &a.o.val_fraction, 0, 0.9, &other_given},
        {"--stop-after", NULL, OPT_INT, &a.o.stop_after, 1, 1 << 30, &stop_given},
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

    run r;
    memset(&r, 0, sizeof r);
    int finished = 0;
    if (resume) {
        if (other_given)
            return cli_error(CLI_USAGE, "train: --resume takes only --steps, --stop-after and "
                                        "--threads (the rest comes from the checkpoint)");
    } else {
        if (a.data.n == 0) return cli_error(CLI_USAGE, "train: no training data (--data FILE)");
        if (!a.o.out_dir) return cli_error(CLI_USAGE, "train: no output directory (--out DIR)");
        if (tokenizer && (rc = parse_tokenizer(tokenizer, &a.tokenizer))) return rc;
        if (dtype && (rc = parse_dtype(dtype, &a.o.dtype))) return rc;
        if (a.dim % a.heads)
            return cli_error(CLI_USAGE, "train: --dim (%d) must be a multiple of --heads (%d)",
                             a.dim, a.heads);
        if (a.o.warmup < 0) a.o.warmup = a.o.steps / 20;
        a.o.data = a.data.items;
        a.o.n_data = a.data.n;
    }
    train_mpi w;
    if ((rc = train_mpi_init(&w))) return rc;
    rc = resume ? resume_run(resume, &a, steps_given, stop_given, &w, &r, &finished)
                : start_run(&a, force, &w, &r);
    /* Every rank has checked and loaded; DIR is written only when all can
     * go on with the same data. (Each step below is taken by all ranks or
     * by none: rc and finished are the same everywhere after the first.) */
    rc = train_mpi_agree(&w, rc);
    if (!rc && !finished) rc = train_mpi_check_data(&w, slm_corpus_hash(r.corpus));
    if (!rc && !finished) {
        int wrote = 0;
        if (w.rank == 0) wrote = resume ? resume_write(resume, &r) : start_write(&a, &r);
        rc = train_mpi_agree(&w, wrote);
    }
    if (!rc && !finished) rc = train(&r, resume ? &r.ckpt.opts : &a.o, &w);
    run_free(&r);
    train_mpi_finalize(&w);
    return rc;
}

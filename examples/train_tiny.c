/*
 * train_tiny — trains a small GPT from C through include/slm.h alone.
 *
 *   build/examples/train_tiny OUT_DIR [TEXT_FILE]
 *
 * Tokenizes the text (bytes), holds out 10 % for validation, trains a
 * 2-layer model for 40 steps with a progress callback, stops cleanly on
 * Ctrl-C (the library installs no signal handler: we set a flag and hand
 * it back through should_stop), checkpoints into OUT_DIR, then loads the
 * saved model back and scores the held-out text with slm_model_eval.
 * Built against build/libslm.so by `make`, run by `make test`.
 */
#include <slm.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int should_stop(void *ctx)
{
    (void)ctx;
    return interrupted;
}

static int on_progress(void *ctx, const slm_train_progress *p)
{
    (void)ctx;
    if (p->evaluated)
        printf("step %3d/%d  loss %.4f  lr %.2e  val %.4f\n", p->step, p->steps, p->loss, p->lr,
               p->val_loss);
    else if (p->step % 10 == 0)
        printf("step %3d/%d  loss %.4f  lr %.2e\n", p->step, p->steps, p->loss, p->lr);
    return 0; /* nonzero would stop after this step */
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            char *bigger = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!bigger) break;
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static const char *default_text =
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it "
    "was the season of Light, it was the season of Darkness, it was the spring of hope, it "
    "was the winter of despair.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT_DIR [TEXT_FILE]\n", argv[0]);
        return 2;
    }
    const char *out = argv[1];
    char err[512];
    size_t len = 0;
    char *text = NULL;
    if (argc > 2 && !(text = read_text(argv[2], &len))) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    if (!text) { /* the default: one paragraph, 20 times */
        size_t one = strlen(default_text);
        text = malloc(20 * one);
        for (int i = 0; text && i < 20; i++)
            memcpy(text + i * one, default_text, one);
        len = 20 * one;
    }

    slm_tokenizer *tok = NULL;
    slm_corpus *corpus = NULL;
    slm_model *model = NULL, *saved = NULL;
    slm_trainer *trainer = NULL;
    slm_config cfg = {.n_layer = 2,
                      .n_head = 2,
                      .n_embd = 48,
                      .n_positions = 32,
                      .vocab_size = 256,
                      .layer_norm_epsilon = 1e-5f,
                      .activation = SLM_ACT_GELU_NEW,
                      .tokenizer = SLM_TOKENIZER_BYTE,
                      .dropout = 0.0f};
    slm_corpus_opts co = {.context = cfg.n_positions, .val_fraction = 0.1};
    slm_train_opts o;
    slm_train_opts_default(&o);
    o.batch = 8;
    o.steps = 40;
    o.lr = 3e-3;
    o.eval_every = 20;
    o.save_every = 0; /* only at the end (and on Ctrl-C) */
    o.out_dir = out;
    o.on_progress = on_progress;
    o.should_stop = should_stop;
    signal(SIGINT, on_sigint);

    int rc = slm_tokenizer_load(SLM_TOKENIZER_BYTE, NULL, 0, &tok, err, sizeof err);
    if (!rc) rc = slm_corpus_create(tok, text, len, &co, &corpus, err, sizeof err);
    if (!rc) rc = slm_model_create(&cfg, o.seed, &model, err, sizeof err);
    if (!rc) rc = slm_checkpoint_prepare_dir(out, NULL, err, sizeof err);
    if (!rc) rc = slm_trainer_create(model, corpus, &o, 0, &trainer, err, sizeof err);
    if (!rc) {
        rc = slm_trainer_run(trainer, err, sizeof err);
        if (rc == SLM_EINTERRUPTED) printf("interrupted: %s\n", err), rc = SLM_OK;
    }
    /* What was saved loads as a model; score the held-out text with it. */
    size_t n_val = 0;
    const int32_t *val = corpus ? slm_corpus_tokens(corpus, SLM_SPLIT_VAL, &n_val) : NULL;
    slm_eval_result r = {NAN, 0};
    if (!rc) rc = slm_model_load(out, &saved, err, sizeof err);
    if (!rc) rc = slm_model_eval(saved, val, n_val, NULL, &r, err, sizeof err);
    if (!rc)
        printf("saved %s after step %d: held-out loss %.4f over %zu predictions\n", out,
               slm_trainer_step_count(trainer), r.loss, r.predictions);
    else
        fprintf(stderr, "train_tiny: %s (%s)\n", err, slm_strerror(rc));
    slm_trainer_free(trainer);
    slm_model_free(saved);
    slm_model_free(model);
    slm_corpus_free(corpus);
    slm_tokenizer_free(tok);
    free(text);
    return rc ? 1 : 0;
}

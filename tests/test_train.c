/* The training library (src/train): the corpus split and its edges, batch
 * windows and shards, validation against the definition of the eval rule,
 * checkpoint round trip, resume equality, stopping, data parallelism
 * (two shards with a gradient sum equal one process with the whole batch),
 * and a step's gradients whatever the buffer held before. */
#include "io_util.h"
#include "common/tiny_gpt.h"
#include "slm.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { V = 40, CTX = 8, N_TOK = 600 };

/* Token i is i % V after a pseudo-random walk: varied, and each run the same. */
static void make_ids(int32_t *ids, size_t n)
{
    uint64_t x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((x >> 33) % V);
    }
}

static slm_corpus *corpus_of(size_t n, double val_fraction)
{
    int32_t *ids = malloc(n * sizeof *ids);
    make_ids(ids, n);
    slm_corpus_opts co = {CTX, val_fraction, NULL};
    slm_corpus *c = NULL;
    char err[256];
    int rc = slm_corpus_from_tokens(ids, n, V, &co, &c, err, sizeof err);
    CHECK(rc == SLM_OK, "corpus: %s", err);
    free(ids);
    return c;
}

static slm_model *tiny_model(float dropout)
{
    return tiny_gpt(2, 16, CTX, V, SLM_ACT_GELU_NEW, dropout, 11);
}

static slm_train_opts tiny_opts(void)
{
    slm_train_opts o;
    slm_train_opts_default(&o);
    o.batch = 4;
    o.steps = 6;
    o.warmup = 1;
    o.lr = 3e-3;
    o.eval_every = 0;
    o.eval_batches = 1000;
    o.save_every = 0;
    return o;
}

static void test_corpus_split_edges(void)
{
    char err[256];
    size_t n_tr, n_val;
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    if (!c) return;
    slm_corpus_tokens(c, SLM_SPLIT_TRAIN, &n_tr);
    const int32_t *val = slm_corpus_tokens(c, SLM_SPLIT_VAL, &n_val);
    CHECK(n_val == 60 && n_tr == N_TOK - 60 && val, "0.1 of 600: %zu + %zu", n_tr, n_val);
    slm_corpus_free(c);
    /* --val-fraction 0: everything trains, there is no validation split. */
    c = corpus_of(N_TOK, 0.0);
    if (!c) return;
    slm_corpus_tokens(c, SLM_SPLIT_TRAIN, &n_tr);
    val = slm_corpus_tokens(c, SLM_SPLIT_VAL, &n_val);
    CHECK(n_tr == N_TOK && n_val == 0 && val == NULL, "no validation: %zu + %zu", n_tr, n_val);
    slm_corpus_free(c);
    /* A small fraction still holds one whole window (CTX + 1 tokens). */
    c = corpus_of(40, 0.01);
    if (!c) return;
    slm_corpus_tokens(c, SLM_SPLIT_VAL, &n_val);
    CHECK(n_val == CTX + 1, "validation of %zu tokens", n_val);
    slm_corpus_free(c);
    /* Too little data: refused with the counts in the message. */
    int32_t ids[17];
    make_ids(ids, 17);
    slm_corpus_opts co = {CTX, 0.1, NULL};
    c = NULL;
    CHECK(slm_corpus_from_tokens(ids, 17, V, &co, &c, err, sizeof err) == SLM_ERANGE && !c,
          "17 tokens accepted");
    CHECK(strstr(err, "17 tokens") && strstr(err, "18"), "message: %s", err);
    co.val_fraction = 0;
    CHECK(slm_corpus_from_tokens(ids, 9, V, &co, &c, err, sizeof err) == SLM_OK, "9 = CTX+1");
    slm_corpus_free(c);
    CHECK(slm_corpus_from_tokens(ids, 8, V, &co, &c, err, sizeof err) == SLM_ERANGE, "8 < CTX+1");
    co.val_fraction = 1.0;
    CHECK(slm_corpus_from_tokens(ids, 17, V, &co, &c, err, sizeof err) == SLM_EINVAL, "frac 1");
    co.val_fraction = -0.1;
    CHECK(slm_corpus_from_tokens(ids, 17, V, &co, &c, err, sizeof err) == SLM_EINVAL, "frac <0");
    co.val_fraction = 0;
    CHECK(slm_corpus_from_tokens(ids, 0, V, &co, &c, err, sizeof err) == SLM_EINVAL, "empty");
    ids[3] = V;
    CHECK(slm_corpus_from_tokens(ids, 17, V, &co, &c, err, sizeof err) == SLM_ERANGE, "id V");
}

/* Where window `row` starts in the training split, or -1 if it is not a
 * window of it (inputs a slice, targets the same slice shifted by one). */
static long window_start(const int32_t *train, size_t n_tr, const int32_t *in, const int32_t *tgt,
                         int T)
{
    for (size_t s = 0; s + (size_t)T < n_tr; s++)
        if (!memcmp(train + s, in, (size_t)T * sizeof *in) &&
            !memcmp(train + s + 1, tgt, (size_t)T * sizeof *tgt))
            return (long)s;
    return -1;
}

static void test_batches_are_windows_of_the_training_split(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.2);
    if (!c) return;
    size_t n_tr;
    const int32_t *train = slm_corpus_tokens(c, SLM_SPLIT_TRAIN, &n_tr);
    enum { B = 6 };
    int32_t in[B * CTX], tgt[B * CTX], in2[B * CTX], tgt2[B * CTX];
    slm_batch_opts o = {B, CTX, 5, 0, 1};
    char err[256];
    CHECK(slm_corpus_batch(c, &o, 3, 0, in, tgt, err, sizeof err) == SLM_OK, "%s", err);
    for (int b = 0; b < B; b++)
        CHECK(window_start(train, n_tr, in + b * CTX, tgt + b * CTX, CTX) >= 0,
              "row %d is not a training window", b);
    CHECK(slm_corpus_batch(c, &o, 3, 0, in2, tgt2, err, sizeof err) == SLM_OK &&
              !memcmp(in, in2, sizeof in) && !memcmp(tgt, tgt2, sizeof tgt),
          "same (seed, step, micro), other windows");
    CHECK(slm_corpus_batch(c, &o, 4, 0, in2, tgt2, err, sizeof err) == SLM_OK &&
              memcmp(in, in2, sizeof in),
          "another step, the same windows");
    CHECK(slm_corpus_batch(c, &o, 3, 1, in2, tgt2, err, sizeof err) == SLM_OK &&
              memcmp(in, in2, sizeof in),
          "another micro-batch, the same windows");
    o.context = (int)n_tr;
    CHECK(slm_corpus_batch(c, &o, 3, 0, in, tgt, err, sizeof err) == SLM_EINVAL,
          "a window as long as the split");
    slm_corpus_free(c);
}

/* Shard k of n holds rows [k·B/n, (k+1)·B/n) of the whole batch, exactly. */
static void test_batch_shards_partition_the_global_batch(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    if (!c) return;
    enum { B = 8 };
    int32_t in[B * CTX], tgt[B * CTX], part_in[B * CTX], part_tgt[B * CTX];
    char err[256];
    slm_batch_opts o = {B, CTX, 9, 0, 1};
    CHECK(slm_corpus_batch(c, &o, 2, 1, in, tgt, err, sizeof err) == SLM_OK, "%s", err);
    for (int n = 2; n <= 8; n *= 2) {
        int per = B / n;
        for (int k = 0; k < n; k++) {
            slm_batch_opts s = {B, CTX, 9, k, n};
            CHECK(slm_corpus_batch(c, &s, 2, 1, part_in, part_tgt, err, sizeof err) == SLM_OK, "%s",
                  err);
            CHECK(!memcmp(part_in, in + k * per * CTX, (size_t)per * CTX * sizeof *in) &&
                      !memcmp(part_tgt, tgt + k * per * CTX, (size_t)per * CTX * sizeof *tgt),
                  "shard %d of %d", k, n);
        }
    }
    slm_batch_opts bad = {B, CTX, 9, 0, 3};
    CHECK(slm_corpus_batch(c, &bad, 2, 1, in, tgt, err, sizeof err) == SLM_EINVAL,
          "8 rows in 3 shards");
    bad.n_shards = 2;
    bad.shard = 2;
    CHECK(slm_corpus_batch(c, &bad, 2, 1, in, tgt, err, sizeof err) == SLM_EINVAL, "shard 2 of 2");
    slm_corpus_free(c);
}

/* The eval rule by its definition: windows one at a time, cross-entropy
 * from the logits in float64, the last window partial. */
static double eval_by_definition(slm_model *m, const int32_t *ids, size_t n, int ctx)
{
    double sum = 0.0;
    size_t count = 0;
    for (size_t s = 0; s + 1 < n; s += (size_t)ctx) {
        int len = (int)(n - 1 - s < (size_t)ctx ? n - 1 - s : (size_t)ctx);
        slm_batch b = {ids + s, NULL, 1, len};
        CHECK(slm_model_forward(m, &b, NULL, NULL, NULL, 0) == SLM_OK, "forward");
        const float *lg = slm_model_logits(m);
        for (int t = 0; t < len; t++) {
            double mx = -INFINITY, z = 0.0;
            for (int v = 0; v < V; v++)
                mx = fmax(mx, lg[t * V + v]);
            for (int v = 0; v < V; v++)
                z += exp(lg[t * V + v] - mx);
            sum += mx + log(z) - lg[t * V + ids[s + (size_t)t + 1]];
            count++;
        }
    }
    return sum / (double)count;
}

static void test_validation_is_the_eval_rule(void)
{
    /* 600 · 0.1 = 60 validation tokens: 59 predictions, 7 windows of 8 and
     * a partial one of 3. */
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.0f);
    if (!c || !m) goto out;
    size_t n_val;
    const int32_t *val = slm_corpus_tokens(c, SLM_SPLIT_VAL, &n_val);
    double want = eval_by_definition(m, val, n_val, CTX);
    slm_train_opts o = tiny_opts();
    slm_trainer *t = NULL;
    char err[256];
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
    double got = NAN;
    CHECK(t && slm_trainer_evaluate(t, &got, err, sizeof err) == SLM_OK, "%s", err);
    CHECK_CLOSE(got, want, 1e-5, 0, "validation %.7f, by definition %.7f", got, want);
    slm_eval_result r;
    slm_eval_opts eo = {.context = CTX, .batch = 3};
    CHECK(slm_model_eval(m, val, n_val, &eo, &r, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(r.predictions == n_val - 1, "predictions %zu", r.predictions);
    CHECK_CLOSE(r.loss, want, 1e-5, 0, "eval %.7f, by definition %.7f", r.loss, want);
    /* max_windows: the first two windows only. */
    eo.max_windows = 2;
    CHECK(slm_model_eval(m, val, n_val, &eo, &r, err, sizeof err) == SLM_OK &&
              r.predictions == 2 * CTX,
          "two windows: %zu predictions", r.predictions);
    double two = eval_by_definition(m, val, 2 * CTX + 1, CTX);
    CHECK_CLOSE(r.loss, two, 1e-5, 0, "two windows %.7f vs %.7f", r.loss, two);
    eo.context = CTX + 1;
    CHECK(slm_model_eval(m, val, n_val, &eo, &r, err, sizeof err) == SLM_ERANGE, "context > P");
    CHECK(slm_model_eval(m, val, 1, NULL, &r, err, sizeof err) == SLM_EINVAL, "one token");
    slm_trainer_free(t);
out:
    slm_model_free(m);
    slm_corpus_free(c);
}

static int count_calls(void *ctx, const slm_train_progress *p)
{
    int *calls = ctx;
    (void)p;
    ++*calls;
    return 0;
}

/* --val-fraction 0 trains without validation (no read past the tokens:
 * this case runs under ASan too) and reports NaN. */
static void test_no_validation_split_trains(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.0);
    slm_model *m = tiny_model(0.0f);
    if (!c || !m) goto out;
    slm_train_opts o = tiny_opts();
    o.eval_every = 2;
    int calls = 0;
    o.on_progress = count_calls;
    o.callback_ctx = &calls;
    slm_trainer *t = NULL;
    char err[256];
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(t && slm_trainer_run(t, err, sizeof err) == SLM_OK, "%s", err);
    double v = 0;
    CHECK(t && slm_trainer_evaluate(t, &v, err, sizeof err) == SLM_OK && isnan(v), "val %g", v);
    CHECK(calls == 6 && slm_trainer_step_count(t) == 6, "calls %d", calls);
    slm_trainer_free(t);
out:
    slm_model_free(m);
    slm_corpus_free(c);
}

typedef struct {
    int n;
    slm_train_progress p[8];
} recorder;

static int record(void *ctx, const slm_train_progress *p)
{
    recorder *r = ctx;
    if (r->n < 8) r->p[r->n] = *p;
    r->n++;
    return 0;
}

/* What on_progress sees: every step once, validation and checkpoints where
 * the options put them, the learning rate of the schedule. */
static void test_progress_reports_each_step(void)
{
    char *dir = tmpdir_make();
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.0f);
    if (!dir || !c || !m) goto out;
    char err[256];
    slm_train_opts o = tiny_opts();
    o.steps = 6;
    o.stop_after = 5;
    o.eval_every = 2;
    o.save_every = 3;
    o.out_dir = dir;
    recorder r = {0};
    o.on_progress = record;
    o.callback_ctx = &r;
    slm_trainer *t = NULL;
    CHECK(slm_trainer_create(m, c, &o, 1, &t, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(t && slm_trainer_run(t, err, sizeof err) == SLM_OK, "%s", err);
    slm_trainer_free(t);
    CHECK(r.n == 4, "%d calls for steps 2..5", r.n);
    for (int i = 0; i < r.n && i < 8; i++) {
        const slm_train_progress *p = &r.p[i];
        int step = i + 2;
        CHECK(p->step == step && p->steps == 6 && p->end_step == 5 && p->first_step == 1,
              "step %d: %d/%d end %d first %d", step, p->step, p->steps, p->end_step,
              p->first_step);
        CHECK(p->evaluated == (step % 2 == 0) && isnan(p->val_loss) == !p->evaluated,
              "step %d: evaluated %d val %g", step, p->evaluated, p->val_loss);
        CHECK(p->checkpointed == (step == 3 || step == 5), "step %d: checkpointed %d", step,
              p->checkpointed);
        CHECK(p->lr == slm_lr_schedule((float)o.lr, step, o.warmup, o.steps) && isfinite(p->loss) &&
                  p->loss > 0 && p->grad_norm > 0,
              "step %d: lr %g loss %g norm %g", step, p->lr, p->loss, p->grad_norm);
    }
out:
    slm_model_free(m);
    slm_corpus_free(c);
    tmpdir_remove(dir);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return !memcmp(a, b, n * sizeof *a);
}

static void test_checkpoint_round_trip(void)
{
    char *dir = tmpdir_make();
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.1f);
    if (!dir || !c || !m) goto out;
    char err[256];
    const char *names[2] = {"a.txt", "b.txt"};
    slm_train_opts o = tiny_opts();
    o.data = names;
    o.n_data = 2;
    o.seed = 12345678901234ULL;
    o.grad_clip = 0.5;
    slm_trainer *t = NULL;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
    for (int i = 0; i < 3 && t; i++)
        CHECK(slm_trainer_step(t, NULL, err, sizeof err) == SLM_OK, "%s", err);
    slm_trainer_free(t);
    CHECK(slm_checkpoint_prepare_dir(dir, NULL, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(slm_checkpoint_save(dir, m, &o, 3, slm_corpus_hash(c), err, sizeof err) == SLM_OK, "%s",
          err);
    slm_checkpoint ck;
    CHECK(slm_checkpoint_load(dir, &ck, err, sizeof err) == SLM_OK, "%s", err);
    if (!ck.model) goto out;
    size_t n = slm_model_num_params(m);
    CHECK(ck.step == 3 && ck.data_hash == slm_corpus_hash(c), "step %d", ck.step);
    CHECK(slm_model_num_params(ck.model) == n &&
              same_floats(slm_model_params(ck.model), slm_model_params(m), n) &&
              same_floats(slm_model_adam_state(ck.model, 0), slm_model_adam_state(m, 0), n) &&
              same_floats(slm_model_adam_state(ck.model, 1), slm_model_adam_state(m, 1), n),
          "parameters or moments differ");
    CHECK(!memcmp(slm_model_config(ck.model), slm_model_config(m), sizeof(slm_config)),
          "config differs");
    const slm_train_opts *r = &ck.opts;
    CHECK(r->batch == o.batch && r->steps == o.steps && r->warmup == o.warmup && r->lr == o.lr &&
              r->grad_clip == o.grad_clip && r->seed == o.seed &&
              r->val_fraction == o.val_fraction && r->eval_batches == o.eval_batches,
          "options differ");
    CHECK(r->n_data == 2 && !strcmp(r->data[0], "a.txt") && !strcmp(r->data[1], "b.txt"),
          "data names");
    /* The model files hold the same model: nothing to sync. */
    int rewritten = -1;
    CHECK(slm_checkpoint_sync_model(dir, ck.model, &rewritten, err, sizeof err) == SLM_OK &&
              rewritten == 0,
          "sync rewrote current files");
    slm_checkpoint_free(&ck);
    /* A file that is not a training state. */
    FILE *f = fopen(path_in(dir, "training_state.safetensors", 0), "wb");
    if (f) {
        fputs("not a safetensors file", f);
        fclose(f);
    }
    CHECK(slm_checkpoint_load(dir, &ck, err, sizeof err) == SLM_EFORMAT && ck.model == NULL,
          "garbage loaded");
out:
    slm_model_free(m);
    slm_corpus_free(c);
    tmpdir_remove(dir);
}

/* Trains m to `steps`, stopping after stop_after (0: not), into dir. */
static int train_into(slm_model *m, const slm_corpus *c, const char *dir, int start, int steps,
                      int stop_after)
{
    char err[256];
    slm_train_opts o = tiny_opts();
    o.steps = steps;
    o.eval_every = 2;
    o.save_every = 2;
    o.out_dir = dir;
    o.stop_after = stop_after;
    slm_trainer *t = NULL;
    int rc = slm_trainer_create(m, c, &o, start, &t, err, sizeof err);
    if (!rc) rc = slm_trainer_run(t, err, sizeof err);
    CHECK(rc == SLM_OK, "train: %s", err);
    slm_trainer_free(t);
    return rc;
}

static void test_resume_is_byte_identical(void)
{
    char *a = strdup(tmpdir_make()), *b = tmpdir_make();
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *straight = tiny_model(0.1f), *first = tiny_model(0.1f);
    slm_checkpoint ck = {0};
    char err[256];
    if (!a || !b || !c || !straight || !first) goto out;
    if (train_into(straight, c, a, 0, 7, 0) || train_into(first, c, b, 0, 7, 3)) goto out;
    CHECK(slm_checkpoint_load(b, &ck, err, sizeof err) == SLM_OK && ck.step == 3, "step %d: %s",
          ck.step, err);
    if (!ck.model || train_into(ck.model, c, b, 3, 7, 0)) goto out;
    size_t n = slm_model_num_params(straight);
    CHECK(same_floats(slm_model_params(ck.model), slm_model_params(straight), n),
          "resumed parameters differ");
    CHECK(same_floats(slm_model_adam_state(ck.model, 1), slm_model_adam_state(straight, 1), n),
          "resumed moments differ");
    /* The files too, byte for byte; the log holds each step once. */
    const char *files[] = {"model.safetensors", "config.json", "training_state.safetensors"};
    for (int i = 0; i < 3; i++) {
        size_t la = 0, lb = 0;
        unsigned char *x = read_bytes(path_in(a, files[i], 0), &la);
        unsigned char *y = read_bytes(path_in(b, files[i], 1), &lb);
        CHECK(x && y && la == lb && !memcmp(x, y, la), "%s differs", files[i]);
        free(x);
        free(y);
    }
    size_t len = 0;
    char *log = (char *)read_bytes(path_in(b, "log.jsonl", 0), &len);
    int step = 0, expect = 1, at = 0, used = 0;
    while (log && (size_t)at < len &&
           sscanf(log + at, "{\"step\":%d%*[^\n]\n%n", &step, &used) == 1) {
        CHECK(step == expect, "log line %d is step %d", expect, step);
        expect++;
        at += used;
    }
    CHECK(expect == 8, "the log holds %d steps, not 7", expect - 1);
    free(log);
out:
    slm_checkpoint_free(&ck);
    slm_model_free(straight);
    slm_model_free(first);
    slm_corpus_free(c);
    tmpdir_remove(a);
    tmpdir_remove(b);
    free(a);
}

typedef struct {
    int polls, stop_at;
} stopper;

static int stop_when(void *ctx)
{
    stopper *s = ctx;
    return ++s->polls > s->stop_at;
}

/* A stop request (Ctrl-C) ends the run cleanly with a checkpoint of the
 * last whole step. */
static void test_stop_saves_the_last_step(void)
{
    char *dir = tmpdir_make();
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.0f);
    slm_checkpoint ck = {0};
    if (!dir || !c || !m) goto out;
    char err[256];
    slm_train_opts o = tiny_opts();
    o.grad_accum = 2;
    o.out_dir = dir;
    stopper s = {0, 5}; /* polls: before step 1, its 2 micro-batches, step 2, ... */
    o.should_stop = stop_when;
    o.callback_ctx = &s;
    slm_trainer *t = NULL;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
    int rc = t ? slm_trainer_run(t, err, sizeof err) : -1;
    CHECK(rc == SLM_EINTERRUPTED, "run returned %d: %s", rc, err);
    CHECK(t && slm_trainer_step_count(t) == 1, "steps %d", t ? slm_trainer_step_count(t) : -1);
    slm_trainer_free(t);
    CHECK(slm_checkpoint_load(dir, &ck, err, sizeof err) == SLM_OK && ck.step == 1, "%s", err);
    if (ck.model)
        CHECK(same_floats(slm_model_params(ck.model), slm_model_params(m), slm_model_num_params(m)),
              "saved parameters are not the last step's");
out:
    slm_checkpoint_free(&ck);
    slm_model_free(m);
    slm_corpus_free(c);
    tmpdir_remove(dir);
}

/* ---- data parallelism: two shards in two threads, summed by a barrier --- */

typedef struct {
    pthread_barrier_t barrier;
    float *slot[2];
} allreduce;

typedef struct {
    allreduce *ar;
    int shard;
    slm_model *m;
    const slm_corpus *c;
    int rc;
    char err[256];
} shard_job;

/* MPI_Allreduce(SUM) of two ranks: both post their data, both add the two
 * in the same order, so both hold the same bits. */
static int reduce_two(void *ctx, float *data, size_t n)
{
    shard_job *j = ctx;
    allreduce *ar = j->ar;
    float *mine = malloc(n * sizeof *mine);
    if (!mine) return -1;
    memcpy(mine, data, n * sizeof *mine);
    ar->slot[j->shard] = mine;
    pthread_barrier_wait(&ar->barrier);
    for (size_t i = 0; i < n; i++)
        data[i] = ar->slot[0][i] + ar->slot[1][i];
    pthread_barrier_wait(&ar->barrier);
    free(mine);
    return 0;
}

static void *run_shard(void *arg)
{
    shard_job *j = arg;
    slm_train_opts o = tiny_opts();
    o.shard = j->shard;
    o.n_shards = 2;
    o.reduce_sum = reduce_two;
    o.reduce_ctx = j;
    o.is_writer = j->shard == 0;
    slm_trainer *t = NULL;
    j->rc = slm_trainer_create(j->m, j->c, &o, 0, &t, j->err, sizeof j->err);
    if (!j->rc) j->rc = slm_trainer_run(t, j->err, sizeof j->err);
    slm_trainer_free(t);
    return NULL;
}

static void test_two_shards_equal_one_process(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *whole = tiny_model(0.1f), *m0 = tiny_model(0.1f), *m1 = tiny_model(0.1f);
    if (!c || !whole || !m0 || !m1) goto out;
    char err[256];
    slm_train_opts o = tiny_opts();
    slm_trainer *t = NULL;
    CHECK(slm_trainer_create(whole, c, &o, 0, &t, err, sizeof err) == SLM_OK &&
              slm_trainer_run(t, err, sizeof err) == SLM_OK,
          "%s", err);
    slm_trainer_free(t);
    allreduce ar;
    pthread_barrier_init(&ar.barrier, NULL, 2);
    shard_job jobs[2] = {{&ar, 0, m0, c, 0, ""}, {&ar, 1, m1, c, 0, ""}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, run_shard, &jobs[k]);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&ar.barrier);
    CHECK(jobs[0].rc == 0 && jobs[1].rc == 0, "shards: %s / %s", jobs[0].err, jobs[1].err);
    size_t n = slm_model_num_params(whole);
    CHECK(same_floats(slm_model_params(m0), slm_model_params(m1), n),
          "the two shards' parameters differ");
    /* Same windows and dropout masks; only the rounding differs (each shard
     * averages its own rows, the halves are then added), and 6 AdamW steps
     * carry it into the parameters: measured 1.3e-6 at most. Dropout masks
     * drawn without the shard's batch_offset differ by 1.8e-2 (an update of
     * the size of lr), so 1e-5 tells the two apart. */
    double e = test_max_err_f(slm_model_params(m0), slm_model_params(whole), n, 1e-5, 1e-5);
    CHECK(e <= 1.0, "2 shards × B/2 vs 1 × B: max error %.3g of tolerance", e);
out:
    slm_model_free(whole);
    slm_model_free(m0);
    slm_model_free(m1);
    slm_corpus_free(c);
}

/* A step's gradients are the sum over its micro-batches, whatever the
 * buffer held before: the trainer's first backward writes them (no zeroing
 * pass), so NaN left there must not survive, and they equal zero_grad +
 * slm_model_backward of each micro-batch on a second copy of the model. */
static void test_step_writes_the_gradients(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.0f), *ref = tiny_model(0.0f);
    int32_t in[4 * CTX], tgt[4 * CTX];
    if (!c || !m || !ref) goto out;
    char err[256];
    slm_train_opts o = tiny_opts();
    o.steps = 1;
    o.grad_accum = 2;
    size_t n = slm_model_num_params(m);
    float *g = slm_model_grads(m);
    for (size_t i = 0; g && i < n; i++) g[i] = NAN;
    slm_trainer *t = NULL;
    slm_train_progress p;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK &&
              slm_trainer_step(t, &p, err, sizeof err) == SLM_OK,
          "%s", err);
    slm_trainer_free(t);
    slm_batch_opts bo = {o.batch, CTX, o.seed, 0, 1};
    slm_batch b = {in, tgt, o.batch, CTX};
    slm_forward_opts fo = {.training = 1};
    slm_model_zero_grad(ref);
    for (int micro = 0; micro < 2; micro++)
        CHECK(slm_corpus_batch(c, &bo, 1, micro, in, tgt, err, sizeof err) == SLM_OK &&
                  slm_model_forward(ref, &b, &fo, NULL, err, sizeof err) == SLM_OK &&
                  slm_model_backward(ref, 0.5f, err, sizeof err) == SLM_OK,
              "reference micro-batch %d: %s", micro, err);
    /* The same sums; a GEMM may order them differently with beta 0 and 1 */
    double e = test_max_err_f(slm_model_grads(m), slm_model_grads(ref), n, 1e-5, 1e-7);
    CHECK(e <= 1.0, "trainer vs zero_grad + backward: max error %.3g of tolerance", e);
out:
    slm_model_free(m);
    slm_model_free(ref);
    slm_corpus_free(c);
}

/* Divergence is an error naming the step; nothing after it is taken. */
static void test_divergence_is_an_error(void)
{
    slm_corpus *c = corpus_of(N_TOK, 0.1);
    slm_model *m = tiny_model(0.0f);
    if (!c || !m) goto out;
    char err[256];
    slm_train_opts o = tiny_opts();
    o.lr = 10;
    o.weight_decay = 10;
    o.grad_clip = 0;
    o.warmup = 0;
    o.steps = 40;
    slm_trainer *t = NULL;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_OK, "%s", err);
    int rc = t ? slm_trainer_run(t, err, sizeof err) : -1;
    CHECK(rc == SLM_ENUMERIC && strstr(err, "became") && strstr(err, "at step"), "%d: %s", rc, err);
    slm_trainer_free(t);
    o = tiny_opts();
    o.batch = 5;
    o.n_shards = 2;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_EINVAL && !t,
          "5 rows in 2 shards");
    o = tiny_opts();
    CHECK(slm_trainer_create(m, c, &o, 6, &t, err, sizeof err) == SLM_EINVAL, "start = steps");
    o.context = CTX + 1;
    CHECK(slm_trainer_create(m, c, &o, 0, &t, err, sizeof err) == SLM_EINVAL, "context > P");
out:
    slm_model_free(m);
    slm_corpus_free(c);
}

int main(void)
{
    RUN(test_corpus_split_edges);
    RUN(test_batches_are_windows_of_the_training_split);
    RUN(test_batch_shards_partition_the_global_batch);
    RUN(test_validation_is_the_eval_rule);
    RUN(test_no_validation_split_trains);
    RUN(test_progress_reports_each_step);
    RUN(test_checkpoint_round_trip);
    RUN(test_resume_is_byte_identical);
    RUN(test_stop_saves_the_last_step);
    RUN(test_two_shards_equal_one_process);
    RUN(test_step_writes_the_gradients);
    RUN(test_divergence_is_an_error);
    return test_summary();
}

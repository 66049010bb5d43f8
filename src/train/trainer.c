/*
 * The training loop: for each step, grad_accum micro-batches of forward +
 * backward on this process's share of the batch, an optional sum of the
 * gradients over processes, then one AdamW update at the scheduled learning
 * rate; validation every eval_every steps, a log.jsonl line per step, a
 * checkpoint every save_every steps, at the end, and when asked to stop.
 *
 * Determinism: the windows of (step, micro) and the dropout masks of every
 * row are pure functions of the seed, so a run resumed from a checkpoint
 * (parameters + AdamW moments + step) continues bit for bit.
 */
#include "core/error.h"
#include "model/gpt.h"
#include "train/train_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slm_trainer {
    slm_model *m;
    const slm_corpus *c;
    slm_train_opts o;  /* warmup resolved                                    */
    int T;             /* the model's context                                */
    int rows;          /* this process's windows per micro-batch             */
    int step;          /* steps taken                                        */
    int first;         /* the step this trainer started after                */
    int end;           /* min(steps, stop_after)                             */
    int32_t *in, *tgt; /* [rows][T]                                          */
    train_log log;
};

void slm_train_opts_default(slm_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 16;
    o->grad_accum = 1;
    o->steps = 1000;
    o->warmup = -1;
    o->lr = 1e-3;
    o->weight_decay = 0.1;
    o->grad_clip = 1.0;
    o->val_fraction = 0.1;
    o->seed = 1337;
    o->eval_every = 100;
    o->eval_batches = 8;
    o->save_every = 250;
    o->is_writer = 1;
    o->n_shards = 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check_opts(const slm_train_opts *o, const slm_model *m, const slm_corpus *c, int start,
                      char *err, size_t errlen)
{
    int shards = o->n_shards > 1 ? o->n_shards : 1;
    if (o->batch <= 0 || o->grad_accum <= 0 || o->steps <= 0 || o->eval_batches <= 0 ||
        o->eval_every < 0 || o->save_every < 0 || o->stop_after < 0)
        return fail(err, errlen, SLM_EINVAL,
                    "train: batch, grad_accum, steps and eval_batches must be positive, "
                    "eval_every, save_every and stop_after not negative");
    if (!(isfinite(o->lr) && o->lr >= 0 && isfinite(o->weight_decay) && o->weight_decay >= 0 &&
          isfinite(o->grad_clip) && o->grad_clip >= 0))
        return fail(err, errlen, SLM_EINVAL,
                    "train: lr, weight_decay and grad_clip must be finite and not negative");
    if (o->dtype != SLM_DTYPE_F32 && o->dtype != SLM_DTYPE_BF16)
        return fail(err, errlen, SLM_EINVAL, "train: dtype must be F32 or BF16 (got %d)",
                    o->dtype);
    if (o->batch % shards || o->shard < 0 || o->shard >= shards)
        return fail(err, errlen, SLM_EINVAL,
                    "train: a batch of %d does not split into %d equal shares (shard %d)", o->batch,
                    shards, o->shard);
    if (start < 0 || start >= o->steps)
        return fail(err, errlen, SLM_EINVAL, "train: start step %d is outside [0, %d)", start,
                    o->steps);
    if (shards > 1 && !o->reduce_sum)
        return fail(err, errlen, SLM_EINVAL, "train: %d shards need reduce_sum", shards);
    const slm_config *cfg = slm_model_config(m);
    int T = o->context ? o->context : cfg->n_positions;
    if (T < 0 || T > cfg->n_positions)
        return fail(err, errlen, SLM_EINVAL, "train: context %d is outside [1, %d]", T,
                    cfg->n_positions);
    size_t n_train = 0;
    slm_corpus_tokens(c, SLM_SPLIT_TRAIN, &n_train);
    if (slm_corpus_vocab_size(c) > cfg->vocab_size)
        return fail(err, errlen, SLM_EINVAL,
                    "train: the corpus's vocabulary (%d) is larger than the model's (%d)",
                    slm_corpus_vocab_size(c), cfg->vocab_size);
    if (n_train < (size_t)T + 1)
        return fail(err, errlen, SLM_EINVAL,
                    "train: %zu training tokens; a context of %d needs at least %d", n_train, T,
                    T + 1);
    return SLM_OK;
}

int slm_trainer_create(slm_model *m, const slm_corpus *c, const slm_train_opts *o, int start_step,
                       slm_trainer **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!m || !c || !o || !out) return fail(err, errlen, SLM_EINVAL, "train: NULL argument");
    int rc = check_opts(o, m, c, start_step, err, errlen);
    if (rc) return rc;
    slm_trainer *t = calloc(1, sizeof *t);
    if (!t) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    t->m = m;
    t->c = c;
    t->o = *o;
    if (t->o.n_shards < 1) t->o.n_shards = 1;
    if (t->o.warmup < 0) t->o.warmup = t->o.steps / 20;
    t->T = o->context ? o->context : slm_model_config(m)->n_positions;
    t->rows = t->o.batch / t->o.n_shards;
    t->step = t->first = start_step;
    t->end = t->o.stop_after && t->o.stop_after < t->o.steps ? t->o.stop_after : t->o.steps;
    size_t bt = (size_t)t->rows * (size_t)t->T;
    t->in = malloc(bt * sizeof *t->in);
    t->tgt = malloc(bt * sizeof *t->tgt);
    if (!t->in || !t->tgt || !slm_model_grads(m) || !slm_model_adam_state(m, 0))
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory");
    if (!rc && t->o.out_dir && t->o.is_writer)
        rc = train_log_open(&t->log, t->o.out_dir, start_step, err, errlen);
    if (rc) {
        slm_trainer_free(t);
        return rc;
    }
    *out = t;
    return SLM_OK;
}

void slm_trainer_free(slm_trainer *t)
{
    if (!t) return;
    train_log_close(&t->log);
    free(t->in);
    free(t->tgt);
    free(t);
}

int slm_trainer_step_count(const slm_trainer *t)
{
    return t ? t->step : 0;
}

/* Forward + backward of every micro-batch of `step`; *loss = this
 * process's mean loss, scaled by 1/n_shards like its gradients. */
static int accumulate(slm_trainer *t, int step, float *loss, char *err, size_t errlen)
{
    const slm_train_opts *o = &t->o;
    slm_batch_opts bo = {o->batch, t->T, o->seed, o->shard, o->n_shards};
    slm_batch batch = {t->in, t->tgt, t->rows, t->T};
    float scale = 1.0f / (float)(o->grad_accum * o->n_shards);
    double sum = 0.0;
    for (int micro = 0; micro < o->grad_accum; micro++) {
        if (o->should_stop && o->should_stop(o->callback_ctx))
            return fail(err, errlen, SLM_EINTERRUPTED, "stopped before step %d", step);
        slm_forward_opts fo = {
            .training = 1, .batch_offset = o->shard * t->rows, .dtype = o->dtype};
        fo.dropout_seed = o->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)step * 1000003u + micro;
        float l;
        int rc = slm_corpus_batch(t->c, &bo, step, micro, t->in, t->tgt, err, errlen);
        if (!rc) rc = slm_model_forward(t->m, &batch, &fo, &l, err, errlen);
        /* The first micro-batch writes the gradients (no zeroing pass) */
        if (!rc)
            rc = micro == 0 ? gpt_backward_overwrite(t->m, scale, err, errlen)
                            : slm_model_backward(t->m, scale, err, errlen);
        if (rc) return rc;
        sum += l;
    }
    *loss = (float)(sum / o->grad_accum);
    if (o->n_shards > 1) *loss /= (float)o->n_shards;
    return SLM_OK;
}

int slm_trainer_step(slm_trainer *t, slm_train_progress *p, char *err, size_t errlen)
{
    if (!t) return fail(err, errlen, SLM_EINVAL, "train: no trainer");
    const slm_train_opts *o = &t->o;
    if (t->step >= o->steps)
        return fail(err, errlen, SLM_EINVAL, "train: the run's %d steps are done", o->steps);
    int step = t->step + 1;
    double t0 = now_seconds();
    float loss = 0.0f, norm = 0.0f;
    int rc = accumulate(t, step, &loss, err, errlen);
    if (rc) return rc;
    if (o->n_shards > 1 &&
        (o->reduce_sum(o->reduce_ctx, &loss, 1) ||
         o->reduce_sum(o->reduce_ctx, slm_model_grads(t->m), slm_model_num_params(t->m))))
        return fail(err, errlen, SLM_EIO, "summing over processes failed at step %d", step);
    if (!isfinite(loss))
        return fail(err, errlen, SLM_ENUMERIC, "the loss became %s at step %d",
                    isnan(loss) ? "NaN" : "infinite", step);
    float lr = slm_lr_schedule((float)o->lr, step, o->warmup, o->steps);
    slm_adamw_opts ao = {lr, 0.9f, 0.95f, 1e-8f, (float)o->weight_decay, (float)o->grad_clip};
    rc = slm_model_adamw_step(t->m, &ao, step, &norm, err, errlen);
    /* A finite gradient can still push a weight past FLT_MAX (a large lr
     * times weight_decay grows weights geometrically): the step says so,
     * and the run stops before anything is saved. */
    if (rc == SLM_ENUMERIC)
        return fail(err, errlen, rc, "the %s became non-finite at step %d",
                    isfinite(norm) ? "weights" : "gradient", step);
    if (rc) return rc;
    t->step = step;
    if (p) {
        double dt = now_seconds() - t0;
        *p = (slm_train_progress){.step = step,
                                  .steps = o->steps,
                                  .end_step = t->end,
                                  .first_step = t->first,
                                  .loss = loss,
                                  .lr = lr,
                                  .grad_norm = norm,
                                  .val_loss = NAN};
        p->tokens_per_s = dt > 0 ? (double)t->rows * t->T * o->grad_accum / dt : 0.0;
    }
    return SLM_OK;
}

int slm_trainer_evaluate(slm_trainer *t, double *val_loss, char *err, size_t errlen)
{
    if (!t || !val_loss) return fail(err, errlen, SLM_EINVAL, "train: NULL argument");
    *val_loss = NAN;
    size_t n = 0;
    const int32_t *ids = slm_corpus_tokens(t->c, SLM_SPLIT_VAL, &n);
    if (n < 2) return SLM_OK;
    slm_eval_opts eo = {.context = t->T, .batch = t->o.batch};
    eo.max_windows = (size_t)t->o.eval_batches * (size_t)t->o.batch;
    slm_eval_result r;
    int rc = slm_model_eval(t->m, ids, n, &eo, &r, err, errlen);
    if (!rc) *val_loss = r.loss;
    return rc;
}

int slm_trainer_save(slm_trainer *t, char *err, size_t errlen)
{
    if (!t) return fail(err, errlen, SLM_EINVAL, "train: no trainer");
    if (!t->o.out_dir || !t->o.is_writer) return SLM_OK;
    int rc =
        slm_checkpoint_save(t->o.out_dir, t->m, &t->o, t->step, slm_corpus_hash(t->c), err, errlen);
    if (rc) {
        char why[400];
        snprintf(why, sizeof why, "%s", err ? err : "");
        return fail(err, errlen, rc, "saving the checkpoint of step %d: %s", t->step, why);
    }
    return SLM_OK;
}

/* Validation, the log line and a checkpoint after the step in p. */
static int after_step(slm_trainer *t, slm_train_progress *p, char *err, size_t errlen)
{
    const slm_train_opts *o = &t->o;
    int rc;
    if ((o->eval_every > 0 && p->step % o->eval_every == 0) || p->step == o->steps) {
        if ((rc = slm_trainer_evaluate(t, &p->val_loss, err, errlen))) return rc;
        p->evaluated = !isnan(p->val_loss);
    }
    train_log_step(&t->log, p);
    if ((o->save_every > 0 && p->step % o->save_every == 0) || p->step == t->end) {
        if ((rc = slm_trainer_save(t, err, errlen))) return rc;
        p->checkpointed = o->out_dir && o->is_writer;
    }
    return SLM_OK;
}

int slm_trainer_run(slm_trainer *t, char *err, size_t errlen)
{
    if (!t) return fail(err, errlen, SLM_EINVAL, "train: no trainer");
    const slm_train_opts *o = &t->o;
    int saved = t->step, stop = 0, rc = SLM_OK;
    while (t->step < t->end && !stop) {
        if (o->should_stop && o->should_stop(o->callback_ctx)) {
            stop = 1;
            break;
        }
        slm_train_progress p;
        rc = slm_trainer_step(t, &p, err, errlen);
        if (rc == SLM_EINTERRUPTED) {
            stop = 1;
            rc = SLM_OK;
            break;
        }
        if (rc || (rc = after_step(t, &p, err, errlen))) break;
        if (p.checkpointed) saved = t->step;
        if (o->on_progress && o->on_progress(o->callback_ctx, &p)) stop = 1;
    }
    if (rc) return rc;
    if (t->step != saved && (rc = slm_trainer_save(t, err, errlen))) return rc;
    if (stop) return fail(err, errlen, SLM_EINTERRUPTED, "stopped after step %d", t->step);
    return SLM_OK;
}

/*
 * The training loop: for each step, grad_accum micro-batches of forward +
 * backward, then one AdamW update at the scheduled learning rate; a progress
 * bar on stderr, a log.jsonl line per step, validation every eval_every
 * steps, a checkpoint every save_every steps, at the end, and on Ctrl-C.
 */
#include "cli/cli.h"
#include "cli/train.h"
#include "io/atomic_file.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one piece of process-wide state: set by the SIGINT/SIGTERM handler,
 * read between steps (a signal handler can do nothing else safely). */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
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

typedef struct {
    int tty;
    double started;
    int first_step;
    double last_val;
} progress;

/* One line, redrawn in place on a terminal; every ~5 % as plain lines otherwise. */
static void progress_draw(progress *p, const train_args *a, int step, float loss,
                          double tok_per_s, int force_line)
{
    int end = a->stop_after ? a->stop_after : a->steps;
    int done = step - p->first_step, total = end - p->first_step;
    double eta = done > 0 ? (now_seconds() - p->started) / done * (end - step) : 0.0;
    char eta_s[32], bar[31];
    format_duration(eta, eta_s, sizeof eta_s);
    int filled = (int)(30.0 * step / a->steps);
    for (int i = 0; i < 30; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[30] = '\0';
    char val[32] = "";
    if (!isnan(p->last_val)) snprintf(val, sizeof val, " val %.4f", p->last_val);
    int every = total >= 20 ? total / 20 : 1;
    if (p->tty) {
        fprintf(stderr, "\rstep %*d/%d [%s] loss %.4f%s | %.1fk tok/s | ETA %s   ",
                (int)snprintf(NULL, 0, "%d", a->steps), step, a->steps, bar, loss, val,
                tok_per_s / 1000.0, eta_s);
        if (force_line) fputc('\n', stderr);
    } else if (force_line || done % every == 0 || step == end) {
        fprintf(stderr, "step %d/%d loss %.4f%s | %.1fk tok/s | ETA %s\n", step, a->steps, loss,
                val, tok_per_s / 1000.0, eta_s);
    }
    fflush(stderr);
}

/* Mean loss over up to eval_batches batches of consecutive validation windows. */
static int validation_loss(const train_args *a, slm_model *m, const train_data *d,
                           int32_t *in, int32_t *tgt, double *out)
{
    int T = a->context, B = a->batch;
    size_t n_val = d->n - d->n_train, windows = (n_val - 1) / (size_t)T;
    double sum = 0.0;
    int batches = 0;
    char err[512];
    for (size_t w = 0; w + (size_t)B <= windows && batches < a->eval_batches; w += (size_t)B) {
        for (int b = 0; b < B; b++) {
            const int32_t *src = d->tokens + d->n_train + (w + (size_t)b) * T;
            memcpy(in + (size_t)b * T, src, (size_t)T * sizeof *in);
            memcpy(tgt + (size_t)b * T, src + 1, (size_t)T * sizeof *tgt);
        }
        float loss;
        if (slm_model_forward(m, in, tgt, B, T, 0, 0, &loss, err, sizeof err))
            return cli_error(CLI_RUNTIME, "train: validation: %s", err);
        sum += loss;
        batches++;
    }
    if (batches == 0) { /* fewer than B windows: one smaller batch */
        int b_n = (int)windows;
        for (int b = 0; b < b_n; b++) {
            const int32_t *src = d->tokens + d->n_train + (size_t)b * T;
            memcpy(in + (size_t)b * T, src, (size_t)T * sizeof *in);
            memcpy(tgt + (size_t)b * T, src + 1, (size_t)T * sizeof *tgt);
        }
        float loss;
        if (slm_model_forward(m, in, tgt, b_n, T, 0, 0, &loss, err, sizeof err))
            return cli_error(CLI_RUNTIME, "train: validation: %s", err);
        sum = loss;
        batches = 1;
    }
    *out = sum / batches;
    return 0;
}

/* A run killed after its last checkpoint logged steps that the resumed run
 * does again, and a new run (start 0) replaces an old one: drop the lines
 * after `start` so each step of this run appears once. */
static void trim_log(const char *path, int start)
{
    char *text;
    size_t len, kept = 0;
    if (read_file(path, (size_t)1 << 30, &text, &len, NULL, 0)) return;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        int step;
        if (sscanf(text + at, "{\"step\":%d", &step) == 1 && step <= start) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        }
        at = end;
    }
    if (kept != len) atomic_write(path, text, kept, NULL, 0);
    free(text);
}

static FILE *open_log(const train_args *a, int start)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/log.jsonl", a->out);
    trim_log(path, start);
    return fopen(path, "a");
}

static int params_finite(slm_model *m)
{
    const float *p = slm_model_params(m);
    size_t n = slm_model_num_params(m), bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) bad += !isfinite(p[i]);
    return bad == 0;
}

/* One optimizer step: accumulate gradients over the micro-batches, update. */
static int train_step(const train_args *a, slm_model *m, const train_data *d, int step,
                      int32_t *in, int32_t *tgt, float *loss, float *grad_norm, float *lr)
{
    char err[512];
    slm_model_zero_grad(m);
    double sum = 0.0;
    for (int micro = 0; micro < a->grad_accum; micro++) {
        train_data_batch(d, a, step, micro, in, tgt);
        uint64_t dropout_seed = a->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)step * 1000003u + micro;
        float l;
        if (slm_model_forward(m, in, tgt, a->batch, a->context, 1, dropout_seed, &l, err,
                              sizeof err) ||
            slm_model_backward(m, 1.0f / (float)a->grad_accum, err, sizeof err))
            return cli_error(CLI_RUNTIME, "train: step %d: %s", step, err);
        sum += l;
    }
    *loss = (float)(sum / a->grad_accum);
    if (!isfinite(*loss))
        return cli_error(CLI_RUNTIME,
                         "train: the loss became %s at step %d; stopping (the last checkpoint "
                         "in %s is kept; try a lower --lr)",
                         isnan(*loss) ? "NaN" : "infinite", step, a->out);
    *lr = slm_lr_schedule((float)a->lr, step, a->warmup, a->steps);
    slm_adamw_opts o = {*lr, 0.9f, 0.95f, 1e-8f, (float)a->weight_decay, (float)a->grad_clip};
    if (slm_model_adamw_step(m, &o, step, grad_norm) == SLM_ENUMERIC)
        return cli_error(CLI_RUNTIME,
                         "train: the gradient became non-finite at step %d; stopping (the last "
                         "checkpoint in %s is kept; try a lower --lr)",
                         step, a->out);
    /* A finite gradient can still push a weight past FLT_MAX (a large --lr
     * times --weight-decay grows weights geometrically): never save that. */
    if (!params_finite(m))
        return cli_error(CLI_RUNTIME,
                         "train: the weights became non-finite at step %d; stopping (the last "
                         "checkpoint in %s is kept; try a lower --lr or --weight-decay)",
                         step, a->out);
    return 0;
}

static int save(const train_args *a, slm_model *m, int step, uint64_t data_hash)
{
    char err[512];
    if (train_checkpoint_save(a, m, step, data_hash, err, sizeof err))
        return cli_error(CLI_RUNTIME, "train: saving the checkpoint of step %d: %s", step, err);
    return 0;
}

int train_loop(const train_args *a, slm_model *m, const train_data *d, int start,
               uint64_t data_hash)
{
    size_t bt = (size_t)a->batch * a->context;
    int32_t *in = malloc(bt * sizeof *in), *tgt = malloc(bt * sizeof *tgt);
    FILE *log = open_log(a, start);
    int rc = 0;
    if (!in || !tgt) rc = cli_error(CLI_RUNTIME, "train: out of memory");
    else if (!log) rc = cli_error(CLI_RUNTIME, "train: cannot append to %s/log.jsonl", a->out);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_requested = 0;

    progress p = {isatty(STDERR_FILENO), now_seconds(), start, NAN};
    int end = a->stop_after && a->stop_after < a->steps ? a->stop_after : a->steps;
    int step = start, saved_step = start;
    float last_loss = NAN;
    double t_prev = now_seconds();
    while (!rc && step < end && !stop_requested) {
        float loss = 0.0f, norm = 0.0f, lr = 0.0f;
        if ((rc = train_step(a, m, d, step + 1, in, tgt, &loss, &norm, &lr))) break;
        step++;
        last_loss = loss;
        double t = now_seconds(), tok_s = (double)bt * a->grad_accum / (t - t_prev);
        t_prev = t;
        int eval_now = (a->eval_every > 0 && step % a->eval_every == 0) || step == a->steps;
        if (eval_now && (rc = validation_loss(a, m, d, in, tgt, &p.last_val))) break;
        fprintf(log, "{\"step\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6g,\"tok_s\":%.1f", step,
                loss, lr, norm, tok_s);
        if (eval_now) fprintf(log, ",\"val_loss\":%.6f", p.last_val);
        fputs("}\n", log);
        fflush(log);
        progress_draw(&p, a, step, loss, tok_s, 0);
        if ((a->save_every > 0 && step % a->save_every == 0) || step == end) {
            if ((rc = save(a, m, step, data_hash))) break;
            saved_step = step;
        }
    }
    if (!rc && step != saved_step && (rc = save(a, m, step, data_hash)) == 0) saved_step = step;
    if (p.tty) fputc('\n', stderr);
    if (!rc && step > start) {
        printf("step %d: train loss %.4f", step, last_loss);
        if (!isnan(p.last_val)) printf(", validation loss %.4f", p.last_val);
        printf("; checkpoint in %s\n", a->out);
    }
    if (!rc && stop_requested)
        fprintf(stderr, "slm: train: interrupted; saved step %d in %s (continue with: slm train "
                        "--resume %s)\n", saved_step, a->out, a->out);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (log) fclose(log);
    free(in);
    free(tgt);
    return rc;
}

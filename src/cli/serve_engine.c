/*
 * The engine of slm serve: --parallel slots, each with its own KV cache,
 * sampler and token history, a bounded queue of requests waiting for a
 * slot, and the one thread that runs the model.
 *
 * Each turn the engine thread runs one step of every busy slot, in slot
 * order: a prompt chunk of up to PREFILL_CHUNK tokens, or one new token.
 * Decode steps are therefore serialised round-robin instead of running in
 * parallel threads: slm_model_decode keeps its scratch in the KV cache, so
 * slots could decode concurrently, but each step already uses every core
 * (OpenMP + OpenBLAS), and concurrent steps would oversubscribe them and
 * make OpenBLAS run from several threads at once. Serialised, a request
 * computes the same numbers whatever else is running, and a long prompt
 * delays the others by at most one chunk per turn.
 *
 * The engine never waits for a client: tokens go into the request's
 * buffer and the connection's thread sends them at the client's pace.
 */
#include "cli/serve.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFILL_CHUNK 64

typedef struct {
    slm_kv_cache *cache;
    serve_request *req; /* NULL when idle; written by the engine thread only */
    slm_sampler *sampler;
    int32_t *history;   /* prompt + generated, [2 · n_positions]             */
    int n_hist;
    int prefilled;      /* prompt tokens decoded so far                      */
    float *logits;      /* [vocab_size]                                      */
} slot;

typedef struct attn_job {
    const int32_t *tokens;
    int T, layer;
    float *weights; /* [n_head][T]                                           */
    int rc, done;
    char *err;
    size_t errlen;
    struct attn_job *next;
} attn_job;

struct serve_engine {
    slm_model *model;
    slm_tokenizer *tok;
    serve_metrics *metrics;
    int n_slots, queue_cap, threads;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the engine thread waits here for requests      */
    pthread_cond_t idle; /* drain waits here for the last request          */
    pthread_cond_t jobs_done;
    serve_request *head, *tail;
    int queued, busy, draining, stop;
    attn_job *jobs;
    pthread_t thread;
    int started;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void serve_params_free(serve_params *p)
{
    free(p->prompt);
    for (int i = 0; i < p->n_stop; i++) free(p->stop[i]);
    memset(p, 0, sizeof *p);
}

static void request_free(serve_request *r)
{
    serve_params_free(&r->p);
    pthread_cond_destroy(&r->cv);
    free(r->text);
    free(r->ids);
    free(r->tok_end);
    free(r);
}

/* Lock held. */
static void unref(serve_request *r)
{
    if (--r->refs == 0) request_free(r);
}

void serve_engine_lock(serve_engine *e) { pthread_mutex_lock(&e->mu); }
void serve_engine_unlock(serve_engine *e) { pthread_mutex_unlock(&e->mu); }

void serve_request_wait(serve_engine *e, serve_request *r, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &e->mu, &ts);
}

void serve_request_release(serve_engine *e, serve_request *r)
{
    pthread_mutex_lock(&e->mu);
    unref(r);
    pthread_mutex_unlock(&e->mu);
}

void serve_request_cancel(serve_engine *e, serve_request *r)
{
    pthread_mutex_lock(&e->mu);
    if (r->state == REQ_DONE || r->cancelled) {
        pthread_mutex_unlock(&e->mu);
        return;
    }
    r->cancelled = 1;
    if (r->state == REQ_QUEUED) { /* never started: leave the queue now */
        serve_request **pp = &e->head;
        while (*pp != r) pp = &(*pp)->next;
        *pp = r->next;
        if (e->tail == r) {
            e->tail = NULL;
            for (serve_request *q = e->head; q; q = q->next) e->tail = q;
        }
        e->queued--;
        r->state = REQ_DONE;
        unref(r); /* the engine's reference */
        serve_metrics_cancelled(e->metrics);
        if (!e->queued && !e->busy) pthread_cond_broadcast(&e->idle);
    }
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
}

int serve_engine_submit(serve_engine *e, serve_params *p, serve_request **out)
{
    *out = NULL;
    serve_request *r = calloc(1, sizeof *r);
    if (!r) return SUBMIT_NOMEM;
    r->ids = malloc((size_t)p->max_tokens * sizeof *r->ids);
    r->tok_end = malloc((size_t)p->max_tokens * sizeof *r->tok_end);
    if (!r->ids || !r->tok_end || pthread_cond_init(&r->cv, NULL)) {
        free(r->ids);
        free(r->tok_end);
        free(r);
        return SUBMIT_NOMEM;
    }
    pthread_mutex_lock(&e->mu);
    int rc = SUBMIT_OK;
    /* Free slots take requests at once; beyond them queue_cap may wait. */
    if (e->draining) rc = SUBMIT_DRAINING;
    else if (e->queued >= e->queue_cap + (e->n_slots - e->busy)) rc = SUBMIT_FULL;
    if (rc) {
        pthread_mutex_unlock(&e->mu);
        pthread_cond_destroy(&r->cv);
        free(r->ids);
        free(r->tok_end);
        free(r);
        return rc;
    }
    r->p = *p;
    memset(p, 0, sizeof *p);
    r->refs = 2;
    r->state = REQ_QUEUED;
    r->t_submit = now();
    if (e->tail) e->tail->next = r;
    else e->head = r;
    e->tail = r;
    e->queued++;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
    *out = r;
    return SUBMIT_OK;
}

void serve_engine_load(serve_engine *e, int *queued, int *busy, int *slots)
{
    pthread_mutex_lock(&e->mu);
    *queued = e->queued;
    *busy = e->busy;
    *slots = e->n_slots;
    pthread_mutex_unlock(&e->mu);
}

int serve_engine_draining(serve_engine *e)
{
    pthread_mutex_lock(&e->mu);
    int d = e->draining;
    pthread_mutex_unlock(&e->mu);
    return d;
}

void serve_engine_drain(serve_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->draining = 1;
    while (e->queued || e->busy) pthread_cond_wait(&e->idle, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

/* Ends a slot's request (reason NULL: cancelled or failed). Engine thread. */
static void finish(serve_engine *e, slot *s, const char *reason, const char *error)
{
    serve_request *r = s->req;
    double latency = now() - r->t_submit;
    pthread_mutex_lock(&e->mu);
    r->state = REQ_DONE;
    r->finish = reason;
    if (error) snprintf(r->error, sizeof r->error, "%s", error);
    if (reason) serve_text_flush(r);
    pthread_cond_broadcast(&r->cv);
    int cancelled = r->cancelled;
    unref(r);
    s->req = NULL;
    e->busy--;
    if (!e->queued && !e->busy) pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->mu);
    if (cancelled) serve_metrics_cancelled(e->metrics);
    else if (reason) serve_metrics_latency(e->metrics, latency);
    slm_sampler_free(s->sampler);
    s->sampler = NULL;
}

/* Queue → free slots. Lock held. */
static void admit(serve_engine *e)
{
    for (int i = 0; i < e->n_slots && e->head; i++) {
        slot *s = &e->slots[i];
        if (s->req) continue;
        serve_request *r = e->head;
        e->head = r->next;
        if (!e->head) e->tail = NULL;
        e->queued--;
        r->next = NULL;
        r->state = REQ_RUNNING;
        s->req = r;
        e->busy++;
        slm_kv_cache_reset(s->cache);
        memcpy(s->history, r->p.prompt, (size_t)r->p.n_prompt * sizeof *s->history);
        s->n_hist = r->p.n_prompt;
        s->prefilled = 0;
    }
}

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* When the context is full, generation goes on from the most recent half
 * of it in a fresh cache (as slm generate does). */
static int decode_next(serve_engine *e, slot *s, int32_t token, char *err, size_t errlen)
{
    int ctx = slm_model_config(e->model)->n_positions;
    if (slm_kv_cache_length(s->cache) < ctx)
        return slm_model_decode(e->model, s->cache, &token, 1, s->logits, err, errlen);
    int keep = ctx / 2 > 0 ? ctx / 2 : 1;
    slm_kv_cache_reset(s->cache);
    return slm_model_decode(e->model, s->cache, s->history + s->n_hist - keep, keep, s->logits,
                            err, errlen);
}

/* One step of a busy slot: a chunk of the prompt, or one new token. */
static void step(serve_engine *e, slot *s)
{
    serve_request *r = s->req;
    char err[256];
    pthread_mutex_lock(&e->mu);
    int cancelled = r->cancelled;
    pthread_mutex_unlock(&e->mu);
    if (cancelled) {
        finish(e, s, NULL, NULL);
        return;
    }
    const slm_config *c = slm_model_config(e->model);
    if (s->prefilled == 0) {
        serve_metrics_tokens(e->metrics, (uint64_t)r->p.n_prompt, 0);
        if (slm_sampler_create(c->vocab_size, r->p.temperature, r->p.top_k, r->p.top_p,
                               r->p.seed, &s->sampler, err, sizeof err)) {
            finish(e, s, NULL, err);
            return;
        }
    }
    if (s->prefilled < r->p.n_prompt) {
        int n = r->p.n_prompt - s->prefilled;
        if (n > PREFILL_CHUNK) n = PREFILL_CHUNK;
        if (slm_model_decode(e->model, s->cache, r->p.prompt + s->prefilled, n, s->logits, err,
                             sizeof err)) {
            finish(e, s, NULL, err);
            return;
        }
        s->prefilled += n;
        return;
    }
    if (!all_finite(s->logits, c->vocab_size)) {
        finish(e, s, NULL, "the model's logits became NaN or infinite; its weights are unusable");
        return;
    }
    int32_t next = slm_sampler_next(s->sampler, s->logits);
    if (next == slm_tokenizer_eot(e->tok)) {
        finish(e, s, "stop", NULL);
        return;
    }
    s->history[s->n_hist++] = next;
    char *bytes = NULL; /* the token's bytes (decode of one id: any tokenizer) */
    size_t len = 0;
    if (slm_tokenizer_decode(e->tok, &next, 1, &bytes, &len, err, sizeof err)) {
        finish(e, s, NULL, err);
        return;
    }
    pthread_mutex_lock(&e->mu);
    r->ids[r->n_ids++] = next;
    int stopped = len > 0 ? serve_text_append(r, bytes, len) : 0;
    int n_ids = r->n_ids;
    r->tok_end[n_ids - 1] = r->ready;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&e->mu);
    free(bytes);
    serve_metrics_tokens(e->metrics, 0, 1);
    if (stopped < 0) finish(e, s, NULL, "out of memory");
    else if (stopped) finish(e, s, "stop", NULL);
    else if (n_ids == r->p.max_tokens) finish(e, s, "length", NULL);
    else if (decode_next(e, s, next, err, sizeof err)) finish(e, s, NULL, err);
}

/* Attention weights of the last query of job->tokens, every head, of one
 * layer or (layer -1) of every layer: rows [maps][T] out of the library's
 * [maps][T][T]. */
static void run_job(serve_engine *e, attn_job *j)
{
    const slm_config *c = slm_model_config(e->model);
    size_t maps = (size_t)c->n_head * (j->layer < 0 ? (size_t)c->n_layer : 1);
    size_t T = (size_t)j->T;
    float *all = malloc(maps * T * T * sizeof *all);
    if (!all) {
        j->rc = SLM_ENOMEM;
        snprintf(j->err, j->errlen, "out of memory for %d×%d attention weights", j->T, j->T);
        return;
    }
    j->rc = slm_model_attention_weights(e->model, j->tokens, j->T, j->layer, all, j->err,
                                        j->errlen);
    if (!j->rc)
        for (size_t m = 0; m < maps; m++)
            memcpy(j->weights + m * T, all + (m * T + T - 1) * T, T * sizeof *all);
    free(all);
}

int serve_engine_attention(serve_engine *e, const int32_t *tokens, int T, int layer,
                           float *weights, char *err, size_t errlen)
{
    attn_job j = {tokens, T, layer, weights, 0, 0, err, errlen, NULL};
    pthread_mutex_lock(&e->mu);
    j.next = e->jobs;
    /* j lives on this stack while the engine uses it: we wait for done. */
    // cppcheck-suppress autoVariables
    e->jobs = &j;
    pthread_cond_signal(&e->work);
    while (!j.done) pthread_cond_wait(&e->jobs_done, &e->mu);
    pthread_mutex_unlock(&e->mu);
    return j.rc;
}

static void *engine_main(void *arg)
{
    serve_engine *e = arg;
    /* OpenMP's thread count is per thread: this one runs the model. */
    if (e->threads > 0) omp_set_num_threads(e->threads);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        admit(e);
        if (!e->busy && !e->jobs) {
            if (e->stop) break;
            pthread_cond_wait(&e->work, &e->mu);
            continue;
        }
        attn_job *jobs = e->jobs;
        e->jobs = NULL;
        pthread_mutex_unlock(&e->mu);
        for (attn_job *j = jobs; j; j = j->next) run_job(e, j);
        pthread_mutex_lock(&e->mu);
        for (attn_job *j = jobs, *next; j; j = next) {
            next = j->next; /* j lives on its waiter's stack: read before done */
            j->done = 1;
        }
        if (jobs) pthread_cond_broadcast(&e->jobs_done);
        pthread_mutex_unlock(&e->mu);
        for (int i = 0; i < e->n_slots; i++)
            if (e->slots[i].req) step(e, &e->slots[i]);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int serve_engine_create(slm_model *m, slm_tokenizer *tok, int parallel, int queue_cap,
                        int threads, serve_metrics *metrics, serve_engine **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    serve_engine *e = calloc(1, sizeof *e);
    if (!e) return snprintf(err, errlen, "out of memory"), SLM_ENOMEM;
    e->model = m;
    e->tok = tok;
    e->metrics = metrics;
    e->n_slots = parallel;
    e->queue_cap = queue_cap;
    e->threads = threads;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->idle, NULL);
    pthread_cond_init(&e->jobs_done, NULL);
    const slm_config *c = slm_model_config(m);
    int rc = SLM_OK;
    e->slots = calloc((size_t)parallel, sizeof *e->slots);
    if (!e->slots) rc = SLM_ENOMEM;
    /* Every slot holds a whole context, reserved now: a server that starts
     * has the memory for --parallel requests of any length. */
    for (int i = 0; !rc && i < parallel; i++) {
        slot *s = &e->slots[i];
        rc = slm_kv_cache_create(m, c->n_positions, &s->cache, err, errlen);
        if (rc) break;
        s->history = malloc(2 * (size_t)c->n_positions * sizeof *s->history);
        s->logits = malloc((size_t)c->vocab_size * sizeof *s->logits);
        if (!s->history || !s->logits) rc = SLM_ENOMEM;
    }
    if (rc == SLM_ENOMEM && err && !err[0]) snprintf(err, errlen, "out of memory");
    if (!rc && pthread_create(&e->thread, NULL, engine_main, e)) {
        snprintf(err, errlen, "cannot start the engine thread");
        rc = SLM_ENOMEM;
    }
    if (rc) {
        serve_engine_free(e);
        return rc;
    }
    e->started = 1;
    *out = e;
    return SLM_OK;
}

void serve_engine_free(serve_engine *e)
{
    if (!e) return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = 1;
        e->draining = 1;
        pthread_cond_signal(&e->work);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    /* Requests nobody ran (only when stopping without a drain). */
    while (e->head) {
        serve_request *r = e->head;
        e->head = r->next;
        r->state = REQ_DONE;
        unref(r);
    }
    for (int i = 0; e->slots && i < e->n_slots; i++) {
        slot *s = &e->slots[i];
        slm_kv_cache_free(s->cache);
        slm_sampler_free(s->sampler);
        free(s->history);
        free(s->logits);
    }
    free(e->slots);
    pthread_cond_destroy(&e->work);
    pthread_cond_destroy(&e->idle);
    pthread_cond_destroy(&e->jobs_done);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

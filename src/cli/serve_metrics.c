/* Prometheus metrics of slm serve (text exposition format 0.0.4):
 * requests by endpoint and status, prompt and generated tokens, the latency
 * of generation requests as a histogram, queue depth and busy slots. */
#include "cli/serve.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds (seconds) of the latency buckets; the last bucket is +Inf. */
static const double bounds[SERVE_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60,  120};
static const char *const endpoints[EP_COUNT] = {
    "/v1/completions", "/v1/chat/completions", "/v1/tokenize", "/v1/detokenize", "/v1/models",
    "/health",         "/metrics",             "/",            "/v1/attention",  "other"};
static const char *const classes[6] = {"2xx", "400", "404", "405", "413", "other"};

int serve_metrics_init(serve_metrics *m)
{
    memset(m, 0, sizeof *m);
    return pthread_mutex_init(&m->mu, NULL) ? -1 : 0;
}

void serve_metrics_destroy(serve_metrics *m) { pthread_mutex_destroy(&m->mu); }

static int status_class(int status)
{
    switch (status) {
    case 400: return 1;
    case 404: return 2;
    case 405: return 3;
    case 413: return 4;
    default: return status >= 200 && status < 300 ? 0 : 5;
    }
}

void serve_metrics_request(serve_metrics *m, int endpoint, int status)
{
    if (endpoint < 0 || endpoint >= EP_COUNT) endpoint = EP_OTHER;
    pthread_mutex_lock(&m->mu);
    m->requests[endpoint][status_class(status)]++;
    if (status == 503) m->rejected++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_latency(serve_metrics *m, double seconds)
{
    int b = 0;
    while (b < SERVE_N_BUCKETS && seconds > bounds[b]) b++;
    pthread_mutex_lock(&m->mu);
    m->bucket[b]++;
    m->latency_sum += seconds;
    m->latency_count++;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_tokens(serve_metrics *m, uint64_t prompt, uint64_t generated)
{
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->generated_tokens += generated;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_cancelled(serve_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->cancelled++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *s, const char *fmt, ...)
{
    if (s->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->failed = 1;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = 2 * s->cap + (size_t)n + 1;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->failed = 1;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
}

int serve_metrics_render(serve_metrics *m, int queue_depth, int slots_busy, int slots_total,
                         char **out, size_t *len)
{
    strbuf s = {malloc(4096), 0, 4096, 0};
    if (!s.buf) return -1;
    pthread_mutex_lock(&m->mu);
    serve_metrics c = *m; /* a consistent snapshot; the copy's mutex is unused */
    pthread_mutex_unlock(&m->mu);
    sb_printf(&s, "# HELP slm_requests_total HTTP requests answered, by endpoint and status.\n"
                  "# TYPE slm_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int k = 0; k < 6; k++)
            if (c.requests[e][k])
                sb_printf(&s, "slm_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n",
                          endpoints[e], classes[k], (unsigned long long)c.requests[e][k]);
    sb_printf(&s,
              "# HELP slm_requests_rejected_total Requests answered 503 (queue full or "
              "draining).\n# TYPE slm_requests_rejected_total counter\n"
              "slm_requests_rejected_total %llu\n"
              "# HELP slm_requests_cancelled_total Generations stopped because the client "
              "went away.\n# TYPE slm_requests_cancelled_total counter\n"
              "slm_requests_cancelled_total %llu\n"
              "# HELP slm_prompt_tokens_total Prompt tokens processed.\n"
              "# TYPE slm_prompt_tokens_total counter\nslm_prompt_tokens_total %llu\n"
              "# HELP slm_generated_tokens_total Tokens generated.\n"
              "# TYPE slm_generated_tokens_total counter\nslm_generated_tokens_total %llu\n",
              (unsigned long long)c.rejected, (unsigned long long)c.cancelled,
              (unsigned long long)c.prompt_tokens, (unsigned long long)c.generated_tokens);
    sb_printf(&s, "# HELP slm_request_duration_seconds Time from a generation request's "
                  "arrival to its last token.\n# TYPE slm_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < SERVE_N_BUCKETS; b++) {
        cum += c.bucket[b];
        sb_printf(&s, "slm_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[b],
                  (unsigned long long)cum);
    }
    cum += c.bucket[SERVE_N_BUCKETS];
    sb_printf(&s,
              "slm_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
              "slm_request_duration_seconds_sum %.6f\nslm_request_duration_seconds_count %llu\n",
              (unsigned long long)cum, c.latency_sum, (unsigned long long)c.latency_count);
    sb_printf(&s,
              "# HELP slm_queue_depth Requests waiting for a slot.\n# TYPE slm_queue_depth gauge\n"
              "slm_queue_depth %d\n"
              "# HELP slm_slots_busy Slots (KV caches) generating now.\n"
              "# TYPE slm_slots_busy gauge\nslm_slots_busy %d\n"
              "# HELP slm_slots_total Slots (--parallel).\n# TYPE slm_slots_total gauge\n"
              "slm_slots_total %d\n",
              queue_depth, slots_busy, slots_total);
    if (s.failed) {
        free(s.buf);
        return -1;
    }
    *out = s.buf;
    *len = s.len;
    return 0;
}

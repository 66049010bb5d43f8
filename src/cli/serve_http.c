/*
 * The HTTP side of slm serve, on libmicrohttpd: one thread per connection
 * (a connection waiting for tokens blocks only itself), request bodies
 * gathered up to a size limit (413 beyond), routing with 404 for unknown
 * paths and 405 (with Allow) for a known path with the wrong method.
 */
#include "cli/serve.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Connections beyond this wait in the kernel's accept queue. */
#define MAX_CONNECTIONS 256
/* An idle connection (no bytes either way) is closed after this many s. */
#define IDLE_TIMEOUT_S 300

struct serve_http {
    struct MHD_Daemon *daemon;
    serve_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight; /* requests begun and not completed                      */
    int port;
};

typedef struct {
    int endpoint, route; /* route: index into routes[], -1 if none          */
    char *body;
    size_t len, cap;
    int too_big;
} request_state;

static const struct {
    const char *path, *method;
    int endpoint;
} routes[] = {
    {"/v1/completions", "POST", EP_COMPLETIONS},
    {"/v1/chat/completions", "POST", EP_CHAT},
    {"/v1/tokenize", "POST", EP_TOKENIZE},
    {"/v1/detokenize", "POST", EP_DETOKENIZE},
    {"/v1/attention", "POST", EP_ATTENTION},
    {"/v1/models", "GET", EP_MODELS},
    {"/health", "GET", EP_HEALTH},
    {"/metrics", "GET", EP_METRICS},
    {"/", "GET", EP_PAGE},
};
#define N_ROUTES ((int)(sizeof routes / sizeof *routes))

static int find_route(const char *url, int *endpoint)
{
    for (int i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, routes[i].path)) {
            *endpoint = routes[i].endpoint;
            return i;
        }
    *endpoint = EP_OTHER;
    return -1;
}

static enum MHD_Result send_reply(serve_http *h, struct MHD_Connection *con, int endpoint,
                                  serve_reply *r)
{
    struct MHD_Response *resp = r->stream;
    if (!resp) {
        if (r->body)
            resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        else
            resp = MHD_create_response_from_buffer(r->len, (void *)r->static_body,
                                                   MHD_RESPMEM_PERSISTENT);
        if (!resp) {
            free(r->body);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", r->content_type);
    }
    if (r->retry_after) {
        char s[16];
        snprintf(s, sizeof s, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    serve_metrics_request(h->ctx->metrics, endpoint, r->status);
    enum MHD_Result ok = MHD_queue_response(con, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void dispatch(serve_http *h, struct MHD_Connection *con, const char *method,
                     request_state *st, serve_reply *out)
{
    serve_ctx *c = h->ctx;
    if (st->route < 0) {
        api_error(out, 404, "no such endpoint");
        return;
    }
    if (strcmp(method, routes[st->route].method)) {
        out->allow = routes[st->route].method;
        api_error(out, 405, "%s takes %s, not %s", routes[st->route].path,
                  routes[st->route].method, method);
        return;
    }
    if (st->too_big) {
        api_error(out, 413, "the request body exceeds %zu bytes", c->max_body);
        return;
    }
    const char *body = st->body ? st->body : "";
    switch (st->endpoint) {
    case EP_COMPLETIONS: api_completions(c, con, body, st->len, 0, out); break;
    case EP_CHAT: api_completions(c, con, body, st->len, 1, out); break;
    case EP_TOKENIZE: api_tokenize(c, body, st->len, out); break;
    case EP_DETOKENIZE: api_detokenize(c, body, st->len, out); break;
    case EP_ATTENTION: api_attention(c, body, st->len, out); break;
    case EP_MODELS: api_models(c, out); break;
    case EP_HEALTH: api_health(c, out); break;
    case EP_METRICS: api_metrics(c, out); break;
    case EP_PAGE: {
        size_t len;
        out->static_body = serve_page(&len);
        out->len = len;
        out->status = 200;
        out->content_type = "text/html; charset=utf-8";
        break;
    }
    default: api_error(out, 404, "no such endpoint");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    serve_http *h = cls;
    request_state *st = *con_cls;
    (void)version;
    if (!st) { /* the headers are in; the body (if any) follows */
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        st->route = find_route(url, &st->endpoint);
        *con_cls = st;
        pthread_mutex_lock(&h->mu);
        h->in_flight++;
        pthread_mutex_unlock(&h->mu);
        /* A declared length over the limit is refused before reading it. */
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > h->ctx->max_body && st->route >= 0 &&
            !strcmp(method, routes[st->route].method)) {
            st->too_big = 1;
            serve_reply r = {0};
            dispatch(h, con, method, st, &r);
            return send_reply(h, con, st->endpoint, &r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_big) return MHD_YES;
        if (st->len + n > h->ctx->max_body) { /* chunked: no length to check first */
            st->too_big = 1;
            free(st->body);
            st->body = NULL;
            st->len = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = 2 * (st->len + n) + 1;
            char *b = realloc(st->body, cap);
            if (!b) return MHD_NO;
            st->body = b;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    serve_reply r = {0};
    dispatch(h, con, method, st, &r);
    return send_reply(h, con, st->endpoint, &r);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    serve_http *h = cls;
    request_state *st = *con_cls;
    (void)con;
    (void)why;
    if (!st) return;
    free(st->body);
    free(st);
    *con_cls = NULL;
    pthread_mutex_lock(&h->mu);
    if (--h->in_flight == 0) pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

int serve_http_start(serve_ctx *ctx, const char *host, int port, serve_http **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE},
                    *ai = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "cannot resolve host '%s': %s", host, gai_strerror(gai));
        return SLM_EINVAL;
    }
    serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return SLM_ENOMEM;
    }
    h->ctx = ctx;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not an address of this host)",
                 host, port);
        serve_http_stop(h, 0);
        return SLM_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : port;
    *out = h;
    return SLM_OK;
}

int serve_http_port(const serve_http *h) { return h->port; }

void serve_http_quiesce(serve_http *h)
{
    MHD_socket s = MHD_quiesce_daemon(h->daemon);
    if (s != MHD_INVALID_SOCKET) close(s);
}

void serve_http_stop(serve_http *h, double seconds)
{
    if (!h) return;
    if (h->daemon) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)seconds;
        pthread_mutex_lock(&h->mu);
        while (h->in_flight > 0)
            if (pthread_cond_timedwait(&h->cv, &h->mu, &ts)) break;
        pthread_mutex_unlock(&h->mu);
        MHD_stop_daemon(h->daemon);
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/*
 * POST /v1/completions and /v1/chat/completions: OpenAI's request fields
 * (prompt or messages, max_tokens, temperature, top_p, top_k, seed, stop,
 * stream), its reply objects, and server-sent events for stream: true — one
 * "data: {chunk}" per batch of new text, a last chunk with finish_reason and
 * usage, then "data: [DONE]".
 *
 * Extension (used by the web page): "return_tokens": true adds the prompt's
 * and the generated tokens as {"id", "text"} objects ("prompt_tokens" in the
 * first chunk, "tokens" with each batch; both in a non-streamed reply).
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "cli/serve_api.h"

#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often a connection waiting for tokens checks that its client is
 * still there, in ms. */
#define WAIT_SLICE_MS 100

typedef struct {
    serve_params p;
    int stream, chat, return_tokens;
} gen_args;

/* The chat template: every message as "<|role|>\ncontent\n", then the
 * assistant's tag; generation stops where the model opens another tag. */
static const char chat_stop[] = "<|";

static int parse_stop(const json_value *root, serve_params *p, serve_reply *out)
{
    const json_value *v = json_get(root, "stop");
    if (!v || v->type == SLM_JSON_NULL) return 0;
    const json_value *one[1] = {v};
    int n = 1;
    if (v->type == SLM_JSON_ARRAY) {
        if (v->count > 4) {
            api_error(out, 400, "'stop' holds at most 4 strings, got %u", v->count);
            return -1;
        }
        n = 0;
    } else if (v->type != SLM_JSON_STRING) {
        api_error(out, 400, "'stop' must be a string or an array of strings");
        return -1;
    }
    json_iter it = json_iterate(v);
    const json_value *k, *s = NULL;
    for (int i = 0; n ? i < 1 : json_next(&it, &k, &s); i++) {
        if (n) s = one[0];
        if (s->type != SLM_JSON_STRING || s->len == 0 || s->len > SERVE_MAX_STOP_LEN ||
            strlen(s->u.str) != s->len) {
            api_error(out, 400, "each stop string must be a string of 1 to %d bytes",
                      SERVE_MAX_STOP_LEN);
            return -1;
        }
        if (!(p->stop[p->n_stop] = strdup(s->u.str))) {
            api_error(out, 500, "out of memory");
            return -1;
        }
        p->n_stop++;
    }
    return 0;
}

/* messages → the template's text (malloc'd). */
static char *chat_text(const json_value *msgs, size_t *len, serve_reply *out)
{
    if (!msgs || msgs->type != SLM_JSON_ARRAY || msgs->count == 0) {
        api_error(out, 400, "'messages' must be a non-empty array of {role, content}");
        return NULL;
    }
    size_t cap = 32;
    json_iter it = json_iterate(msgs);
    const json_value *k, *m;
    int i = 0;
    while (json_next(&it, &k, &m)) {
        const json_value *role = json_get(m, "role"), *content = json_get(m, "content");
        if (m->type != SLM_JSON_OBJECT || !role || role->type != SLM_JSON_STRING ||
            !content || content->type != SLM_JSON_STRING) {
            api_error(out, 400, "'messages'[%d] must be an object with string 'role' and "
                                "'content'", i);
            return NULL;
        }
        cap += role->len + content->len + 8;
        i++;
    }
    char *text = malloc(cap);
    if (!text) {
        api_error(out, 500, "out of memory");
        return NULL;
    }
    size_t n = 0;
    it = json_iterate(msgs);
    while (json_next(&it, &k, &m)) {
        const json_value *role = json_get(m, "role"), *content = json_get(m, "content");
        n += (size_t)sprintf(text + n, "<|%s|>\n", role->u.str);
        memcpy(text + n, content->u.str, content->len);
        n += content->len;
        text[n++] = '\n';
    }
    n += (size_t)sprintf(text + n, "<|assistant|>\n");
    *len = n;
    return text;
}

/* prompt (a string, one string in an array, or an array of token ids) or
 * the chat messages → p->prompt. */
static int prompt_ids(serve_ctx *c, const json_value *root, int chat, serve_params *p,
                      serve_reply *out)
{
    const json_value *v = json_get(root, chat ? "messages" : "prompt");
    char *owned = NULL;
    const char *text = NULL;
    size_t len = 0;
    char err[256];
    if (chat) {
        if (!(owned = chat_text(v, &len, out))) return -1;
        text = owned;
    } else if (v && v->type == SLM_JSON_STRING) {
        text = v->u.str, len = v->len;
    } else if (v && v->type == SLM_JSON_ARRAY && v->count == 1 &&
               v[1].type == SLM_JSON_STRING) {
        text = v[1].u.str, len = v[1].len;
    } else if (v && v->type == SLM_JSON_ARRAY) {
        if (api_get_ids(c, v, "prompt", &p->prompt, &p->n_prompt, out)) return -1;
    } else {
        api_error(out, 400, "'prompt' must be a string or an array of token ids%s",
                  v ? "" : " (it is missing)");
        return -1;
    }
    if (text) {
        size_t n = 0;
        int rc = slm_tokenizer_encode(c->tok, text, len, &p->prompt, &n, err, sizeof err);
        free(owned);
        if (rc) {
            api_error(out, 400, "%s", err);
            return -1;
        }
        p->n_prompt = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
    }
    if (p->n_prompt == 0) { /* start from the model's natural start, as slm generate */
        int32_t eot = slm_tokenizer_eot(c->tok), *one = realloc(p->prompt, sizeof *one);
        if (!one) {
            api_error(out, 500, "out of memory");
            return -1;
        }
        one[0] = eot >= 0 ? eot : '\n';
        p->prompt = one;
        p->n_prompt = 1;
    }
    int ctx = slm_model_config(c->model)->n_positions;
    if (p->n_prompt > ctx) {
        api_error(out, 400, "the prompt is %d tokens but the context holds %d", p->n_prompt, ctx);
        return -1;
    }
    return 0;
}

static int parse_args(serve_ctx *c, const json_value *root, int chat, gen_args *a,
                      serve_reply *out)
{
    int ctx = slm_model_config(c->model)->n_positions;
    int64_t max_tokens = 16, top_k = 0, n = 1, seed = 0;
    double temperature = 1.0, top_p = 1.0;
    int has_seed;
    memset(a, 0, sizeof *a);
    a->chat = chat;
    if (api_get_int(root, "max_tokens", INT64_MIN, INT64_MAX, &max_tokens, out) < 0 ||
        (chat && api_get_int(root, "max_completion_tokens", INT64_MIN, INT64_MAX, &max_tokens,
                             out) < 0))
        return -1;
    if (max_tokens < 1 || max_tokens > ctx) {
        api_error(out, 400, "'max_tokens' must be from 1 to the context (%d), got %lld", ctx,
                  (long long)max_tokens);
        return -1;
    }
    if (api_get_number(root, "temperature", 0, 2, 0, &temperature, out) < 0 ||
        api_get_number(root, "top_p", 0, 1, 1, &top_p, out) < 0 ||
        api_get_int(root, "top_k", 0, 1 << 30, &top_k, out) < 0 ||
        api_get_int(root, "n", 1, 1, &n, out) < 0 ||
        (has_seed = api_get_int(root, "seed", INT64_MIN, INT64_MAX, &seed, out)) < 0 ||
        api_get_bool(root, "stream", &a->stream, out) < 0 ||
        api_get_bool(root, "return_tokens", &a->return_tokens, out) < 0)
        return -1;
    if (!((float)top_p > 0.0f)) { /* 1e-300 is 0 as a float: no token would remain */
        api_error(out, 400, "'top_p' must be in (0, 1], got %g", top_p);
        return -1;
    }
    serve_params *p = &a->p;
    p->max_tokens = (int)max_tokens;
    p->temperature = (float)temperature;
    p->top_p = (float)top_p;
    p->top_k = (int)top_k;
    if (has_seed) {
        p->seed = (uint64_t)seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p->seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
    }
    if (parse_stop(root, p, out)) return -1;
    if (chat && !(p->stop[p->n_stop++] = strdup(chat_stop))) {
        api_error(out, 500, "out of memory");
        return -1;
    }
    return prompt_ids(c, root, chat, p, out);
}

/* 1 if the peer closed its end: a vanished client frees its slot. */
static int client_gone(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* ---- reply objects ------------------------------------------------------- */

typedef struct {
    serve_ctx *c;
    serve_request *r;
    struct MHD_Connection *con;
    int chat, return_tokens;
    char id[48];
    long created;
    size_t sent;  /* bytes of r->text sent                                  */
    int sent_ids; /* ids of r->ids sent                                     */
    int phase;    /* 0 first chunk, 1 deltas, 2 [DONE], 3 end               */
    char *buf;    /* the event being sent                                   */
    size_t len, off;
} gen_state;

static void write_usage(json_writer *w, const serve_request *r)
{
    jw_key(w, "usage", 5);
    jw_begin_object(w);
    jw_key(w, "prompt_tokens", 13);
    jw_int(w, r->p.n_prompt);
    jw_key(w, "completion_tokens", 17);
    jw_int(w, r->n_ids);
    jw_key(w, "total_tokens", 12);
    jw_int(w, r->p.n_prompt + r->n_ids);
    jw_end_object(w);
}

static void write_tokens(gen_state *s, json_writer *w, const char *key, const int32_t *ids,
                         int n)
{
    jw_key(w, key, strlen(key));
    jw_begin_array(w);
    for (int i = 0; i < n; i++) api_write_token(s->c, w, ids[i]);
    jw_end_array(w);
}

/* One object: a whole reply (whole = 1) or a stream chunk. Text is
 * r->text[from, to); ids r->ids[id_from, id_to). finish NULL: not yet. */
static void write_object(gen_state *s, json_writer *w, int whole, size_t from, size_t to,
                         int id_from, int id_to, const char *finish, int first)
{
    const serve_request *r = s->r;
    const char *object = s->chat ? (whole ? "chat.completion" : "chat.completion.chunk")
                                 : "text_completion";
    size_t n = 0;
    char *text = serve_utf8_lossy(r->text + from, to - from, &n);
    jw_begin_object(w);
    jw_key(w, "id", 2);
    jw_string(w, s->id, strlen(s->id));
    jw_key(w, "object", 6);
    jw_string(w, object, strlen(object));
    jw_key(w, "created", 7);
    jw_int(w, s->created);
    jw_key(w, "model", 5);
    jw_string(w, s->c->model_id, strlen(s->c->model_id));
    jw_key(w, "choices", 7);
    jw_begin_array(w);
    jw_begin_object(w);
    jw_key(w, "index", 5);
    jw_int(w, 0);
    if (!s->chat) {
        jw_key(w, "text", 4);
        jw_string(w, text ? text : "", text ? n : 0);
        jw_key(w, "logprobs", 8);
        jw_null(w);
    } else {
        jw_key(w, whole ? "message" : "delta", whole ? 7 : 5);
        jw_begin_object(w);
        if (whole || first) {
            jw_key(w, "role", 4);
            jw_string(w, "assistant", 9);
        }
        if (whole || first || to > from) {
            jw_key(w, "content", 7);
            jw_string(w, text ? text : "", text ? n : 0);
        }
        jw_end_object(w);
    }
    jw_key(w, "finish_reason", 13);
    if (finish) jw_string(w, finish, strlen(finish));
    else jw_null(w);
    jw_end_object(w);
    jw_end_array(w);
    if (s->return_tokens && (whole || first))
        write_tokens(s, w, "prompt_tokens", r->p.prompt, r->p.n_prompt);
    if (s->return_tokens && (whole || id_to > id_from))
        write_tokens(s, w, "tokens", r->ids + id_from, id_to - id_from);
    if (finish) write_usage(w, r);
    jw_end_object(w);
    if (!text) w->failed = SLM_ENOMEM;
    free(text);
}

/* ---- streaming ----------------------------------------------------------- */

/* "data: JSON\n\n" into s->buf; -1 if out of memory. */
static int set_event(gen_state *s, json_writer *w)
{
    char *json;
    size_t n;
    if (jw_finish(w, &json, &n, NULL, 0)) return -1;
    s->buf = malloc(n + 9);
    if (s->buf) s->len = (size_t)sprintf(s->buf, "data: %s\n\n", json);
    free(json);
    return s->buf ? 0 : -1;
}

/* The next event: new text, the end, or [DONE]. Blocks until there is one;
 * -1 when the client went away or memory ran out. */
static int next_event(gen_state *s)
{
    serve_engine *e = s->c->engine;
    serve_request *r = s->r;
    if (s->phase == 2) {
        s->buf = strdup("data: [DONE]\n\n");
        s->len = s->buf ? strlen(s->buf) : 0;
        s->phase = 3;
        return s->buf ? 0 : -1;
    }
    json_writer w;
    jw_init(&w, 0);
    serve_engine_lock(e);
    if (s->phase == 0 && (s->chat || s->return_tokens)) {
        write_object(s, &w, 0, 0, 0, 0, 0, NULL, 1);
        s->phase = 1;
        serve_engine_unlock(e);
        return set_event(s, &w);
    }
    s->phase = 1;
    for (;;) {
        /* One event per token, however far ahead the engine is: the text
         * that became sendable with it (none while a character or a
         * possible stop string is incomplete). */
        if (s->sent_ids < r->n_ids) {
            size_t end = r->tok_end[s->sent_ids] > s->sent ? r->tok_end[s->sent_ids] : s->sent;
            size_t from = s->sent;
            int id = s->sent_ids++;
            s->sent = end;
            if (end == from && !s->return_tokens) continue;
            write_object(s, &w, 0, from, end, id, id + 1, NULL, 0);
            break;
        }
        if (r->ready > s->sent) { /* the rest, once the end is known */
            write_object(s, &w, 0, s->sent, r->ready, 0, 0, NULL, 0);
            s->sent = r->ready;
            break;
        }
        if (r->state == REQ_DONE) {
            if (r->error[0]) {
                jw_discard(&w);
                jw_init(&w, 0);
                jw_begin_object(&w);
                jw_key(&w, "error", 5);
                jw_begin_object(&w);
                jw_key(&w, "message", 7);
                jw_string(&w, r->error, strlen(r->error));
                jw_key(&w, "type", 4);
                jw_string(&w, "server_error", 12);
                jw_end_object(&w);
                jw_end_object(&w);
            } else {
                write_object(s, &w, 0, 0, 0, 0, 0, r->finish ? r->finish : "stop", 0);
            }
            s->phase = 2;
            break;
        }
        if (client_gone(s->con)) {
            serve_engine_unlock(e);
            jw_discard(&w);
            return -1;
        }
        serve_request_wait(e, r, WAIT_SLICE_MS);
    }
    serve_engine_unlock(e);
    return set_event(s, &w);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    gen_state *s = cls;
    (void)pos;
    while (s->off == s->len) {
        free(s->buf);
        s->buf = NULL;
        s->len = s->off = 0;
        if (s->phase == 3) return MHD_CONTENT_READER_END_OF_STREAM;
        if (next_event(s)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/* The response is gone (sent, or the connection closed): a generation
 * still running has nobody to go to. */
static void stream_free(void *cls)
{
    gen_state *s = cls;
    serve_request_cancel(s->c->engine, s->r);
    serve_request_release(s->c->engine, s->r);
    free(s->buf);
    free(s);
}

/* ---- the endpoint -------------------------------------------------------- */

static void whole_reply(gen_state *s, serve_reply *out)
{
    serve_engine *e = s->c->engine;
    serve_request *r = s->r;
    serve_engine_lock(e);
    while (r->state != REQ_DONE) {
        if (client_gone(s->con)) {
            serve_engine_unlock(e);
            serve_request_cancel(e, r);
            api_error(out, 499, "the client closed the connection");
            return;
        }
        serve_request_wait(e, r, WAIT_SLICE_MS);
    }
    if (r->error[0]) {
        api_error(out, 500, "generation failed: %s", r->error);
    } else {
        json_writer w;
        jw_init(&w, 0);
        write_object(s, &w, 1, 0, r->len, 0, r->n_ids, r->finish ? r->finish : "stop", 0);
        api_reply_json(out, &w, 200);
    }
    serve_engine_unlock(e);
}

void api_completions(serve_ctx *c, struct MHD_Connection *con, const char *body, size_t len,
                     int chat, serve_reply *out)
{
    json_doc doc;
    if (api_parse_object(body, len, &doc, out)) return;
    gen_args a;
    int rc = parse_args(c, json_root(&doc), chat, &a, out);
    json_free(&doc);
    if (rc) {
        serve_params_free(&a.p);
        return;
    }
    gen_state *s = calloc(1, sizeof *s);
    if (!s) {
        serve_params_free(&a.p);
        api_error(out, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&c->id_mu);
    uint64_t id = ++c->next_id;
    pthread_mutex_unlock(&c->id_mu);
    snprintf(s->id, sizeof s->id, "%s-%llu", chat ? "chatcmpl" : "cmpl", (unsigned long long)id);
    s->c = c;
    s->con = con;
    s->chat = chat;
    s->return_tokens = a.return_tokens;
    s->created = (long)time(NULL);
    int queued, busy, slots;
    switch (serve_engine_submit(c->engine, &a.p, &s->r)) {
    case SUBMIT_OK: break;
    case SUBMIT_FULL:
        serve_engine_load(c->engine, &queued, &busy, &slots);
        api_error(out, 503, "all %d slots are busy and %d requests wait; retry later", slots,
                  queued);
        out->retry_after = 1;
        break;
    case SUBMIT_DRAINING: api_error(out, 503, "the server is shutting down"); break;
    default: api_error(out, 500, "out of memory");
    }
    serve_params_free(&a.p); /* what submit did not take */
    if (!s->r) {
        free(s);
        return;
    }
    if (!a.stream) {
        whole_reply(s, out);
        stream_free(s);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        api_error(out, 500, "out of memory");
        return;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    out->status = 200;
    out->stream = resp;
}

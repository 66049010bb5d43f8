/* The small endpoints of slm serve (tokenize, detokenize, models, health,
 * metrics, attention) and what every endpoint shares: JSON bodies in,
 * JSON replies and JSON errors out ({"error": {"message", "type", "code"}},
 * as the OpenAI API answers). */
#include "cli/serve_api.h"

#include "io/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTENTION_MAX_BYTES (512 << 20)

void api_error(serve_reply *out, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "error", 5);
    jw_begin_object(&w);
    size_t n;
    char *safe = serve_utf8_lossy(msg, strlen(msg), &n);
    jw_key(&w, "message", 7);
    jw_string(&w, safe ? safe : "error", safe ? n : 5);
    free(safe);
    const char *type = status == 503   ? "unavailable_error"
                       : status >= 500 ? "server_error"
                       : status == 404 ? "not_found_error"
                                       : "invalid_request_error";
    jw_key(&w, "type", 4);
    jw_string(&w, type, strlen(type));
    jw_key(&w, "code", 4);
    jw_int(&w, status);
    jw_end_object(&w);
    jw_end_object(&w);
    api_reply_json(out, &w, status);
}

void api_reply_json(serve_reply *out, json_writer *w, int status)
{
    char *text;
    size_t len;
    if (jw_finish(w, &text, &len, NULL, 0)) {
        /* Only out of memory: a fixed reply needs no allocation. */
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"code\":500}}";
        out->status = 500;
        out->content_type = "application/json";
        out->body = NULL;
        out->static_body = oom;
        out->len = sizeof oom - 1;
        return;
    }
    out->status = status;
    out->content_type = "application/json";
    out->body = text;
    out->len = len;
}

int api_parse_object(const char *body, size_t len, json_doc *doc, serve_reply *out)
{
    char err[256];
    if (len == 0) {
        api_error(out, 400, "the request body is empty; expected a JSON object");
        return -1;
    }
    if (json_parse(body, len, "body", doc, err, sizeof err)) {
        api_error(out, 400, "malformed JSON: %s", err);
        return -1;
    }
    if (json_root(doc)->type != SLM_JSON_OBJECT) {
        json_free(doc);
        api_error(out, 400, "the request body must be a JSON object");
        return -1;
    }
    return 0;
}

static const char *type_name(const json_value *v)
{
    static const char *const names[] = {"null",   "false", "true",  "a number",
                                        "a string", "an array", "an object"};
    return v->type <= SLM_JSON_OBJECT ? names[v->type] : "?";
}

int api_get_int(const json_value *obj, const char *key, int64_t lo, int64_t hi, int64_t *val,
                serve_reply *out)
{
    const json_value *v = json_get(obj, key);
    if (!v || v->type == SLM_JSON_NULL) return 0;
    int64_t x;
    if (!json_int(v, &x)) {
        api_error(out, 400, "'%s' must be an integer, got %s", key, type_name(v));
        return -1;
    }
    if (x < lo || x > hi) {
        api_error(out, 400, "'%s' must be in [%lld, %lld], got %lld", key, (long long)lo,
                  (long long)hi, (long long)x);
        return -1;
    }
    *val = x;
    return 1;
}

int api_get_number(const json_value *obj, const char *key, double lo, double hi, int open_lo,
                   double *val, serve_reply *out)
{
    const json_value *v = json_get(obj, key);
    if (!v || v->type == SLM_JSON_NULL) return 0;
    if (v->type != SLM_JSON_NUMBER) {
        api_error(out, 400, "'%s' must be a number, got %s", key, type_name(v));
        return -1;
    }
    double x = json_number(v);
    if (x > hi || x < lo || (open_lo && x == lo)) {
        api_error(out, 400, "'%s' must be in %c%g, %g], got %g", key, open_lo ? '(' : '[', lo,
                  hi, x);
        return -1;
    }
    *val = x;
    return 1;
}

int api_get_bool(const json_value *obj, const char *key, int *val, serve_reply *out)
{
    const json_value *v = json_get(obj, key);
    if (!v || v->type == SLM_JSON_NULL) return 0;
    if (v->type != SLM_JSON_TRUE && v->type != SLM_JSON_FALSE) {
        api_error(out, 400, "'%s' must be true or false, got %s", key, type_name(v));
        return -1;
    }
    *val = v->type == SLM_JSON_TRUE;
    return 1;
}

int api_get_ids(serve_ctx *c, const json_value *arr, const char *key, int32_t **ids, int *n,
                serve_reply *out)
{
    int vocab = slm_model_config(c->model)->vocab_size;
    int32_t *x = malloc(((size_t)arr->count + 1) * sizeof *x);
    if (!x) {
        api_error(out, 500, "out of memory");
        return -1;
    }
    json_iter it = json_iterate(arr);
    const json_value *k, *v;
    int i = 0;
    while (json_next(&it, &k, &v)) {
        int64_t id;
        if (!json_int(v, &id) || id < 0 || id >= vocab) {
            free(x);
            if (v->type == SLM_JSON_NUMBER)
                api_error(out, 400, "'%s'[%d] = %g is not a token id in [0, %d)", key, i,
                          json_number(v), vocab);
            else
                api_error(out, 400, "'%s'[%d] must be an integer token id, got %s", key, i,
                          type_name(v));
            return -1;
        }
        x[i++] = (int32_t)id;
    }
    *ids = x;
    *n = i;
    return 0;
}

void api_write_token(serve_ctx *c, json_writer *w, int32_t id)
{
    char *bytes = NULL;
    size_t len = 0, n = 0;
    if (slm_tokenizer_decode(c->tok, &id, 1, &bytes, &len, NULL, 0)) len = 0;
    char *text = serve_utf8_lossy(bytes ? bytes : "", len, &n);
    free(bytes);
    jw_begin_object(w);
    jw_key(w, "id", 2);
    jw_int(w, id);
    jw_key(w, "text", 4);
    jw_string(w, text ? text : "", text ? n : 0);
    jw_end_object(w);
    free(text);
}

/* POST /v1/tokenize {"content": TEXT} → {"tokens": [ids]} (llama.cpp's form). */
void api_tokenize(serve_ctx *c, const char *body, size_t len, serve_reply *out)
{
    json_doc doc;
    if (api_parse_object(body, len, &doc, out)) return;
    const json_value *v = json_get(json_root(&doc), "content");
    int pieces = 0;
    if (!v || v->type != SLM_JSON_STRING) {
        api_error(out, 400, "'content' must be a string%s", v ? "" : " (it is missing)");
    } else if (api_get_bool(json_root(&doc), "with_pieces", &pieces, out) >= 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        char err[256];
        if (slm_tokenizer_encode(c->tok, v->u.str, v->len, &ids, &n, err, sizeof err)) {
            api_error(out, 400, "%s", err);
        } else {
            json_writer w;
            jw_init(&w, 0);
            jw_begin_object(&w);
            jw_key(&w, "tokens", 6);
            jw_begin_array(&w);
            for (size_t i = 0; i < n; i++) {
                if (pieces) api_write_token(c, &w, ids[i]);
                else jw_int(&w, ids[i]);
            }
            jw_end_array(&w);
            jw_end_object(&w);
            api_reply_json(out, &w, 200);
        }
        free(ids);
    }
    json_free(&doc);
}

/* POST /v1/detokenize {"tokens": [ids]} → {"content": TEXT}; bytes that are
 * not UTF-8 become U+FFFD (JSON text is UTF-8). */
void api_detokenize(serve_ctx *c, const char *body, size_t len, serve_reply *out)
{
    json_doc doc;
    if (api_parse_object(body, len, &doc, out)) return;
    const json_value *v = json_get(json_root(&doc), "tokens");
    int32_t *ids = NULL;
    int n = 0;
    if (!v || v->type != SLM_JSON_ARRAY) {
        api_error(out, 400, "'tokens' must be an array of token ids%s", v ? "" : " (it is missing)");
    } else if (!api_get_ids(c, v, "tokens", &ids, &n, out)) {
        char *text = NULL, err[256];
        size_t tlen = 0, slen = 0;
        if (slm_tokenizer_decode(c->tok, ids, (size_t)n, &text, &tlen, err, sizeof err)) {
            api_error(out, 400, "%s", err);
        } else {
            char *safe = serve_utf8_lossy(text, tlen, &slen);
            json_writer w;
            jw_init(&w, 0);
            jw_begin_object(&w);
            jw_key(&w, "content", 7);
            jw_string(&w, safe ? safe : "", safe ? slen : 0);
            jw_end_object(&w);
            if (safe) api_reply_json(out, &w, 200);
            else jw_discard(&w), api_error(out, 500, "out of memory");
            free(safe);
        }
        free(text);
    }
    free(ids);
    json_free(&doc);
}

void api_models(serve_ctx *c, serve_reply *out)
{
    const slm_config *cfg = slm_model_config(c->model);
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "object", 6);
    jw_string(&w, "list", 4);
    jw_key(&w, "data", 4);
    jw_begin_array(&w);
    jw_begin_object(&w);
    jw_key(&w, "id", 2);
    jw_string(&w, c->model_id, strlen(c->model_id));
    jw_key(&w, "object", 6);
    jw_string(&w, "model", 5);
    jw_key(&w, "created", 7);
    jw_int(&w, c->created);
    jw_key(&w, "owned_by", 8);
    jw_string(&w, "slm", 3);
    jw_key(&w, "meta", 4);
    jw_begin_object(&w);
    const struct {
        const char *k;
        int64_t v;
    } meta[] = {{"n_ctx", cfg->n_positions}, {"n_vocab", cfg->vocab_size},
                {"n_layer", cfg->n_layer},   {"n_head", cfg->n_head},
                {"n_embd", cfg->n_embd},     {"n_params", (int64_t)slm_model_num_params(c->model)}};
    for (size_t i = 0; i < sizeof meta / sizeof *meta; i++) {
        jw_key(&w, meta[i].k, strlen(meta[i].k));
        jw_int(&w, meta[i].v);
    }
    jw_key(&w, "tokenizer", 9);
    jw_string(&w, cfg->tokenizer == SLM_TOKENIZER_BYTE ? "byte" : "gpt2",
              cfg->tokenizer == SLM_TOKENIZER_BYTE ? 4 : 4);
    jw_key(&w, "attention", 9);
    jw_bool(&w, c->has_attention);
    jw_end_object(&w);
    jw_end_object(&w);
    jw_end_array(&w);
    jw_end_object(&w);
    api_reply_json(out, &w, 200);
}

void api_health(serve_ctx *c, serve_reply *out)
{
    int queued, busy, slots;
    serve_engine_load(c->engine, &queued, &busy, &slots);
    int draining = serve_engine_draining(c->engine);
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "status", 6);
    jw_string(&w, draining ? "draining" : "ok", draining ? 8 : 2);
    jw_key(&w, "slots_idle", 10);
    jw_int(&w, slots - busy);
    jw_key(&w, "slots_processing", 16);
    jw_int(&w, busy);
    jw_key(&w, "queue_depth", 11);
    jw_int(&w, queued);
    jw_end_object(&w);
    api_reply_json(out, &w, draining ? 503 : 200);
}

void api_metrics(serve_ctx *c, serve_reply *out)
{
    int queued, busy, slots;
    serve_engine_load(c->engine, &queued, &busy, &slots);
    if (serve_metrics_render(c->metrics, queued, busy, slots, &out->body, &out->len)) {
        api_error(out, 500, "out of memory");
        return;
    }
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* POST /v1/attention {"tokens": [ids] | "text": TEXT, "layer": L} →
 * {"tokens": [{id, text}], "layer", "n_layer", "n_head",
 *  "weights": [n_head][T]}: how much the last token attends to each token
 * of the context, per head, in one layer (slm_model_attention_weights);
 * layer -1: "weights": [n_layer][n_head][T], every layer. */
void api_attention(serve_ctx *c, const char *body, size_t len, serve_reply *out)
{
    const slm_config *cfg = slm_model_config(c->model);
    json_doc doc;
    if (api_parse_object(body, len, &doc, out)) return;
    const json_value *root = json_root(&doc), *tv = json_get(root, "tokens"),
                     *xv = json_get(root, "text");
    int32_t *ids = NULL;
    int T = 0;
    int64_t layer = 0;
    float *weights = NULL;
    char err[256];
    if (api_get_int(root, "layer", -1, cfg->n_layer - 1, &layer, out) < 0) goto done;
    int maps = cfg->n_head * (layer < 0 ? cfg->n_layer : 1);
    if (tv && tv->type == SLM_JSON_ARRAY) {
        if (api_get_ids(c, tv, "tokens", &ids, &T, out)) goto done;
    } else if (!tv && xv && xv->type == SLM_JSON_STRING) {
        size_t n;
        if (slm_tokenizer_encode(c->tok, xv->u.str, xv->len, &ids, &n, err, sizeof err)) {
            api_error(out, 400, "%s", err);
            goto done;
        }
        T = n > (size_t)cfg->n_positions ? cfg->n_positions + 1 : (int)n;
    } else {
        api_error(out, 400, "give 'tokens' (an array of token ids) or 'text' (a string)");
        goto done;
    }
    if (T == 0 || T > cfg->n_positions) {
        api_error(out, 400, "the context is %d tokens; it must be 1 to %d", T, cfg->n_positions);
        goto done;
    }
    /* The library returns every row ([n_head][T][T]); one request may not
     * take more than ATTENTION_MAX_BYTES for them. */
    if ((double)maps * T * T * sizeof(float) > ATTENTION_MAX_BYTES) {
        api_error(out, 400, "the attention of %d tokens in %d maps needs more than %d MiB; "
                            "send fewer tokens or one layer", T, maps, ATTENTION_MAX_BYTES >> 20);
        goto done;
    }
    weights = malloc((size_t)maps * (size_t)T * sizeof *weights);
    if (!weights) {
        api_error(out, 500, "out of memory");
        goto done;
    }
    if (serve_engine_attention(c->engine, ids, T, (int)layer, weights, err, sizeof err)) {
        api_error(out, 500, "attention weights: %s", err);
        goto done;
    }
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "layer", 5);
    jw_int(&w, layer);
    jw_key(&w, "n_layer", 7);
    jw_int(&w, cfg->n_layer);
    jw_key(&w, "n_head", 6);
    jw_int(&w, cfg->n_head);
    jw_key(&w, "tokens", 6);
    jw_begin_array(&w);
    for (int i = 0; i < T; i++) api_write_token(c, &w, ids[i]);
    jw_end_array(&w);
    jw_key(&w, "weights", 7);
    jw_begin_array(&w);
    for (int m = 0; m < maps; m++) {
        if (layer < 0 && m % cfg->n_head == 0) jw_begin_array(&w); /* a layer */
        jw_begin_array(&w);
        for (int j = 0; j < T; j++) jw_float(&w, weights[(size_t)m * T + j]);
        jw_end_array(&w);
        if (layer < 0 && m % cfg->n_head == cfg->n_head - 1) jw_end_array(&w);
    }
    jw_end_array(&w);
    jw_end_object(&w);
    api_reply_json(out, &w, 200);
done:
    free(weights);
    free(ids);
    json_free(&doc);
}

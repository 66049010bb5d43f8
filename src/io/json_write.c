/*
 * JSON writer: builds a document into a growing buffer, either compact (the
 * safetensors header, as the Python library writes it) or indented like
 * Python's json.dumps(indent=2) (config.json, as transformers writes it).
 */
#include "io/json.h"

#include "core/error.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(json_writer *w, int indent)
{
    memset(w, 0, sizeof *w);
    w->indent = indent;
    w->first[0] = 1;
}

void jw_raw(json_writer *w, const char *s, size_t n)
{
    if (w->failed) return;
    if (w->cap - w->len <= n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len <= n) {
            if (cap > SIZE_MAX / 2) {
                w->failed = SLM_ENOMEM;
                return;
            }
            cap *= 2;
        }
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->failed = SLM_ENOMEM;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void put(json_writer *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void newline(json_writer *w, int depth)
{
    if (!w->indent) return;
    put(w, "\n");
    for (int i = 0; i < depth * w->indent; i++)
        put(w, " ");
}

/* Separator and indentation before a value (or a key) at the current depth. */
static void before_value(json_writer *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0 && !w->first[0]) w->failed = SLM_EINVAL; /* two top-level values */
    if (w->depth > 0) {
        if (!w->first[w->depth]) put(w, ",");
        newline(w, w->depth);
    }
    w->first[w->depth] = 0;
}

static void open_container(json_writer *w, const char *c)
{
    before_value(w);
    put(w, c);
    if (w->depth == SLM_JSON_MAX_DEPTH) {
        w->failed = SLM_EINVAL;
        return;
    }
    w->first[++w->depth] = 1;
}

static void close_container(json_writer *w, const char *c)
{
    if (w->depth == 0 || w->after_key) {
        w->failed = SLM_EINVAL;
        return;
    }
    int empty = w->first[w->depth];
    w->depth--;
    if (!empty) newline(w, w->depth);
    put(w, c);
}

void jw_begin_object(json_writer *w)
{
    open_container(w, "{");
}
void jw_end_object(json_writer *w)
{
    close_container(w, "}");
}
void jw_begin_array(json_writer *w)
{
    open_container(w, "[");
}
void jw_end_array(json_writer *w)
{
    close_container(w, "]");
}

static void put_escaped(json_writer *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    put(w, "\"");
    while (p < end && !w->failed) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        jw_raw(w, (const char *)run, (size_t)(p - run));
        if (p == end) break;
        unsigned char c = *p;
        char esc[8];
        if (c >= 0x80) {
            int len = utf8_len(p, end);
            if (!len) { /* the writer only emits valid JSON, which is UTF-8 */
                w->failed = SLM_EINVAL;
                return;
            }
            jw_raw(w, (const char *)p, (size_t)len);
            p += len;
            continue;
        }
        switch (c) {
        case '"': put(w, "\\\""); break;
        case '\\': put(w, "\\\\"); break;
        case '\n': put(w, "\\n"); break;
        case '\r': put(w, "\\r"); break;
        case '\t': put(w, "\\t"); break;
        case '\b': put(w, "\\b"); break;
        case '\f': put(w, "\\f"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); put(w, esc);
        }
        p++;
    }
    put(w, "\"");
}

void jw_key(json_writer *w, const char *key, size_t len)
{
    if (w->depth == 0 || w->after_key) w->failed = SLM_EINVAL;
    before_value(w);
    put_escaped(w, key, len);
    put(w, w->indent ? ": " : ":");
    w->after_key = 1;
}

void jw_string(json_writer *w, const char *s, size_t len)
{
    before_value(w);
    put_escaped(w, s, len);
}

void jw_int(json_writer *w, int64_t x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, x);
    before_value(w);
    put(w, buf);
}

/* Shortest "%.Ng" that reads back as x (as a float if is_float). */
static void put_shortest(json_writer *w, double x, int is_float)
{
    char buf[40];
    before_value(w);
    if (!isfinite(x)) {
        w->failed = SLM_EINVAL;
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (is_float ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x) break;
    }
    put(w, buf);
}

void jw_double(json_writer *w, double x)
{
    put_shortest(w, x, 0);
}
void jw_float(json_writer *w, float x)
{
    put_shortest(w, x, 1);
}

void jw_bool(json_writer *w, int b)
{
    before_value(w);
    put(w, b ? "true" : "false");
}

void jw_null(json_writer *w)
{
    before_value(w);
    put(w, "null");
}

int jw_finish(json_writer *w, char **out, size_t *len, char *err, size_t errlen)
{
    int rc = w->failed;
    if (!rc && (w->depth != 0 || w->after_key || w->first[0])) rc = SLM_EINVAL;
    if (rc) {
        jw_discard(w);
        return fail(err, errlen, rc,
                        rc == SLM_ENOMEM ? "out of memory writing JSON"
                                         : "invalid JSON writer use");
    }
    *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return SLM_OK;
}

void jw_discard(json_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

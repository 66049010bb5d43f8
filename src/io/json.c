/*
 * JSON parser (RFC 8259) into a flat tape; see json.h. One pass, no
 * recursion: containers being filled sit on a fixed stack of tape indices.
 */
#include "io/json.h"

#include "core/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p, *end, *line_start;
    uint32_t line;
    const char *name;
    char *err;
    size_t errlen;
    json_doc *doc;
    char *arena_pos;
} parser;

__attribute__((format(printf, 3, 4))) static int perr(parser *ps, const unsigned char *at,
                                                      const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "%s:%u:%zu: ", ps->name, ps->line,
                         (size_t)(at - ps->line_start) + 1);
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return SLM_EFORMAT;
}

static void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p;
    while (p < ps->end) {
        unsigned char c = *p;
        if (c == '\n') {
            ps->line++;
            ps->line_start = p + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            break;
        }
        p++;
    }
    ps->p = p;
}

/* Appends a value to the tape; returns its index or -1 (out of memory). */
static long new_value(parser *ps, int type)
{
    json_doc *d = ps->doc;
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        json_value *v = realloc(d->v, cap * sizeof *v);
        if (!v) return -1;
        d->v = v;
        d->cap = cap;
    }
    json_value *v = &d->v[d->n];
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    v->span = 1;
    v->line = ps->line;
    v->col = (uint32_t)(ps->p - ps->line_start) + 1;
    return (long)d->n++;
}

int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4) return 0;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        x = x << 4 | d;
    }
    *out = x;
    return 1;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A string starting at the opening quote at ps->p, decoded into the arena.
 * The arena has room: the decoded form is never longer than the source. */
static int parse_string(parser *ps, json_value *v)
{
    const unsigned char *start = ps->p, *p = ps->p + 1, *end = ps->end;
    char *out = ps->arena_pos;
    v->type = SLM_JSON_STRING;
    v->u.str = out;
    for (;;) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        memcpy(out, run, (size_t)(p - run));
        out += p - run;
        if (p == end) return perr(ps, start, "unterminated string");
        unsigned char c = *p;
        if (c == '"') {
            p++;
            break;
        }
        if (c < 0x20) return perr(ps, p, "control character 0x%02x in a string", c);
        if (c >= 0x80) {
            int n = utf8_len(p, end);
            if (!n) return perr(ps, p, "invalid UTF-8 in a string");
            memcpy(out, p, (size_t)n);
            out += n;
            p += n;
            continue;
        }
        const unsigned char *esc = p++;
        if (p == end) return perr(ps, start, "unterminated string");
        switch (*p++) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '/': *out++ = '/'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(p, end, &cp)) return perr(ps, esc, "bad \\u escape");
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return perr(ps, esc, "lone low surrogate \\u%04X", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return perr(ps, esc, "high surrogate \\u%04X without a low surrogate", cp);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            out = put_utf8(out, cp);
            break;
        }
        default:
            return perr(ps, esc, "unknown escape '\\%c'",
                        p[-1] >= 0x20 && p[-1] < 0x7f ? p[-1] : '?');
        }
    }
    v->len = (uint32_t)(out - v->u.str);
    *out++ = '\0';
    ps->arena_pos = out;
    ps->p = p;
    return SLM_OK;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(parser *ps, json_value *v)
{
    const unsigned char *start = ps->p, *p = start, *end = ps->end;
    int neg = 0, is_int = 1;
    uint64_t mag = 0;
    int overflow = 0;
    v->type = SLM_JSON_NUMBER;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == end || *p < '0' || *p > '9') return perr(ps, start, "invalid number");
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return perr(ps, start, "invalid number (leading zero)");
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned d = *p++ - '0';
            if (mag > (UINT64_MAX - d) / 10)
                overflow = 1;
            else
                mag = mag * 10 + d;
        }
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p == end || *p < '0' || *p > '9') return perr(ps, start, "invalid number");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || *p < '0' || *p > '9') return perr(ps, start, "invalid number");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (is_int && !overflow && mag <= (uint64_t)INT64_MAX + (uint64_t)neg) {
        v->is_int = 1;
        v->u.inum = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    if (!v->is_int) {
        char buf[512];
        size_t n = (size_t)(p - start);
        if (n >= sizeof buf) return perr(ps, start, "number too long (%zu characters)", n);
        memcpy(buf, start, n);
        buf[n] = '\0';
        v->u.num = strtod(buf, NULL);
        if (v->u.num == HUGE_VAL || v->u.num == -HUGE_VAL)
            return perr(ps, start, "number out of range");
    }
    ps->p = p;
    return SLM_OK;
}

static int parse_literal(parser *ps, json_value *v)
{
    static const struct {
        const char *text;
        size_t len;
        int type;
    } lits[] = {
        {"true", 4, SLM_JSON_TRUE}, {"false", 5, SLM_JSON_FALSE}, {"null", 4, SLM_JSON_NULL}};
    for (size_t i = 0; i < 3; i++) {
        if ((size_t)(ps->end - ps->p) >= lits[i].len && !memcmp(ps->p, lits[i].text, lits[i].len)) {
            v->type = (uint8_t)lits[i].type;
            ps->p += lits[i].len;
            return SLM_OK;
        }
    }
    return perr(ps, ps->p, "invalid literal");
}

/* An object key and its colon; leaves ps->p at the member's value. */
static int parse_key(parser *ps)
{
    if (ps->p == ps->end) return perr(ps, ps->p, "unexpected end of input, expected a key");
    if (*ps->p != '"') return perr(ps, ps->p, "expected a string key");
    long k = new_value(ps, SLM_JSON_STRING);
    if (k < 0) return SLM_ENOMEM;
    int rc = parse_string(ps, &ps->doc->v[k]);
    if (rc) return rc;
    skip_ws(ps);
    if (ps->p == ps->end || *ps->p != ':') return perr(ps, ps->p, "expected ':' after a key");
    ps->p++;
    skip_ws(ps);
    return SLM_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const json_value *x = *(const json_value *const *)a;
    const json_value *y = *(const json_value *const *)b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    int c = memcmp(x->u.str, y->u.str, x->len);
    if (c) return c;
    return x < y ? -1 : x > y;
}

/* Rejects objects with two equal keys, naming the later one. */
static int check_duplicates(parser *ps)
{
    json_doc *d = ps->doc;
    size_t most = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].type == SLM_JSON_OBJECT && d->v[i].count > most) most = d->v[i].count;
    if (most < 2) return SLM_OK;
    const json_value **keys = malloc(most * sizeof *keys);
    if (!keys) return SLM_ENOMEM;
    int rc = SLM_OK;
    for (size_t i = 0; i < d->n && !rc; i++) {
        if (d->v[i].type != SLM_JSON_OBJECT || d->v[i].count < 2) continue;
        json_iter it = json_iterate(&d->v[i]);
        const json_value *k, *val;
        size_t n = 0;
        while (json_next(&it, &k, &val))
            keys[n++] = k;
        qsort(keys, n, sizeof *keys, key_cmp);
        for (size_t j = 1; j < n && !rc; j++) {
            if (keys[j]->len == keys[j - 1]->len &&
                !memcmp(keys[j]->u.str, keys[j - 1]->u.str, keys[j]->len)) {
                const json_value *dup = keys[j];
                int printable = 1;
                for (size_t c = 0; c < dup->len; c++)
                    if ((unsigned char)dup->u.str[c] < 0x20) printable = 0;
                rc = fail(ps->err, ps->errlen, SLM_EFORMAT, "%s:%u:%u: duplicate key '%.*s'",
                              ps->name, dup->line, dup->col,
                              printable ? (int)(dup->len > 80 ? 80 : dup->len) : 1,
                              printable ? dup->u.str : "?");
            }
        }
    }
    free(keys);
    return rc;
}

static int parse_document(parser *ps)
{
    json_doc *d = ps->doc;
    uint32_t stack[SLM_JSON_MAX_DEPTH];
    int depth = 0, rc;
    skip_ws(ps);
    for (;;) {
        /* A value starts at ps->p. */
        if (ps->p == ps->end) return perr(ps, ps->p, "unexpected end of input, expected a value");
        unsigned char c = *ps->p;
        long idx = new_value(ps, SLM_JSON_NULL);
        if (idx < 0) return SLM_ENOMEM;
        json_value *v = &d->v[idx];
        if (c == '{' || c == '[') {
            if (depth == SLM_JSON_MAX_DEPTH)
                return perr(ps, ps->p, "nesting deeper than %d levels", SLM_JSON_MAX_DEPTH);
            v->type = c == '{' ? SLM_JSON_OBJECT : SLM_JSON_ARRAY;
            stack[depth++] = (uint32_t)idx;
            ps->p++;
            skip_ws(ps);
            unsigned char close = c == '{' ? '}' : ']';
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                depth--;
            } else {
                if (c == '{' && (rc = parse_key(ps))) return rc;
                continue;
            }
        } else if (c == '"') {
            if ((rc = parse_string(ps, v))) return rc;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if ((rc = parse_number(ps, v))) return rc;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if ((rc = parse_literal(ps, v))) return rc;
        } else {
            return perr(ps, ps->p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
        /* A value just ended: continue or close the enclosing containers. */
        for (;;) {
            skip_ws(ps);
            if (depth == 0) {
                if (ps->p != ps->end) return perr(ps, ps->p, "trailing characters after the value");
                return SLM_OK;
            }
            json_value *top = &d->v[stack[depth - 1]];
            int is_obj = top->type == SLM_JSON_OBJECT;
            top->count++;
            if (ps->p == ps->end)
                return perr(ps, ps->p, "unexpected end of input in an %s",
                            is_obj ? "object" : "array");
            if (*ps->p == ',') {
                ps->p++;
                skip_ws(ps);
                if (is_obj && (rc = parse_key(ps))) return rc;
                break;
            }
            if (*ps->p != (is_obj ? '}' : ']'))
                return perr(ps, ps->p, "expected ',' or '%c'", is_obj ? '}' : ']');
            ps->p++;
            top->span = (uint32_t)(d->n - stack[depth - 1]);
            depth--;
        }
    }
}

int json_parse(const char *text, size_t len, const char *name, json_doc *doc, char *err,
                   size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    if (!name) name = "json";
    if (!text && len) return fail(err, errlen, SLM_EINVAL, "%s: no text", name);
    if (len > SLM_JSON_MAX_BYTES)
        return fail(err, errlen, SLM_EFORMAT, "%s: %zu bytes exceeds the %zu-byte limit", name,
                        len, SLM_JSON_MAX_BYTES);
    doc->cap = len / 16 + 16;
    doc->v = malloc(doc->cap * sizeof *doc->v);
    doc->arena = malloc(len + 1);
    parser ps = {(const unsigned char *)text,
                 (const unsigned char *)text + len,
                 (const unsigned char *)text,
                 1,
                 name,
                 err,
                 errlen,
                 doc,
                 doc->arena};
    int rc = doc->v && doc->arena ? parse_document(&ps) : SLM_ENOMEM;
    if (!rc) rc = check_duplicates(&ps);
    if (rc == SLM_ENOMEM) fail(err, errlen, SLM_ENOMEM, "%s: out of memory", name);
    if (rc) json_free(doc);
    return rc;
}

void json_free(json_doc *doc)
{
    free(doc->v);
    free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

json_iter json_iterate(const json_value *c)
{
    json_iter it = {NULL, NULL, 0};
    if (c && (c->type == SLM_JSON_ARRAY || c->type == SLM_JSON_OBJECT)) {
        it.cur = c + 1;
        it.end = c + c->span;
        it.object = c->type == SLM_JSON_OBJECT;
    }
    return it;
}

int json_next(json_iter *it, const json_value **key, const json_value **value)
{
    if (it->cur >= it->end) return 0;
    if (it->object) {
        *key = it->cur;
        *value = it->cur + 1;
    } else {
        *key = NULL;
        *value = it->cur;
    }
    it->cur = *value + (*value)->span;
    return 1;
}

int json_str_eq(const json_value *v, const char *s)
{
    size_t n = strlen(s);
    return v && v->type == SLM_JSON_STRING && v->len == n && !memcmp(v->u.str, s, n);
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != SLM_JSON_OBJECT) return NULL;
    json_iter it = json_iterate(obj);
    const json_value *k, *v;
    while (json_next(&it, &k, &v))
        if (json_str_eq(k, key)) return v;
    return NULL;
}

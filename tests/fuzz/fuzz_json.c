/*
 * libFuzzer target for the JSON parser and writer (src/io/json*.c). Any
 * input must parse or fail with SLM_EFORMAT and a message; a document that
 * parses must have a consistent tape, and writing it back and parsing the
 * result must give the same values.
 *
 *   make fuzz   (or: build/fuzz/fuzz_json tests/fuzz/corpus/json)
 */
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-emits the tape compactly: the tape is in document order, so one linear
 * pass with a stack of open containers is enough. */
static int rewrite(const json_doc *d, char **out, size_t *len)
{
    struct {
        size_t end;
        int object, key_next;
    } stack[SLM_JSON_MAX_DEPTH + 1];
    int depth = 0;
    json_writer w;
    jw_init(&w, (int)(d->n % 3)); /* compact and indented both */
    for (size_t i = 0; i <= d->n; i++) {
        while (depth > 0 && stack[depth - 1].end == i) {
            depth--;
            if (stack[depth].object)
                jw_end_object(&w);
            else
                jw_end_array(&w);
        }
        if (i == d->n) break;
        const json_value *v = &d->v[i];
        if (depth > 0 && stack[depth - 1].object) {
            if (stack[depth - 1].key_next) {
                if (v->type != SLM_JSON_STRING) abort();
                jw_key(&w, v->u.str, v->len);
                stack[depth - 1].key_next = 0;
                continue;
            }
            stack[depth - 1].key_next = 1;
        }
        switch (v->type) {
        case SLM_JSON_NULL: jw_null(&w); break;
        case SLM_JSON_TRUE: jw_bool(&w, 1); break;
        case SLM_JSON_FALSE: jw_bool(&w, 0); break;
        case SLM_JSON_STRING: jw_string(&w, v->u.str, v->len); break;
        case SLM_JSON_NUMBER:
            if (v->is_int)
                jw_int(&w, v->u.inum);
            else
                jw_double(&w, v->u.num);
            break;
        default:
            if (v->span < 1 || i + v->span > d->n) abort();
            if (depth > 0 && i + v->span > stack[depth - 1].end) abort();
            if (v->type == SLM_JSON_OBJECT)
                jw_begin_object(&w);
            else
                jw_begin_array(&w);
            stack[depth].end = i + v->span;
            stack[depth].object = v->type == SLM_JSON_OBJECT;
            stack[depth].key_next = 1;
            depth++;
        }
    }
    return jw_finish(&w, out, len, NULL, 0);
}

static int same_value(const json_value *a, const json_value *b)
{
    if (a->type != b->type || a->span != b->span || a->count != b->count) return 0;
    if (a->type == SLM_JSON_STRING) return a->len == b->len && !memcmp(a->u.str, b->u.str, a->len);
    if (a->type == SLM_JSON_NUMBER) {
        /* 1.0 is written "1" and reads back as an integer: compare values. */
        if (a->is_int && b->is_int) return a->u.inum == b->u.inum;
        return !a->is_int && json_number(a) == json_number(b);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_doc d;
    char err[256] = "";
    int rc = json_parse((const char *)data, size, "fuzz", &d, err, sizeof err);
    if (rc) {
        if ((rc != SLM_EFORMAT && rc != SLM_ENOMEM) || !err[0]) abort();
        return 0;
    }
    if (d.n == 0 || d.v[0].span != d.n) abort();
    char *text;
    size_t len;
    if (rewrite(&d, &text, &len)) abort(); /* everything parsed is writable */
    json_doc again;
    if (json_parse(text, len, "rewritten", &again, err, sizeof err)) abort();
    if (again.n != d.n) abort();
    for (size_t i = 0; i < d.n; i++)
        if (!same_value(&d.v[i], &again.v[i])) abort();
    json_free(&again);
    free(text);
    json_free(&d);
    return 0;
}

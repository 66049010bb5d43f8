/*
 * A strict JSON (RFC 8259) parser and a small writer.
 *
 * The parser turns a whole document into one flat array of values ("tape"),
 * in document order: a container is followed by its children, an object's
 * member is its key (a string value) followed by the member's value. Each
 * value knows how many tape entries its subtree spans, so a sibling is one
 * addition away and nothing needs recursion, neither parsing nor walking.
 * Strings are decoded (escapes, \uXXXX surrogate pairs → UTF-8) into one
 * arena and NUL-terminated there, but may themselves contain NUL bytes: use
 * the length. The source text need not be NUL-terminated.
 *
 * Strict: UTF-8 only, no comments, no trailing commas, no lone surrogates,
 * no duplicate keys in an object, nothing but whitespace after the value,
 * numbers must fit a double. Errors are SLM_EFORMAT "NAME:LINE:COL: what"
 * (column in bytes, 1-based).
 */
#ifndef SLM_IO_JSON_H
#define SLM_IO_JSON_H

#include "slm.h"

#include <stdint.h>

enum {
    SLM_JSON_NULL,
    SLM_JSON_FALSE,
    SLM_JSON_TRUE,
    SLM_JSON_NUMBER,
    SLM_JSON_STRING,
    SLM_JSON_ARRAY,
    SLM_JSON_OBJECT
};

/* Nesting deeper than this is refused (the parser itself does not recurse;
 * the limit keeps consumers that do recurse safe). */
#define SLM_JSON_MAX_DEPTH 256
/* Documents larger than this are refused (tape offsets are 32-bit). */
#define SLM_JSON_MAX_BYTES ((size_t)1 << 30)

/* 32 bytes per value: a hostile document costs at most ~16x its size. */
typedef struct {
    uint8_t type;   /* SLM_JSON_*                                             */
    uint8_t is_int; /* number written as an integer literal that fits int64   */
    uint16_t pad_;
    uint32_t span;  /* tape entries of this value's subtree, itself included  */
    uint32_t count; /* array elements / object members                        */
    uint32_t line;  /* where the value starts, 1-based                        */
    uint32_t col;
    uint32_t len; /* string: bytes (excluding the arena's NUL)              */
    union {
        const char *str; /* string: decoded bytes, NUL-terminated           */
        double num;      /* number unless is_int                            */
        int64_t inum;    /* number when is_int (exact)                      */
    } u;
} json_value;

/* A number's value as a double (0 for non-numbers). */
static inline double json_number(const json_value *v)
{
    if (!v || v->type != SLM_JSON_NUMBER) return 0.0;
    return v->is_int ? (double)v->u.inum : v->u.num;
}
/* 1 and *out if v is an integer literal that fits int64, else 0. */
static inline int json_int(const json_value *v, int64_t *out)
{
    if (!v || v->type != SLM_JSON_NUMBER || !v->is_int) return 0;
    *out = v->u.inum;
    return 1;
}

typedef struct {
    json_value *v; /* the tape; v[0] is the root                         */
    size_t n, cap;
    char *arena; /* decoded strings                                     */
} json_doc;

/* Parses len bytes of text. `name` prefixes error messages (e.g. the file
 * name; NULL means "json"). On success *doc owns its memory (json_free);
 * on failure *doc is empty and needs no free (freeing it is harmless). */
int json_parse(const char *text, size_t len, const char *name, json_doc *doc, char *err,
                   size_t errlen);
void json_free(json_doc *doc);

static inline const json_value *json_root(const json_doc *d)
{
    return d->v;
}

/* The member `key` of object `obj`, or NULL (absent, or obj not an object).
 * Linear in the number of members. */
const json_value *json_get(const json_value *obj, const char *key);

/* 1 if v is a string equal to the C string s. */
int json_str_eq(const json_value *v, const char *s);

/* Walks an array's elements or an object's members in order:
 *     json_iter it = json_iterate(obj);
 *     const json_value *k, *v;
 *     while (json_next(&it, &k, &v)) ...
 * For arrays *key is set to NULL. */
typedef struct {
    const json_value *cur, *end;
    int object;
} json_iter;
json_iter json_iterate(const json_value *container);
int json_next(json_iter *it, const json_value **key, const json_value **value);

/* Length of the valid UTF-8 sequence at p (1..4; RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if invalid or cut off by end. */
int utf8_len(const unsigned char *p, const unsigned char *end);

/* ---- writer -------------------------------------------------------------- */

/* Builds a document into a growing buffer. Calls after a failure do nothing;
 * jw_finish reports it. `indent` 0 writes compactly (no spaces at all),
 * otherwise pretty-prints with that many spaces per level. */
typedef struct {
    char *buf;
    size_t len, cap;
    int indent, depth, failed;
    uint8_t first[SLM_JSON_MAX_DEPTH + 1]; /* no member written yet at depth */
    int after_key;
} json_writer;

void jw_init(json_writer *w, int indent);
void jw_begin_object(json_writer *w);
void jw_end_object(json_writer *w);
void jw_begin_array(json_writer *w);
void jw_end_array(json_writer *w);
void jw_key(json_writer *w, const char *key, size_t len);
void jw_string(json_writer *w, const char *s, size_t len);
void jw_int(json_writer *w, int64_t x);
/* Shortest decimal that reads back as the same double (non-finite: fails). */
void jw_double(json_writer *w, double x);
/* Shortest decimal that reads back as the same float ("1e-05" for 1e-5f). */
void jw_float(json_writer *w, float x);
void jw_bool(json_writer *w, int b);
void jw_null(json_writer *w);
/* Appends raw bytes (e.g. padding); the caller keeps it valid JSON. */
void jw_raw(json_writer *w, const char *s, size_t len);
/* Hands the NUL-terminated text to *out (free with free()) and its length to
 * *len. SLM_ENOMEM, or SLM_EINVAL for misuse (unbalanced, non-finite). */
int jw_finish(json_writer *w, char **out, size_t *len, char *err, size_t errlen);
/* Frees the buffer of a writer that is not finished. */
void jw_discard(json_writer *w);

#endif

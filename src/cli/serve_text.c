/* Generated text on its way to a client: stop strings, whole UTF-8
 * characters, and lossy conversion for JSON (which must be valid UTF-8,
 * while a token may be any bytes). */
#define _GNU_SOURCE /* memmem */
#include "cli/serve.h"
#include "io/json.h"

#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 sequence a lead byte announces; 0 for a byte that
 * cannot start one. */
static int sequence_length(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* n minus the bytes of a trailing character that is not complete yet (a
 * lead byte followed by fewer continuation bytes than it announces): the
 * next token may complete it. */
static size_t complete_prefix(const char *s, size_t n)
{
    size_t back = n < 4 ? n : 4;
    for (size_t k = 1; k <= back; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
        int want = sequence_length(c);
        return want > (int)k ? n - k : n;
    }
    return n;
}

/* Longest k < len(stop) such that text ends with the first k bytes of stop:
 * those bytes may turn out to be the start of the stop string. */
static size_t partial_stop(const serve_request *r)
{
    size_t best = 0;
    for (int i = 0; i < r->p.n_stop; i++) {
        size_t sl = strlen(r->p.stop[i]);
        for (size_t k = sl - 1; k > best; k--)
            if (k <= r->len && !memcmp(r->text + r->len - k, r->p.stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

int serve_text_append(serve_request *r, const char *bytes, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->cap ? 2 * r->cap : 256) + n;
        char *t = realloc(r->text, cap);
        if (!t) return -1;
        r->text = t;
        r->cap = cap;
    }
    size_t old = r->len;
    memcpy(r->text + r->len, bytes, n);
    r->len += n;
    r->text[r->len] = '\0';
    /* A stop string that ends in the new bytes starts at most
     * (longest stop - 1) bytes before them. */
    size_t longest = 0;
    for (int i = 0; i < r->p.n_stop; i++)
        if (strlen(r->p.stop[i]) > longest) longest = strlen(r->p.stop[i]);
    size_t from = old + 1 > longest ? old + 1 - longest : 0;
    size_t cut = r->len + 1;
    for (int i = 0; i < r->p.n_stop; i++) {
        const char *hit = memmem(r->text + from, r->len - from, r->p.stop[i], strlen(r->p.stop[i]));
        if (hit && (size_t)(hit - r->text) < cut) cut = (size_t)(hit - r->text);
    }
    if (cut <= r->len) {
        r->len = cut;
        r->text[cut] = '\0';
        if (r->ready < cut) r->ready = cut;
        return 1;
    }
    size_t ready = complete_prefix(r->text, r->len - partial_stop(r));
    if (ready > r->ready) r->ready = ready;
    return 0;
}

void serve_text_flush(serve_request *r) { r->ready = r->len; }

char *serve_utf8_lossy(const char *s, size_t n, size_t *out_len)
{
    /* Each invalid byte becomes 3 bytes (U+FFFD). */
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t o = 0;
    while (p < end) {
        int len = *p < 0x80 ? 1 : utf8_len(p, end);
        if (len) {
            memcpy(out + o, p, (size_t)len);
            o += (size_t)len;
            p += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

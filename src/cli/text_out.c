#include "cli/text_out.h"

void text_out_init(text_out *t, FILE *f)
{
    t->f = f;
    t->n_pending = 0;
}

/* Length of the UTF-8 sequence a lead byte announces; 0 for a byte that
 * cannot start one (continuation bytes, 0xF8..0xFF). */
static int sequence_length(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

static void flush_pending(text_out *t)
{
    fwrite(t->pending, 1, (size_t)t->n_pending, t->f);
    t->n_pending = 0;
}

static void push(text_out *t, unsigned char c)
{
    /* A broken sequence (a non-continuation byte inside it): emit as is. */
    if (t->n_pending > 0 && (c & 0xC0) != 0x80) flush_pending(t);
    if (t->n_pending == 0 && sequence_length(c) <= 1) {
        fputc(c, t->f);
        return;
    }
    if (t->n_pending >= (int)sizeof t->pending) flush_pending(t);
    t->pending[t->n_pending++] = c;
    if (t->n_pending == sequence_length(t->pending[0])) flush_pending(t);
}

void text_out_write(text_out *t, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) push(t, (unsigned char)bytes[i]);
    if (t->n_pending == 0) fflush(t->f);
}

void text_out_finish(text_out *t)
{
    flush_pending(t);
    fflush(t->f);
}

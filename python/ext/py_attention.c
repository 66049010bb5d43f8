/*
 * py_attention.c — slm_attention_forward / _backward over Python buffers
 * (NumPy arrays, torch tensors via .numpy(), array.array, memoryview).
 *
 * Shapes (row-major, float32): q, out, dout, dq [B][H][Tq][D];
 * k, v, dk, dv [B][H][Tk][D]; lse [B][H][Tq]; mask [Tq][Tk]; kv_len [B]
 * int32. Every shape is checked here, so a wrong buffer raises ValueError
 * instead of being read or written out of bounds; the GIL is released for
 * the kernel itself.
 */
#include "pyslm.h"

#include <limits.h>
#include <math.h>

enum { Q, K, V, OUT, LSE, DOUT, DQ, DK, DV, MASK, KVLEN, NBUF };

static const char *const names[NBUF] = {"q",  "k",  "v",  "out",  "lse",   "dout",
                                        "dq", "dk", "dv", "mask", "kv_len"};

typedef struct {
    Py_buffer buf[NBUF];
    int have[NBUF];
    int B, H, Tq, Tk, D;
    slm_attn_opts opts;
} call;

static void release(call *c)
{
    for (int i = 0; i < NBUF; i++)
        if (c->have[i]) PyBuffer_Release(&c->buf[i]);
}

static int take(call *c, int i, PyObject *obj, char kind, int writable)
{
    if (!obj || obj == Py_None) return 0;
    if (pyslm_buffer(obj, &c->buf[i], kind, writable, names[i]) < 0) return -1;
    c->have[i] = 1;
    return 0;
}

/* Checks that buffer i has exactly the given dimensions. */
static int check_shape(const call *c, int i, int ndim, const Py_ssize_t *want, const char *spec)
{
    const Py_buffer *b = &c->buf[i];
    int ok = b->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = b->shape[d] == want[d];
    if (ok) return 0;
    char got[128] = "";
    size_t used = 0;
    for (int d = 0; d < b->ndim && used < sizeof got - 24; d++)
        used += (size_t)PyOS_snprintf(got + used, sizeof got - used, "%s%zd", d ? ", " : "",
                                      b->shape[d]);
    PyErr_Format(PyExc_ValueError, "%s must have shape %s, got [%s]", names[i], spec, got);
    return -1;
}

static int to_int(Py_ssize_t x, const char *what, int *out)
{
    if (x <= 0 || x > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s = %zd must be in [1, %d]", what, x, INT_MAX);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* Sizes from q and k, then every other buffer against them. */
static int check_shapes(call *c)
{
    const Py_buffer *q = &c->buf[Q], *k = &c->buf[K];
    if (q->ndim != 4 || k->ndim != 4) {
        PyErr_Format(PyExc_ValueError, "%s must have 4 dimensions [B, H, T, D], got %d",
                     q->ndim != 4 ? "q" : "k", q->ndim != 4 ? q->ndim : k->ndim);
        return -1;
    }
    if (to_int(q->shape[0], "B", &c->B) || to_int(q->shape[1], "H", &c->H) ||
        to_int(q->shape[2], "Tq", &c->Tq) || to_int(k->shape[2], "Tk", &c->Tk) ||
        to_int(q->shape[3], "D", &c->D))
        return -1;
    const Py_ssize_t qs[4] = {c->B, c->H, c->Tq, c->D}, ks[4] = {c->B, c->H, c->Tk, c->D},
                     ls[3] = {c->B, c->H, c->Tq}, ms[2] = {c->Tq, c->Tk}, bs[1] = {c->B};
    static const char qspec[] = "[B, H, Tq, D] as q", kspec[] = "[B, H, Tk, D] (q's B, H, D)";
    if (check_shape(c, K, 4, ks, kspec) || check_shape(c, V, 4, ks, kspec) ||
        check_shape(c, OUT, 4, qs, qspec))
        return -1;
    if (c->have[LSE] && check_shape(c, LSE, 3, ls, "[B, H, Tq]")) return -1;
    for (int i = DOUT; i <= DQ; i++)
        if (c->have[i] && check_shape(c, i, 4, qs, qspec)) return -1;
    for (int i = DK; i <= DV; i++)
        if (c->have[i] && check_shape(c, i, 4, ks, kspec)) return -1;
    if (c->have[MASK] && check_shape(c, MASK, 2, ms, "[Tq, Tk]")) return -1;
    if (c->have[KVLEN]) {
        if (check_shape(c, KVLEN, 1, bs, "[B]")) return -1;
        const int32_t *len = c->buf[KVLEN].buf;
        for (int b = 0; b < c->B; b++)
            if (len[b] < 0 || len[b] > c->Tk) {
                PyErr_Format(PyExc_ValueError, "kv_len[%d] = %d is outside [0, Tk = %d]", b,
                             (int)len[b], c->Tk);
                return -1;
            }
    }
    return 0;
}

static int check_opts(const slm_attn_opts *o)
{
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f)) {
        char *v = PyOS_double_to_string((double)o->dropout, 'r', 0, 0, NULL);
        PyErr_Format(PyExc_ValueError, "dropout must be in [0, 1), got %s", v ? v : "?");
        PyMem_Free(v);
        return -1;
    }
    if (!isfinite(o->scale) || o->scale < 0.0f) {
        PyErr_Format(PyExc_ValueError, "scale must be finite and positive (0 = 1/sqrt(D))");
        return -1;
    }
    if (o->impl != SLM_ATTN_AUTO && o->impl != SLM_ATTN_REFERENCE && o->impl != SLM_ATTN_FLASH) {
        PyErr_Format(PyExc_ValueError, "unknown attention implementation %d", o->impl);
        return -1;
    }
    return 0;
}

static void bind_opts(call *c)
{
    c->opts.mask = c->have[MASK] ? c->buf[MASK].buf : NULL;
    c->opts.kv_len = c->have[KVLEN] ? c->buf[KVLEN].buf : NULL;
}

PyObject *pyslm_attention_forward(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"q",       "k",      "v",    "out",  "lse",  "causal", "scale",
                             "mask",    "kv_len", "dropout", "seed", "impl", NULL};
    PyObject *o[NBUF] = {0};
    call c = {0};
    int causal = 0;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOO|O$pfOOfKi", kwlist, &o[Q], &o[K], &o[V],
                                     &o[OUT], &o[LSE], &causal, &c.opts.scale, &o[MASK],
                                     &o[KVLEN], &c.opts.dropout, &seed, &c.opts.impl))
        return NULL;
    c.opts.causal = causal;
    c.opts.seed = seed;
    if (check_opts(&c.opts) || take(&c, Q, o[Q], 'f', 0) || take(&c, K, o[K], 'f', 0) ||
        take(&c, V, o[V], 'f', 0) || take(&c, OUT, o[OUT], 'f', 1) ||
        take(&c, LSE, o[LSE], 'f', 1) || take(&c, MASK, o[MASK], 'f', 0) ||
        take(&c, KVLEN, o[KVLEN], 'i', 0) || check_shapes(&c)) {
        release(&c);
        return NULL;
    }
    bind_opts(&c);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_attention_forward(&c.opts, c.B, c.H, c.Tq, c.Tk, c.D, c.buf[Q].buf, c.buf[K].buf,
                               c.buf[V].buf, c.buf[OUT].buf,
                               c.have[LSE] ? c.buf[LSE].buf : NULL);
    Py_END_ALLOW_THREADS
    release(&c);
    if (rc) return pyslm_raise(rc, NULL);
    Py_RETURN_NONE;
}

PyObject *pyslm_attention_backward(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"q",      "k",    "v",    "out",  "lse",     "dout",
                             "dq",     "dk",   "dv",   "causal", "scale", "mask",
                             "kv_len", "dropout", "seed", "impl", NULL};
    PyObject *o[NBUF] = {0};
    call c = {0};
    int causal = 0;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOO|$pfOOfKi", kwlist, &o[Q], &o[K],
                                     &o[V], &o[OUT], &o[LSE], &o[DOUT], &o[DQ], &o[DK], &o[DV],
                                     &causal, &c.opts.scale, &o[MASK], &o[KVLEN],
                                     &c.opts.dropout, &seed, &c.opts.impl))
        return NULL;
    c.opts.causal = causal;
    c.opts.seed = seed;
    if (check_opts(&c.opts)) return NULL;
    for (int i = Q; i <= DV; i++) {
        if (o[i] == Py_None) {
            release(&c);
            return PyErr_Format(PyExc_TypeError, "%s is required", names[i]);
        }
        if (take(&c, i, o[i], 'f', i >= DQ)) {
            release(&c);
            return NULL;
        }
    }
    if (take(&c, MASK, o[MASK], 'f', 0) || take(&c, KVLEN, o[KVLEN], 'i', 0) ||
        check_shapes(&c)) {
        release(&c);
        return NULL;
    }
    bind_opts(&c);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_attention_backward(&c.opts, c.B, c.H, c.Tq, c.Tk, c.D, c.buf[Q].buf, c.buf[K].buf,
                                c.buf[V].buf, c.buf[OUT].buf, c.buf[LSE].buf, c.buf[DOUT].buf,
                                c.buf[DQ].buf, c.buf[DK].buf, c.buf[DV].buf);
    Py_END_ALLOW_THREADS
    release(&c);
    if (rc) return pyslm_raise(rc, NULL);
    Py_RETURN_NONE;
}

/*
 * py_tokenizer.c — the type Tokenizer of `slm._slm`: bytes ⇄ int32 ids.
 *
 * A loaded slm_tokenizer is immutable and keeps its working memory per call,
 * so encode and decode release the GIL without a lock: several Python
 * threads may encode with one tokenizer at once. Ids cross as raw int32
 * bytes (the Python side views them with array('i') or NumPy), so a corpus
 * of millions of tokens costs no Python object per id.
 */
#include "pyslm.h"

#include <stdlib.h>

static PyObject *tokenizer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "dir", "vocab_size", NULL};
    int kind, vocab = 0;
    PyObject *dir_obj = Py_None, *dir = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|Oi", kwlist, &kind, &dir_obj, &vocab))
        return NULL;
    if (dir_obj != Py_None && !PyUnicode_FSConverter(dir_obj, &dir)) return NULL;
    PyTokenizer *self = (PyTokenizer *)type->tp_alloc(type, 0);
    if (!self) {
        Py_XDECREF(dir);
        return NULL;
    }
    char err[512] = "";
    int rc;
    const char *path = dir ? PyBytes_AS_STRING(dir) : NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_tokenizer_load(kind, path, vocab, &self->tok, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_XDECREF(dir);
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    return (PyObject *)self;
}

static void tokenizer_dealloc(PyTokenizer *self)
{
    slm_tokenizer_free(self->tok);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Encodes one buffer of bytes; returns the ids as int32 bytes. */
static PyObject *encode_one(PyTokenizer *self, PyObject *data)
{
    Py_buffer text;
    if (PyObject_GetBuffer(data, &text, PyBUF_SIMPLE) < 0) return NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_tokenizer_encode(self->tok, text.buf, (size_t)text.len, &ids, &n, err, sizeof err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&text);
    if (rc) return pyslm_raise(rc, err);
    PyObject *out = PyBytes_FromStringAndSize((const char *)ids, (Py_ssize_t)(n * sizeof *ids));
    free(ids);
    return out;
}

static PyObject *tokenizer_encode(PyTokenizer *self, PyObject *data)
{
    return encode_one(self, data);
}

static PyObject *tokenizer_encode_batch(PyTokenizer *self, PyObject *seq)
{
    PyObject *fast = PySequence_Fast(seq, "encode_batch needs a sequence of bytes");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *ids = encode_one(self, PySequence_Fast_GET_ITEM(fast, i));
        if (!ids) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, ids);
    }
    Py_DECREF(fast);
    return out;
}

static PyObject *tokenizer_decode(PyTokenizer *self, PyObject *arg)
{
    Py_buffer ids;
    if (pyslm_buffer(arg, &ids, 'i', 0, "ids") < 0) return NULL;
    char *text = NULL, err[512] = "";
    size_t len = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_tokenizer_decode(self->tok, ids.buf, (size_t)(ids.len / 4), &text, &len, err,
                              sizeof err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ids);
    if (rc) return pyslm_raise(rc, err);
    PyObject *out = PyBytes_FromStringAndSize(text, (Py_ssize_t)len);
    free(text);
    return out;
}

static PyObject *tokenizer_token_bytes(PyTokenizer *self, PyObject *arg)
{
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    const char *bytes = NULL;
    size_t len = 0;
    int rc = id < INT32_MIN || id > INT32_MAX
                 ? SLM_ERANGE
                 : slm_tokenizer_token_bytes(self->tok, (int32_t)id, &bytes, &len);
    if (rc) {
        char msg[128];
        PyOS_snprintf(msg, sizeof msg, "token id %ld is outside [0, %d)", id,
                      slm_tokenizer_vocab_size(self->tok));
        return pyslm_raise(SLM_ERANGE, msg);
    }
    return PyBytes_FromStringAndSize(bytes, (Py_ssize_t)len);
}

static PyObject *tokenizer_eot(PyTokenizer *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(slm_tokenizer_eot(self->tok));
}

static PyObject *tokenizer_vocab_size(PyTokenizer *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(slm_tokenizer_vocab_size(self->tok));
}

static PyMethodDef tokenizer_methods[] = {
    {"encode", (PyCFunction)tokenizer_encode, METH_O, "encode(bytes) -> int32 ids as bytes."},
    {"encode_batch", (PyCFunction)tokenizer_encode_batch, METH_O,
     "encode_batch([bytes, ...]) -> [int32 ids as bytes, ...]."},
    {"decode", (PyCFunction)tokenizer_decode, METH_O, "decode(int32 buffer) -> bytes."},
    {"token_bytes", (PyCFunction)tokenizer_token_bytes, METH_O, "The bytes of one token."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef tokenizer_getset[] = {
    {"eot", (getter)tokenizer_eot, NULL, "Id of <|endoftext|>, -1 if none.", NULL},
    {"vocab_size", (getter)tokenizer_vocab_size, NULL, "Ids are in [0, vocab_size).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PyTokenizer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slm._slm.Tokenizer",
    .tp_basicsize = sizeof(PyTokenizer),
    .tp_dealloc = (destructor)tokenizer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tokenizer(kind, dir=None, vocab_size=0): slm_tokenizer_load.",
    .tp_new = tokenizer_new,
    .tp_methods = tokenizer_methods,
    .tp_getset = tokenizer_getset,
};

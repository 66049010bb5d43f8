/*
 * slm_module.c — the module `slm._slm`: errors, buffers, version, threads.
 * Types live in py_model.c and py_tokenizer.c, attention in py_attention.c.
 */
#include "pyslm.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* code → exception class, set once by slm/_errors.py at import and never
 * changed after: the Python side owns the hierarchy (docstrings, bases such
 * as ValueError), the C side only looks classes up. */
static PyObject *error_classes;

PyObject *pyslm_raise(int code, const char *msg)
{
    PyObject *cls = NULL;
    if (error_classes) {
        PyObject *key = PyLong_FromLong(code);
        if (!key) return NULL;
        cls = PyDict_GetItemWithError(error_classes, key);
        if (!cls && !PyErr_Occurred()) cls = PyDict_GetItemString(error_classes, "default");
        Py_DECREF(key);
        if (PyErr_Occurred()) return NULL;
    }
    if (!cls) cls = PyExc_RuntimeError; /* only before slm/_errors.py ran */
    PyErr_SetString(cls, msg && msg[0] ? msg : slm_strerror(code));
    return NULL;
}

int pyslm_buffer(PyObject *obj, Py_buffer *b, char kind, int writable, const char *what)
{
    const char *type = kind == 'f' ? "float32" : "int32";
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, b, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s %s buffer, got %.100s", what,
                     writable ? ", writable" : "", type, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    /* 'l' is int32 only where long is 4 bytes; the itemsize decides. */
    int ok = b->itemsize == 4 && f[0] && !f[1] &&
             (kind == 'f' ? f[0] == 'f' : (f[0] == 'i' || f[0] == 'l'));
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must hold %s, got format '%s' (%zd bytes each)", what,
                     type, b->format ? b->format : "B", b->itemsize);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

static PyObject *py_set_errors(PyObject *mod, PyObject *dict)
{
    (void)mod;
    if (!PyDict_Check(dict)) return PyErr_Format(PyExc_TypeError, "expected a dict");
    Py_INCREF(dict);
    Py_XSETREF(error_classes, dict);
    Py_RETURN_NONE;
}

static PyObject *py_version(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return PyUnicode_FromString(slm_version());
}

static PyObject *py_strerror(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(slm_strerror((int)code));
}

/* OpenMP's thread count is per calling thread: this sets it for the Python
 * thread that calls it (the main thread, usually). */
static PyObject *py_set_num_threads(PyObject *mod, PyObject *arg)
{
    (void)mod;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1 || n > 4096) return pyslm_raise(SLM_EINVAL, "threads must be in [1, 4096]");
    omp_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_num_threads(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return PyLong_FromLong(omp_get_max_threads());
}

PyObject *pyslm_all_finite(PyObject *mod, PyObject *arg)
{
    (void)mod;
    Py_buffer b;
    if (pyslm_buffer(arg, &b, 'f', 0, "values") < 0) return NULL;
    const float *x = b.buf;
    Py_ssize_t n = b.len / 4, i = 0;
    while (i < n && isfinite(x[i])) i++;
    PyBuffer_Release(&b);
    return PyBool_FromLong(i == n);
}

PyObject *pyslm_config_to_dict(const slm_config *c)
{
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:d,s:s,s:s,s:d}", "n_layer", c->n_layer,
                         "n_head", c->n_head, "n_embd", c->n_embd, "n_positions",
                         c->n_positions, "vocab_size", c->vocab_size, "layer_norm_epsilon",
                         (double)c->layer_norm_epsilon, "activation",
                         c->activation == SLM_ACT_RELU ? "relu" : "gelu_new", "tokenizer",
                         c->tokenizer == SLM_TOKENIZER_BYTE ? "byte" : "gpt2", "dropout",
                         (double)c->dropout);
}

PyObject *pyslm_config_load(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    slm_config c;
    char err[512] = "";
    int rc = slm_config_load(PyBytes_AS_STRING(path_obj), &c, err, sizeof err);
    Py_DECREF(path_obj);
    if (rc) return pyslm_raise(rc, err);
    return pyslm_config_to_dict(&c);
}

static PyMethodDef methods[] = {
    {"_set_errors", py_set_errors, METH_O, "Registers {code: exception class} (internal)."},
    {"version", py_version, METH_NOARGS, "The library's version string."},
    {"strerror", py_strerror, METH_O, "slm_strerror(code)."},
    {"set_num_threads", py_set_num_threads, METH_O,
     "Threads that slm's parallel loops use from the calling thread."},
    {"num_threads", py_num_threads, METH_NOARGS, "Threads slm's parallel loops use."},
    {"all_finite", pyslm_all_finite, METH_O, "True if every float32 in the buffer is finite."},
    {"config_load", pyslm_config_load, METH_VARARGS, "Reads a config.json into a dict."},
    {"attention_forward", (PyCFunction)(void (*)(void))pyslm_attention_forward,
     METH_VARARGS | METH_KEYWORDS, "slm_attention_forward over buffers (internal)."},
    {"attention_backward", (PyCFunction)(void (*)(void))pyslm_attention_backward,
     METH_VARARGS | METH_KEYWORDS, "slm_attention_backward over buffers (internal)."},
    {"train_run", pyslm_train_run, METH_VARARGS,
     "train_run(model, corpus, opts, start_step, callback) -> (interrupted, step)."},
    {"checkpoint_load", pyslm_checkpoint_load, METH_VARARGS,
     "checkpoint_load(dir) -> (Model, step, opts, data_hash)."},
    {"checkpoint_prepare_dir", pyslm_checkpoint_prepare_dir, METH_VARARGS,
     "checkpoint_prepare_dir(dir, vocab_dir or None)."},
    {"checkpoint_sync_model", pyslm_checkpoint_sync_model, METH_VARARGS,
     "checkpoint_sync_model(dir, model) -> rewritten."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "slm._slm", "CPython binding of libslm (see the slm package).", -1,
    methods, NULL, NULL, NULL, NULL,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0) return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

/* The SLM_E* codes, so the Python side maps them without repeating numbers. */
static int add_error_codes(PyObject *m)
{
    static const struct {
        const char *name;
        int code;
    } codes[] = {
        {"EINVAL", SLM_EINVAL},       {"ENOMEM", SLM_ENOMEM},
        {"EIO", SLM_EIO},             {"EFORMAT", SLM_EFORMAT},
        {"ERANGE", SLM_ERANGE},       {"ENUMERIC", SLM_ENUMERIC},
        {"EINTERRUPTED", SLM_EINTERRUPTED}, {"EUNSUPPORTED", SLM_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (PyModule_AddIntConstant(m, codes[i].name, codes[i].code) < 0) return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__slm(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (add_type(m, &PyModel_Type, "Model") < 0 || add_type(m, &PyKVCache_Type, "KVCache") < 0 ||
        add_type(m, &PySampler_Type, "Sampler") < 0 ||
        add_type(m, &PyTokenizer_Type, "Tokenizer") < 0 ||
        add_type(m, &PyCorpus_Type, "Corpus") < 0 ||
        PyModule_AddIntConstant(m, "ATTN_AUTO", SLM_ATTN_AUTO) < 0 ||
        PyModule_AddIntConstant(m, "ATTN_REFERENCE", SLM_ATTN_REFERENCE) < 0 ||
        PyModule_AddIntConstant(m, "ATTN_FLASH", SLM_ATTN_FLASH) < 0 ||
        PyModule_AddIntConstant(m, "TOKENIZER_BYTE", SLM_TOKENIZER_BYTE) < 0 ||
        PyModule_AddIntConstant(m, "TOKENIZER_GPT2", SLM_TOKENIZER_GPT2) < 0 ||
        PyModule_AddIntConstant(m, "IGNORE_INDEX", SLM_IGNORE_INDEX) < 0 ||
        add_error_codes(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

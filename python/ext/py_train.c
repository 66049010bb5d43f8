/*
 * py_train.c — the library's trainer (include/slm.h, src/train) for
 * slm.train: the type Corpus and the functions train_run and checkpoint_*.
 * The Python side (slm/_train.py) does what `slm train` does around them
 * (reading files, refusing an output directory that holds a model, resume).
 *
 * Ctrl-C: the library installs no signal handlers. Python's own SIGINT
 * handler only sets a flag; should_stop and on_progress take the GIL and run
 * PyErr_CheckSignals, so KeyboardInterrupt (or an exception of the progress
 * callback) stops the run after the current micro-batch: the trainer writes
 * a checkpoint of the last whole step, then the exception is raised again.
 */
#include "pyslm.h"

#include <limits.h>
#include <math.h>

/* ---- Corpus ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    slm_corpus *corpus;
} PyCorpus;

/* Corpus(tokenizer, text, context, val_fraction, cache_path=None). */
static PyObject *corpus_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"tokenizer", "text", "context", "val_fraction", "cache_path", NULL};
    PyTokenizer *tok;
    Py_buffer text;
    slm_corpus_opts o = {0};
    PyObject *cache_obj = Py_None, *cache = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!y*id|O", kwlist, &PyTokenizer_Type, &tok, &text,
                                     &o.context, &o.val_fraction, &cache_obj))
        return NULL;
    if (cache_obj != Py_None && !PyUnicode_FSConverter(cache_obj, &cache)) {
        PyBuffer_Release(&text);
        return NULL;
    }
    o.cache_path = cache ? PyBytes_AS_STRING(cache) : NULL;
    PyCorpus *self = (PyCorpus *)type->tp_alloc(type, 0);
    char err[512] = "";
    int rc = SLM_ENOMEM;
    if (self) {
        Py_BEGIN_ALLOW_THREADS
        rc = slm_corpus_create(tok->tok, text.buf, (size_t)text.len, &o, &self->corpus, err,
                               sizeof err);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&text);
    Py_XDECREF(cache);
    if (!self) return NULL;
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    return (PyObject *)self;
}

static void corpus_dealloc(PyCorpus *self)
{
    slm_corpus_free(self->corpus);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *corpus_save_cache(PyCorpus *self, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_corpus_save_cache(self->corpus, PyBytes_AS_STRING(path), err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc) return pyslm_raise(rc, err);
    Py_RETURN_NONE;
}

/* (training tokens, validation tokens). */
static PyObject *corpus_sizes(PyCorpus *self, PyObject *unused)
{
    (void)unused;
    size_t n_train = 0, n_val = 0;
    slm_corpus_tokens(self->corpus, SLM_SPLIT_TRAIN, &n_train);
    slm_corpus_tokens(self->corpus, SLM_SPLIT_VAL, &n_val);
    return Py_BuildValue("(nn)", (Py_ssize_t)n_train, (Py_ssize_t)n_val);
}

static PyObject *corpus_hash(PyCorpus *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(slm_corpus_hash(self->corpus));
}

static PyMethodDef corpus_methods[] = {
    {"save_cache", (PyCFunction)corpus_save_cache, METH_VARARGS, "slm_corpus_save_cache."},
    {"sizes", (PyCFunction)corpus_sizes, METH_NOARGS, "(training tokens, validation tokens)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef corpus_getset[] = {
    {"hash", (getter)corpus_hash, NULL, "slm_corpus_hash.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PyCorpus_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slm._slm.Corpus",
    .tp_basicsize = sizeof(PyCorpus),
    .tp_dealloc = (destructor)corpus_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Corpus(tokenizer, text, context, val_fraction, cache_path=None).",
    .tp_new = corpus_new,
    .tp_methods = corpus_methods,
    .tp_getset = corpus_getset,
};

/* ---- options ⇄ dict ------------------------------------------------------ */

/* The run's options as a dict (data names as a list of str). */
static PyObject *opts_to_dict(const slm_train_opts *o)
{
    PyObject *data = PyList_New(0);
    for (int i = 0; data && i < o->n_data; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(o->data[i]);
        if (!s || PyList_Append(data, s) < 0) Py_CLEAR(data);
        Py_XDECREF(s);
    }
    if (!data) return NULL;
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:d,s:d,s:d,s:d,s:K,s:i,s:i,s:i,s:i,s:N}", "batch",
                         o->batch, "context", o->context, "grad_accum", o->grad_accum, "steps",
                         o->steps, "warmup", o->warmup, "lr", o->lr, "weight_decay",
                         o->weight_decay, "grad_clip", o->grad_clip, "val_fraction",
                         o->val_fraction, "seed", (unsigned long long)o->seed, "eval_every",
                         o->eval_every, "eval_batches", o->eval_batches, "save_every",
                         o->save_every, "dtype", o->dtype, "data", data);
}

static int get_int(PyObject *d, const char *key, int *out)
{
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) return 0; /* absent: keep the default */
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < INT_MIN || x > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s = %ld is out of range", key, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int get_double(PyObject *d, const char *key, double *out)
{
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) return 0;
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

/* What a run keeps alive while the trainer holds pointers into it. */
typedef struct {
    PyObject *data_bytes; /* list of bytes (file-system encoded names) */
    const char **data;
    PyObject *out_dir;    /* bytes or NULL */
} opts_storage;

static void storage_free(opts_storage *s)
{
    Py_XDECREF(s->data_bytes);
    PyMem_Free(s->data);
    Py_XDECREF(s->out_dir);
}

static int opts_from_dict(PyObject *d, slm_train_opts *o, opts_storage *s)
{
    slm_train_opts_default(o);
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "opts must be a dict");
        return -1;
    }
    unsigned long long seed = o->seed;
    PyObject *v;
    if (get_int(d, "batch", &o->batch) || get_int(d, "context", &o->context) ||
        get_int(d, "grad_accum", &o->grad_accum) || get_int(d, "steps", &o->steps) ||
        get_int(d, "warmup", &o->warmup) || get_double(d, "lr", &o->lr) ||
        get_double(d, "weight_decay", &o->weight_decay) ||
        get_double(d, "grad_clip", &o->grad_clip) ||
        get_double(d, "val_fraction", &o->val_fraction) ||
        get_int(d, "eval_every", &o->eval_every) || get_int(d, "eval_batches", &o->eval_batches) ||
        get_int(d, "save_every", &o->save_every) || get_int(d, "stop_after", &o->stop_after) ||
        get_int(d, "dtype", &o->dtype))
        return -1;
    if ((v = PyDict_GetItemString(d, "seed"))) {
        seed = PyLong_AsUnsignedLongLong(v);
        if (PyErr_Occurred()) return -1;
    }
    o->seed = seed;
    if ((v = PyDict_GetItemString(d, "out_dir")) && v != Py_None) {
        if (!PyUnicode_FSConverter(v, &s->out_dir)) return -1;
        o->out_dir = PyBytes_AS_STRING(s->out_dir);
    }
    if ((v = PyDict_GetItemString(d, "data"))) {
        Py_ssize_t n = PySequence_Size(v);
        if (n < 0) return -1;
        s->data_bytes = PyList_New(n);
        s->data = PyMem_Calloc((size_t)n + 1, sizeof *s->data);
        if (!s->data_bytes || !s->data) return PyErr_NoMemory(), -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PySequence_GetItem(v, i), *b = NULL;
            int ok = item && PyUnicode_FSConverter(item, &b);
            Py_XDECREF(item);
            if (!ok) return -1;
            PyList_SET_ITEM(s->data_bytes, i, b);
            s->data[i] = PyBytes_AS_STRING(b);
        }
        o->data = s->data;
        o->n_data = (int)n;
    }
    return 0;
}

/* ---- callbacks ------------------------------------------------------------ */

typedef struct {
    PyObject *callback;           /* callable or None                     */
    PyObject *exc[3];             /* the exception that stopped the run   */
    int stopped_by_callback;      /* the callback returned a true value    */
} run_ctx;

/* With the GIL held: keeps the pending exception for after the run. */
static void keep_exception(run_ctx *r)
{
    if (!r->exc[0]) PyErr_Fetch(&r->exc[0], &r->exc[1], &r->exc[2]);
    else PyErr_Clear();
}

static int should_stop(void *ctx)
{
    run_ctx *r = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) keep_exception(r);
    int stop = r->exc[0] != NULL;
    PyGILState_Release(g);
    return stop;
}

static int on_progress(void *ctx, const slm_train_progress *p)
{
    run_ctx *r = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) keep_exception(r);
    if (!r->exc[0] && r->callback != Py_None) {
        PyObject *val = Py_None;
        if (p->evaluated) val = PyFloat_FromDouble(p->val_loss);
        else Py_INCREF(val);
        PyObject *res = !val ? NULL : PyObject_CallFunction(
            r->callback, "({s:i,s:i,s:i,s:i,s:d,s:d,s:d,s:d,s:N,s:O,s:O})", "step", p->step,
            "steps", p->steps, "end_step", p->end_step, "first_step", p->first_step, "loss",
            (double)p->loss, "lr", (double)p->lr, "grad_norm", (double)p->grad_norm,
            "tokens_per_s", p->tokens_per_s, "val_loss", val, "evaluated",
            p->evaluated ? Py_True : Py_False, "checkpointed",
            p->checkpointed ? Py_True : Py_False);
        if (!res) keep_exception(r);
        else if (PyObject_IsTrue(res) == 1) r->stopped_by_callback = 1;
        Py_XDECREF(res);
    }
    int stop = r->exc[0] != NULL || r->stopped_by_callback;
    PyGILState_Release(g);
    return stop;
}

/* train_run(model, corpus, opts, start_step, callback) -> (interrupted, step).
 * Holds the model's lock for the whole run (its parameters change every
 * step), the GIL only inside the callbacks. */
PyObject *pyslm_train_run(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyModel *model;
    PyCorpus *corpus;
    PyObject *opts_dict;
    run_ctx r = {0};
    int start;
    if (!PyArg_ParseTuple(args, "O!O!O!iO", &PyModel_Type, &model, &PyCorpus_Type, &corpus,
                          &PyDict_Type, &opts_dict, &start, &r.callback))
        return NULL;
    if (r.callback != Py_None && !PyCallable_Check(r.callback))
        return PyErr_Format(PyExc_TypeError, "callback must be callable or None");
    slm_train_opts o;
    opts_storage s = {0};
    if (opts_from_dict(opts_dict, &o, &s) < 0) {
        storage_free(&s);
        return NULL;
    }
    o.on_progress = on_progress;
    o.should_stop = should_stop;
    o.callback_ctx = &r;
    char err[512] = "";
    int rc, step = start;
    WITH_MODEL_LOCKED(model, {
        slm_trainer *t = NULL;
        rc = slm_trainer_create(model->model, corpus->corpus, &o, start, &t, err, sizeof err);
        if (!rc) {
            rc = slm_trainer_run(t, err, sizeof err);
            step = slm_trainer_step_count(t);
        }
        slm_trainer_free(t);
    });
    storage_free(&s);
    if (r.exc[0]) { /* KeyboardInterrupt or the callback's: after the checkpoint */
        PyErr_Restore(r.exc[0], r.exc[1], r.exc[2]);
        return NULL;
    }
    if (rc && rc != SLM_EINTERRUPTED) return pyslm_raise(rc, err);
    return Py_BuildValue("(Oi)", rc == SLM_EINTERRUPTED ? Py_True : Py_False, step);
}

/* ---- checkpoints ---------------------------------------------------------- */

/* checkpoint_load(dir) -> (Model, step, opts dict, data_hash). */
PyObject *pyslm_checkpoint_load(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
    slm_checkpoint c = {0};
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_checkpoint_load(PyBytes_AS_STRING(path), &c, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc) return pyslm_raise(rc, err);
    PyObject *opts = opts_to_dict(&c.opts);
    PyModel *m = opts ? pyslm_model_new() : NULL;
    PyObject *out = NULL;
    if (m) {
        m->model = c.model; /* taken: the checkpoint no longer frees it */
        c.model = NULL;
        out = Py_BuildValue("(NiNK)", m, c.step, opts, (unsigned long long)c.data_hash);
    } else {
        Py_XDECREF(opts);
    }
    slm_checkpoint_free(&c);
    return out;
}

PyObject *pyslm_checkpoint_prepare_dir(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *dir, *vocab_obj, *vocab = NULL;
    if (!PyArg_ParseTuple(args, "O&O", PyUnicode_FSConverter, &dir, &vocab_obj)) return NULL;
    if (vocab_obj != Py_None && !PyUnicode_FSConverter(vocab_obj, &vocab)) {
        Py_DECREF(dir);
        return NULL;
    }
    char err[512] = "";
    int rc = slm_checkpoint_prepare_dir(PyBytes_AS_STRING(dir),
                                        vocab ? PyBytes_AS_STRING(vocab) : NULL, err, sizeof err);
    Py_DECREF(dir);
    Py_XDECREF(vocab);
    if (rc) return pyslm_raise(rc, err);
    Py_RETURN_NONE;
}

PyObject *pyslm_checkpoint_sync_model(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *dir;
    PyModel *m;
    if (!PyArg_ParseTuple(args, "O&O!", PyUnicode_FSConverter, &dir, &PyModel_Type, &m))
        return NULL;
    char err[512] = "";
    int rc, rewritten = 0;
    WITH_MODEL_LOCKED(m, rc = slm_checkpoint_sync_model(PyBytes_AS_STRING(dir), m->model,
                                                        &rewritten, err, sizeof err));
    Py_DECREF(dir);
    if (rc) return pyslm_raise(rc, err);
    return PyBool_FromLong(rewritten);
}

/*
 * py_model.c — the types Model, KVCache and Sampler of `slm._slm`.
 *
 * Model owns an slm_model; KVCache keeps a reference to its Model (the cache
 * is sized from it and decodes through it). Loading, saving, forward and
 * decode release the GIL; forward and decode also take the model's lock,
 * because they use the model's working memory.
 */
#include "pyslm.h"

#include <stdio.h>
#include <string.h>

/* ---- Model --------------------------------------------------------------- */

static PyModel *model_new_empty(PyTypeObject *type)
{
    PyModel *self = (PyModel *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(self);
        return (PyModel *)PyErr_NoMemory();
    }
    return self;
}

PyModel *pyslm_model_new(void)
{
    return model_new_empty(&PyModel_Type);
}

static void model_dealloc(PyModel *self)
{
    slm_model_free(self->model);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *model_load(PyObject *cls, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
    PyModel *self = model_new_empty((PyTypeObject *)cls);
    if (!self) {
        Py_DECREF(path);
        return NULL;
    }
    const char *dir = PyBytes_AS_STRING(path);
    char err[512] = "", bad[400] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_model_load(dir, &self->model, err, sizeof err);
    if (!rc && slm_model_count_nonfinite(self->model, bad, sizeof bad))
        /* The CLI's wording (src/cli/model_open.c), so messages match. */
        snprintf(self->warning, sizeof self->warning, "%s%smodel.safetensors: %s", dir,
                 *dir && dir[strlen(dir) - 1] == '/' ? "" : "/", bad);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    return (PyObject *)self;
}

static int parse_choice(const char *s, const char *a, int va, const char *b, int vb,
                        const char *what, int *out)
{
    if (!strcmp(s, a)) *out = va;
    else if (!strcmp(s, b)) *out = vb;
    else {
        PyErr_Format(PyExc_ValueError, "%s must be '%s' or '%s', got '%s'", what, a, b, s);
        return -1;
    }
    return 0;
}

static PyObject *model_create(PyObject *cls, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"n_layer",    "n_head",    "n_embd",  "n_positions",
                             "vocab_size", "layer_norm_epsilon", "activation",
                             "tokenizer",  "dropout",   "seed",    NULL};
    slm_config c = {0};
    const char *act = "gelu_new", *tok = "byte";
    unsigned long long seed = 0;
    c.layer_norm_epsilon = 1e-5f;
    c.dropout = 0.1f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiiii|fssfK", kwlist, &c.n_layer, &c.n_head,
                                     &c.n_embd, &c.n_positions, &c.vocab_size,
                                     &c.layer_norm_epsilon, &act, &tok, &c.dropout, &seed))
        return NULL;
    if (parse_choice(act, "gelu_new", SLM_ACT_GELU_NEW, "relu", SLM_ACT_RELU, "activation",
                     &c.activation) ||
        parse_choice(tok, "byte", SLM_TOKENIZER_BYTE, "gpt2", SLM_TOKENIZER_GPT2, "tokenizer",
                     &c.tokenizer))
        return NULL;
    PyModel *self = model_new_empty((PyTypeObject *)cls);
    if (!self) return NULL;
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_model_create(&c, seed, &self->model, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    return (PyObject *)self;
}

static PyObject *model_save(PyModel *self, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
    char err[512] = "";
    int rc;
    /* Saving reads the parameters only, but a forward pass in another thread
     * must not be mid-way through a training step's update: take the lock. */
    WITH_MODEL_LOCKED(self, rc = slm_model_save(self->model, PyBytes_AS_STRING(path), err,
                                                sizeof err));
    Py_DECREF(path);
    if (rc) return pyslm_raise(rc, err);
    Py_RETURN_NONE;
}

static PyObject *model_config(PyModel *self, PyObject *unused)
{
    (void)unused;
    return pyslm_config_to_dict(slm_model_config(self->model));
}

static PyObject *model_num_params(PyModel *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(slm_model_num_params(self->model));
}

static PyObject *model_warning(PyModel *self, void *closure)
{
    (void)closure;
    return PyUnicode_DecodeFSDefault(self->warning);
}

/* forward(tokens, targets, B, T, logits=None) -> loss: tokens and targets
 * [B·T] int32 (targets may be None), logits [B·T·V] float32 receives the
 * logits if given. Inference mode (no dropout). */
static PyObject *model_forward(PyModel *self, PyObject *args)
{
    PyObject *tok_obj, *tgt_obj, *logit_obj = Py_None;
    int B, T;
    if (!PyArg_ParseTuple(args, "OOii|O", &tok_obj, &tgt_obj, &B, &T, &logit_obj)) return NULL;
    if (B <= 0 || T <= 0) return PyErr_Format(PyExc_ValueError, "B and T must be positive");
    const slm_config *cfg = slm_model_config(self->model);
    Py_ssize_t n = (Py_ssize_t)B * T;
    Py_buffer tok, tgt = {0}, logits = {0};
    if (pyslm_buffer(tok_obj, &tok, 'i', 0, "tokens") < 0) return NULL;
    int ok = tok.len / 4 == n;
    if (ok && tgt_obj != Py_None) {
        if (pyslm_buffer(tgt_obj, &tgt, 'i', 0, "targets") < 0) {
            PyBuffer_Release(&tok);
            return NULL;
        }
        ok = tgt.len / 4 == n;
    }
    if (ok && logit_obj != Py_None) {
        if (pyslm_buffer(logit_obj, &logits, 'f', 1, "logits") < 0) {
            PyBuffer_Release(&tok);
            if (tgt.obj) PyBuffer_Release(&tgt);
            return NULL;
        }
        ok = logits.len / 4 == n * cfg->vocab_size;
    }
    char err[512] = "";
    float loss = 0.0f;
    int rc = SLM_OK;
    if (ok)
        WITH_MODEL_LOCKED(self, {
            slm_batch batch = {tok.buf, tgt.obj ? tgt.buf : NULL, B, T};
            rc = slm_model_forward(self->model, &batch, NULL, &loss, err, sizeof err);
            if (!rc && logits.obj)
                memcpy(logits.buf, slm_model_logits(self->model), (size_t)logits.len);
        });
    PyBuffer_Release(&tok);
    if (tgt.obj) PyBuffer_Release(&tgt);
    if (logits.obj) PyBuffer_Release(&logits);
    if (!ok) return PyErr_Format(PyExc_ValueError, "buffer sizes do not match B=%d T=%d", B, T);
    if (rc) return pyslm_raise(rc, err);
    return PyFloat_FromDouble((double)loss);
}

/* eval(ids, context, batch) -> (loss, predictions): slm_model_eval, the
 * window rule of `slm eval` (context 0 = n_positions, batch 0 = 8). */
static PyObject *model_eval(PyModel *self, PyObject *args)
{
    PyObject *ids_obj;
    slm_eval_opts o = {0};
    if (!PyArg_ParseTuple(args, "Oii", &ids_obj, &o.context, &o.batch)) return NULL;
    Py_buffer ids;
    if (pyslm_buffer(ids_obj, &ids, 'i', 0, "ids") < 0) return NULL;
    slm_eval_result r = {0};
    char err[512] = "";
    int rc;
    WITH_MODEL_LOCKED(self, rc = slm_model_eval(self->model, ids.buf, (size_t)(ids.len / 4), &o,
                                                &r, err, sizeof err));
    PyBuffer_Release(&ids);
    if (rc) return pyslm_raise(rc, err);
    return Py_BuildValue("(dn)", r.loss, (Py_ssize_t)r.predictions);
}

static PyObject *model_decode(PyModel *self, PyObject *args);

static PyMethodDef model_methods[] = {
    {"load", (PyCFunction)model_load, METH_VARARGS | METH_CLASS,
     "load(dir) -> Model: slm_model_load_ex."},
    {"create", (PyCFunction)(void (*)(void))model_create,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, "create(n_layer, ...) -> Model: slm_model_create."},
    {"save", (PyCFunction)model_save, METH_VARARGS, "save(dir): slm_model_save."},
    {"config", (PyCFunction)model_config, METH_NOARGS, "The model's config as a dict."},
    {"num_params", (PyCFunction)model_num_params, METH_NOARGS, "Number of parameters."},
    {"forward", (PyCFunction)model_forward, METH_VARARGS,
     "forward(tokens, targets, B, T, logits=None) -> loss."},
    {"eval", (PyCFunction)model_eval, METH_VARARGS,
     "eval(ids, context, batch) -> (loss, predictions): slm_model_eval."},
    {"decode", (PyCFunction)model_decode, METH_VARARGS,
     "decode(cache, ids, logits): slm_model_decode."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef model_getset[] = {
    {"warning", (getter)model_warning, NULL, "The load warning ('' if none).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PyModel_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slm._slm.Model",
    .tp_basicsize = sizeof(PyModel),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An slm_model (use slm.Model).",
    .tp_methods = model_methods,
    .tp_getset = model_getset,
};

/* ---- KVCache ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    slm_kv_cache *cache;
    PyModel *model;
} PyKVCache;

static PyObject *cache_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)kw;
    PyModel *model;
    int max_tokens;
    if (!PyArg_ParseTuple(args, "O!i", &PyModel_Type, &model, &max_tokens)) return NULL;
    PyKVCache *self = (PyKVCache *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = slm_kv_cache_create(model->model, max_tokens, &self->cache, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    Py_INCREF(model);
    self->model = model;
    return (PyObject *)self;
}

static void cache_dealloc(PyKVCache *self)
{
    slm_kv_cache_free(self->cache);
    Py_XDECREF(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The cache is only touched under its model's lock, as decode does. */
static PyObject *cache_reset(PyKVCache *self, PyObject *unused)
{
    (void)unused;
    WITH_MODEL_LOCKED(self->model, slm_kv_cache_reset(self->cache));
    Py_RETURN_NONE;
}

static Py_ssize_t cache_len(PyKVCache *self)
{
    int n;
    WITH_MODEL_LOCKED(self->model, n = slm_kv_cache_length(self->cache));
    return n;
}

static PyMethodDef cache_methods[] = {
    {"reset", (PyCFunction)cache_reset, METH_NOARGS, "Forgets every position."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods cache_seq = {.sq_length = (lenfunc)cache_len};

PyTypeObject PyKVCache_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slm._slm.KVCache",
    .tp_basicsize = sizeof(PyKVCache),
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KVCache(model, max_tokens): slm_kv_cache_create.",
    .tp_new = cache_new,
    .tp_methods = cache_methods,
    .tp_as_sequence = &cache_seq,
};

/* decode(cache, ids, logits): appends ids [n] int32 to the cache and writes
 * the last position's logits [vocab_size] float32. */
static PyObject *model_decode(PyModel *self, PyObject *args)
{
    PyKVCache *cache;
    PyObject *ids_obj, *logit_obj;
    if (!PyArg_ParseTuple(args, "O!OO", &PyKVCache_Type, &cache, &ids_obj, &logit_obj))
        return NULL;
    if (cache->model != self)
        return PyErr_Format(PyExc_ValueError, "the KV cache belongs to another model");
    Py_buffer ids, logits;
    if (pyslm_buffer(ids_obj, &ids, 'i', 0, "ids") < 0) return NULL;
    if (pyslm_buffer(logit_obj, &logits, 'f', 1, "logits") < 0) {
        PyBuffer_Release(&ids);
        return NULL;
    }
    Py_ssize_t n = ids.len / 4;
    int ok = n > 0 && n <= INT32_MAX &&
             logits.len / 4 == slm_model_config(self->model)->vocab_size;
    char err[512] = "";
    int rc = SLM_OK;
    if (ok)
        WITH_MODEL_LOCKED(self, rc = slm_model_decode(self->model, cache->cache, ids.buf, (int)n,
                                                      logits.buf, err, sizeof err));
    PyBuffer_Release(&ids);
    PyBuffer_Release(&logits);
    if (!ok) return PyErr_Format(PyExc_ValueError, "decode needs at least one id and logits of "
                                                   "vocab_size floats");
    if (rc) return pyslm_raise(rc, err);
    Py_RETURN_NONE;
}

/* ---- Sampler ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    slm_sampler *sampler;
    int vocab_size;
} PySampler;

static PyObject *sampler_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"vocab_size", "temperature", "top_k", "top_p", "seed", NULL};
    int vocab, top_k;
    float temperature, top_p;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ififK", kwlist, &vocab, &temperature, &top_k,
                                     &top_p, &seed))
        return NULL;
    PySampler *self = (PySampler *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    char err[512] = "";
    int rc = slm_sampler_create(vocab, temperature, top_k, top_p, seed, &self->sampler, err,
                                sizeof err);
    if (rc) {
        Py_DECREF(self);
        return pyslm_raise(rc, err);
    }
    self->vocab_size = vocab;
    return (PyObject *)self;
}

static void sampler_dealloc(PySampler *self)
{
    slm_sampler_free(self->sampler);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Keeps the GIL: one draw is microseconds, and the GIL serialises threads
 * that share a sampler (its stream and scratch are not thread-safe). */
static PyObject *sampler_next(PySampler *self, PyObject *arg)
{
    Py_buffer logits;
    if (pyslm_buffer(arg, &logits, 'f', 0, "logits") < 0) return NULL;
    if (logits.len / 4 != self->vocab_size) {
        PyBuffer_Release(&logits);
        return PyErr_Format(PyExc_ValueError, "logits must hold vocab_size = %d floats",
                            self->vocab_size);
    }
    int32_t id = slm_sampler_next(self->sampler, logits.buf);
    PyBuffer_Release(&logits);
    return PyLong_FromLong(id);
}

static PyMethodDef sampler_methods[] = {
    {"next", (PyCFunction)sampler_next, METH_O, "next(logits) -> id: slm_sampler_next."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject PySampler_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "slm._slm.Sampler",
    .tp_basicsize = sizeof(PySampler),
    .tp_dealloc = (destructor)sampler_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sampler(vocab_size, temperature, top_k, top_p, seed): slm_sampler_create.",
    .tp_new = sampler_new,
    .tp_methods = sampler_methods,
};

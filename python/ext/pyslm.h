/*
 * pyslm.h — shared pieces of the CPython extension `slm._slm`, a thin layer
 * over include/slm.h. The Python package (python/slm) adds the friendly API;
 * this module only converts arguments, releases the GIL around every call
 * that can take long, and turns SLM_E* codes into the package's exceptions.
 */
#ifndef PYSLM_H
#define PYSLM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "slm.h"

/* Raises the slm.Error subclass registered for code (slm.Error itself for an
 * unknown code) with msg, or with slm_strerror(code) when msg is empty. */
PyObject *pyslm_raise(int code, const char *msg);

/* Gets a C-contiguous buffer of 4-byte elements: kind 'f' (float32) or 'i'
 * (int32). On failure raises TypeError naming `what` and returns -1. */
int pyslm_buffer(PyObject *obj, Py_buffer *b, char kind, int writable, const char *what);

/* A model, shared by its KV caches. Calls that use the model's working
 * memory (forward, decode) hold `lock`, taken with the GIL released, so two
 * Python threads may share one model without a data race. */
typedef struct {
    PyObject_HEAD
    slm_model *model;
    PyThread_type_lock lock;
    char warning[512]; /* slm_model_load_ex's warning; "" when none */
} PyModel;

/* Runs the statement(s) with the GIL released and the model's lock held. */
#define WITH_MODEL_LOCKED(self, ...)                                                       \
    do {                                                                                   \
        Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock((self)->lock, WAIT_LOCK);             \
        __VA_ARGS__;                                                                       \
        PyThread_release_lock((self)->lock);                                               \
        Py_END_ALLOW_THREADS                                                               \
    } while (0)

/* A model with no slm_model yet (filled by load, create or a checkpoint). */
PyModel *pyslm_model_new(void);

/* An immutable tokenizer (py_tokenizer.c). */
typedef struct {
    PyObject_HEAD
    slm_tokenizer *tok;
} PyTokenizer;

extern PyTypeObject PyModel_Type;
extern PyTypeObject PyKVCache_Type;
extern PyTypeObject PySampler_Type;
extern PyTypeObject PyTokenizer_Type;
extern PyTypeObject PyCorpus_Type;

/* Functions of the module defined outside slm_module.c. */
PyObject *pyslm_attention_forward(PyObject *mod, PyObject *args, PyObject *kw);
PyObject *pyslm_attention_backward(PyObject *mod, PyObject *args, PyObject *kw);
PyObject *pyslm_config_load(PyObject *mod, PyObject *args);
PyObject *pyslm_all_finite(PyObject *mod, PyObject *arg);
PyObject *pyslm_train_run(PyObject *mod, PyObject *args);
PyObject *pyslm_checkpoint_load(PyObject *mod, PyObject *args);
PyObject *pyslm_checkpoint_prepare_dir(PyObject *mod, PyObject *args);
PyObject *pyslm_checkpoint_sync_model(PyObject *mod, PyObject *args);

/* Model config ⇄ dict with the keys of slm.Config. */
PyObject *pyslm_config_to_dict(const slm_config *c);

#endif

/*
 * Checkpoints of a training run.
 *
 * DIR/training_state.safetensors is the whole checkpoint in one atomically
 * replaced file: parameters, AdamW moments, and as metadata the step, the
 * data's hash and the run (its options and the model's config, one JSON
 * object). It is written first; DIR/config.json and DIR/model.safetensors
 * (the Hugging Face model other tools read) follow. A crash at any moment
 * therefore leaves a complete training state — at worst one step older or
 * newer than the model files — and slm_checkpoint_sync_model rewrites the
 * model files from it.
 */
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "slm.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FILE "training_state.safetensors"
#define STATE_FORMAT "slm-training-state"
/* Version 2 records vocab_size, activation and layer_norm_epsilon; version
 * 1 states (byte: 256 ids, gpt2: 50257, gelu_new, 1e-5) still resume.
 * "window" is slm_train_opts.context (0: the model's n_positions).
 * Version 3 adds "dtype" (SLM_DTYPE_F32 or SLM_DTYPE_BF16; older states
 * trained in fp32). */
#define STATE_VERSION "3"
#define MAX_DATA 4096

/* The numeric fields of a run, by name, in the options or the config. */
typedef struct {
    const char *name;
    int is_double; /* double in slm_train_opts; float in slm_config      */
    int in_config; /* a field of slm_config, else of slm_train_opts      */
    size_t offset;
} run_field;

static const run_field fields[] = {
    {"tokenizer", 0, 1, offsetof(slm_config, tokenizer)},
    {"layers", 0, 1, offsetof(slm_config, n_layer)},
    {"heads", 0, 1, offsetof(slm_config, n_head)},
    {"dim", 0, 1, offsetof(slm_config, n_embd)},
    {"context", 0, 1, offsetof(slm_config, n_positions)},
    {"batch", 0, 0, offsetof(slm_train_opts, batch)},
    {"grad_accum", 0, 0, offsetof(slm_train_opts, grad_accum)},
    {"steps", 0, 0, offsetof(slm_train_opts, steps)},
    {"warmup", 0, 0, offsetof(slm_train_opts, warmup)},
    {"eval_every", 0, 0, offsetof(slm_train_opts, eval_every)},
    {"eval_batches", 0, 0, offsetof(slm_train_opts, eval_batches)},
    {"save_every", 0, 0, offsetof(slm_train_opts, save_every)},
    {"lr", 1, 0, offsetof(slm_train_opts, lr)},
    {"weight_decay", 1, 0, offsetof(slm_train_opts, weight_decay)},
    {"dropout", 1, 1, offsetof(slm_config, dropout)},
    {"val_fraction", 1, 0, offsetof(slm_train_opts, val_fraction)},
    {"grad_clip", 1, 0, offsetof(slm_train_opts, grad_clip)},
    /* version 2 */
    {"vocab_size", 0, 1, offsetof(slm_config, vocab_size)},
    {"activation", 0, 1, offsetof(slm_config, activation)},
    {"layer_norm_epsilon", 1, 1, offsetof(slm_config, layer_norm_epsilon)},
    {"window", 0, 0, offsetof(slm_train_opts, context)},
    /* version 3 */
    {"dtype", 0, 0, offsetof(slm_train_opts, dtype)},
};
#define N_FIELDS (sizeof fields / sizeof *fields)
#define N_FIELDS_V1 17
#define N_FIELDS_V2 21

static char *field_ptr(const run_field *f, slm_train_opts *o, slm_config *c)
{
    return (f->in_config ? (char *)c : (char *)o) + f->offset;
}

/* The run as one JSON object (a metadata string). */
static int run_to_json(const slm_train_opts *o, const slm_config *c, char **out, char *err,
                       size_t errlen)
{
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "data", 4);
    jw_begin_array(&w);
    for (int i = 0; i < o->n_data; i++)
        jw_string(&w, o->data[i], strlen(o->data[i]));
    jw_end_array(&w);
    jw_key(&w, "seed", 4);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    jw_string(&w, seed, strlen(seed));
    slm_train_opts oc = *o;
    slm_config cc = *c;
    for (size_t i = 0; i < N_FIELDS; i++) {
        const run_field *f = &fields[i];
        const char *p = field_ptr(f, &oc, &cc);
        jw_key(&w, f->name, strlen(f->name));
        /* memcpy: the field is reached through a char pointer. */
        if (f->is_double && f->in_config) {
            float fv;
            memcpy(&fv, p, sizeof fv);
            jw_float(&w, fv);
        } else if (f->is_double) {
            double dv;
            memcpy(&dv, p, sizeof dv);
            jw_double(&w, dv);
        } else {
            int iv;
            memcpy(&iv, p, sizeof iv);
            jw_int(&w, iv);
        }
    }
    jw_end_object(&w);
    size_t len;
    return jw_finish(&w, out, &len, err, errlen);
}

int slm_checkpoint_save(const char *dir, slm_model *m, const slm_train_opts *o, int step,
                        uint64_t data_hash, char *err, size_t errlen)
{
    if (!dir || !m || !o) return fail(err, errlen, SLM_EINVAL, "checkpoint: NULL argument");
    float *mom1 = slm_model_adam_state(m, 0), *mom2 = slm_model_adam_state(m, 1);
    if (!mom1 || !mom2) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    char *run = NULL, *path = path_join(dir, STATE_FILE);
    int rc = path ? run_to_json(o, slm_model_config(m), &run, err, errlen)
                  : fail(err, errlen, SLM_ENOMEM, "out of memory");
    if (!rc) {
        char step_s[32], hash_s[32];
        snprintf(step_s, sizeof step_s, "%d", step);
        snprintf(hash_s, sizeof hash_s, "%016llx", (unsigned long long)data_hash);
        const char *meta[] = {"format", STATE_FORMAT, "version", STATE_VERSION, "step",
                              step_s,   "data_hash",  hash_s,    "args",        run};
        int64_t shape[1] = {(int64_t)slm_model_num_params(m)};
        slm_safetensors_entry t[3] = {
            {"params", SLM_DTYPE_F32, 1, shape, slm_model_params(m)},
            {"adam.m", SLM_DTYPE_F32, 1, shape, mom1},
            {"adam.v", SLM_DTYPE_F32, 1, shape, mom2},
        };
        rc = slm_safetensors_save(path, t, 3, meta, 5, err, errlen);
    }
    if (!rc) rc = slm_model_save(m, dir, err, errlen);
    free(run);
    free(path);
    return rc;
}

/* 1 if DIR's config.json + model.safetensors hold exactly m. */
static int model_files_current(const char *dir, slm_model *m)
{
    slm_model *f;
    if (slm_model_load(dir, &f, NULL, 0)) return 0;
    const slm_config *a = slm_model_config(f), *b = slm_model_config(m);
    int same =
        a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
        a->n_positions == b->n_positions && a->vocab_size == b->vocab_size &&
        a->layer_norm_epsilon == b->layer_norm_epsilon && a->activation == b->activation &&
        a->tokenizer == b->tokenizer && a->dropout == b->dropout &&
        slm_model_num_params(f) == slm_model_num_params(m) &&
        !memcmp(slm_model_params(f), slm_model_params(m), slm_model_num_params(m) * sizeof(float));
    slm_model_free(f);
    return same;
}

int slm_checkpoint_sync_model(const char *dir, slm_model *m, int *rewritten, char *err,
                              size_t errlen)
{
    if (rewritten) *rewritten = 0;
    if (!dir || !m) return fail(err, errlen, SLM_EINVAL, "checkpoint: NULL argument");
    if (model_files_current(dir, m)) return SLM_OK;
    if (rewritten) *rewritten = 1;
    return slm_model_save(m, dir, err, errlen);
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = read_file(from, (size_t)64 << 20, &buf, &len, err, errlen);
    if (rc) return rc;
    rc = atomic_write(to, buf, len, err, errlen);
    free(buf);
    return rc;
}

int slm_checkpoint_prepare_dir(const char *dir, const char *tokenizer_dir, char *err, size_t errlen)
{
    if (!dir) return fail(err, errlen, SLM_EINVAL, "checkpoint: no directory");
    int rc = mkdir_p(dir, err, errlen);
    const char *files[2] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2 && !rc && tokenizer_dir; i++) {
        char *from = path_join(tokenizer_dir, files[i]), *to = path_join(dir, files[i]);
        rc = from && to ? copy_file(from, to, err, errlen)
                        : fail(err, errlen, SLM_ENOMEM, "out of memory");
        free(from);
        free(to);
    }
    /* The temporary files of a killed write are ours and of no use. */
    if (!rc) atomic_clean_temps(dir);
    return rc;
}

/* The data names of the run, copied into one block with a pointer table. */
typedef struct {
    const char **names;
    char *text;
} run_strings;

static int keep_strings(const json_value *data, slm_train_opts *o, run_strings *s, char *err,
                        size_t errlen)
{
    size_t total = 1;
    int n = 0;
    json_iter it = json_iterate(data);
    const json_value *k, *v;
    while (json_next(&it, &k, &v)) {
        if (v->type != SLM_JSON_STRING || n >= MAX_DATA)
            return fail(err, errlen, SLM_EFORMAT, STATE_FILE ": bad data list");
        total += v->len + 1;
        n++;
    }
    s->names = malloc((size_t)(n ? n : 1) * sizeof *s->names);
    char *p = s->text = malloc(total);
    if (!s->names || !p) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    it = json_iterate(data);
    for (int i = 0; json_next(&it, &k, &v); i++) {
        memcpy(p, v->u.str, v->len + 1);
        s->names[i] = p;
        p += v->len + 1;
    }
    o->data = s->names;
    o->n_data = n;
    return SLM_OK;
}

/* Version 1 states did not record these; they were always so. */
static void v1_config(slm_config *c)
{
    c->vocab_size = c->tokenizer == SLM_TOKENIZER_GPT2 ? 50257 : 256;
    c->activation = SLM_ACT_GELU_NEW;
    c->layer_norm_epsilon = 1e-5f;
}

static int run_from_json(const char *json, int version, slm_train_opts *o, slm_config *c,
                         run_strings *s, char *err, size_t errlen)
{
    json_doc doc;
    int rc = json_parse(json, strlen(json), STATE_FILE " args", &doc, err, errlen);
    if (rc) return rc;
    const json_value *root = json_root(&doc), *data = json_get(root, "data");
    const json_value *seed = json_get(root, "seed");
    if (!data || data->type != SLM_JSON_ARRAY || !seed || seed->type != SLM_JSON_STRING)
        rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": arguments lack data or seed");
    else
        o->seed = strtoull(seed->u.str, NULL, 10);
    size_t n_fields = version >= 3 ? N_FIELDS : version == 2 ? N_FIELDS_V2 : N_FIELDS_V1;
    if (version < 2) v1_config(c);
    for (size_t i = 0; i < n_fields && !rc; i++) {
        const run_field *f = &fields[i];
        const json_value *v = json_get(root, f->name);
        int64_t iv;
        char *p = field_ptr(f, o, c);
        if (!v || v->type != SLM_JSON_NUMBER)
            rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": argument '%s' missing", f->name);
        else if (f->is_double && f->in_config)
            memcpy(p, &(float){(float)json_number(v)}, sizeof(float));
        else if (f->is_double)
            memcpy(p, &(double){json_number(v)}, sizeof(double));
        else if (!json_int(v, &iv) || iv < 0 || iv > 0x7fffffff)
            rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": argument '%s' is not a count",
                      f->name);
        else
            memcpy(p, &(int){(int)iv}, sizeof(int));
    }
    if (!rc) rc = keep_strings(data, o, s, err, errlen);
    json_free(&doc);
    return rc;
}

/* Reads one [n] F32 tensor of the state into dst. */
static int read_vector(const slm_safetensors *f, const char *name, float *dst, size_t n, char *err,
                       size_t errlen)
{
    const slm_safetensors_tensor *t = slm_safetensors_find(f, name);
    if (!t || t->dtype != SLM_DTYPE_F32 || t->numel != n)
        return fail(err, errlen, SLM_EFORMAT,
                    STATE_FILE ": tensor '%s' is missing or does not match the model", name);
    return slm_safetensors_read(f, t, SLM_DTYPE_F32, 0, n, dst, err, errlen);
}

/* The model of the state: its config, parameters and moments. */
static int read_model(const slm_safetensors *f, const slm_config *c, slm_model **m, char *err,
                      size_t errlen)
{
    int rc = slm_model_create(c, 0, m, err, errlen);
    if (rc) return rc;
    size_t n = slm_model_num_params(*m);
    float *mom1 = slm_model_adam_state(*m, 0), *mom2 = slm_model_adam_state(*m, 1);
    rc = !mom1 || !mom2 ? fail(err, errlen, SLM_ENOMEM, "out of memory")
                        : read_vector(f, "params", slm_model_params(*m), n, err, errlen);
    if (!rc) rc = read_vector(f, "adam.m", mom1, n, err, errlen);
    if (!rc) rc = read_vector(f, "adam.v", mom2, n, err, errlen);
    return rc;
}

void slm_checkpoint_free(slm_checkpoint *c)
{
    if (!c) return;
    run_strings *s = c->storage;
    if (s) {
        free(s->names);
        free(s->text);
        free(s);
    }
    slm_model_free(c->model);
    memset(c, 0, sizeof *c);
}

int slm_checkpoint_load(const char *dir, slm_checkpoint *out, char *err, size_t errlen)
{
    if (!out) return fail(err, errlen, SLM_EINVAL, "checkpoint: NULL argument");
    memset(out, 0, sizeof *out);
    slm_train_opts_default(&out->opts);
    if (!dir) return fail(err, errlen, SLM_EINVAL, "checkpoint: no directory");
    char *path = path_join(dir, STATE_FILE);
    slm_safetensors *f = NULL;
    int rc = path ? slm_safetensors_open(path, &f, err, errlen)
                  : fail(err, errlen, SLM_ENOMEM, "out of memory");
    free(path);
    if (rc) return rc;
    const char *format = slm_safetensors_metadata(f, "format");
    const char *version_s = slm_safetensors_metadata(f, "version");
    const char *step_s = slm_safetensors_metadata(f, "step");
    const char *hash_s = slm_safetensors_metadata(f, "data_hash");
    const char *args = slm_safetensors_metadata(f, "args");
    char *end = NULL;
    long s = step_s ? strtol(step_s, &end, 10) : -1;
    int version = version_s ? atoi(version_s) : 0;
    if (!format || strcmp(format, STATE_FORMAT) || !args || !hash_s || !end || *end || s < 0 ||
        s > 0x7fffffff || version < 1 || version > 3) {
        slm_safetensors_close(f);
        return fail(err, errlen, SLM_EFORMAT, STATE_FILE " is not an slm training state");
    }
    out->step = (int)s;
    out->data_hash = strtoull(hash_s, NULL, 16);
    slm_config c = {0};
    run_strings *strings = calloc(1, sizeof *strings);
    out->storage = strings;
    rc = strings ? run_from_json(args, version, &out->opts, &c, strings, err, errlen)
                 : fail(err, errlen, SLM_ENOMEM, "out of memory");
    if (!rc) rc = read_model(f, &c, &out->model, err, errlen);
    slm_safetensors_close(f);
    if (rc) slm_checkpoint_free(out);
    return rc;
}

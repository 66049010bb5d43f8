/*
 * Checkpoints of a training run.
 *
 * DIR/training_state.safetensors is the whole checkpoint in one atomically
 * replaced file: parameters, AdamW moments, the step, the run's arguments
 * and the data's hash. It is written first; DIR/config.json and
 * DIR/model.safetensors (the Hugging Face model other tools read) follow. A
 * crash at any moment therefore leaves a complete training state — at worst
 * one step older or newer than the model files — and --resume rewrites the
 * model files from it.
 */
#include "cli/train.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FILE "training_state.safetensors"
#define STATE_FORMAT "slm-training-state"

/* The numeric arguments of a run, by name, for saving and restoring. */
typedef struct {
    const char *name;
    int is_double;
    size_t offset;
} arg_field;

static const arg_field fields[] = {
    {"tokenizer", 0, offsetof(train_args, tokenizer)},
    {"layers", 0, offsetof(train_args, layers)},
    {"heads", 0, offsetof(train_args, heads)},
    {"dim", 0, offsetof(train_args, dim)},
    {"context", 0, offsetof(train_args, context)},
    {"batch", 0, offsetof(train_args, batch)},
    {"grad_accum", 0, offsetof(train_args, grad_accum)},
    {"steps", 0, offsetof(train_args, steps)},
    {"warmup", 0, offsetof(train_args, warmup)},
    {"eval_every", 0, offsetof(train_args, eval_every)},
    {"eval_batches", 0, offsetof(train_args, eval_batches)},
    {"save_every", 0, offsetof(train_args, save_every)},
    {"lr", 1, offsetof(train_args, lr)},
    {"weight_decay", 1, offsetof(train_args, weight_decay)},
    {"dropout", 1, offsetof(train_args, dropout)},
    {"val_fraction", 1, offsetof(train_args, val_fraction)},
    {"grad_clip", 1, offsetof(train_args, grad_clip)},
};
#define N_FIELDS (sizeof fields / sizeof *fields)

void train_config(const train_args *a, slm_config *c)
{
    *c = (slm_config){a->layers, a->heads,        a->dim,      a->context,
                      256,       1e-5f,           SLM_ACT_GELU_NEW, a->tokenizer,
                      (float)a->dropout};
    if (a->tokenizer == SLM_TOKENIZER_GPT2) c->vocab_size = 50257;
}

/* Where the bundled GPT-2 vocabulary lives: $SLM_DATA_DIR, else the
 * checkout's data/ (compiled in). */
static const char *data_dir(void)
{
    const char *env = getenv("SLM_DATA_DIR");
    return env && *env ? env : SLM_DATA_DIR;
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

int train_prepare_dir(const train_args *a, char *err, size_t errlen)
{
    int rc = mkdir_p(a->out, err, errlen);
    if (rc || a->tokenizer != SLM_TOKENIZER_GPT2) return rc;
    const char *files[2] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2 && !rc; i++) {
        char from[4096];
        snprintf(from, sizeof from, "%s/gpt2/%s", data_dir(), files[i]);
        char *to = path_join(a->out, files[i]);
        rc = to ? copy_file(from, to, err, errlen) : fail(err, errlen, SLM_ENOMEM, "out of memory");
        free(to);
    }
    return rc;
}

int train_tokenizer_new(const train_args *a, int vocab_size, slm_tokenizer **tok, char *err,
                        size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/gpt2", data_dir());
    return slm_tokenizer_load(a->tokenizer, dir, vocab_size, tok, err, errlen);
}

void train_clean_temps(const char *dir) { atomic_clean_temps(dir); }

/* The run's arguments as one JSON object (a metadata string). */
static int args_to_json(const train_args *a, char **out, char *err, size_t errlen)
{
    json_writer w;
    jw_init(&w, 0);
    jw_begin_object(&w);
    jw_key(&w, "data", 4);
    jw_begin_array(&w);
    for (int i = 0; i < a->data.n; i++) jw_string(&w, a->data.items[i], strlen(a->data.items[i]));
    jw_end_array(&w);
    jw_key(&w, "seed", 4);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->seed);
    jw_string(&w, seed, strlen(seed));
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *p = (const char *)a + fields[i].offset;
        jw_key(&w, fields[i].name, strlen(fields[i].name));
        /* memcpy: the field is reached through a char pointer. */
        if (fields[i].is_double) {
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

int train_checkpoint_save(const train_args *a, slm_model *m, int step, uint64_t data_hash,
                          char *err, size_t errlen)
{
    float *mom1 = slm_model_adam_state(m, 0), *mom2 = slm_model_adam_state(m, 1);
    if (!mom1 || !mom2) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    char *args = NULL, *path = path_join(a->out, STATE_FILE);
    int rc = path ? args_to_json(a, &args, err, errlen)
                  : fail(err, errlen, SLM_ENOMEM, "out of memory");
    if (!rc) {
        char step_s[32], hash_s[32];
        snprintf(step_s, sizeof step_s, "%d", step);
        snprintf(hash_s, sizeof hash_s, "%016llx", (unsigned long long)data_hash);
        const char *meta[] = {"format", STATE_FORMAT, "version", "1", "step", step_s,
                              "data_hash", hash_s, "args", args};
        int64_t shape[1] = {(int64_t)slm_model_num_params(m)};
        slm_safetensors_entry t[3] = {
            {"params", SLM_DTYPE_F32, 1, shape, slm_model_params(m)},
            {"adam.m", SLM_DTYPE_F32, 1, shape, mom1},
            {"adam.v", SLM_DTYPE_F32, 1, shape, mom2},
        };
        rc = slm_safetensors_save(path, t, 3, meta, 5, err, errlen);
    }
    if (!rc) rc = slm_model_save(m, a->out, err, errlen);
    free(args);
    free(path);
    return rc;
}

/* 1 if DIR's config.json + model.safetensors hold exactly m. */
static int model_files_current(const char *dir, const slm_model *m)
{
    slm_model *f;
    if (slm_model_load(dir, &f, NULL, 0)) return 0;
    const slm_config *a = slm_model_config(f), *b = slm_model_config(m);
    int same = a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
               a->n_positions == b->n_positions && a->vocab_size == b->vocab_size &&
               a->layer_norm_epsilon == b->layer_norm_epsilon &&
               a->activation == b->activation && a->tokenizer == b->tokenizer &&
               a->dropout == b->dropout && slm_model_num_params(f) == slm_model_num_params(m) &&
               !memcmp(slm_model_params(f), slm_model_params((slm_model *)m),
                       slm_model_num_params(m) * sizeof(float));
    slm_model_free(f);
    return same;
}

int train_checkpoint_sync(const train_args *a, slm_model *m, int *rewritten, char *err,
                          size_t errlen)
{
    *rewritten = 0;
    if (model_files_current(a->out, m)) return SLM_OK;
    *rewritten = 1;
    return slm_model_save(m, a->out, err, errlen);
}

/* Copies the strings the arguments need (data paths, DIR) into one block. */
static int keep_strings(const json_value *data, const char *dir, train_args *a,
                        char **strings, char *err, size_t errlen)
{
    size_t total = strlen(dir) + 1;
    json_iter it = json_iterate(data);
    const json_value *k, *v;
    while (json_next(&it, &k, &v)) {
        if (v->type != SLM_JSON_STRING || a->data.n >= CLI_MAX_LIST)
            return fail(err, errlen, SLM_EFORMAT, "bad data list in the training state");
        total += v->len + 1;
        a->data.n++;
    }
    char *block = malloc(total), *p = block;
    if (!block) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    it = json_iterate(data);
    for (int i = 0; json_next(&it, &k, &v); i++) {
        memcpy(p, v->u.str, v->len + 1);
        a->data.items[i] = p;
        p += v->len + 1;
    }
    strcpy(p, dir);
    a->out = p;
    *strings = block;
    return SLM_OK;
}

static int args_from_json(const char *json, const char *dir, train_args *a, char **strings,
                          char *err, size_t errlen)
{
    json_doc doc;
    int rc = json_parse(json, strlen(json), STATE_FILE " args", &doc, err, errlen);
    if (rc) return rc;
    memset(a, 0, sizeof *a);
    const json_value *root = json_root(&doc), *data = json_get(root, "data");
    const json_value *seed = json_get(root, "seed");
    rc = SLM_OK;
    if (!data || data->type != SLM_JSON_ARRAY || !seed || seed->type != SLM_JSON_STRING)
        rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": arguments lack data or seed");
    else
        a->seed = strtoull(seed->u.str, NULL, 10);
    for (size_t i = 0; i < N_FIELDS && !rc; i++) {
        const json_value *v = json_get(root, fields[i].name);
        int64_t iv;
        char *p = (char *)a + fields[i].offset;
        if (!v || v->type != SLM_JSON_NUMBER)
            rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": argument '%s' missing",
                          fields[i].name);
        else if (fields[i].is_double)
            memcpy(p, &(double){json_number(v)}, sizeof(double));
        else if (!json_int(v, &iv) || iv < 0 || iv > 0x7fffffff)
            rc = fail(err, errlen, SLM_EFORMAT, STATE_FILE ": argument '%s' is not a count",
                          fields[i].name);
        else
            memcpy(p, &(int){(int)iv}, sizeof(int));
    }
    if (!rc) rc = keep_strings(data, dir, a, strings, err, errlen);
    json_free(&doc);
    return rc;
}

/* Reads one [n] F32 tensor of the state into dst. */
static int read_vector(const slm_safetensors *f, const char *name, float *dst, size_t n,
                       char *err, size_t errlen)
{
    const slm_safetensors_tensor *t = slm_safetensors_find(f, name);
    if (!t || t->dtype != SLM_DTYPE_F32 || t->numel != n)
        return fail(err, errlen, SLM_EFORMAT,
                        STATE_FILE ": tensor '%s' is missing or does not match the model", name);
    return slm_safetensors_read(f, t, SLM_DTYPE_F32, 0, n, dst, err, errlen);
}

int train_checkpoint_load(const char *dir, train_args *a, char **strings, slm_model **m,
                          int *step, uint64_t *data_hash, char *err, size_t errlen)
{
    *m = NULL;
    *strings = NULL;
    char *path = path_join(dir, STATE_FILE);
    slm_safetensors *f = NULL;
    int rc = path ? slm_safetensors_open(path, &f, err, errlen)
                  : fail(err, errlen, SLM_ENOMEM, "out of memory");
    free(path);
    if (rc) return rc;
    const char *format = slm_safetensors_metadata(f, "format");
    const char *step_s = slm_safetensors_metadata(f, "step");
    const char *hash_s = slm_safetensors_metadata(f, "data_hash");
    const char *args = slm_safetensors_metadata(f, "args");
    char *end = NULL;
    long s = step_s ? strtol(step_s, &end, 10) : -1;
    if (!format || strcmp(format, STATE_FORMAT) || !args || !hash_s || !end || *end || s < 0) {
        slm_safetensors_close(f);
        return fail(err, errlen, SLM_EFORMAT, STATE_FILE " is not an slm training state");
    }
    *step = (int)s;
    *data_hash = strtoull(hash_s, NULL, 16);
    rc = args_from_json(args, dir, a, strings, err, errlen);
    slm_config c;
    if (!rc) {
        train_config(a, &c);
        rc = slm_model_create(&c, 0, m, err, errlen);
    }
    if (!rc) {
        size_t n = slm_model_num_params(*m);
        float *mom1 = slm_model_adam_state(*m, 0), *mom2 = slm_model_adam_state(*m, 1);
        rc = !mom1 || !mom2 ? fail(err, errlen, SLM_ENOMEM, "out of memory")
                            : read_vector(f, "params", slm_model_params(*m), n, err, errlen);
        if (!rc) rc = read_vector(f, "adam.m", mom1, n, err, errlen);
        if (!rc) rc = read_vector(f, "adam.v", mom2, n, err, errlen);
    }
    slm_safetensors_close(f);
    if (rc) {
        slm_model_free(*m);
        *m = NULL;
        free(*strings);
        *strings = NULL;
    }
    return rc;
}

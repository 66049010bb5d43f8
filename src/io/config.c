/*
 * config.json ↔ slm_config. Reads what transformers' GPT2Config writes and
 * refuses the GPT-2 variants we do not implement rather than silently
 * computing something else; writes what GPT2Config needs so
 * GPT2LMHeadModel.from_pretrained(dir) works.
 */
#include "io/config.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_EOT 50256

static const char *type_name(const json_value *v)
{
    static const char *names[] = {"null",     "false",    "true",     "a number",
                                  "a string", "an array", "an object"};
    return names[v->type];
}

/* A required positive int member. */
static int get_size(const char *name, const json_value *root, const char *key, int *out,
                    char *err, size_t errlen)
{
    const json_value *v = json_get(root, key);
    int64_t x;
    if (!v) return fail(err, errlen, SLM_EFORMAT, "%s: %s is missing", name, key);
    if (v->type != SLM_JSON_NUMBER)
        return fail(err, errlen, SLM_EFORMAT, "%s: %s must be an integer, got %s", name, key,
                        type_name(v));
    if (!json_int(v, &x)) {
        double d = json_number(v);
        if (d > INT_MAX) /* an integer too large for int64, or 1e12 */
            return fail(err, errlen, SLM_ERANGE, "%s: %s = %g is too large", name, key, d);
        return fail(err, errlen, SLM_EFORMAT, "%s: %s must be an integer, got %g", name, key,
                        d);
    }
    if (x <= 0)
        return fail(err, errlen, SLM_EINVAL, "%s: %s must be positive, got %lld", name, key,
                        (long long)x);
    if (x > INT_MAX)
        return fail(err, errlen, SLM_ERANGE, "%s: %s = %lld is too large", name, key,
                        (long long)x);
    *out = (int)x;
    return SLM_OK;
}

/* An optional number member (absent: *out keeps its default). */
static int get_number(const char *name, const json_value *root, const char *key, float *out,
                      char *err, size_t errlen)
{
    const json_value *v = json_get(root, key);
    if (!v) return SLM_OK;
    if (v->type != SLM_JSON_NUMBER)
        return fail(err, errlen, SLM_EFORMAT, "%s: %s must be a number, got %s", name, key,
                        type_name(v));
    double d = json_number(v);
    /* Out-of-range double → float is undefined behaviour: saturate, and let
     * slm_config_validate reject the infinity. */
    *out = fabs(d) > FLT_MAX ? (d > 0 ? INFINITY : -INFINITY) : (float)d;
    return SLM_OK;
}

/* An optional boolean that must have the value `want` if present. */
static int require_bool(const char *name, const json_value *root, const char *key, int want,
                        const char *why, char *err, size_t errlen)
{
    const json_value *v = json_get(root, key);
    if (!v || (v->type == SLM_JSON_NULL && !want)) return SLM_OK;
    if (v->type != SLM_JSON_TRUE && v->type != SLM_JSON_FALSE)
        return fail(err, errlen, SLM_EFORMAT, "%s: %s must be true or false, got %s", name, key,
                        type_name(v));
    if ((v->type == SLM_JSON_TRUE) != want)
        return fail(err, errlen, SLM_EUNSUPPORTED, "%s: %s = %s is not supported (%s)", name,
                        key, want ? "false" : "true", why);
    return SLM_OK;
}

/* An optional string member, matched against choices[] (values[] gives the
 * result); absent keeps *out. */
static int get_choice(const char *name, const json_value *root, const char *key,
                      const char *const *choices, const int *values, int n, int *out, char *err,
                      size_t errlen)
{
    const json_value *v = json_get(root, key);
    if (!v) return SLM_OK;
    if (v->type != SLM_JSON_STRING)
        return fail(err, errlen, SLM_EFORMAT, "%s: %s must be a string, got %s", name, key,
                        type_name(v));
    for (int i = 0; i < n; i++) {
        if (json_str_eq(v, choices[i])) {
            *out = values[i];
            return SLM_OK;
        }
    }
    char shown[64];
    size_t k = 0;
    for (; k < v->len && k < 60; k++) {
        unsigned char c = (unsigned char)v->u.str[k];
        shown[k] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    shown[k] = '\0';
    return fail(err, errlen, SLM_EUNSUPPORTED, "%s: %s '%s' is not supported", name, key,
                    shown);
}

/* "slm_quantization" into q (absent or null: fp32). */
static int get_quantization(const char *name, const json_value *root, const slm_config *c,
                            config_quant *q, char *err, size_t errlen)
{
    q->dtype = SLM_QUANT_NONE;
    q->group = 0;
    const json_value *v = json_get(root, "slm_quantization");
    if (!v || v->type == SLM_JSON_NULL) return SLM_OK;
    if (v->type != SLM_JSON_OBJECT)
        return fail(err, errlen, SLM_EFORMAT, "%s: slm_quantization must be an object, got %s",
                    name, type_name(v));
    if (!json_get(v, "dtype"))
        return fail(err, errlen, SLM_EFORMAT, "%s: slm_quantization: dtype is missing", name);
    static const char *const dtypes[] = {"int8", "bf16"};
    static const int dtype_v[] = {SLM_QUANT_INT8, SLM_QUANT_BF16};
    char why[256];
    int rc = get_choice(name, v, "dtype", dtypes, dtype_v, 2, &q->dtype, why, sizeof why);
    if (rc) /* why is "<name>: dtype ...": say where the key is */
        return fail(err, errlen, rc, "%s: slm_quantization: %s (int8 and bf16 are)", name,
                    why + strlen(name) + 2);
    if (q->dtype == SLM_QUANT_BF16) {
        if (json_get(v, "group_size"))
            return fail(err, errlen, SLM_EFORMAT,
                        "%s: slm_quantization: group_size is for int8 only", name);
        return SLM_OK;
    }
    if ((rc = get_size(name, v, "group_size", &q->group, err, errlen))) return rc;
    if (q->group % 32 || c->n_embd % q->group)
        return fail(err, errlen, SLM_EFORMAT,
                    "%s: slm_quantization: group_size %d is not a multiple of 32 dividing "
                    "n_embd (%d)",
                    name, q->group, c->n_embd);
    return SLM_OK;
}

static int parse_root(const char *name, const json_value *root, slm_config *c, config_quant *q,
                      char *err, size_t errlen)
{
    if (root->type != SLM_JSON_OBJECT)
        return fail(err, errlen, SLM_EFORMAT, "%s: not a JSON object", name);
    const json_value *mt = json_get(root, "model_type");
    if (!mt) return fail(err, errlen, SLM_EFORMAT, "%s: model_type is missing", name);
    static const char *const gpt2[] = {"gpt2"};
    int dummy = 0, rc;
    if ((rc = get_choice(name, root, "model_type", gpt2, &dummy, 1, &dummy, err, errlen)))
        return rc;
    memset(c, 0, sizeof *c);
    c->layer_norm_epsilon = 1e-5f;
    c->activation = SLM_ACT_GELU_NEW;
    c->tokenizer = SLM_TOKENIZER_GPT2;
    c->dropout = 0.1f; /* GPT2Config's resid_pdrop default */
    if ((rc = get_size(name, root, "n_layer", &c->n_layer, err, errlen)) ||
        (rc = get_size(name, root, "n_head", &c->n_head, err, errlen)) ||
        (rc = get_size(name, root, "n_embd", &c->n_embd, err, errlen)) ||
        (rc = get_size(name, root, "n_positions", &c->n_positions, err, errlen)) ||
        (rc = get_size(name, root, "vocab_size", &c->vocab_size, err, errlen)))
        return rc;
    static const char *const acts[] = {"gelu_new", "gelu_pytorch_tanh", "relu"};
    static const int act_v[] = {SLM_ACT_GELU_NEW, SLM_ACT_GELU_NEW, SLM_ACT_RELU};
    static const char *const toks[] = {"gpt2", "byte"};
    static const int tok_v[] = {SLM_TOKENIZER_GPT2, SLM_TOKENIZER_BYTE};
    if ((rc = get_choice(name, root, "activation_function", acts, act_v, 3, &c->activation, err,
                         errlen)) ||
        (rc =
             get_choice(name, root, "slm_tokenizer", toks, tok_v, 2, &c->tokenizer, err, errlen)) ||
        (rc = get_number(name, root, "layer_norm_epsilon", &c->layer_norm_epsilon, err, errlen)) ||
        (rc = get_number(name, root, "resid_pdrop", &c->dropout, err, errlen)))
        return rc;
    /* Variants of GPT-2 that change the computation: refuse, don't guess. */
    if ((rc = require_bool(name, root, "tie_word_embeddings", 1,
                           "the LM head is always tied to wte", err, errlen)) ||
        (rc =
             require_bool(name, root, "scale_attn_weights", 1,
                          "attention scores are always scaled by 1/sqrt(head_dim)", err, errlen)) ||
        (rc = require_bool(name, root, "scale_attn_by_inverse_layer_idx", 0,
                           "no per-layer attention scaling", err, errlen)) ||
        (rc =
             require_bool(name, root, "add_cross_attention", 0, "decoder-only model", err, errlen)))
        return rc;
    if (c->dropout == 0.0f) c->dropout = 0.0f; /* -0.0 (from "-0.0") is 0 */
    const json_value *inner = json_get(root, "n_inner");
    int64_t ni;
    if (inner && inner->type != SLM_JSON_NULL &&
        !(json_int(inner, &ni) && ni == 4 * (int64_t)c->n_embd))
        return fail(err, errlen, SLM_EUNSUPPORTED,
                        "%s: n_inner must be null or 4 * n_embd (%lld)", name,
                        4 * (long long)c->n_embd);
    char verr[200];
    rc = slm_config_validate(c, verr, sizeof verr);
    if (rc) {
        /* slm_config_validate says "config: ..."; name the file instead. */
        const char *what = strncmp(verr, "config: ", 8) ? verr : verr + 8;
        return fail(err, errlen, rc, "%s: %s", name, what);
    }
    return q ? get_quantization(name, root, c, q, err, errlen) : SLM_OK;
}

int config_parse(const char *text, size_t len, const char *name, slm_config *cfg, char *err,
                     size_t errlen)
{
    return config_parse_ex(text, len, name, cfg, NULL, err, errlen);
}

int config_parse_ex(const char *text, size_t len, const char *name, slm_config *cfg,
                    config_quant *q, char *err, size_t errlen)
{
    if (!name) name = "config.json";
    if (!cfg) return fail(err, errlen, SLM_EINVAL, "no config");
    if (len > SLM_CONFIG_MAX_BYTES)
        return fail(err, errlen, SLM_EFORMAT, "%s: %zu bytes is too large for a config", name,
                        len);
    json_doc doc;
    int rc = json_parse(text, len, name, &doc, err, errlen);
    if (rc) return rc;
    slm_config c;
    config_quant cq;
    rc = parse_root(name, json_root(&doc), &c, q ? &cq : NULL, err, errlen);
    json_free(&doc);
    if (!rc) *cfg = c;
    if (!rc && q) *q = cq;
    return rc;
}

int slm_config_load(const char *path, slm_config *cfg, char *err, size_t errlen)
{
    return config_load_ex(path, cfg, NULL, err, errlen);
}

int config_load_ex(const char *path, slm_config *cfg, config_quant *q, char *err, size_t errlen)
{
    if (!path || !cfg) return fail(err, errlen, SLM_EINVAL, "slm_config_load: bad arguments");
    char *text;
    size_t len;
    int rc = read_file(path, SLM_CONFIG_MAX_BYTES, &text, &len, err, errlen);
    if (rc) return rc;
    rc = config_parse_ex(text, len, path, cfg, q, err, errlen);
    free(text);
    return rc;
}

static void key(json_writer *w, const char *k)
{
    jw_key(w, k, strlen(k));
}
static void str(json_writer *w, const char *s)
{
    jw_string(w, s, strlen(s));
}

int config_to_json(const slm_config *c, char **out, size_t *len, char *err, size_t errlen)
{
    return config_to_json_ex(c, NULL, out, len, err, errlen);
}

int config_to_json_ex(const slm_config *c, const config_quant *q, char **out, size_t *len,
                      char *err, size_t errlen)
{
    int quant = q ? q->dtype : SLM_QUANT_NONE;
    int rc = slm_config_validate(c, err, errlen);
    if (rc) return rc;
    int gpt2 = c->tokenizer == SLM_TOKENIZER_GPT2;
    /* GPT-2's <|endoftext|>; for the byte tokenizer the last id, which no
     * byte uses when the vocabulary is padded (and is byte 0xFF otherwise,
     * which UTF-8 text never contains). */
    int eot = gpt2 && c->vocab_size > GPT2_EOT ? GPT2_EOT : c->vocab_size - 1;
    json_writer w;
    jw_init(&w, 2);
    /* Keys sorted, as transformers writes them. */
    jw_begin_object(&w);
    key(&w, "activation_function");
    str(&w, c->activation == SLM_ACT_RELU ? "relu" : "gelu_new");
    key(&w, "architectures");
    jw_begin_array(&w);
    str(&w, "GPT2LMHeadModel");
    jw_end_array(&w);
    key(&w, "attn_pdrop");
    jw_float(&w, c->dropout);
    key(&w, "bos_token_id");
    jw_int(&w, eot);
    key(&w, "embd_pdrop");
    jw_float(&w, c->dropout);
    key(&w, "eos_token_id");
    jw_int(&w, eot);
    key(&w, "initializer_range");
    jw_double(&w, 0.02);
    key(&w, "layer_norm_epsilon");
    jw_float(&w, c->layer_norm_epsilon);
    key(&w, "model_type");
    str(&w, "gpt2");
    key(&w, "n_ctx");
    jw_int(&w, c->n_positions);
    key(&w, "n_embd");
    jw_int(&w, c->n_embd);
    key(&w, "n_head");
    jw_int(&w, c->n_head);
    key(&w, "n_inner");
    jw_null(&w);
    key(&w, "n_layer");
    jw_int(&w, c->n_layer);
    key(&w, "n_positions");
    jw_int(&w, c->n_positions);
    key(&w, "resid_pdrop");
    jw_float(&w, c->dropout);
    if (quant != SLM_QUANT_NONE) {
        key(&w, "slm_quantization");
        jw_begin_object(&w);
        key(&w, "dtype");
        str(&w, quant == SLM_QUANT_INT8 ? "int8" : "bf16");
        if (quant == SLM_QUANT_INT8) {
            key(&w, "group_size");
            jw_int(&w, q->group);
        }
        jw_end_object(&w);
    }
    key(&w, "slm_tokenizer");
    str(&w, gpt2 ? "gpt2" : "byte");
    key(&w, "tie_word_embeddings");
    jw_bool(&w, 1);
    key(&w, "torch_dtype");
    str(&w, quant == SLM_QUANT_BF16 ? "bfloat16" : "float32");
    key(&w, "vocab_size");
    jw_int(&w, c->vocab_size);
    jw_end_object(&w);
    jw_raw(&w, "\n", 1);
    return jw_finish(&w, out, len, err, errlen);
}

int slm_config_save(const slm_config *cfg, const char *path, char *err, size_t errlen)
{
    return config_save_ex(cfg, NULL, path, err, errlen);
}

int config_save_ex(const slm_config *cfg, const config_quant *q, const char *path, char *err,
                   size_t errlen)
{
    if (!path || !cfg) return fail(err, errlen, SLM_EINVAL, "slm_config_save: bad arguments");
    char *text;
    size_t len;
    int rc = config_to_json_ex(cfg, q, &text, &len, err, errlen);
    if (rc) return rc;
    rc = atomic_write(path, text, len, err, errlen);
    free(text);
    return rc;
}

/* config.json ↔ slm_config (src/io/config.c): the Hugging Face file, the
 * writer's round trip, and one test per bad field with its error code. */
#include "io_util.h"

#include "io/config.h"
#include "io/json.h"
#include "test.h"

/* transformers 4.30's GPT2Config().to_json_string() for a small model. */
static const char *HF_CONFIG =
    "{\n  \"activation_function\": \"gelu_new\",\n  \"architectures\": [\n"
    "    \"GPT2LMHeadModel\"\n  ],\n  \"attn_pdrop\": 0.1,\n  \"bos_token_id\": 50256,\n"
    "  \"embd_pdrop\": 0.1,\n  \"eos_token_id\": 50256,\n  \"initializer_range\": 0.02,\n"
    "  \"layer_norm_epsilon\": 1e-05,\n  \"model_type\": \"gpt2\",\n  \"n_embd\": 16,\n"
    "  \"n_head\": 2,\n  \"n_inner\": null,\n  \"n_layer\": 2,\n  \"n_positions\": 32,\n"
    "  \"reorder_and_upcast_attn\": false,\n  \"resid_pdrop\": 0.1,\n"
    "  \"scale_attn_by_inverse_layer_idx\": false,\n  \"scale_attn_weights\": true,\n"
    "  \"summary_activation\": null,\n  \"summary_first_dropout\": 0.1,\n"
    "  \"summary_proj_to_labels\": true,\n  \"summary_type\": \"cls_index\",\n"
    "  \"summary_use_proj\": true,\n  \"torch_dtype\": \"float32\",\n"
    "  \"transformers_version\": \"4.30.2\",\n  \"use_cache\": true,\n  \"vocab_size\": 300\n}\n";

static int parse(const char *s, slm_config *c, char *err, size_t errlen)
{
    return config_parse(s, strlen(s), "config.json", c, err, errlen);
}

static void test_config_reads_transformers_file(void)
{
    slm_config c;
    char err[256];
    int rc = parse(HF_CONFIG, &c, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    CHECK(c.n_layer == 2 && c.n_head == 2 && c.n_embd == 16 && c.n_positions == 32 &&
              c.vocab_size == 300,
          "sizes");
    CHECK(c.layer_norm_epsilon == 1e-5f && c.activation == SLM_ACT_GELU_NEW &&
              c.tokenizer == SLM_TOKENIZER_GPT2 && c.dropout == 0.1f,
          "defaults");
}

static void test_config_defaults_and_choices(void)
{
    slm_config c;
    char err[256];
    const char *min = "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":8,"
                      "\"n_positions\":4,\"vocab_size\":256,\"slm_tokenizer\":\"byte\","
                      "\"activation_function\":\"relu\",\"resid_pdrop\":0,"
                      "\"layer_norm_epsilon\":1e-6,\"some_future_key\":[1,{}]}";
    CHECK(parse(min, &c, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(c.tokenizer == SLM_TOKENIZER_BYTE && c.activation == SLM_ACT_RELU && c.dropout == 0 &&
              c.layer_norm_epsilon == 1e-6f,
          "choices");
    const char *tanh = "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":8,"
                       "\"n_positions\":4,\"vocab_size\":9,"
                       "\"activation_function\":\"gelu_pytorch_tanh\",\"n_inner\":32}";
    CHECK(parse(tanh, &c, err, sizeof err) == SLM_OK, "%s", err);
    /* -0.0 is 0, so the config round-trips exactly (found by fuzz_config). */
    const char *negz = "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":8,"
                       "\"n_positions\":4,\"vocab_size\":9,\"resid_pdrop\":-0.0}";
    slm_config z;
    CHECK(parse(negz, &z, err, sizeof err) == SLM_OK && z.dropout == 0 && !signbit(z.dropout),
          "-0.0 dropout: %s", err);
    CHECK(c.activation == SLM_ACT_GELU_NEW && c.tokenizer == SLM_TOKENIZER_GPT2 &&
              c.dropout == 0.1f && c.layer_norm_epsilon == 1e-5f,
          "gelu_pytorch_tanh is gelu_new; defaults");
}

/* Replaces the value of one key in a valid small config and expects code. */
static void reject(const char *key, const char *value, int code, const char *want)
{
    char text[1024];
    const char *keys[] = {"model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size"};
    const char *vals[] = {"\"gpt2\"", "2", "2", "16", "32", "300"};
    int n = snprintf(text, sizeof text, "{");
    int replaced = 0;
    for (int i = 0; i < 6; i++) {
        const char *v = vals[i];
        if (!strcmp(keys[i], key)) {
            v = value;
            replaced = 1;
        }
        if (v)
            n += snprintf(text + n, sizeof text - (size_t)n, "%s\"%s\":%s", n > 1 ? "," : "",
                          keys[i], v);
    }
    if (!replaced) n += snprintf(text + n, sizeof text - (size_t)n, ",\"%s\":%s", key, value);
    snprintf(text + n, sizeof text - (size_t)n, "}");
    slm_config c;
    char err[256] = "";
    int rc = parse(text, &c, err, sizeof err);
    CHECK(rc == code, "%s=%s: rc %d want %d (%s)", key, value ? value : "(absent)", rc, code, err);
    CHECK(strstr(err, want) != NULL, "%s=%s: message '%s' lacks '%s'", key,
          value ? value : "(absent)", err, want);
    CHECK(!strncmp(err, "config.json", 11), "message '%s' does not name the file", err);
}

static void test_config_rejects_bad_sizes(void)
{
    reject("n_layer", NULL, SLM_EFORMAT, "n_layer is missing");
    reject("n_layer", "0", SLM_EINVAL, "n_layer must be positive, got 0");
    reject("n_head", "-2", SLM_EINVAL, "n_head must be positive, got -2");
    reject("n_embd", "12.5", SLM_EFORMAT, "n_embd must be an integer, got 12.5");
    reject("n_embd", "16.0", SLM_EFORMAT, "n_embd must be an integer, got 16");
    reject("n_embd", "\"16\"", SLM_EFORMAT, "n_embd must be an integer, got a string");
    reject("vocab_size", "null", SLM_EFORMAT, "vocab_size must be an integer, got null");
    reject("n_embd", "15", SLM_EINVAL, "n_embd (15) is not a multiple of n_head (2)");
    reject("n_positions", "3000000000", SLM_ERANGE, "n_positions = 3000000000 is too large");
    reject("n_layer", "1e30", SLM_ERANGE, "too large");
    reject("n_layer", "99999999999999999999999", SLM_ERANGE, "too large");
    /* Each size within its limit, the product absurd: refused by
     * slm_config_validate before any allocation. */
    reject("n_embd", "65536", SLM_ERANGE, "exceed");
    slm_config c;
    char err[256];
    const char *huge = "{\"model_type\":\"gpt2\",\"n_layer\":1024,\"n_head\":16,"
                       "\"n_embd\":8192,\"n_positions\":1048576,\"vocab_size\":4194304}";
    CHECK(parse(huge, &c, err, sizeof err) == SLM_ERANGE && strstr(err, "parameters"), "huge: %s",
          err);
}

static void test_config_rejects_bad_fields(void)
{
    reject("model_type", NULL, SLM_EFORMAT, "model_type is missing");
    reject("model_type", "\"llama\"", SLM_EUNSUPPORTED, "model_type 'llama' is not supported");
    reject("model_type", "1", SLM_EFORMAT, "model_type must be a string, got a number");
    reject("activation_function", "\"gelu\"", SLM_EUNSUPPORTED,
           "activation_function 'gelu' is not supported");
    reject("activation_function", "\"swish\\n\"", SLM_EUNSUPPORTED, "'swish?'");
    reject("slm_tokenizer", "\"sentencepiece\"", SLM_EUNSUPPORTED, "slm_tokenizer");
    reject("tie_word_embeddings", "false", SLM_EUNSUPPORTED, "tie_word_embeddings = false");
    reject("tie_word_embeddings", "1", SLM_EFORMAT, "must be true or false");
    reject("scale_attn_by_inverse_layer_idx", "true", SLM_EUNSUPPORTED, "not supported");
    reject("scale_attn_weights", "false", SLM_EUNSUPPORTED, "not supported");
    reject("add_cross_attention", "true", SLM_EUNSUPPORTED, "not supported");
    reject("n_inner", "100", SLM_EUNSUPPORTED, "n_inner must be null or 4 * n_embd (64)");
    reject("layer_norm_epsilon", "0", SLM_EINVAL, "layer_norm_epsilon must be positive");
    reject("layer_norm_epsilon", "1e300", SLM_EINVAL, "layer_norm_epsilon must be positive");
    reject("layer_norm_epsilon", "\"1e-5\"", SLM_EFORMAT, "must be a number");
    reject("resid_pdrop", "1", SLM_EINVAL, "dropout must be in [0, 1)");
    slm_config c;
    char err[256];
    const char *small = "{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":8,"
                        "\"n_positions\":4,\"vocab_size\":100,\"slm_tokenizer\":\"byte\"}";
    CHECK(parse(small, &c, err, sizeof err) == SLM_EINVAL && strstr(err, "vocab_size >= 256"),
          "byte vocab: %s", err);
}

static void test_config_rejects_malformed_json(void)
{
    slm_config c;
    char err[256];
    CHECK(parse("", &c, err, sizeof err) == SLM_EFORMAT, "empty");
    CHECK(parse("[]", &c, err, sizeof err) == SLM_EFORMAT && strstr(err, "not a JSON object"),
          "array: %s", err);
    CHECK(parse("{\"model_type\": \"gpt2\",}", &c, err, sizeof err) == SLM_EFORMAT &&
              strstr(err, "config.json:1:23: expected a string key"),
          "trailing comma: %s", err);
}

static void test_config_round_trip_and_hf_fields(void)
{
    slm_config c = {3, 4, 32, 64, 50257, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_GPT2, 0.1f};
    char *text;
    size_t len;
    char err[256];
    CHECK(config_to_json(&c, &text, &len, err, sizeof err) == SLM_OK, "%s", err);
    slm_config back;
    CHECK(parse(text, &back, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(!memcmp(&c, &back, sizeof c), "round trip differs");
    CHECK(strstr(text, "\"layer_norm_epsilon\": 1e-05,") && strstr(text, "\"resid_pdrop\": 0.1,"),
          "floats written shortest:\n%s", text);
    json_doc d;
    CHECK(json_parse(text, len, NULL, &d, err, sizeof err) == SLM_OK, "%s", err);
    const json_value *r = json_root(&d);
    int64_t x;
    CHECK(json_str_eq(json_get(r, "model_type"), "gpt2"), "model_type");
    CHECK(json_int(json_get(r, "n_ctx"), &x) && x == 64, "n_ctx");
    CHECK(json_int(json_get(r, "eos_token_id"), &x) && x == 50256, "eos");
    CHECK(json_get(r, "tie_word_embeddings")->type == SLM_JSON_TRUE, "tied");
    const json_value *arch = json_get(r, "architectures");
    CHECK(arch && arch->count == 1 && json_str_eq(arch + 1, "GPT2LMHeadModel"), "arch");
    CHECK(json_str_eq(json_get(r, "torch_dtype"), "float32"), "dtype");
    json_free(&d);
    free(text);

    /* A byte model: eos is the last id; relu survives the trip. */
    slm_config b = {1, 1, 8, 16, 320, 1e-5f, SLM_ACT_RELU, SLM_TOKENIZER_BYTE, 0.0f};
    CHECK(config_to_json(&b, &text, &len, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(parse(text, &back, err, sizeof err) == SLM_OK && !memcmp(&b, &back, sizeof b),
          "byte round trip");
    CHECK(strstr(text, "\"eos_token_id\": 319,") && strstr(text, "\"slm_tokenizer\": \"byte\""),
          "byte fields:\n%s", text);
    free(text);
    b.n_head = 3;
    CHECK(config_to_json(&b, &text, &len, err, sizeof err) == SLM_EINVAL,
          "invalid config written");
}

static void test_config_file_load_and_save(void)
{
    char *dir = tmpdir_make();
    slm_config c = {2, 2, 16, 32, 300, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_GPT2, 0.1f}, back;
    char err[256];
    const char *p = path_in(dir, "config.json", 0);
    CHECK(slm_config_load(p, &back, err, sizeof err) == SLM_EIO && strstr(err, "No such file"),
          "missing: %s", err);
    CHECK(slm_config_save(&c, p, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(slm_config_load(p, &back, err, sizeof err) == SLM_OK && !memcmp(&c, &back, sizeof c),
          "load: %s", err);
    /* A huge file is refused before it is read. */
    const char *big = path_in(dir, "big.json", 1);
    FILE *f = fopen(big, "wb");
    fseek(f, (long)SLM_CONFIG_MAX_BYTES, SEEK_SET);
    fputc(' ', f);
    fclose(f);
    CHECK(slm_config_load(big, &back, err, sizeof err) == SLM_EFORMAT && strstr(err, "too large"),
          "big: %s", err);
    tmpdir_remove(dir);
}

int main(void)
{
    RUN(test_config_reads_transformers_file);
    RUN(test_config_defaults_and_choices);
    RUN(test_config_rejects_bad_sizes);
    RUN(test_config_rejects_bad_fields);
    RUN(test_config_rejects_malformed_json);
    RUN(test_config_round_trip_and_hf_fields);
    RUN(test_config_file_load_and_save);
    return test_summary();
}

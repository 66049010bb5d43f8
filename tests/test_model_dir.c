/* Model directories (src/io/model_dir.c): save → load is bit-exact, the
 * Hugging Face variants load, and every malformed directory is refused with
 * its code and a message naming the problem. */
#include "io_util.h"

#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static const slm_config CFG = {2,   2, 16, 32, 300, 1e-5f, SLM_ACT_GELU_NEW, SLM_TOKENIZER_GPT2,
                               0.1f};

static slm_model *make_model(uint64_t seed)
{
    slm_model *m = NULL;
    char err[256];
    int rc = slm_model_create(&CFG, seed, &m, err, sizeof err);
    CHECK(rc == SLM_OK, "create: %s", err);
    return m;
}

/* Writes DIR/model.safetensors from m's tensors with options:
 * prefix: "transformer." or ""; dtype: F32/F16/BF16 (values are rounded by
 * truncation, so use representable ones); extra: more entries appended. */
static int write_weights(const slm_model *m, const char *dir, const char *prefix, int dtype,
                         const slm_safetensors_entry *extra, int n_extra, int skip)
{
    int n = m->n_tensors;
    slm_safetensors_entry *e = calloc((size_t)(n + n_extra), sizeof *e);
    char(*names)[80] = calloc((size_t)n, 80);
    int64_t(*shapes)[2] = calloc((size_t)n, sizeof *shapes);
    uint16_t *half = calloc(m->n_params, 2);
    int k = 0;
    for (int j = 0; j < n; j++) {
        if (j == skip) continue;
        const slm_tensor_info *t = &m->tensors[j];
        snprintf(names[j], 80, "%s%s", prefix, t->name);
        shapes[j][0] = t->shape[0];
        shapes[j][1] = t->shape[1];
        const void *data = m->params + t->offset;
        if (dtype != SLM_DTYPE_F32) {
            for (size_t i = 0; i < t->numel; i++) {
                float x = m->params[t->offset + i];
                uint32_t b;
                memcpy(&b, &x, 4);
                if (dtype == SLM_DTYPE_BF16) {
                    half[t->offset + i] = (uint16_t)(b >> 16);
                } else { /* exact for the values the tests use */
                    int ex = (int)((b >> 23) & 0xff) - 127;
                    uint16_t h = (uint16_t)((b >> 16) & 0x8000);
                    if (x != 0) h |= (uint16_t)(((ex + 15) << 10) | ((b >> 13) & 0x3ff));
                    half[t->offset + i] = h;
                }
            }
            data = half + t->offset;
        }
        e[k++] = (slm_safetensors_entry){names[j], dtype, t->ndim, shapes[j], data};
    }
    for (int i = 0; i < n_extra; i++)
        e[k++] = extra[i];
    char err[256];
    static const char *const meta[] = {"format", "pt"};
    int rc =
        slm_safetensors_save(path_in(dir, "model.safetensors", 3), e, k, meta, 1, err, sizeof err);
    CHECK(rc == SLM_OK, "write_weights: %s", err);
    free(e);
    free(names);
    free(shapes);
    free(half);
    return rc;
}

/* Rounds every parameter to a value F16 and BF16 hold exactly. */
static void round_params(slm_model *m)
{
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)((int)(m->params[i] * 64.0f)) / 64.0f;
}

static void expect_load_fails(const char *dir, int code, const char *want)
{
    slm_model *m = (slm_model *)1;
    char err[512] = "";
    int rc = slm_model_load(dir, &m, err, sizeof err);
    CHECK(rc == code, "rc %d want %d (%s)", rc, code, err);
    CHECK(m == NULL, "model set on failure");
    CHECK(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
}

static void test_model_save_load_bit_exact(void)
{
    char *dir = tmpdir_make();
    const char *out = path_in(dir, "a/b/model", 0); /* created, with parents */
    slm_model *m = make_model(7), *back = NULL;
    char err[256];
    CHECK(slm_model_save(m, out, err, sizeof err) == SLM_OK, "save: %s", err);
    CHECK(slm_model_load(out, &back, err, sizeof err) == SLM_OK, "load: %s", err);
    if (back) {
        CHECK(!memcmp(&back->cfg, &m->cfg, sizeof m->cfg), "config differs");
        CHECK(back->n_params == m->n_params &&
                  !memcmp(back->params, m->params, m->n_params * sizeof(float)),
              "parameters differ");
    }
    /* The file uses GPT2LMHeadModel's names, F32, no lm_head, format pt. */
    slm_safetensors *f;
    char p[2200];
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    CHECK(slm_safetensors_open(p, &f, err, sizeof err) == SLM_OK, "%s", err);
    if (f) {
        CHECK(slm_safetensors_count(f) == m->n_tensors, "count");
        CHECK(!strcmp(slm_safetensors_metadata(f, "format"), "pt"), "format");
        const slm_safetensors_tensor *t =
            slm_safetensors_find(f, "transformer.h.1.mlp.c_fc.weight");
        CHECK(t && t->dtype == SLM_DTYPE_F32 && t->shape[0] == 16 && t->shape[1] == 64, "c_fc");
        CHECK(slm_safetensors_find(f, "transformer.ln_f.bias") != NULL, "ln_f");
        CHECK(slm_safetensors_find(f, "lm_head.weight") == NULL, "lm_head saved");
        slm_safetensors_close(f);
    }
    /* Saving again over the directory works (atomic replace). */
    CHECK(slm_model_save(back ? back : m, out, err, sizeof err) == SLM_OK, "resave: %s", err);
    slm_model_free(m);
    slm_model_free(back);
    tmpdir_remove(dir);
}

static void test_model_loads_f16_bf16_and_hf_variants(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(3), *back = NULL;
    round_params(m);
    char err[256];
    CHECK(slm_config_save(&m->cfg, path_in(dir, "config.json", 0), err, sizeof err) == SLM_OK, "%s",
          err);
    int dtypes[2] = {SLM_DTYPE_F16, SLM_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        /* No prefix; mask buffers and a tied lm_head as older exports have. */
        int64_t mask_shape[4] = {1, 1, 32, 32}, lm_shape[2] = {300, 16}, scalar[1] = {1};
        float *mask = calloc(32 * 32, sizeof(float)), masked_bias = -1e4f;
        slm_safetensors_entry extra[3] = {
            {"h.0.attn.bias", SLM_DTYPE_F32, 4, mask_shape, mask},
            {"h.1.attn.masked_bias", SLM_DTYPE_F32, 1, scalar, &masked_bias},
            {"lm_head.weight", SLM_DTYPE_F32, 2, lm_shape, m->params}};
        write_weights(m, dir, d ? "" : "transformer.", dtypes[d], extra, 3, -1);
        int rc = slm_model_load(dir, &back, err, sizeof err);
        CHECK(rc == SLM_OK, "%s: %s", slm_dtype_name(dtypes[d]), err);
        if (!rc)
            CHECK(!memcmp(back->params, m->params, m->n_params * sizeof(float)), "%s values differ",
                  slm_dtype_name(dtypes[d]));
        slm_model_free(back);
        back = NULL;
        free(mask);
    }
    /* An untied lm_head is refused. */
    float *other = malloc(300 * 16 * sizeof(float));
    memcpy(other, m->params, 300 * 16 * sizeof(float));
    other[5] += 1.0f;
    int64_t lm_shape[2] = {300, 16};
    slm_safetensors_entry lm = {"lm_head.weight", SLM_DTYPE_F32, 2, lm_shape, other};
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &lm, 1, -1);
    expect_load_fails(dir, SLM_EUNSUPPORTED, "lm_head.weight differs from wte.weight");
    free(other);
    slm_model_free(m);
    tmpdir_remove(dir);
}

static void test_model_rejects_wrong_tensors(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(5);
    char err[256];
    CHECK(slm_config_save(&m->cfg, path_in(dir, "config.json", 0), err, sizeof err) == SLM_OK, "%s",
          err);
    /* Missing tensor (h.1.ln_2.bias is index 2 + 12 + 7). */
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, NULL, 0, 2 + 12 + 7);
    expect_load_fails(dir, SLM_EFORMAT, "tensor 'h.1.ln_2.bias' is missing");
    /* Extra tensor. */
    float x[4] = {0};
    int64_t s4[1] = {4}, bad_shape[2] = {48, 16};
    slm_safetensors_entry extra = {"transformer.h.2.ln_1.weight", SLM_DTYPE_F32, 1, s4, x};
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &extra, 1, -1);
    expect_load_fails(dir, SLM_EFORMAT, "unexpected tensor 'transformer.h.2.ln_1.weight'");
    extra.name = "h.01.ln_1.weight";
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &extra, 1, -1);
    expect_load_fails(dir, SLM_EFORMAT, "unexpected tensor 'h.01.ln_1.weight'");
    /* Same tensor with and without the prefix. */
    extra.name = "ln_f.bias";
    extra.shape = (int64_t[]){16};
    float zeros[16] = {0};
    extra.data = zeros;
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &extra, 1, -1);
    expect_load_fails(dir, SLM_EFORMAT, "tensor 'ln_f.bias' appears twice");
    /* Wrong shape: c_attn transposed. */
    float *w = calloc(48 * 16, sizeof(float));
    slm_safetensors_entry tr = {"transformer.h.0.attn.c_attn.weight", SLM_DTYPE_F32, 2, bad_shape,
                                w};
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &tr, 1, 2 + 2);
    expect_load_fails(dir, SLM_EFORMAT,
                      "tensor 'transformer.h.0.attn.c_attn.weight' has shape [48, 16], "
                      "expected [16, 48]");
    /* Wrong dtype. */
    tr.dtype = SLM_DTYPE_I32;
    tr.shape = (int64_t[]){16, 48};
    write_weights(m, dir, "transformer.", SLM_DTYPE_F32, &tr, 1, 2 + 2);
    expect_load_fails(dir, SLM_EFORMAT, "has dtype I32; expected F32, F16 or BF16");
    free(w);
    /* A corrupt safetensors file. */
    write_bytes(path_in(dir, "model.safetensors", 1), "\x05\0\0\0\0\0\0\0{\"a\":", 13);
    expect_load_fails(dir, SLM_EFORMAT, "model.safetensors: header:1:6: unexpected end of input");
    slm_model_free(m);
    tmpdir_remove(dir);
}

static void test_model_nan_weights_load_with_warning(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(9), *back = NULL;
    m->w.h[0].ln_1_w[3] = NAN;
    m->w.h[1].c_fc_w[0] = INFINITY;
    m->w.h[1].c_fc_w[1] = -INFINITY;
    char err[256], warn[256];
    CHECK(slm_model_save(m, dir, err, sizeof err) == SLM_OK, "%s", err);
    int rc = slm_model_load(dir, &back, err, sizeof err);
    CHECK(rc == SLM_OK, "%s", err);
    CHECK(back && slm_model_count_nonfinite(back, warn, sizeof warn) == 3, "count");
    CHECK(strstr(warn, "3 non-finite values (NaN or inf) in 2 tensors, first 'h.0.ln_1.weight'"),
          "warning '%s'", warn);
    if (back) CHECK(isnan(back->w.h[0].ln_1_w[3]) && back->w.h[1].c_fc_w[1] == -INFINITY, "values");
    slm_model_free(back);
    back = NULL;
    /* A clean model has no warning. */
    m->w.h[0].ln_1_w[3] = m->w.h[1].c_fc_w[0] = m->w.h[1].c_fc_w[1] = 0;
    CHECK(slm_model_save(m, dir, err, sizeof err) == SLM_OK, "%s", err);
    strcpy(warn, "stale");
    CHECK(slm_model_load(dir, &back, err, sizeof err) == SLM_OK &&
              slm_model_count_nonfinite(back, warn, sizeof warn) == 0 && warn[0] == '\0',
          "warning '%s'", warn);
    slm_model_free(back);
    slm_model_free(m);
    tmpdir_remove(dir);
}

static void write_config(const char *dir, const char *text)
{
    write_bytes(path_in(dir, "config.json", 2), text, strlen(text));
}

static void test_model_rejects_bad_configs(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(1);
    char err[256];
    CHECK(slm_model_save(m, dir, err, sizeof err) == SLM_OK, "%s", err);
    remove(path_in(dir, "config.json", 0));
    expect_load_fails(dir, SLM_EIO, "config.json': No such file or directory");
    write_config(dir, "{\"model_type\": \"gpt2\", \"n_layer\": 2,,}");
    expect_load_fails(dir, SLM_EFORMAT, "config.json:1:37: expected a string key");
    write_config(dir, "{\"model_type\":\"gpt2\",\"n_layer\":0,\"n_head\":2,\"n_embd\":16,"
                      "\"n_positions\":32,\"vocab_size\":300}");
    expect_load_fails(dir, SLM_EINVAL, "n_layer must be positive, got 0");
    write_config(dir, "{\"model_type\":\"gpt2\",\"n_layer\":2,\"n_head\":3,\"n_embd\":16,"
                      "\"n_positions\":32,\"vocab_size\":300}");
    expect_load_fails(dir, SLM_EINVAL, "n_embd (16) is not a multiple of n_head (3)");
    write_config(dir, "{\"model_type\":\"gpt2\",\"n_layer\":2,\"n_head\":2,\"n_embd\":16,"
                      "\"n_positions\":32,\"vocab_size\":300,\"activation_function\":\"silu\"}");
    expect_load_fails(dir, SLM_EUNSUPPORTED, "activation_function 'silu' is not supported");
    /* GPT-2 XL's config over this small file: refused before 6 GB are
     * allocated, because the file cannot hold that many parameters. */
    write_config(dir, "{\"model_type\":\"gpt2\",\"n_layer\":48,\"n_head\":25,\"n_embd\":1600,"
                      "\"n_positions\":1024,\"vocab_size\":50257}");
    expect_load_fails(dir, SLM_EFORMAT, "cannot hold the 1557611200 parameters");
    write_config(dir, "{\"model_type\":\"gpt2\",\"n_layer\":1000,\"n_head\":64,\"n_embd\":65536,"
                      "\"n_positions\":32,\"vocab_size\":300}");
    expect_load_fails(dir, SLM_ERANGE, "exceed");
    /* Missing weights. */
    CHECK(slm_config_save(&m->cfg, path_in(dir, "config.json", 0), err, sizeof err) == SLM_OK, "%s",
          err);
    remove(path_in(dir, "model.safetensors", 0));
    expect_load_fails(dir, SLM_EIO, "model.safetensors': No such file");
    expect_load_fails(path_in(dir, "nope", 0), SLM_EIO, "No such file");
    slm_model_free(m);
    tmpdir_remove(dir);
}

static void test_model_save_errors(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(2);
    char err[256];
    const char *file = path_in(dir, "file", 0);
    write_bytes(file, "x", 1);
    CHECK(slm_model_save(m, file, err, sizeof err) == SLM_EIO && strstr(err, "is a file"),
          "dir is a file: %s", err);
    CHECK(slm_model_save(m, path_in(dir, "file/sub", 1), err, sizeof err) == SLM_EIO &&
              strstr(err, "is a file"),
          "under a file: %s", err);
    /* Root ignores permission bits; /proc refuses new entries to anyone. */
    CHECK(slm_model_save(m, "/proc/slm_test_model", err, sizeof err) == SLM_EIO &&
              strstr(err, "cannot create directory '/proc/slm_test_model'"),
          "/proc: %s", err);
    CHECK(slm_model_save(m, "/proc/self", err, sizeof err) == SLM_EIO &&
              strstr(err, "cannot write to '/proc/self/model.safetensors'"),
          "/proc/self: %s", err);
    slm_model_free(m);
    tmpdir_remove(dir);
}

/* A save that fails half-way (the file size limit stops the write) leaves
 * the previous model intact and no temporary file behind. */
static void test_model_failed_save_keeps_old_files(void)
{
    char *dir = tmpdir_make();
    slm_model *m = make_model(4), *m2 = make_model(5);
    char err[256];
    CHECK(slm_model_save(m, dir, err, sizeof err) == SLM_OK, "%s", err);
    size_t len_before;
    unsigned char *before = read_bytes(path_in(dir, "model.safetensors", 0), &len_before);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN); /* so write() fails with EFBIG instead */
        struct rlimit rl = {16384, 16384};
        setrlimit(RLIMIT_FSIZE, &rl);
        int rc = slm_model_save(m2, dir, err, sizeof err);
        _exit(rc == SLM_EIO && strstr(err, "File too large") ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "save under RLIMIT_FSIZE did not fail "
                                                         "with SLM_EIO");
    size_t len_after;
    unsigned char *after = read_bytes(path_in(dir, "model.safetensors", 0), &len_after);
    CHECK(before && after && len_before == len_after && !memcmp(before, after, len_after),
          "model.safetensors changed");
    CHECK(count_entries(dir) == 2, "%d entries: a temporary file was left", count_entries(dir));
    slm_model *back = NULL;
    CHECK(slm_model_load(dir, &back, err, sizeof err) == SLM_OK, "%s", err);
    if (back) CHECK(!memcmp(back->params, m->params, m->n_params * 4), "old model not intact");
    slm_model_free(back);
    free(before);
    free(after);
    slm_model_free(m);
    slm_model_free(m2);
    tmpdir_remove(dir);
}

int main(void)
{
    RUN(test_model_save_load_bit_exact);
    RUN(test_model_loads_f16_bf16_and_hf_variants);
    RUN(test_model_rejects_wrong_tensors);
    RUN(test_model_nan_weights_load_with_warning);
    RUN(test_model_rejects_bad_configs);
    RUN(test_model_save_errors);
    RUN(test_model_failed_save_keeps_old_files);
    return test_summary();
}

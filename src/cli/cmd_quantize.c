/*
 * slm quantize — writes a model directory with int8 or bf16 weight matrices
 * (slm_model_save_quantized: the format is documented there) that generate,
 * eval and info read like any other, plus the tokenizer files.
 */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "io/atomic_file.h"
#include "slm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *help =
    "usage: slm quantize -m DIR --to int8|bf16 -o OUT [--group-size N] [--force] [--threads N]\n\n"
    "Writes OUT, a model directory whose weight matrices (the four per layer and\n"
    "the token embedding, which is also the tied LM head) are int8 with one\n"
    "float32 scale per --group-size weights along the input dimension (default\n"
    "32, a multiple of 32 dividing the width) or bf16. The position embedding,\n"
    "LayerNorms and biases stay float32. generate, eval and info read OUT like\n"
    "any other model directory; training needs the fp32 model.\n"
    "  --force  replace a model already in OUT\n";

static int same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* vocab.json and merges.txt go along with a GPT-2-tokenized model. */
static int copy_tokenizer(const char *dir, const char *out)
{
    static const char *const files[] = {"vocab.json", "merges.txt"};
    char err[512];
    for (int i = 0; i < 2; i++) {
        char *src = path_join(dir, files[i]), *dst = path_join(out, files[i]), *text = NULL;
        size_t len = 0;
        int rc = !src || !dst ? SLM_ENOMEM
                              : read_file(src, (size_t)1 << 30, &text, &len, err, sizeof err);
        if (!rc) rc = atomic_write(dst, text, len, err, sizeof err);
        free(text);
        free(src);
        free(dst);
        if (rc)
            return cli_error(CLI_RUNTIME, "quantize: %s", rc == SLM_ENOMEM ? "out of memory" : err);
    }
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL, *out = NULL;
    int group = 32, force = 0, threads = 0, group_seen = 0;
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &dir, 0, 0, NULL},
        {"--to", NULL, OPT_STRING, &to, 0, 0, NULL},
        {"--out", "-o", OPT_STRING, &out, 0, 0, NULL},
        {"--group-size", NULL, OPT_INT, &group, 32, 65536, &group_seen},
        {"--force", NULL, OPT_FLAG, &force, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL},
    };
    int n_pos;
    int rc = cli_parse_options("quantize", argc, argv, opts, sizeof opts / sizeof *opts, NULL, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!dir) return cli_error(CLI_USAGE, "quantize: no model given (-m DIR)");
    if (!to) return cli_error(CLI_USAGE, "quantize: no target type given (--to int8|bf16)");
    int quant = !strcmp(to, "int8") ? SLM_QUANT_INT8 : !strcmp(to, "bf16") ? SLM_QUANT_BF16 : 0;
    if (!quant) return cli_error(CLI_USAGE, "quantize: --to must be int8 or bf16, got '%s'", to);
    if (group_seen && quant != SLM_QUANT_INT8)
        return cli_error(CLI_USAGE, "quantize: --group-size is for --to int8 only");
    if (group % 32)
        return cli_error(CLI_USAGE, "quantize: --group-size must be a multiple of 32, got %d",
                         group);
    if (!out) return cli_error(CLI_USAGE, "quantize: no output directory given (-o OUT)");
    if (same_dir(dir, out))
        return cli_error(CLI_USAGE, "quantize: -o '%s' is the input directory; choose another",
                         out);
    struct stat st;
    char ts[4096];
    snprintf(ts, sizeof ts, "%s/training_state.safetensors", out);
    if (stat(ts, &st) == 0) /* --force would leave a run whose model is no longer fp32 */
        return cli_error(CLI_USAGE,
                         "quantize: '%s' holds a training run; write the quantized model elsewhere",
                         out);
    static const char *const kept[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2 && !force; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out, kept[i]);
        if (stat(path, &st) == 0)
            return cli_error(
                CLI_USAGE, "quantize: '%s' already holds a model; pass --force to replace it", out);
    }
    cli_set_threads(threads);
    slm_model *m;
    if ((rc = cli_open_model("quantize", dir, 1, &m, NULL))) return rc;
    const slm_config *c = slm_model_config(m);
    char err[512];
    int have = slm_model_quantization(m, NULL, NULL);
    if (have != SLM_QUANT_NONE) {
        rc = cli_error(CLI_RUNTIME,
                       "quantize: '%s' is already quantized (%s); start from the fp32 model", dir,
                       have == SLM_QUANT_INT8 ? "int8" : "bf16");
    } else if (quant == SLM_QUANT_INT8 && c->n_embd % group) {
        rc = cli_error(CLI_USAGE, "quantize: --group-size %d does not divide the width %d", group,
                       c->n_embd);
    } else if (slm_model_save_quantized(m, out, quant, group, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "quantize: %s", err);
    } else if (c->tokenizer == SLM_TOKENIZER_GPT2) {
        rc = copy_tokenizer(dir, out);
    }
    if (!rc) {
        if (quant == SLM_QUANT_INT8)
            printf("quantized %s to int8 (groups of %d) in %s\n", dir, group, out);
        else
            printf("quantized %s to bf16 in %s\n", dir, out);
    }
    slm_model_free(m);
    return rc;
}

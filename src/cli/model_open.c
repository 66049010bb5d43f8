#include "cli/model_open.h"

#include "cli/cli.h"
#include "core/memory.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int exists_in(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat st;
    int yes = p && stat(p, &st) == 0;
    free(p);
    return yes;
}

/* A run killed during its first checkpoint: the training state is written,
 * the Hugging Face files not yet. */
static int holds_training_state_only(const char *dir)
{
    return exists_in(dir, "training_state.safetensors") &&
           (!exists_in(dir, "config.json") || !exists_in(dir, "model.safetensors"));
}

int cli_open_model(const char *cmd, const char *dir, int refuse_non_finite, slm_model **model,
                   slm_tokenizer **tok)
{
    char err[512], bad[400], warn[512];
    slm_model *m = NULL;
    if (!dir) return cli_error(CLI_USAGE, "%s: no model directory given (-m DIR)", cmd);
    if (slm_model_load(dir, &m, err, sizeof err)) {
        if (holds_training_state_only(dir))
            return cli_error(CLI_RUNTIME,
                             "%s: %s (the directory holds a training state: 'slm train --resume "
                             "%s' writes the model files)",
                             cmd, err, dir);
        return cli_error(CLI_RUNTIME, "%s: %s", cmd, err);
    }
    warn[0] = '\0';
    if (slm_model_count_nonfinite(m, bad, sizeof bad))
        snprintf(warn, sizeof warn, "%s%smodel.safetensors: %s", dir,
                 *dir && dir[strlen(dir) - 1] == '/' ? "" : "/", bad);
    /* NaN or inf weights load (info and eval can show what they do) but
     * generating from them would print garbage as if it were text. */
    if (warn[0] && refuse_non_finite) {
        slm_model_free(m);
        return cli_error(CLI_RUNTIME, "%s: %s; refusing to use these weights", cmd, warn);
    }
    if (warn[0]) cli_error(CLI_OK, "%s: warning: %s", cmd, warn);
    if (tok) {
        const slm_config *c = slm_model_config(m);
        if (slm_tokenizer_load(c->tokenizer, dir, c->vocab_size, tok, err, sizeof err)) {
            slm_model_free(m);
            return cli_error(CLI_RUNTIME, "%s: %s", cmd, err);
        }
    }
    if (model) *model = m;
    else slm_model_free(m);
    return 0;
}

int cli_open_tokenizer(const char *cmd, const char *dir, slm_tokenizer **tok)
{
    char err[512];
    slm_config c;
    if (!dir) return cli_error(CLI_USAGE, "%s: no model directory given (-m DIR)", cmd);
    char *path = path_join(dir, "config.json");
    if (!path) return cli_error(CLI_RUNTIME, "%s: out of memory", cmd);
    int rc = slm_config_load(path, &c, err, sizeof err);
    free(path);
    if (rc || slm_tokenizer_load(c.tokenizer, dir, c.vocab_size, tok, err, sizeof err))
        return cli_error(CLI_RUNTIME, "%s: %s", cmd, err);
    return 0;
}

/* A text is read to be tokenized: the bytes plus up to one 4-byte id per
 * byte must fit in memory together. */
#define TEXT_MEMORY_PER_BYTE 5.0

int cli_read_file(const char *cmd, const char *path, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_error(CLI_RUNTIME, "%s: cannot open '%s': %s", cmd, path, strerror(errno));
    int rc = cli_read_stream(cmd, f, strcmp(path, "-") ? path : "standard input", data, len);
    if (f != stdin) fclose(f);
    return rc;
}

int cli_read_stream(const char *cmd, FILE *f, const char *name, char **data, size_t *len)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) memset(&st, 0, sizeof st);
    if (S_ISDIR(st.st_mode))
        return cli_error(CLI_RUNTIME, "%s: '%s' is a directory, not a file", cmd, name);
    /* A regular file is read in one go (one byte more finds its end); a
     * pipe or device grows the buffer, within the memory there is, so
     * /dev/zero ends with a message rather than the OOM killer. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 1 << 16, n = 0;
    char err[256] = "";
    const char *what = "its text and token ids";
    char *buf = check_memory(TEXT_MEMORY_PER_BYTE * (double)cap, what, err, sizeof err)
                    ? NULL
                    : malloc(cap + 1);
    int failed = buf == NULL;
    while (!failed) {
        if (n == cap) {
            char *bigger = NULL;
            if (!check_memory(TEXT_MEMORY_PER_BYTE * 2.0 * (double)cap, what, err,
                                  sizeof err))
                bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                failed = 1;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int saved = errno;
    if (!failed && ferror(f)) failed = 1;
    else saved = 0;
    if (failed) {
        const char *why = err[0] ? err : saved ? strerror(saved) : "out of memory";
        free(buf);
        return cli_error(CLI_RUNTIME, "%s: cannot read '%s': %s", cmd, name, why);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

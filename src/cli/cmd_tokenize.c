/* slm tokenize / slm detokenize — text ↔ ids with a model's tokenizer.
 * Only config.json and the vocabulary files are read, never the weights:
 * a half-downloaded model.safetensors does not stop tokenizing. */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "slm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tokenize_help =
    "usage: slm tokenize -m DIR [--threads N] [TEXT]\n\n"
    "Prints the token ids of TEXT (or of standard input), space-separated.\n";
static const char *detokenize_help =
    "usage: slm detokenize -m DIR [--threads N] ID...\n\n"
    "Prints the text of the token ids (exactly its bytes, no newline added).\n";

int cmd_tokenize(int argc, char **argv)
{
    const char *dir;
    char *pos[1];
    int n_pos;
    int rc = cli_parse_model_options("tokenize", tokenize_help, argc, argv, &dir, pos, 1, &n_pos);
    if (rc) return rc == -1 ? CLI_OK : rc;
    char *text = NULL;
    size_t len;
    if (n_pos == 1) {
        text = strdup(pos[0]);
        len = strlen(pos[0]);
        if (!text) return cli_error(CLI_RUNTIME, "tokenize: out of memory");
    } else if ((rc = cli_read_file("tokenize", "-", &text, &len))) {
        return rc;
    }
    slm_tokenizer *tok;
    if ((rc = cli_open_tokenizer("tokenize", dir, &tok))) {
        free(text);
        return rc;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    char err[512];
    if (slm_tokenizer_encode(tok, text, len, &ids, &n, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "tokenize: %s", err);
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    free(ids);
    free(text);
    slm_tokenizer_free(tok);
    return rc;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *dir;
    int max_pos = argc > 1 ? argc - 1 : 1;
    char **pos = malloc((size_t)max_pos * sizeof *pos);
    int32_t *ids = malloc((size_t)max_pos * sizeof *ids);
    int n_pos = 0, rc;
    if (!pos || !ids) {
        free(pos);
        free(ids);
        return cli_error(CLI_RUNTIME, "detokenize: out of memory");
    }
    rc = cli_parse_model_options("detokenize", detokenize_help, argc, argv, &dir, pos, max_pos,
                                 &n_pos);
    if (rc) {
        rc = rc == -1 ? CLI_OK : rc;
        goto out;
    }
    for (int i = 0; i < n_pos; i++) {
        long v;
        if (cli_parse_int(pos[i], 0, 0x7fffffff, &v)) {
            rc = cli_error(CLI_USAGE, "detokenize: '%s' is not a token id", pos[i]);
            goto out;
        }
        ids[i] = (int32_t)v;
    }
    slm_tokenizer *tok;
    if ((rc = cli_open_tokenizer("detokenize", dir, &tok))) goto out;
    char *text = NULL, err[512];
    size_t len = 0;
    if (slm_tokenizer_decode(tok, ids, (size_t)n_pos, &text, &len, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "detokenize: %s", err);
    if (!rc) fwrite(text, 1, len, stdout);
    free(text);
    slm_tokenizer_free(tok);
out:
    free(pos);
    free(ids);
    return rc;
}

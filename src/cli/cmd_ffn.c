/* slm ffn — the position-wise feed-forward layer at work: the hidden
 * activations of one block's FFN for each token of a prompt
 * (slm_model_ffn_activations), as a tokens × units heatmap. */
#include "cli/canvas.h"
#include "cli/cli.h"
#include "cli/figure_matrix.h"
#include "cli/figure_prompt.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "cli/token_label.h"
#include "io/json.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: slm ffn -m DIR -p TEXT [--layer L] [--units N] -o FILE.png|FILE.svg [--json]\n\n"
    "Runs the prompt through the model once and draws the hidden activations of\n"
    "block L's feed-forward network, GELU(LayerNorm(x)·W_fc + b_fc): one row per\n"
    "token, one column per hidden unit (the first N of the 4·width units). The\n"
    "same network is applied to every position on its own, so each row depends\n"
    "on its token's vector only.\n\n"
    "  -m, --model DIR      model directory\n"
    "  -p, --prompt TEXT    the text to look at (at most the model's context)\n"
    "  --layer L            transformer block, 0-based (default 0)\n"
    "  --units N            hidden units to show (default 48; at most 4·width)\n"
    "  -o, --output FILE    picture to write: .png (Cairo) or .svg\n"
    "  --json               print {\"tokens\", \"labels\", \"layer\", \"activations\"[t][u]}\n"
    "                       (all 4·width units) on stdout\n"
    "  --threads N          threads (default: all cores)\n";

typedef struct {
    const char *model_dir, *prompt, *out;
    int layer, units, json, threads;
} ffn_args;

#define LABEL_CHARS 12
#define LABEL_BYTES (4 * LABEL_CHARS + 8)

static int print_json(const ffn_args *a, const int32_t *ids, const char *labels, int T,
                      const float *act, int H4)
{
    json_writer jw;
    jw_init(&jw, 0);
    jw_begin_object(&jw);
    jw_key(&jw, "tokens", 6);
    jw_begin_array(&jw);
    for (int i = 0; i < T; i++) jw_int(&jw, ids[i]);
    jw_end_array(&jw);
    jw_key(&jw, "labels", 6);
    jw_begin_array(&jw);
    for (int i = 0; i < T; i++) {
        const char *l = labels + (size_t)i * LABEL_BYTES;
        jw_string(&jw, l, strlen(l));
    }
    jw_end_array(&jw);
    jw_key(&jw, "layer", 5);
    jw_int(&jw, a->layer);
    jw_key(&jw, "activations", 11);
    jw_begin_array(&jw);
    for (int i = 0; i < T; i++) {
        jw_begin_array(&jw);
        for (int u = 0; u < H4; u++) jw_float(&jw, act[(size_t)i * H4 + u]);
        jw_end_array(&jw);
    }
    jw_end_array(&jw);
    jw_end_object(&jw);
    char *text, err[256];
    size_t len;
    if (jw_finish(&jw, &text, &len, err, sizeof err))
        return cli_error(CLI_RUNTIME, "ffn: writing JSON: %s", err);
    fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}

/* The first `units` columns, coloured over their own [min, max]. */
static int draw(const ffn_args *a, const slm_config *c, const char *labels, int T,
                const float *act, int H4)
{
    int U = a->units;
    float *vals = malloc((size_t)T * U * sizeof *vals);
    const char **rows = malloc((size_t)T * sizeof *rows), **cols = malloc((size_t)U * sizeof *cols);
    char *names = malloc((size_t)U * 12);
    if (!vals || !rows || !cols || !names) {
        free(vals);
        free(rows);
        free(cols);
        free(names);
        return cli_error(CLI_RUNTIME, "ffn: out of memory");
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < T; i++) {
        rows[i] = labels + (size_t)i * LABEL_BYTES;
        for (int u = 0; u < U; u++) {
            float v = act[(size_t)i * H4 + u];
            vals[(size_t)i * U + u] = v;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    }
    for (int u = 0; u < U; u++) {
        snprintf(names + (size_t)u * 12, 12, "%d", u);
        cols[u] = names + (size_t)u * 12;
    }
    char title[160], subtitle[512], prompt[4 * 48 + 8], attrs[128];
    token_label(a->prompt, strlen(a->prompt), 48, prompt, sizeof prompt);
    snprintf(title, sizeof title, "Feed-forward activations: layer %d, units 0..%d of %d",
             a->layer, U - 1, H4);
    snprintf(subtitle, sizeof subtitle, "%s · \"%s\" · %s(LN(x)·W_fc + b_fc), each row from its own "
             "token only", a->model_dir, prompt, c->activation == SLM_ACT_RELU ? "ReLU" : "GELU");
    snprintf(attrs, sizeof attrs, "data-layer=\"%d\" data-lo=\"%.9g\" data-hi=\"%.9g\"", a->layer,
             lo, hi);
    matrix_panel panel = {vals, NULL, attrs};
    matrix_figure f = {.style = MATRIX_VALUES, .title = title, .subtitle = subtitle, .T = T,
                       .labels = rows, .n_panels = 1, .n_cols = 1, .panels = &panel,
                       .row_caption = "tokens (rows)", .col_caption = "hidden units (columns)",
                       .cols = U, .col_labels = cols, .lo = lo, .hi = hi, .legend = "activation"};
    char err[512];
    int rc = matrix_figure_draw(&f, a->out, err, sizeof err);
    free(vals);
    free(rows);
    free(cols);
    free(names);
    if (rc) return cli_error(CLI_RUNTIME, "ffn: %s: %s", a->out, err);
    return 0;
}

static int run(ffn_args *a, slm_model *m, slm_tokenizer *tok)
{
    const slm_config *c = slm_model_config(m);
    int H4 = 4 * c->n_embd;
    if (a->layer >= c->n_layer)
        return cli_error(CLI_USAGE, "ffn: --layer %d is out of range: the model has %d layers "
                         "(0..%d)", a->layer, c->n_layer, c->n_layer - 1);
    if (a->units > H4)
        return cli_error(CLI_USAGE, "ffn: --units %d is more than the model's %d hidden units",
                         a->units, H4);
    int32_t *ids = NULL;
    int T = 0;
    int rc = figure_prompt_ids("ffn", tok, a->prompt, c->n_positions, &ids, &T);
    if (rc) return rc;
    char err[512];
    float *act = malloc((size_t)T * H4 * sizeof *act);
    char *labels = malloc((size_t)T * LABEL_BYTES);
    if (!act || !labels) rc = cli_error(CLI_RUNTIME, "ffn: out of memory");
    else if (slm_model_ffn_activations(m, ids, T, a->layer, act, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "ffn: %s", err);
    for (int i = 0; !rc && i < T; i++) {
        const char *bytes = "";
        size_t len = 0;
        if (slm_tokenizer_token_bytes(tok, ids[i], &bytes, &len)) len = 0;
        token_label(bytes, len, LABEL_CHARS, labels + (size_t)i * LABEL_BYTES,
                    LABEL_BYTES);
    }
    if (!rc && a->out) rc = draw(a, c, labels, T, act, H4);
    if (!rc && a->json) rc = print_json(a, ids, labels, T, act, H4);
    free(ids);
    free(act);
    free(labels);
    return rc;
}

int cmd_ffn(int argc, char **argv)
{
    ffn_args a = {.units = 48};
    int units_given = 0;
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &a.model_dir, 0, 0, NULL},
        {"--prompt", "-p", OPT_STRING, &a.prompt, 0, 0, NULL},
        {"--layer", NULL, OPT_INT, &a.layer, 0, 1 << 20, NULL},
        {"--units", NULL, OPT_INT, &a.units, 1, 1 << 20, &units_given},
        {"--output", "-o", OPT_STRING, &a.out, 0, 0, NULL},
        {"--json", NULL, OPT_FLAG, &a.json, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &a.threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("ffn", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0, &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!a.model_dir) return cli_error(CLI_USAGE, "ffn: no model given (-m DIR)");
    if (!a.prompt) return cli_error(CLI_USAGE, "ffn: no prompt given (-p TEXT)");
    if (!a.out && !a.json)
        return cli_error(CLI_USAGE, "ffn: no output given (-o FILE.png|FILE.svg, or --json)");
    if (a.out && canvas_kind_of(a.out) < 0)
        return cli_error(CLI_USAGE, "ffn: cannot tell the picture format of '%s': the name must "
                         "end in .png or .svg", a.out);
    cli_set_threads(a.threads);
    slm_model *m;
    slm_tokenizer *tok;
    if ((rc = cli_open_model("ffn", a.model_dir, 1, &m, &tok))) return rc;
    if (!units_given && a.units > 4 * slm_model_config(m)->n_embd)
        a.units = 4 * slm_model_config(m)->n_embd;
    rc = run(&a, m, tok);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}

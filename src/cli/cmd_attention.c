/* slm attention — what each token attends to, as a heatmap per head, from a
 * real forward pass (slm_model_attention_weights). */
#include "cli/cli.h"
#include "cli/canvas.h"
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
    "usage: slm attention -m DIR -p TEXT [--layer L] [--head H | --all] -o FILE.png|FILE.svg\n"
    "                     [--json]\n\n"
    "Runs the prompt through the model once and draws its attention weights as\n"
    "heatmaps: row i is query token i, column j is key token j, the colour is\n"
    "how much of token i's attention goes to token j (each row sums to 1). The\n"
    "causal mask hides the future, so the upper triangle stays blank.\n\n"
    "  -m, --model DIR      model directory\n"
    "  -p, --prompt TEXT    the text to look at (at most the model's context)\n"
    "  --layer L            transformer block, 0-based (default 0)\n"
    "  --head H             one head, 0-based (default: every head of the layer)\n"
    "  --all                every layer × every head in one overview\n"
    "  -o, --output FILE    picture to write: .png (Cairo) or .svg\n"
    "  --json               print the weights as JSON on stdout: {\"tokens\",\n"
    "                       \"labels\", \"layers\", \"heads\", \"weights\"[layer][head][i][j]}\n"
    "  --threads N          threads (default: all cores)\n";

typedef struct {
    const char *model_dir, *prompt, *out;
    int layer, head, all, json, threads;
    int layer_given, head_given;
} attn_args;

/* Token labels [T] (each malloc'd as one block of T × LABEL_BYTES). */
#define LABEL_CHARS 12
#define LABEL_BYTES (4 * LABEL_CHARS + 8)

static char *make_labels(const slm_tokenizer *tok, const int32_t *ids, int T, const char **labels)
{
    char *block = malloc((size_t)T * LABEL_BYTES);
    if (!block) return NULL;
    for (int i = 0; i < T; i++) {
        const char *bytes = "";
        size_t len = 0;
        if (slm_tokenizer_token_bytes(tok, ids[i], &bytes, &len)) len = 0;
        char *l = block + (size_t)i * LABEL_BYTES;
        token_label(bytes, len, LABEL_CHARS, l, LABEL_BYTES);
        labels[i] = l;
    }
    return block;
}

static int print_json(const attn_args *a, const slm_config *c, const int32_t *ids,
                      const char *const *labels, int T, const float *w, int first_layer,
                      int n_layers)
{
    json_writer jw;
    jw_init(&jw, 0);
    jw_begin_object(&jw);
    jw_key(&jw, "model", 5);
    jw_string(&jw, a->model_dir, strlen(a->model_dir));
    jw_key(&jw, "tokens", 6);
    jw_begin_array(&jw);
    for (int i = 0; i < T; i++) jw_int(&jw, ids[i]);
    jw_end_array(&jw);
    jw_key(&jw, "labels", 6);
    jw_begin_array(&jw);
    for (int i = 0; i < T; i++) jw_string(&jw, labels[i], strlen(labels[i]));
    jw_end_array(&jw);
    int h0 = a->head_given ? a->head : 0, nh = a->head_given ? 1 : c->n_head;
    jw_key(&jw, "layers", 6);
    jw_begin_array(&jw);
    for (int l = 0; l < n_layers; l++) jw_int(&jw, first_layer + l);
    jw_end_array(&jw);
    jw_key(&jw, "heads", 5);
    jw_begin_array(&jw);
    for (int h = 0; h < nh; h++) jw_int(&jw, h0 + h);
    jw_end_array(&jw);
    jw_key(&jw, "weights", 7);
    jw_begin_array(&jw);
    for (int l = 0; l < n_layers; l++) {
        jw_begin_array(&jw);
        for (int h = h0; h < h0 + nh; h++) {
            jw_begin_array(&jw);
            for (int i = 0; i < T; i++) {
                jw_begin_array(&jw);
                const float *row = w + (((size_t)l * c->n_head + h) * T + i) * T;
                for (int j = 0; j < T; j++) jw_float(&jw, row[j]);
                jw_end_array(&jw);
            }
            jw_end_array(&jw);
        }
        jw_end_array(&jw);
    }
    jw_end_array(&jw);
    jw_end_object(&jw);
    char *text, err[256];
    size_t len;
    if (jw_finish(&jw, &text, &len, err, sizeof err))
        return cli_error(CLI_RUNTIME, "attention: writing JSON: %s", err);
    fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}

/* The heatmaps: one panel per (layer, head) shown; the masked future is NaN
 * so the figure leaves it blank. */
static int draw(const attn_args *a, const slm_config *c, const char *const *labels, int T,
                const float *w, int first_layer, int n_layers)
{
    int h0 = a->head_given ? a->head : 0, nh = a->head_given ? 1 : c->n_head;
    int n = n_layers * nh;
    size_t tt = (size_t)T * T;
    float *vals = malloc((size_t)n * tt * sizeof *vals);
    matrix_panel *panels = calloc((size_t)n, sizeof *panels);
    char *text = malloc((size_t)n * 96);
    if (!vals || !panels || !text) {
        free(vals);
        free(panels);
        free(text);
        return cli_error(CLI_RUNTIME, "attention: out of memory");
    }
    for (int l = 0; l < n_layers; l++)
        for (int h = 0; h < nh; h++) {
            int p = l * nh + h;
            const float *src = w + ((size_t)l * c->n_head + h0 + h) * tt;
            float *dst = vals + (size_t)p * tt;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) dst[i * T + j] = j > i ? NAN : src[i * T + j];
            char *title = text + (size_t)p * 96, *attrs = title + 40;
            snprintf(title, 40, "layer %d · head %d", first_layer + l, h0 + h);
            snprintf(attrs, 56, "data-layer=\"%d\" data-head=\"%d\"", first_layer + l, h0 + h);
            panels[p] = (matrix_panel){dst, title, attrs};
        }
    char title[160], subtitle[256], prompt[4 * 48 + 8];
    token_label(a->prompt, strlen(a->prompt), 48, prompt, sizeof prompt);
    if (a->all) snprintf(title, sizeof title, "Attention weights: every layer × head");
    else if (a->head_given)
        snprintf(title, sizeof title, "Attention weights: layer %d, head %d", a->layer, a->head);
    else snprintf(title, sizeof title, "Attention weights: layer %d, all %d heads", a->layer, nh);
    snprintf(subtitle, sizeof subtitle, "%s (%d layers, %d heads, width %d) · \"%s\" (%d tokens)",
             a->model_dir, c->n_layer, c->n_head, c->n_embd, prompt, T);
    int cols = a->all ? nh : nh <= 3 ? nh : (int)ceil(sqrt((double)nh));
    matrix_figure f = {.style = MATRIX_WEIGHTS, .title = title, .subtitle = subtitle, .T = T,
                       .labels = labels, .n_panels = n, .n_cols = cols, .panels = panels,
                       .row_caption = "queries i (rows)", .col_caption = "keys j (columns)"};
    char err[512];
    int rc = matrix_figure_draw(&f, a->out, err, sizeof err);
    free(vals);
    free(panels);
    free(text);
    if (rc) return cli_error(CLI_RUNTIME, "attention: %s: %s", a->out, err);
    return 0;
}

static int run(const attn_args *a, slm_model *m, slm_tokenizer *tok)
{
    const slm_config *c = slm_model_config(m);
    if (a->layer >= c->n_layer)
        return cli_error(CLI_USAGE, "attention: --layer %d is out of range: the model has %d "
                         "layers (0..%d)", a->layer, c->n_layer, c->n_layer - 1);
    if (a->head_given && a->head >= c->n_head)
        return cli_error(CLI_USAGE, "attention: --head %d is out of range: the model has %d "
                         "heads (0..%d)", a->head, c->n_head, c->n_head - 1);
    int32_t *ids = NULL;
    int T = 0;
    int rc = figure_prompt_ids("attention", tok, a->prompt, c->n_positions, &ids, &T);
    if (rc) return rc;
    char err[512];
    int first = a->all ? 0 : a->layer, n_layers = a->all ? c->n_layer : 1;
    float *w = malloc((size_t)n_layers * c->n_head * T * T * sizeof *w);
    const char **labels = malloc((size_t)T * sizeof *labels);
    char *label_block = labels ? make_labels(tok, ids, T, labels) : NULL;
    if (!w || !label_block) rc = cli_error(CLI_RUNTIME, "attention: out of memory");
    else if (slm_model_attention_weights(m, ids, T, a->all ? -1 : a->layer, w, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "attention: %s", err);
    if (!rc && a->out) rc = draw(a, c, labels, T, w, first, n_layers);
    if (!rc && a->json) rc = print_json(a, c, ids, labels, T, w, first, n_layers);
    free(ids);
    free(w);
    free(labels);
    free(label_block);
    return rc;
}

int cmd_attention(int argc, char **argv)
{
    attn_args a = {0};
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &a.model_dir, 0, 0, NULL},
        {"--prompt", "-p", OPT_STRING, &a.prompt, 0, 0, NULL},
        {"--layer", NULL, OPT_INT, &a.layer, 0, 1 << 20, &a.layer_given},
        {"--head", NULL, OPT_INT, &a.head, 0, 1 << 20, &a.head_given},
        {"--all", NULL, OPT_FLAG, &a.all, 0, 0, NULL},
        {"--output", "-o", OPT_STRING, &a.out, 0, 0, NULL},
        {"--json", NULL, OPT_FLAG, &a.json, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &a.threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("attention", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!a.model_dir) return cli_error(CLI_USAGE, "attention: no model given (-m DIR)");
    if (!a.prompt) return cli_error(CLI_USAGE, "attention: no prompt given (-p TEXT)");
    if (!a.out && !a.json)
        return cli_error(CLI_USAGE, "attention: no output given (-o FILE.png|FILE.svg, or --json)");
    if (a.out && canvas_kind_of(a.out) < 0)
        return cli_error(CLI_USAGE, "attention: cannot tell the picture format of '%s': the name "
                         "must end in .png or .svg", a.out);
    if (a.all && (a.layer_given || a.head_given))
        return cli_error(CLI_USAGE, "attention: --all shows every layer and head; drop --layer "
                         "and --head");
    cli_set_threads(a.threads);
    slm_model *m;
    slm_tokenizer *tok;
    if ((rc = cli_open_model("attention", a.model_dir, 1, &m, &tok))) return rc;
    rc = run(&a, m, tok);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}

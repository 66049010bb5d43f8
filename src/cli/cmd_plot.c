/* slm plot DIR... — training curves from the log.jsonl that `slm train`
 * writes into each run directory (one JSON object per step: step, loss, lr,
 * grad_norm, tok_s, and val_loss at evaluation steps). The model's shape
 * comes from DIR/config.json and the tokens per step from the run settings in
 * DIR/training_state.safetensors; both are optional. */
#include "cli/canvas.h"
#include "cli/cli.h"
#include "cli/figure_curves.h"
#include "cli/options.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: slm plot DIR... -o FILE.png|FILE.svg\n\n"
    "Draws the training and validation loss of each run directory (its\n"
    "log.jsonl, written by slm train) against the step, with the tokens seen on\n"
    "a second axis, and the learning rate beneath; titled with the model's\n"
    "shape. Several directories overlay, one colour each (up to 16).\n\n"
    "  -o, --output FILE    picture to write: .png (Cairo) or .svg\n";

#define MAX_LOG_BYTES ((size_t)1 << 30)

static void free_run(run_curve *r)
{
    free(r->step); /* the block every array of the run points into */
    memset(r, 0, sizeof *r);
}

/* One log line into the arrays. 0, or -1 with a message. */
static int parse_line(const char *line, size_t len, run_curve *r, char *err, size_t errlen)
{
    json_doc doc;
    if (json_parse(line, len, NULL, &doc, err, errlen)) return -1;
    const json_value *root = json_root(&doc);
    const json_value *step = json_get(root, "step"), *loss = json_get(root, "loss"),
                     *lr = json_get(root, "lr"), *val = json_get(root, "val_loss");
    int rc = 0;
    if (!step || step->type != SLM_JSON_NUMBER || !loss || loss->type != SLM_JSON_NUMBER ||
        !lr || lr->type != SLM_JSON_NUMBER) {
        snprintf(err, errlen, "expected an object with numbers \"step\", \"loss\" and \"lr\"");
        rc = -1;
    } else if (!isfinite(json_number(loss))) {
        snprintf(err, errlen, "loss is not finite");
        rc = -1;
    } else {
        r->step[r->n] = json_number(step);
        r->loss[r->n] = json_number(loss);
        r->lr[r->n] = json_number(lr);
        r->n++;
        if (val && val->type == SLM_JSON_NUMBER) {
            r->val_step[r->n_val] = json_number(step);
            r->val_loss[r->n_val++] = json_number(val);
        }
    }
    json_free(&doc);
    return rc;
}

static int read_log(const char *dir, run_curve *r)
{
    char *path = path_join(dir, "log.jsonl"), *text = NULL, err[512];
    size_t len = 0;
    int rc = 0;
    if (!path) return cli_error(CLI_RUNTIME, "plot: out of memory");
    if (read_file(path, MAX_LOG_BYTES, &text, &len, err, sizeof err)) {
        rc = cli_error(CLI_RUNTIME, "plot: %s", err);
        goto done;
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    /* one block: step, loss, lr, val_step, val_loss */
    r->step = malloc(5 * lines * sizeof(double));
    if (!r->step) {
        rc = cli_error(CLI_RUNTIME, "plot: out of memory");
        goto done;
    }
    r->loss = r->step + lines;
    r->lr = r->loss + lines;
    r->val_step = r->lr + lines;
    r->val_loss = r->val_step + lines;
    size_t line_no = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        line_no++;
        int blank = 1;
        for (size_t i = at; i < end; i++) blank &= text[i] == ' ' || text[i] == '\r';
        /* A last line without its newline is a step being written when the
         * run was killed: skip it rather than refuse the whole log. */
        if (!blank && parse_line(text + at, end - at, r, err, sizeof err) && nl) {
            rc = cli_error(CLI_RUNTIME, "plot: %s:%zu: %s", path, line_no, err);
            goto done;
        }
        at = end + 1;
    }
    if (r->n == 0)
        rc = cli_error(CLI_RUNTIME, "plot: %s has no training steps (is the run started?)", path);
done:
    free(path);
    free(text);
    return rc;
}

/* Shape from config.json, tokens per step from the run's saved arguments. */
static void read_shape(const char *dir, run_curve *r)
{
    char *path = path_join(dir, "config.json");
    slm_config c;
    if (path && !slm_config_load(path, &c, NULL, 0)) {
        double C = c.n_embd, params = (double)c.vocab_size * C + (double)c.n_positions * C +
                                      c.n_layer * (12 * C * C + 13 * C) + 2 * C;
        snprintf(r->shape, sizeof r->shape, "%d layers × %d heads, width %d, context %d, "
                 "vocabulary %d (%.2fM parameters)", c.n_layer, c.n_head, c.n_embd,
                 c.n_positions, c.vocab_size, params / 1e6);
        snprintf(r->brief, sizeof r->brief, "L%d H%d C%d", c.n_layer, c.n_head, c.n_embd);
    }
    free(path);
    path = path_join(dir, "training_state.safetensors");
    slm_safetensors *f = NULL;
    if (path && !slm_safetensors_open(path, &f, NULL, 0)) {
        const char *args = slm_safetensors_metadata(f, "args");
        json_doc doc;
        if (args && !json_parse(args, strlen(args), NULL, &doc, NULL, 0)) {
            const json_value *root = json_root(&doc);
            double b = json_number(json_get(root, "batch")), t = json_number(json_get(root, "context")),
                   g = json_number(json_get(root, "grad_accum"));
            if (b > 0 && t > 0) r->tokens_per_step = b * t * (g > 0 ? g : 1);
            json_free(&doc);
        }
        slm_safetensors_close(f);
    }
    free(path);
}

/* The legend label: the directory, shortened from the left to fit. */
static const char *short_name(const char *dir)
{
    size_t n = strlen(dir);
    return n > 34 ? dir + n - 34 : dir;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL;
    const cli_option opts[] = {{"--output", "-o", OPT_STRING, &out, 0, 0, NULL}};
    char *dirs[16];
    int n_dirs;
    int rc = cli_parse_options("plot", argc, argv, opts, 1, dirs, 16, &n_dirs);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (n_dirs == 0) return cli_error(CLI_USAGE, "plot: no run directory given (try --help)");
    if (!out) return cli_error(CLI_USAGE, "plot: no output given (-o FILE.png|FILE.svg)");
    if (canvas_kind_of(out) < 0)
        return cli_error(CLI_USAGE, "plot: cannot tell the picture format of '%s': the name must "
                         "end in .png or .svg", out);
    run_curve runs[16];
    memset(runs, 0, sizeof runs);
    for (int i = 0; i < n_dirs && !rc; i++) {
        rc = read_log(dirs[i], &runs[i]);
        read_shape(dirs[i], &runs[i]);
        runs[i].name = short_name(dirs[i]);
    }
    char err[512];
    if (!rc && curves_figure_draw(runs, n_dirs, out, err, sizeof err))
        rc = cli_error(CLI_RUNTIME, "plot: %s: %s", out, err);
    for (int i = 0; i < n_dirs; i++) free_run(&runs[i]);
    return rc;
}

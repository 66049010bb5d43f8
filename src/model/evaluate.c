/*
 * Held-out loss: the one rule `slm eval` and training's validation share.
 *
 * Tokens t0..t(n-1) are cut into consecutive windows of `context` inputs:
 * window w feeds t[w·ctx .. w·ctx+ctx-1] and predicts the token after each,
 * so every token but the first is predicted exactly once (the last window
 * may be shorter). Windows go through the model in batches; a short last
 * window is padded with ignored targets. The result is the mean over
 * predictions: each batch's mean loss weighted by its count of predictions.
 */
#include "core/error.h"
#include "slm.h"

#include <stdlib.h>

#define DEFAULT_BATCH 8

/* Fills batch rows with windows w0 .. w0+rows-1; returns the predictions. */
static size_t fill_windows(const int32_t *ids, size_t n, size_t w0, int rows, int ctx, int32_t *in,
                           int32_t *tgt)
{
    size_t counted = 0;
    for (int b = 0; b < rows; b++) {
        size_t start = (w0 + (size_t)b) * (size_t)ctx;
        for (int t = 0; t < ctx; t++) {
            size_t i = start + (size_t)t;
            int valid = i + 1 < n;
            in[(size_t)b * ctx + t] = valid ? ids[i] : 0;
            tgt[(size_t)b * ctx + t] = valid ? ids[i + 1] : SLM_IGNORE_INDEX;
            counted += (size_t)valid;
        }
    }
    return counted;
}

int slm_model_eval(slm_model *m, const int32_t *ids, size_t n, const slm_eval_opts *opts,
                   slm_eval_result *result, char *err, size_t errlen)
{
    slm_eval_opts o = {0};
    if (opts) o = *opts;
    if (!m || !ids || !result) return fail(err, errlen, SLM_EINVAL, "eval: NULL argument");
    result->loss = 0.0;
    result->predictions = 0;
    const slm_config *c = slm_model_config(m);
    if (o.context == 0) o.context = c->n_positions;
    if (o.batch == 0) o.batch = DEFAULT_BATCH;
    if (n < 2) return fail(err, errlen, SLM_EINVAL, "eval: %zu token(s); at least 2 are needed", n);
    if (o.context < 0 || o.batch < 0)
        return fail(err, errlen, SLM_EINVAL, "eval: context and batch must be positive");
    if (o.context > c->n_positions)
        return fail(err, errlen, SLM_ERANGE,
                    "eval: context %d exceeds the model's n_positions (%d)", o.context,
                    c->n_positions);
    int ctx = o.context, batch = o.batch;
    size_t windows = (n - 2) / (size_t)ctx + 1;
    if (o.max_windows && o.max_windows < windows) windows = o.max_windows;
    size_t total = windows * (size_t)ctx < n - 1 ? windows * (size_t)ctx : n - 1;
    size_t bt = (size_t)batch * (size_t)ctx;
    int32_t *in = malloc(bt * sizeof *in), *tgt = malloc(bt * sizeof *tgt);
    int rc = in && tgt ? SLM_OK : fail(err, errlen, SLM_ENOMEM, "eval: out of memory");
    double sum = 0.0;
    size_t done = 0;
    for (size_t w0 = 0; !rc && w0 < windows; w0 += (size_t)batch) {
        int rows = (int)(windows - w0 < (size_t)batch ? windows - w0 : (size_t)batch);
        size_t counted = fill_windows(ids, n, w0, rows, ctx, in, tgt);
        slm_batch b = {in, tgt, rows, ctx};
        float loss;
        rc = slm_model_forward(m, &b, NULL, &loss, err, errlen);
        sum += (double)loss * (double)counted;
        done += counted;
        if (!rc && o.on_progress) o.on_progress(o.progress_ctx, done, total);
    }
    free(in);
    free(tgt);
    if (rc) return rc;
    result->loss = sum / (double)done;
    result->predictions = done;
    return SLM_OK;
}

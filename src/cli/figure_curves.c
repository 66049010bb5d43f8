/*
 * Layout:
 *
 *   title (the model's shape) / subtitle
 *             tokens (top axis, when every run has the same tokens per step)
 *   loss  ┌──────────────────────────┐   legend: one colour per run,
 *         │ train ─── validation ‑‑●  │   solid = train, dashed + dots =
 *         └──────────────────────────┘   validation
 *   lr    ┌──────────────────────────┐
 *         └──────────────────────────┘
 *                      step
 */
#include "cli/figure_curves.h"

#include "cli/canvas.h"
#include "cli/colormap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 960, M = 16, PX = 84, PW = 560, LOSS_Y = 112, LOSS_H = 300, LR_GAP = 44, LR_H = 120 };

typedef struct {
    double lo, hi;     /* data range shown                 */
    double pos, len;   /* pixels: where the axis starts, its length (y: bottom, up) */
} axis;

static double map(const axis *a, double v) { return a->pos + (v - a->lo) / (a->hi - a->lo) * a->len; }

/* A "nice" tick spacing (1, 2 or 5 × 10^k) giving about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void fmt_count(double v, char *buf, size_t n)
{
    double a = fabs(v);
    if (a >= 1e9) snprintf(buf, n, "%gG", v / 1e9);
    else if (a >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
    else if (a >= 1e3) snprintf(buf, n, "%gk", v / 1e3);
    else snprintf(buf, n, "%g", v);
}

/* Horizontal grid lines and labels of a y axis. */
static void y_ticks(canvas *c, const axis *y, int kind_lr)
{
    double step = nice_step(y->hi - y->lo, kind_lr ? 3 : 6);
    for (double v = ceil(y->lo / step - 1e-9) * step; v <= y->hi + 1e-9 * step; v += step) {
        double py = map(y, v);
        char lab[32];
        if (fabs(v) < 1e-9 * step) v = 0.0; /* not "-0" */
        snprintf(lab, sizeof lab, kind_lr ? "%.2g" : "%.3g", v);
        canvas_line(c, PX, py, PX + PW, py, COLOR_GRID, 1, 0);
        canvas_text(c, PX - 6, py + 4, lab, 11, COLOR_TEXT, ANCHOR_END, 0, 0);
    }
}

static void series(canvas *c, const axis *x, const axis *y, const double *xs, const double *ys,
                   int n, rgb color, double width, int dashed, int dots, const char *attrs)
{
    double *px = malloc((size_t)n * sizeof *px), *py = malloc((size_t)n * sizeof *py);
    canvas_group_begin(c, attrs);
    if (px && py) {
        for (int i = 0; i < n; i++) {
            px[i] = map(x, xs[i]);
            py[i] = map(y, ys[i]);
        }
        if (n > 1) canvas_polyline(c, px, py, n, color, width, dashed);
        if (dots || n == 1)
            for (int i = 0; i < n; i++) canvas_dot(c, px[i], py[i], 3, color);
    }
    canvas_group_end(c);
    free(px);
    free(py);
}

static void legend(canvas *c, const run_curve *runs, int n_runs, int same_shape, int x, int y)
{
    canvas_group_begin(c, "class=\"legend\"");
    for (int r = 0; r < n_runs; r++) {
        rgb col = colormap_line(r);
        int yy = y + r * 52;
        char name[200];
        snprintf(name, sizeof name, "%s%s%s", runs[r].name, same_shape || !runs[r].brief[0] ? "" : "  ",
                 same_shape ? "" : runs[r].brief);
        canvas_text(c, x, yy, name, 12, COLOR_TEXT, ANCHOR_START, 0, 1);
        canvas_line(c, x, yy + 14, x + 28, yy + 14, col, 1.5, 0);
        canvas_text(c, x + 36, yy + 18, "train loss", 11, COLOR_TEXT, ANCHOR_START, 0, 0);
        if (runs[r].n_val) {
            canvas_line(c, x, yy + 30, x + 28, yy + 30, col, 2, 1);
            canvas_dot(c, x + 14, yy + 30, 3, col);
            canvas_text(c, x + 36, yy + 34, "validation loss", 11, COLOR_TEXT, ANCHOR_START, 0, 0);
        }
    }
    canvas_group_end(c);
}

static int same_shape(const run_curve *runs, int n_runs)
{
    int same = 1;
    for (int r = 1; r < n_runs; r++) same &= !strcmp(runs[r].shape, runs[0].shape);
    return same;
}

static void title_of(const run_curve *runs, int n_runs, char *title, size_t n)
{
    int same = same_shape(runs, n_runs);
    if (same && runs[0].shape[0]) snprintf(title, n, "Training: %s", runs[0].shape);
    else if (n_runs == 1) snprintf(title, n, "Training curves");
    else snprintf(title, n, "Training curves of %d runs", n_runs);
}

int curves_figure_draw(const run_curve *runs, int n_runs, const char *path, char *err,
                       size_t errlen)
{
    double smax = 1, lmin = INFINITY, lmax = -INFINITY, lrmax = 0;
    for (int r = 0; r < n_runs; r++) {
        const run_curve *u = &runs[r];
        for (int i = 0; i < u->n; i++) {
            smax = fmax(smax, u->step[i]);
            lmin = fmin(lmin, u->loss[i]);
            lmax = fmax(lmax, u->loss[i]);
            lrmax = fmax(lrmax, u->lr[i]);
        }
        for (int i = 0; i < u->n_val; i++) {
            lmin = fmin(lmin, u->val_loss[i]);
            lmax = fmax(lmax, u->val_loss[i]);
        }
    }
    double pad = fmax((lmax - lmin) * 0.05, 0.05);
    axis x = {0, smax, PX, PW};
    axis yl = {fmax(0.0, lmin - pad), lmax + pad, LOSS_Y + LOSS_H, -LOSS_H};
    int lr_y = LOSS_Y + LOSS_H + LR_GAP;
    axis ylr = {0, lrmax > 0 ? lrmax * 1.1 : 1, lr_y + LR_H, -LR_H};
    int height = lr_y + LR_H + 44 + M;
    int legend_h = 96 + n_runs * 52;
    if (height < legend_h + LOSS_Y) height = legend_h + LOSS_Y;
    double tps = runs[0].tokens_per_step;
    for (int r = 1; r < n_runs; r++)
        if (runs[r].tokens_per_step != tps) tps = 0;

    canvas *c;
    if (canvas_create(canvas_kind_of(path), W, height, &c, err, errlen)) return -1;
    char title[200], sub[200];
    title_of(runs, n_runs, title, sizeof title);
    canvas_text(c, M, M + 14, title, 16, COLOR_TEXT, ANCHOR_START, 0, 1);
    snprintf(sub, sizeof sub, "cross-entropy of the next token (teacher forcing), nats; %s",
             tps > 0 ? "steps below, tokens seen above" : "against steps");
    canvas_text(c, M, M + 32, sub, 12, COLOR_MUTED, ANCHOR_START, 0, 0);

    /* x grid and step labels (bottom of the LR panel) */
    double xs = nice_step(smax, 8);
    for (double v = 0; v <= smax + 1e-9; v += xs) {
        double px = map(&x, v);
        char lab[32];
        fmt_count(v, lab, sizeof lab);
        canvas_line(c, px, LOSS_Y, px, LOSS_Y + LOSS_H, COLOR_GRID, 1, 0);
        canvas_line(c, px, lr_y, px, lr_y + LR_H, COLOR_GRID, 1, 0);
        canvas_text(c, px, lr_y + LR_H + 16, lab, 11, COLOR_TEXT, ANCHOR_MIDDLE, 0, 0);
    }
    canvas_text(c, PX + PW / 2.0, lr_y + LR_H + 34, "step", 12, COLOR_MUTED, ANCHOR_MIDDLE, 0, 0);
    if (tps > 0) { /* second axis: tokens = step · tokens_per_step */
        double tmax = smax * tps, ts = nice_step(tmax, 6);
        for (double v = 0; v <= tmax + 1e-9 * ts; v += ts) {
            double px = map(&x, v / tps);
            char lab[32];
            fmt_count(v, lab, sizeof lab);
            canvas_line(c, px, LOSS_Y - 4, px, LOSS_Y, COLOR_FRAME, 1, 0);
            canvas_text(c, px, LOSS_Y - 8, lab, 11, COLOR_TEXT, ANCHOR_MIDDLE, 0, 0);
        }
        canvas_text(c, PX + PW / 2.0, LOSS_Y - 26, "tokens", 12, COLOR_MUTED, ANCHOR_MIDDLE, 0, 0);
    }
    y_ticks(c, &yl, 0);
    y_ticks(c, &ylr, 1);
    canvas_text(c, M + 12, LOSS_Y + LOSS_H / 2.0, "loss (nats)", 12, COLOR_MUTED, ANCHOR_MIDDLE, 1, 0);
    canvas_text(c, M + 12, lr_y + LR_H / 2.0, "learning rate", 12, COLOR_MUTED, ANCHOR_MIDDLE, 1, 0);

    for (int r = 0; r < n_runs; r++) {
        const run_curve *u = &runs[r];
        rgb col = colormap_line(r);
        char attrs[96];
        snprintf(attrs, sizeof attrs, "class=\"series\" data-run=\"%d\" data-kind=\"train\" data-n=\"%d\"", r, u->n);
        series(c, &x, &yl, u->step, u->loss, u->n, col, 1.2, 0, 0, attrs);
        snprintf(attrs, sizeof attrs, "class=\"series\" data-run=\"%d\" data-kind=\"val\" data-n=\"%d\"", r, u->n_val);
        if (u->n_val) series(c, &x, &yl, u->val_step, u->val_loss, u->n_val, col, 2, 1, 1, attrs);
        snprintf(attrs, sizeof attrs, "class=\"series\" data-run=\"%d\" data-kind=\"lr\" data-n=\"%d\"", r, u->n);
        series(c, &x, &ylr, u->step, u->lr, u->n, col, 1.5, 0, 0, attrs);
    }
    canvas_stroke_rect(c, PX - 0.5, LOSS_Y - 0.5, PW + 1, LOSS_H + 1, COLOR_FRAME, 1);
    canvas_stroke_rect(c, PX - 0.5, lr_y - 0.5, PW + 1, LR_H + 1, COLOR_FRAME, 1);
    legend(c, runs, n_runs, same_shape(runs, n_runs), PX + PW + 32, LOSS_Y + 12);
    int rc = canvas_save(c, path, err, errlen);
    canvas_free(c);
    return rc;
}

/*
 * Layout (pixels, all integers so that every cell covers whole pixels):
 *
 *   title / subtitle
 *   column caption ("keys j →")
 *   ┌ panel ───────────────────┐ ┌ panel ──── ...   legend
 *   │ title                     │                   (colour bar 0..1 and a
 *   │        key labels (rotated)│                    blank swatch = masked;
 *   │ query  ┌ T×T cells ─┐     │                    or the mask's 0 / −∞)
 *   │ labels └────────────┘     │
 *
 * The cell size shrinks with T and the number of panels; labels are drawn
 * for every row when cells are at least 8 px tall, else for every k-th.
 */
#include "cli/figure_matrix.h"

#include "cli/canvas.h"
#include "cli/colormap.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MARGIN = 16, GAP = 24, CAPTION = 18, LEGEND_W = 150, PANEL_TITLE = 18 };

#define MASK_VISIBLE ((rgb){0x9e, 0xd0, 0x9e}) /* the mask's 0 entries */

typedef struct {
    int cols;                  /* columns of each panel's matrix */
    const char *const *col_labels;
    double lo, hi;             /* colour range of the values     */
    int cell, label_every, rows;
    double font, label_w;
    int panel_w, panel_h, grid_x, grid_y, header_h, width, height;
} layout;

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void compute_layout(const matrix_figure *f, layout *L)
{
    int T = f->T;
    L->cols = f->cols > 0 ? f->cols : T;
    L->col_labels = f->col_labels ? f->col_labels : f->labels;
    L->lo = f->style == MATRIX_VALUES ? f->lo : 0.0;
    L->hi = f->style == MATRIX_VALUES && f->hi > f->lo ? f->hi : L->lo + 1.0;
    int side = T > L->cols ? T : L->cols;
    int target = f->n_panels == 1 ? 640 : f->n_cols <= 4 ? 320 : 220;
    L->cell = clampi(target / side, 2, f->style == MATRIX_MASK ? 44 : 36);
    L->font = fmin(12.0, fmax(7.0, L->cell * 0.7));
    L->label_every = L->cell >= 8 ? 1 : (int)ceil(9.0 / L->cell);
    double row_w = 0.0, col_w = 0.0;
    for (int i = 0; i < T; i++) row_w = fmax(row_w, canvas_text_width(f->labels[i], L->font));
    for (int j = 0; j < L->cols; j++)
        col_w = fmax(col_w, canvas_text_width(L->col_labels[j], L->font));
    L->label_w = ceil(row_w) + 6;
    int has_titles = f->panels[0].title != NULL;
    L->grid_x = (int)L->label_w;
    L->grid_y = (has_titles ? PANEL_TITLE + 4 : 0) + (int)ceil(col_w) + 6;
    L->panel_w = L->grid_x + L->cols * L->cell;
    L->panel_h = L->grid_y + T * L->cell;
    L->rows = (f->n_panels + f->n_cols - 1) / f->n_cols;
    L->header_h = MARGIN + 18 + (f->subtitle ? 18 : 0) + 6;
    L->width = MARGIN + CAPTION + f->n_cols * L->panel_w + (f->n_cols - 1) * GAP + GAP +
               LEGEND_W + MARGIN;
    int body = L->rows * L->panel_h + (L->rows - 1) * GAP;
    if (body < L->grid_y + 215) body = L->grid_y + 215; /* room for the legend */
    L->height = L->header_h + CAPTION + body + MARGIN;
    /* the title must fit too */
    int title_w = (int)canvas_text_width(f->title, 16) + 2 * MARGIN;
    if (f->subtitle) title_w = (int)fmax(title_w, canvas_text_width(f->subtitle, 12) + 2 * MARGIN);
    if (L->width < title_w) L->width = title_w;
}

static rgb text_on(rgb bg)
{
    double lum = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b;
    return lum < 140 ? (rgb){255, 255, 255} : (rgb){0, 0, 0};
}

static void draw_panel(canvas *c, const matrix_figure *f, const matrix_panel *p, const layout *L,
                       int x0, int y0)
{
    int T = f->T, N = L->cols, cs = L->cell;
    int gx = x0 + L->grid_x, gy = y0 + L->grid_y;
    char attrs[512];
    snprintf(attrs, sizeof attrs, "class=\"matrix\" data-x=\"%d\" data-y=\"%d\" data-cell=\"%d\" "
             "data-t=\"%d\" data-cols=\"%d\"%s%s", gx, gy, cs, T, N, p->attrs ? " " : "",
             p->attrs ? p->attrs : "");
    canvas_group_begin(c, attrs);
    if (p->title) canvas_text(c, x0 + L->grid_x, y0 + 13, p->title, 12, COLOR_TEXT, ANCHOR_START, 0, 1);
    /* column labels above the columns, reading upwards; row labels left */
    for (int k = 0; k < N; k += L->label_every)
        canvas_text(c, gx + k * cs + cs / 2.0 + L->font * 0.35, gy - 4, L->col_labels[k], L->font,
                    COLOR_TEXT, ANCHOR_START, 1, 0);
    for (int k = 0; k < T; k += L->label_every)
        canvas_text(c, gx - 4, gy + k * cs + cs / 2.0 + L->font * 0.35, f->labels[k], L->font,
                    COLOR_TEXT, ANCHOR_END, 0, 0);
    double vfont = cs * 0.34;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < N; j++) {
            float v = p->values[(size_t)i * N + j];
            double x = gx + j * cs, y = gy + i * cs;
            if (f->style == MATRIX_MASK) {
                int masked = isinf(v);
                if (!masked) canvas_fill_rect(c, x, y, cs, cs, MASK_VISIBLE);
                if (cs >= 22)
                    canvas_text(c, x + cs / 2.0, y + cs / 2.0 + vfont * 0.35, masked ? "−∞" : "0",
                                vfont, masked ? COLOR_MUTED : COLOR_TEXT, ANCHOR_MIDDLE, 0, 0);
                continue;
            }
            if (isnan(v)) continue; /* masked: blank */
            rgb col = colormap_viridis((v - L->lo) / (L->hi - L->lo));
            canvas_fill_rect(c, x, y, cs, cs, col);
            if (cs >= 30) {
                char num[16];
                snprintf(num, sizeof num, "%.2f", v);
                canvas_text(c, x + cs / 2.0, y + cs / 2.0 + vfont * 0.35, num, vfont, text_on(col),
                            ANCHOR_MIDDLE, 0, 0);
            }
        }
    canvas_stroke_rect(c, gx - 0.5, gy - 0.5, N * cs + 1, T * cs + 1, COLOR_FRAME, 1);
    canvas_group_end(c);
}

static void draw_legend(canvas *c, const matrix_figure *f, const layout *L, int x, int y)
{
    canvas_group_begin(c, "class=\"legend\"");
    if (f->style == MATRIX_MASK) {
        canvas_fill_rect(c, x, y, 18, 18, MASK_VISIBLE);
        canvas_text(c, x + 26, y + 13, "0: visible (j ≤ i)", 11, COLOR_TEXT, ANCHOR_START, 0, 0);
        canvas_stroke_rect(c, x + 0.5, y + 28.5, 17, 17, COLOR_MUTED, 1);
        canvas_text(c, x + 26, y + 41, "−∞: masked (j > i)", 11, COLOR_TEXT, ANCHOR_START, 0, 0);
        canvas_group_end(c);
        return;
    }
    int h = 150, w = 16;
    canvas_text(c, x, y + 10, f->legend ? f->legend : "weight", 12, COLOR_TEXT, ANCHOR_START, 0, 1);
    int top = y + 20;
    for (int k = 0; k < h; k++) /* one row of pixels per step, 1 at the top */
        canvas_fill_rect(c, x, top + k, w, 1, colormap_viridis(1.0 - (k + 0.5) / h));
    canvas_stroke_rect(c, x - 0.5, top - 0.5, w + 1, h + 1, COLOR_FRAME, 1);
    for (int t = 0; t <= 4; t++) {
        double yy = top + h - h * t / 4.0;
        char lab[24];
        snprintf(lab, sizeof lab, "%.2f", L->lo + (L->hi - L->lo) * t / 4.0);
        canvas_line(c, x + w, yy, x + w + 4, yy, COLOR_FRAME, 1, 0);
        canvas_text(c, x + w + 7, yy + 4, lab, 11, COLOR_TEXT, ANCHOR_START, 0, 0);
    }
    if (f->style == MATRIX_VALUES) { /* nothing is masked */
        canvas_group_end(c);
        return;
    }
    int sy = top + h + 16;
    canvas_stroke_rect(c, x + 0.5, sy + 0.5, w - 1, w - 1, COLOR_MUTED, 1);
    canvas_text(c, x + w + 7, sy + 12, "blank: masked", 11, COLOR_TEXT, ANCHOR_START, 0, 0);
    canvas_text(c, x + w + 7, sy + 26, "(future, j > i)", 11, COLOR_MUTED, ANCHOR_START, 0, 0);
    canvas_group_end(c);
}

int matrix_figure_draw(const matrix_figure *f, const char *path, char *err, size_t errlen)
{
    layout L;
    compute_layout(f, &L);
    canvas *c;
    if (canvas_create(canvas_kind_of(path), L.width, L.height, &c, err, errlen)) return -1;
    canvas_text(c, MARGIN, MARGIN + 14, f->title, 16, COLOR_TEXT, ANCHOR_START, 0, 1);
    if (f->subtitle)
        canvas_text(c, MARGIN, MARGIN + 32, f->subtitle, 12, COLOR_MUTED, ANCHOR_START, 0, 0);
    int body_x = MARGIN + CAPTION, body_y = L.header_h + CAPTION;
    int body_w = f->n_cols * L.panel_w + (f->n_cols - 1) * GAP;
    int body_h = L.rows * L.panel_h + (L.rows - 1) * GAP;
    if (f->col_caption)
        canvas_text(c, body_x + L.grid_x + (body_w - L.grid_x) / 2.0, body_y - 5, f->col_caption,
                    12, COLOR_MUTED, ANCHOR_MIDDLE, 0, 0);
    if (f->row_caption)
        canvas_text(c, MARGIN + 12, body_y + L.grid_y + (body_h - L.grid_y) / 2.0, f->row_caption,
                    12, COLOR_MUTED, ANCHOR_MIDDLE, 1, 0);
    for (int p = 0; p < f->n_panels; p++)
        draw_panel(c, f, &f->panels[p], &L, body_x + (p % f->n_cols) * (L.panel_w + GAP),
                   body_y + (p / f->n_cols) * (L.panel_h + GAP));
    draw_legend(c, f, &L, body_x + body_w + GAP, body_y + L.grid_y);
    int rc = canvas_save(c, path, err, errlen);
    canvas_free(c);
    return rc;
}

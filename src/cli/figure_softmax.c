/* softmax of one row of scores as a picture, the seeds' worked example:
 * the scores, the row of the causal mask added to them (0 / −∞), and the
 * resulting weights as bars; masked positions get no bar at all.
 *
 *   j        0      1      2      3
 *   score    1      1      1      8
 *   + mask   0      0      0     −∞
 *   weight  ▇▇     ▇▇     ▇▇     (masked)
 */
#include "cli/canvas.h"
#include "cli/colormap.h"
#include "cli/figures.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { M = 16, LW = 96, CW = 64, ROW = 28, BAR_H = 180 };

static void fmt_score(float s, char *buf, size_t n)
{
    if (isinf(s)) snprintf(buf, n, "%s", s < 0 ? "−∞" : "∞");
    else snprintf(buf, n, "%.4g", s);
}

int softmax_figure_draw(const float *scores, int n, int row, const float *weights,
                        const char *path, char *err, size_t errlen)
{
    int width = M + LW + n * CW + M, y_idx = 74, y_score = y_idx + 10, y_mask = y_score + ROW + 6;
    int y_top = y_mask + ROW + 34, y_base = y_top + BAR_H, height = y_base + 30 + M;
    char title[160], list[96] = "";
    for (int j = 0, len = 0; j < n && len < 80; j++) {
        char s[24];
        fmt_score(scores[j], s, sizeof s);
        len += snprintf(list + len, sizeof list - (size_t)len, j ? " %s" : "%s", s);
    }
    if (row >= 0) snprintf(title, sizeof title, "softmax of [%s], causal row %d", list, row);
    else snprintf(title, sizeof title, "softmax of [%s]", list);
    const char *sub = row >= 0 ? "the mask hides the positions after the query: their weight is 0"
                               : "weight_j = e^(score_j) / Σ_k e^(score_k)";
    int title_w = (int)fmax(canvas_text_width(title, 16), canvas_text_width(sub, 12)) + 2 * M;
    if (width < title_w) width = title_w;
    canvas *c;
    if (canvas_create(canvas_kind_of(path), width, height, &c, err, errlen)) return -1;
    canvas_text(c, M, M + 14, title, 16, COLOR_TEXT, ANCHOR_START, 0, 1);
    canvas_text(c, M, M + 32, sub, 12, COLOR_MUTED, ANCHOR_START, 0, 0);
    canvas_text(c, M, y_score + 19, "score", 12, COLOR_TEXT, ANCHOR_START, 0, 0);
    canvas_text(c, M, y_mask + 19, "+ mask", 12, COLOR_TEXT, ANCHOR_START, 0, 0);
    canvas_text(c, M, y_top + 12, "weight", 12, COLOR_TEXT, ANCHOR_START, 0, 0);
    canvas_line(c, M + LW - 8, y_top + 0.5, width - M, y_top + 0.5, COLOR_GRID, 1, 1);
    canvas_text(c, M + LW - 12, y_top + 4, "1", 11, COLOR_MUTED, ANCHOR_END, 0, 0);
    canvas_text(c, M + LW - 12, y_base + 4, "0", 11, COLOR_MUTED, ANCHOR_END, 0, 0);
    for (int j = 0; j < n; j++) {
        double x = M + LW + j * CW, mid = x + CW / 2.0;
        int masked = row >= 0 && j > row;
        char buf[32], attrs[96];
        snprintf(attrs, sizeof attrs, "class=\"bar\" data-j=\"%d\" data-weight=\"%.6g\"", j,
                 weights[j]);
        canvas_group_begin(c, attrs);
        snprintf(buf, sizeof buf, "j = %d", j);
        canvas_text(c, mid, y_idx, buf, 11, COLOR_MUTED, ANCHOR_MIDDLE, 0, 0);
        fmt_score(scores[j], buf, sizeof buf);
        canvas_stroke_rect(c, x + 4.5, y_score + 0.5, CW - 9, ROW, COLOR_FRAME, 1);
        canvas_text(c, mid, y_score + 19, buf, 13, COLOR_TEXT, ANCHOR_MIDDLE, 0, 0);
        canvas_stroke_rect(c, x + 4.5, y_mask + 0.5, CW - 9, ROW, masked ? COLOR_MUTED : COLOR_FRAME, 1);
        canvas_text(c, mid, y_mask + 19, masked ? "−∞" : "0", 13, masked ? COLOR_MUTED : COLOR_TEXT,
                    ANCHOR_MIDDLE, 0, 0);
        double h = round(weights[j] * BAR_H);
        if (weights[j] > 0.0f) canvas_fill_rect(c, x + 10, y_base - h, CW - 20, h, colormap_viridis(weights[j]));
        snprintf(buf, sizeof buf, "%.4f", weights[j]);
        canvas_text(c, mid, y_base - h - 5, buf, 11, COLOR_TEXT, ANCHOR_MIDDLE, 0, 0);
        if (masked) canvas_text(c, mid, y_base + 18, "masked", 11, COLOR_MUTED, ANCHOR_MIDDLE, 0, 0);
        canvas_group_end(c);
    }
    canvas_line(c, M + LW - 8, y_base + 0.5, width - M, y_base + 0.5, COLOR_FRAME, 1, 0);
    int rc = canvas_save(c, path, err, errlen);
    canvas_free(c);
    return rc;
}

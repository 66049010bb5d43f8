/* Matrices as pictures: the T×T attention weights of one or many heads (a
 * heatmap on the viridis scale with a colour bar), the causal mask
 * (0 / -inf), or a T×N matrix of values such as FFN activations. Rows are
 * tokens (queries i), columns keys j (or units); a NaN entry is a masked cell
 * and stays blank (the background shows through). */
#ifndef SLM_CLI_FIGURE_MATRIX_H
#define SLM_CLI_FIGURE_MATRIX_H

#include <stddef.h>

typedef struct {
    const float *values; /* [T][cols]; NaN = masked (blank)                 */
    const char *title;   /* above the panel, e.g. "layer 0 · head 1"; or NULL */
    const char *attrs;   /* SVG attributes of the panel's group, or NULL     */
} matrix_panel;

/* MATRIX_WEIGHTS: values in [0, 1] (attention); MATRIX_MASK: 0 / -inf;
 * MATRIX_VALUES: any finite values, coloured over [lo, hi] (activations). */
enum { MATRIX_WEIGHTS = 0, MATRIX_MASK = 1, MATRIX_VALUES = 2 };

typedef struct {
    int style;                       /* MATRIX_*                              */
    const char *title, *subtitle;    /* subtitle may be NULL                  */
    int T;                           /* rows                                  */
    const char *const *labels;       /* [T] row labels (tokens)               */
    int n_panels, n_cols;            /* panels fill rows of n_cols            */
    const matrix_panel *panels;
    const char *row_caption, *col_caption;
    /* Optional, for non-square matrices (MATRIX_VALUES): columns and their
     * labels (0 / NULL: T columns labelled like the rows), the colour range
     * and the legend's title. */
    int cols;
    const char *const *col_labels;
    double lo, hi;
    const char *legend;
} matrix_figure;

/* Draws f into path (.png or .svg, chosen by the extension), atomically.
 * 0, or -1 with a message. */
int matrix_figure_draw(const matrix_figure *f, const char *path, char *err, size_t errlen);

#endif

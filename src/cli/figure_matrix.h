/* T×T matrices as pictures: the attention weights of one or many heads (a
 * heatmap on the viridis scale with a colour bar), or the causal mask
 * (0 / -inf). Rows are queries i, columns keys j; a NaN entry is a masked
 * cell and stays blank (the background shows through). */
#ifndef SLM_CLI_FIGURE_MATRIX_H
#define SLM_CLI_FIGURE_MATRIX_H

#include <stddef.h>

typedef struct {
    const float *values; /* [T][T]; NaN = masked (blank)                    */
    const char *title;   /* above the panel, e.g. "layer 0 · head 1"; or NULL */
    const char *attrs;   /* SVG attributes of the panel's group, or NULL     */
} matrix_panel;

enum { MATRIX_WEIGHTS = 0, MATRIX_MASK = 1 };

typedef struct {
    int style;                       /* MATRIX_WEIGHTS or MATRIX_MASK         */
    const char *title, *subtitle;    /* subtitle may be NULL                  */
    int T;
    const char *const *labels;       /* [T] token labels (both axes)          */
    int n_panels, n_cols;            /* panels fill rows of n_cols            */
    const matrix_panel *panels;
    const char *row_caption, *col_caption;
} matrix_figure;

/* Draws f into path (.png or .svg, chosen by the extension), atomically.
 * 0, or -1 with a message. */
int matrix_figure_draw(const matrix_figure *f, const char *path, char *err, size_t errlen);

#endif

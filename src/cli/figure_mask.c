/* The causal mask of the seeds as a picture: M[i][j] = 0 where query i may
 * see key j (j <= i), -inf where j is in its future. */
#include "cli/figure_matrix.h"
#include "cli/figures.h"
#include "slm.h"

#include <stdio.h>
#include <stdlib.h>

int mask_figure_draw(int T, const char *path, char *err, size_t errlen)
{
    float *m = malloc((size_t)T * T * sizeof *m);
    char *names = malloc((size_t)T * 12);
    const char **labels = malloc((size_t)T * sizeof *labels);
    int rc = -1;
    if (!m || !names || !labels) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    slm_causal_mask(T, T, m);
    for (int i = 0; i < T; i++) {
        snprintf(names + (size_t)i * 12, 12, "%d", i);
        labels[i] = names + (size_t)i * 12;
    }
    char title[64];
    snprintf(title, sizeof title, "Causal mask M, T = %d", T);
    matrix_panel panel = {m, NULL, "data-kind=\"mask\""};
    matrix_figure f = {.style = MATRIX_MASK, .title = title,
                       .subtitle = "added to the scores before softmax: e^(−∞) = 0, so no token "
                                   "sees its future",
                       .T = T, .labels = labels, .n_panels = 1, .n_cols = 1, .panels = &panel,
                       .row_caption = "query i", .col_caption = "key j"};
    rc = matrix_figure_draw(&f, path, err, errlen);
done:
    free(m);
    free(names);
    free(labels);
    return rc;
}

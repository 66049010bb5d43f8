/* The pictures of `slm mask -o` and `slm softmax -o`: what those commands
 * print, drawn (figure_mask.c, figure_softmax.c). Both write PNG or SVG by
 * the file name's extension, atomically; 0, or -1 with a message. */
#ifndef SLM_CLI_FIGURES_H
#define SLM_CLI_FIGURES_H

#include <stddef.h>

/* Largest T `slm mask -o` draws. */
#define MASK_DRAW_MAX_T 256

/* Most scores `slm softmax -o` draws. */
#define SOFTMAX_DRAW_MAX 64

/* The T×T causal mask: 0 cells filled, -inf cells blank, labelled. */
int mask_figure_draw(int T, const char *path, char *err, size_t errlen);

/* scores [n] (-inf allowed), the causal row (-1 if none), weights [n] =
 * softmax of the masked scores: score, mask and weight of each position. */
int softmax_figure_draw(const float *scores, int n, int row, const float *weights,
                        const char *path, char *err, size_t errlen);

#endif

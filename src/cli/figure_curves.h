/* Training curves: loss (train and validation) against steps with tokens on
 * a second axis, and the learning rate beneath, for one or several runs. */
#ifndef SLM_CLI_FIGURE_CURVES_H
#define SLM_CLI_FIGURE_CURVES_H

#include <stddef.h>

typedef struct {
    const char *name;      /* legend label (the run directory)              */
    int n;                 /* logged steps                                  */
    double *step, *loss, *lr;        /* [n]                                 */
    int n_val;
    double *val_step, *val_loss;     /* [n_val]                             */
    double tokens_per_step; /* batch · grad_accum · context; 0 if unknown   */
    char shape[128];        /* "4 layers × 4 heads, width 256, ..." or ""   */
    char brief[48];         /* "L4 H4 C256" or "": legend, when shapes differ */
} run_curve;

/* Draws the runs into path (.png or .svg), atomically. The top axis counts
 * tokens when every run has the same tokens_per_step. 0, or -1 with a
 * message. */
int curves_figure_draw(const run_curve *runs, int n_runs, const char *path, char *err,
                       size_t errlen);

#endif

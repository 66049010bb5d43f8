/* DIR/log.jsonl: one JSON object per training step (step, loss, lr,
 * grad_norm, tok_s, val_loss when evaluated), appended and flushed as the
 * run goes, for plotting and for reading a run's history. */
#ifndef SLM_TRAIN_LOG_H
#define SLM_TRAIN_LOG_H

#include "slm.h"

#include <stdio.h>

typedef struct {
    FILE *f; /* NULL: no log (not the writer, or no directory)              */
} train_log;

/* Opens DIR/log.jsonl for appending, first dropping the lines of steps
 * after `start`: a run killed after its last checkpoint logged steps the
 * resumed run takes again, and a new run (start 0) replaces an old log. */
int train_log_open(train_log *l, const char *dir, int start, char *err, size_t errlen);
void train_log_step(train_log *l, const slm_train_progress *p);
void train_log_close(train_log *l);

#endif

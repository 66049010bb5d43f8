/* log.jsonl of a training run (see train_log.h). */
#include "train/train_log.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the lines of steps <= start (rewritten atomically if any go). */
static void trim(const char *path, int start)
{
    char *text;
    size_t len, kept = 0;
    if (read_file(path, (size_t)1 << 30, &text, &len, NULL, 0)) return;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        int step;
        if (sscanf(text + at, "{\"step\":%d", &step) == 1 && step <= start) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        }
        at = end;
    }
    if (kept != len) atomic_write(path, text, kept, NULL, 0);
    free(text);
}

int train_log_open(train_log *l, const char *dir, int start, char *err, size_t errlen)
{
    l->f = NULL;
    char *path = path_join(dir, "log.jsonl");
    if (!path) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    trim(path, start);
    l->f = fopen(path, "a");
    int rc = l->f ? SLM_OK : fail(err, errlen, SLM_EIO, "cannot append to %s", path);
    free(path);
    return rc;
}

void train_log_step(train_log *l, const slm_train_progress *p)
{
    if (!l->f) return;
    fprintf(l->f, "{\"step\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6g,\"tok_s\":%.1f",
            p->step, p->loss, p->lr, p->grad_norm, p->tokens_per_s);
    if (p->evaluated) fprintf(l->f, ",\"val_loss\":%.6f", p->val_loss);
    fputs("}\n", l->f);
    fflush(l->f);
}

void train_log_close(train_log *l)
{
    if (l->f) fclose(l->f);
    l->f = NULL;
}

/* Placeholder owner of training state until gpt.c lands (issue 4). */
#include "model/model.h"

#include <stdlib.h>

struct gpt_train_state {
    int unused;
};

void gpt_train_state_free(struct gpt_train_state *t) { free(t); }

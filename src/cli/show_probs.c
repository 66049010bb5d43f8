#include "cli/show_probs.h"

#include "cli/token_label.h"

#include <math.h>
#include <stdlib.h>

static void label(const slm_tokenizer *tok, int32_t id, char *buf, size_t n)
{
    const char *bytes = "";
    size_t len = 0;
    if (slm_tokenizer_token_bytes(tok, id, &bytes, &len)) len = 0;
    token_label(bytes, len, 12, buf, n);
}

void show_probs_line(FILE *f, const slm_tokenizer *tok, const float *logits, int V, int k, int n,
                     int32_t picked)
{
    /* softmax in double: p_j = exp(l_j − max) / Σ exp(l − max) */
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < V; j++) mx = fmax(mx, logits[j]);
    for (int j = 0; j < V; j++) sum += exp(logits[j] - mx);
    int top[SHOW_PROBS_MAX];
    if (k > V) k = V;
    if (k > SHOW_PROBS_MAX) k = SHOW_PROBS_MAX;
    for (int t = 0; t < k; t++) { /* k passes of selection: k is small */
        int best = -1;
        for (int j = 0; j < V; j++) {
            int taken = 0;
            for (int s = 0; s < t && !taken; s++) taken = top[s] == j;
            if (!taken && (best < 0 || logits[j] > logits[best])) best = j;
        }
        top[t] = best;
    }
    char buf[64];
    fprintf(f, "%4d:", n);
    for (int t = 0; t < k; t++) {
        label(tok, top[t], buf, sizeof buf);
        fprintf(f, "  %s %.4f", buf, exp(logits[top[t]] - mx) / sum);
    }
    label(tok, picked, buf, sizeof buf);
    fprintf(f, "  → %s (%.4f)\n", buf, exp(logits[picked] - mx) / sum);
}

void show_probs_text(FILE *f, const slm_tokenizer *tok, const int32_t *ids, int n)
{
    char *text = NULL;
    size_t len = 0;
    if (slm_tokenizer_decode(tok, ids, (size_t)n, &text, &len, NULL, 0)) return;
    fputs("text: ", f);
    fwrite(text, 1, len, f);
    fputc('\n', f);
    free(text);
}

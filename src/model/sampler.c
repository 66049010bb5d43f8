/*
 * The last step of the output layer at generation time: logits → softmax
 * distribution over the vocabulary → one token.
 *
 *   greedy       temperature 0: the argmax (ties → lowest id)
 *   temperature  softmax(logits / T): T < 1 sharpens, T > 1 flattens
 *   top-k        keep the k most likely tokens
 *   top-p        keep the smallest set whose probability reaches p (nucleus,
 *                Holtzman et al. 2019)
 */
#include "core/error.h"
#include "core/rng.h"
#include "slm.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float p;
    int32_t id;
} candidate;

struct slm_sampler {
    int vocab;
    float temperature;
    int top_k;
    float top_p;
    rng_state rng;
    float *prob;     /* [vocab] */
    candidate *cand; /* [vocab] the tokens still in the running */
};

int slm_sampler_create(int vocab_size, float temperature, int top_k, float top_p, uint64_t seed,
                       slm_sampler **out, char *err, size_t errlen)
{
    *out = NULL;
    if (vocab_size <= 0) return fail(err, errlen, SLM_EINVAL, "vocab_size must be positive");
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return fail(err, errlen, SLM_EINVAL, "temperature must be a finite number >= 0");
    if (top_k < 0) return fail(err, errlen, SLM_EINVAL, "top-k must be >= 0");
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return fail(err, errlen, SLM_EINVAL, "top-p must be in (0, 1]");
    slm_sampler *s = calloc(1, sizeof *s);
    if (!s) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    s->vocab = vocab_size;
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    rng_seed(&s->rng, seed);
    s->prob = malloc((size_t)vocab_size * sizeof *s->prob);
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    if (!s->prob || !s->cand) {
        slm_sampler_free(s);
        return fail(err, errlen, SLM_ENOMEM, "out of memory");
    }
    *out = s;
    return SLM_OK;
}

void slm_sampler_free(slm_sampler *s)
{
    if (!s) return;
    free(s->prob);
    free(s->cand);
    free(s);
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Descending probability; ties broken by lower id so the order (and thus
 * the sample) never depends on the sort algorithm. */
static int more_likely(const candidate *a, const candidate *b)
{
    return a->p != b->p ? a->p > b->p : a->id < b->id;
}

static int by_prob_desc(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    return more_likely(x, y) ? -1 : more_likely(y, x) ? 1 : 0;
}

/* Moves the k most likely of c[0..n) to the front, unordered (quickselect,
 * O(n) on average), so top-k over a 50k vocabulary does not sort it all. */
static void select_top(candidate *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        candidate pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (more_likely(&c[i], &pivot)) i++;
            while (more_likely(&pivot, &c[j])) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

int32_t slm_sampler_next(slm_sampler *s, const float *logits)
{
    int V = s->vocab;
    if (s->temperature == 0.0f) return argmax(logits, V);
    /* softmax(logits / T), max-subtracted so exp cannot overflow. */
    float m = logits[argmax(logits, V)];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        s->prob[i] = expf((logits[i] - m) / s->temperature);
        sum += s->prob[i];
    }
    int n = 0;
    /* For top-p, a token with p < (1-top_p)/(V-1) of the mass can never be in
     * the nucleus (llama2.c's cut): drop those before sorting. */
    double cutoff = s->top_p < 1.0f && V > 1 ? (1.0 - s->top_p) / (V - 1) * sum : -1.0;
    for (int i = 0; i < V; i++)
        if (s->prob[i] >= cutoff) s->cand[n++] = (candidate){s->prob[i], i};
    if (s->top_k > 0 && s->top_k < n) {
        select_top(s->cand, n, s->top_k);
        n = s->top_k;
    }
    if (s->top_p < 1.0f || s->top_k > 0) {
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_prob_desc);
        double total = sum;
        if (s->top_k > 0) {
            total = 0.0;
            for (int i = 0; i < n; i++) total += s->cand[i].p;
        }
        if (s->top_p < 1.0f) {
            double kept = 0.0;
            for (int i = 0; i < n; i++) {
                kept += s->cand[i].p;
                if (kept >= s->top_p * total) {
                    n = i + 1;
                    break;
                }
            }
        }
        sum = 0.0;
        for (int i = 0; i < n; i++) sum += s->cand[i].p;
    }
    double r = (double)rng_uniform(&s->rng) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += s->cand[i].p;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}

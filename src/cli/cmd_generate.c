/* slm generate — stream text from a model with a KV cache. */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "cli/show_probs.h"
#include "cli/text_out.h"
#include "slm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: slm generate -m DIR [-p TEXT | --prompt-ids \"1 2 3\"] [options]\n\n"
    "Streams text as it is generated, one token at a time, reusing the keys and\n"
    "values of earlier positions (KV cache).\n\n"
    "  -m, --model DIR       model directory (config.json + model.safetensors)\n"
    "  -p, --prompt TEXT     text to continue (default: a newline, or\n"
    "                        <|endoftext|> for GPT-2-tokenized models)\n"
    "  --prompt-ids IDS      the prompt as token ids, space-separated\n"
    "  -n, --tokens N        tokens to generate (default 256)\n"
    "  --temperature F       0 = greedy; default 0.8\n"
    "  --top-k N             sample among the N most likely tokens (0 = all; default 0)\n"
    "  --top-p F             nucleus sampling, in (0, 1] (default 0.95)\n"
    "  --seed N              random seed (default: from the clock)\n"
    "  --ids                 print the new token ids on one line instead of text\n"
    "  --truncate            keep the end of a prompt longer than the context\n"
    "  --show-probs K        for each new token, print the K most likely next tokens\n"
    "                        under the model's softmax and the one picked; then the text\n"
    "  --threads N           threads (default: all cores)\n";

/* Parses "1 2 3" into a malloc'd array of ids < vocab. */
static int parse_ids(const char *s, int vocab, int32_t **ids, int *n)
{
    size_t cap = strlen(s) / 2 + 1;
    int32_t *out = malloc(cap * sizeof *out);
    if (!out) return cli_error(CLI_RUNTIME, "generate: out of memory");
    int count = 0;
    char *copy = strdup(s);
    if (!copy) {
        free(out);
        return cli_error(CLI_RUNTIME, "generate: out of memory");
    }
    for (char *save = NULL, *tok = strtok_r(copy, " \t\n,", &save); tok;
         tok = strtok_r(NULL, " \t\n,", &save)) {
        long v;
        if (cli_parse_int(tok, 0, vocab - 1, &v)) {
            int rc = cli_error(CLI_USAGE, "generate: --prompt-ids: '%s' is not a token id in 0..%d",
                               tok, vocab - 1);
            free(copy);
            free(out);
            return rc;
        }
        out[count++] = (int32_t)v;
    }
    free(copy);
    *ids = out;
    *n = count;
    return 0;
}

typedef struct {
    const char *model_dir, *prompt, *prompt_ids;
    int n, top_k, ids_only, truncate, threads, show_probs;
    double temperature, top_p;
    uint64_t seed;
    int seed_given;
} gen_args;

/* Prompt → ids; an empty prompt starts from the model's natural start. */
static int prompt_tokens(const gen_args *a, const slm_model *m, const slm_tokenizer *tok,
                         int32_t **ids, int *n)
{
    const slm_config *c = slm_model_config(m);
    if (a->prompt_ids) return parse_ids(a->prompt_ids, c->vocab_size, ids, n);
    const char *text = a->prompt ? a->prompt : "";
    size_t n_ids = 0;
    char err[256];
    if (slm_tokenizer_encode(tok, text, strlen(text), ids, &n_ids, err, sizeof err))
        return cli_error(CLI_RUNTIME, "generate: %s", err);
    *n = (int)n_ids;
    if (*n == 0) {
        int32_t start = slm_tokenizer_eot(tok) >= 0 ? slm_tokenizer_eot(tok) : '\n';
        free(*ids);
        *ids = malloc(sizeof **ids);
        if (!*ids) return cli_error(CLI_RUNTIME, "generate: out of memory");
        (*ids)[0] = start;
        *n = 1;
    }
    return 0;
}

/* Feeds history[0..n) into a fresh cache when the context is full: the
 * model never sees more than n_positions tokens, so generation continues
 * from the most recent half of the context. */
static int refill(slm_model *m, slm_kv_cache *cache, const int32_t *history, int n, float *logits,
                  char *err, size_t errlen)
{
    int ctx = slm_model_config(m)->n_positions;
    int keep = ctx / 2 > 0 ? ctx / 2 : 1;
    if (keep > n) keep = n;
    slm_kv_cache_reset(cache);
    return slm_model_decode(m, cache, history + n - keep, keep, logits, err, errlen);
}

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int generate(const gen_args *a, slm_model *m, slm_tokenizer *tok, const int32_t *prompt,
                    int n_prompt)
{
    const slm_config *c = slm_model_config(m);
    char err[512];
    slm_kv_cache *cache = NULL;
    slm_sampler *sampler = NULL;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    int32_t *history = malloc(((size_t)n_prompt + (size_t)a->n) * sizeof *history);
    int rc = CLI_RUNTIME, n_hist = n_prompt;
    if (!logits || !history) {
        cli_error(CLI_RUNTIME, "generate: out of memory");
        goto done;
    }
    memcpy(history, prompt, (size_t)n_prompt * sizeof *history);
    /* The cache holds what this run can reach: a short generation from a
     * long-context model does not reserve the whole context. */
    int64_t reach = (int64_t)n_prompt + a->n;
    int cache_tokens = reach < c->n_positions ? (int)reach : c->n_positions;
    if (slm_kv_cache_create(m, cache_tokens, &cache, err, sizeof err) ||
        slm_sampler_create(c->vocab_size, (float)a->temperature, a->top_k, (float)a->top_p,
                           a->seed, &sampler, err, sizeof err) ||
        slm_model_decode(m, cache, prompt, n_prompt, logits, err, sizeof err)) {
        cli_error(CLI_RUNTIME, "generate: %s", err);
        goto done;
    }
    text_out out;
    text_out_init(&out, stdout);
    int32_t eot = slm_tokenizer_eot(tok);
    for (int i = 0; i < a->n; i++) {
        if (!all_finite(logits, c->vocab_size)) {
            if (a->ids_only && i) putchar('\n');
            else if (!a->ids_only) text_out_finish(&out);
            cli_error(CLI_RUNTIME, "generate: the model's logits became NaN or infinite at "
                                   "token %d; its weights are unusable", i + 1);
            goto done;
        }
        int32_t next = slm_sampler_next(sampler, logits);
        if (a->show_probs)
            show_probs_line(stdout, tok, logits, c->vocab_size, a->show_probs, i + 1, next);
        if (next == eot) break;
        history[n_hist++] = next;
        if (a->ids_only) {
            printf(i ? " %d" : "%d", next);
        } else if (!a->show_probs) { /* --show-probs prints the text at the end */
            const char *bytes;
            size_t len;
            if (!slm_tokenizer_token_bytes(tok, next, &bytes, &len) && len)
                text_out_write(&out, bytes, len);
        }
        if (i + 1 == a->n) break;
        int full = slm_kv_cache_length(cache) == c->n_positions;
        if (full ? refill(m, cache, history, n_hist, logits, err, sizeof err)
                 : slm_model_decode(m, cache, &next, 1, logits, err, sizeof err)) {
            cli_error(CLI_RUNTIME, "generate: %s", err);
            goto done;
        }
    }
    if (a->show_probs) show_probs_text(stdout, tok, history + n_prompt, n_hist - n_prompt);
    else if (a->ids_only) putchar('\n');
    else text_out_finish(&out);
    rc = 0;
done:
    fflush(stdout);
    free(logits);
    free(history);
    slm_sampler_free(sampler);
    slm_kv_cache_free(cache);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    gen_args a = {.n = 256, .temperature = 0.8, .top_p = 0.95};
    const cli_option opts[] = {
        {"--model", "-m", OPT_STRING, &a.model_dir, 0, 0, NULL},
        {"--prompt", "-p", OPT_STRING, &a.prompt, 0, 0, NULL},
        {"--prompt-ids", NULL, OPT_STRING, &a.prompt_ids, 0, 0, NULL},
        {"--tokens", "-n", OPT_INT, &a.n, 1, 1 << 30, NULL},
        {"--temperature", NULL, OPT_FLOAT, &a.temperature, 0, 1e6, NULL},
        {"--top-k", NULL, OPT_INT, &a.top_k, 0, 1 << 30, NULL},
        {"--top-p", NULL, OPT_FLOAT, &a.top_p, -HUGE_VAL, HUGE_VAL, NULL}, /* checked below */
        {"--seed", NULL, OPT_U64, &a.seed, 0, 0, &a.seed_given},
        {"--ids", NULL, OPT_FLAG, &a.ids_only, 0, 0, NULL},
        {"--truncate", NULL, OPT_FLAG, &a.truncate, 0, 0, NULL},
        {"--show-probs", NULL, OPT_INT, &a.show_probs, 1, SHOW_PROBS_MAX, NULL},
        {"--threads", NULL, OPT_INT, &a.threads, 1, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("generate", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    if (!((float)a.top_p > 0.0f && a.top_p <= 1.0)) /* 0 keeps no token; 1e-50 is 0 as a float */
        return cli_error(CLI_USAGE, "generate: --top-p must be in (0, 1], got %g", a.top_p);
    if (a.show_probs && a.ids_only)
        return cli_error(CLI_USAGE, "generate: give --show-probs or --ids, not both");
    if (a.prompt && a.prompt_ids)
        return cli_error(CLI_USAGE, "generate: give -p or --prompt-ids, not both");
    if (!a.model_dir) return cli_error(CLI_USAGE, "generate: no model given (-m DIR)");
    if (!a.seed_given) a.seed = (uint64_t)time(NULL);
    cli_set_threads(a.threads);

    slm_model *m;
    slm_tokenizer *tok;
    if ((rc = cli_open_model("generate", a.model_dir, 1, &m, &tok))) return rc;
    int32_t *prompt = NULL;
    int n_prompt = 0;
    rc = prompt_tokens(&a, m, tok, &prompt, &n_prompt);
    int ctx = slm_model_config(m)->n_positions;
    if (!rc && n_prompt == 0) rc = cli_error(CLI_USAGE, "generate: --prompt-ids is empty");
    if (!rc && n_prompt > ctx) {
        if (!a.truncate) {
            rc = cli_error(CLI_RUNTIME,
                           "generate: the prompt is %d tokens but the context holds %d "
                           "(pass --truncate to keep its end)",
                           n_prompt, ctx);
        } else {
            /* Keep the end of the prompt: what the model can still see. */
            int keep = ctx;
            memmove(prompt, prompt + (n_prompt - keep), (size_t)keep * sizeof *prompt);
            n_prompt = keep;
        }
    }
    if (!rc) rc = generate(&a, m, tok, prompt, n_prompt);
    free(prompt);
    slm_tokenizer_free(tok);
    slm_model_free(m);
    return rc;
}

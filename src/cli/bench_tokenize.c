/* slm bench tokenize — encode speed of the tokenizer on one core: MB/s
 * (10^6 bytes of input per second), tokens/s and tokens per byte, best of
 * --repeat runs. Each run is one slm_tokenizer_encode call on the whole text,
 * as training does with its data file. */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "core/rng.h"
#include "slm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *help =
    "usage: slm bench tokenize [--file F] [-m DIR] [--tokenizer gpt2|byte] [--repeat N]\n"
    "                          [--json]\n\n"
    "Times slm_tokenizer_encode on one core over a text and prints MB/s\n"
    "(10^6 input bytes per second), tokens/s and tokens per byte (best of N runs).\n\n"
    "  --file F          text to encode (default: the King James Bible printed by\n"
    "                    bible(1) from Debian's bible-kjv if installed, else 4 MB of\n"
    "                    generated English-like text)\n"
    "  -m DIR            directory with vocab.json + merges.txt (default data/gpt2)\n"
    "  --tokenizer T     gpt2 (default) or byte\n"
    "  --repeat N        timed runs, best reported (default 3)\n"
    "  --json            one JSON object: {\"bench\":\"tokenize\",\"impl\":...,\"bytes\":...,\n"
    "                    \"tokens\":...,\"ms\":...,\"mb_s\":...,\"tok_s\":...}\n";

/* The whole KJV text via bible(1), if Debian's bible-kjv is installed. */
static int read_kjv(char **buf, size_t *len)
{
    if (access("/usr/bin/bible", X_OK) != 0) return -1;
    FILE *p = popen("/usr/bin/bible gen1:1-rev22:21 2>/dev/null", "r");
    if (!p) return -1;
    int rc = cli_read_stream("bench tokenize", p, "bible(1)", buf, len) ? -1 : 0;
    if (pclose(p) != 0 || (!rc && *len < (1 << 20))) {
        if (!rc) free(*buf);
        return -1;
    }
    return rc;
}

/* English-like text: common words drawn with Zipf-like weights, sentences
 * with punctuation, numbers now and then, paragraphs. */
static int synthetic_text(size_t target, char **buf, size_t *len)
{
    static const char *words[] = {
        "the",       "of",         "and",       "to",          "a",           "in",
        "that",      "is",         "was",       "he",          "for",         "it",
        "with",      "as",         "his",       "on",          "be",          "at",
        "by",        "I",          "this",      "had",         "not",         "are",
        "but",       "from",       "or",        "have",        "an",          "they",
        "which",     "one",        "you",       "were",        "her",         "all",
        "she",       "there",      "would",     "their",       "we",          "him",
        "been",      "has",        "when",      "who",         "will",        "more",
        "no",        "if",         "out",       "so",          "said",        "what",
        "up",        "its",        "about",     "into",        "than",        "them",
        "can",       "only",       "other",     "new",         "some",        "could",
        "time",      "these",      "two",       "may",         "then",        "do",
        "first",     "any",        "my",        "now",         "such",        "like",
        "our",       "over",       "man",       "me",          "even",        "most",
        "made",      "after",      "also",      "did",         "many",        "before",
        "must",      "through",    "back",      "years",       "where",       "much",
        "your",      "way",        "well",      "down",        "should",      "because",
        "each",      "just",       "those",     "people",      "Mr.",         "how",
        "too",       "little",     "state",     "good",        "very",        "make",
        "world",     "still",      "own",       "see",         "men",         "work",
        "long",      "get",        "here",      "between",     "both",        "life",
        "being",     "under",      "never",     "day",         "same",        "another",
        "know",      "while",      "last",      "might",       "us",          "great",
        "old",       "year",       "off",       "come",        "since",       "against",
        "go",        "came",       "right",     "used",        "take",        "three",
        "doesn't",   "tokenizer",  "attention", "transformer", "probability", "unbelievably",
        "mountains", "government", "children"};
    const size_t nw = sizeof words / sizeof *words;
    char *b = malloc(target + 64);
    if (!b) return -1;
    rng_state r;
    rng_seed(&r, 2024);
    size_t n = 0, in_sentence = 0;
    while (n < target) {
        /* Zipf-like: the square of a uniform favours the first words. */
        double u = rng_uniform(&r);
        const char *w = words[(size_t)(u * u * (double)nw)];
        if (rng_below(&r, 40) == 0) {
            n += (size_t)snprintf(b + n, 64, "%s%llu", in_sentence ? " " : "",
                                  (unsigned long long)rng_below(&r, 100000));
        } else {
            n += (size_t)snprintf(b + n, 64, "%s%s", in_sentence ? " " : "", w);
        }
        if (in_sentence && rng_below(&r, 12) == 0) {
            b[n++] = ".,;!?"[rng_below(&r, 5)];
            if (rng_below(&r, 10) == 0) b[n++] = '\n';
            b[n++] = rng_below(&r, 10) == 0 ? '\n' : ' ';
            in_sentence = 0;
        } else {
            in_sentence = 1;
        }
    }
    *buf = b;
    *len = n;
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int bench_tokenize(int argc, char **argv)
{
    const char *file = NULL, *dir = "data/gpt2", *kind = "gpt2";
    int repeat = 3, threads = 0, json = 0;
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--file", NULL, OPT_STRING, &file, 0, 0, NULL},
        {"--model", "-m", OPT_STRING, &dir, 0, 0, NULL},
        {"--tokenizer", NULL, OPT_STRING, &kind, 0, 0, NULL},
        {"--repeat", NULL, OPT_INT, &repeat, 1, 1000, NULL},
        /* encoding is single-threaded; accepted like everywhere */
        {"--threads", NULL, OPT_INT, &threads, 0, 4096, NULL},
    };
    char *pos[1];
    int n_pos;
    int prc = cli_parse_options("bench tokenize", argc, argv, opts, sizeof opts / sizeof *opts,
                                pos, 0, &n_pos);
    if (prc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (prc) return prc;
    if (strcmp(kind, "gpt2") && strcmp(kind, "byte"))
        return cli_error(CLI_USAGE, "bench tokenize: --tokenizer must be gpt2 or byte, got '%s'",
                         kind);

    char *text = NULL, err[512];
    size_t len = 0;
    const char *source;
    if (file) {
        int rc = cli_read_file("bench tokenize", file, &text, &len);
        if (rc) return rc;
        source = file;
    } else if (!read_kjv(&text, &len)) {
        source = "King James Bible (bible-kjv)";
    } else if (!synthetic_text((size_t)4 << 20, &text, &len)) {
        source = "generated English-like text";
    } else {
        return cli_error(CLI_RUNTIME, "bench tokenize: out of memory");
    }

    int is_byte = !strcmp(kind, "byte");
    slm_tokenizer *t;
    int rc = slm_tokenizer_load(is_byte ? SLM_TOKENIZER_BYTE : SLM_TOKENIZER_GPT2, dir, 0, &t, err,
                                sizeof err);
    if (rc) {
        free(text);
        return cli_error(CLI_RUNTIME, "bench tokenize: %s", err);
    }
    double best = 1e300;
    size_t n_tokens = 0;
    for (int r = 0; r < repeat && !rc; r++) {
        int32_t *ids;
        double t0 = now_ms();
        rc = slm_tokenizer_encode(t, text, len, &ids, &n_tokens, err, sizeof err);
        double ms = now_ms() - t0;
        if (!rc) free(ids);
        if (ms < best) best = ms;
    }
    slm_tokenizer_free(t);
    free(text);
    if (rc) return cli_error(CLI_RUNTIME, "bench tokenize: %s", err);

    const char *impl = is_byte ? "byte" : "gpt2-bpe";
    double s = best > 0 ? best / 1e3 : 1e-9;
    double mb_s = (double)len / 1e6 / s, tok_s = (double)n_tokens / s;
    if (json) {
        printf("{\"bench\":\"tokenize\",\"impl\":\"%s\",\"bytes\":%zu,\"tokens\":%zu,"
               "\"ms\":%.3f,\"mb_s\":%.2f,\"tok_s\":%.0f,\"tokens_per_byte\":%.4f}\n",
               impl, len, n_tokens, best, mb_s, tok_s, len ? (double)n_tokens / (double)len : 0.0);
    } else {
        printf("tokenize: %s, %s, one core, best of %d\n", impl, source, repeat);
        printf("%12s %12s %10s %9s %12s %12s\n", "bytes", "tokens", "ms", "MB/s", "tokens/s",
               "tokens/byte");
        printf("%12zu %12zu %10.1f %9.2f %12.0f %12.4f\n", len, n_tokens, best, mb_s, tok_s,
               len ? (double)n_tokens / (double)len : 0.0);
    }
    return CLI_OK;
}

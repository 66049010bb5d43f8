#include "cli/options.h"

#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const cli_option *find(const cli_option *opts, int n, const char *arg)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(arg, opts[i].name) || (opts[i].alias && !strcmp(arg, opts[i].alias)))
            return &opts[i];
    return NULL;
}

static int set_value(const char *cmd, const cli_option *o, const char *typed, const char *v)
{
    long iv;
    uint64_t uv;
    double fv;
    switch (o->kind) {
    case OPT_INT:
        if (cli_parse_int(v, (long)o->lo, (long)o->hi, &iv))
            return cli_error(CLI_USAGE, "%s: %s needs an integer from %.0f to %.0f, got '%s'", cmd,
                             typed, o->lo, o->hi, v);
        *(int *)o->dst = (int)iv;
        return 0;
    case OPT_U64:
        if (cli_parse_u64(v, &uv))
            return cli_error(CLI_USAGE, "%s: %s needs a non-negative integer, got '%s'", cmd,
                             typed, v);
        *(uint64_t *)o->dst = uv;
        return 0;
    case OPT_FLOAT:
        if (cli_parse_float(v, &fv))
            return cli_error(CLI_USAGE, "%s: %s needs a finite number, got '%s'", cmd, typed, v);
        if (fv < o->lo || fv > o->hi)
            return cli_error(CLI_USAGE, "%s: %s must be in [%g, %g], got %s", cmd, typed, o->lo,
                             o->hi, v);
        *(double *)o->dst = fv;
        return 0;
    case OPT_STRING:
        *(const char **)o->dst = v;
        return 0;
    case OPT_STRING_LIST: {
        cli_string_list *l = o->dst;
        if (l->n >= CLI_MAX_LIST)
            return cli_error(CLI_USAGE, "%s: %s given more than %d times", cmd, typed,
                             CLI_MAX_LIST);
        l->items[l->n++] = v;
        return 0;
    }
    case OPT_FLAG: break;
    }
    return 0;
}

int cli_parse_options(const char *cmd, int argc, char **argv, const cli_option *opts, int n_opts,
                      char **pos, int max_pos, int *n_pos)
{
    *n_pos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && cli_is_help(a)) return -1;
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        /* "-" alone is a positional (stdin); negative numbers (-1, -.5,
         * -inf) are values. */
        int negative_number = (a[1] >= '0' && a[1] <= '9') || a[1] == '.' || !strcmp(a, "-inf");
        if (!only_positional && a[0] == '-' && a[1] && !negative_number) {
            const cli_option *o = find(opts, n_opts, a);
            if (!o) return cli_error(CLI_USAGE, "%s: unknown option '%s' (try --help)", cmd, a);
            if (o->seen) *o->seen = 1;
            if (o->kind == OPT_FLAG) {
                *(int *)o->dst = 1;
                continue;
            }
            if (i + 1 >= argc) return cli_error(CLI_USAGE, "%s: %s needs a value", cmd, a);
            if (set_value(cmd, o, a, argv[++i])) return CLI_USAGE;
            continue;
        }
        if (*n_pos >= max_pos)
            return cli_error(CLI_USAGE, "%s: unexpected argument '%s' (try --help)", cmd, a);
        pos[(*n_pos)++] = argv[i];
    }
    return 0;
}

int cli_parse_model_options(const char *cmd, const char *help, int argc, char **argv,
                            const char **dir, char **pos, int max_pos, int *n_pos)
{
    int threads = 0;
    *dir = NULL;
    const cli_option opts[] = {{"--model", "-m", OPT_STRING, dir, 0, 0, NULL},
                               {"--threads", NULL, OPT_INT, &threads, 1, 4096, NULL}};
    int rc = cli_parse_options(cmd, argc, argv, opts, 2, pos, max_pos, n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return -1;
    }
    if (rc) return rc;
    if (!*dir) return cli_error(CLI_USAGE, "%s: no model given (-m DIR)", cmd);
    cli_set_threads(threads);
    return 0;
}

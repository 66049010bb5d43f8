/* Table-driven option parsing shared by the subcommands, so every command
 * rejects unknown flags, missing values and out-of-range numbers the same way
 * ("slm: <cmd>: ..." and exit 2). */
#ifndef SLM_CLI_OPTIONS_H
#define SLM_CLI_OPTIONS_H

#include <stdint.h>

typedef enum { OPT_FLAG, OPT_INT, OPT_U64, OPT_FLOAT, OPT_STRING, OPT_STRING_LIST } opt_kind;

typedef struct {
    const char *name;  /* "--steps"; a second spelling may go in alias     */
    const char *alias; /* e.g. "-n", or NULL                               */
    opt_kind kind;
    void *dst;         /* int*, uint64_t*, double*, const char**; for
                          OPT_STRING_LIST a cli_string_list*              */
    double lo, hi;     /* inclusive range for numbers                      */
    int *seen;         /* optional: set to 1 when given                    */
} cli_option;

#define CLI_MAX_LIST 16
typedef struct {
    const char *items[CLI_MAX_LIST];
    int n;
} cli_string_list;

/* Parses argv[1..argc) against opts; positional arguments go to pos (up to
 * max_pos, *n_pos set). Returns 0, CLI_USAGE after printing the error, or -1
 * when --help was given (the caller prints its help and exits 0). */
int cli_parse_options(const char *cmd, int argc, char **argv, const cli_option *opts, int n_opts,
                      char **pos, int max_pos, int *n_pos);

/* The options of the commands that take only a model: -m/--model DIR
 * (required) and --threads N. For --help prints `help` and returns -1 (the
 * caller exits 0); otherwise 0, or CLI_USAGE after printing the error. */
int cli_parse_model_options(const char *cmd, const char *help, int argc, char **argv,
                            const char **dir, char **pos, int max_pos, int *n_pos);

#endif

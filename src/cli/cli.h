/* Shared by the subcommands: exit codes, error printing, number parsing. */
#ifndef SLM_CLI_H
#define SLM_CLI_H

#include <stdint.h>

enum { CLI_OK = 0, CLI_RUNTIME = 1, CLI_USAGE = 2 };

/* Prints "slm: <message>" on stderr and returns `code`. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict parsers: the whole string must be a number in range. 0 on success. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_float(const char *s, double *out); /* finite values only */

/* 1 if argv[i] is "--help" or "-h". */
int cli_is_help(const char *arg);

/* Sets the OpenMP/OpenBLAS thread count from --threads (0 = all cores). */
void cli_set_threads(int n);

int cmd_mask(int argc, char **argv);
int cmd_softmax(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_attention(int argc, char **argv);
int cmd_ffn(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif

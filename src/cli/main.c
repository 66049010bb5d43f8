/* slm — the command line. Dispatches to one file per subcommand. */
#include "cli/cli.h"
#include "slm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"mask", cmd_mask, "print the T×T causal mask (0 / -inf)"},
    {"softmax", cmd_softmax, "softmax of scores, optionally causally masked"},
    {"train", cmd_train, "train a GPT from scratch on text (or --resume a run)"},
    {"generate", cmd_generate, "stream text from a model (KV cache)"},
    {"eval", cmd_eval, "loss and perplexity of a model on a text file"},
    {"tokenize", cmd_tokenize, "text → token ids"},
    {"detokenize", cmd_detokenize, "token ids → text"},
    {"info", cmd_info, "configuration, parameter count and files of a model"},
    {"attention", cmd_attention, "draw a model's attention weights for a prompt (PNG/SVG)"},
    {"ffn", cmd_ffn, "draw a block's feed-forward activations for a prompt (PNG/SVG)"},
    {"plot", cmd_plot, "draw training curves from run directories (PNG/SVG)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server and a web page"},
    {"quantize", cmd_quantize, "write a model's weights as int8 or bf16 for generation"},
    {"bench", cmd_bench, "benchmarks: attention, gemm, train, generate, tokenize"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: slm <command> [options]   (slm <command> --help for details)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions: --help, --version\n");
}

/* Output that never reached its file (a full disk, an I/O error) is a
 * runtime error, not a success. */
static int finish(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        return cli_error(code ? code : CLI_RUNTIME, "writing output: %s", strerror(e));
    }
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_error(CLI_USAGE, "no command given");
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return finish(CLI_OK);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("slm %s\n", slm_version());
        return finish(CLI_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return finish(commands[i].run(argc - 1, argv + 1));
    return cli_error(CLI_USAGE, "unknown command '%s' (try slm --help)", argv[1]);
}

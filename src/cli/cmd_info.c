/* slm info — what a model directory holds. */
#include "cli/cli.h"
#include "cli/model_open.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "slm.h"

#include <stdio.h>
#include <sys/stat.h>

static const char *help = "usage: slm info -m DIR [--threads N]\n\n"
                          "Prints the model's configuration, parameter count, tokenizer and the\n"
                          "sizes of the files in DIR.\n";

int cmd_info(int argc, char **argv)
{
    const char *dir;
    char *pos[1];
    int n_pos;
    int rc = cli_parse_model_options("info", help, argc, argv, &dir, pos, 0, &n_pos);
    if (rc) return rc == -1 ? CLI_OK : rc;
    slm_model *m;
    if ((rc = cli_open_model("info", dir, 0, &m, NULL))) return rc;
    const slm_config *c = slm_model_config(m);
    size_t params = slm_model_num_params(m);
    printf("model        %s\n", dir);
    printf("architecture GPT-2 (decoder-only, pre-LN, tied LM head)\n");
    printf("layers       %d\nheads        %d (head size %d)\nembedding    %d\n", c->n_layer,
           c->n_head, c->n_embd / c->n_head, c->n_embd);
    printf("context      %d tokens\nvocabulary   %d\n", c->n_positions, c->vocab_size);
    printf("activation   %s\n", c->activation == SLM_ACT_RELU ? "relu" : "gelu_new");
    printf("tokenizer    %s\n", c->tokenizer == SLM_TOKENIZER_BYTE ? "byte" : "gpt2");
    printf("dropout      %g\n", (double)c->dropout);
    printf("parameters   %zu (%.2f M, %.1f MiB as float32)\n", params, (double)params / 1e6,
           (double)params * 4.0 / 1048576.0);
    int group;
    const char *kernel;
    int quant = slm_model_quantization(m, &group, &kernel);
    if (quant == SLM_QUANT_INT8)
        printf("weights      int8, one float32 scale per %d (matrices and tied wte/LM head; "
               "wpe, LayerNorms, biases float32), kernels %s\n",
               group, kernel);
    else if (quant == SLM_QUANT_BF16)
        printf("weights      bf16 (matrices and tied wte/LM head; wpe, LayerNorms, biases "
               "float32), kernels %s\n",
               kernel);
    const char *files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                           "training_state.safetensors", "log.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &st) == 0)
            printf("file         %-28s %12lld bytes\n", files[i], (long long)st.st_size);
    }
    /* What this machine runs the model with (CPUID; SLM_CPU_LEVEL may lower it). */
    printf("kernels      %s\n", kernel_path_name());
    printf("bf16 GEMM    %s, for --dtype bf16 training and bf16 prompts\n",
           gemm_bf16_path_name());
    slm_model_free(m);
    return CLI_OK;
}

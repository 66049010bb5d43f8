/* See figure_prompt.h. */
#include "cli/figure_prompt.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

int figure_prompt_ids(const char *cmd, const slm_tokenizer *tok, const char *prompt,
                      int n_positions, int32_t **ids, int *T)
{
    size_t n_ids = 0;
    char err[512];
    *ids = NULL;
    if (slm_tokenizer_encode(tok, prompt, strlen(prompt), ids, &n_ids, err, sizeof err))
        return cli_error(CLI_RUNTIME, "%s: %s", cmd, err);
    int rc = CLI_OK;
    if (n_ids == 0) rc = cli_error(CLI_USAGE, "%s: the prompt is empty", cmd);
    else if (n_ids > (size_t)n_positions)
        rc = cli_error(CLI_RUNTIME, "%s: the prompt is %zu tokens but the context holds %d", cmd,
                       n_ids, n_positions);
    if (rc) {
        free(*ids);
        *ids = NULL;
        return rc;
    }
    *T = (int)n_ids;
    return CLI_OK;
}

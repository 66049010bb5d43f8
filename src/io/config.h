/* config.json ↔ slm_config, from and to memory (the file functions,
 * slm_config_load and slm_config_save, are in slm.h). */
#ifndef SLM_IO_CONFIG_H
#define SLM_IO_CONFIG_H

#include "slm.h"

/* Largest config.json we read: real ones are under 2 KB. */
#define SLM_CONFIG_MAX_BYTES ((size_t)1 << 20)

/* Parses len bytes of config.json text (name prefixes messages). The rules
 * and error codes are slm_config_load's. */
int config_parse(const char *text, size_t len, const char *name, slm_config *cfg, char *err,
                     size_t errlen);
/* cfg as config.json text (malloc'd, NUL-terminated, ends with a newline). */
int config_to_json(const slm_config *cfg, char **out, size_t *len, char *err, size_t errlen);

/* The "slm_quantization" record of a quantized model directory (slm
 * quantize): {"dtype": "int8", "group_size": G} or {"dtype": "bf16"}.
 * Absent: dtype SLM_QUANT_NONE (fp32 weights). */
typedef struct {
    int dtype; /* SLM_QUANT_NONE, SLM_QUANT_INT8, SLM_QUANT_BF16               */
    int group; /* int8: a multiple of 32 that divides n_embd; else 0          */
} config_quant;

/* config_parse / config_to_json / slm_config_load / slm_config_save that
 * also read or write the quantization record (q may be NULL: ignored / none). */
int config_parse_ex(const char *text, size_t len, const char *name, slm_config *cfg,
                    config_quant *q, char *err, size_t errlen);
int config_to_json_ex(const slm_config *cfg, const config_quant *q, char **out, size_t *len,
                      char *err, size_t errlen);
int config_load_ex(const char *path, slm_config *cfg, config_quant *q, char *err, size_t errlen);
int config_save_ex(const slm_config *cfg, const config_quant *q, const char *path, char *err,
                   size_t errlen);

#endif

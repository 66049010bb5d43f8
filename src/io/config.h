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

#endif

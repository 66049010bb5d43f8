/*
 * safetensors internals shared by the reader, the writer, model_dir.c and
 * the fuzz target. The public API is in slm.h (slm_safetensors_*).
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON header
 *   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are relative to its start.
 */
#ifndef SLM_IO_SAFETENSORS_H
#define SLM_IO_SAFETENSORS_H

#include "io/json.h"
#include "slm.h"

#include <stdint.h>

struct slm_safetensors {
    char *path;                /* for messages                              */
    int fd;                    /* -1 when parsed from memory                */
    const unsigned char *mem;  /* memory mode: the whole file (not owned)   */
    uint64_t data_start;       /* 8 + N                                     */
    size_t data_len;           /* bytes of the data section                 */
    int n;                     /* tensors                                   */
    slm_safetensors_tensor *t; /* header order                              */
    size_t *begin;             /* data offset of each tensor                */
    int *by_name;              /* indices sorted by name                    */
    int n_meta;
    const char **meta; /* key, value pairs (strings in doc's arena) */
    json_doc doc;      /* owns the names and metadata strings       */
};

/* Validates a whole safetensors file held in memory (len bytes at buf, which
 * must outlive *out); `name` is used in messages. For tests and fuzzing. */
int st_open_memory(const void *buf, size_t len, const char *name, slm_safetensors **out,
                       char *err, size_t errlen);

/* IEEE half and bfloat16 to float, exact for every input. */
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);

/* A tensor name made safe for a one-line message: control bytes become '?',
 * long names are cut with "...". */
void st_printable(const char *name, char out[96]);

#endif

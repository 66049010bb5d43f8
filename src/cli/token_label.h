/* A token's bytes as a label people can read on a figure: valid UTF-8 kept,
 * whitespace made visible (space ␣, newline ↵, tab ⇥), other control bytes
 * and bytes that are not (complete) UTF-8 — a byte-level model splits é into
 * two tokens — written as \xNN. */
#ifndef SLM_CLI_TOKEN_LABEL_H
#define SLM_CLI_TOKEN_LABEL_H

#include <stddef.h>

/* Writes the label of bytes[0..n) into out (NUL-terminated, truncated with
 * "…" after max_chars characters; "∅" for an empty token). out needs
 * 4·max_chars + 8 bytes. */
void token_label(const char *bytes, size_t n, int max_chars, char *out, size_t outlen);

#endif

#include "cli/token_label.h"

#include "io/json.h" /* utf8_len */

#include <stdio.h>
#include <string.h>

void token_label(const char *bytes, size_t n, int max_chars, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)bytes, *end = p + n;
    size_t len = 0;
    int chars = 0;
    out[0] = '\0';
    if (n == 0) {
        snprintf(out, outlen, "∅");
        return;
    }
    while (p < end) {
        char piece[8];
        size_t used = 1;
        int k = utf8_len(p, end);
        if (*p == ' ') snprintf(piece, sizeof piece, "␣");
        else if (*p == '\n') snprintf(piece, sizeof piece, "↵");
        else if (*p == '\t') snprintf(piece, sizeof piece, "⇥");
        else if (*p < 0x20 || *p == 0x7f || k == 0) snprintf(piece, sizeof piece, "\\x%02x", *p);
        else {
            memcpy(piece, p, (size_t)k);
            piece[k] = '\0';
            used = (size_t)k;
        }
        int w = piece[0] == '\\' ? 4 : 1;
        if (chars + w > max_chars) {
            if (len + 4 <= outlen) { /* "…" is 3 bytes, then the NUL */
                memcpy(out + len, "…", 3);
                len += 3;
            }
            break;
        }
        size_t pl = strlen(piece);
        if (len + pl + 1 > outlen) break;
        memcpy(out + len, piece, pl);
        len += pl;
        chars += w;
        p += used;
    }
    out[len] = '\0';
}

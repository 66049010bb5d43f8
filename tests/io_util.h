/* Small file helpers for the src/io tests: a scratch directory that is
 * removed afterwards, and whole-file read/write. Header-only (static). */
#ifndef SLM_TESTS_IO_UTIL_H
#define SLM_TESTS_IO_UTIL_H

#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline char *tmpdir_make(void)
{
    static char tmpl[64];
    strcpy(tmpl, "/tmp/slm_io_test_XXXXXX");
    return mkdtemp(tmpl);
}

static inline int rm_entry_(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static inline void tmpdir_remove(const char *dir)
{
    if (dir) nftw(dir, rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name into a static buffer (one at a time per slot). */
static inline const char *path_in(const char *dir, const char *name, int slot)
{
    static char buf[4][512];
    snprintf(buf[slot & 3], sizeof buf[0], "%s/%s", dir, name);
    return buf[slot & 3];
}

static inline int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* malloc'd contents (NULL if unreadable), length in *n. */
static inline unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *n = (size_t)len;
    return b;
}

/* Number of entries in dir other than . and .. (-1 if unreadable). */
static inline int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

#endif

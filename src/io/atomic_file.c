/* Atomic file writes, mkdir -p, bounded whole-file reads; see atomic_file.h. */
#include "io/atomic_file.h"

#include "core/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUF_BYTES (1 << 16)
/* Temporary files are ".<name>.slm-tmp.XXXXXX" (mkstemp fills the X's). */
#define TEMP_MARK ".slm-tmp."

struct atomic_out {
    int fd;
    const char *path; /* the target, for messages */
    char *err;
    size_t errlen;
    size_t used;
    char buf[OUT_BUF_BYTES];
};

char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (a && dir[a - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

static int write_all(atomic_out *o, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(o->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return fail(o->err, o->errlen, SLM_EIO, "cannot write to '%s': %s", o->path,
                            w < 0 ? strerror(errno) : "no space written");
        p += w;
        n -= (size_t)w;
    }
    return SLM_OK;
}

static int flush_out(atomic_out *o)
{
    int rc = write_all(o, o->buf, o->used);
    o->used = 0;
    return rc;
}

int atomic_out_write(atomic_out *o, const void *p, size_t n)
{
    if (n == 0) return SLM_OK;
    if (o->used + n <= OUT_BUF_BYTES) {
        memcpy(o->buf + o->used, p, n);
        o->used += n;
        return SLM_OK;
    }
    int rc = flush_out(o);
    if (rc) return rc;
    if (n >= OUT_BUF_BYTES) return write_all(o, p, n);
    memcpy(o->buf, p, n);
    o->used = n;
    return SLM_OK;
}

/* The directory part of path ("." if none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* Some file systems cannot fsync a directory; the rename still happened. */
    if (rc && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    close(fd);
    return rc;
}

int atomic_write_stream(const char *path, atomic_writer_fn fn, void *ctx, char *err,
                            size_t errlen)
{
    if (!path || !*path || !fn) return fail(err, errlen, SLM_EINVAL, "no output path");
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return fail(err, errlen, SLM_EIO, "cannot write to '%s': it is a directory", path);
    char *dir = dir_of(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *tmp = malloc(strlen(path) + sizeof TEMP_MARK + 8);
    atomic_out *o = malloc(sizeof *o);
    if (!dir || !tmp || !o) {
        free(dir), free(tmp), free(o);
        return fail(err, errlen, SLM_ENOMEM, "out of memory");
    }
    /* Hidden, in the same directory (so rename is atomic), unique, and
     * marked as ours so atomic_clean_temps can find it after a crash. */
    sprintf(tmp, "%.*s.%s" TEMP_MARK "XXXXXX", (int)(base - path), path, base);
    int rc = SLM_OK;
    o->fd = mkstemp(tmp);
    if (o->fd < 0) {
        rc = fail(err, errlen, SLM_EIO, "cannot write to '%s': %s", path, strerror(errno));
        goto out;
    }
    o->path = path;
    o->err = err;
    o->errlen = errlen;
    o->used = 0;
    fchmod(o->fd, 0644); /* mkstemp's 0600 is too private for a model file */
    rc = fn(ctx, o, err, errlen);
    if (!rc) rc = flush_out(o);
    if (!rc && fsync(o->fd))
        rc = fail(err, errlen, SLM_EIO, "cannot write to '%s': fsync: %s", path,
                      strerror(errno));
    if (close(o->fd) && !rc)
        rc = fail(err, errlen, SLM_EIO, "cannot write to '%s': %s", path, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = fail(err, errlen, SLM_EIO, "cannot write to '%s': %s", path, strerror(errno));
    if (rc) {
        unlink(tmp);
    } else if (fsync_dir(dir)) {
        rc = fail(err, errlen, SLM_EIO, "cannot sync directory '%s': %s", dir, strerror(errno));
    }
out:
    free(dir);
    free(tmp);
    free(o);
    return rc;
}

/* ".<name>.slm-tmp.XXXXXX" with six characters from mkstemp's alphabet. */
static int is_our_temp(const char *entry)
{
    const char *mark = strstr(entry, TEMP_MARK);
    if (entry[0] != '.' || !mark || mark == entry) return 0;
    const char *x = mark + strlen(TEMP_MARK);
    if (strlen(x) != 6) return 0;
    for (int i = 0; i < 6; i++)
        if (!isalnum((unsigned char)x[i])) return 0;
    return 1;
}

int atomic_clean_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_our_temp(e->d_name)) continue;
        char *p = path_join(dir, e->d_name);
        removed += p && unlink(p) == 0;
        free(p);
    }
    closedir(d);
    return removed;
}

typedef struct {
    const void *buf;
    size_t len;
} whole_buffer;

static int write_whole(void *ctx, atomic_out *out, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const whole_buffer *b = ctx;
    return atomic_out_write(out, b->buf, b->len);
}

int atomic_write(const char *path, const void *buf, size_t len, char *err, size_t errlen)
{
    whole_buffer b = {buf, len};
    return atomic_write_stream(path, write_whole, &b, err, errlen);
}

/* Makes one directory level, or checks that it exists as a directory. */
static int make_one(const char *p, const char *full, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(p, 0755) == 0) return SLM_OK;
    int e = errno;
    if (stat(p, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return SLM_OK;
        if (!strcmp(p, full))
            return fail(err, errlen, SLM_EIO, "output directory '%s' is a file", full);
        return fail(err, errlen, SLM_EIO, "cannot create directory '%s': '%s' is a file", full,
                        p);
    }
    return fail(err, errlen, SLM_EIO, "cannot create directory '%s': %s", full, strerror(e));
}

int mkdir_p(const char *dir, char *err, size_t errlen)
{
    if (!dir || !*dir) return fail(err, errlen, SLM_EINVAL, "no output directory");
    char *p = strdup(dir);
    if (!p) return fail(err, errlen, SLM_ENOMEM, "out of memory");
    int rc = SLM_OK;
    for (char *s = p + 1; *s && !rc; s++) {
        if (*s != '/') continue;
        *s = '\0';
        rc = make_one(p, dir, err, errlen);
        *s = '/';
    }
    if (!rc) rc = make_one(p, dir, err, errlen);
    free(p);
    return rc;
}

int read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err,
                  size_t errlen)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, SLM_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    int rc = SLM_OK;
    char *buf = NULL;
    if (fstat(fd, &st)) {
        rc = fail(err, errlen, SLM_EIO, "cannot stat '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, SLM_EIO, "'%s' is not a regular file", path);
    } else if ((uint64_t)st.st_size > max_bytes) {
        rc = fail(err, errlen, SLM_EFORMAT, "'%s' is too large (%lld bytes, limit %zu)", path,
                      (long long)st.st_size, max_bytes);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = fail(err, errlen, SLM_ENOMEM, "out of memory reading '%s'", path);
    } else {
        size_t want = (size_t)st.st_size, got = 0;
        while (got < want) {
            ssize_t r = read(fd, buf + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                rc = fail(err, errlen, SLM_EIO, "cannot read '%s': %s", path, strerror(errno));
                break;
            }
            if (r == 0) {
                rc = fail(err, errlen, SLM_EIO, "'%s' shrank while being read", path);
                break;
            }
            got += (size_t)r;
        }
        buf[got] = '\0';
        *len = got;
    }
    close(fd);
    if (rc) {
        free(buf);
        *len = 0;
        return rc;
    }
    *out = buf;
    return SLM_OK;
}

/*
 * Whole-file reads with a size bound, and atomic writes: the data goes to a
 * temporary file in the target's directory, is fsync'ed, renamed over the
 * target, and the directory is fsync'ed, so a reader (or a crash) sees the
 * old file or the new one, never a mix. On any error the temporary file is
 * removed and the target is untouched.
 */
#ifndef SLM_IO_ATOMIC_FILE_H
#define SLM_IO_ATOMIC_FILE_H

#include "slm.h"

/* Buffered sink handed to a stream writer. */
typedef struct atomic_out atomic_out;

/* Appends n bytes. SLM_OK or SLM_EIO (with a message naming the target). */
int atomic_out_write(atomic_out *o, const void *p, size_t n);

/* Produces the file's contents through atomic_out_write; returns SLM_OK
 * or an error (which aborts the write). */
typedef int (*atomic_writer_fn)(void *ctx, atomic_out *out, char *err, size_t errlen);

int atomic_write_stream(const char *path, atomic_writer_fn fn, void *ctx, char *err,
                            size_t errlen);
int atomic_write(const char *path, const void *buf, size_t len, char *err, size_t errlen);

/* Removes the temporary files that writes into dir left when the process
 * was killed mid-write (".<name>.slm-tmp.XXXXXX"); returns how many. Call it
 * only while no other process writes into dir: their write would fail. */
int atomic_clean_temps(const char *dir);

/* mkdir -p with mode 0755. SLM_EIO with "output directory 'x' is a file",
 * "cannot create directory 'x': <reason>". */
int mkdir_p(const char *dir, char *err, size_t errlen);

/* Reads a whole regular file of at most max_bytes into a malloc'd buffer
 * (NUL-terminated for convenience; *len excludes the NUL). Errors: SLM_EIO
 * (missing, unreadable, not a regular file), SLM_EFORMAT (over max_bytes). */
int read_file(const char *path, size_t max_bytes, char **out, size_t *len, char *err,
                  size_t errlen);

/* dir + "/" + name into a malloc'd string (NULL if out of memory). */
char *path_join(const char *dir, const char *name);

#endif

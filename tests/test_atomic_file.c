/* Atomic writes, mkdir -p and bounded reads (src/io/atomic_file.c). */
#include "io_util.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "test.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static void test_atomic_write_replaces_whole_file(void)
{
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "f.txt", 0);
    char err[256];
    CHECK(atomic_write(p, "old contents", 12, err, sizeof err) == SLM_OK, "%s", err);
    CHECK(atomic_write(p, "new", 3, err, sizeof err) == SLM_OK, "%s", err);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    CHECK(b && n == 3 && !memcmp(b, "new", 3), "contents");
    free(b);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644, "mode %o", st.st_mode & 0777);
    CHECK(count_entries(dir) == 1, "temporary files left");
    /* A large buffer goes through unbuffered. */
    size_t big = 3 << 20;
    char *x = malloc(big);
    for (size_t i = 0; i < big; i++)
        x[i] = (char)(i * 31);
    CHECK(atomic_write(p, x, big, err, sizeof err) == SLM_OK, "%s", err);
    b = read_bytes(p, &n);
    CHECK(b && n == big && !memcmp(b, x, big), "big contents");
    free(b);
    free(x);
    tmpdir_remove(dir);
}

static int write_then_fail(void *ctx, atomic_out *out, char *err, size_t errlen)
{
    (void)ctx;
    int rc = atomic_out_write(out, "partial", 7);
    if (rc) return rc;
    return fail(err, errlen, SLM_EINTERRUPTED, "stopped by the producer");
}

static void test_atomic_failure_keeps_target(void)
{
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "f.txt", 0);
    char err[256];
    CHECK(atomic_write(p, "precious", 8, err, sizeof err) == SLM_OK, "%s", err);
    /* The producer fails part-way. */
    CHECK(atomic_write_stream(p, write_then_fail, NULL, err, sizeof err) == SLM_EINTERRUPTED &&
              !strcmp(err, "stopped by the producer"),
          "rc/message: %s", err);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    CHECK(b && n == 8 && !memcmp(b, "precious", 8), "target changed");
    free(b);
    CHECK(count_entries(dir) == 1, "temporary file left after a producer error");
    /* The disk "fills": RLIMIT_FSIZE makes write() fail with EFBIG. */
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 16, 1 << 16};
        setrlimit(RLIMIT_FSIZE, &rl);
        size_t big = 1 << 20;
        char *x = calloc(1, big);
        int rc = atomic_write(p, x, big, err, sizeof err);
        _exit(rc == SLM_EIO && strstr(err, "cannot write to") && strstr(err, "File too large") ? 0
                                                                                               : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "EFBIG not reported as SLM_EIO");
    b = read_bytes(p, &n);
    CHECK(b && n == 8 && !memcmp(b, "precious", 8), "target changed by a failed write");
    free(b);
    CHECK(count_entries(dir) == 1, "temporary file left after a write error");
    tmpdir_remove(dir);
}

static void test_atomic_unwritable_targets(void)
{
    char *dir = tmpdir_make();
    char err[256];
    CHECK(atomic_write(dir, "x", 1, err, sizeof err) == SLM_EIO &&
              strstr(err, "it is a directory"),
          "directory: %s", err);
    write_bytes(path_in(dir, "file", 0), "x", 1);
    CHECK(atomic_write(path_in(dir, "file/y", 1), "x", 1, err, sizeof err) == SLM_EIO &&
              strstr(err, "Not a directory"),
          "under a file: %s", err);
    CHECK(atomic_write("/proc/self/nope", "x", 1, err, sizeof err) == SLM_EIO &&
              strstr(err, "cannot write to '/proc/self/nope'"),
          "/proc: %s", err);
    CHECK(atomic_write(path_in(dir, "missing/y", 2), "x", 1, err, sizeof err) == SLM_EIO &&
              strstr(err, "No such file"),
          "missing dir: %s", err);
    CHECK(atomic_write("", "x", 1, err, sizeof err) == SLM_EINVAL, "empty path");
    tmpdir_remove(dir);
}

static void test_mkdir_p(void)
{
    char *dir = tmpdir_make();
    char err[256];
    const char *deep = path_in(dir, "a/b//c/", 0);
    CHECK(mkdir_p(deep, err, sizeof err) == SLM_OK, "%s", err);
    struct stat st;
    CHECK(stat(path_in(dir, "a/b/c", 1), &st) == 0 && S_ISDIR(st.st_mode), "not created");
    CHECK(mkdir_p(deep, err, sizeof err) == SLM_OK, "existing: %s", err);
    write_bytes(path_in(dir, "f", 1), "x", 1);
    CHECK(mkdir_p(path_in(dir, "f", 1), err, sizeof err) == SLM_EIO &&
              strstr(err, "output directory '") && strstr(err, "/f' is a file"),
          "file: %s", err);
    CHECK(mkdir_p(path_in(dir, "f/g", 2), err, sizeof err) == SLM_EIO &&
              strstr(err, "/f' is a file"),
          "under a file: %s", err);
    CHECK(mkdir_p("/proc/slm_x/y", err, sizeof err) == SLM_EIO &&
              strstr(err, "cannot create directory '/proc/slm_x/y'"),
          "/proc: %s", err);
    tmpdir_remove(dir);
}

static void test_read_file_limits(void)
{
    char *dir = tmpdir_make();
    char err[256], *buf;
    size_t n;
    const char *p = path_in(dir, "f", 0);
    write_bytes(p, "hello", 5);
    CHECK(read_file(p, 5, &buf, &n, err, sizeof err) == SLM_OK && n == 5 &&
              !strcmp(buf, "hello"),
          "%s", err);
    free(buf);
    CHECK(read_file(p, 4, &buf, &n, err, sizeof err) == SLM_EFORMAT && buf == NULL &&
              strstr(err, "too large (5 bytes, limit 4)"),
          "limit: %s", err);
    CHECK(read_file(dir, 100, &buf, &n, err, sizeof err) == SLM_EIO &&
              strstr(err, "not a regular file"),
          "dir: %s", err);
    CHECK(read_file(path_in(dir, "none", 1), 100, &buf, &n, err, sizeof err) == SLM_EIO,
          "missing");
    tmpdir_remove(dir);
}

/* A producer that never finishes (its process gets killed). */
static int hang(void *ctx, atomic_out *out, char *err, size_t errlen)
{
    (void)ctx, (void)err, (void)errlen;
    atomic_out_write(out, "half", 4);
    for (;;) pause();
    return SLM_OK;
}

/* Temporary files of a write killed midway are found and removed; names
 * that merely look similar are left alone. */
static void test_clean_temps_removes_only_ours(void)
{
    char *dir = tmpdir_make();
    const char *ours[] = {".model.safetensors.slm-tmp.Ab3dE9", ".config.json.slm-tmp.zzzzzz"};
    const char *theirs[] = {".config.json.backup",          "model.safetensors.slm-tmp.Ab3dE9",
                            ".config.json.slm-tmp.abcde",   ".config.json.slm-tmp.abcdefg",
                            ".config.json.slm-tmp.ab-def",  "config.json",
                            ".slm-tmp.abcdef"};
    for (size_t i = 0; i < 2; i++) write_bytes(path_in(dir, ours[i], 0), "x", 1);
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        write_bytes(path_in(dir, theirs[i], 0), "y", 1);
    CHECK(atomic_clean_temps(dir) == 2, "removed count");
    struct stat st;
    for (size_t i = 0; i < 2; i++) CHECK(stat(path_in(dir, ours[i], 0), &st) != 0, "%s", ours[i]);
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        CHECK(stat(path_in(dir, theirs[i], 0), &st) == 0, "%s was removed", theirs[i]);
    /* A writer's own temporary name is one of ours: a child killed while
     * its producer runs leaves it behind. */
    pid_t pid = fork();
    if (pid == 0) {
        atomic_write_stream(path_in(dir, "state.bin", 0), hang, NULL, NULL, 0);
        _exit(0);
    }
    int found = 0;
    for (int tries = 0; tries < 2000 && !found; tries++) {
        usleep(1000);
        found = count_entries(dir) == 1 + (int)(sizeof theirs / sizeof *theirs);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(found, "the killed writer's temporary file did not appear");
    CHECK(atomic_clean_temps(dir) == 1, "the killed writer's file is ours");
    CHECK(stat(path_in(dir, "state.bin", 0), &st) != 0, "the target was never written");
    CHECK(atomic_clean_temps("/nonexistent/dir") == 0, "missing dir");
    tmpdir_remove(dir);
}

int main(void)
{
    RUN(test_atomic_write_replaces_whole_file);
    RUN(test_atomic_failure_keeps_target);
    RUN(test_atomic_unwritable_targets);
    RUN(test_mkdir_p);
    RUN(test_read_file_limits);
    RUN(test_clean_temps_removes_only_ours);
    return test_summary();
}

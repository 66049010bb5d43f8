/*
 * The MPI side of data-parallel training (see train_mpi.h). Compiled with
 * -DSLM_WITH_MPI and mpicc's include flags when the build found Open MPI;
 * otherwise the same functions describe a single process.
 *
 * Failure model: MPI_COMM_WORLD returns errors (MPI_ERRORS_RETURN) so a
 * failed collective is reported in our words; the caller then ends the job
 * with MPI_Abort. A rank that dies outright (killed, crashed) is noticed by
 * mpirun, which stops the other ranks and exits non-zero. They wait in the
 * next collective or, rank 0, may be writing a checkpoint: its files are
 * written atomically (temporary file, fsync, rename), so the last
 * checkpoint stays intact either way.
 */
#include "cli/train_mpi.h"
#include "cli/cli.h"
#include "slm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SLM_WITH_MPI
#include <mpi.h>
#endif

/* A launcher's world size from the environment: Open MPI's mpirun sets
 * OMPI_COMM_WORLD_SIZE, PMI-based launchers (srun --mpi=pmi2, hydra)
 * PMI_SIZE; PMIx launchers only say the rank. 0 if not launched. */
static int launched_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (int i = 0; i < 2; i++) {
        const char *s = getenv(names[i]);
        if (s && atoi(s) > 0) return atoi(s);
    }
    const char *rank = getenv("PMIX_RANK");
    if (rank) return atoi(rank) + 1; /* at least that many */
    return 0;
}

int train_mpi_launched(void)
{
    return launched_size() > 0;
}

#ifdef SLM_WITH_MPI

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void mpi_message(int rc, char *buf, size_t n)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) len = 0;
    s[len] = '\0';
    snprintf(buf, n, "%s", len ? s : "unknown MPI error");
}

int train_mpi_init(train_mpi *w)
{
    memset(w, 0, sizeof *w);
    w->size = 1;
    if (!train_mpi_launched()) return 0;
    int provided = 0;
    /* Only the main thread calls MPI; OpenMP threads compute in between. */
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
        char m[256];
        mpi_message(rc, m, sizeof m);
        return cli_error(CLI_RUNTIME, "train: MPI_Init failed: %s", m);
    }
    w->joined = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    return 0;
}

void train_mpi_finalize(train_mpi *w)
{
    if (w->joined) MPI_Finalize();
    w->joined = 0;
}

void train_mpi_abort(const train_mpi *w, int code)
{
    if (w->joined) MPI_Abort(MPI_COMM_WORLD, code);
}

/* Pieces of at most 2^30 floats: MPI counts are ints. */
#define SUM_PIECE ((size_t)1 << 30)

int train_mpi_sum(train_mpi *w, float *buf, size_t n, char *err, size_t errlen)
{
    if (w->size == 1) return SLM_OK;
    double t0 = now_seconds();
    for (size_t at = 0; at < n; at += SUM_PIECE) {
        int count = (int)(n - at < SUM_PIECE ? n - at : SUM_PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            char m[256];
            mpi_message(rc, m, sizeof m);
            snprintf(err, errlen, "summing the gradients across %d processes: %s", w->size, m);
            return SLM_EIO;
        }
    }
    w->reduce_seconds += now_seconds() - t0;
    w->reduce_bytes += (double)n * sizeof *buf;
    w->reduce_calls += n > 1;
    return SLM_OK;
}

int train_mpi_any(const train_mpi *w, int flag)
{
    int any = flag != 0;
    if (w->size > 1 &&
        MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD) != MPI_SUCCESS)
        train_mpi_abort(w, CLI_RUNTIME);
    return any;
}

/* all[0..size) ← every rank's v (malloc'd; the job ends if that fails). */
static uint64_t *gather_u64(const train_mpi *w, uint64_t v)
{
    uint64_t *all = malloc((size_t)w->size * sizeof *all);
    if (!all) {
        fprintf(stderr, "slm: train: out of memory\n");
        train_mpi_abort(w, CLI_RUNTIME);
    }
    if (MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD) != MPI_SUCCESS) {
        fprintf(stderr, "slm: train: rank %d: exchanging start-up checks failed\n", w->rank);
        train_mpi_abort(w, CLI_RUNTIME);
    }
    return all;
}

int train_mpi_first_mismatch(const train_mpi *w, uint64_t v, uint64_t *first, uint64_t *theirs)
{
    *first = *theirs = v;
    if (w->size == 1) return -1;
    uint64_t *all = gather_u64(w, v);
    int bad = -1;
    for (int r = 1; r < w->size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    *first = all[0];
    if (bad >= 0) *theirs = all[bad];
    free(all);
    return bad;
}

int train_mpi_agree(const train_mpi *w, int rc)
{
    if (w->size == 1) return rc;
    uint64_t *all = gather_u64(w, (uint64_t)(uint32_t)rc);
    int failed = -1;
    for (int r = 0; r < w->size && failed < 0; r++)
        if (all[r]) failed = r;
    free(all);
    if (rc || failed < 0) return rc;
    if (w->rank == 0)
        cli_error(CLI_RUNTIME,
                  "train: rank %d of %d could not start (its message is above); "
                  "stopping",
                  failed, w->size);
    return CLI_RUNTIME;
}

#else /* one process */

int train_mpi_init(train_mpi *w)
{
    memset(w, 0, sizeof *w);
    w->size = 1;
    int n = launched_size();
    if (n > 1)
        return cli_error(CLI_USAGE,
                         "train: started by mpirun as one of %d processes, but this slm was "
                         "built without MPI (install libopenmpi-dev, then make)",
                         n);
    return 0;
}

void train_mpi_finalize(train_mpi *w)
{
    (void)w;
}

void train_mpi_abort(const train_mpi *w, int code)
{
    (void)w;
    (void)code;
}

int train_mpi_sum(train_mpi *w, float *buf, size_t n, char *err, size_t errlen)
{
    (void)w, (void)buf, (void)n, (void)err, (void)errlen;
    return SLM_OK;
}

int train_mpi_any(const train_mpi *w, int flag)
{
    (void)w;
    return flag != 0;
}

int train_mpi_first_mismatch(const train_mpi *w, uint64_t v, uint64_t *first, uint64_t *theirs)
{
    (void)w;
    *first = *theirs = v;
    return -1;
}

int train_mpi_agree(const train_mpi *w, int rc)
{
    (void)w;
    return rc;
}

#endif

/* ---- what `slm train` does with them (the same with and without MPI) ---- */

int train_mpi_check_batch(const train_mpi *w, int batch)
{
    if (batch % w->size == 0) return 0;
    if (w->rank == 0)
        cli_error(CLI_USAGE,
                  "train: --batch %d (the global batch) cannot be split evenly "
                  "across %d processes; use a multiple of %d",
                  batch, w->size, w->size);
    return CLI_USAGE;
}

int train_mpi_check_data(const train_mpi *w, uint64_t data_hash)
{
    uint64_t first, theirs;
    int bad = train_mpi_first_mismatch(w, data_hash, &first, &theirs);
    if (bad < 0) return 0;
    if (w->rank == 0)
        cli_error(CLI_RUNTIME,
                  "train: the training data differs between processes: rank %d "
                  "has data hash %016llx, rank 0 %016llx (every rank needs the "
                  "same --data)",
                  bad, (unsigned long long)theirs, (unsigned long long)first);
    return CLI_RUNTIME;
}

/* reduce_sum of slm_train_opts: the trainer reports a failure itself, so
 * the MPI error text goes to stderr here, once per failing rank. */
static int reduce_sum(void *ctx, float *data, size_t n)
{
    train_mpi *w = ctx;
    char err[512];
    if (train_mpi_sum(w, data, n, err, sizeof err) == SLM_OK) return 0;
    fprintf(stderr, "slm: train: rank %d: %s\n", w->rank, err);
    return 1;
}

void train_mpi_configure(train_mpi *w, slm_train_opts *o)
{
    o->shard = w->rank;
    o->n_shards = w->size;
    o->is_writer = w->rank == 0;
    o->reduce_sum = w->size > 1 ? reduce_sum : NULL;
    o->reduce_ctx = w;
}

int train_mpi_check_replicas(train_mpi *w, slm_model *m, int step)
{
    if (w->size == 1) return 0;
    w->replica_checks++;
    uint64_t h = slm_hash64(slm_model_params(m), slm_model_num_params(m) * sizeof(float));
    uint64_t first, theirs;
    int bad = train_mpi_first_mismatch(w, h, &first, &theirs);
    if (bad < 0) return 0;
    if (w->rank == 0)
        cli_error(CLI_RUNTIME,
                  "train: after step %d the parameters of rank %d differ from rank "
                  "0's (hash %016llx vs %016llx); stopping",
                  step, bad, (unsigned long long)theirs, (unsigned long long)first);
    return CLI_RUNTIME;
}

void train_mpi_report(const train_mpi *w, int batch, double step_seconds)
{
    if (w->size == 1 || w->rank != 0) return;
    fprintf(stderr,
            "slm: train: %d processes × %d windows of each batch of %d; summing the "
            "gradients took %.3f s of the %.3f s of steps (%.1f %%; %.1f MB per sum); the "
            "ranks' parameters were identical at all %d checks\n",
            w->size, batch / w->size, batch, w->reduce_seconds, step_seconds,
            step_seconds > 0 ? 100.0 * w->reduce_seconds / step_seconds : 0.0,
            w->reduce_calls ? w->reduce_bytes / (double)w->reduce_calls / 1e6 : 0.0,
            w->replica_checks);
}

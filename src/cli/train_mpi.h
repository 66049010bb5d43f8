/* Data-parallel training over Open MPI: which process this is, and the few
 * collective operations `mpirun -np N slm train` needs. Every rank runs the
 * library's trainer on its share of each global batch; the gradients are
 * summed between backward and the AdamW step, so every rank applies the
 * same update to the same parameters.
 *
 * Built without MPI (no mpicc at build time), the same calls describe one
 * process (rank 0 of 1) and do nothing, and a run that mpirun started
 * anyway is refused rather than trained N times into one directory. */
#ifndef SLM_CLI_TRAIN_MPI_H
#define SLM_CLI_TRAIN_MPI_H

#include "slm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank, size;        /* this process, the number of processes         */
    int joined;            /* MPI_Init was called (MPI_Finalize is due)     */
    double reduce_seconds; /* wall time spent summing gradients so far      */
    double reduce_bytes;   /* bytes summed so far (per rank)                 */
    long reduce_calls;     /* sums of more than one value (gradients)       */
    int replica_checks;    /* times the ranks' parameters were compared     */
} train_mpi;

/* 1 if a launcher (mpirun, srun with PMIx) started this process as one of
 * several; read from the environment, before any MPI call. */
int train_mpi_launched(void);

/* Joins the job when a launcher started this process; otherwise a single
 * process without MPI_Init (a singleton MPI_Init costs ~0.5 s and would
 * start a helper daemon for nothing). 0 or a CLI exit code, message printed. */
int train_mpi_init(train_mpi *w);
/* Leaves the job (MPI_Finalize) if init joined one. */
void train_mpi_finalize(train_mpi *w);
/* Ends the whole job now with exit code `code` (MPI_Abort): for a rank
 * that cannot go on while the others wait in a collective. */
void train_mpi_abort(const train_mpi *w, int code);

/* buf[0..n) ← Σ over ranks of buf, the same bits on every rank (MPI_SUM of
 * floats, in place; counts above INT_MAX go in pieces). Adds the time and
 * bytes to w's counters. 0 or SLM_E* with err filled. */
int train_mpi_sum(train_mpi *w, float *buf, size_t n, char *err, size_t errlen);
/* 1 if `flag` is non-zero on any rank (every rank gets the same answer). */
int train_mpi_any(const train_mpi *w, int flag);
/* Collects v from every rank: returns the lowest rank whose value differs
 * from rank 0's (and that value in *theirs, rank 0's in *first), or -1
 * when all agree. Every rank gets the same answer. */
int train_mpi_first_mismatch(const train_mpi *w, uint64_t v, uint64_t *first, uint64_t *theirs);

/* ---- what `slm train` does with them ------------------------------------ */

/* Refuses (on rank 0, exit 2 on every rank) a global batch that does not
 * split evenly across the ranks. */
int train_mpi_check_batch(const train_mpi *w, int batch);
/* The start-up agreement: every rank passes its result so far (0 or a CLI
 * exit code, its own message already printed). A rank whose start failed
 * fails the job: the others return CLI_RUNTIME (rank 0 saying which rank).
 * Every rank must call it, so none waits in a later collective for a rank
 * that gave up. */
int train_mpi_agree(const train_mpi *w, int rc);
/* Refuses a run whose ranks read different data: the corpus hashes are
 * compared across ranks (rank 0 names the first rank that differs). */
int train_mpi_check_data(const train_mpi *w, uint64_t data_hash);
/* Makes o this rank's part of the job: its shard of every global batch,
 * checkpoints and log.jsonl from rank 0 only, the gradients summed through
 * train_mpi_sum (reduce_sum with w as its context). */
void train_mpi_configure(train_mpi *w, slm_train_opts *o);
/* Every rank's parameters must be the same bits: compares a hash of them
 * across the ranks. 0, or (all ranks) CLI_RUNTIME with rank 0's message
 * naming the step. */
int train_mpi_check_replicas(train_mpi *w, slm_model *m, int step);
/* Rank 0's closing line: how many ranks, their share of the batch, and the
 * time spent summing gradients against the time of the steps. */
void train_mpi_report(const train_mpi *w, int batch, double step_seconds);

#endif

/*
 * Keeps asynchronous signals out of oneDNN's JIT GEMMs.
 *
 * oneDNN's AVX-512 sgemm (jit_avx512_common_gemm_f32, every release up to
 * 3.11 at least: uxlfoundation/oneDNN#4845) points RSP into a heap buffer
 * while it runs. A signal delivered to a thread inside that code has its
 * frame (~3 KiB of AVX-512 state, more with AMX) pushed onto the heap:
 * "corrupted size vs. prev_size" or "free(): invalid pointer" later.
 * Measured here: a SIGALRM every 30 us during 8x128x512 sgemms aborts
 * within seconds at 1 and 2 threads; with this guard, 60,000 signals over
 * 70,000 calls leave every result and a canary intact. Ctrl-C during
 * `slm train` hit it about once in 100 runs.
 *
 * So around every oneDNN call: the calling thread blocks asynchronous
 * signals for the call (a pending one is delivered right after it, so a
 * Ctrl-C waits one GEMM, milliseconds at most), and OpenMP's worker threads
 * block them for good the first time they pass here (a process-directed
 * signal then goes to a thread that is not a pool worker; workers never
 * need one). Synchronous signals (SIGSEGV, SIGFPE, ...) stay unblocked.
 */
#ifndef SLM_KERNELS_SIGNAL_GUARD_H
#define SLM_KERNELS_SIGNAL_GUARD_H

#include <signal.h>

/* Blocks asynchronous signals in this thread and in the OpenMP pool;
 * *saved receives this thread's mask for signal_guard_leave. */
void signal_guard_enter(sigset_t *saved);

/* Restores this thread's mask (pending signals are delivered now). */
void signal_guard_leave(const sigset_t *saved);

#endif

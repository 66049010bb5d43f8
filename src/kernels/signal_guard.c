/* Asynchronous signals blocked around oneDNN calls; see signal_guard.h. */
#include "kernels/signal_guard.h"

#include <omp.h>
#include <pthread.h>

/* Per thread, not shared: whether this pool worker has blocked its
 * signals already (it keeps them blocked; the check saves a syscall on
 * every later GEMM). */
static _Thread_local int worker_blocked;

static void async_signals(sigset_t *s)
{
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    sigfillset(s);
    for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++)
        sigdelset(s, synchronous[i]);
}

void signal_guard_enter(sigset_t *saved)
{
    sigset_t async;
    async_signals(&async);
    pthread_sigmask(SIG_BLOCK, &async, saved);
    /* oneDNN's parallel regions run on this thread's libgomp team: the
     * team of a region of the same size (the pool's threads, reused). A
     * worker created later inherits the creator's mask, blocked in here. */
    if (omp_in_parallel() || omp_get_max_threads() < 2) return;
#pragma omp parallel
    {
        if (omp_get_thread_num() != 0 && !worker_blocked) {
            pthread_sigmask(SIG_BLOCK, &async, NULL);
            worker_blocked = 1;
        }
    }
}

void signal_guard_leave(const sigset_t *saved)
{
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* How much memory is left, checked before big allocations: Linux overcommits,
 * so malloc of more than the machine holds "succeeds" and the process is
 * killed later by the OOM killer, page by page, with no message. */
#ifndef SLM_CORE_MEMORY_H
#define SLM_CORE_MEMORY_H

#include <stddef.h>

/* Bytes this process can still use without swapping: MemAvailable from
 * /proc/meminfo, lowered to the headroom of a cgroup v2 limit
 * (memory.max − memory.current) when one is set. 0 when unknown. */
double mem_available(void);

/* SLM_OK if `bytes` fit in mem_available() (or that is unknown), else
 * SLM_ENOMEM with "<what>: 2.5 GiB needed but only 1.2 GiB of memory
 * is available". A double so callers can add up sizes without overflow. */
int check_memory(double bytes, const char *what, char *err, size_t errlen);

#endif

/* Available memory and the check before big allocations; see memory.h. */
#include "core/memory.h"

#include "core/error.h"

#include <stdio.h>
#include <string.h>

/* The first number in a one-line file ("max" or unreadable → -1). */
static double read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[64];
    double v = -1;
    if (fgets(line, sizeof line, f) && strncmp(line, "max", 3) && sscanf(line, "%lf", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

double mem_available(void)
{
    double avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        double kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) {
                avail = kb * 1024.0;
                break;
            }
        fclose(f);
    }
    /* In a container the cgroup's limit is what the OOM killer enforces. */
    double max = read_number("/sys/fs/cgroup/memory.max");
    double used = read_number("/sys/fs/cgroup/memory.current");
    if (max > 0 && used >= 0) {
        double room = max > used ? max - used : 1;
        if (avail == 0 || room < avail) avail = room;
    }
    return avail;
}

static const char *human(double bytes, char buf[32])
{
    if (bytes >= 1073741824.0)
        snprintf(buf, 32, "%.1f GiB", bytes / 1073741824.0);
    else
        snprintf(buf, 32, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

int check_memory(double bytes, const char *what, char *err, size_t errlen)
{
    double avail = mem_available();
    if (avail <= 0 || bytes <= avail) return SLM_OK;
    char need_s[32], avail_s[32];
    return fail(err, errlen, SLM_ENOMEM, "%s: %s needed but only %s of memory is available",
                    what, human(bytes, need_s), human(avail, avail_s));
}

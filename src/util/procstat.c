/* Process figures from /proc; see procstat.h. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/procstat.h"

bool procstat_parse_stat(const char *text, long ticks, long page_size, double *cpu_seconds,
                         uint64_t *start_ticks, uint64_t *virtual_bytes, uint64_t *resident_bytes)
{
    const char *p = strrchr(text, ')');
    if (!p || ticks <= 0 || page_size <= 0)
        return false;
    p++;
    /* Field 3 (state) comes next; fields are numbered from 1 (pid). */
    uint64_t v[25] = {0};
    int field = 3;
    while (field <= 24) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return false;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\n')
            p++;
        if (field >= 14) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(start, &end, 10);
            if (end != p || errno)
                return false;
            v[field] = n;
        }
        field++;
    }
    *cpu_seconds = (double)(v[14] + v[15]) / (double)ticks;
    *start_ticks = v[22];
    *virtual_bytes = v[23];
    *resident_bytes = v[24] * (uint64_t)page_size;
    return true;
}

bool procstat_parse_btime(const char *text, uint64_t *btime)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        unsigned long long v;
        if (strncmp(line, "btime ", 6) == 0 && sscanf(line + 6, "%llu", &v) == 1) {
            *btime = v;
            return true;
        }
    }
    return false;
}

bool procstat_parse_max_fds(const char *text, int64_t *max_fds)
{
    const char *p = strstr(text, "Max open files");
    if (!p)
        return false;
    p += strlen("Max open files");
    while (*p == ' ')
        p++;
    if (strncmp(p, "unlimited", 9) == 0) {
        *max_fds = INT64_MAX;
        return true;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0)
        return false;
    *max_fds = v;
    return true;
}

/* Reads a small /proc file into buf (NUL-terminated); false if it cannot. */
static bool read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* The boot time, from the "btime" line of /proc/stat (whose "intr" line
 * alone can be longer than any fixed buffer). */
static bool read_btime(uint64_t *btime)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0)
        found = strncmp(line, "btime ", 6) == 0 && procstat_parse_btime(line, btime);
    free(line);
    fclose(f);
    return found;
}

void procstat_self(struct procstat *ps)
{
    memset(ps, 0, sizeof *ps);
    ps->open_fds = count_fds();
    ps->max_fds = -1;
    char text[8192];
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    uint64_t start_ticks = 0, btime = 0;
    if (read_small("/proc/self/stat", text, sizeof text) &&
        procstat_parse_stat(text, ticks, page, &ps->cpu_seconds, &start_ticks, &ps->virtual_bytes,
                            &ps->resident_bytes) &&
        read_btime(&btime))
        ps->start_time_seconds = (double)btime + (double)start_ticks / (double)ticks;
    if (read_small("/proc/self/limits", text, sizeof text))
        procstat_parse_max_fds(text, &ps->max_fds);
}

/* Standard Prometheus process collectors and mutt_build_info. The values are read from
 * /proc/self (procfs, not disk: a few hundred bytes per scrape) and getrlimit when /metrics is
 * rendered; nothing is cached except the start time, which cannot change. Linux only. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mutt/error.h"
#include "mutt/metrics.h"

/* Reads a small procfs file into buf (NUL-terminated). Returns the length or -1. open/read
 * rather than stdio: one syscall pair, no buffer allocation. */
static ssize_t read_small_file(const char *path, char *buf, size_t buflen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, buflen - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Field `index` (1-based, as in proc(5)) of /proc/self/stat, as an unsigned number. Parsing
 * starts after the last ')' because the command name (field 2) may contain spaces and parens. */
static int read_stat_field(int index, unsigned long long *out)
{
    char buf[1024];
    if (read_small_file("/proc/self/stat", buf, sizeof(buf)) < 0)
        return MUTT_EIO;
    char *p = strrchr(buf, ')');
    if (!p)
        return MUTT_EIO;
    p++;
    for (int field = 3; field <= index; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return MUTT_EIO;
        if (field == index) {
            char *end;
            *out = strtoull(p, &end, 10);
            return end == p ? MUTT_EIO : 0;
        }
        while (*p && *p != ' ')
            p++;
    }
    return MUTT_EIO;
}

/* /proc/self/statm: field 0 = size (pages), field 1 = resident (pages). */
static double statm_bytes(int field)
{
    char buf[256];
    if (read_small_file("/proc/self/statm", buf, sizeof(buf)) < 0)
        return 0;
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (double)(field == 0 ? size : resident) * (double)(page > 0 ? page : 4096);
}

static double rss_bytes(void *arg)
{
    (void)arg;
    return statm_bytes(1);
}

static double vms_bytes(void *arg)
{
    (void)arg;
    return statm_bytes(0);
}

static double cpu_seconds(void *arg)
{
    (void)arg;
    unsigned long long utime = 0, stime = 0;
    if (read_stat_field(14, &utime) != 0 || read_stat_field(15, &stime) != 0)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
}

static double open_fds(void *arg)
{
    (void)arg;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int own = dirfd(d);
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == own) /* the directory stream itself is not ours to count */
            continue;
        n++;
    }
    closedir(d);
    return n;
}

static double max_fds(void *arg)
{
    (void)arg;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur == RLIM_INFINITY)
        return (double)(1ULL << 53);
    return (double)rl.rlim_cur;
}

/* Seconds since the epoch: boot time (btime in /proc/stat) + starttime ticks (stat field 22). */
static double start_time_seconds(void)
{
    unsigned long long start_ticks = 0;
    if (read_stat_field(22, &start_ticks) != 0)
        return 0;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[512];
    unsigned long long btime = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    if (btime == 0)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)btime + (double)start_ticks / (double)(hz > 0 ? hz : 100);
}

int mutt_metrics_register_process(struct mutt_metrics *m, const char *version, const char *git_rev,
                                  const char *pod, const char *roles)
{
    if (!m)
        return MUTT_EINVAL;
    int rc = mutt_metrics_gauge_fn(m, "process_resident_memory_bytes", "Resident memory size in bytes.",
                                   rss_bytes, NULL);
    if (rc)
        return rc;
    rc = mutt_metrics_gauge_fn(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                               vms_bytes, NULL);
    if (rc)
        return rc;
    rc = mutt_metrics_counter_fn(m, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                 cpu_seconds, NULL);
    if (rc)
        return rc;
    rc = mutt_metrics_gauge_fn(m, "process_open_fds", "Number of open file descriptors.", open_fds, NULL);
    if (rc)
        return rc;
    rc = mutt_metrics_gauge_fn(m, "process_max_fds", "Maximum number of open file descriptors.", max_fds,
                               NULL);
    if (rc)
        return rc;

    struct mutt_gauge *start = mutt_metrics_gauge(m, "process_start_time_seconds",
                                                  "Start time of the process since unix epoch in seconds.", NULL);
    if (!start)
        return MUTT_ENOMEM;
    mutt_gauge_set(start, start_time_seconds());

    static const char *const build_labels[] = {"version", "git_rev", "pod", "roles", NULL};
    struct mutt_gauge *info = mutt_metrics_gauge(m, "mutt_build_info", "MUTT build and pod identity; always 1.",
                                                 build_labels);
    const char *values[] = {version, git_rev, pod, roles};
    struct mutt_gauge *child = mutt_gauge_labels(info, values);
    if (!child)
        return MUTT_ENOMEM;
    mutt_gauge_set(child, 1);
    return 0;
}

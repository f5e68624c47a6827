/* sd_notify(3)'s wire protocol, written out so the binary does not link libsystemd: one
 * datagram of newline-separated KEY=VALUE assignments to the unix socket named by
 * $NOTIFY_SOCKET. A fresh socket per message keeps this stateless; messages are rare (start,
 * stop, one watchdog ping every few seconds). */
#define _GNU_SOURCE
#include "mutt/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mutt/error.h"
#include "mutt/log.h"

int mutt_sdnotify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    size_t plen = strlen(path);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    /* Only absolute paths and abstract names ("@..." → leading NUL) are valid, as in libsystemd. */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
        return MUTT_EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    /* Abstract names are length-delimited, so the address length must not include a NUL. */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return MUTT_EIO;
    ssize_t n;
    do
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0) {
        mutt_log_warn("sdnotify", "cannot notify systemd (%s): %s", state, strerror(saved));
        return MUTT_EIO;
    }
    return 1;
}

int mutt_sdnotify_ready(void)
{
    return mutt_sdnotify("READY=1");
}

int mutt_sdnotify_stopping(void)
{
    return mutt_sdnotify("STOPPING=1");
}

int mutt_sdnotify_watchdog(void)
{
    return mutt_sdnotify("WATCHDOG=1");
}

uint64_t mutt_sdnotify_watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC");
    if (us == NULL || us[0] == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(us, &end, 10);
    if (errno != 0 || end == us || *end != '\0' || v == 0)
        return 0;
    /* WATCHDOG_PID says which process the watchdog is for: a child we might exec must not ping
     * on its parent's behalf (same rule as sd_watchdog_enabled). */
    const char *pid = getenv("WATCHDOG_PID");
    if (pid != NULL && pid[0] != '\0') {
        char *pend = NULL;
        long p = strtol(pid, &pend, 10);
        if (pend == pid || *pend != '\0' || p != (long)getpid())
            return 0;
    }
    return (uint64_t)v;
}

struct mutt_sdnotify_watchdog {
    uv_timer_t timer;
};

static void on_watchdog_tick(uv_timer_t *t)
{
    mutt_sdnotify_watchdog();
}

static void on_watchdog_closed(uv_handle_t *h)
{
    free(h->data);
}

struct mutt_sdnotify_watchdog *mutt_sdnotify_watchdog_start(uv_loop_t *loop)
{
    uint64_t usec = mutt_sdnotify_watchdog_usec();
    if (usec == 0 || getenv("NOTIFY_SOCKET") == NULL)
        return NULL;
    struct mutt_sdnotify_watchdog *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    /* Half the interval, as systemd.service(5) recommends; at least 1 ms for tiny test values. */
    uint64_t ms = usec / 2000u;
    if (ms == 0)
        ms = 1;
    uv_timer_start(&w->timer, on_watchdog_tick, ms, ms);
    uv_unref((uv_handle_t *)&w->timer);
    mutt_sdnotify_watchdog(); /* a first ping now: start-up may have taken a while */
    return w;
}

void mutt_sdnotify_watchdog_stop(struct mutt_sdnotify_watchdog *w)
{
    if (w == NULL)
        return;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_watchdog_closed);
}

/* systemd's notify protocol without libsystemd: READY=1 / STOPPING=1 / WATCHDOG=1 as one
 * datagram to $NOTIFY_SOCKET (a unix SOCK_DGRAM path, or "@name" for the abstract namespace),
 * and the watchdog keep-alive timer on the loop. Every call is a no-op when the process was
 * not started by systemd with Type=notify, so callers never check. */
#ifndef MUTT_SDNOTIFY_H
#define MUTT_SDNOTIFY_H

#include <stdint.h>
#include <uv.h>

/* Sends `state` (e.g. "READY=1\nSTATUS=running") to $NOTIFY_SOCKET. Returns 1 when sent, 0 when
 * NOTIFY_SOCKET is unset (nothing to do), MUTT_EINVAL for a malformed socket path, MUTT_EIO when
 * the send failed. Never blocks: the socket is non-blocking and a full receiver queue (EAGAIN)
 * reports MUTT_EIO instead of waiting. */
int mutt_sdnotify(const char *state);

int mutt_sdnotify_ready(void);    /* "READY=1" */
int mutt_sdnotify_stopping(void); /* "STOPPING=1" */
int mutt_sdnotify_watchdog(void); /* "WATCHDOG=1" */

/* The watchdog interval systemd asks for, from $WATCHDOG_USEC (µs), honouring $WATCHDOG_PID
 * (ignored when it names another process). 0 when no watchdog is wanted. */
uint64_t mutt_sdnotify_watchdog_usec(void);

/* A loop timer that sends WATCHDOG=1 every half of $WATCHDOG_USEC, so a stalled loop (the only
 * thing that could block every stage at once) gets the process restarted. Returns NULL when no
 * watchdog is wanted or on OOM (then nothing runs). The timer is unref'd: it never keeps the
 * loop alive on its own. */
struct mutt_sdnotify_watchdog;
struct mutt_sdnotify_watchdog *mutt_sdnotify_watchdog_start(uv_loop_t *loop);
/* Stops the timer and frees it once the handle has closed. NULL is fine. */
void mutt_sdnotify_watchdog_stop(struct mutt_sdnotify_watchdog *w);

#endif

/* Our own hiredis 0.14 <-> libuv glue (notes/stack-notes.md §3.2). The stock 0.14 adapter returns
 * on any uv_poll error status, so a refused or reset socket is never reported to hiredis and the
 * context hangs forever; here an error becomes a read/write attempt so hiredis sees the errno
 * and runs its connect/disconnect path. Loop thread only. */
#include "redis_uv.h"

#include <stdlib.h>

#include "mutt/error.h"

struct glue {
    redisAsyncContext *ac; /* NULL once hiredis ran the cleanup hook */
    uv_poll_t poll;
    int events;            /* UV_READABLE | UV_WRITABLE currently requested by hiredis */
};

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct glue *g = h->data;
    /* libuv reports POLLERR/POLLHUP as a negative status and stops nothing we rely on: let
     * hiredis try the I/O it asked for, which surfaces the socket error through its own path */
    if (status < 0)
        events = g->events ? g->events : UV_WRITABLE;
    if (g->ac && (events & UV_READABLE))
        redisAsyncHandleRead(g->ac);
    /* re-check: the read may have freed the context (cleanup hook cleared g->ac) */
    if (g->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(g->ac);
}

static void update(struct glue *g, int add, int del)
{
    int ev = (g->events | add) & ~del;
    /* hiredis calls addWrite for every command: skip no-op restarts, but restart a handle that
     * libuv stopped after an error */
    if (ev == g->events && (ev == 0 || uv_is_active((uv_handle_t *)&g->poll)))
        return;
    g->events = ev;
    if (ev)
        uv_poll_start(&g->poll, ev, on_poll);
    else
        uv_poll_stop(&g->poll);
}

static void add_read(void *d) { update(d, UV_READABLE, 0); }
static void del_read(void *d) { update(d, 0, UV_READABLE); }
static void add_write(void *d) { update(d, UV_WRITABLE, 0); }
static void del_write(void *d) { update(d, 0, UV_WRITABLE); }

static void on_glue_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *d)
{
    struct glue *g = d;
    g->ac = NULL;
    /* hiredis closes the fd right after this hook: take the handle off the fd first */
    uv_close((uv_handle_t *)&g->poll, on_glue_closed);
}

int mutt_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return MUTT_EIO;
    struct glue *g = calloc(1, sizeof(*g));
    if (!g)
        return MUTT_ENOMEM;
    if (uv_poll_init(loop, &g->poll, ac->c.fd) != 0) {
        free(g);
        return MUTT_EIO;
    }
    g->ac = ac;
    g->poll.data = g;
    ac->ev.data = g;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

/* Accepted connections of the harness's HTTP servers (mutt-sink, vault-standin) and their clean
 * stop. h2o 2.2 asserts in h2o_context_dispose (h2o_timeout_dispose: "timeout->_entries" not
 * empty) while any connection is still open, e.g. an idle keep-alive connection of MUTT's
 * libcurl pool, so a server that disposed its context right after SIGTERM aborted whenever a
 * client was connected. Stopping therefore half-closes every connection, lets h2o read EOF and
 * tear each one down itself, and reports "drained" once the last one is gone; only then may the
 * context be disposed. The same scheme as src/io/http_server.c, for tools that link no MUTT
 * module. Header-only (static inline); loop thread only. */
#ifndef MUTT_TESTS_H2O_CONNS_H
#define MUTT_TESTS_H2O_CONNS_H

#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>
#include <h2o.h>

struct harness_conn {
    uv_tcp_t tcp; /* first: h2o hands this handle back to on_harness_conn_closed */
    struct harness_conns *owner;
    struct harness_conn *prev, *next;
};

struct harness_conns {
    h2o_accept_ctx_t *accept; /* borrowed; set before the first accept */
    struct harness_conn *head;
    size_t open;              /* accepted and not yet closed */
    int stopping;
    uv_timer_t give_up;       /* started by harness_conns_stop */
    void (*on_drained)(struct harness_conns *cs, int all_closed);
};

static inline void harness_conns_finish(struct harness_conns *cs, int all_closed)
{
    void (*cb)(struct harness_conns *, int) = cs->on_drained;
    cs->on_drained = NULL; /* once */
    uv_timer_stop(&cs->give_up);
    if (!uv_is_closing((uv_handle_t *)&cs->give_up))
        uv_close((uv_handle_t *)&cs->give_up, NULL);
    if (cb)
        cb(cs, all_closed);
}

static inline void on_harness_conn_closed(uv_handle_t *handle)
{
    struct harness_conn *c = (struct harness_conn *)handle;
    struct harness_conns *cs = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cs->open--;
    free(c);
    if (cs->stopping && cs->open == 0 && cs->on_drained)
        harness_conns_finish(cs, 1);
}

/* The listener's connection callback body: accepts one connection and hands it to h2o. */
static inline void harness_conns_accept(struct harness_conns *cs, uv_stream_t *listener)
{
    struct harness_conn *c = h2o_mem_alloc(sizeof(*c));
    c->owner = cs;
    c->prev = NULL;
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    cs->open++;
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_harness_conn_closed);
        return;
    }
    h2o_accept(cs->accept, h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_harness_conn_closed));
}

static inline void on_harness_conns_give_up(uv_timer_t *t)
{
    struct harness_conns *cs = t->data;
    harness_conns_finish(cs, 0);
}

/* Half-closes every open connection; on_drained(cs, 1) runs once the last one has closed (at once
 * when none is open), or on_drained(cs, 0) after give_up_ms with some still open (then the
 * caller must not dispose the h2o context). The caller stops its listener first. */
static inline void harness_conns_stop(struct harness_conns *cs, uv_loop_t *loop, unsigned give_up_ms,
                                      void (*on_drained)(struct harness_conns *, int))
{
    cs->stopping = 1;
    cs->on_drained = on_drained;
    uv_timer_init(loop, &cs->give_up);
    cs->give_up.data = cs;
    uv_timer_start(&cs->give_up, on_harness_conns_give_up, give_up_ms, 0);
    for (struct harness_conn *c = cs->head; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (!uv_is_closing((uv_handle_t *)&c->tcp) && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    if (cs->open == 0)
        harness_conns_finish(cs, 1);
}

#endif

/* PostgreSQL adapter: a small pool of nonblocking libpq connections watched with uv_poll, a
 * bounded FIFO of parameterised queries, per-query deadlines, reconnect with capped backoff and
 * CURRENT/NEXT passwords. Knows no table. Loop thread only (stack-notes §3.3, poc.c). This file is
 * the pool: connection slots, their poll and timer, dispatch and the lifecycle; connect attempts
 * and the host walk are in pg_connect.c, the queue and each op's steps in pg_query.c, conninfo
 * strings in pg_conninfo.c.
 *
 * Invariants that keep "exactly one callback" true:
 *  - an op is either in pg->queue or attached to exactly one conn (conn->op), never both;
 *  - public entry points (query, transaction, start) never call a user callback: failures that
 *    libpq reports synchronously are deferred to the conn's timer (state CONN_BROKEN);
 *  - before a user callback runs, the op is detached and the conn is left in a consistent state,
 *    and after it returns we re-check pg->stopping (the callback may have called stop). */
#include "mutt/pg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg_hosts.h"
#include "pg_internal.h"

#define PG_DEFAULT_QUEUE_MAX 1024

static void on_poll(uv_poll_t *h, int status, int events);

/* ---------------------------------------------------------------- small helpers */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* libpq messages are multi-line and end with '\n': keep one log-friendly line. */
void pg_copy_reason(char *dst, const char *src)
{
    size_t n = 0;
    for (const char *p = src ? src : "unknown error"; *p && n + 1 < PG_REASON_MAX; p++)
        dst[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

bool pg_any_up(const struct mutt_pg *pg)
{
    for (int i = 0; i < pg->opts.pool_max; i++)
        if (pg->conns[i].state == CONN_READY || pg->conns[i].state == CONN_BUSY)
            return true;
    return false;
}

/* ---------------------------------------------------------------- poll handle */

static void free_poll(uv_handle_t *h)
{
    free(h);
}

/* Stop polling BEFORE PQfinish closes the fd: libuv must never poll a closed fd. */
static void conn_unwatch(struct pg_conn *c)
{
    if (c->poll) {
        uv_poll_stop(c->poll);
        uv_close((uv_handle_t *)c->poll, free_poll);
        c->poll = NULL;
    }
    c->fd = -1;
}

/* (Re)arms the poll on the CURRENT libpq socket: PQsocket() can change during connect. */
int pg_conn_watch(struct pg_conn *c, int events)
{
    int fd = PQsocket(c->conn);
    if (fd < 0)
        return MUTT_EIO;
    if (c->poll && fd != c->fd)
        conn_unwatch(c);
    if (!c->poll) {
        uv_poll_t *p = malloc(sizeof(*p));
        if (!p)
            return MUTT_ENOMEM;
        if (uv_poll_init_socket(c->pg->loop, p, fd) != 0) {
            free(p);
            return MUTT_EIO;
        }
        p->data = c;
        c->poll = p;
        c->fd = fd;
    }
    /* During connect libpq may close the socket and open a new one under the SAME number (SSL or
     * multi-host retries, stack-notes §3.3). The kernel drops the epoll registration with the old
     * socket, and a plain uv_poll_start would then EPOLL_CTL_MOD it (ENOENT: libuv aborts).
     * uv_poll_stop deletes the registration, so the start that follows is a fresh ADD. */
    if (c->state == CONN_CONNECTING)
        uv_poll_stop(c->poll);
    return uv_poll_start(c->poll, events, on_poll) == 0 ? 0 : MUTT_EIO;
}

/* Releases everything the conn holds except its op and its timer handle; safe to repeat. */
void pg_conn_close(struct pg_conn *c)
{
    if (c->resolve) {
        c->resolve->conn = NULL;
        uv_cancel((uv_req_t *)&c->resolve->req);
        c->resolve = NULL;
    }
    conn_unwatch(c);
    if (c->cur) {
        PQclear(c->cur);
        c->cur = NULL;
    }
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    uv_timer_stop(&c->timer);
    c->reached_ready = false;
    c->state = CONN_UNUSED;
}

/* A failure seen inside a public entry point (or mid-step) is handled from the timer, so no user
 * callback ever runs before mutt_pg_query() has returned. */
void pg_conn_defer_failure(struct pg_conn *c, const char *why)
{
    pg_copy_reason(c->reason, why);
    c->state = CONN_BROKEN;
    uv_timer_start(&c->timer, pg_on_conn_timer, 0, 0);
}

/* Base slots (below pool_min) always reconnect; extra slots only while work is waiting. */
void pg_conn_schedule(struct pg_conn *c, uint64_t delay_ms)
{
    struct mutt_pg *pg = c->pg;
    if (pg->stopping)
        return;
    if (c->slot >= pg->opts.pool_min && pg->queue_len == 0) {
        c->state = CONN_UNUSED;
        return;
    }
    c->state = CONN_BACKOFF;
    uv_timer_start(&c->timer, pg_on_conn_timer, delay_ms, 0);
}

/* ---------------------------------------------------------------- events */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pg_conn *c = h->data;
    switch (c->state) {
    case CONN_CONNECTING:
        /* Also on status < 0: libpq reads the socket error itself and reports FAILED. */
        pg_connect_step(c, PQconnectPoll(c->conn));
        return;
    case CONN_READY:
    case CONN_BUSY:
        break;
    default:
        return;
    }
    if (status < 0) {
        pg_conn_lost(c, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(c->conn);
        if (f < 0) {
            pg_conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
        if (f == 0 && pg_conn_watch(c, UV_READABLE) != 0) {
            pg_conn_lost(c, "cannot watch the connection socket");
            return;
        }
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
            pg_conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->conn)) != NULL) /* nobody LISTENs; drain so they cannot pile up */
            PQfreemem(n);
        if (c->state == CONN_BUSY)
            pg_on_readable_busy(c);
    }
}

void pg_on_conn_timer(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    switch (c->state) {
    case CONN_BACKOFF:
        pg_start_connect(c);
        return;
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        pg_connect_failed(c, "connect timeout");
        return;
    case CONN_BUSY:
        pg_query_timed_out(c);
        return;
    case CONN_BROKEN: {
        char reason[PG_REASON_MAX];
        memcpy(reason, c->reason, sizeof(reason));
        if (c->reached_ready)
            pg_conn_lost(c, reason);
        else
            pg_connect_failed(c, reason);
        return;
    }
    default:
        return;
    }
}

/* Hands queued ops to idle connections, then grows the pool while work is waiting. Re-entrant
 * calls (a callback queueing more) just ask the outer call for another round. */
void pg_dispatch(struct mutt_pg *pg)
{
    if (pg->dispatching) {
        pg->dispatch_again = true;
        return;
    }
    pg->dispatching = true;
    do {
        pg->dispatch_again = false;
        for (int i = 0; i < pg->opts.pool_max && pg->queue_head && !pg->stopping; i++) {
            struct pg_conn *c = &pg->conns[i];
            if (c->state == CONN_READY)
                pg_conn_send_op(c, pg_queue_pop(pg));
        }
        if (pg->stopping || !pg->queue_head)
            break;
        size_t coming = 0;
        for (int i = 0; i < pg->opts.pool_max; i++) {
            enum conn_state st = pg->conns[i].state;
            if (st == CONN_BACKOFF || st == CONN_RESOLVING || st == CONN_CONNECTING)
                coming++;
        }
        for (int i = 0; i < pg->opts.pool_max && pg->queue_len > coming; i++) {
            struct pg_conn *c = &pg->conns[i];
            if (c->state != CONN_UNUSED)
                continue;
            coming++;
            pg_start_connect(c);
        }
    } while (pg->dispatch_again && !pg->stopping);
    pg->dispatching = false;
}

/* ---------------------------------------------------------------- public API */

struct mutt_pg *mutt_pg_create(uv_loop_t *loop, const struct mutt_pg_opts *opts)
{
    if (!loop || !opts)
        return NULL;
    struct mutt_pg *pg = calloc(1, sizeof(*pg));
    if (!pg)
        return NULL;
    pg->loop = loop;
    pg->opts = *opts;
    pg->opts.host = dup_or_null(opts->host);
    pg->opts.ports = NULL; /* parsed into pg->hosts below; not kept */
    pg->opts.target_session_attrs = NULL;
    pg->opts.dbname = dup_or_null(opts->dbname);
    pg->opts.user = dup_or_null(opts->user);
    pg->opts.pass_current = dup_or_null(opts->pass_current);
    pg->opts.pass_next = dup_or_null(opts->pass_next);
    pg->opts.ca_file = dup_or_null(opts->ca_file);
    pg->opts.application_name = dup_or_null(opts->application_name);
    if (pg->opts.pool_min < 1)
        pg->opts.pool_min = 1;
    if (pg->opts.pool_max < pg->opts.pool_min)
        pg->opts.pool_max = pg->opts.pool_min;
    if (pg->opts.queue_max == 0)
        pg->opts.queue_max = PG_DEFAULT_QUEUE_MAX;
    pg->conns = calloc((size_t)pg->opts.pool_max, sizeof(*pg->conns));
    if (!pg->conns || (opts->host && !pg->opts.host) || (opts->dbname && !pg->opts.dbname) ||
        (opts->user && !pg->opts.user) || (opts->pass_current && !pg->opts.pass_current) ||
        (opts->pass_next && !pg->opts.pass_next) || (opts->ca_file && !pg->opts.ca_file) ||
        (opts->application_name && !pg->opts.application_name)) {
        mutt_pg_destroy(pg);
        return NULL;
    }
    char why[128];
    pg->nhosts = mutt_pg_hosts_parse(opts->host, opts->ports, pg->hosts, MUTT_PG_MAX_HOSTS, why, sizeof why);
    if (pg->nhosts < 0) {
        mutt_log_error("pg", "DB_HOST/DB_PORT: %s", why);
        mutt_pg_destroy(pg);
        return NULL;
    }
    if (!(opts->ports && opts->ports[0]) && pg->opts.port > 0)
        for (int i = 0; i < pg->nhosts; i++)
            pg->hosts[i].port = pg->opts.port;
    for (int i = 0; i < pg->nhosts; i++) {
        const char *h = pg->hosts[i].host;
        unsigned char buf[sizeof(struct in6_addr)];
        pg->host_is_name[i] = h[0] && h[0] != '/' && inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1;
    }
    const char *tsa = pg_effective_tsa(opts, pg->nhosts);
    snprintf(pg->tsa, sizeof pg->tsa, "%s", tsa ? tsa : "");
    pg->up_host = -1;
    for (int i = 0; i < pg->opts.pool_max; i++) {
        pg->conns[i].pg = pg;
        pg->conns[i].slot = i;
        pg->conns[i].fd = -1;
    }
    return pg;
}

int mutt_pg_start(struct mutt_pg *pg)
{
    if (!pg)
        return MUTT_EINVAL;
    if (pg->started || pg->stopping)
        return MUTT_ESTATE;
    for (int i = 0; i < pg->opts.pool_max; i++) {
        uv_timer_init(pg->loop, &pg->conns[i].timer);
        pg->conns[i].timer.data = &pg->conns[i];
    }
    pg->started = true;
    for (int i = 0; i < pg->opts.pool_min; i++)
        pg_start_connect(&pg->conns[i]);
    return 0;
}

static void pg_free(struct mutt_pg *pg)
{
    free((char *)pg->opts.host);
    free((char *)pg->opts.dbname);
    free((char *)pg->opts.user);
    free_secret((char *)pg->opts.pass_current);
    free_secret((char *)pg->opts.pass_next);
    free((char *)pg->opts.ca_file);
    free((char *)pg->opts.application_name);
    free(pg->conns);
    free(pg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct pg_conn *c = h->data;
    struct mutt_pg *pg = c->pg;
    if (--pg->pending_closes == 0 && pg->destroy_requested)
        pg_free(pg);
}

void mutt_pg_stop(struct mutt_pg *pg)
{
    if (!pg || pg->stopping)
        return;
    pg->stopping = true;
    /* Collect in-flight ops first (they were accepted earliest), then the queue. */
    struct pg_op *head = NULL, **tail = &head;
    for (int i = 0; i < pg->opts.pool_max; i++) {
        struct pg_conn *c = &pg->conns[i];
        if (c->op) {
            *tail = c->op;
            tail = &c->op->next;
            c->op->next = NULL;
            c->op = NULL;
        }
        if (pg->started) {
            pg_conn_close(c);
            pg->pending_closes++;
            uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        }
    }
    *tail = pg->queue_head;
    pg->queue_head = pg->queue_tail = NULL;
    pg->queue_len = 0;
    while (head) {
        struct pg_op *op = head;
        head = op->next;
        pg_op_complete(op, NULL, MUTT_ECANCELED);
    }
}

void mutt_pg_destroy(struct mutt_pg *pg)
{
    if (!pg)
        return;
    mutt_pg_stop(pg);
    pg->destroy_requested = true;
    if (pg->pending_closes == 0)
        pg_free(pg); /* else the last timer close callback frees it */
}

void mutt_pg_set_passwords(struct mutt_pg *pg, const char *current, const char *next)
{
    if (!pg)
        return;
    char *cur = dup_or_null(current), *nxt = dup_or_null(next);
    if ((current && !cur) || (next && !nxt)) { /* keep the old pair rather than half of a new one */
        free_secret(cur);
        free_secret(nxt);
        return;
    }
    free_secret((char *)pg->opts.pass_current);
    free_secret((char *)pg->opts.pass_next);
    pg->opts.pass_current = cur;
    pg->opts.pass_next = nxt;
}

void mutt_pg_set_user(struct mutt_pg *pg, const char *user)
{
    if (!pg || !user || !*user)
        return;
    char *copy = strdup(user);
    if (!copy) /* keep the old user rather than none */
        return;
    free((char *)pg->opts.user);
    pg->opts.user = copy;
}

bool mutt_pg_connected(const struct mutt_pg *pg)
{
    return pg && pg->started && !pg->stopping && pg_any_up(pg);
}

const char *mutt_pg_host_in_use(const struct mutt_pg *pg, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    if (!mutt_pg_connected(pg))
        return buf;
    int host = -1;
    for (int i = 0; i < pg->opts.pool_max; i++) {
        const struct pg_conn *c = &pg->conns[i];
        if (c->state != CONN_READY && c->state != CONN_BUSY)
            continue;
        if (host < 0 || c->host == pg->up_host)
            host = c->host;
    }
    if (host >= 0)
        mutt_pg_host_format(&pg->hosts[host], buf, len);
    return buf;
}

/* One PostgreSQL connect attempt on a pool slot (resolve on the threadpool, PQconnectStart, then
 * PQconnectPoll under uv_poll), and what follows a failure: the NEXT password, the next host of
 * the list (D38, D55), or a backoff once every host failed. Loop thread only. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/backoff.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg_hosts.h"
#include "pg_internal.h"

#define PG_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PG_RECONNECT_BASE_MS 200   /* first retry after a failed connect attempt */
#define PG_RECONNECT_MAX_MS 5000   /* backoff cap: a restarted server is found within 5 s */

static uint64_t backoff_ms(unsigned failed_attempts)
{
    static const struct mutt_backoff b = {
        .base_ms = PG_RECONNECT_BASE_MS,
        .max_ms = PG_RECONNECT_MAX_MS,
        .jitter = MUTT_BACKOFF_JITTER_NONE,
    };
    if (failed_attempts == 0)
        return 0;
    return mutt_backoff_ms(&b, failed_attempts - 1, 0);
}

void pg_connect_failed(struct pg_conn *c, const char *why)
{
    struct mutt_pg *pg = c->pg;
    char reason[PG_REASON_MAX];
    pg_copy_reason(reason, why);
    /* Read before PQfinish: did the server ask for a password? Then CURRENT may be stale. */
    bool used_password = c->conn && PQconnectionUsedPassword(c->conn);
    pg_conn_close(c);
    if (pg->stopping)
        return;
    if (c->pw_index == 0 && used_password && pg->opts.pass_next && *pg->opts.pass_next) {
        mutt_log_warn("pg", "connection %d: authentication with the current password failed (%s); trying the next password",
                      c->slot, reason);
        c->pw_index = 1;
        pg_start_connect(c);
        return;
    }
    c->pw_index = 0;
    char where[MUTT_PG_HOST_MAX + 16];
    mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where);
    /* D55: the next attempt (this slot's and every other's) starts at the following host, so a
     * host that hangs until the connect deadline is not tried first again. */
    int next = (c->host + 1) % pg->nhosts;
    if (pg->cur_host == c->host)
        pg->cur_host = next;
    if (++c->hosts_tried < pg->nhosts) {
        mutt_log_warn("pg", "connection %d to %s failed (%s); trying the next host", c->slot, where, reason);
        c->host = next;
        pg_start_connect(c);
        return;
    }
    c->hosts_tried = 0;
    c->failed_attempts++;
    pg->pg_connect_failed = true;
    uint64_t delay = backoff_ms(c->failed_attempts);
    /* Fail fast: with nothing up and every host failed, waiting work would only wait longer. */
    struct pg_op *waiting = pg_any_up(pg) ? NULL : pg_queue_take_all(pg);
    pg_conn_schedule(c, delay);
    if (c->state == CONN_BACKOFF)
        mutt_log_warn("pg", "connection %d to %s failed (%s); retry in %llu ms", c->slot, where, reason,
                      (unsigned long long)delay);
    else
        mutt_log_warn("pg", "connection %d to %s failed (%s); slot released (pool above pool_min)", c->slot, where,
                      reason);
    pg_fail_list(waiting, MUTT_EDISCONNECTED);
}

void pg_connect_step(struct pg_conn *c, PostgresPollingStatusType st)
{
    struct mutt_pg *pg = c->pg;
    switch (st) {
    case PGRES_POLLING_READING:
        if (pg_conn_watch(c, UV_READABLE) != 0)
            pg_conn_defer_failure(c, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_WRITING:
        if (pg_conn_watch(c, UV_WRITABLE) != 0)
            pg_conn_defer_failure(c, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->conn, 1) != 0 || pg_conn_watch(c, UV_READABLE) != 0) {
            pg_conn_defer_failure(c, PQerrorMessage(c->conn));
            return;
        }
        uv_timer_stop(&c->timer);
        if (c->failed_attempts > 0 || pg->pg_connect_failed || c->hosts_tried > 0 || c->host != pg->up_host) {
            char where[MUTT_PG_HOST_MAX + 16];
            mutt_log_info("pg", "connection %d up on %s (server %d)", c->slot,
                          mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where), PQserverVersion(c->conn));
        }
        c->hosts_tried = 0;
        pg->cur_host = c->host;
        pg->up_host = c->host;
        if (c->pw_index == 1)
            mutt_log_warn("pg", "connection %d authenticated with the next password", c->slot);
        c->state = CONN_READY;
        c->reached_ready = true;
        c->failed_attempts = 0;
        c->pw_index = 0;
        pg->pg_connect_failed = false;
        pg_dispatch(pg);
        return;
    default:
        /* Deferred even here: we may be inside mutt_pg_query() -> pg_dispatch() -> spawn. */
        pg_conn_defer_failure(c, PQerrorMessage(c->conn));
        return;
    }
}

static void on_notice(void *arg, const char *message)
{
    struct pg_conn *c = arg;
    char line[PG_REASON_MAX];
    pg_copy_reason(line, message);
    if (strncmp(line, "WARNING", 7) == 0)
        mutt_log_warn("pg", "connection %d: server says: %s", c->slot, line);
    else
        mutt_log_debug("pg", "connection %d: server says: %s", c->slot, line);
}

static void connect_with_hostaddr(struct pg_conn *c, const char *host, const char *hostaddr)
{
    struct mutt_pg *pg = c->pg;
    const char *pw = c->pw_index == 0 ? pg->opts.pass_current : pg->opts.pass_next;
    char port[16];
    snprintf(port, sizeof port, "%d", pg->hosts[c->host].port);
    char *ci = pg_build_conninfo(&pg->opts, pw, host, hostaddr, port, pg->tsa, false);
    if (!ci) {
        pg_conn_defer_failure(c, "out of memory");
        return;
    }
    c->conn = PQconnectStart(ci);
    explicit_bzero(ci, strlen(ci));
    free(ci);
    c->state = CONN_CONNECTING;
    c->reached_ready = false;
    if (!c->conn) {
        pg_conn_defer_failure(c, "out of memory");
        return;
    }
    PQsetNoticeProcessor(c->conn, on_notice, c);
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        pg_conn_defer_failure(c, PQerrorMessage(c->conn));
        return;
    }
    /* libpq docs: behave as if PQconnectPoll had last returned PGRES_POLLING_WRITING. */
    pg_connect_step(c, PGRES_POLLING_WRITING);
}

#define PG_MAX_ADDRS 4

/* Every address of the name goes to libpq as a multi-host list (host=n,n hostaddr=a,b), so a
 * server listening on IPv4 only is still found when the name resolves to ::1 first. */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct pg_resolve *r = req->data;
    struct pg_conn *c = r->conn;
    free(r);
    if (!c) { /* the conn gave up (stop or deadline) */
        uv_freeaddrinfo(res);
        return;
    }
    c->resolve = NULL;
    const char *name = c->pg->hosts[c->host].host;
    struct sbuf hosts = {0}, addrs = {0};
    int n = 0;
    for (struct addrinfo *ai = status == 0 ? res : NULL; ai && n < PG_MAX_ADDRS; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (ai->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
        else if (ai->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
        if (!ip[0]) /* hints ask for SOCK_STREAM only, so each address comes once */
            continue;
        if (n > 0) {
            pg_sb_put(&hosts, ",", 1);
            pg_sb_put(&addrs, ",", 1);
        }
        pg_sb_put(&hosts, name, strlen(name));
        pg_sb_put(&addrs, ip, strlen(ip));
        n++;
    }
    uv_freeaddrinfo(res);
    if (n == 0 || hosts.oom || addrs.oom) {
        char why[PG_REASON_MAX];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", name,
                 status ? uv_strerror(status) : (n == 0 ? "no address" : "out of memory"));
        free(hosts.p);
        free(addrs.p);
        pg_connect_failed(c, why);
        return;
    }
    connect_with_hostaddr(c, hosts.p, addrs.p);
    free(hosts.p);
    free(addrs.p);
}

/* Starts one connect attempt (resolve if needed, then PQconnectStart) under the connect deadline. */
void pg_start_connect(struct pg_conn *c)
{
    struct mutt_pg *pg = c->pg;
    uint64_t deadline = pg->opts.connect_timeout_ms ? pg->opts.connect_timeout_ms : PG_DEFAULT_CONNECT_TIMEOUT_MS;
    uv_timer_start(&c->timer, pg_on_conn_timer, deadline, 0);
    if (c->hosts_tried == 0)
        c->host = pg->cur_host; /* a new round */
    const char *host = pg->hosts[c->host].host;
    if (!pg->host_is_name[c->host]) {
        /* IP literal or unix-socket dir: libpq does no DNS; hostaddr=IP makes that explicit. */
        bool literal = host[0] && host[0] != '/';
        connect_with_hostaddr(c, host[0] ? host : NULL, literal ? host : NULL);
        return;
    }
    struct pg_resolve *r = calloc(1, sizeof(*r));
    if (!r) {
        pg_conn_defer_failure(c, "out of memory");
        return;
    }
    r->conn = c;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->state = CONN_RESOLVING;
    int rc = uv_getaddrinfo(pg->loop, &r->req, on_resolved, host, NULL, &hints);
    if (rc != 0) {
        free(r);
        pg_conn_defer_failure(c, uv_strerror(rc));
        return;
    }
    c->resolve = r;
}

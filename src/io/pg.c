/* PostgreSQL adapter: a small pool of nonblocking libpq connections watched with uv_poll, a
 * bounded FIFO of parameterised queries, per-query deadlines, reconnect with capped backoff and
 * CURRENT/NEXT passwords. Knows no table. Loop thread only (stack-notes §3.3, poc.c).
 *
 * Invariants that keep "exactly one callback" true:
 *  - an op is either in pg->queue or attached to exactly one conn (conn->op), never both;
 *  - public entry points (query, transaction, start) never call a user callback: failures that
 *    libpq reports synchronously are deferred to the conn's timer (state CONN_BROKEN);
 *  - before a user callback runs, the op is detached and the conn is left in a consistent state,
 *    and after it returns we re-check pg->stopping (the callback may have called stop). */
#include "mutt/pg.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/backoff.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg_hosts.h"

#define PG_DEFAULT_QUEUE_MAX 1024
#define PG_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PG_RECONNECT_BASE_MS 200   /* first retry after a failed connect attempt */
#define PG_RECONNECT_MAX_MS 5000   /* backoff cap: a restarted server is found within 5 s */
#define PG_REASON_MAX 256

enum conn_state {
    CONN_UNUSED = 0, /* slot free (no PGconn, no poll, timer stopped) */
    CONN_BACKOFF,    /* waiting for the timer to start a connect attempt */
    CONN_RESOLVING,  /* uv_getaddrinfo in flight */
    CONN_CONNECTING, /* PQconnectPoll state machine running */
    CONN_READY,      /* idle, watched for readable (detects server close) */
    CONN_BUSY,       /* one op in flight */
    CONN_BROKEN,     /* failure seen synchronously; handled from the timer (never inside the API) */
};

struct pg_step {
    char *sql;
    int nparams;
    char **values; /* copies; NULL entries are SQL NULL */
};

struct pg_op {
    struct pg_op *next;      /* queue link */
    mutt_pg_result_cb *cb;
    void *privdata;
    bool is_txn;             /* steps = BEGIN, stmts..., COMMIT */
    int nsteps;
    int step;                /* index of the step in flight */
    bool rolling_back;       /* ROLLBACK in flight; `held` is the error to report */
    PGresult *held;          /* txn: last statement's result, or the first error */
    struct pg_step *steps;
};

struct pg_resolve {
    uv_getaddrinfo_t req;
    struct pg_conn *conn;    /* NULL once the conn gave up on it (stop/timeout): just free */
};

struct pg_conn {
    struct mutt_pg *pg;
    int slot;
    enum conn_state state;
    PGconn *conn;
    uv_poll_t *poll;         /* heap: its close is asynchronous and the fd may change */
    int fd;                  /* fd the poll watches, -1 when none */
    uv_timer_t timer;        /* backoff / connect deadline / query deadline / deferred failure */
    struct pg_resolve *resolve;
    struct pg_op *op;        /* in flight (CONN_BUSY, or CONN_BROKEN after a failed send) */
    PGresult *cur;           /* newest result of the step in flight */
    bool reached_ready;      /* this PGconn got to READY (a failure is "lost", not "connect failed") */
    int pw_index;            /* 0 = CURRENT, 1 = NEXT */
    unsigned failed_attempts;/* consecutive failed rounds over every host, drives the backoff */
    int host;                /* index into pg->hosts of the attempt / connection */
    int hosts_tried;         /* hosts that failed in the current round (0 = a new round) */
    char reason[PG_REASON_MAX];
};

struct mutt_pg {
    uv_loop_t *loop;
    struct mutt_pg_opts opts;    /* strings are our own copies */
    struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS]; /* DB_HOST x DB_PORT, in order */
    bool host_is_name[MUTT_PG_MAX_HOSTS]; /* resolve with uv_getaddrinfo before each attempt */
    int nhosts;
    int cur_host;                /* where a new round starts: the host last found usable, or the one after a failed one */
    int up_host;                 /* host of the newest connection that got READY, -1 before any */
    char tsa[32];                /* target_session_attrs passed to libpq ("" = libpq's default, any) */
    struct pg_conn *conns;       /* pool_max slots */
    struct pg_op *queue_head, *queue_tail;
    size_t queue_len;
    bool started, stopping, destroy_requested;
    bool connect_failed;         /* the last connect attempt failed and nothing succeeded since */
    bool dispatching, dispatch_again;
    int pending_closes;          /* timers still closing; free waits for 0 */
};

static void on_poll(uv_poll_t *h, int status, int events);
static void on_conn_timer(uv_timer_t *t);
static void start_connect(struct pg_conn *c);
static void dispatch(struct mutt_pg *pg);

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
static void copy_reason(char *dst, const char *src)
{
    size_t n = 0;
    for (const char *p = src ? src : "unknown error"; *p && n + 1 < PG_REASON_MAX; p++)
        dst[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

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

static bool any_up(const struct mutt_pg *pg)
{
    for (int i = 0; i < pg->opts.pool_max; i++)
        if (pg->conns[i].state == CONN_READY || pg->conns[i].state == CONN_BUSY)
            return true;
    return false;
}

/* ---------------------------------------------------------------- conninfo */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* key='value' with ' and \ escaped as libpq requires; NULL or empty values are left out. */
static void sb_kv(struct sbuf *b, const char *key, const char *val)
{
    if (!val || !*val)
        return;
    if (b->len)
        sb_put(b, " ", 1);
    sb_put(b, key, strlen(key));
    sb_put(b, "='", 2);
    for (const char *p = val; *p; p++) {
        if (*p == '\'' || *p == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "'", 1);
}

/* libpq's own default is any; with several hosts MUTT wants the writable one (D38). */
static const char *effective_tsa(const struct mutt_pg_opts *o, int nhosts)
{
    if (o->target_session_attrs && o->target_session_attrs[0])
        return o->target_session_attrs;
    return nhosts > 1 ? "read-write" : NULL;
}

/* host, hostaddr and port as libpq takes them: one entry, or lists of equal length (or one port
 * for all). tsa NULL/"" leaves target_session_attrs at libpq's default. */
static char *build_conninfo(const struct mutt_pg_opts *o, const char *password, const char *host,
                            const char *hostaddr, const char *port, const char *tsa, bool with_timeout)
{
    struct sbuf b = {0};
    char num[32];
    sb_kv(&b, "host", host);
    sb_kv(&b, "hostaddr", hostaddr);
    sb_kv(&b, "port", port);
    sb_kv(&b, "dbname", o->dbname);
    sb_kv(&b, "user", o->user);
    sb_kv(&b, "password", password);
    if (o->tls) {
        static const char *const sslmodes[] = {
            [MUTT_PG_TLS_VERIFY_NONE] = "require",
            [MUTT_PG_TLS_VERIFY_CA] = "verify-ca",
            [MUTT_PG_TLS_VERIFY_FULL] = "verify-full",
        };
        unsigned v = (unsigned)o->tls_verify;
        sb_kv(&b, "sslmode", v < sizeof sslmodes / sizeof sslmodes[0] ? sslmodes[v] : "verify-full");
        /* libpq treats require plus an existing sslrootcert as verify-ca: none means none */
        if (o->tls_verify != MUTT_PG_TLS_VERIFY_NONE)
            sb_kv(&b, "sslrootcert", o->ca_file);
    } else {
        sb_kv(&b, "sslmode", "disable");
    }
    sb_kv(&b, "application_name", o->application_name ? o->application_name : "mutt");
    sb_kv(&b, "target_session_attrs", tsa);
    if (with_timeout && o->connect_timeout_ms > 0) {
        /* libpq takes whole seconds (and treats 1 as 2); round up. Only honoured by blocking connects. */
        snprintf(num, sizeof(num), "%llu", (unsigned long long)((o->connect_timeout_ms + 999) / 1000));
        sb_kv(&b, "connect_timeout", num);
    }
    if (b.oom || !b.p) {
        if (b.p) {
            explicit_bzero(b.p, b.cap);
            free(b.p);
        }
        return NULL;
    }
    return b.p;
}

char *mutt_pg_conninfo(const struct mutt_pg_opts *opts, const char *password)
{
    if (!opts)
        return NULL;
    struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS];
    char why[128], num[16];
    int n = mutt_pg_hosts_parse(opts->host, opts->ports, hosts, MUTT_PG_MAX_HOSTS, why, sizeof why);
    if (n < 0)
        return NULL;
    /* normalised lists (no blanks), one port per host */
    struct sbuf hl = {0}, pl = {0};
    bool ports_given = opts->ports && opts->ports[0];
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            sb_put(&hl, ",", 1);
            sb_put(&pl, ",", 1);
        }
        sb_put(&hl, hosts[i].host, strlen(hosts[i].host));
        snprintf(num, sizeof num, "%d", ports_given ? hosts[i].port : opts->port);
        sb_put(&pl, num, strlen(num));
    }
    char *ci = NULL;
    if (!hl.oom && !pl.oom)
        ci = build_conninfo(opts, password, hl.p, NULL, ports_given || opts->port > 0 ? pl.p : NULL,
                            effective_tsa(opts, n), true);
    free(hl.p);
    free(pl.p);
    return ci;
}

/* ---------------------------------------------------------------- ops */

static void op_free(struct pg_op *op)
{
    if (!op)
        return;
    for (int i = 0; i < op->nsteps; i++) {
        struct pg_step *s = &op->steps[i];
        free(s->sql);
        if (s->values) {
            for (int j = 0; j < s->nparams; j++)
                free(s->values[j]);
            free(s->values);
        }
    }
    free(op->steps);
    if (op->held)
        PQclear(op->held);
    free(op);
}

static int step_init(struct pg_step *s, const char *sql, int nparams, const char *const *values)
{
    s->sql = strdup(sql);
    if (!s->sql)
        return MUTT_ENOMEM;
    s->nparams = nparams;
    if (nparams == 0)
        return 0;
    s->values = calloc((size_t)nparams, sizeof(*s->values));
    if (!s->values)
        return MUTT_ENOMEM;
    for (int i = 0; i < nparams; i++) {
        if (values[i] && !(s->values[i] = strdup(values[i])))
            return MUTT_ENOMEM;
    }
    return 0;
}

/* Delivers the op's one callback, then frees it. The op must already be detached. */
static void op_complete(struct pg_op *op, PGresult *res, int status)
{
    op->cb(op->privdata, res, status);
    if (res)
        PQclear(res);
    op_free(op);
}

static void queue_push(struct mutt_pg *pg, struct pg_op *op)
{
    op->next = NULL;
    if (pg->queue_tail)
        pg->queue_tail->next = op;
    else
        pg->queue_head = op;
    pg->queue_tail = op;
    pg->queue_len++;
}

static struct pg_op *queue_pop(struct mutt_pg *pg)
{
    struct pg_op *op = pg->queue_head;
    if (!op)
        return NULL;
    pg->queue_head = op->next;
    if (!pg->queue_head)
        pg->queue_tail = NULL;
    pg->queue_len--;
    op->next = NULL;
    return op;
}

/* Detaches the whole queue (so a callback that queues again cannot loop: the flags that make
 * it fail synchronously are already set), then fails each op with `status`. */
static struct pg_op *queue_take_all(struct mutt_pg *pg)
{
    struct pg_op *list = pg->queue_head;
    pg->queue_head = pg->queue_tail = NULL;
    pg->queue_len = 0;
    return list;
}

static void fail_list(struct pg_op *list, int status)
{
    while (list) {
        struct pg_op *op = list;
        list = op->next;
        op_complete(op, NULL, status);
    }
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
static int conn_watch(struct pg_conn *c, int events)
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
static void conn_close(struct pg_conn *c)
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
static void conn_defer_failure(struct pg_conn *c, const char *why)
{
    copy_reason(c->reason, why);
    c->state = CONN_BROKEN;
    uv_timer_start(&c->timer, on_conn_timer, 0, 0);
}

/* Base slots (below pool_min) always reconnect; extra slots only while work is waiting. */
static void conn_schedule(struct pg_conn *c, uint64_t delay_ms)
{
    struct mutt_pg *pg = c->pg;
    if (pg->stopping)
        return;
    if (c->slot >= pg->opts.pool_min && pg->queue_len == 0) {
        c->state = CONN_UNUSED;
        return;
    }
    c->state = CONN_BACKOFF;
    uv_timer_start(&c->timer, on_conn_timer, delay_ms, 0);
}

/* ---------------------------------------------------------------- connect */

static void connect_failed(struct pg_conn *c, const char *why)
{
    struct mutt_pg *pg = c->pg;
    char reason[PG_REASON_MAX];
    copy_reason(reason, why);
    /* Read before PQfinish: did the server ask for a password? Then CURRENT may be stale. */
    bool used_password = c->conn && PQconnectionUsedPassword(c->conn);
    conn_close(c);
    if (pg->stopping)
        return;
    if (c->pw_index == 0 && used_password && pg->opts.pass_next && *pg->opts.pass_next) {
        mutt_log_warn("pg", "connection %d: authentication with the current password failed (%s); trying the next password",
                      c->slot, reason);
        c->pw_index = 1;
        start_connect(c);
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
        start_connect(c);
        return;
    }
    c->hosts_tried = 0;
    c->failed_attempts++;
    pg->connect_failed = true;
    uint64_t delay = backoff_ms(c->failed_attempts);
    /* Fail fast: with nothing up and every host failed, waiting work would only wait longer. */
    struct pg_op *waiting = any_up(pg) ? NULL : queue_take_all(pg);
    conn_schedule(c, delay);
    if (c->state == CONN_BACKOFF)
        mutt_log_warn("pg", "connection %d to %s failed (%s); retry in %llu ms", c->slot, where, reason,
                      (unsigned long long)delay);
    else
        mutt_log_warn("pg", "connection %d to %s failed (%s); slot released (pool above pool_min)", c->slot, where,
                      reason);
    fail_list(waiting, MUTT_EDISCONNECTED);
}

static void connect_step(struct pg_conn *c, PostgresPollingStatusType st)
{
    struct mutt_pg *pg = c->pg;
    switch (st) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, UV_READABLE) != 0)
            conn_defer_failure(c, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, UV_WRITABLE) != 0)
            conn_defer_failure(c, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->conn, 1) != 0 || conn_watch(c, UV_READABLE) != 0) {
            conn_defer_failure(c, PQerrorMessage(c->conn));
            return;
        }
        uv_timer_stop(&c->timer);
        if (c->failed_attempts > 0 || pg->connect_failed || c->hosts_tried > 0 || c->host != pg->up_host) {
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
        pg->connect_failed = false;
        dispatch(pg);
        return;
    default:
        /* Deferred even here: we may be inside mutt_pg_query() -> dispatch() -> spawn. */
        conn_defer_failure(c, PQerrorMessage(c->conn));
        return;
    }
}

static void on_notice(void *arg, const char *message)
{
    struct pg_conn *c = arg;
    char line[PG_REASON_MAX];
    copy_reason(line, message);
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
    char *ci = build_conninfo(&pg->opts, pw, host, hostaddr, port, pg->tsa, false);
    if (!ci) {
        conn_defer_failure(c, "out of memory");
        return;
    }
    c->conn = PQconnectStart(ci);
    explicit_bzero(ci, strlen(ci));
    free(ci);
    c->state = CONN_CONNECTING;
    c->reached_ready = false;
    if (!c->conn) {
        conn_defer_failure(c, "out of memory");
        return;
    }
    PQsetNoticeProcessor(c->conn, on_notice, c);
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        conn_defer_failure(c, PQerrorMessage(c->conn));
        return;
    }
    /* libpq docs: behave as if PQconnectPoll had last returned PGRES_POLLING_WRITING. */
    connect_step(c, PGRES_POLLING_WRITING);
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
            sb_put(&hosts, ",", 1);
            sb_put(&addrs, ",", 1);
        }
        sb_put(&hosts, name, strlen(name));
        sb_put(&addrs, ip, strlen(ip));
        n++;
    }
    uv_freeaddrinfo(res);
    if (n == 0 || hosts.oom || addrs.oom) {
        char why[PG_REASON_MAX];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", name,
                 status ? uv_strerror(status) : (n == 0 ? "no address" : "out of memory"));
        free(hosts.p);
        free(addrs.p);
        connect_failed(c, why);
        return;
    }
    connect_with_hostaddr(c, hosts.p, addrs.p);
    free(hosts.p);
    free(addrs.p);
}

/* Starts one connect attempt (resolve if needed, then PQconnectStart) under the connect deadline. */
static void start_connect(struct pg_conn *c)
{
    struct mutt_pg *pg = c->pg;
    uint64_t deadline = pg->opts.connect_timeout_ms ? pg->opts.connect_timeout_ms : PG_DEFAULT_CONNECT_TIMEOUT_MS;
    uv_timer_start(&c->timer, on_conn_timer, deadline, 0);
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
        conn_defer_failure(c, "out of memory");
        return;
    }
    r->conn = c;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->state = CONN_RESOLVING;
    int rc = uv_getaddrinfo(pg->loop, &r->req, on_resolved, host, NULL, &hints);
    if (rc != 0) {
        free(r);
        conn_defer_failure(c, uv_strerror(rc));
        return;
    }
    c->resolve = r;
}

/* ---------------------------------------------------------------- queries */

static void conn_lost(struct pg_conn *c, const char *why)
{
    struct mutt_pg *pg = c->pg;
    char reason[PG_REASON_MAX];
    copy_reason(reason, why);
    struct pg_op *op = c->op;
    c->op = NULL;
    conn_close(c);
    c->failed_attempts = 0;
    char where[MUTT_PG_HOST_MAX + 16];
    mutt_log_warn("pg", "connection %d to %s lost (%s); reconnecting", c->slot,
                  mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where), reason);
    /* Reconnect at once: the queue waits for that one attempt, and is failed if it fails. */
    conn_schedule(c, 0);
    if (op)
        op_complete(op, NULL, MUTT_EDISCONNECTED);
    if (!pg->stopping)
        dispatch(pg);
}

static void query_timed_out(struct pg_conn *c)
{
    struct mutt_pg *pg = c->pg;
    struct pg_op *op = c->op;
    c->op = NULL;
    /* PQcancel blocks (it opens a new connection synchronously): reset the connection instead.
     * The server rolls back whatever the op had started when it sees the socket close. */
    mutt_log_warn("pg", "connection %d: query exceeded %llu ms; resetting the connection", c->slot,
                  (unsigned long long)pg->opts.query_timeout_ms);
    conn_close(c);
    c->failed_attempts = 0;
    conn_schedule(c, 0);
    if (op)
        op_complete(op, NULL, MUTT_ETIMEDOUT);
    if (!pg->stopping)
        dispatch(pg);
}

static const char *step_sql(const struct pg_op *op, int step, int *nparams, const char *const **values)
{
    if (op->rolling_back) {
        *nparams = 0;
        *values = NULL;
        return "ROLLBACK";
    }
    const struct pg_step *s = &op->steps[step];
    *nparams = s->nparams;
    *values = (const char *const *)s->values;
    return s->sql;
}

/* Sends the op's current step. Returns 0, or <0 after deferring the failure (conn BROKEN). */
static int send_step(struct pg_conn *c)
{
    int nparams;
    const char *const *values;
    const char *sql = step_sql(c->op, c->op->step, &nparams, &values);
    if (!PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0)) {
        conn_defer_failure(c, PQerrorMessage(c->conn));
        return MUTT_EIO;
    }
    int f = PQflush(c->conn); /* nonblocking: 1 = call again when writable */
    if (f < 0 || conn_watch(c, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE) != 0) {
        conn_defer_failure(c, PQerrorMessage(c->conn));
        return MUTT_EIO;
    }
    return 0;
}

static void conn_send_op(struct pg_conn *c, struct pg_op *op)
{
    c->op = op;
    c->state = CONN_BUSY;
    op->step = 0;
    if (send_step(c) != 0)
        return;
    if (c->pg->opts.query_timeout_ms > 0)
        uv_timer_start(&c->timer, on_conn_timer, c->pg->opts.query_timeout_ms, 0);
}

/* The op is done: detach it, leave the conn idle, then (and only then) call back. */
static void conn_finish_op(struct pg_conn *c, PGresult *res, int status)
{
    struct mutt_pg *pg = c->pg;
    struct pg_op *op = c->op;
    c->op = NULL;
    c->state = CONN_READY;
    uv_timer_stop(&c->timer);
    if (conn_watch(c, UV_READABLE) != 0)
        conn_defer_failure(c, "cannot watch the connection socket");
    op_complete(op, res, status);
    if (!pg->stopping)
        dispatch(pg);
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* D55: errors that say "this server is no longer the one to write to" (a primary demoted to
 * read-only, an administrator's shutdown or a crash). The query is not at fault: the caller gets
 * MUTT_EDISCONNECTED as for a lost connection (a writer keeps its rows and retries; the web
 * answers 503), and the connection is dropped so the pool finds the writable host. */
static bool failover_error(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s && (strcmp(s, "25006") == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
                 strcmp(s, "57P03") == 0);
}

static void host_demoted(struct pg_conn *c, const PGresult *r)
{
    struct mutt_pg *pg = c->pg;
    char why[PG_REASON_MAX], where[MUTT_PG_HOST_MAX + 16];
    copy_reason(why, PQresultErrorMessage(r));
    mutt_log_warn("pg", "connection %d: %s says %s (%s): reconnecting to find the writable host", c->slot,
                  mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where),
                  PQresultErrorField(r, PG_DIAG_SQLSTATE), why);
    if (pg->cur_host == c->host)
        pg->cur_host = (c->host + 1) % pg->nhosts;
    /* Idle siblings on the same host would only fail their next query the same way. */
    for (int i = 0; i < pg->opts.pool_max; i++) {
        struct pg_conn *o = &pg->conns[i];
        if (o != c && o->state == CONN_READY && o->host == c->host) {
            conn_close(o);
            o->failed_attempts = 0;
            conn_schedule(o, 0);
        }
    }
}

/* All results of the step in flight have arrived (PQgetResult gave NULL). */
static void step_done(struct pg_conn *c)
{
    struct pg_op *op = c->op;
    PGresult *r = c->cur;
    c->cur = NULL;
    bool ok = result_ok(r);
    if (!ok && failover_error(r)) {
        host_demoted(c, r);
        PQclear(r);
        conn_lost(c, "server no longer writable"); /* the op gets MUTT_EDISCONNECTED */
        return;
    }
    if (!op->is_txn) {
        conn_finish_op(c, r, ok ? 0 : MUTT_EIO);
        return;
    }
    if (op->rolling_back) { /* report the first error, whatever ROLLBACK said */
        if (r)
            PQclear(r);
        PGresult *held = op->held;
        op->held = NULL;
        conn_finish_op(c, held, MUTT_EIO);
        return;
    }
    int last = op->nsteps - 1; /* COMMIT */
    if (!ok) {
        if (op->step == 0 || op->step == last) { /* BEGIN or COMMIT failed: no transaction left open */
            conn_finish_op(c, r, MUTT_EIO);
            return;
        }
        if (op->held)
            PQclear(op->held);
        op->held = r;
        op->rolling_back = true;
        send_step(c);
        return;
    }
    if (op->step == last) {
        if (r)
            PQclear(r);
        PGresult *held = op->held;
        op->held = NULL;
        conn_finish_op(c, held, 0);
        return;
    }
    if (op->step == last - 1) { /* the last statement: its result is what the caller gets */
        if (op->held)
            PQclear(op->held);
        op->held = r;
    } else if (r) {
        PQclear(r);
    }
    op->step++;
    send_step(c);
}

static void on_readable_busy(struct pg_conn *c)
{
    /* Never call PQgetResult while PQisBusy: it would block. */
    while (!PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            step_done(c);
            return;
        }
        if (c->cur)
            PQclear(c->cur);
        c->cur = r;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pg_conn *c = h->data;
    switch (c->state) {
    case CONN_CONNECTING:
        /* Also on status < 0: libpq reads the socket error itself and reports FAILED. */
        connect_step(c, PQconnectPoll(c->conn));
        return;
    case CONN_READY:
    case CONN_BUSY:
        break;
    default:
        return;
    }
    if (status < 0) {
        conn_lost(c, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(c->conn);
        if (f < 0) {
            conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
        if (f == 0 && conn_watch(c, UV_READABLE) != 0) {
            conn_lost(c, "cannot watch the connection socket");
            return;
        }
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
            conn_lost(c, PQerrorMessage(c->conn));
            return;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->conn)) != NULL) /* nobody LISTENs; drain so they cannot pile up */
            PQfreemem(n);
        if (c->state == CONN_BUSY)
            on_readable_busy(c);
    }
}

static void on_conn_timer(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    switch (c->state) {
    case CONN_BACKOFF:
        start_connect(c);
        return;
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        connect_failed(c, "connect timeout");
        return;
    case CONN_BUSY:
        query_timed_out(c);
        return;
    case CONN_BROKEN: {
        char reason[PG_REASON_MAX];
        memcpy(reason, c->reason, sizeof(reason));
        if (c->reached_ready)
            conn_lost(c, reason);
        else
            connect_failed(c, reason);
        return;
    }
    default:
        return;
    }
}

/* Hands queued ops to idle connections, then grows the pool while work is waiting. Re-entrant
 * calls (a callback queueing more) just ask the outer call for another round. */
static void dispatch(struct mutt_pg *pg)
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
                conn_send_op(c, queue_pop(pg));
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
            start_connect(c);
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
    const char *tsa = effective_tsa(opts, pg->nhosts);
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
        start_connect(&pg->conns[i]);
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
            conn_close(c);
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
        op_complete(op, NULL, MUTT_ECANCELED);
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
    return pg && pg->started && !pg->stopping && any_up(pg);
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

static int submit(struct mutt_pg *pg, struct pg_op *op)
{
    if (pg->stopping) {
        op_free(op);
        return MUTT_ECANCELED;
    }
    if (!pg->started) {
        op_free(op);
        return MUTT_ESTATE;
    }
    if (pg->connect_failed && !any_up(pg)) {
        op_free(op);
        return MUTT_EDISCONNECTED;
    }
    if (pg->queue_len >= pg->opts.queue_max) {
        op_free(op);
        return MUTT_EFULL;
    }
    queue_push(pg, op);
    dispatch(pg);
    return 0;
}

int mutt_pg_query(struct mutt_pg *pg, const char *sql, int nparams, const char *const *values,
                  mutt_pg_result_cb *cb, void *privdata)
{
    if (!pg || !sql || !cb || nparams < 0 || (nparams > 0 && !values))
        return MUTT_EINVAL;
    struct pg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->cb = cb;
    op->privdata = privdata;
    op->steps = calloc(1, sizeof(*op->steps));
    if (!op->steps) {
        free(op);
        return MUTT_ENOMEM;
    }
    op->nsteps = 1;
    if (step_init(&op->steps[0], sql, nparams, values) != 0) {
        op_free(op);
        return MUTT_ENOMEM;
    }
    return submit(pg, op);
}

int mutt_pg_transaction(struct mutt_pg *pg, const struct mutt_pg_stmt *stmts, int nstmts,
                        mutt_pg_result_cb *cb, void *privdata)
{
    if (!pg || !stmts || nstmts < 1 || !cb)
        return MUTT_EINVAL;
    for (int i = 0; i < nstmts; i++)
        if (!stmts[i].sql || stmts[i].nparams < 0 || (stmts[i].nparams > 0 && !stmts[i].values))
            return MUTT_EINVAL;
    struct pg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->cb = cb;
    op->privdata = privdata;
    op->is_txn = true;
    op->steps = calloc((size_t)nstmts + 2, sizeof(*op->steps));
    if (!op->steps) {
        free(op);
        return MUTT_ENOMEM;
    }
    op->nsteps = nstmts + 2;
    int rc = step_init(&op->steps[0], "BEGIN", 0, NULL);
    for (int i = 0; i < nstmts && rc == 0; i++)
        rc = step_init(&op->steps[i + 1], stmts[i].sql, stmts[i].nparams, stmts[i].values);
    if (rc == 0)
        rc = step_init(&op->steps[nstmts + 1], "COMMIT", 0, NULL);
    if (rc != 0) {
        op_free(op);
        return rc;
    }
    return submit(pg, op);
}

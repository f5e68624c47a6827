/* Owns the Redis connections on the loop (command, dedicated blocking, pub/sub): connect with a
 * deadline, reconnects with capped jittered backoff, the command deadline watch (D48), and each
 * connection's life from create to the last timer close. Knows no queue names. Loop thread only.
 * The rest of the adapter, around this manager: redis_handshake.c (AUTH/SELECT/ROLE/SCRIPT LOAD
 * or SUBSCRIBE), redis_command.c (the promise that every accepted command is answered exactly
 * once; scripts), redis_pubsub.c, redis_failover.c (Sentinel), redis_uv.c (libuv glue). */
#include "mutt/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "mutt/backoff.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/random.h"
#include "mutt/redis_sentinels.h"
#include "redis_internal.h"
#include "redis_uv.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_RECONNECT_MIN_MS 100
#define DEFAULT_RECONNECT_MAX_MS 5000
#define DEFAULT_MAX_INFLIGHT 10000 /* max_inflight 0 = this cap: nothing grows without one */
#define DEFAULT_COMMAND_TIMEOUT_MS 5000

/* A uv_getaddrinfo request outlives a connection closed meanwhile: conn is cleared then. */
struct resolve {
    uv_getaddrinfo_t req;
    struct mutt_redis_conn *conn;
};

static void conn_failed(struct mutt_redis_conn *c, const char *why);

/* ------------------------------------------------------------------------------ helpers */

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

bool redis_is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

const char *redis_kind_name(const struct mutt_redis_conn *c)
{
    return c->name ? c->name : "redis";
}

/* Capped exponential backoff; the jitter takes up to a quarter off so pods restarted together
 * do not reconnect in lockstep. */
uint64_t redis_backoff_delay_ms(const struct mutt_redis *r, unsigned failures)
{
    const struct mutt_backoff b = {
        .base_ms = r->reconnect_min_ms,
        .max_ms = r->reconnect_max_ms,
        .jitter = MUTT_BACKOFF_JITTER_QUARTER,
    };
    uint64_t d = mutt_backoff_ms(&b, failures, mutt_random_u64());
    return d ? d : 1;
}

/* ------------------------------------------------------------------------------ state */

static void notify(struct mutt_redis_conn *c, bool up)
{
    c->reported = up ? 1 : 0;
    /* by index: an observer may add observers */
    for (size_t i = 0; i < c->nobservers; i++)
        c->observers[i].cb(c->observers[i].privdata, c, up);
}

/* Every transition observers may care about goes through here (internal steps such as
 * CONNECTING -> HANDSHAKE assign c->state directly). Observers hear about up/down edges only,
 * plus the first failure, so a never-reachable server still reports "down". */
static void set_state(struct mutt_redis_conn *c, enum conn_state s)
{
    c->state = s;
    if (s == CONN_READY && c->reported != 1)
        notify(c, true);
    else if (s == CONN_BACKOFF && c->reported != 0)
        notify(c, false);
    else if (s == CONN_CLOSED && c->reported == 1)
        notify(c, false);
}

/* Drops the current context. Pending callbacks run with reply == NULL (now, or right after the
 * hiredis callback we are inside of returns) and report c->null_reply_status. */
static void drop_context(struct mutt_redis_conn *c)
{
    redisAsyncContext *ac = c->ac;
    if (!ac)
        return;
    c->ac = NULL; /* before the free: on_disconnect must see it is not ours any more */
    redisAsyncFree(ac);
}

void redis_abort_connection(struct mutt_redis_conn *c, const char *why)
{
    drop_context(c);
    conn_failed(c, why);
}

/* D48: hiredis 0.14 has no command timeout. Replies come back in send order, so the oldest
 * outstanding command is the one to watch: past its deadline the server is stalled (or the path
 * to it is), and the connection is dropped. Its commands are then answered MUTT_EDISCONNECTED:
 * "in doubt", as for any lost connection, since the server may still run them. */
static void check_command_deadline(struct mutt_redis_conn *c)
{
    struct op *op = c->oldest;
    if (!op)
        return;
    uint64_t now = uv_now(c->r->loop);
    if (now < op->deadline_ms) {
        redis_arm_command_timer(c);
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "no reply within REDIS_COMMAND_TIMEOUT_MS (%llu ms; %zu commands outstanding)",
             (unsigned long long)c->r->command_timeout_ms, c->inflight);
    redis_abort_connection(c, why);
}

static void on_timer(uv_timer_t *t)
{
    struct mutt_redis_conn *c = t->data;
    if (c->state == CONN_READY) {
        check_command_deadline(c);
    } else if (c->state == CONN_BACKOFF) {
        redis_conn_connect(c);
    } else if (c->state == CONN_HANDSHAKE && c->handshake_kick) {
        c->handshake_kick = false;
        uv_timer_start(&c->timer, on_timer, c->r->connect_timeout_ms, 0);
        redis_handshake_start(c);
    } else if (c->state == CONN_RESOLVING) {
        if (c->resolve) {
            c->resolve->conn = NULL;
            uv_cancel((uv_req_t *)&c->resolve->req); /* may fail if already running: on_resolved copes */
            c->resolve = NULL;
        }
        conn_failed(c, "name lookup timed out");
    } else if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) {
        char why[96];
        snprintf(why, sizeof(why), "%s timed out after %llu ms",
                 c->state == CONN_CONNECTING ? "connect" : "handshake",
                 (unsigned long long)c->r->connect_timeout_ms);
        redis_abort_connection(c, why);
    }
}

/* The context is gone (or never existed): schedule the next attempt. */
static void conn_failed(struct mutt_redis_conn *c, const char *why)
{
    if (c->state == CONN_CLOSED || c->r->stopped)
        return;
    uv_timer_stop(&c->timer);
    c->handshake_kick = false;
    /* the current primary failed us: ask the sentinels again before the next attempt (a
     * connection dropped because the primary moved targets an old generation: no new round) */
    if (c->r->nsentinels > 0 && c->gen == c->r->gen)
        c->r->have_primary = false;
    uint64_t delay = redis_backoff_delay_ms(c->r, c->consecutive_failures);
    c->consecutive_failures++;
    mutt_log_warn("redis", "%s (%s:%d): %s; reconnecting in %llu ms (attempt %u)", redis_kind_name(c), c->r->host,
                  c->r->port, why && *why ? why : "connection lost", (unsigned long long)delay,
                  c->consecutive_failures);
    set_state(c, CONN_BACKOFF);
    if (c->state == CONN_BACKOFF) /* an observer may have stopped the manager */
        uv_timer_start(&c->timer, on_timer, delay, 0);
}

/* While READY the connection timer watches the oldest command's deadline (it is idle
 * otherwise: connect and handshake are over). */
void redis_arm_command_timer(struct mutt_redis_conn *c)
{
    if (c->state != CONN_READY || !c->oldest)
        return;
    uint64_t now = uv_now(c->r->loop);
    uint64_t due = c->oldest->deadline_ms > now ? c->oldest->deadline_ms - now : 0;
    uv_timer_start(&c->timer, on_timer, due, 0);
}

void redis_conn_ready(struct mutt_redis_conn *c)
{
    uv_timer_stop(&c->timer);
    if (c->consecutive_failures)
        mutt_log_info("redis", "%s (%s:%d): connected after %u failed attempts", redis_kind_name(c), c->r->host,
                      c->r->port, c->consecutive_failures);
    c->consecutive_failures = 0;
    set_state(c, CONN_READY);
}

/* ------------------------------------------------------------------------------ connect */

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct mutt_redis_conn *c = ac->data;
    if (!c || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "connect failed: %s", ac->c.errstr[0] ? ac->c.errstr : "error");
        c->ac = NULL; /* hiredis frees it when we return; never free it from in here */
        conn_failed(c, why);
        return;
    }
    /* Nothing that may free this context (a failed send, or observers told "up" that stop the
     * manager) may run in here: hiredis goes on using `ac` after this callback returns, and a
     * free from here is not deferred the way one from a reply callback is. So the handshake
     * starts from the timer, on the next loop turn; its deadline then covers the handshake too,
     * so a server that accepts but never answers cannot leave us "connecting" forever. */
    /* A peer that vanishes without a reset would leave a blocked BRPOPLPUSH waiting forever:
     * TCP keepalive (15 s) turns that into a disconnect the reconnect logic handles. */
    redisEnableKeepAlive(&ac->c);
    c->state = CONN_HANDSHAKE;
    c->handshake_kick = true;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct mutt_redis_conn *c = ac->data;
    if (!c || c->ac != ac) /* we dropped it ourselves and already decided what follows */
        return;
    char why[160];
    snprintf(why, sizeof(why), "disconnected: %s", ac->c.errstr[0] ? ac->c.errstr : "connection closed");
    c->ac = NULL;
    conn_failed(c, why);
}

static void conn_connect_ip(struct mutt_redis_conn *c, const char *ip)
{
    struct mutt_redis *r = c->r;
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (!ac) {
        conn_failed(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);
        conn_failed(c, why);
        return;
    }
    if (mutt_redis_uv_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        conn_failed(c, "cannot watch the socket");
        return;
    }
    ac->data = c;
    /* attach first, callbacks second: setting the connect callback arms the write watcher */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->gen = r->gen;
    c->null_reply_status = MUTT_EDISCONNECTED;
    c->state = CONN_CONNECTING;
    uv_timer_start(&c->timer, on_timer, r->connect_timeout_ms, 0);
}

/* The first IPv4 address of res (redis-server is usually bound to 127.0.0.1 / an IPv4 address),
 * else its first address, into ip ("" when none). */
void redis_pick_ip(const struct addrinfo *res, char *ip, size_t len)
{
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    ip[0] = '\0';
    if (pick->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, len);
    else if (pick->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, len);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve *rs = req->data;
    struct mutt_redis_conn *c = rs->conn;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res)
        redis_pick_ip(res, ip, sizeof(ip));
    if (res)
        uv_freeaddrinfo(res);
    free(rs);
    if (!c) /* connection closed while we were resolving */
        return;
    c->resolve = NULL;
    if (!ip[0]) {
        char why[160];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", c->r->host, status ? uv_strerror(status) : "no address");
        conn_failed(c, why);
        return;
    }
    conn_connect_ip(c, ip);
}

void redis_conn_connect(struct mutt_redis_conn *c)
{
    struct mutt_redis *r = c->r;
    if (c->state == CONN_CLOSED || r->stopped || c->ac || c->resolve)
        return;
    if (r->nsentinels > 0 && !r->have_primary) {
        c->state = CONN_DISCOVERING; /* discovery_done connects it */
        redis_discovery_start(r);
        return;
    }
    c->gen = r->gen;
    if (r->host_is_ip) {
        conn_connect_ip(c, r->host);
        return;
    }
    /* hiredis resolves names with a blocking getaddrinfo: resolve on the threadpool first */
    struct resolve *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        conn_failed(c, "out of memory");
        return;
    }
    rs->conn = c;
    rs->req.data = rs;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->state = CONN_RESOLVING;
    int rc = uv_getaddrinfo(r->loop, &rs->req, on_resolved, r->host, NULL, &hints);
    if (rc != 0) {
        free(rs);
        char why[160];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->host, uv_strerror(rc));
        conn_failed(c, why);
        return;
    }
    c->resolve = rs;
    uv_timer_start(&c->timer, on_timer, r->connect_timeout_ms, 0);
}

/* ------------------------------------------------------------------------------ lifecycle */

static void free_conn(struct mutt_redis_conn *c)
{
    free(c->name);
    free(c);
}

static void free_manager(struct mutt_redis *r)
{
    while (r->conns) {
        struct mutt_redis_conn *c = r->conns;
        r->conns = c->next;
        free_conn(c);
    }
    for (size_t i = 0; i < r->nscripts; i++) {
        free(r->scripts[i].name);
        free(r->scripts[i].source);
    }
    for (size_t i = 0; i < r->nsubs; i++)
        free(r->subs[i].channel);
    free(r->host);
    free(r->sentinel_master);
    free(r->sentinel_pass);
    free(r->pass_current);
    free(r->pass_next);
    free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_redis_conn *c = h->data;
    struct mutt_redis *r = c->r;
    r->open_timers--;
    if (c->free_on_close)
        free_conn(c);
    if (r->destroy_pending && r->open_timers == 0)
        free_manager(r);
}

static void on_disc_timer_closed(uv_handle_t *h)
{
    struct mutt_redis *r = h->data;
    r->open_timers--;
    if (r->destroy_pending && r->open_timers == 0)
        free_manager(r);
}

struct mutt_redis_conn *redis_conn_new(struct mutt_redis *r, enum conn_kind kind, const char *name)
{
    struct mutt_redis_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->name = strdup(name ? name : "redis");
    if (!c->name) {
        free(c);
        return NULL;
    }
    c->r = r;
    c->kind = kind;
    c->state = CONN_IDLE;
    c->reported = -1;
    c->null_reply_status = MUTT_EDISCONNECTED;
    uv_timer_init(r->loop, &c->timer);
    c->timer.data = c;
    r->open_timers++;
    c->next = r->conns;
    r->conns = c;
    return c;
}

/* Closes one connection for good: its pending commands are answered MUTT_ECANCELED. The struct
 * stays valid until its timer's close callback (or until destroy, for stop). */
static void conn_shutdown(struct mutt_redis_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->null_reply_status = MUTT_ECANCELED;
    c->state = CONN_CLOSED; /* first: callbacks run below must see a closed connection */
    if (c->resolve) {
        c->resolve->conn = NULL;
        uv_cancel((uv_req_t *)&c->resolve->req); /* may fail if already running: on_resolved copes */
        c->resolve = NULL;
    }
    drop_context(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    set_state(c, CONN_CLOSED);
}

struct mutt_redis *mutt_redis_create(uv_loop_t *loop, const struct mutt_redis_opts *opts)
{
    if (!loop || !opts)
        return NULL;
    struct mutt_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->host = strdup(opts->host && *opts->host ? opts->host : "127.0.0.1");
    r->port = opts->port > 0 ? opts->port : 6379;
    r->db = opts->db;
    r->pass_current = dup_or_null(opts->pass_current);
    r->pass_next = dup_or_null(opts->pass_next);
    if (!r->host || (opts->pass_current && *opts->pass_current && !r->pass_current) ||
        (opts->pass_next && *opts->pass_next && !r->pass_next)) {
        free_manager(r);
        return NULL;
    }
    r->host_is_ip = redis_is_ip_literal(r->host);
    if (opts->sentinels && *opts->sentinels) {
        char why[160];
        int n = mutt_redis_sentinels_parse(opts->sentinels, r->sentinels, MUTT_REDIS_MAX_SENTINELS, why, sizeof why);
        r->sentinel_master = strdup(opts->sentinel_master && *opts->sentinel_master ? opts->sentinel_master : "mymaster");
        r->sentinel_pass = dup_or_null(opts->sentinel_pass);
        free(r->host);
        r->host = strdup(""); /* REDIS_HOST/REDIS_PORT are ignored: the sentinels name the primary */
        r->port = 0;
        if (n <= 0 || !r->sentinel_master || !r->host ||
            (opts->sentinel_pass && *opts->sentinel_pass && !r->sentinel_pass)) {
            if (n < 0)
                mutt_log_error("redis", "REDIS_SENTINELS=%s: %s", opts->sentinels, why);
            free_manager(r);
            return NULL;
        }
        r->nsentinels = n;
        memset(r->sentinel_ok, -1, sizeof(r->sentinel_ok));
    }
    r->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->reconnect_min_ms = opts->reconnect_min_ms ? opts->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
    r->reconnect_max_ms = opts->reconnect_max_ms ? opts->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
    if (r->reconnect_max_ms < r->reconnect_min_ms)
        r->reconnect_max_ms = r->reconnect_min_ms;
    r->max_inflight = opts->max_inflight ? opts->max_inflight : DEFAULT_MAX_INFLIGHT;
    r->command_timeout_ms = opts->command_timeout_ms ? opts->command_timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
    r->cmd = redis_conn_new(r, CONN_CMD, "redis-cmd");
    if (!r->cmd) {
        free_manager(r);
        return NULL;
    }
    if (r->nsentinels > 0) { /* last: nothing below can fail, so no open handle is ever freed */
        uv_timer_init(loop, &r->disc_timer);
        r->disc_timer.data = r;
        r->disc_timer_open = true;
        r->open_timers++;
        uv_timer_init(loop, &r->sw_timer);
        r->sw_timer.data = r;
        r->open_timers++;
    }
    return r;
}

int mutt_redis_start(struct mutt_redis *r)
{
    if (r->stopped)
        return MUTT_ESTATE;
    if (r->started)
        return 0;
    r->started = true;
    if (r->nsentinels > 0)
        redis_sw_connect(r);
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next)
        if (c->state == CONN_IDLE)
            redis_conn_connect(c);
    return 0;
}

void mutt_redis_stop(struct mutt_redis *r)
{
    if (!r || r->stopped)
        return;
    r->stopped = true;
    /* connections stay in the list (callers may still hold pointers and get MUTT_EDISCONNECTED)
     * until destroy frees them */
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next)
        conn_shutdown(c);
    if (r->disc_timer_open) {
        redis_disc_drop(r);
        r->disc_timer_open = false;
        uv_timer_stop(&r->disc_timer);
        uv_close((uv_handle_t *)&r->disc_timer, on_disc_timer_closed);
        redis_sw_drop(r);
        uv_timer_stop(&r->sw_timer);
        uv_close((uv_handle_t *)&r->sw_timer, on_disc_timer_closed);
    }
}

void mutt_redis_destroy(struct mutt_redis *r)
{
    if (!r)
        return;
    mutt_redis_stop(r);
    if (r->open_timers == 0)
        free_manager(r);
    else
        r->destroy_pending = true; /* freed by the last timer close callback, during uv_run */
}

void mutt_redis_set_passwords(struct mutt_redis *r, const char *current, const char *next)
{
    char *cur = dup_or_null(current);
    char *nxt = dup_or_null(next);
    if ((current && *current && !cur) || (next && *next && !nxt)) {
        free(cur); /* keep the old pair rather than half of a new one */
        free(nxt);
        return;
    }
    free(r->pass_current);
    free(r->pass_next);
    r->pass_current = cur;
    r->pass_next = nxt;
}

void mutt_redis_set_sentinel_password(struct mutt_redis *r, const char *pass)
{
    char *p = dup_or_null(pass);
    if (pass && *pass && !p)
        return; /* keep the old one */
    free(r->sentinel_pass);
    r->sentinel_pass = p;
}

struct mutt_redis_conn *mutt_redis_cmd(struct mutt_redis *r)
{
    return r->cmd;
}

struct mutt_redis_conn *mutt_redis_pubsub(struct mutt_redis *r)
{
    return r->pubsub;
}

struct mutt_redis_conn *mutt_redis_conn_open(struct mutt_redis *r, const char *name)
{
    if (r->stopped)
        return NULL;
    struct mutt_redis_conn *c = redis_conn_new(r, CONN_DEDICATED, name);
    if (!c)
        return NULL;
    if (r->started)
        redis_conn_connect(c);
    return c;
}

void mutt_redis_conn_close(struct mutt_redis_conn *c)
{
    if (!c || c->kind != CONN_DEDICATED)
        return; /* the command and pub/sub connections belong to the manager */
    struct mutt_redis *r = c->r;
    if (c->state == CONN_CLOSED)
        return; /* stopped: destroy frees it */
    for (struct mutt_redis_conn **p = &r->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->next = NULL;
    c->free_on_close = true;
    conn_shutdown(c);
}

size_t mutt_redis_conn_inflight(const struct mutt_redis_conn *c)
{
    return c ? c->inflight : 0;
}

bool mutt_redis_conn_connected(const struct mutt_redis_conn *c)
{
    return c && c->state == CONN_READY;
}

int mutt_redis_conn_on_state(struct mutt_redis_conn *c, mutt_redis_state_cb *cb, void *privdata)
{
    if (!c || !cb)
        return MUTT_EINVAL;
    if (c->nobservers >= MAX_OBSERVERS)
        return MUTT_EFULL;
    c->observers[c->nobservers].cb = cb;
    c->observers[c->nobservers].privdata = privdata;
    c->nobservers++;
    return 0;
}

bool mutt_redis_connected(const struct mutt_redis *r)
{
    return r && mutt_redis_conn_connected(r->cmd);
}

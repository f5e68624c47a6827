/* Redis Sentinel mode (D53): which server is the primary. Discovery asks the sentinels in turn
 * (SENTINEL get-master-addr-by-name) on short-lived connections; the +switch-master watch moves
 * every connection when a failover is announced; sentinels given by name are resolved on the
 * threadpool. The manager (redis.c) connects to whatever this names. Loop thread only. */
#include "mutt/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>

#include "mutt/log.h"
#include "redis_internal.h"
#include "redis_uv.h"

/* A sentinel given by name is resolved on the threadpool before each connection to it (hiredis
 * would resolve it with a blocking getaddrinfo on the loop). The request outlives an abandoned
 * attempt or a stopped adapter: r is cleared then and the callback only frees it. */
struct sentinel_resolve {
    uv_getaddrinfo_t req;
    struct mutt_redis *r;
    bool for_watch; /* the +switch-master watch, else a discovery query */
};

/* ------------------------------------------------------------------------------ discovery */

static void discovery_query(struct mutt_redis *r);

static void sentinel_resolve_abandon(struct sentinel_resolve **slot)
{
    if (*slot) {
        (*slot)->r = NULL; /* its callback frees it */
        *slot = NULL;
    }
}

void redis_disc_drop(struct mutt_redis *r)
{
    sentinel_resolve_abandon(&r->disc_resolve);
    redisAsyncContext *ac = r->disc_ac;
    if (!ac)
        return;
    r->disc_ac = NULL; /* before the free: callbacks must see it is not ours any more */
    redisAsyncFree(ac);
}

static void on_disc_timer(uv_timer_t *t);

/* The primary is known: adopt it (every connection of an older generation moves to it) and
 * connect the connections that waited for it. */
static void discovery_done(struct mutt_redis *r, const char *host, int port)
{
    r->disc_active = false;
    r->disc_failures = 0;
    uv_timer_stop(&r->disc_timer);
    if (strcmp(host, r->host) != 0 || port != r->port) {
        char *h = strdup(host);
        if (!h) { /* keep the old one; the next failure asks again */
            r->have_primary = false;
            return;
        }
        mutt_log_info("redis", "sentinels name %s:%d as the primary of %s (was %s:%d)", host, port, r->sentinel_master,
                      r->host, r->port);
        free(r->host);
        r->host = h;
        r->port = port;
        r->host_is_ip = redis_is_ip_literal(h);
        r->gen++;
    }
    r->have_primary = true;
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next) {
        if (r->stopped || !r->have_primary)
            return;
        if (c->state == CONN_DISCOVERING) {
            redis_conn_connect(c);
        } else if (c->gen != r->gen && c->ac &&
                   (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE || c->state == CONN_READY)) {
            char why[320];
            snprintf(why, sizeof(why), "the primary moved to %s:%d", r->host, r->port);
            redis_abort_connection(c, why);
        }
    }
}

/* The sentinel being asked gave no usable answer: ask the next one, or wait and start over. */
static void discovery_next(struct mutt_redis *r, const char *why)
{
    redis_disc_drop(r);
    if (r->stopped)
        return;
    const struct mutt_redis_addr *s = &r->sentinels[r->disc_index];
    mutt_log_warn("redis", "sentinel %s:%d: %s", s->host, s->port, why);
    r->sentinel_ok[r->disc_index] = 0;
    r->disc_index++;
    if (r->disc_index < r->nsentinels) {
        discovery_query(r);
        return;
    }
    uint64_t delay = redis_backoff_delay_ms(r, r->disc_failures);
    r->disc_failures++;
    mutt_log_warn("redis", "no sentinel named the primary of %s; asking again in %llu ms", r->sentinel_master,
                  (unsigned long long)delay);
    r->disc_index = -1; /* the timer starts a new round */
    uv_timer_start(&r->disc_timer, on_disc_timer, delay, 0);
}

static void on_disc_timer(uv_timer_t *t)
{
    struct mutt_redis *r = t->data;
    if (r->stopped)
        return;
    if (r->disc_index < 0) {
        r->disc_index = 0;
        discovery_query(r);
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)r->connect_timeout_ms);
    discovery_next(r, why);
}

static void on_disc_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct mutt_redis *r = privdata;
    redisReply *reply = rp;
    if (!reply || r->disc_ac != ac)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        char host[MUTT_REDIS_SENTINEL_HOST_MAX];
        snprintf(host, sizeof(host), "%s", reply->element[0]->str);
        int port = atoi(reply->element[1]->str);
        if (host[0] && port > 0 && port <= 65535) {
            r->sentinel_ok[r->disc_index] = 1;
            redis_disc_drop(r);
            discovery_done(r, host, port);
            return;
        }
    }
    char why[192];
    snprintf(why, sizeof(why), "no address for %s: %.120s", r->sentinel_master,
             reply->type == REDIS_REPLY_ERROR ? reply->str : reply->type == REDIS_REPLY_NIL ? "unknown master" : "bad reply");
    discovery_next(r, why);
}

/* An AUTH refusal shows up in the query's own reply (NOAUTH); only a lost link matters here. */
static void on_disc_auth_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    (void)ac;
    (void)rp;
    (void)privdata;
}

static void on_disc_connect(const redisAsyncContext *cac, int status)
{
    struct mutt_redis *r = cac->data;
    if (r->disc_ac != cac || status == REDIS_OK)
        return;
    char why[160];
    snprintf(why, sizeof(why), "connect failed: %s", cac->c.errstr[0] ? cac->c.errstr : "error");
    r->disc_ac = NULL; /* hiredis frees it when we return */
    discovery_next(r, why);
}

static void on_disc_disconnect(const redisAsyncContext *cac, int status)
{
    struct mutt_redis *r = cac->data;
    if (r->disc_ac != cac)
        return;
    r->disc_ac = NULL;
    discovery_next(r, "connection lost");
}

/* One short-lived connection to sentinel disc_index: AUTH (when a sentinel password is set)
 * and the query are queued at once; hiredis writes them once connected. */
static void discovery_query_ip(struct mutt_redis *r, const char *ip)
{
    const struct mutt_redis_addr *s = &r->sentinels[r->disc_index];
    redisAsyncContext *ac = redisAsyncConnect(ip, s->port);
    if (!ac || ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "connect failed: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        discovery_next(r, why);
        return;
    }
    if (mutt_redis_uv_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        discovery_next(r, "cannot watch the socket");
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_disc_connect);
    redisAsyncSetDisconnectCallback(ac, on_disc_disconnect);
    r->disc_ac = ac;
    uv_timer_start(&r->disc_timer, on_disc_timer, r->connect_timeout_ms, 0);
    int rc = REDIS_OK;
    if (r->sentinel_pass) {
        const char *argv[2] = {"AUTH", r->sentinel_pass};
        size_t lens[2] = {4, strlen(r->sentinel_pass)};
        rc = redisAsyncCommandArgv(ac, on_disc_auth_reply, r, 2, argv, lens);
    }
    if (rc == REDIS_OK) {
        const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", r->sentinel_master};
        size_t lens[3] = {8, 23, strlen(r->sentinel_master)};
        rc = redisAsyncCommandArgv(ac, on_disc_reply, r, 3, argv, lens);
    }
    if (rc != REDIS_OK)
        discovery_next(r, "query could not be sent");
}

/* ------------------------------------------------------------------------------ watch */

/* The +switch-master watch (D53): one pub/sub connection to one sentinel; when it drops (or
 * never confirms the subscription within the connect timeout) the next sentinel is used. A
 * switch announced there moves every connection at once, without waiting for an error. */
static void on_sw_timer(uv_timer_t *t);

void redis_sw_drop(struct mutt_redis *r)
{
    sentinel_resolve_abandon(&r->sw_resolve);
    redisAsyncContext *ac = r->sw_ac;
    if (!ac)
        return;
    r->sw_ac = NULL;
    redisAsyncFree(ac);
}

static void sw_retry(struct mutt_redis *r, const char *why)
{
    redis_sw_drop(r);
    if (r->stopped)
        return;
    const struct mutt_redis_addr *s = &r->sentinels[r->sw_index];
    uint64_t delay = redis_backoff_delay_ms(r, r->sw_failures);
    r->sw_failures++;
    mutt_log_warn("redis", "sentinel %s:%d (+switch-master watch): %s; next sentinel in %llu ms", s->host, s->port,
                  why, (unsigned long long)delay);
    r->sw_index = (r->sw_index + 1) % r->nsentinels;
    r->sw_subscribed = false;
    uv_timer_start(&r->sw_timer, on_sw_timer, delay, 0);
}

static void on_sw_timer(uv_timer_t *t)
{
    struct mutt_redis *r = t->data;
    if (r->stopped)
        return;
    if (r->sw_resolve)
        sw_retry(r, "the sentinel's name did not resolve within the connect timeout");
    else if (!r->sw_ac)
        redis_sw_connect(r);
    else if (!r->sw_subscribed)
        sw_retry(r, "no subscription within the connect timeout");
}

static void on_sw_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct mutt_redis *r = privdata;
    redisReply *reply = rp;
    if (!reply || r->sw_ac != ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcasecmp(reply->element[0]->str, "subscribe") == 0) {
        r->sw_subscribed = true;
        r->sw_failures = 0;
        uv_timer_stop(&r->sw_timer);
        return;
    }
    if (strcasecmp(reply->element[0]->str, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    /* "<master> <old-ip> <old-port> <new-ip> <new-port>" */
    char master[256], oldip[MUTT_REDIS_SENTINEL_HOST_MAX], newip[MUTT_REDIS_SENTINEL_HOST_MAX];
    int oldport, newport;
    if (sscanf(reply->element[2]->str, "%255s %255s %d %255s %d", master, oldip, &oldport, newip, &newport) != 5 ||
        strcmp(master, r->sentinel_master) != 0 || newport <= 0 || newport > 65535)
        return;
    mutt_log_info("redis", "sentinel: +switch-master %s from %s:%d to %s:%d", master, oldip, oldport, newip, newport);
    if (r->disc_active)
        return; /* the round under way reads the new address from the sentinels anyway */
    discovery_done(r, newip, newport);
}

static void on_sw_connect(const redisAsyncContext *cac, int status)
{
    struct mutt_redis *r = cac->data;
    if (r->sw_ac != cac || status == REDIS_OK)
        return;
    r->sw_ac = NULL; /* hiredis frees it when we return */
    sw_retry(r, cac->c.errstr[0] ? cac->c.errstr : "connect failed");
}

static void on_sw_disconnect(const redisAsyncContext *cac, int status)
{
    struct mutt_redis *r = cac->data;
    if (r->sw_ac != cac)
        return;
    r->sw_ac = NULL;
    sw_retry(r, "connection lost");
}

static void sw_connect_ip(struct mutt_redis *r, const char *ip)
{
    const struct mutt_redis_addr *s = &r->sentinels[r->sw_index];
    redisAsyncContext *ac = redisAsyncConnect(ip, s->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        sw_retry(r, "connect failed");
        return;
    }
    if (mutt_redis_uv_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        sw_retry(r, "cannot watch the socket");
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_sw_connect);
    redisAsyncSetDisconnectCallback(ac, on_sw_disconnect);
    r->sw_ac = ac;
    r->sw_subscribed = false;
    uv_timer_start(&r->sw_timer, on_sw_timer, r->connect_timeout_ms, 0);
    int rc = REDIS_OK;
    if (r->sentinel_pass) {
        const char *argv[2] = {"AUTH", r->sentinel_pass};
        size_t lens[2] = {4, strlen(r->sentinel_pass)};
        rc = redisAsyncCommandArgv(ac, on_disc_auth_reply, r, 2, argv, lens);
    }
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, on_sw_reply, r, "SUBSCRIBE +switch-master");
    if (rc != REDIS_OK)
        sw_retry(r, "SUBSCRIBE could not be sent");
}

/* ------------------------------------------------------------------------------ connections */

static void on_sentinel_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sentinel_resolve *rs = req->data;
    struct mutt_redis *r = rs->r;
    bool for_watch = rs->for_watch;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res)
        redis_pick_ip(res, ip, sizeof(ip));
    if (res)
        uv_freeaddrinfo(res);
    free(rs);
    if (!r || r->stopped) /* abandoned: the attempt timed out or the adapter stopped */
        return;
    if (for_watch)
        r->sw_resolve = NULL;
    else
        r->disc_resolve = NULL;
    const struct mutt_redis_addr *s = &r->sentinels[for_watch ? r->sw_index : r->disc_index];
    if (!ip[0]) {
        char why[MUTT_REDIS_SENTINEL_HOST_MAX + 64];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host, status ? uv_strerror(status) : "no address");
        if (for_watch)
            sw_retry(r, why);
        else
            discovery_next(r, why);
        return;
    }
    if (for_watch)
        sw_connect_ip(r, ip);
    else
        discovery_query_ip(r, ip);
}

/* Connects to sentinel `index` for discovery or the watch, resolving its name first if it has one;
 * the attempt's timer (started here) bounds the resolution too. */
static void sentinel_connect(struct mutt_redis *r, bool for_watch)
{
    const struct mutt_redis_addr *s = &r->sentinels[for_watch ? r->sw_index : r->disc_index];
    if (redis_is_ip_literal(s->host)) {
        if (for_watch)
            sw_connect_ip(r, s->host);
        else
            discovery_query_ip(r, s->host);
        return;
    }
    struct sentinel_resolve *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        if (for_watch)
            sw_retry(r, "out of memory");
        else
            discovery_next(r, "out of memory");
        return;
    }
    rs->r = r;
    rs->for_watch = for_watch;
    rs->req.data = rs;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(r->loop, &rs->req, on_sentinel_resolved, s->host, NULL, &hints);
    if (rc != 0) {
        free(rs);
        char why[MUTT_REDIS_SENTINEL_HOST_MAX + 64];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host, uv_strerror(rc));
        if (for_watch)
            sw_retry(r, why);
        else
            discovery_next(r, why);
        return;
    }
    if (for_watch) {
        r->sw_resolve = rs;
        r->sw_subscribed = false;
        uv_timer_start(&r->sw_timer, on_sw_timer, r->connect_timeout_ms, 0);
    } else {
        r->disc_resolve = rs;
        uv_timer_start(&r->disc_timer, on_disc_timer, r->connect_timeout_ms, 0);
    }
}

static void discovery_query(struct mutt_redis *r)
{
    sentinel_connect(r, false);
}

void redis_sw_connect(struct mutt_redis *r)
{
    sentinel_connect(r, true);
}

/* Starts a round over the sentinels, first to last, unless one runs already. */
void redis_discovery_start(struct mutt_redis *r)
{
    if (r->disc_active || r->stopped || r->nsentinels == 0)
        return;
    r->disc_active = true;
    r->disc_index = 0;
    discovery_query(r);
}

/* A reply that says this server is not (or not yet) the usable primary (D53). */
bool redis_reply_means_rediscover(const redisReply *reply)
{
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN", "UNBLOCKED", NULL};
    if (!reply || reply->type != REDIS_REPLY_ERROR || !reply->str)
        return false;
    for (int i = 0; codes[i]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(reply->str, codes[i], n) == 0 && (reply->str[n] == ' ' || reply->str[n] == '\0'))
            return true;
    }
    return false;
}

const char *mutt_redis_primary(const struct mutt_redis *r, char *buf, size_t len)
{
    if (!r || (r->nsentinels > 0 && r->gen == 0))
        snprintf(buf, len, "%s", "");
    else if (strchr(r->host, ':'))
        snprintf(buf, len, "[%s]:%d", r->host, r->port);
    else
        snprintf(buf, len, "%s:%d", r->host, r->port);
    return buf;
}

const char *mutt_redis_sentinel_state(const struct mutt_redis *r)
{
    if (!r || r->nsentinels == 0)
        return NULL;
    int ok = 0, failed = 0;
    for (int i = 0; i < r->nsentinels; i++) {
        if (r->sentinel_ok[i] == 1)
            ok++;
        else if (r->sentinel_ok[i] == 0)
            failed++;
    }
    if (ok == 0)
        return "down";
    return failed ? "degraded" : "ok";
}

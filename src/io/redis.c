/* Owns the Redis connections on the loop (command, dedicated blocking, pub/sub): connect with a
 * deadline, the AUTH/SELECT/SCRIPT LOAD (or SUBSCRIBE) handshake, reconnects with capped jittered
 * backoff, and the promise that every accepted command is answered exactly once. Knows no queue
 * names. Loop thread only; the libuv glue for hiredis is in redis_uv.c. */
#include "mutt/redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <openssl/evp.h>

#include "mutt/backoff.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/random.h"
#include "mutt/redis_sentinels.h"
#include "redis_uv.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_RECONNECT_MIN_MS 100
#define DEFAULT_RECONNECT_MAX_MS 5000
#define DEFAULT_MAX_INFLIGHT 10000 /* max_inflight 0 = this cap: nothing grows without one */
#define DEFAULT_COMMAND_TIMEOUT_MS 5000
#define MAX_SCRIPTS 64
#define MAX_OBSERVERS 16
#define MAX_SUBSCRIPTIONS 256

enum conn_kind { CONN_CMD, CONN_DEDICATED, CONN_PUBSUB };

enum conn_state {
    CONN_IDLE,       /* manager not started yet */
    CONN_RESOLVING,  /* uv_getaddrinfo in flight (host is a name) */
    CONN_CONNECTING, /* TCP connect in flight; the deadline timer runs */
    CONN_HANDSHAKE,  /* AUTH / SELECT / SCRIPT LOAD / SUBSCRIBE replies awaited; deadline runs */
    CONN_READY,      /* commands accepted */
    CONN_BACKOFF,    /* waiting for the retry timer */
    CONN_DISCOVERING, /* sentinel mode: waiting until the sentinels name the primary */
    CONN_CLOSED,     /* stopped or closed: never reconnects */
};

struct observer {
    mutt_redis_state_cb *cb;
    void *privdata;
};

struct script {
    char *name;
    char *source;
    char sha[41]; /* computed locally, so EVALSHA can be sent before any SCRIPT LOAD reply */
};

struct subscription {
    char *channel;
    mutt_redis_message_cb *cb;
    void *privdata;
};

/* A uv_getaddrinfo request outlives a connection closed meanwhile: conn is cleared then. */
struct resolve {
    uv_getaddrinfo_t req;
    struct mutt_redis_conn *conn;
};

struct mutt_redis_conn {
    struct mutt_redis *r;
    struct mutt_redis_conn *next; /* manager's list of connections not yet freed */
    char *name;
    enum conn_kind kind;
    enum conn_state state;
    redisAsyncContext *ac;   /* set while CONNECTING/HANDSHAKE/READY, else NULL */
    struct resolve *resolve; /* in-flight name lookup or NULL */
    uv_timer_t timer;        /* connect/handshake deadline, then the backoff delay */
    bool free_on_close;      /* closed by mutt_redis_conn_close: free when the timer closed */
    unsigned consecutive_failures; /* backoff exponent; reset when READY */
    int pass_index;          /* which candidate password the running AUTH used */
    size_t handshake_pending; /* SCRIPT LOAD / SUBSCRIBE replies still awaited */
    bool handshake_kick;     /* connected: the timer's next expiry starts the handshake */
    bool handshake_last_step; /* SCRIPT LOAD / SUBSCRIBE sent (AUTH and SELECT answered) */
    size_t inflight;         /* accepted user commands not yet answered */
    struct op *oldest, *newest; /* those commands in send order (D48: the oldest one's deadline
                                   is watched with `timer` while READY) */
    unsigned gen;            /* sentinel mode: the primary generation this connection targets */
    int reported;            /* -1 nothing told yet, 0 down, 1 up: last state told to observers */
    int null_reply_status;   /* status for callbacks hiredis runs with reply == NULL */
    struct observer observers[MAX_OBSERVERS];
    size_t nobservers;
};

struct mutt_redis {
    uv_loop_t *loop;
    char *host;
    int port;
    int db;
    char *pass_current;
    char *pass_next;
    uint64_t connect_timeout_ms;
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
    size_t max_inflight;
    uint64_t command_timeout_ms; /* D48 */
    bool host_is_ip;
    bool started;
    bool stopped;
    bool destroy_pending; /* destroy asked while timers were still closing */
    size_t open_timers;   /* connection timers whose close callback has not run yet */
    struct mutt_redis_conn *cmd;
    struct mutt_redis_conn *pubsub;
    struct mutt_redis_conn *conns;
    struct script scripts[MAX_SCRIPTS];
    size_t nscripts;
    struct subscription subs[MAX_SUBSCRIPTIONS];
    size_t nsubs;
    /* Sentinel mode (nsentinels > 0): host/port above are the primary the sentinels named. */
    struct mutt_redis_addr sentinels[MUTT_REDIS_MAX_SENTINELS];
    int nsentinels;
    char *sentinel_master;
    char *sentinel_pass;
    bool have_primary;        /* host/port are believed current; false = ask the sentinels */
    unsigned gen;             /* bumped whenever the primary's address changes */
    bool disc_active;         /* a discovery round runs (query or retry delay) */
    int disc_index;           /* sentinel being asked */
    unsigned disc_failures;   /* failed rounds in a row (backoff exponent) */
    redisAsyncContext *disc_ac; /* the short-lived query connection, or NULL */
    uv_timer_t disc_timer;    /* query deadline, then the retry delay */
    bool disc_timer_open;
    signed char sentinel_ok[MUTT_REDIS_MAX_SENTINELS]; /* -1 unknown, 0 failed, 1 answered */
    redisAsyncContext *sw_ac; /* the +switch-master subscription, or NULL */
    struct sentinel_resolve *disc_resolve; /* a sentinel's name being resolved for discovery, or NULL */
    struct sentinel_resolve *sw_resolve;   /* ... for the +switch-master watch, or NULL */
    uv_timer_t sw_timer;      /* its connect deadline, then the delay before the next sentinel */
    int sw_index;
    unsigned sw_failures;
    bool sw_subscribed;
};

/* A sentinel given by name is resolved on the threadpool before each connection to it (hiredis
 * would resolve it with a blocking getaddrinfo on the loop). The request outlives an abandoned
 * attempt or a stopped adapter: r is cleared then and the callback only frees it. */
struct sentinel_resolve {
    uv_getaddrinfo_t req;
    struct mutt_redis *r;
    bool for_watch; /* the +switch-master watch, else a discovery query */
};

/* One accepted user command. EVALSHA keeps its argv so it can be re-sent as EVAL on NOSCRIPT. */
struct op {
    struct mutt_redis_conn *conn;
    struct op *prev, *next;  /* conn->oldest .. conn->newest */
    uint64_t deadline_ms;    /* uv_now by which the reply is due (D48) */
    uint64_t wait_ms;        /* time the server may legitimately hold it (blocking pops, WAIT) */
    mutt_redis_reply_cb *cb;
    void *privdata;
    int script_id; /* -1 for plain commands */
    bool retried;
    int argc;
    const char **argv; /* EVALSHA only: points into this allocation */
    size_t *argvlen;
};

static void conn_connect(struct mutt_redis_conn *c);
static void conn_failed(struct mutt_redis_conn *c, const char *why);
static void handshake_start(struct mutt_redis_conn *c);
static void discovery_start(struct mutt_redis *r);
static void on_sw_timer(uv_timer_t *t);
static void handshake_role(struct mutt_redis_conn *c);

/* ------------------------------------------------------------------------------ helpers */

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

static const char *kind_name(const struct mutt_redis_conn *c)
{
    return c->name ? c->name : "redis";
}

static void sha1_hex(const char *data, size_t len, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        out[0] = '\0'; /* EVALSHA then always falls back to EVAL */
        return;
    }
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

/* Passwords tried in order at AUTH: CURRENT, then NEXT (secrets rotation), empty ones skipped. */
static const char *password_at(const struct mutt_redis *r, int idx)
{
    const char *cands[2];
    int n = 0;
    if (r->pass_current)
        cands[n++] = r->pass_current;
    if (r->pass_next && !(r->pass_current && strcmp(r->pass_current, r->pass_next) == 0))
        cands[n++] = r->pass_next;
    return idx < n ? cands[idx] : NULL;
}

/* Capped exponential backoff; the jitter takes up to a quarter off so pods restarted together
 * do not reconnect in lockstep. */
static uint64_t backoff_delay_ms(const struct mutt_redis *r, unsigned failures)
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

static void abort_connection(struct mutt_redis_conn *c, const char *why)
{
    drop_context(c);
    conn_failed(c, why);
}

static void arm_command_timer(struct mutt_redis_conn *c);

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
        arm_command_timer(c);
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "no reply within REDIS_COMMAND_TIMEOUT_MS (%llu ms; %zu commands outstanding)",
             (unsigned long long)c->r->command_timeout_ms, c->inflight);
    abort_connection(c, why);
}

static void on_timer(uv_timer_t *t)
{
    struct mutt_redis_conn *c = t->data;
    if (c->state == CONN_READY) {
        check_command_deadline(c);
    } else if (c->state == CONN_BACKOFF) {
        conn_connect(c);
    } else if (c->state == CONN_HANDSHAKE && c->handshake_kick) {
        c->handshake_kick = false;
        uv_timer_start(&c->timer, on_timer, c->r->connect_timeout_ms, 0);
        handshake_start(c);
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
        abort_connection(c, why);
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
    uint64_t delay = backoff_delay_ms(c->r, c->consecutive_failures);
    c->consecutive_failures++;
    mutt_log_warn("redis", "%s (%s:%d): %s; reconnecting in %llu ms (attempt %u)", kind_name(c), c->r->host,
                  c->r->port, why && *why ? why : "connection lost", (unsigned long long)delay,
                  c->consecutive_failures);
    set_state(c, CONN_BACKOFF);
    if (c->state == CONN_BACKOFF) /* an observer may have stopped the manager */
        uv_timer_start(&c->timer, on_timer, delay, 0);
}

/* While READY the connection timer watches the oldest command's deadline (it is idle
 * otherwise: connect and handshake are over). */
static void arm_command_timer(struct mutt_redis_conn *c)
{
    if (c->state != CONN_READY || !c->oldest)
        return;
    uint64_t now = uv_now(c->r->loop);
    uint64_t due = c->oldest->deadline_ms > now ? c->oldest->deadline_ms - now : 0;
    uv_timer_start(&c->timer, on_timer, due, 0);
}

static void conn_ready(struct mutt_redis_conn *c)
{
    uv_timer_stop(&c->timer);
    if (c->consecutive_failures)
        mutt_log_info("redis", "%s (%s:%d): connected after %u failed attempts", kind_name(c), c->r->host,
                      c->r->port, c->consecutive_failures);
    c->consecutive_failures = 0;
    set_state(c, CONN_READY);
}

/* ------------------------------------------------------------------------------ handshake */

static void handshake_scripts_or_subscribe(struct mutt_redis_conn *c);

static bool reply_is_error(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR;
}

/* Is this reply one of the handshake's, on the live context? NULL replies come from a context
 * being freed: whoever freed it already decided what happens next. */
static bool handshake_reply_live(struct mutt_redis_conn *c, redisAsyncContext *ac, redisReply *reply)
{
    return reply && c->ac == ac && c->state == CONN_HANDSHAKE;
}

static void on_select_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply_is_error(reply)) {
        char why[192];
        snprintf(why, sizeof(why), "SELECT %d refused: %.150s", c->r->db, reply->str);
        abort_connection(c, why);
        return;
    }
    handshake_role(c);
}

/* Sentinel mode: a sentinel's answer may be stale (a failover under way, a demoted primary
 * still announced), so each connection confirms it reached a master before it is used. */
static void on_role_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        handshake_scripts_or_subscribe(c);
        return;
    }
    char why[192];
    snprintf(why, sizeof(why), "not a master (ROLE: %.100s); asking the sentinels again",
             reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->str
                 ? reply->element[0]->str
                 : (reply->str ? reply->str : "?"));
    abort_connection(c, why);
}

static void handshake_role(struct mutt_redis_conn *c)
{
    if (c->r->nsentinels == 0) {
        handshake_scripts_or_subscribe(c);
        return;
    }
    if (redisAsyncCommand(c->ac, on_role_reply, c, "ROLE") != REDIS_OK)
        abort_connection(c, "ROLE could not be sent");
}

static void handshake_select(struct mutt_redis_conn *c)
{
    if (c->r->db <= 0) {
        handshake_role(c);
        return;
    }
    if (redisAsyncCommand(c->ac, on_select_reply, c, "SELECT %d", c->r->db) != REDIS_OK)
        abort_connection(c, "SELECT could not be sent");
}

static int send_auth(struct mutt_redis_conn *c, const char *password);

static void on_auth_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (!reply_is_error(reply)) {
        handshake_select(c);
        return;
    }
    /* A server without a password refuses AUTH; it needs none, so go on (rotation to "no
     * password" must not take the service down). */
    if (strstr(reply->str, "without any password configured") || strstr(reply->str, "no password is set")) {
        mutt_log_warn("redis", "%s: server has no password; AUTH skipped", kind_name(c));
        handshake_select(c);
        return;
    }
    const char *next = password_at(c->r, c->pass_index + 1);
    if (next) {
        mutt_log_warn("redis", "%s: AUTH with the current password refused (%.100s); trying the next password",
                      kind_name(c), reply->str);
        c->pass_index++;
        if (send_auth(c, next) != 0)
            abort_connection(c, "AUTH could not be sent");
        return;
    }
    char why[192];
    snprintf(why, sizeof(why), "AUTH refused: %.150s", reply->str);
    abort_connection(c, why);
}

static int send_auth(struct mutt_redis_conn *c, const char *password)
{
    const char *argv[2] = {"AUTH", password};
    size_t lens[2] = {4, strlen(password)};
    return redisAsyncCommandArgv(c->ac, on_auth_reply, c, 2, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

static void on_script_load_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply_is_error(reply)) {
        char why[192];
        snprintf(why, sizeof(why), "SCRIPT LOAD refused: %.150s", reply->str);
        abort_connection(c, why);
        return;
    }
    if (--c->handshake_pending == 0)
        conn_ready(c);
}

static bool channel_subscribed_before(const struct mutt_redis *r, size_t idx)
{
    for (size_t i = 0; i < idx; i++)
        if (strcmp(r->subs[i].channel, r->subs[idx].channel) == 0)
            return true;
    return false;
}

static void on_pubsub_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = rp;
    if (!reply || c->ac != ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const char *channel = reply->element[1]->str;
    if (strcasecmp(kind, "subscribe") == 0) {
        /* the pub/sub connection counts as up once every channel is confirmed, so a publisher
         * that waits for "up" cannot race the re-subscription */
        if (c->state == CONN_HANDSHAKE && c->handshake_pending > 0 && --c->handshake_pending == 0)
            conn_ready(c);
        return;
    }
    if (strcasecmp(kind, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    struct mutt_redis *r = c->r;
    const redisReply *msg = reply->element[2];
    for (size_t i = 0; i < r->nsubs; i++) { /* by index: a callback may subscribe more */
        if (strcmp(r->subs[i].channel, channel) == 0)
            r->subs[i].cb(r->subs[i].privdata, channel, msg->str, msg->len);
        if (c->state == CONN_CLOSED) /* a callback stopped the manager */
            return;
    }
}

static int send_subscribe(struct mutt_redis_conn *c, const char *channel)
{
    const char *argv[2] = {"SUBSCRIBE", channel};
    size_t lens[2] = {9, strlen(channel)};
    return redisAsyncCommandArgv(c->ac, on_pubsub_reply, c, 2, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

static int send_script_load(struct mutt_redis_conn *c, const struct script *s, redisCallbackFn *fn)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->source};
    size_t lens[3] = {6, 4, strlen(s->source)};
    return redisAsyncCommandArgv(c->ac, fn, c, 3, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

static void handshake_scripts_or_subscribe(struct mutt_redis_conn *c)
{
    struct mutt_redis *r = c->r;
    c->handshake_pending = 0;
    c->handshake_last_step = true;
    if (c->kind == CONN_PUBSUB) {
        for (size_t i = 0; i < r->nsubs; i++) {
            if (channel_subscribed_before(r, i))
                continue;
            if (send_subscribe(c, r->subs[i].channel) != 0) {
                abort_connection(c, "SUBSCRIBE could not be sent");
                return;
            }
            c->handshake_pending++;
        }
    } else {
        for (size_t i = 0; i < r->nscripts; i++) {
            if (send_script_load(c, &r->scripts[i], on_script_load_reply) != 0) {
                abort_connection(c, "SCRIPT LOAD could not be sent");
                return;
            }
            c->handshake_pending++;
        }
    }
    if (c->handshake_pending == 0)
        conn_ready(c);
}

static void handshake_start(struct mutt_redis_conn *c)
{
    c->pass_index = 0;
    c->handshake_last_step = false;
    const char *password = password_at(c->r, 0);
    if (!password) {
        handshake_select(c);
        return;
    }
    if (send_auth(c, password) != 0)
        abort_connection(c, "AUTH could not be sent");
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
static void pick_ip(const struct addrinfo *res, char *ip, size_t len)
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
        pick_ip(res, ip, sizeof(ip));
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

static void conn_connect(struct mutt_redis_conn *c)
{
    struct mutt_redis *r = c->r;
    if (c->state == CONN_CLOSED || r->stopped || c->ac || c->resolve)
        return;
    if (r->nsentinels > 0 && !r->have_primary) {
        c->state = CONN_DISCOVERING; /* discovery_done connects it */
        discovery_start(r);
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

/* ------------------------------------------------------------------------------ sentinel */

static void discovery_query(struct mutt_redis *r);

static void sentinel_resolve_abandon(struct sentinel_resolve **slot)
{
    if (*slot) {
        (*slot)->r = NULL; /* its callback frees it */
        *slot = NULL;
    }
}

static void disc_drop(struct mutt_redis *r)
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
        r->host_is_ip = is_ip_literal(h);
        r->gen++;
    }
    r->have_primary = true;
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next) {
        if (r->stopped || !r->have_primary)
            return;
        if (c->state == CONN_DISCOVERING) {
            conn_connect(c);
        } else if (c->gen != r->gen && c->ac &&
                   (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE || c->state == CONN_READY)) {
            char why[320];
            snprintf(why, sizeof(why), "the primary moved to %s:%d", r->host, r->port);
            abort_connection(c, why);
        }
    }
}

/* The sentinel being asked gave no usable answer: ask the next one, or wait and start over. */
static void discovery_next(struct mutt_redis *r, const char *why)
{
    disc_drop(r);
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
    uint64_t delay = backoff_delay_ms(r, r->disc_failures);
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
            disc_drop(r);
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

/* The +switch-master watch (D53): one pub/sub connection to one sentinel; when it drops (or
 * never confirms the subscription within the connect timeout) the next sentinel is used. A
 * switch announced there moves every connection at once, without waiting for an error. */
static void sw_connect(struct mutt_redis *r);

static void sw_drop(struct mutt_redis *r)
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
    sw_drop(r);
    if (r->stopped)
        return;
    const struct mutt_redis_addr *s = &r->sentinels[r->sw_index];
    uint64_t delay = backoff_delay_ms(r, r->sw_failures);
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
        sw_connect(r);
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

static void on_sentinel_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sentinel_resolve *rs = req->data;
    struct mutt_redis *r = rs->r;
    bool for_watch = rs->for_watch;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res)
        pick_ip(res, ip, sizeof(ip));
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
    if (is_ip_literal(s->host)) {
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

static void sw_connect(struct mutt_redis *r)
{
    sentinel_connect(r, true);
}

/* Starts a round over the sentinels, first to last, unless one runs already. */
static void discovery_start(struct mutt_redis *r)
{
    if (r->disc_active || r->stopped || r->nsentinels == 0)
        return;
    r->disc_active = true;
    r->disc_index = 0;
    discovery_query(r);
}

/* A reply that says this server is not (or not yet) the usable primary (D53). */
static bool reply_means_rediscover(const redisReply *reply)
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

static struct mutt_redis_conn *conn_new(struct mutt_redis *r, enum conn_kind kind, const char *name)
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
    r->host_is_ip = is_ip_literal(r->host);
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
    r->cmd = conn_new(r, CONN_CMD, "redis-cmd");
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
        sw_connect(r);
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next)
        if (c->state == CONN_IDLE)
            conn_connect(c);
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
        disc_drop(r);
        r->disc_timer_open = false;
        uv_timer_stop(&r->disc_timer);
        uv_close((uv_handle_t *)&r->disc_timer, on_disc_timer_closed);
        sw_drop(r);
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
    struct mutt_redis_conn *c = conn_new(r, CONN_DEDICATED, name);
    if (!c)
        return NULL;
    if (r->started)
        conn_connect(c);
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

/* ------------------------------------------------------------------------------ commands */

static void op_unlink(struct op *op)
{
    struct mutt_redis_conn *c = op->conn;
    if (op->prev)
        op->prev->next = op->next;
    else if (c->oldest == op)
        c->oldest = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else if (c->newest == op)
        c->newest = op->prev;
    op->prev = op->next = NULL;
}

/* Seconds a blocking command may legitimately wait in the server (its last argument for the
 * blocking pops, WAIT's timeout in ms); 0 for every other command. Loose on purpose: an
 * unreadable value counts as 0 and the command gets the plain timeout. */
static uint64_t blocking_wait_ms(int argc, const char **argv, const size_t *argvlen)
{
    /* the blocking commands whose timeout is the last argument (MUTT sends no other) */
    static const char *const pops[] = {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BZPOPMIN", "BZPOPMAX", NULL};
    if (argc < 2)
        return 0;
    char name[16];
    size_t n = argvlen ? argvlen[0] : strlen(argv[0]);
    if (n >= sizeof(name))
        return 0;
    memcpy(name, argv[0], n);
    name[n] = '\0';
    char last[32];
    size_t ln = argvlen ? argvlen[argc - 1] : strlen(argv[argc - 1]);
    if (ln >= sizeof(last))
        return 0;
    memcpy(last, argv[argc - 1], ln);
    last[ln] = '\0';
    if (strcasecmp(name, "WAIT") == 0)
        return (uint64_t)strtoull(last, NULL, 10);
    for (int i = 0; pops[i]; i++)
        if (strcasecmp(name, pops[i]) == 0) {
            double secs = strtod(last, NULL);
            if (secs <= 0) /* 0 = wait forever: only keepalive can tell a dead peer then */
                return UINT64_MAX / 2;
            return (uint64_t)(secs * 1000.0);
        }
    return 0;
}

/* Appends an accepted command to the connection's list and arms the watch if it is the only one. */
static void op_track(struct mutt_redis_conn *c, struct op *op, uint64_t extra_ms)
{
    op->wait_ms = extra_ms;
    op->deadline_ms = uv_now(c->r->loop) + c->r->command_timeout_ms + extra_ms;
    op->prev = c->newest;
    op->next = NULL;
    if (c->newest)
        c->newest->next = op;
    else
        c->oldest = op;
    c->newest = op;
    if (c->oldest == op)
        arm_command_timer(c);
}

static void on_op_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct op *op = privdata;
    struct mutt_redis_conn *c = op->conn;
    redisReply *reply = rp;
    int status;

    if (reply && reply->type == REDIS_REPLY_ERROR && op->script_id >= 0 && !op->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* the server lost its script cache (restart, SCRIPT FLUSH): run the source with EVAL,
         * and reload it so later EVALSHAs hit again. The op stays accepted: one callback. */
        const struct script *s = &c->r->scripts[op->script_id];
        op->retried = true;
        op->argv[0] = "EVAL";
        op->argvlen[0] = 4;
        op->argv[1] = s->source;
        op->argvlen[1] = strlen(s->source);
        if (redisAsyncCommandArgv(ac, on_op_reply, op, op->argc, op->argv, op->argvlen) == REDIS_OK) {
            if (c->ac == ac)
                send_script_load(c, s, NULL);
            op_unlink(op); /* now behind everything sent meanwhile, with a fresh deadline */
            op_track(c, op, 0);
            return;
        }
        reply = NULL; /* the context is going away: report it like any lost connection */
        status = c->state == CONN_CLOSED ? MUTT_ECANCELED : MUTT_EDISCONNECTED;
    } else if (!reply) {
        status = c->null_reply_status;
    } else {
        status = reply->type == REDIS_REPLY_ERROR ? MUTT_EIO : 0;
    }
    if (status == MUTT_EIO && c->r->nsentinels > 0 && c->gen == c->r->gen && reply_means_rediscover(reply)) {
        mutt_log_warn("redis", "%s (%s:%d): %.100s; asking the sentinels again", kind_name(c), c->r->host, c->r->port,
                      reply->str);
        c->r->have_primary = false;
        discovery_start(c->r);
    }
    c->inflight--; /* before the callback, so it can issue the next command at the cap */
    bool was_oldest = c->oldest == op;
    op_unlink(op);
    if (was_oldest && c->ac == ac && c->state == CONN_READY) {
        if (c->oldest) {
            /* the server only starts on the next command now (it may have waited behind a
             * blocking pop): its time runs from here, its own block time included */
            struct op *head = c->oldest;
            uint64_t from_now = uv_now(c->r->loop) + c->r->command_timeout_ms + head->wait_ms;
            if (head->deadline_ms < from_now)
                head->deadline_ms = from_now;
            arm_command_timer(c);
        } else {
            uv_timer_stop(&c->timer);
        }
    }
    if (op->cb)
        op->cb(op->privdata, reply, status);
    free(op);
}

/* Checks shared by every send: fail fast when not connected, MUTT_EFULL at the cap. */
static int conn_can_send(const struct mutt_redis_conn *c)
{
    if (!c)
        return MUTT_EINVAL;
    if (c->kind == CONN_PUBSUB)
        return MUTT_EINVAL;
    if (c->state != CONN_READY || !c->ac || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return MUTT_EDISCONNECTED;
    if (c->inflight >= c->r->max_inflight)
        return MUTT_EFULL;
    return 0;
}

/* A zeroed op for one command on c, with `extra` bytes after it (a script call's argv); NULL on
 * OOM. script_id is -1 for a plain command. */
static struct op *op_new(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, int script_id,
                         size_t extra)
{
    struct op *op = calloc(1, sizeof(*op) + extra);
    if (!op)
        return NULL;
    op->conn = c;
    op->cb = cb;
    op->privdata = privdata;
    op->script_id = script_id;
    return op;
}

static int send_error_code(const struct mutt_redis_conn *c)
{
    return (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? MUTT_EDISCONNECTED : MUTT_ENOMEM;
}

int mutt_redis_command(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, int argc,
                       const char **argv, const size_t *argvlen)
{
    if (argc <= 0 || !argv)
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    struct op *op = op_new(c, cb, privdata, -1, 0);
    if (!op)
        return MUTT_ENOMEM;
    /* hiredis copies the arguments into its output buffer at once (binary safe) */
    if (redisAsyncCommandArgv(c->ac, on_op_reply, op, argc, argv, argvlen) != REDIS_OK) {
        rc = send_error_code(c);
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, blocking_wait_ms(argc, argv, argvlen));
    return 0;
}

int mutt_redis_commandf(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, const char *fmt, ...)
{
    if (!fmt)
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    struct op *op = op_new(c, cb, privdata, -1, 0);
    if (!op)
        return MUTT_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    int hrc = redisvAsyncCommand(c->ac, on_op_reply, op, fmt, ap);
    va_end(ap);
    if (hrc != REDIS_OK) {
        rc = (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? MUTT_EDISCONNECTED : MUTT_EINVAL;
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, 0);
    return 0;
}

int mutt_redis_script_register(struct mutt_redis *r, const char *name, const char *source)
{
    if (!r || !source || !*source)
        return MUTT_EINVAL;
    for (size_t i = 0; i < r->nscripts; i++)
        if (strcmp(r->scripts[i].source, source) == 0)
            return (int)i;
    if (r->nscripts >= MAX_SCRIPTS)
        return MUTT_EFULL;
    struct script *s = &r->scripts[r->nscripts];
    s->name = strdup(name ? name : "script");
    s->source = strdup(source);
    if (!s->name || !s->source) {
        free(s->name);
        free(s->source);
        memset(s, 0, sizeof(*s));
        return MUTT_ENOMEM;
    }
    sha1_hex(source, strlen(source), s->sha);
    r->nscripts++;
    /* connections already up load it now; every later (re)connect loads it in the handshake */
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next)
        if (c->kind != CONN_PUBSUB && c->state == CONN_READY && c->ac)
            send_script_load(c, s, NULL);
    return (int)(r->nscripts - 1);
}

int mutt_redis_evalsha(struct mutt_redis_conn *c, int script_id, int nkeys, const char **keys,
                       const size_t *keylens, int nargs, const char **args, const size_t *arglens,
                       mutt_redis_reply_cb *cb, void *privdata)
{
    if (!c || script_id < 0 || (size_t)script_id >= c->r->nscripts || nkeys < 0 || nargs < 0 ||
        (nkeys > 0 && !keys) || (nargs > 0 && !args))
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    const struct script *s = &c->r->scripts[script_id];
    char nkeys_str[16];
    int nkeys_len = snprintf(nkeys_str, sizeof(nkeys_str), "%d", nkeys);
    int argc = 3 + nkeys + nargs;

    /* one allocation: op, argv pointers, lengths, then copies of nkeys/keys/args (the EVAL retry
     * on NOSCRIPT needs them after the caller's buffers are gone) */
    size_t bytes = (size_t)nkeys_len + 1;
    for (int i = 0; i < nkeys; i++)
        bytes += (keylens ? keylens[i] : strlen(keys[i])) + 1;
    for (int i = 0; i < nargs; i++)
        bytes += (arglens ? arglens[i] : strlen(args[i])) + 1;
    size_t tail = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    struct op *op = op_new(c, cb, privdata, script_id, tail + bytes);
    if (!op)
        return MUTT_ENOMEM;
    op->argc = argc;
    op->argv = (const char **)(op + 1);
    op->argvlen = (size_t *)(op->argv + argc);
    char *data = (char *)(op->argvlen + argc);

    bool have_sha = s->sha[0] != '\0';
    op->argv[0] = have_sha ? "EVALSHA" : "EVAL";
    op->argvlen[0] = strlen(op->argv[0]);
    op->argv[1] = have_sha ? s->sha : s->source;
    op->argvlen[1] = strlen(op->argv[1]);
    op->retried = !have_sha;
    memcpy(data, nkeys_str, (size_t)nkeys_len + 1);
    op->argv[2] = data;
    op->argvlen[2] = (size_t)nkeys_len;
    data += nkeys_len + 1;
    for (int i = 0; i < nkeys + nargs; i++) {
        const char *src = i < nkeys ? keys[i] : args[i - nkeys];
        const size_t *lens = i < nkeys ? keylens : arglens;
        size_t len = lens ? lens[i < nkeys ? i : i - nkeys] : strlen(src);
        memcpy(data, src, len);
        data[len] = '\0';
        op->argv[3 + i] = data;
        op->argvlen[3 + i] = len;
        data += len + 1;
    }
    if (redisAsyncCommandArgv(c->ac, on_op_reply, op, op->argc, op->argv, op->argvlen) != REDIS_OK) {
        rc = send_error_code(c);
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, 0);
    return 0;
}

/* ------------------------------------------------------------------------------ pub/sub */

int mutt_redis_subscribe(struct mutt_redis *r, const char *channel, mutt_redis_message_cb *cb, void *privdata)
{
    if (!r || !channel || !*channel || !cb)
        return MUTT_EINVAL;
    if (r->stopped)
        return MUTT_ESTATE;
    if (r->nsubs >= MAX_SUBSCRIPTIONS)
        return MUTT_EFULL;
    if (!r->pubsub) {
        r->pubsub = conn_new(r, CONN_PUBSUB, "redis-pubsub");
        if (!r->pubsub)
            return MUTT_ENOMEM;
    }
    struct subscription *s = &r->subs[r->nsubs];
    s->channel = strdup(channel);
    if (!s->channel)
        return MUTT_ENOMEM;
    s->cb = cb;
    s->privdata = privdata;
    r->nsubs++;
    struct mutt_redis_conn *c = r->pubsub;
    if (c->state == CONN_READY) {
        /* a failed send is healed by the re-subscription at the next reconnect */
        if (!channel_subscribed_before(r, r->nsubs - 1))
            send_subscribe(c, channel);
    } else if (c->state == CONN_IDLE && r->started) {
        conn_connect(c);
    }
    /* during the SUBSCRIBE step the list was already walked: add this channel to the round
     * (earlier steps pick it up when they get there) */
    else if (c->state == CONN_HANDSHAKE && c->handshake_last_step && c->ac &&
             !channel_subscribed_before(r, r->nsubs - 1)) {
        if (send_subscribe(c, channel) == 0)
            c->handshake_pending++;
    }
    return 0;
}

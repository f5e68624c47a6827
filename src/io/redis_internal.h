/* Private to src/io/redis*.c: the Redis adapter's state and the calls between its files. The
 * connection manager (redis.c) owns every connection's life; the handshake, the command path,
 * pub/sub and Sentinel each live in their own file and reach the manager only through the calls
 * below. Not a public interface: include/mutt/redis.h is. Loop thread only. */
#ifndef MUTT_IO_REDIS_INTERNAL_H
#define MUTT_IO_REDIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <uv.h>

#include "mutt/redis.h"
#include "mutt/redis_sentinels.h"

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

struct resolve;          /* redis.c */
struct sentinel_resolve; /* redis_failover.c */

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

/* redis.c: the connection manager */
const char *redis_kind_name(const struct mutt_redis_conn *c);
bool redis_is_ip_literal(const char *host);
uint64_t redis_backoff_delay_ms(const struct mutt_redis *r, unsigned failures);
void redis_pick_ip(const struct addrinfo *res, char *ip, size_t len);
struct mutt_redis_conn *redis_conn_new(struct mutt_redis *r, enum conn_kind kind, const char *name);
void redis_conn_connect(struct mutt_redis_conn *c);
void redis_conn_ready(struct mutt_redis_conn *c);
void redis_abort_connection(struct mutt_redis_conn *c, const char *why);
void redis_arm_command_timer(struct mutt_redis_conn *c);

/* redis_handshake.c: AUTH, SELECT, ROLE, then SCRIPT LOAD or SUBSCRIBE, once connected */
void redis_handshake_start(struct mutt_redis_conn *c);

/* redis_command.c: accepted commands and scripts */
int redis_send_script_load(struct mutt_redis_conn *c, const struct script *s, redisCallbackFn *fn);

/* redis_pubsub.c */
bool redis_channel_subscribed_before(const struct mutt_redis *r, size_t idx);
int redis_send_subscribe(struct mutt_redis_conn *c, const char *channel);

/* redis_failover.c: Sentinel mode (nsentinels > 0) */
void redis_discovery_start(struct mutt_redis *r);
void redis_sw_connect(struct mutt_redis *r);
void redis_disc_drop(struct mutt_redis *r);
void redis_sw_drop(struct mutt_redis *r);
bool redis_reply_means_rediscover(const redisReply *reply);

#endif

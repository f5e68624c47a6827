/* Owns the Redis connections on the loop: one command connection (pipelined), any number of
 * dedicated connections (one per blocking consumer), one pub/sub connection; their connects,
 * AUTH (CURRENT then NEXT password), SELECT, Lua script loading and reconnects with capped
 * exponential backoff. Uses its own libuv glue (hiredis 0.14's adapter hangs on refused
 * sockets). Knows no queue names: stages pass keys in. Loop thread only. */
#ifndef MUTT_REDIS_H
#define MUTT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct redisReply;       /* hiredis's reply (opaque here; the .c files include <hiredis/hiredis.h>) */
struct mutt_redis;      /* the manager (opaque) */
struct mutt_redis_conn; /* one connection (opaque) */

struct mutt_redis_opts {
    const char *host;           /* IP literal or name (names resolved with uv_getaddrinfo) */
    int port;
    int db;                     /* SELECT after AUTH when > 0 */
    const char *pass_current;   /* NULL/"" = no AUTH */
    const char *pass_next;      /* tried when CURRENT is refused */
    uint64_t connect_timeout_ms;
    uint64_t reconnect_min_ms;  /* first retry delay (default 100) */
    uint64_t reconnect_max_ms;  /* backoff cap (default 5000) */
    size_t max_inflight;        /* per connection; above it commands fail with MUTT_EFULL */
    uint64_t command_timeout_ms; /* D48 (default 5000): when the oldest outstanding command of a
                                    connection has no reply this long after it was sent or became
                                    the oldest (blocking pops: their block time plus this; WAIT:
                                    its timeout plus this), the connection is dropped and
                                    reconnected; its
                                    commands are answered MUTT_EDISCONNECTED ("in doubt": the
                                    server may still run them). The pub/sub connection sends no
                                    commands and relies on TCP keepalive. */
    /* Sentinel (D37, D53). sentinels NULL/"" = none: host/port are used as they are. Otherwise
     * host/port are ignored; the primary is asked of the sentinels in turn (SENTINEL
     * get-master-addr-by-name, on a short-lived connection bounded by connect_timeout_ms), every
     * connection confirms with ROLE that it reached a master, and a lost connection, a
     * -READONLY/-LOADING/-MASTERDOWN/-UNBLOCKED reply or a ROLE that is not master triggers
     * rediscovery; when the primary's address changes every connection moves to it. Sentinel
     * hosts must be IP literals (no name lookup on the loop). */
    const char *sentinels;        /* "host:port,host:port,..." */
    const char *sentinel_master;  /* default "mymaster" */
    const char *sentinel_pass;    /* AUTH on the sentinels; NULL/"" = none */
};

/* Called with the reply (borrowed: copy what you keep; NULL when status != 0) exactly once per
 * accepted command. status: 0, MUTT_EDISCONNECTED (connection lost before the reply),
 * MUTT_ECANCELED (manager stopped), MUTT_EIO (reply is a Redis error: then reply is non-NULL and
 * reply->type == REDIS_REPLY_ERROR so the caller can read the message). */
typedef void mutt_redis_reply_cb(void *privdata, struct redisReply *reply, int status);
/* Connection state changes: connected=true after AUTH/SELECT/scripts succeeded. */
typedef void mutt_redis_state_cb(void *privdata, struct mutt_redis_conn *conn, bool connected);
/* Pub/sub message on a subscribed channel; channel and message are borrowed. */
typedef void mutt_redis_message_cb(void *privdata, const char *channel, const char *message, size_t len);

/* Creates the manager (copies opts strings). NULL on allocation failure. Nothing connects
 * until mutt_redis_start. */
struct mutt_redis *mutt_redis_create(uv_loop_t *loop, const struct mutt_redis_opts *opts);
/* Starts connecting the command connection (and pub/sub, once anyone subscribed). Returns 0. */
int mutt_redis_start(struct mutt_redis *r);
/* Stops every connection: pending commands get MUTT_ECANCELED, handles are closed; the
 * manager may be destroyed once the loop has run the close callbacks (mutt_redis_destroy does
 * it safely when called after uv_run returns, or schedules it). */
void mutt_redis_stop(struct mutt_redis *r);
void mutt_redis_destroy(struct mutt_redis *r);
/* Updates passwords used by the next (re)connect (secrets rotation). Copies. */
void mutt_redis_set_passwords(struct mutt_redis *r, const char *current, const char *next);
/* Updates the sentinels' password used by the next query or watch (D53: a Vault key). Copies. */
void mutt_redis_set_sentinel_password(struct mutt_redis *r, const char *pass);

/* The shared pipelined command connection. Never NULL after create. */
struct mutt_redis_conn *mutt_redis_cmd(struct mutt_redis *r);
/* The pub/sub connection, to observe its state with mutt_redis_conn_on_state: it reports
 * connected once every channel's SUBSCRIBE was confirmed (after each reconnect too, so a
 * subscriber can re-read what it may have missed). NULL until the first mutt_redis_subscribe.
 * Owned by the manager; commands on it fail with MUTT_EINVAL. */
struct mutt_redis_conn *mutt_redis_pubsub(struct mutt_redis *r);
/* A new dedicated connection (for BRPOPLPUSH and other blocking commands), started at once
 * when the manager is started. Owned by the manager; freed by mutt_redis_conn_close or stop.
 * `name` (copied) appears in logs. NULL on allocation failure. */
struct mutt_redis_conn *mutt_redis_conn_open(struct mutt_redis *r, const char *name);
void mutt_redis_conn_close(struct mutt_redis_conn *c);
bool mutt_redis_conn_connected(const struct mutt_redis_conn *c);
/* Commands accepted on `c` and not answered yet (bounded by max_inflight and, in time, by
 * command_timeout_ms). */
size_t mutt_redis_conn_inflight(const struct mutt_redis_conn *c);
/* Observers of a connection's state (health, stages that must resubscribe/recover). There is no
 * way to remove one: observe only connections whose lifetime you control, and destroy users of
 * the manager (relq, dynconfig, pod) before the manager itself. */
int mutt_redis_conn_on_state(struct mutt_redis_conn *c, mutt_redis_state_cb *cb, void *privdata);
/* True when the command connection is up (what /health reports as "redis"). */
bool mutt_redis_connected(const struct mutt_redis *r);

/* Sentinel mode: the primary in use as "host:port" into buf ("" while none is known); without
 * sentinels: REDIS_HOST:REDIS_PORT. Returns buf. */
const char *mutt_redis_primary(const struct mutt_redis *r, char *buf, size_t len);
/* NULL without sentinels; else "ok" (every sentinel asked last answered), "degraded" (some did
 * not), "down" (none answered in the last round). */
const char *mutt_redis_sentinel_state(const struct mutt_redis *r);

/* Blocking discovery for the CLI (no loop runs there): asks the sentinels of `o` in turn and
 * writes the primary's host and port. Returns 0, or a negative MUTT_E* with a reason in why. */
int mutt_redis_sentinel_discover_sync(const struct mutt_redis_opts *o, char *host, size_t host_len, int *port,
                                      char *why, size_t why_len);

/* Sends a command (binary safe; argv copied at once). Returns 0 and calls cb exactly once,
 * or fails synchronously without calling cb: MUTT_EDISCONNECTED when not connected (fail fast),
 * MUTT_EFULL above max_inflight. cb may be NULL (fire and forget). */
int mutt_redis_command(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, int argc,
                       const char **argv, const size_t *argvlen);
/* printf-style convenience over redisAsyncCommand (for fixed commands only: %s/%b/%d). */
int mutt_redis_commandf(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, const char *fmt, ...);

/* Lua scripts: register once at start-up (before or after connect); they are SCRIPT LOADed on
 * every (re)connect. Returns a script id >= 0, or a negative MUTT_E*. `source` is copied. */
int mutt_redis_script_register(struct mutt_redis *r, const char *name, const char *source);
/* EVALSHA with NOSCRIPT handled transparently (falls back to EVAL and reloads).
 * keys and args are binary safe. Same callback rules as mutt_redis_command. */
int mutt_redis_evalsha(struct mutt_redis_conn *c, int script_id, int nkeys, const char **keys,
                       const size_t *keylens, int nargs, const char **args, const size_t *arglens,
                       mutt_redis_reply_cb *cb, void *privdata);

/* Subscribes (on the manager's pub/sub connection, re-subscribed after reconnect) to a channel.
 * Returns 0 or a negative MUTT_E*. */
int mutt_redis_subscribe(struct mutt_redis *r, const char *channel, mutt_redis_message_cb *cb, void *privdata);

#endif

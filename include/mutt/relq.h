/* Owns one stage's reliable consumption of a Redis list (CONTRACT §4/§5, D3, D16): BRPOPLPUSH
 * into <processing prefix>:<pod> on a dedicated connection, bounded concurrency, atomic
 * "push the outcome + LREM the item" completion, the stage heartbeat, the janitor that returns
 * dead pods' processing lists, and the graceful stop that returns unfinished items. Completions
 * are batched per loop turn (D51). Knows no
 * queue names (the stage passes them in) and nothing about item contents. Loop thread only. */
#ifndef MUTT_RELQ_H
#define MUTT_RELQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/redis.h"

struct mutt_relq;      /* one consumer (opaque) */
struct mutt_relq_item; /* one popped item handed to the stage (opaque) */

struct mutt_relq_opts {
    const char *name;                /* for logs and the connection name ("alerter"); copied */
    const char *source;              /* queue consumed, e.g. mutt:ingest_queue; copied */
    const char *processing_prefix;   /* e.g. mutt:processing:alerter -> list <prefix>:<pod> */
    const char *heartbeat_prefix;    /* e.g. mutt:heartbeat:alerter -> key <prefix>:<pod> */
    const char *pod;                 /* POD_NAME; copied */
    unsigned block_timeout_s;        /* BRPOPLPUSH_TIMEOUT (0 -> 5) */
    size_t max_inflight;             /* items handed out and not released (0 -> 64) */
    uint64_t heartbeat_interval_ms;  /* HEARTBEAT_INTERVAL (0 -> 10000) */
    unsigned heartbeat_expiry_s;     /* HEARTBEAT_EXPIRY (0 -> 30) */
    uint64_t janitor_interval_ms;    /* JANITOR_INTERVAL (0 -> 60000) */
    size_t recover_batch;            /* items moved per Lua call when recovering a list (0 -> 200):
                                        bounds how long one script blocks the server */
    const char *source_bytes_key;    /* D52: the source's byte counter (mutt_queue_bytes_key), kept by
                                        every pop, return and retry push, reconciled by each janitor
                                        pass; NULL = none. Copied */
};

/* A popped item is handed to the stage. `data`/`len` are the item's bytes, borrowed: they stay
 * valid until the item is released (mutt_relq_item_data gives them again). The stage must
 * eventually complete or abandon `item` (or destroy the relq). Never called while paused. */
typedef void mutt_relq_item_cb(void *priv, struct mutt_relq_item *item, const char *data, size_t len);

/* Completion result. status:
 *   0                 outcome pushed and the item removed from the processing list, atomically;
 *   MUTT_ENOTFOUND    the item was no longer in the processing list (a janitor or our stop moved
 *                     it back to the source): NOTHING was pushed;
 *   for both, the handle is freed when the callback returns.
 *   MUTT_EDISCONNECTED / MUTT_ECANCELED: the call failed (on EDISCONNECTED it may or may not
 *                     have run; a retry is safe: it is duplicate-proof);
 *   MUTT_EIO          Redis refused the call or one of the item's pushes: the item is still in
 *                     the processing list, part of its outcome may have been pushed (a retry or
 *                     a janitor's return can duplicate it; nothing is lost).
 *   For these the handle stays valid: complete again later, or abandon it. */
typedef void mutt_relq_complete_cb(void *priv, struct mutt_relq_item *item, int status);
/* End of mutt_relq_stop. status 0: every item of our processing list went back to the source
 * and the heartbeat is deleted; negative MUTT_E*: Redis failed, what is left in the processing
 * list is recovered by a janitor once the heartbeat expires (nothing is lost). */
typedef void mutt_relq_stopped_cb(void *priv, int status);
/* Processing list depth (LLEN); depth is -1 when status != 0. */
typedef void mutt_relq_depth_cb(void *priv, int status, long long depth);

enum mutt_relq_push_kind {
    MUTT_RELQ_LPUSH = 0, /* LPUSH key payload: back of a queue consumed with (B)RPOP* */
    MUTT_RELQ_RPUSH,     /* RPUSH key payload: front of such a queue */
    MUTT_RELQ_ZADD,      /* ZADD key score payload (the forwarder's retry set, D4) */
    MUTT_RELQ_HSET,      /* lineage (D63): HSET key <field> <value> from payload "<field> <value>", then
                            EXPIRE key <score> seconds; its failure never refuses the item */
};

/* One write made durable together with the item's removal. Everything borrowed for the call. */
struct mutt_relq_push {
    enum mutt_relq_push_kind kind;
    const char *key;
    const char *payload; /* binary safe */
    size_t len;
    double score;        /* ZADD only */
};

#define MUTT_RELQ_MAX_PUSHES 8

struct mutt_relq_stats {
    uint64_t popped;            /* items we moved source -> processing list */
    uint64_t delivered;         /* items handed to the stage */
    uint64_t completed;         /* completions that removed the item (outcome durable) */
    uint64_t already_gone;      /* completions that found the item gone (nothing pushed) */
    uint64_t janitor_recovered; /* items moved back to the source from dead pods' lists */
    uint64_t own_recovered;     /* items moved back from our own list (start, after reconnect) */
    uint64_t returned_on_stop;  /* items moved back to the source by the graceful stop */
    uint64_t janitor_runs;      /* completed janitor passes */
    uint64_t bytes_reconciles;  /* byte counter reconciles that ran (source_bytes_key set) */
    size_t inflight;            /* popped, not yet released (held while paused + handed out) */
    size_t held;                /* popped while paused, not yet handed out */
    long long processing_depth; /* last LLEN of our processing list seen (-1 unknown) */
};

/* Creates a consumer on manager `r` (copies opts). Registers its Lua scripts with `r`. Nothing
 * happens until mutt_relq_start. NULL on bad opts (a name missing) or allocation failure.
 * on_item/priv receive every item. */
struct mutt_relq *mutt_relq_create(uv_loop_t *loop, struct mutt_redis *r, const struct mutt_relq_opts *opts,
                                   mutt_relq_item_cb *on_item, void *priv);
/* Starts: opens the dedicated connection; once connected writes the heartbeat and returns our
 * own processing list (a crashed predecessor's) to the source in the same Lua call, then
 * consumes; runs the janitor now and every janitor_interval_ms; refreshes the heartbeat.
 * Returns 0, MUTT_ESTATE when already started, MUTT_ENOMEM. */
int mutt_relq_start(struct mutt_relq *q);
/* Graceful stop: no new pops (the dedicated connection is closed at once), items popped but not
 * handed out are dropped from memory, then waits up to drain_timeout_ms for the stage to
 * release what it holds; then moves everything left in our processing list back to the front
 * of the source (the next to be consumed) and deletes the heartbeat. `cb` is called exactly
 * once (never from inside this call) when it returns 0; MUTT_ESTATE when not running.
 * Handles the stage still holds stay valid until destroy (completing one then yields
 * MUTT_ENOTFOUND once it was returned). */
int mutt_relq_stop(struct mutt_relq *q, uint64_t drain_timeout_ms, mutt_relq_stopped_cb *cb, void *priv);
/* Frees everything, including item handles the stage still holds; no callback runs after it.
 * Not from inside a relq callback. Call it before destroying the Redis manager. NULL is fine.
 * Without a prior stop the processing list is left as is (a janitor recovers it). */
void mutt_relq_destroy(struct mutt_relq *q);

/* No new pops while paused (circuit breaker OPEN, backpressure defer); items already handed out
 * finish normally; an item that arrives from a pop already in flight is held, not handed out,
 * until resume. The stage combines its own reasons into one pause state. */
void mutt_relq_pause(struct mutt_relq *q);
void mutt_relq_resume(struct mutt_relq *q);
bool mutt_relq_paused(const struct mutt_relq *q);
/* Live cap (moog_max_inflight); 0 is taken as 1. Lowering it never recalls handed-out items. */
void mutt_relq_set_max_inflight(struct mutt_relq *q, size_t max_inflight);

/* Completes `item` (D3, D51): the completions made in one loop turn go out together in ONE Lua
 * call (up to 128 items per call). For each item still in our processing list the call applies
 * `pushes` in order (several items' pushes to one key are one command) and then removes exactly
 * one occurrence of the item's bytes (identical duplicates are interchangeable); an item no
 * longer there gets nothing pushed (MUTT_ENOTFOUND). A push that Redis refuses (a wrong-type
 * target) leaves its item in the list, answered MUTT_EIO: an outcome may then be duplicated by a
 * retry, never lost. pushes (up to MUTT_RELQ_MAX_PUSHES, may be 0 for a plain ack) are copied.
 * Returns 0 and calls cb exactly once, never from inside this call (cb may be NULL), or fails
 * without calling it: MUTT_EINVAL, MUTT_ESTATE (a completion of this item is already running),
 * MUTT_EDISCONNECTED, MUTT_ENOMEM; the handle then stays valid. A full command connection is
 * waited out inside relq. Works after stop too. */
int mutt_relq_complete(struct mutt_relq_item *item, const struct mutt_relq_push *pushes, size_t npushes,
                       mutt_relq_complete_cb *cb, void *priv);
/* Releases the handle without touching Redis: the item stays in the processing list and goes
 * back to the source at our stop, at the next reconnect recovery or by a janitor. Returns 0, or
 * MUTT_ESTATE while a completion of it is running (the handle then stays valid). */
int mutt_relq_abandon(struct mutt_relq_item *item);
/* The item's bytes (borrowed, valid until the handle is released). */
const char *mutt_relq_item_data(const struct mutt_relq_item *item, size_t *len);

/* Counters for metrics; copies into *out. */
void mutt_relq_get_stats(const struct mutt_relq *q, struct mutt_relq_stats *out);
/* LLEN of our processing list (for mutt_*_processing_list_depth). Same callback rules as
 * mutt_redis_command. */
int mutt_relq_processing_depth(struct mutt_relq *q, mutt_relq_depth_cb *cb, void *priv);
/* Our processing list's key (<prefix>:<pod>) and heartbeat key, for logs and tests. */
const char *mutt_relq_processing_list(const struct mutt_relq *q);
const char *mutt_relq_heartbeat_key(const struct mutt_relq *q);
/* Runs the janitor now (also done by the timer). Returns 0, or MUTT_ESTATE when a pass is
 * already running or the relq is not running. */
int mutt_relq_run_janitor(struct mutt_relq *q);

#endif

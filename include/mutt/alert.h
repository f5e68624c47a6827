/* The alert stage (role alert, CONTRACT §4, D1 D3 D5 D12-D16 D28 D33): reliable consume of the
 * ingest queue, rule matching, alert items, event audit rows (through mutt:audit:pending into
 * PostgreSQL in batches), unhandled-event meta-alerts, poison handling and backpressure. Split by
 * concern: alert.c (lifecycle, per-item flow), alert_cache.c (rules/dev hosts/teams from PG),
 * alert_audit.c (pending rows -> PG batches), alert_unhandled.c (counting Lua; the web stage
 * serves GET /unhandled from the same Redis keys).
 * Owns its blocking Redis connection (through relq); uses the shared command connection and the
 * PG pool. Loop thread only. */
#ifndef MUTT_ALERT_H
#define MUTT_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/ctx.h"

struct redisReply; /* hiredis's reply (opaque here) */

extern const struct mutt_stage mutt_alert_stage;

/* Test hooks on the running stage (the one instance of this process). */
bool mutt_alert_consuming(void);  /* started and consuming (first cache load done) */
size_t mutt_alert_busy(void);     /* items handed out and not yet finished */
struct mutt_alert_cache;
struct mutt_alert_audit;
const struct mutt_alert_cache *mutt_alert_stage_cache(void); /* NULL when not running */
struct mutt_alert_audit *mutt_alert_stage_audit(void);       /* NULL when not running */

/* Redis names the contract does not make configurable. */
#define MUTT_ALERT_AUDIT_PENDING "mutt:audit:pending"       /* audit rows waiting for PG (W20) */
#define MUTT_ALERT_AUDIT_CLAIM_PREFIX "mutt:audit:processing" /* <prefix>:<pod>:<slot> batches */

/* ---- cache (alert_cache.c) --------------------------------------------------------------- */

struct mutt_pg;
struct mutt_redis;
struct mutt_metrics;
struct mutt_ruleset;
struct mutt_alert_cache;

/* Completion of one load: status 0 (the new snapshot is in use) or a negative MUTT_E* (the old
 * one is kept; mutt_alert_cache_last_error says why); seconds = time the load took. Also called
 * with MUTT_ECANCELED when the PG pool stops under a load. */
typedef void mutt_alert_cache_loaded_cb(void *privdata, int status, double seconds);

/* Borrows pg (must outlive the cache). cb is called after every load. NULL on OOM. */
struct mutt_alert_cache *mutt_alert_cache_create(struct mutt_pg *pg, mutt_alert_cache_loaded_cb *cb, void *privdata);
/* Starts a load (one SELECT returning rules, dev hosts and teams from one snapshot). While a load
 * is in flight, further calls coalesce into one more load after it. Returns 0, or the pool's
 * synchronous error (MUTT_EDISCONNECTED, MUTT_EFULL...) without calling cb. */
int mutt_alert_cache_reload(struct mutt_alert_cache *c);
/* Frees the cache now, or (when a load is in flight) once the pool answered. NULL is fine. */
void mutt_alert_cache_destroy(struct mutt_alert_cache *c);
bool mutt_alert_cache_ready(const struct mutt_alert_cache *c);   /* a load has succeeded */
bool mutt_alert_cache_loading(const struct mutt_alert_cache *c);
const char *mutt_alert_cache_last_error(const struct mutt_alert_cache *c); /* "" after success */
/* The current snapshot's compiled rules (NULL before the first load). Valid until the next
 * successful load: use it synchronously, never across a callback. */
const struct mutt_ruleset *mutt_alert_cache_rules(const struct mutt_alert_cache *c);
bool mutt_alert_cache_is_dev(const struct mutt_alert_cache *c, const char *hostname);
/* device_teams[hostname], borrowed like the rules; NULL when the host has no row. */
const char *mutt_alert_cache_team(const struct mutt_alert_cache *c, const char *hostname);
void mutt_alert_cache_counts(const struct mutt_alert_cache *c, size_t *rules, size_t *dev_hosts, size_t *teams);

/* ---- audit writer (alert_audit.c) ---------------------------------------------------------- */

/* Rows reach PostgreSQL in two steps (D3, W20): the stage pushes each row's JSON to
 * mutt:audit:pending inside the same Lua call that completes the event, then this writer claims
 * batches from the tail of the pending list into a per-pod, per-slot claim list (atomically),
 * inserts them with one multi-row INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING (D28)
 * and deletes the claim list once PostgreSQL committed. A crash between the two leaves the batch
 * in the claim list: the same pod re-inserts it at start, any pod's janitor moves the lists of a
 * pod without heartbeat back to pending, and the unique key (event_id, event_timestamp) makes the
 * second insert a no-op. While PostgreSQL is down rows simply wait in pending. */
struct mutt_alert_audit_opts {
    const char *pending_key;      /* MUTT_ALERT_AUDIT_PENDING */
    const char *claim_prefix;     /* MUTT_ALERT_AUDIT_CLAIM_PREFIX */
    const char *pod;              /* this pod's name */
    const char *heartbeat_prefix; /* ALERTER_HEARTBEAT_PREFIX: liveness of other pods (janitor) */
    const char *dlq_key;          /* ALERTER_DLQ_NAME: rows PostgreSQL refuses one by one */
    size_t batch_size;            /* AUDIT_BATCH_SIZE (1..100000) */
    unsigned slots;               /* batches in flight at once (1..8) */
    uint64_t flush_interval_ms;   /* how often an idle slot looks for rows (default 50) */
    uint64_t retry_ms;            /* pause after PostgreSQL failed (default 1000) */
};

struct mutt_alert_audit;

/* One audit row, as the stage knows it. Strings are borrowed; raw is the event JSON. */
struct mutt_alert_audit_row {
    const char *event_timestamp; /* ISO 8601 UTC ("YYYY-MM-DDTHH:MM:SS.mmmZ") */
    const char *event_id;
    const char *correlation_id;  /* may be NULL */
    const char *hostname;
    int64_t rule_id;
    const char *handling_decision;
    bool forwarded;
    const char *raw;             /* the event as compact JSON object text (spliced in as is) */
    size_t raw_len;
};

/* Serialises a row for mutt:audit:pending into a malloc'd NUL-terminated string (*out, length in
 * *len). Returns 0, MUTT_EINVAL (a string is not valid UTF-8) or MUTT_ENOMEM. Pure. */
int mutt_alert_audit_row_json(const struct mutt_alert_audit_row *row, char **out, size_t *len);

/* Borrows loop, redis, pg, metrics; copies opts strings. Registers its scripts and metrics
 * (mutt_db_write_latency_ms, mutt_alerter_audit_rows_total{result}, mutt_alerter_audit_pending).
 * NULL on OOM or when a script/metric cannot be registered. */
struct mutt_alert_audit *mutt_alert_audit_create(uv_loop_t *loop, struct mutt_redis *redis, struct mutt_pg *pg,
                                                 struct mutt_metrics *metrics,
                                                 const struct mutt_alert_audit_opts *opts);
/* Starts the flush timer. Returns 0 or MUTT_ESTATE. */
int mutt_alert_audit_start(struct mutt_alert_audit *a);
/* Stops claiming; calls done once every Redis/PG call in flight has answered (claimed rows not
 * yet inserted stay in the claim list for the next start or a janitor). done may run inside. */
void mutt_alert_audit_stop(struct mutt_alert_audit *a, void (*done)(void *privdata), void *privdata);
/* Frees it; only after stop's done ran (or it was never started). NULL is fine. */
void mutt_alert_audit_destroy(struct mutt_alert_audit *a);
/* One janitor pass over every claim list: lists of pods whose heartbeat key is gone go back to
 * pending, atomically per list (safe when several pods run it at once). Asynchronous; returns 0
 * or a synchronous Redis error. */
int mutt_alert_audit_janitor(struct mutt_alert_audit *a);
/* Rows committed to PostgreSQL / sent to the DLQ by this writer since create (tests). */
uint64_t mutt_alert_audit_rows_written(const struct mutt_alert_audit *a);
uint64_t mutt_alert_audit_rows_dlq(const struct mutt_alert_audit *a);
/* Pending length seen by the last claim (-1 before the first). */
int64_t mutt_alert_audit_pending_seen(const struct mutt_alert_audit *a);

/* ---- unhandled events (alert_unhandled.c) -------------------------------------------------- */

struct mutt_config;
struct mutt_http;
struct mutt_alert_unhandled;

/* One unmatched event to count. Strings borrowed for the call. */
struct mutt_alert_unhandled_hit {
    const char *hostname;
    const char *message;
    size_t message_len;
    const char *event_id;  /* identifies the event that crosses the threshold (see the script) */
    int64_t threshold;     /* unhandled_threshold, read live */
    int64_t expiry_s;      /* unhandled_expiry_seconds, read live */
    int64_t now_ms;        /* wall clock (first_seen / last_seen) */
    int64_t max_templates; /* unhandled_max_templates_per_host, read live (D62) */
};

enum mutt_alert_unhandled_verdict {
    MUTT_ALERT_UNHANDLED_COUNTED, /* counted, no meta-alert */
    MUTT_ALERT_UNHANDLED_TRIGGER, /* counted and this event raises the window's meta-alert */
    MUTT_ALERT_UNHANDLED_CAPPED,  /* a new template for a host already at max_templates: not tracked */
};

/* status 0 with MUTT_ALERT_UNHANDLED_TRIGGER exactly once per (hostname, template) window: the
 * caller pushes the meta-alert. Any other status: MUTT_EDISCONNECTED / MUTT_ECANCELED / MUTT_EIO
 * (verdict then meaningless). */
typedef void mutt_alert_unhandled_cb(void *privdata, int status, enum mutt_alert_unhandled_verdict verdict);

/* Borrows loop and redis; copies prefix (UNHANDLED_PREFIX). Registers the counting script. cfg
 * is not read (kept only while alert.c still passes it). NULL on OOM. */
struct mutt_alert_unhandled *mutt_alert_unhandled_create(uv_loop_t *loop, struct mutt_redis *redis,
                                                         const struct mutt_config *cfg, const char *prefix);
/* NULL is fine. Counts still queued are dropped without a callback; the memory goes once the
 * loop runs (a handle closes). */
void mutt_alert_unhandled_destroy(struct mutt_alert_unhandled *u);
/* Counts one event; the events counted in one loop turn (up to 256) share ONE Lua call, keys named by unhandled_key.h (D36): counter
 * `<prefix>:c:<member>` (EXPIRE expiry_s set at the first increment: a fixed window), marker
 * `<prefix>:m:<member>` set with the counter's remaining TTL when the count reaches >= threshold;
 * top ZSET `<prefix>:_top` of members `<hostlen>:<hostname>:<hash16>` and info hash
 * `<prefix>:i:<member>` (hostname, template, sample, first_seen, last_seen) for the GET; the
 * host's tracked templates `<prefix>:h:<hostlen>:<hostname>` for the max_templates cap (D62).
 * Returns 0 and calls cb exactly once, never from inside this call, or fails synchronously
 * (MUTT_EINVAL: a hostname too long for a key, MUTT_ENOMEM). The hit is copied. */
int mutt_alert_unhandled_count(struct mutt_alert_unhandled *u, const struct mutt_alert_unhandled_hit *hit,
                               mutt_alert_unhandled_cb *cb, void *privdata);

#endif

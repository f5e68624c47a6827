/* Dynamic configuration (CONTRACT §2, D19): one schema table of every runtime-tunable key, an
 * in-memory cache of `mutt:config:<key>` kept fresh by pub/sub (`mutt:config:updates`) and a 5 s
 * re-read, with the precedence Redis > env > file > default. Reads never block. Owns no Redis
 * connection (it borrows the shared manager) and writes no audit rows (the web API does). Loop
 * thread only. */
#ifndef MUTT_DYNCONFIG_H
#define MUTT_DYNCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/config.h"

struct mutt_redis;
struct mutt_dynconfig; /* opaque: the cache and its Redis plumbing */

#define MUTT_DYNCONFIG_PREFIX "mutt:config:"
#define MUTT_DYNCONFIG_CHANNEL "mutt:config:updates"
#define MUTT_DYNCONFIG_REFRESH_MS 5000u   /* cache TTL: every key is re-read this often */
#define MUTT_DYNCONFIG_MAX_VALUE 1024u    /* longest accepted value, in bytes */

enum mutt_dyn_type {
    MUTT_DYN_INT,    /* int64 within [min,max] */
    MUTT_DYN_DOUBLE, /* finite, within [min,max] */
    MUTT_DYN_BOOL,   /* true/false/1/0/yes/no/on/off, stored as "true"/"false" */
    MUTT_DYN_STRING, /* any text up to MUTT_DYNCONFIG_MAX_VALUE */
    MUTT_DYN_ENUM,   /* one of `allowed` (case-insensitive, stored in the table's spelling) */
};

/* Where an effective value came from (GET /config "source"). */
enum mutt_dyn_source { MUTT_DYN_SRC_DEFAULT = 0, MUTT_DYN_SRC_FILE, MUTT_DYN_SRC_ENV, MUTT_DYN_SRC_REDIS };

/* One id per row of the schema table, in table order (src/core/dynconfig_schema.c checks the
 * count at compile time; tests/unit/test_dynconfig_schema.c checks that row id has .id == id and
 * that names are unique). Code names keys by these ids, so a typo fails to compile; names are
 * only for keys that come from outside (HTTP API, CLI, pub/sub, files): mutt_dynconfig_def_find. */
enum mutt_dyn_key {
    MUTT_DYN_MAX_INGEST_QUEUE_SIZE,
    MUTT_DYN_MAX_INGEST_QUEUE_BYTES,
    MUTT_DYN_INGEST_MAX_RATE,
    MUTT_DYN_INGEST_RATE_WINDOW,
    MUTT_DYN_CACHE_RELOAD_INTERVAL,
    MUTT_DYN_UNHANDLED_THRESHOLD,
    MUTT_DYN_UNHANDLED_EXPIRY_SECONDS,
    MUTT_DYN_UNHANDLED_MAX_TEMPLATES_PER_HOST,
    MUTT_DYN_SAMPLE_EVENTS,
    MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD,
    MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD,
    MUTT_DYN_ALERTER_SHED_MODE,
    MUTT_DYN_ALERTER_DEFER_SLEEP_MS,
    MUTT_DYN_MOOG_RATE_LIMIT,
    MUTT_DYN_MOOG_RATE_PERIOD,
    MUTT_DYN_MOOG_MAX_INFLIGHT,
    MUTT_DYN_CIRCUIT_BREAKER_THRESHOLD,
    MUTT_DYN_CIRCUIT_BREAKER_TIMEOUT,
    MUTT_DYN_REMEDIATION_ENABLED,
    MUTT_DYN_REMEDIATION_INTERVAL,
    MUTT_DYN_REMEDIATION_BATCH_SIZE,
    MUTT_DYN_MAX_POISON_RETRIES,
    MUTT_DYN_SLO_INGESTOR_AVAILABILITY_WINDOW_HOURS,
    MUTT_DYN_SLO_INGESTOR_AVAILABILITY_BURN_RATE_WARNING,
    MUTT_DYN_SLO_INGESTOR_AVAILABILITY_BURN_RATE_CRITICAL,
    MUTT_DYN_SLO_INGESTOR_LATENCY_P99_WINDOW_HOURS,
    MUTT_DYN_SLO_INGESTOR_LATENCY_P99_BURN_RATE_WARNING,
    MUTT_DYN_SLO_INGESTOR_LATENCY_P99_BURN_RATE_CRITICAL,
    MUTT_DYN_SLO_INGESTOR_LATENCY_P99_UPPER_BOUND_WARNING,
    MUTT_DYN_SLO_INGESTOR_LATENCY_P99_UPPER_BOUND_CRITICAL,
    MUTT_DYN_SLO_FORWARDER_AVAILABILITY_WINDOW_HOURS,
    MUTT_DYN_SLO_FORWARDER_AVAILABILITY_BURN_RATE_WARNING,
    MUTT_DYN_SLO_FORWARDER_AVAILABILITY_BURN_RATE_CRITICAL,
    MUTT_DYN_SLO_FORWARDER_LATENCY_P99_WINDOW_HOURS,
    MUTT_DYN_SLO_FORWARDER_LATENCY_P99_BURN_RATE_WARNING,
    MUTT_DYN_SLO_FORWARDER_LATENCY_P99_BURN_RATE_CRITICAL,
    MUTT_DYN_SLO_FORWARDER_LATENCY_P99_UPPER_BOUND_WARNING,
    MUTT_DYN_SLO_FORWARDER_LATENCY_P99_UPPER_BOUND_CRITICAL,
    MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_WINDOW_HOURS,
    MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_BURN_RATE_WARNING,
    MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_BURN_RATE_CRITICAL,
    MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_WINDOW_HOURS,
    MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_BURN_RATE_WARNING,
    MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_BURN_RATE_CRITICAL,
    MUTT_DYN_COUNT_
};
/* mutt_dynconfig_watch: every key. */
#define MUTT_DYN_ALL_KEYS MUTT_DYN_COUNT_

/* One row of the schema (src/core/dynconfig_schema.c). */
struct mutt_dynconfig_def {
    enum mutt_dyn_key id;          /* its index in the table */
    const char *name;              /* key without the mutt:config: prefix */
    enum mutt_dyn_type type;
    const char *default_value;     /* used when neither Redis nor the static twin supplies one */
    double min, max;               /* INT/DOUBLE range; ignored when min > max */
    const char *const *allowed;    /* ENUM: NULL-terminated list of values; NULL otherwise */
    enum mutt_cfg_key static_twin; /* static key giving the env/file fallback; MUTT_CFG__COUNT = none */
    const char *unit;              /* "s", "ms", "events", ... or "" */
    const char *description;
};

/* ---- schema (pure) ---------------------------------------------------------------------- */

size_t mutt_dynconfig_count(void);
/* Row i (0 <= i < count), NULL past the end. */
const struct mutt_dynconfig_def *mutt_dynconfig_def_at(size_t i);
/* Row for `key` (exact, case-sensitive), NULL when unknown. */
const struct mutt_dynconfig_def *mutt_dynconfig_def_find(const char *key);
const char *mutt_dynconfig_type_name(enum mutt_dyn_type t);
/* Legacy names (v2.3, issue 17): `alerter_queue_warn` and `alerter_queue_shed` are aliases of
 * alerter_queue_warn_threshold / alerter_queue_shed_threshold. Reads fall back to the legacy Redis
 * key when the canonical one is unset (the canonical wins when both are set, D62); writes under
 * the legacy name write the canonical key. Returns the canonical row of a legacy name, else NULL. */
const struct mutt_dynconfig_def *mutt_dynconfig_legacy_find(const char *name);
/* Legacy name of row `id`, NULL when it has none. */
const char *mutt_dynconfig_legacy_name(enum mutt_dyn_key id);
/* Canonical row for a name that is either canonical or legacy (*legacy set when it was legacy;
 * may be NULL). NULL when unknown. */
const struct mutt_dynconfig_def *mutt_dynconfig_def_resolve(const char *name, bool *legacy);
     /* "int" "double" "bool" ... */
const char *mutt_dynconfig_source_name(enum mutt_dyn_source s); /* "redis" "env" "file" "default" */

/* Checks a write before it happens (W41). Returns 0, MUTT_ENOTFOUND for an unknown key or
 * MUTT_EINVAL for a bad value; on failure writes one line naming the key into err (if given),
 * e.g. "max_ingest_queue_size=abc: not an integer". Pure. */
int mutt_dynconfig_validate(const char *key, const char *value, char *err, size_t errlen);
/* Same, for a known row, and also writes the canonical spelling of the value into norm (ints
 * without leading zeros or '+', bools as true/false, enums as in the table). norm may be NULL. */
int mutt_dynconfig_normalize(const struct mutt_dynconfig_def *def, const char *value, char *norm,
                             size_t normlen, char *err, size_t errlen);

/* The value a key has when Redis holds nothing: the static twin's value when it came from the
 * environment or the file and passes the dynamic schema, else the schema default. Writes it
 * (canonical spelling) into buf and its origin into *src. cfg may be NULL (then always the
 * default). Returns 0, or MUTT_ERANGE when the twin's value was refused by the dynamic schema
 * (the default was used; the reason is in err if given). Pure. */
int mutt_dynconfig_fallback(const struct mutt_dynconfig_def *def, const struct mutt_config *cfg, char *buf,
                            size_t len, enum mutt_dyn_source *src, char *err, size_t errlen);

/* ---- runtime (loop thread) --------------------------------------------------------------- */

/* Called when a key's effective value changed, whether by this process or by another pod (W42).
 * key, old_value and new_value are borrowed for the duration of the call. */
typedef void mutt_dynconfig_watch_cb(void *privdata, const char *key, const char *old_value,
                                     const char *new_value);
/* Completion of a write: status 0, MUTT_EDISCONNECTED, MUTT_ECANCELED or MUTT_EIO. */
typedef void mutt_dynconfig_done_cb(void *privdata, int status);

/* Creates the cache, filled with fallbacks (env/file/default). Borrows loop, redis and cfg:
 * they must outlive the dynconfig. redis may be NULL (fallbacks only, writes fail with
 * MUTT_EDISCONNECTED); cfg may be NULL (schema defaults only). NULL on allocation failure. */
struct mutt_dynconfig *mutt_dynconfig_create(uv_loop_t *loop, struct mutt_redis *redis,
                                             const struct mutt_config *cfg);
/* Subscribes to mutt:config:updates, loads every key on each (re)connect of the command
 * connection and starts the 5 s refresh timer. Returns 0 or a negative MUTT_E*. Once only. */
int mutt_dynconfig_start(struct mutt_dynconfig *d);
/* Stops the refresh timer and ignores further pub/sub messages. Values stay readable. */
void mutt_dynconfig_stop(struct mutt_dynconfig *d);
/* Frees the cache. Safe with NULL. Memory is released once the loop has run the timer's close
 * callback and every pending Redis reply has come back, so call it before the final uv_run.
 * The Redis adapter has no unsubscribe / observer removal, so it still holds this dynconfig as
 * privdata: call mutt_redis_stop on the manager BEFORE this (it cancels pending replies and
 * silences pub/sub and state callbacks). */
void mutt_dynconfig_destroy(struct mutt_dynconfig *d);

/* Changes the re-read period (default MUTT_DYNCONFIG_REFRESH_MS); 0 turns the periodic re-read
 * off, leaving pub/sub and reconnects as the only triggers (tests use it to prove that pub/sub
 * alone delivers a change). */
void mutt_dynconfig_set_refresh_interval(struct mutt_dynconfig *d, uint64_t interval_ms);

/* Recomputes every env/file fallback from the static config given at create (after SIGHUP ran
 * mutt_config_reload_safe on it) and fires watchers for keys whose effective value changed
 * (keys held in Redis keep their Redis value). */
void mutt_dynconfig_reload_fallbacks(struct mutt_dynconfig *d);

/* True once the first full load from Redis completed (values then reflect Redis). */
bool mutt_dynconfig_loaded(const struct mutt_dynconfig *d);

/* Synchronous reads of the effective value by id: an index into the cache, no string compare;
 * they never block. An id outside the table (only possible through a cast) gives 0 / 0.0 / false
 * / "" and logs an error once. A read of another type converts: int from a double truncates,
 * bool reads as 0/1. */
int64_t mutt_dynconfig_int(const struct mutt_dynconfig *d, enum mutt_dyn_key key);
double mutt_dynconfig_double(const struct mutt_dynconfig *d, enum mutt_dyn_key key);
bool mutt_dynconfig_bool(const struct mutt_dynconfig *d, enum mutt_dyn_key key);
/* Borrowed until the next change of that key (copy it if you keep it across loop turns). */
const char *mutt_dynconfig_str(const struct mutt_dynconfig *d, enum mutt_dyn_key key);
/* MUTT_DYN_SRC_DEFAULT for an id outside the table. */
enum mutt_dyn_source mutt_dynconfig_source(const struct mutt_dynconfig *d, enum mutt_dyn_key key);

/* Read by name, for a key that comes from outside. Returns 0 and sets *value (borrowed as for
 * mutt_dynconfig_str) or, for an unknown name, MUTT_ENOTFOUND with *value = NULL; the first
 * unknown name of the process is logged (a warning, once, so a caller in a loop cannot flood the
 * log). value may be NULL (existence check). */
int mutt_dynconfig_str_by_name(const struct mutt_dynconfig *d, const char *name, const char **value);

/* Registers cb for one key (MUTT_DYN_ALL_KEYS = every key). Returns 0, MUTT_ENOTFOUND (id
 * outside the table), MUTT_EFULL (more than 64 watchers) or MUTT_ENOMEM. */
int mutt_dynconfig_watch(struct mutt_dynconfig *d, enum mutt_dyn_key key, mutt_dynconfig_watch_cb *cb,
                         void *privdata);
/* Removes every registration of (cb, privdata). Safe inside a callback. */
void mutt_dynconfig_unwatch(struct mutt_dynconfig *d, mutt_dynconfig_watch_cb *cb, void *privdata);

/* Writes `value` to Redis (SET, and PUBLISH on mutt:config:updates when `publish`, atomically in
 * one Lua call). Validates first: MUTT_ENOTFOUND / MUTT_EINVAL (call mutt_dynconfig_validate for
 * the message), or MUTT_EDISCONNECTED / MUTT_EFULL from Redis, all synchronous and without
 * calling done. Otherwise returns 0 and calls done exactly once; on success the local cache
 * (and watchers) has been updated before done runs. The value is stored in its canonical
 * spelling (see mutt_dynconfig_normalize). value is copied; done may be NULL. */
int mutt_dynconfig_set(struct mutt_dynconfig *d, const char *key, const char *value, bool publish,
                       mutt_dynconfig_done_cb *done, void *privdata);
/* Deletes the Redis value (the key reverts to its fallback), same rules as mutt_dynconfig_set. */
int mutt_dynconfig_delete(struct mutt_dynconfig *d, const char *key, bool publish, mutt_dynconfig_done_cb *done,
                          void *privdata);

#endif

/* Writer side of the SLO counters (D22): an in-memory good/total accumulator per SLO and UTC
 * minute that stages bump on the hot path without any Redis call, flushed once a second as one
 * atomic EVALSHA (HINCRBY good/total + EXPIRE per mutt:slo:<name>:<minute> key, see slo.h) on
 * the shared command connection. Does not read or evaluate SLOs (web's GET /api/v1/slo does).
 * A failed flush keeps the counts for the next tick; at most max_pending_minutes minutes are
 * held, the oldest dropped beyond (counted). Loop thread only. */
#ifndef MUTT_SLO_COUNTERS_H
#define MUTT_SLO_COUNTERS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mutt_redis;
struct mutt_metrics;
struct mutt_slo_counters;

/* Index into mutt_slo_defs (slo.h); the order is checked against the names at create. */
enum mutt_slo_id {
    MUTT_SLO_INGESTOR_AVAILABILITY = 0,
    MUTT_SLO_INGESTOR_LATENCY_P99,
    MUTT_SLO_FORWARDER_AVAILABILITY,
    MUTT_SLO_FORWARDER_LATENCY_P99,
    MUTT_SLO_ALERTER_PROCESSING_SUCCESS,
    MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS,
    MUTT_SLO_COUNT_
};

#define MUTT_SLO_FLUSH_INTERVAL_MS 1000u
#define MUTT_SLO_MAX_PENDING_MINUTES 60u    /* minutes held while Redis is away (one hour) */
#define MUTT_SLO_KEY_TTL_S (8u * 86400u)    /* > the longest readable window (7 days, slo.h) */
#define MUTT_SLO_STOP_TIMEOUT_MS 1000u      /* the last flush at stop waits at most this long */

/* Wall clock in epoch ms; tests pass a fake one. */
typedef int64_t mutt_slo_clock_cb(void *arg);
/* mutt_slo_counters_stop finished: status 0 when the last flush was written (or there was
 * nothing to write), else why not (MUTT_EDISCONNECTED, MUTT_ETIMEDOUT, MUTT_EIO...). */
typedef void mutt_slo_counters_stopped_cb(void *privdata, int status);

struct mutt_slo_counters_opts {
    uint64_t flush_interval_ms;  /* 0 = MUTT_SLO_FLUSH_INTERVAL_MS */
    size_t max_pending_minutes;  /* 0 = MUTT_SLO_MAX_PENDING_MINUTES */
    uint64_t key_ttl_s;          /* 0 = MUTT_SLO_KEY_TTL_S */
    uint64_t stop_timeout_ms;    /* 0 = MUTT_SLO_STOP_TIMEOUT_MS */
    mutt_slo_clock_cb *clock;    /* NULL = the real wall clock (loop time + offset) */
    void *clock_arg;
};

/* Creates the accumulator (nothing is sent until start). `redis` and `metrics` are borrowed
 * and must outlive it; metrics may be NULL (then nothing is registered); opts may be NULL for
 * the defaults. Registers its Lua script on `redis`. NULL on OOM or registration failure. */
struct mutt_slo_counters *mutt_slo_counters_create(uv_loop_t *loop, struct mutt_redis *redis,
                                                   struct mutt_metrics *metrics,
                                                   const struct mutt_slo_counters_opts *opts);
/* Starts the flush timer. Returns 0, or MUTT_ESTATE after a stop. */
int mutt_slo_counters_start(struct mutt_slo_counters *s);
/* Stops the timer and sends what is pending as a last flush (after any flush already in
 * flight). cb fires exactly once: when that reply comes, at once when nothing is pending or
 * Redis is not connected (possibly before this returns), or after stop_timeout_ms. Call it
 * before mutt_redis_stop so the last second reaches Redis. A second stop is ignored (no cb). */
void mutt_slo_counters_stop(struct mutt_slo_counters *s, mutt_slo_counters_stopped_cb *cb, void *privdata);
/* Frees it once the loop has closed its timer and any flush reply came back (call before the
 * loop's final runs; after mutt_redis_stop no reply is outstanding). NULL is fine. Counts not
 * yet flushed are lost. */
void mutt_slo_counters_destroy(struct mutt_slo_counters *s);

/* Adds good/total to the current minute of SLO `id`. No I/O, O(1), cannot fail (at the cap
 * the oldest pending minute is dropped and counted). s == NULL (no counters in this process,
 * unit tests) is a no-op. */
void mutt_slo_record(struct mutt_slo_counters *s, enum mutt_slo_id id, uint64_t good, uint64_t total);
/* One request of a latency SLO: good when `seconds` <= the SLO's target_seconds. */
void mutt_slo_record_latency(struct mutt_slo_counters *s, enum mutt_slo_id id, double seconds);

/* Observability and tests: minutes held (not yet written), minutes dropped at the cap,
 * flushes written / failed so far. 0 for NULL. */
size_t mutt_slo_counters_pending_minutes(const struct mutt_slo_counters *s);
uint64_t mutt_slo_counters_dropped_minutes(const struct mutt_slo_counters *s);
uint64_t mutt_slo_counters_flushes(const struct mutt_slo_counters *s);
uint64_t mutt_slo_counters_flush_failures(const struct mutt_slo_counters *s);
/* Flushes now instead of at the next tick (tests; no-op while a flush is in flight). */
void mutt_slo_counters_flush_now(struct mutt_slo_counters *s);

#endif

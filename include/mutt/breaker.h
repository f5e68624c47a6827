/* Circuit breaker for the webhook (CONTRACT §5, W15; reference §3.10): the pure state machine,
 * which is the specification, and the Redis Lua script that runs the same machine atomically on
 * the shared keys mutt:circuit_breaker:<name>:{state,failures,open_time} plus a probe lock, so
 * every pod sees one breaker and exactly one pod probes in HALF_OPEN. Pure; any thread. */
#ifndef MUTT_BREAKER_H
#define MUTT_BREAKER_H

#include <stdint.h>

#include "mutt/forward_classify.h"

enum mutt_breaker_mode {
    MUTT_BREAKER_CLOSED = 0, /* traffic flows; consecutive failures are counted */
    MUTT_BREAKER_OPEN,       /* no attempts at all (alerts wait in the queue, W15) */
    MUTT_BREAKER_HALF_OPEN,  /* open timeout passed: one probe at a time decides */
};

enum mutt_breaker_verdict {
    MUTT_BREAKER_ALLOW = 0, /* send */
    MUTT_BREAKER_DENY,      /* do not send now; try again later */
    MUTT_BREAKER_PROBE,     /* send exactly this one attempt; its result decides the breaker */
};

/* The outcome the stage feeds back. mutt_breaker_outcome_of() maps a delivery to it. */
enum mutt_breaker_outcome {
    MUTT_BREAKER_SUCCESS = 0, /* the destination answered (2xx, and also a DEAD 4xx/3xx answer:
                               * the endpoint is alive, only the alert was refused) */
    MUTT_BREAKER_FAILURE,     /* 408/429/5xx/timeout/transport error */
};

struct mutt_breaker_cfg {
    int64_t threshold;       /* consecutive failures that open it (circuit_breaker_threshold) */
    int64_t open_timeout_ms; /* OPEN -> HALF_OPEN after this (circuit_breaker_timeout x 1000) */
    int64_t probe_ttl_ms;    /* probe lock lifetime: a pod that died mid-probe frees it after
                              * this; use the request timeout plus slack */
};

struct mutt_breaker_state {
    enum mutt_breaker_mode mode;
    int64_t failures;       /* consecutive failures; any success resets it */
    int64_t open_since_ms;  /* when it last opened (epoch ms); 0 when never/closed */
    int64_t probe_until_ms; /* probe lock held until then (epoch ms); 0 = no probe out */
};

/* A fresh CLOSED state (what a missing Redis key means). */
void mutt_breaker_state_init(struct mutt_breaker_state *s);

/* May one attempt start at now_ms? Updates *s:
 *   CLOSED                       -> ALLOW
 *   OPEN, now < open+timeout     -> DENY
 *   OPEN, now >= open+timeout    -> becomes HALF_OPEN, takes the probe lock -> PROBE
 *   HALF_OPEN, probe lock held   -> DENY
 *   HALF_OPEN, lock free/expired -> takes the probe lock -> PROBE
 * Cannot fail. */
enum mutt_breaker_verdict mutt_breaker_decide(struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                                              int64_t now_ms);

/* Records one attempt's outcome at now_ms:
 *   SUCCESS: failures = 0; HALF_OPEN -> CLOSED (open time and probe lock cleared); OPEN stays
 *            OPEN (only a probe closes it; a straggler that started before it opened does not).
 *   FAILURE: HALF_OPEN -> OPEN with open_since = now (probe lock cleared);
 *            CLOSED: failures + 1, and at >= threshold -> OPEN with open_since = now;
 *            OPEN: failures + 1, open time unchanged.
 * Cannot fail. */
void mutt_breaker_on_result(struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                            enum mutt_breaker_outcome outcome, int64_t now_ms);

/* DELIVERED and DEAD -> SUCCESS (the destination answered), RETRY -> FAILURE. */
enum mutt_breaker_outcome mutt_breaker_outcome_of(enum mutt_delivery delivery);

/* "CLOSED", "OPEN", "HALF_OPEN" (the names stored in Redis, as the original). */
const char *mutt_breaker_mode_name(enum mutt_breaker_mode mode);
/* Parses those names; returns 0, or MUTT_EINVAL (then *out = CLOSED). NULL parses as CLOSED. */
int mutt_breaker_mode_parse(const char *name, enum mutt_breaker_mode *out);
/* Gauge value of mutt_circuit_breaker_state (reference §3.10): CLOSED 0, HALF_OPEN 1, OPEN 2. */
int mutt_breaker_mode_gauge(enum mutt_breaker_mode mode);

/* The Lua twin of decide/on_result, for mutt_redis_script_register + mutt_redis_evalsha.
 *   KEYS[1] state  KEYS[2] failures  KEYS[3] open_time  KEYS[4] probe lock
 *     (mutt:circuit_breaker:moogsoft:state|failures|open_time|probe)
 *   ARGV[1] op: "decide" | "success" | "failure"
 *   ARGV[2] now_ms: epoch ms, or "" to use the Redis server clock (one clock for all pods;
 *           recommended in production, explicit values are for tests)
 *   ARGV[3] threshold  ARGV[4] open_timeout_ms  ARGV[5] probe_ttl_ms
 * Returns an array {verdict, state, failures, open_time_ms, previous_state}: verdict is
 * "ALLOW"/"DENY"/"PROBE" for decide and "" for success/failure; states are mode names;
 * previous_state lets the caller count mutt_circuit_breaker_state_changes_total. Missing keys
 * read as CLOSED / 0. The probe lock is SET with PX probe_ttl_ms holding its deadline, and the
 * deadline is compared with now, so the script and the C machine agree under any clock. */
extern const char mutt_breaker_lua[];

#endif

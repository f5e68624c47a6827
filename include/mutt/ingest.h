/* The ingest stage (CONTRACT §3, D1, D2, D6-D11, D49, D50): POST /api/v2/ingest (+ /api/v1/ingest,
 * /ingest) on the ingest listener: auth, media type, size, parse + normalise (domain/event.c),
 * then the requests that arrived in the same loop turn share one Lua call (group commit, D50)
 * that checks the global rate limit and the queue caps for each request in arrival order, pushes
 * the accepted events and bumps the dashboard counters once for the group, atomically. Owns its
 * own Redis connection (D49: never the shared command connection). Loop thread only; the
 * helpers below are pure. */
#ifndef MUTT_INGEST_H
#define MUTT_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mutt/ctx.h"
#include "mutt/queue_bytes.h"

extern const struct mutt_stage mutt_ingest_stage;

/* The Lua script (KEYS and fixed ARGV as struct mutt_ingest_call lays them out; then ARGV[5] =
 * R, the number of requests in the group, ARGV[6..5+R] = events of each request, then every
 * request's events back to back). Returns 4 integers per request, in arrival order:
 * {code, depth, extra, held}: code 0 = pushed (depth = LLEN once its events were pushed, extra =
 * events pushed; the queue's byte counter grew by their bytes), 1 = rate limited (extra = tokens
 * already used in the window), 2 = queue full (extra = cap), 3 = queue over its byte cap (extra =
 * byte cap, held = the byte counter); held is 0 for codes other than 3. A refused request changes
 * nothing: each request gets the verdict it would have got from a call of its own made right
 * after the previous request's (D50). */
extern const char mutt_ingest_lua[];

enum mutt_ingest_script_code {
    MUTT_INGEST_PUSHED = 0,
    MUTT_INGEST_RATE_LIMITED = 1,
    MUTT_INGEST_QUEUE_FULL = 2,
    MUTT_INGEST_QUEUE_BYTES_FULL = 3,
};

/* Dashboard counter TTLs (CONTRACT §3; EXPIRE on every increment, never EXPIRE NX: W28). */
#define MUTT_INGEST_TTL_1M_S 7200
#define MUTT_INGEST_TTL_1H_S 172800
#define MUTT_INGEST_TTL_24H_S 2592000

#define MUTT_INGEST_NKEYS 6  /* queue, rate window, 1m, 1h, 24h, queue byte counter (D52) */
#define MUTT_INGEST_NFIXED 4 /* ARGV before the group: cap, rate max (0 = off), rate key TTL, byte cap (0 = off) */
#define MUTT_INGEST_RESULT_WIDTH 4 /* integers per request in the script's reply */
#define MUTT_INGEST_KEY_MAX 192

/* What the script call needs besides the events. */
struct mutt_ingest_params {
    const char *queue;          /* INGEST_QUEUE_NAME */
    const char *metrics_prefix; /* METRICS_PREFIX ("mutt:metrics") */
    int64_t now_ms;             /* wall clock, UTC epoch ms */
    int64_t cap;                /* max_ingest_queue_size (>= 1) */
    bool rate_enabled;          /* RATE_LIMIT_ENABLED */
    int64_t rate_max;           /* ingest_max_rate (>= 1) */
    int64_t rate_window_s;      /* ingest_rate_window (>= 1) */
    int64_t byte_cap;           /* max_ingest_queue_bytes; 0 = no byte cap */
};

/* KEYS and fixed ARGV of one call, in its own storage (pointers point into the struct: do not
 * copy it after mutt_ingest_call_prepare). */
struct mutt_ingest_call {
    const char *keys[MUTT_INGEST_NKEYS];
    size_t keylens[MUTT_INGEST_NKEYS];
    const char *args[MUTT_INGEST_NFIXED];
    size_t arglens[MUTT_INGEST_NFIXED];
    char rate_key[MUTT_INGEST_KEY_MAX];
    char key_1m[MUTT_INGEST_KEY_MAX];
    char key_1h[MUTT_INGEST_KEY_MAX];
    char key_24h[MUTT_INGEST_KEY_MAX];
    char arg_cap[24];
    char arg_rate_max[24];
    char arg_rate_ttl[24];
    char arg_byte_cap[24];
    char bytes_key[MUTT_QUEUE_BYTES_KEY_MAX];
};

/* Fills `call`: KEYS = queue, "mutt:rate_limit:ingestor:<window_s>:<window index>",
 * "<prefix>:1m:YYYY-MM-DDTHH:MM", "<prefix>:1h:YYYY-MM-DDTHH", "<prefix>:24h:YYYY-MM-DD" (UTC),
 * "<queue>:bytes"; ARGV = cap, rate max (0 when the limit is off), rate key TTL (2 windows),
 * byte cap (0 = off). Returns 0, or
 * MUTT_EINVAL for a name too long / a bad parameter. Pure. */
int mutt_ingest_call_prepare(struct mutt_ingest_call *call, const struct mutt_ingest_params *p);

/* D7: whole seconds (>= 1) until the current fixed rate window of window_s seconds ends. Pure. */
unsigned mutt_ingest_retry_after_s(int64_t now_ms, int64_t window_s);
/* Group pacing (issue 13): a group is sent at most once per `pace_ns`, so under load the requests
 * of several loop turns share one script call (and, downstream, one pop and one completion per
 * burst) instead of one call per turn of one request each. Given the monotonic time of the last
 * send, returns 0 when the group may go now (idle long enough, or nothing sent yet: last_ns 0),
 * else the whole milliseconds to wait (>= 1) for a loop timer. Adds at most pace_ns + 1 ms to a
 * request's latency; at rates below one request per pace_ns nothing waits. */
uint64_t mutt_ingest_pace_wait_ms(uint64_t now_ns, uint64_t last_ns, uint64_t pace_ns);

/* True when `given` (glen bytes, not NUL-terminated) equals `current` or, when non-empty,
 * `next`. Time does not depend on where the bytes differ (both keys are always compared).
 * An empty/NULL `current` matches nothing. Pure. */
bool mutt_ingest_key_matches(const char *given, size_t glen, const char *current, const char *next);

/* Lineage (D63): the correlation id a serialised event ends with (both serialisers finish an
 * event with `"_correlation_id":"<cid>","_event_id":"<uuid>"}`), borrowed from `ev`, its length
 * in *cid_len; NULL when the event does not end that way. Pure. */
const char *mutt_ingest_tail_cid(const char *ev, size_t len, size_t *cid_len);

/* D6: true for application/json or application/x-ndjson, case-insensitive, parameters
 * (";charset=utf-8") and surrounding spaces ignored. Pure. */
bool mutt_ingest_media_type_ok(const char *value, size_t len);

#endif

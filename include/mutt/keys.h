/* The Redis schema that stages and the CLI share (CONTRACT §3-§7, D5 D22 W32): the fixed key and
 * channel names more than one of them use, the dashboard counter keys ingest writes and the web
 * reads, and the envelope of a DLQ item (written by alert and forward, read by every replay).
 * Stages meet only in Redis, so what one writes and another reads is named here, once.
 * Names an operator can configure (queues, DLQs, processing-list and heartbeat prefixes, the retry
 * set, the forward rate-limit key, UNHANDLED_PREFIX, METRICS_PREFIX) are config keys: their
 * defaults live in the config table (config_keys.c), never here. Names one module keeps to itself
 * stay with it (pod.h, dynconfig.h, slo.h, unhandled_key.h, queue names of the audit writer).
 * Pure: no I/O, time passed in; any thread. */
#ifndef MUTT_KEYS_H
#define MUTT_KEYS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* PUBLISHed (payload: what changed) after any change of rules, dev hosts or teams, by the web API
 * and `mutt restore`; the alert stage reloads its cache on it (W32). */
#define MUTT_KEY_RULES_CHANNEL "mutt:rules:updates"
/* PUBLISHed (payload: the window id) after any change of maintenance windows by the web API; the
 * alert stage re-reads its windows on it (issue 16 §3: within 1 s). */
#define MUTT_KEY_MAINT_CHANNEL "mutt:maintenance:updates"

/* The sample of recent events for the rule dry-run (issue 16, D62): a list, newest first, of the
 * events the alert stage matched, capped at `sample_events` by the pushing script
 * (mutt_script_sample_push_lua); the web stage and `mutt rules dry-run` read it. */
#define MUTT_KEY_SAMPLE_EVENTS "mutt:sample_events"

/* The forward circuit breaker (reference §3.10): keys <prefix>:{state,failures,open_time,probe},
 * written by forward; remediate and GET /metrics read the state. Not configurable in the original;
 * kept fixed so dashboards keep working. A missing state key means CLOSED. */
#define MUTT_KEY_BREAKER_NAME "moogsoft"
#define MUTT_KEY_BREAKER_PREFIX "mutt:circuit_breaker:" MUTT_KEY_BREAKER_NAME
#define MUTT_KEY_BREAKER_STATE MUTT_KEY_BREAKER_PREFIX ":state"

/* Processing lists of the DLQ replays (D5): items between their DLQ and their target. Each is
 * returned to its DLQ by its owner at start and by a janitor when the owning pod is gone. */
#define MUTT_KEY_REMEDIATE_PROCESSING_PREFIX "mutt:processing:remediate" /* <prefix>:<pod> */
#define MUTT_KEY_WEB_REPLAY_PROCESSING_PREFIX "mutt:processing:web"      /* <prefix>:<pod>:<dlq short name> */

/* Dashboard counters (CONTRACT §3): ingest INCRBYs them, GET /api/v1/metrics reads them. */
enum mutt_key_metrics_period {
    MUTT_KEY_METRICS_1M,  /* "<prefix>:1m:YYYY-MM-DDTHH:MM" */
    MUTT_KEY_METRICS_1H,  /* "<prefix>:1h:YYYY-MM-DDTHH" */
    MUTT_KEY_METRICS_24H, /* "<prefix>:24h:YYYY-MM-DD" */
};
/* The counter key of the UTC minute/hour/day holding epoch_ms (>= 0), prefix = METRICS_PREFIX.
 * Writes a NUL-terminated string into out; returns its length, or MUTT_EINVAL (bad argument,
 * or it does not fit in cap). */
int mutt_key_metrics(const char *prefix, enum mutt_key_metrics_period period, int64_t epoch_ms, char *out,
                     size_t cap);

/* ---- DLQ items (D5) ----------------------------------------------------------------------- */

/* Turns `item` (a JSON object; modified in place, still the caller's) into a DLQ item: sets
 * _dlq_reason, _failed_at (ISO 8601 UTC with milliseconds of now_ms; "" when now_ms cannot be
 * formatted) and _origin (MUTT_REPLAY_ORIGIN_*: where a replay sends it), then serialises it like
 * every queue item (mutt_event_dump_alloc) into *out (malloc'd, NUL-terminated, the caller frees;
 * length in *len). Returns 0, MUTT_EINVAL (not an object, or not encodable) or MUTT_ENOMEM; *out is
 * NULL on failure. */
int mutt_dlq_envelope(json_t *item, const char *origin, const char *reason, int64_t now_ms, char **out,
                      size_t *len);
/* The same for bytes that are not a JSON object: {"_raw": text, "_dlq_reason", "_failed_at",
 * "_origin"}. Bytes that are not valid UTF-8 cannot be a JSON string: then every non-ASCII byte
 * and NUL becomes '?' (readable, never dropped). data is borrowed. Returns as above. */
int mutt_dlq_envelope_raw(const char *data, size_t data_len, const char *origin, const char *reason,
                          int64_t now_ms, char **out, size_t *len);

#endif

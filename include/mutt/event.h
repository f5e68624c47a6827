/* Ingest domain logic (CONTRACT §3, D1 D6-D9 D33): split a request body into events, normalise
 * and validate each one, stamp ids, serialise for the queue. Pure: no I/O, no clock, no RNG (the
 * caller passes random bytes); knows nothing of HTTP or Redis. Any thread, no shared state. */
#ifndef MUTT_EVENT_H
#define MUTT_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_EVENT_MAX_DEPTH 32      /* D8: nesting levels per event, an object of scalars is 1 */
#define MUTT_EVENT_HARD_DEPTH 512    /* deeper bodies are refused whole, before jansson sees them */
#define MUTT_EVENT_HOSTNAME_MAX 255  /* D8: bytes */
#define MUTT_EVENT_MAX_REQUIRED 16   /* entries in REQUIRED_FIELDS */
#define MUTT_EVENT_FIELD_NAME_MAX 64 /* bytes per REQUIRED_FIELDS entry, NUL included */

/* ---- body splitting --------------------------------------------------------------------- */

/* One item of a body: either an event (a JSON object) or a rejection. */
struct mutt_event_item {
    json_t *event; /* owned reference; NULL when rejected */
    char *error;   /* rejection message (owned; free through the batch), NULL when accepted */
};

struct mutt_event_batch {
    struct mutt_event_item *items; /* count entries, in body order; index = position in body */
    size_t count;                  /* items found in the body */
    size_t rejected;               /* items with error != NULL */
    char error[192];               /* whole-body error when mutt_event_parse_body() fails */
};

/* Splits and parses a request body (not NUL-terminated: `len` bytes, e.g. h2o's req->entity)
 * into `out`, which is overwritten (no need to init it) and must be released with
 * mutt_event_batch_dispose() whatever this returns. One parse per body.
 * A body is one JSON value (an object, or an array whose elements are the items) or a sequence
 * of values separated by whitespace (NDJSON, pretty-printed objects, rsyslog omhttp batches; D6,
 * W29); a leading UTF-8 BOM is ignored. In a sequence each value is one item, arrays included.
 * Per-item rejections (index kept): not an object, nested deeper than MUTT_EVENT_MAX_DEPTH,
 * compact size over max_event_bytes.
 * Returns 0 (even when every item was rejected: the stage answers 400 then),
 *   MUTT_EINVAL for the whole body (empty, invalid JSON with line/column, invalid UTF-8, integer
 *     not fitting int64, nesting deeper than MUTT_EVENT_HARD_DEPTH, empty array) -> 400,
 *   MUTT_ERANGE when the body holds more than max_events items (or is over 2 GiB) -> 413,
 *   MUTT_ENOMEM.
 * On failure out->error holds the message and out->count is 0. */
int mutt_event_parse_body(const char *body, size_t len, size_t max_events, size_t max_event_bytes,
                          struct mutt_event_batch *out);

/* Rejects item `index` after the fact (e.g. normalisation failed): drops its event and keeps a
 * copy of `message`. Rejecting an item twice keeps the first message. Cannot fail (falls back to
 * a static "out of memory" text). */
void mutt_event_batch_reject(struct mutt_event_batch *batch, size_t index, const char *message);

/* Releases every event and message. Safe on a zeroed batch and when called twice. */
void mutt_event_batch_dispose(struct mutt_event_batch *batch);

/* ---- normalisation ------------------------------------------------------------------------ */

/* What an event must carry after normalisation (REQUIRED_FIELDS). Plain value, copy freely. */
struct mutt_event_rules {
    size_t n_required;
    char required[MUTT_EVENT_MAX_REQUIRED][MUTT_EVENT_FIELD_NAME_MAX];
};

/* hostname, message, timestamp. Cannot fail. */
void mutt_event_rules_init_default(struct mutt_event_rules *rules);
/* Parses a REQUIRED_FIELDS value: comma list, entries trimmed, empty entries dropped (an empty
 * list is allowed). Returns 0, or MUTT_EINVAL (too many or too long entries; rules unchanged). */
int mutt_event_rules_set_required(struct mutt_event_rules *rules, const char *csv);

/* The first REQUIRED_FIELDS entry that `ev` lacks or holds as anything but a non-blank string
 * (the check mutt_event_normalize makes, for stages that read events back from a queue), or NULL
 * when all are there. The name is owned by rules. */
const char *mutt_event_missing_required(const json_t *ev, const struct mutt_event_rules *rules);

/* D35: removes every top-level field whose name begins with '_' (MUTT's own: `_retry_count`,
 * `_replay_count`, `_origin`, `_dlq_*`, ids, ...; a client must not steer the pipeline with them)
 * and returns how many it removed (the stage counts them in
 * mutt_ingest_reserved_fields_stripped_total). Only for events from clients: queue items keep
 * theirs (D33). Not an object: 0. Cannot fail. */
size_t mutt_event_strip_reserved(json_t *ev);

/* Normalises `ev` in place (CONTRACT §3, D8, D9, D33, D35), in this order:
 *  - a stray `api_key` is removed (D33), and every top-level `_` field (D35,
 *    mutt_event_strip_reserved: call it first to count them);
 *  - `severity` is an alias of `syslog_severity` (consumed and removed when syslog_severity is
 *    absent, null or an unknown name, so normalising twice changes nothing); a number 0..7, a numeric string "0".."7" or a name (emerg/emergency/panic, alert,
 *    crit/critical, err/error, warning/warn, notice, info/informational, debug; Major 3, Minor 4;
 *    case-insensitive) becomes the integer `syslog_severity`, a string also kept verbatim in
 *    `syslog_severity_text`; an unknown name leaves syslog_severity unset but keeps the text;
 *    null means absent; out-of-range numbers and other types are errors;
 *  - `hostname` missing, null or "" -> `source_ip` (when a non-empty string);
 *  - `message` missing, null or "" and `trap_oid` a non-empty string -> "SNMP trap <trap_oid>"
 *    followed by " <oid>=<value>" per entry of `variables`, joined with "," (D9); variables may
 *    be an object {oid: value}, a list of {"oid","value"} objects or a list of strings (the
 *    "@{oid=X; value=Y}" form of the demo data becomes X=Y, other strings are used as they are);
 *  - each required field must be a string that is not empty or blank;
 *  - `hostname`, when present, must be a string of at most MUTT_EVENT_HOSTNAME_MAX bytes;
 *  - `timestamp`, when present and not null, must be a string mutt_time_parse_iso8601 accepts.
 * Unknown fields pass through untouched. Returns 0, MUTT_EINVAL (message in err, which may be
 * NULL; *err_field, if err_field is given, points to the static or rules-owned name of the field
 * at fault, or NULL) or MUTT_ENOMEM. On error the event may be partly normalised: drop it. */
int mutt_event_normalize(json_t *ev, const struct mutt_event_rules *rules, char *err,
                         size_t errlen, const char **err_field);

/* MAX_EVENT_BYTES applies to what is stored: the compact serialisation of the NORMALISED event
 * (a trap message built from `variables`, a severity text or re-encoded reals can make it larger
 * than the client sent), not counting the two id fields the stage adds afterwards (their size is
 * fixed by MUTT, not by the client). Returns 0, or MUTT_EINVAL with "event is N bytes after
 * normalisation, over MAX_EVENT_BYTES (M)" in err (the item is rejected like any invalid one,
 * D8). */
int mutt_event_check_size(const json_t *ev, size_t max_event_bytes, char *err, size_t errlen);

/* Normalised syslog severity 0..7 of an event, -1 when it has none. */
int mutt_event_severity(const json_t *ev);

/* Parses a severity number or name as mutt_event_normalize does ("3", "Major", "warn").
 * Returns 0..7, -1 for an unknown name, -2 for a number outside 0..7. */
int mutt_severity_parse(const char *text, size_t len);

/* Alert severity text for a syslog severity (CONTRACT §4): 0-2 Critical, 3 Major, 4 Warning,
 * 5 Minor, 6-7 Info; -1 (none) and anything else Warning. Static string. */
const char *mutt_severity_alert_name(int syslog_severity_or_minus1);

/* ---- identity ------------------------------------------------------------------------------ */

/* Sets `_correlation_id` (copied) and a fresh `_event_id` (UUIDv4 from rnd16), overwriting what
 * the client sent: D1 makes ingest the one place ids are assigned, and a client-chosen
 * `_event_id` could collide with another event's audit row (unique on event id + timestamp)
 * and be silently deduplicated. Returns 0 or MUTT_ENOMEM / MUTT_EINVAL (not an object, or
 * correlation_id not valid UTF-8). */
int mutt_event_stamp(json_t *ev, const char *correlation_id, const uint8_t rnd16[16]);
/* Same, sharing one JSON string for the whole batch (borrowed; a reference is taken per event),
 * which saves one allocation per event. */
int mutt_event_stamp_shared(json_t *ev, json_t *correlation_id, const uint8_t rnd16[16]);
/* D33: items written by the Python original carry no `_event_id`; later stages give them one on
 * first touch. Returns 1 when an id was added, 0 when one was present, MUTT_E* on failure. */
int mutt_event_ensure_event_id(json_t *ev, const uint8_t rnd16[16]);

/* True when s[0..len) is 1..64 characters from [A-Za-z0-9._:-] (D8: safe to echo in headers,
 * logs and Redis values). */
bool mutt_correlation_id_valid(const char *s, size_t len);

/* ---- serialisation ------------------------------------------------------------------------- */

/* Compact JSON (no spaces, key order kept; the same bytes as jansson's JSON_COMPACT, written by
 * our own faster encoder) of `ev` into buf. Returns 0 and *len = bytes written
 * (no NUL), or MUTT_EFULL with *len = the size needed (buf content then unspecified: grow and
 * call again), MUTT_EINVAL if ev cannot be serialised. */
int mutt_event_dump(const json_t *ev, char *buf, size_t cap, size_t *len);
/* Same into a malloc'd, NUL-terminated string the caller frees. Returns 0, MUTT_ENOMEM or
 * MUTT_EINVAL. */
int mutt_event_dump_alloc(const json_t *ev, char **out, size_t *len);

#endif

/* Event lineage (D41, D63): each event's timeline is one Redis hash, `mutt:lineage:<event_id>`,
 * kept LINEAGE_TTL_SECONDS, written by the stages inside the calls they already make (ingest's
 * group script, relq's batched completions, the DLQ move script). A correlation id maps to its
 * events through a set, `mutt:lineage:c:<correlation_id>`, with the same TTL.
 * Encoding, kept small because every event pays it: a step is one hash field
 * "<at_ms>:<code>" (the wall clock of the writer, a one-letter step code) whose value is a
 * compact JSON object of the step's details (`{}` when none); the field "c" holds the
 * correlation id. The reader turns the hash back into {"event_id","correlation_id","state",
 * "timeline":[{"at","stage","what",...details}]} ordered by time.
 * Pure: no I/O, no clock (times come in as arguments); any thread. */
#ifndef MUTT_LINEAGE_H
#define MUTT_LINEAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_LINEAGE_KEY_PREFIX "mutt:lineage:"
#define MUTT_LINEAGE_CID_PREFIX "mutt:lineage:c:" /* event ids are UUIDs: never "c:..." */
#define MUTT_LINEAGE_CID_FIELD "c"
#define MUTT_LINEAGE_META_HOSTNAME "MUTT_Alerter" /* = MUTT_ALERT_META_HOSTNAME (alert_item.h) */
#define MUTT_LINEAGE_KEY_MAX 160  /* room for the prefix and any id the reader accepts */
#define MUTT_LINEAGE_FIELD_MAX 24 /* "<at_ms>:<code>" */

/* Step codes (the letter after "<at_ms>:"). */
enum mutt_lineage_step {
    MUTT_LINEAGE_ACCEPTED = 'a',     /* ingest: {pod, queue} */
    MUTT_LINEAGE_HANDLED = 'h',      /* alert: {pod, rule_id, handling, team, forwarded} */
    MUTT_LINEAGE_UNHANDLED = 'n',    /* alert: {pod, meta_alert} */
    MUTT_LINEAGE_MAINTENANCE = 'm',  /* alert: a maintenance window held it {pod, rule_id, window} */
    MUTT_LINEAGE_ALERT_RETRY = 'e',  /* alert: an attempt failed, back to the ingest queue {reason, retry} */
    MUTT_LINEAGE_ALERT_DLQ = 'D',    /* alert: to its DLQ {dlq, reason} */
    MUTT_LINEAGE_DELIVERED = 's',    /* forward: an attempt delivered {attempt, status, latency_ms} */
    MUTT_LINEAGE_FORWARD_RETRY = 't',/* forward: an attempt failed, retry set {attempt, status|error, latency_ms, retry_in_ms} */
    MUTT_LINEAGE_FORWARD_DLQ = 'd',  /* forward: to its DLQ {attempt, status|error, reason} */
    MUTT_LINEAGE_REPLAY = 'p',       /* remediate/web/cli: replayed from a DLQ {from, to, by} */
    MUTT_LINEAGE_DEAD = 'x',         /* remediate: parked in the dead-letter list {from, to, reason} */
};

/* "mutt:lineage:<event_id>" / "mutt:lineage:c:<correlation_id>" into out (NUL-terminated).
 * Returns the length, or MUTT_EINVAL (empty id, or it does not fit in cap). */
int mutt_lineage_key(const char *event_id, char *out, size_t cap);
int mutt_lineage_cid_key(const char *correlation_id, char *out, size_t cap);

/* "<at_ms>:<code>" into out. Returns the length or MUTT_EINVAL (negative time, unknown code,
 * too small). Two writes of one step in the same millisecond share a field: the later wins
 * (such steps are the same thing said twice). */
int mutt_lineage_field(int64_t at_ms, enum mutt_lineage_step code, char *out, size_t cap);

/* The compact value of a step: `details` (an object, borrowed; NULL = {}) dumped without
 * spaces into *out (malloc'd, NUL-terminated, the caller frees; length in *len). Returns 0,
 * MUTT_EINVAL or MUTT_ENOMEM. */
int mutt_lineage_value(const json_t *details, char **out, size_t *len);

/* One step as the relq HSET push carries it: "<field> <value>" (mutt_lineage_field, a space,
 * mutt_lineage_value of details) into *out (malloc'd, the caller frees; length in *len).
 * Returns 0, MUTT_EINVAL or MUTT_ENOMEM (*out NULL then). */
int mutt_lineage_entry(int64_t at_ms, enum mutt_lineage_step code, const json_t *details, char **out, size_t *len);

/* Decodes one event's hash (HGETALL as n field/value pairs, borrowed, binary lengths) into
 * {"event_id","correlation_id","state","timeline":[...]} (a new reference, NULL on OOM).
 * Fields it does not know are ignored (a newer writer's steps); a value that is not an object
 * gives the step without details. An empty hash is an unknown event: the caller answers 404. */
json_t *mutt_lineage_decode(const char *event_id, const char *const *fields, const size_t *flens,
                            const char *const *values, const size_t *vlens, size_t n);

/* The state a timeline ends in (D41, D63): pending, delivered, ignored, unhandled, in_dlq,
 * dead or maintenance, from its last step that decides one (forward steps of a meta-alert do
 * not: the event stays unhandled). `timeline` as built by mutt_lineage_decode. */
const char *mutt_lineage_state(const json_t *timeline);

/* The optional lineage ARGV of the DLQ move script (redis_scripts.h: key, field, value, TTL). */
struct mutt_lineage_args {
    const char *argv[4];
    size_t argl[4];
    char key[MUTT_LINEAGE_KEY_MAX];
    char field[MUTT_LINEAGE_FIELD_MAX];
    char ttl[24];
    char *value; /* owned: mutt_lineage_args_free */
};
/* Fills *a with step `code` of the DLQ item `item` (its "_event_id"; a meta-alert's steps say
 * so), details consumed; TTL ttl_s. Returns false (nothing to free, *a unusable) when !enabled, the
 * item has no id, or memory ran out. */
bool mutt_lineage_args_make(bool enabled, int64_t ttl_s, const json_t *item, enum mutt_lineage_step code,
                            json_t *details, int64_t now_ms, struct mutt_lineage_args *a);
void mutt_lineage_args_free(struct mutt_lineage_args *a);

#endif

/* Intake for ingest's own listeners (syslog, SNMP traps; CONTRACT D39): events that did not come
 * over HTTP join the same group commit as HTTP requests (D50): one Lua call per loop turn, each
 * submission judged in arrival order against the item cap, the byte cap and the rate limit, and
 * counted in mutt_ingest_events_total like HTTP events. Loop thread only; only while the ingest
 * stage runs in this process. */
#ifndef MUTT_INGEST_INTAKE_H
#define MUTT_INGEST_INTAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum mutt_ingest_intake_result {
    MUTT_INTAKE_QUEUED = 0,       /* every event of the submission is in the queue */
    MUTT_INTAKE_RATE_LIMITED = 1, /* nothing queued: the global rate limit */
    MUTT_INTAKE_QUEUE_FULL = 2,   /* nothing queued: max_ingest_queue_size or _bytes */
    MUTT_INTAKE_UNAVAILABLE = 3,  /* nothing queued (or, after a dropped connection, in doubt):
                                   * Redis unavailable, an error, or the stage stopping */
};

/* Called once per accepted submission with its verdict; `queued` is the number of its events
 * pushed (0 unless MUTT_INTAKE_QUEUED). */
typedef void mutt_ingest_intake_cb(void *privdata, enum mutt_ingest_intake_result result, size_t queued);

/* True when a submission could be sent now (stage running, its Redis connection up). A listener
 * that can hold its sender (TCP) stops reading while this is false. */
bool mutt_ingest_intake_ready(void);

/* Submits events[0..n) (objects; the references stay the caller's: ingest only reads and stamps
 * them). Each is stripped of reserved `_` fields (D35), normalised and checked against
 * MAX_EVENT_BYTES like an HTTP event; `source_id` (a D8 correlation id, e.g. "syslog-tcp")
 * becomes their _correlation_id. Returns the number of valid events submitted (`*invalid` gets
 * the others, when not NULL): when > 0, cb is called exactly once later with the verdict; when 0
 * nothing was submitted and cb is never called. Returns MUTT_EDISCONNECTED/MUTT_ESTATE (not
 * ready) or MUTT_ENOMEM without calling cb and with nothing submitted. */
long mutt_ingest_intake_submit(json_t *const *events, size_t n, const char *source_id, size_t *invalid,
                               mutt_ingest_intake_cb *cb, void *privdata);

#endif

/* Ingest fast path (bench/README.md "Ingest throughput"): a body whose events are already in the
 * form mutt_event_dump would write, and need no normalisation, is copied straight to the queue
 * format without building jansson trees. Owns only its scratch buffers. Pure: no I/O, no RNG. */
#ifndef MUTT_EVENT_FAST_H
#define MUTT_EVENT_FAST_H

#include <stddef.h>

#include "mutt/event.h"

/* Reusable scratch: zero it once, release with mutt_event_fast_free(). */
struct mutt_event_fast {
    char *buf;     /* events back to back */
    size_t cap;
    size_t *offs;  /* per event: offset in buf */
    size_t *lens;  /* per event: bytes of its compact text WITHOUT the closing '}' */
    size_t n_cap;
    size_t count;  /* events of the last successful call */
};

/* Tries the fast path on a request body. It applies when the body (after an optional UTF-8 BOM
 * and whitespace) is one JSON array of 1..max_events objects, or one object, and every object
 *  - is valid JSON whose compact form differs from the input only by whitespace (no reals, no
 *    "-0", no escapes other than \" \\ \b \f \n \r \t, no duplicate keys, nesting <= 16),
 *  - is at most max_event_bytes compact,
 *  - needs nothing from mutt_event_normalize: no api_key, no top-level key beginning with '_' (D35);
 *    syslog_severity an integer 0..7 or absent along with severity; hostname and message
 *    non-empty strings (hostname <= MUTT_EVENT_HOSTNAME_MAX bytes); timestamp absent, null or a
 *    valid date-time string; every required field a non-blank string.
 * Then the result is exactly what mutt_event_parse_body + mutt_event_normalize +
 * mutt_event_dump give, minus the closing '}' of each event: event i is at
 * fp->buf + fp->offs[i], fp->lens[i] bytes, followed by `room` writable bytes for the caller to
 * append its id fields and the '}'.
 * Returns the number of events (>= 1), 0 when the body does not qualify (use the general path:
 * it also produces every error message), or MUTT_ENOMEM. */
long mutt_event_fast_body(const char *body, size_t len, size_t max_events, size_t max_event_bytes,
                          const struct mutt_event_rules *rules, size_t room,
                          struct mutt_event_fast *fp);

void mutt_event_fast_free(struct mutt_event_fast *fp);

#endif

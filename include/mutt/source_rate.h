/* Per-source storm control of the native listeners (issue 15 item 3, CONTRACT D39
 * LISTENER_SOURCE_MAX_RATE): a token bucket per sender address (rate tokens a second, a burst of
 * one second's worth), in a bounded table that forgets the least recently seen sender when full,
 * and the count of what each sender had suppressed, handed out once per window (a minute) so the
 * listener can queue one summary event per source. Pure: time comes in as an argument, no I/O.
 * Not thread-safe; one table per listener stage. */
#ifndef MUTT_SOURCE_RATE_H
#define MUTT_SOURCE_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_SOURCE_ADDR_MAX 64 /* an address as text (IPv6 with zone fits), NUL included */

/* What a source had suppressed in one window. */
struct mutt_source_summary {
    char addr[MUTT_SOURCE_ADDR_MAX];
    uint64_t suppressed;  /* messages refused in the window */
    int64_t first_ms;     /* when the window's first refusal happened (Unix ms) */
};

struct mutt_source_rate; /* opaque */

/* A table of at most `capacity` sources (≥ 1), each allowed `rate` messages a second (≥ 1) with
 * a burst of `rate`; a window of `window_ms` (≥ 1) per summary. NULL on OOM or a bad argument. */
struct mutt_source_rate *mutt_source_rate_new(size_t capacity, uint32_t rate, int64_t window_ms);
void mutt_source_rate_free(struct mutt_source_rate *t);

/* Takes one token for `addr` at now_ms (an unknown source starts with a full bucket). True when
 * the message may pass; false when it is over the rate (counted for the source's summary).
 * When the table was full, the least recently seen source is forgotten; if it had refusals not
 * yet handed out, they are written to *evicted and *has_evicted is set (the caller summarises
 * them now; evicted may be NULL only when the caller does not care). A time going backwards
 * adds no tokens. An address longer than MUTT_SOURCE_ADDR_MAX - 1 is cut. */
bool mutt_source_rate_take(struct mutt_source_rate *t, const char *addr, int64_t now_ms,
                           struct mutt_source_summary *evicted, bool *has_evicted);

/* Writes up to `max` summaries of sources whose window (from their first refusal) has ended by
 * now_ms, or of every source with refusals when `all` (a stop), and resets those windows.
 * Returns how many were written; call again while it returns `max`. */
size_t mutt_source_rate_due(struct mutt_source_rate *t, int64_t now_ms, bool all, struct mutt_source_summary *out,
                            size_t max);

/* Sources in the table now. */
size_t mutt_source_rate_size(const struct mutt_source_rate *t);

#endif

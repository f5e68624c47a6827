/* The ingest queue's byte counter (CONTRACT D52): every script that pushes to or pops from the
 * ingest queue adjusts "<queue>:bytes" by the bytes it moved, so the ingest script can refuse a
 * request that would take the queue over max_ingest_queue_bytes without walking the list. The
 * counter is approximate (a blocking pop adjusts it in a second command; a crash or a writer
 * outside MUTT leaves it off) and the alert stage's janitor reconciles it. Pure; any thread. */
#ifndef MUTT_QUEUE_BYTES_H
#define MUTT_QUEUE_BYTES_H

#include <stddef.h>

#define MUTT_QUEUE_BYTES_SUFFIX ":bytes"
#define MUTT_QUEUE_BYTES_KEY_MAX 320

/* Writes "<queue>:bytes" into buf. Returns 0, or MUTT_EINVAL when queue is NULL/empty or the
 * name does not fit. */
int mutt_queue_bytes_key(const char *queue, char *buf, size_t len);

/* Lists up to this many items are recounted exactly by the reconcile script; longer ones are
 * estimated from a sample of both ends and corrected only when the counter is off by more than a
 * factor of two (one call must not block Redis for long). */
#define MUTT_QUEUE_BYTES_RECOUNT_MAX 10000

/* Reconcile script. KEYS[1] queue, KEYS[2] counter; ARGV[1] exact-recount limit (items).
 * Returns {mode, before, after}: mode 1 = recounted exactly, 2 = reset to the estimate,
 * 0 = left as it was (long list, counter plausible). */
extern const char mutt_queue_bytes_reconcile_lua[];

#endif

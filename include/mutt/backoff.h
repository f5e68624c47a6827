/* Retry delay for the forward stage (CONTRACT §5, D4): capped exponential backoff with full
 * jitter, where a server's Retry-After wins when it asks for longer. Pure: the caller passes
 * the random value. Any thread. */
#ifndef MUTT_BACKOFF_H
#define MUTT_BACKOFF_H

#include <stdint.h>

/* Delay before retry number `retry_n` (0 = the first retry):
 *   cap   = min(max_ms, base_ms * 2^retry_n)       (saturating: no overflow for any retry_n)
 *   delay = rnd mod (cap + 1)                      (uniform in 0..cap, "full jitter")
 *   if retry_after_s >= 0 and retry_after_s*1000 > delay: delay = retry_after_s*1000
 *     (Retry-After is not capped by max_ms: the destination asked for it; it saturates at
 *      UINT64_MAX/2 so due = now + delay cannot wrap).
 * `rnd` is any 64-bit random value (mutt_random_u64() in the stage). retry_after_s < 0 means
 * "no Retry-After header". Cannot fail. */
uint64_t mutt_backoff_delay_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms, uint64_t rnd,
                               int64_t retry_after_s);

/* The cap alone (the largest delay jitter can produce for retry_n). */
uint64_t mutt_backoff_cap_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms);

#endif

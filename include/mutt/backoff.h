/* Capped exponential backoff with jitter: the one retry-delay rule of the whole program (Redis
 * and PostgreSQL reconnects, Vault retries, the forward stage's retry set, CONTRACT §5, D4).
 * Pure: the caller passes the random value. Any thread. */
#ifndef MUTT_BACKOFF_H
#define MUTT_BACKOFF_H

#include <stdint.h>

enum mutt_backoff_jitter {
    MUTT_BACKOFF_JITTER_NONE,    /* the cap itself: a fixed schedule */
    MUTT_BACKOFF_JITTER_FULL,    /* uniform in 0..cap ("full jitter", D4) */
    MUTT_BACKOFF_JITTER_QUARTER, /* cap minus up to a quarter of it: spreads peers, stays close */
};

/* One caller's schedule; callers keep theirs as a constant or fill it from config. */
struct mutt_backoff {
    uint64_t base_ms;                /* the cap of step 0 */
    uint64_t max_ms;                 /* no cap is larger */
    enum mutt_backoff_jitter jitter;
};

/* The delay of step `step` (0 = the first wait):
 *   cap = min(max_ms, base_ms * 2^step)            (saturating: no overflow for any step)
 *   NONE:    cap
 *   FULL:    rnd mod (cap + 1)                     (rnd itself when cap is UINT64_MAX)
 *   QUARTER: cap - rnd mod (cap/4 + 1)
 * `rnd` is any 64-bit random value (mutt_random_u64()); NONE ignores it. Cannot fail. */
uint64_t mutt_backoff_ms(const struct mutt_backoff *b, unsigned step, uint64_t rnd);

/* The forward stage's retry delay (D4): mutt_backoff_ms with FULL jitter for retry number
 * `retry_n` (0 = the first retry), then
 *   if retry_after_s >= 0 and retry_after_s*1000 > delay: delay = retry_after_s*1000
 *     (Retry-After is not capped by max_ms: the destination asked for it; it saturates at
 *      UINT64_MAX/2 so due = now + delay cannot wrap; so does the jittered delay).
 * retry_after_s < 0 means "no Retry-After header". Cannot fail. */
uint64_t mutt_backoff_delay_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms, uint64_t rnd,
                               int64_t retry_after_s);

/* The cap alone (the largest delay jitter can produce for retry_n). */
uint64_t mutt_backoff_cap_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms);

#endif

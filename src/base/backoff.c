/* Capped exponential backoff with jitter (include/mutt/backoff.h). Pure arithmetic, saturating
 * everywhere so a huge retry count or a silly Retry-After cannot wrap into a tiny delay. */
#include "mutt/backoff.h"

#define DELAY_LIMIT_MS (UINT64_MAX / 2) /* keeps now_ms + delay far from wrapping */

uint64_t mutt_backoff_cap_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms)
{
    if (base_ms == 0)
        return 0;
    /* base * 2^n <= max  <=>  n < 64 and base <= max >> n */
    if (retry_n >= 64 || base_ms > (max_ms >> retry_n))
        return max_ms;
    return base_ms << retry_n;
}

uint64_t mutt_backoff_ms(const struct mutt_backoff *b, unsigned step, uint64_t rnd)
{
    uint64_t cap = mutt_backoff_cap_ms(step, b->base_ms, b->max_ms);
    switch (b->jitter) {
    case MUTT_BACKOFF_JITTER_FULL:
        return cap == UINT64_MAX ? rnd : rnd % (cap + 1);
    case MUTT_BACKOFF_JITTER_QUARTER:
        return cap - rnd % (cap / 4 + 1);
    case MUTT_BACKOFF_JITTER_NONE:
        break;
    }
    return cap;
}

uint64_t mutt_backoff_delay_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms, uint64_t rnd,
                               int64_t retry_after_s)
{
    const struct mutt_backoff b = {.base_ms = base_ms, .max_ms = max_ms, .jitter = MUTT_BACKOFF_JITTER_FULL};
    uint64_t delay = mutt_backoff_ms(&b, retry_n, rnd);
    if (delay > DELAY_LIMIT_MS)
        delay = DELAY_LIMIT_MS;
    if (retry_after_s >= 0) {
        uint64_t ra = (uint64_t)retry_after_s > DELAY_LIMIT_MS / 1000 ? DELAY_LIMIT_MS
                                                                         : (uint64_t)retry_after_s * 1000;
        if (ra > delay)
            delay = ra;
    }
    return delay;
}

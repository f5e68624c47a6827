/* Full-jitter exponential backoff (D4). Pure arithmetic, saturating everywhere so a huge retry
 * count or a silly Retry-After cannot wrap into a tiny delay. */
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

uint64_t mutt_backoff_delay_ms(unsigned retry_n, uint64_t base_ms, uint64_t max_ms, uint64_t rnd,
                               int64_t retry_after_s)
{
    uint64_t cap = mutt_backoff_cap_ms(retry_n, base_ms, max_ms);
    uint64_t delay = cap == UINT64_MAX ? rnd : rnd % (cap + 1);
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

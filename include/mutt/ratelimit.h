/* Shared rate limiter for the webhook (CONTRACT §5, W13; reference §3.9), taken in leases: a pod
 * takes up to N tokens from the shared budget in one script call and spends them locally, so the
 * limiter costs one Redis call per lease rather than per alert. The budget is a sliding-window
 * log on one Redis sorted set whose members are leases (each records how many tokens it holds),
 * applied atomically by one Lua script so every pod draws from the same budget. Script text and
 * the pure lease bookkeeping; the stage runs the script through mutt_redis_evalsha. Any thread.
 *
 * Why the limit still holds exactly: a token counts in the window from the moment it is granted
 * until one window after the latest moment it can have been spent. A lease is granted at t with a
 * spending deadline t + lease_ms and recorded at score t + lease_ms (so a pod that dies holding it
 * is counted in full until t + lease_ms + window). The pod spends only before its own deadline,
 * measured from when it SENT the request (<= t), so every spend is before t + lease_ms. When the
 * pod settles the lease (the next lease call, or its deadline timer) the entry is rewritten to the
 * tokens really spent, at the moment of its last spend: t plus the pod's own time from the reply
 * to that spend (capped by the settle time and t + lease_ms); unspent tokens go back to the
 * budget at once (a settle with nothing spent removes the entry). So any window of sends is
 * covered by the entries of the leases that paid for them, and the sum of entries never exceeds
 * the limit when a lease is granted. (The reply's one-way trip, sub-millisecond next to Redis, is
 * the one thing not counted, as the per-alert script before it did not count the time from its
 * ZADD to the send.) */
#ifndef MUTT_RATELIMIT_H
#define MUTT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* KEYS[1] the window key (mutt:rate_limit:moog)
 * ARGV[1] limit (moog_rate_limit)   ARGV[2] window_ms (moog_rate_period x 1000)
 * ARGV[3] now_ms: epoch ms, or "" for the Redis server clock (one clock for all pods)
 * ARGV[4] base: unique per call (e.g. "<pod>:<counter>"); the lease's member is "<base>#<n>"
 * ARGV[5] want: tokens asked for (0 = settle only)   ARGV[6] lease_ms: the spending deadline
 * ARGV[7] the member of the lease being settled, or ""   ARGV[8] tokens spent from it
 * ARGV[9] when its last token was spent (Redis clock, ms), or "" for the settle time
 * Returns {granted, wait_ms, now_ms, member}: granted >= 1 (<= want) with the new lease's member,
 * or granted 0 and wait_ms >= 1 when the budget is used up (when want > 0): the earliest moment a
 * token can come back (an entry leaving the window, or a pending lease reaching its deadline,
 * when its holder returns what it did not spend); the caller's alerts wait until then (W13: a
 * denied alert waits, it is never dropped). member is "" when nothing was granted. now_ms is the
 * clock the script used. The key expires one window after its last entry's score.
 * Entries of the older one-member-per-call script (no "#<n>") count 1 each.
 * Exact only when calls reach Redis in clock order: production passes "" (Redis clock). */
extern const char mutt_ratelimit_lua[];

#define MUTT_RATELIMIT_LEASE_MAX 1000u /* tokens per lease, whatever the limit */

/* Tokens one lease asks for under `limit` per window: a tenth of the limit (so several pods
 * share a window), at least 1, at most MUTT_RATELIMIT_LEASE_MAX. 0 when limit <= 0. */
uint32_t mutt_ratelimit_lease_size(int64_t limit);
/* A lease's spending deadline: a tenth of the window, within [10 ms, 1 s]; idle tokens go back
 * to the budget after at most this long. */
uint64_t mutt_ratelimit_lease_ms(int64_t window_ms);

/* One pod's current lease. Zeroed = none. Times are the caller's monotonic clock (ms). */
struct mutt_rate_lease {
    char member[160];    /* the entry in Redis; "" = nothing to settle (none, or a fail-open lease) */
    uint32_t granted;    /* tokens held */
    uint32_t spent;      /* tokens used so far */
    uint64_t deadline;   /* no spending at or after this */
    int64_t granted_at;  /* the script's clock when it granted (Redis ms) */
    uint64_t received;   /* when the grant arrived (caller's clock) */
    uint64_t last_spend; /* when the last token was spent (caller's clock) */
};

/* Records a grant: the request was sent at sent_ms (so the deadline is never later than the
 * script's t + lease_ms), the reply, carrying the script's clock redis_now_ms, arrived at
 * received_ms. member may be "" (a fail-open lease: nothing to settle). */
void mutt_rate_lease_grant(struct mutt_rate_lease *l, const char *member, uint32_t granted, uint64_t sent_ms,
                           uint64_t lease_ms, int64_t redis_now_ms, uint64_t received_ms);
/* Spends one token: true when the lease had one left and its deadline has not passed. */
bool mutt_rate_lease_take(struct mutt_rate_lease *l, uint64_t now_ms);
/* True when the lease must be reported to Redis (it has a member): fills *member_out (borrowed
 * until the next change), *spent, and *last_spend_at: when its last token was spent on the Redis
 * clock (granted_at + last_spend - received), or -1 when none was. */
bool mutt_rate_lease_settlement(const struct mutt_rate_lease *l, const char **member_out, uint32_t *spent,
                                int64_t *last_spend_at);
/* True when settling now would give tokens back: a member with unspent tokens. */
bool mutt_rate_lease_has_unspent(const struct mutt_rate_lease *l);
/* Forgets the lease (after its settlement was sent). */
void mutt_rate_lease_clear(struct mutt_rate_lease *l);

#endif

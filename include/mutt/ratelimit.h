/* Shared rate limiter for the webhook (CONTRACT §5, W13; reference §3.9): a sliding-window log
 * on one Redis sorted set, applied atomically by one Lua script so every pod draws from the same
 * budget. Script text only; the stage runs it through mutt_redis_evalsha. Any thread. */
#ifndef MUTT_RATELIMIT_H
#define MUTT_RATELIMIT_H

/* KEYS[1] the window key (mutt:rate_limit:moog)
 * ARGV[1] limit (moog_rate_limit)   ARGV[2] window_ms (moog_rate_period x 1000)
 * ARGV[3] now_ms: epoch ms, or "" for the Redis server clock (one clock for all pods)
 * ARGV[4] member: unique per call (e.g. "<pod>:<counter>"; a repeated member would replace the
 *         earlier entry and undercount)
 * Returns {1, 0, now_ms} when allowed (the call is recorded), or {0, wait_ms, now_ms} when
 * denied, wait_ms >= 1 being when the oldest entry leaves the window: the caller keeps the alert
 * and retries then (W13: a denied alert waits, it is never dropped). now_ms is the clock the
 * script used. An entry at time t counts for [t, t + window_ms). The key expires window_ms after
 * the last allowed call.
 * Exact only when calls reach Redis in clock order: with pod clocks ("now" passed in) a call
 * that arrives after one with a later clock can overshoot slightly (measured: a few per window
 * under load), so production passes "" and every pod uses the Redis clock. */
extern const char mutt_ratelimit_lua[];

#endif

/* The forward retry set (D4, W16): alerts waiting for their next attempt live in the sorted set
 * mutt:retry:moog as members "<uuid>|<alert json>" scored by due time (epoch ms). Holds the
 * member format and the two Lua scripts (schedule, promote); the stage runs them through
 * mutt_redis_evalsha. No I/O here. Any thread. */
#ifndef MUTT_RETRYSET_H
#define MUTT_RETRYSET_H

#include <stddef.h>

/* Builds "<uuid>|<alert json>" (the uuid keeps two identical alerts distinct members).
 * Returns a malloc'd buffer (caller frees; NUL-terminated, length in *out_len), or NULL when
 * memory ran out. `uuid` and `alert_json` are borrowed; alert_json need not be NUL-terminated. */
char *mutt_retry_member(const char *uuid, const char *alert_json, size_t json_len, size_t *out_len);

/* Atomically moves an alert from a processing list into the retry set:
 *   KEYS[1] retry set (mutt:retry:moog)   KEYS[2] processing list (mutt:processing:moog:<pod>)
 *   ARGV[1] due_ms   ARGV[2] member ("<uuid>|<updated alert json>")
 *   ARGV[3] the processing item exactly as popped (removed once, LREM count 1)
 * Returns the LREM count (1, or 0 when the item was no longer there: the member is added
 * anyway, so a janitor race can at worst duplicate an alert, never lose it). */
extern const char mutt_retry_schedule_lua[];

/* Promotes due alerts back to the alert queue, any pod, any number of pods at once:
 *   KEYS[1] retry set   KEYS[2] alert queue (mutt:alert_queue)
 *   ARGV[1] now_ms: epoch ms, or "" for the Redis server clock   ARGV[2] max members to move
 * ZRANGEBYSCORE -inf now LIMIT 0 max, then per member ZREM + LPUSH of the text after the first
 * '|' (a member without '|' is pushed whole), earliest due first so it is consumed first.
 * Returns the number moved. */
extern const char mutt_retry_promote_lua[];

#endif

/* Lua scripts that more than one stage or the CLI run against the shared Redis schema (keys.h):
 * one copy each, so the moves they make cannot drift apart. Each says its KEYS, ARGV and reply.
 * Callers register them (mutt_redis_script_register) or send them with EVAL (the CLI). Pure
 * text: no I/O; any thread. */
#ifndef MUTT_REDIS_SCRIPTS_H
#define MUTT_REDIS_SCRIPTS_H

/* ---- DLQ replay move (D5) ------------------------------------------------------------------
 * Moves one item, already rewritten in C, from the list it was taken from to its target, and
 * pushes only when the item was still there: a replay can neither duplicate nor lose an item,
 * whatever runs beside it (remediation, another replay, a recovery, a janitor).
 * KEYS[1] the list the item leaves, KEYS[2] its target (LPUSH), KEYS[3] optional: the target's
 *   byte counter (D52), grown by the rewrite's length after the push.
 * ARGV[1] the item exactly as read, ARGV[2] its rewrite, ARGV[3] how it leaves KEYS[1]:
 *   MUTT_SCRIPT_DLQ_MOVE_TAIL   only while it is still KEYS[1]'s tail (LINDEX -1), then RPOP:
 *                               `mutt dlq replay` reads the tail of the DLQ itself;
 *   MUTT_SCRIPT_DLQ_MOVE_LREM   LREM count 1 (any position): the web replay and remediation move
 *                               items through a processing list of their own first.
 * ARGV[4..7] optional (lineage, D63): key, field, value, TTL of the item's lineage step, written
 *   (HSET + EXPIRE, errors ignored) only when the item moved; absent or ARGV[4] '' = none. The
 *   key is not in KEYS: lineage keys are per event, and MUTT runs on one Redis (no cluster).
 * Returns 1 (moved) or 0 (no longer there: nothing pushed); an error reply for another mode. */
extern const char mutt_script_dlq_move_lua[];
#define MUTT_SCRIPT_DLQ_MOVE_TAIL "tail"
#define MUTT_SCRIPT_DLQ_MOVE_LREM "lrem"

/* ---- unhandled events: the top templates (D14) ---------------------------------------------
 * The read side of the alert stage's unhandled store, for GET /api/v1/unhandled (any web pod:
 * the data lives in Redis; key names in unhandled_key.h).
 * KEYS[1] the top ZSET (<UNHANDLED_PREFIX>:_top); ARGV[1] the info key prefix
 * (<UNHANDLED_PREFIX>:i:), ARGV[2] limit, ARGV[3] pages (ZREVRANGE pages of `limit` read while
 * skipping entries whose info hash expired).
 * Returns {hostname, template, count, sample, first_seen, last_seen} per live template, best
 * first; the expired entries seen are dropped from the ZSET. */
extern const char mutt_script_unhandled_top_lua[];
#define MUTT_SCRIPT_UNHANDLED_TOP_LIMIT 50 /* D14: the top 50 by count */
#define MUTT_SCRIPT_UNHANDLED_TOP_PAGES 10

/* ---- the dry-run sample (issue 16) ---------------------------------------------------------
 * One call per batch of events the alert stage matched: LPUSH of every ARGV[2..] (in order, so
 * the last is the newest, at the head), then LTRIM to ARGV[1] (sample_events, >= 1) items.
 * KEYS[1] MUTT_KEY_SAMPLE_EVENTS. Returns the list's length. */
extern const char mutt_script_sample_push_lua[];
#define MUTT_SCRIPT_SAMPLE_PUSH_MAX_ARGS 1000 /* LPUSH arguments per inner call (Lua unpack limit) */

#endif

/* How a DLQ item is rewritten when it is replayed (CONTRACT §6, D5, W18): the replay counter,
 * the poison verdict, and the fields that give the item a fresh set of attempts. Pure: no I/O;
 * the remediate stage (and the web/CLI replay) move the bytes. Any thread. */
#ifndef MUTT_REPLAY_H
#define MUTT_REPLAY_H

#include <jansson.h>
#include <stdint.h>

/* D5 origins: where a DLQ item replays to. */
#define MUTT_REPLAY_ORIGIN_INGEST "ingest" /* alerter DLQ -> ingest queue */
#define MUTT_REPLAY_ORIGIN_ALERT "alert"   /* moog DLQ -> alert queue */

enum mutt_replay_verdict {
    MUTT_REPLAY_TARGET = 0, /* replay to the DLQ's target queue */
    MUTT_REPLAY_DEAD,       /* poison: to mutt:dlq:dead */
};

/* Rewrites `item` (an object, modified in place) taken from a DLQ whose items replay to
 * `origin`:
 *   replayed fewer than max_poison_retries times: _replay_count + 1; _dlq_reason, _failed_at and
 *     the stages' retry counters (_retry_count, _moog_retry_count) removed so the item gets a
 *     fresh set of attempts -> MUTT_REPLAY_TARGET;
 *   else: _dead_reason added -> MUTT_REPLAY_DEAD (its _dlq_reason is kept for the operator).
 * In both cases _origin is set when missing (items of the Python original, D33). A missing,
 * negative or non-integer _replay_count counts as 0. `item` not an object -> MUTT_REPLAY_DEAD
 * with nothing changed. On OOM the item may be partly rewritten: the caller then keeps the
 * original bytes. */
enum mutt_replay_verdict mutt_replay_rewrite(json_t *item, const char *origin, int64_t max_poison_retries);

#endif

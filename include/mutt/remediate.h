/* The remediate stage (role remediate, CONTRACT §6, D5; W18 W19): every remediation_interval s,
 * when remediation_enabled and the destination is healthy (breaker CLOSED, or a GET of
 * MOOG_HEALTH_URL with the Bearer key answers 2xx; never a fake event), replays up to
 * remediation_batch_size items from mutt:dlq:alerter -> mutt:ingest_queue and mutt:dlq:moog ->
 * mutt:alert_queue. Each item moves atomically: LMOVE into mutt:processing:remediate:<pod>, the C
 * code rewrites it (_replay_count + 1, fresh retry counters), one Lua call pushes it to its
 * target and LREMs it; items already replayed max_poison_retries times go to mutt:dlq:dead.
 * Uses the shared command connection only. Loop thread only; one instance per process. */
#ifndef MUTT_REMEDIATE_H
#define MUTT_REMEDIATE_H

#include <stdbool.h>
#include <stdint.h>

#include "mutt/ctx.h"

extern const struct mutt_stage mutt_remediate_stage;

/* Test hook: passes completed since start (0 when not running). */
uint64_t mutt_remediate_passes(void);

#endif

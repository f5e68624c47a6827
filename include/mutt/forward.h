/* The forward stage (role forward, CONTRACT §5, D1 D4 D15 D33; W13-W16): reliable consume of the
 * alert queue (relq into mutt:processing:moog:<pod>), one webhook POST per alert through the
 * libcurl multi client, outcome by mutt_forward_classify: delivered (plain ack), retry (into the
 * mutt:retry:moog sorted set with backoff, promoted back by a timer on any pod) or dead
 * (mutt:dlq:moog), each durable together with the item's removal in one Lua call. A shared rate
 * limiter and a shared circuit breaker (both Redis Lua) gate attempts: a denied or held alert
 * waits, it is never dropped and never counted as an attempt. No worker ever sleeps.
 * Loop thread only; one instance per process. */
#ifndef MUTT_FORWARD_H
#define MUTT_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mutt/ctx.h"

extern const struct mutt_stage mutt_forward_stage;

/* Test hooks on the running stage (the one instance of this process). */
bool mutt_forward_running(void);
size_t mutt_forward_busy(void); /* alerts handed out by relq and not yet finished */

#endif

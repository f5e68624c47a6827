/* /health, /health/live, /health/ready and /metrics on every listener (CONTRACT §1, D17): the
 * body is computed from the adapters' connection state and each running stage's own verdict.
 * Owns no state beyond the route registration. Loop thread only. */
#ifndef MUTT_HEALTH_H
#define MUTT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "mutt/ctx.h"

/* Registers the four routes on every listener; role verdicts come from the stages table
 * (stages.h) for the roles enabled in ctx. Returns 0 or a negative MUTT_E*. */
int mutt_health_register(struct mutt_ctx *ctx);

/* What one enabled role's verdict is made of. */
struct mutt_health_role_input {
    bool started;                            /* the stage's start() returned 0 */
    enum mutt_role_health stage_verdict;     /* the stage's own health(); OK when it has none */
    bool redis_up;
    bool pg_needed;                          /* this role uses PostgreSQL */
    bool pg_hard;                            /* ... and cannot work without it */
    bool pg_up;
};

/* Pure: the role's verdict (D17, D34). Redis down or a hard PostgreSQL dependency down -> DOWN;
 * else not started -> STARTING; a soft PostgreSQL dependency down -> at least DEGRADED;
 * otherwise the stage's own verdict. */
enum mutt_role_health mutt_health_role_verdict(const struct mutt_health_role_input *in);

enum mutt_health_status { MUTT_HEALTH_READY, MUTT_HEALTH_NOT_YET, MUTT_HEALTH_UNHEALTHY };

/* Pure: READY when no verdict is STARTING or DOWN (DEGRADED is ready), UNHEALTHY when one is
 * DOWN, else NOT_YET. */
enum mutt_health_status mutt_health_combine(const enum mutt_role_health *verdicts, size_t n);

/* The /health/ready answer as a bool: what systemd READY waits for (D34). */
bool mutt_health_ready(struct mutt_ctx *ctx);

/* Builds the /health body (malloc'd JSON, caller frees) and returns the HTTP status: 200 when
 * ready, else 503 ("status" is "starting" or "unhealthy"). */
int mutt_health_build(struct mutt_ctx *ctx, char **body, size_t *len);

#endif

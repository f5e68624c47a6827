/* /health, /health/live, /health/ready and /metrics on every listener (CONTRACT §1, D17): the
 * body is computed from the adapters' connection state and each running stage's own verdict.
 * Owns no state beyond the route registration. Loop thread only. */
#ifndef MUTT_HEALTH_H
#define MUTT_HEALTH_H

#include <stddef.h>

struct mutt_ctx;

/* Registers the four routes on every listener; role verdicts come from the stages table
 * (stages.h) for the roles enabled in ctx. Returns 0 or a negative MUTT_E*. */
int mutt_health_register(struct mutt_ctx *ctx);

/* Builds the /health body (malloc'd JSON, caller frees) and returns the HTTP status (200/503). */
int mutt_health_build(struct mutt_ctx *ctx, char **body, size_t *len);

#endif

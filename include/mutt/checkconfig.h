/* `mutt --check-config`: the start-up validation plus connectivity to what the enabled roles
 * need (Redis, PostgreSQL, the webhook's DNS name). Runs before any loop exists, so it uses
 * blocking clients on purpose. Prints one line per check to `out`. */
#ifndef MUTT_CHECKCONFIG_H
#define MUTT_CHECKCONFIG_H

#include <stdio.h>

struct mutt_config;

/* Returns the exit code: 0 all good, 1 a connectivity check failed. (Static errors are
 * handled by the caller before, exit 2.) With VAULT_ADDR set the secrets are read first and
 * stored in cfg, so the other checks use them. */
int mutt_check_connectivity(struct mutt_config *cfg, FILE *out);

#endif

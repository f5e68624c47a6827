/* `mutt migrate`: applies the PostgreSQL schema (versioned, idempotent) with the blocking
 * migrate module. Also run by main before the loop starts when MIGRATE_ON_START is on. */
#include <stdio.h>

#include "cli_internal.h"
#include "mutt/adapter_opts.h"
#include "mutt/cli.h"
#include "mutt/migrate.h"
#include "mutt/pg.h"

int mutt_cli_migrate(const struct mutt_config *cfg)
{
    struct mutt_pg_opts o;
    mutt_pg_opts_from_config(cfg, &o);
    char err[512] = "";
    int applied = 0;
    if (mutt_migrate_run(&o, err, sizeof(err), &applied) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return CLI_FAIL;
    }
    printf("migrate: ok (%d migration%s applied)\n", applied, applied == 1 ? "" : "s");
    return CLI_OK;
}

/* Words after `migrate` are ignored, as they always were. */
int cli_migrate(int argc, char **argv, struct mutt_config *cfg)
{
    return mutt_cli_migrate(cfg);
}

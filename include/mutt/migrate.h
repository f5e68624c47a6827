/* Owns the versioned database schema: the ordered list of migrations compiled into the binary
 * (src/core/migrate_sql.c, mirrored by conf/schema.sql) and the runner behind `mutt migrate`.
 * Uses BLOCKING libpq on its own connection: CLI / start-up only, never on the loop. Logs nothing
 * (errors go to the caller's buffer), so it is safe to call from any thread. */
#ifndef MUTT_MIGRATE_H
#define MUTT_MIGRATE_H

#include <stddef.h>

struct mutt_pg_opts;

/* One migration: applied once, in its own transaction, recorded in schema_migrations. */
struct mutt_migration {
    int version;      /* 1, 2, 3 ... strictly increasing */
    const char *name;
    const char *sql;  /* several statements; DDL is exempt from "parameterised only" (D28) */
};

extern const struct mutt_migration mutt_migrations[];
extern const int mutt_migrations_count;

/* Session advisory lock key held while migrating, so two hosts migrating at once are safe. */
#define MUTT_MIGRATE_LOCK_KEY 0x6d75747401LL
/* Months of event_audit_log partitions created ahead of the current one (W4). */
#define MUTT_MIGRATE_PARTITION_MONTHS 3

/* Connects with opts (CURRENT password, then NEXT), takes the advisory lock, applies every
 * migration not yet in schema_migrations (each in its own transaction) and then runs
 * mutt_ensure_partitions(MUTT_MIGRATE_PARTITION_MONTHS). Idempotent. *applied (may be NULL) gets
 * the number of migrations this call applied. Returns 0, MUTT_EDISCONNECTED (cannot connect),
 * MUTT_EIO (a statement failed; nothing of that migration is left behind) or MUTT_ENOMEM; err
 * (may be NULL) then holds a one-line reason without secrets. */
int mutt_migrate_run(const struct mutt_pg_opts *opts, char *err, size_t errlen, int *applied);

/* Highest applied version in *current (0 on an empty database), newest embedded version in
 * *latest (either may be NULL). Returns 0, MUTT_EDISCONNECTED or MUTT_EIO (err as above). */
int mutt_migrate_status(const struct mutt_pg_opts *opts, int *current, int *latest, char *err, size_t errlen);

/* Newest version compiled into this binary. */
int mutt_migrate_latest(void);

#endif

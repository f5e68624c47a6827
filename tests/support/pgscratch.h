/* Integration-test helpers for PostgreSQL: scratch databases so each test file (or test) stays
 * independent of the others, adapter options from the harness env (MUTT_TEST_PG_*), and blocking
 * admin SQL. Test code only: everything here blocks. */
#ifndef MUTT_PGSCRATCH_H
#define MUTT_PGSCRATCH_H

#include <stddef.h>
#include <libpq-fe.h>

#include "mutt/pg.h"

/* True when MUTT_TEST_PG_PORT is set (else integration tests skip). */
int mutt_test_pg_available(void);

/* Fills o for the harness server and database `dbname` (borrowed; NULL = MUTT_TEST_PG_DB), with
 * pool 1..4, queue 256, connect timeout 5 s, no query timeout. */
void mutt_test_pg_opts(struct mutt_pg_opts *o, const char *dbname);

/* Blocking connection as the harness user to `dbname` (NULL = MUTT_TEST_PG_DB); NULL on failure
 * (message printed). Caller PQfinish()es it. */
PGconn *mutt_test_pg_connect(const char *dbname);

/* Runs `sql` (simple query, may hold several statements) on a fresh blocking connection.
 * Returns 0 or -1 (message printed). */
int mutt_test_pg_exec(const char *dbname, const char *sql);

/* Runs a one-value query and copies the first column of the first row into out (empty on NULL).
 * Returns 0 or -1. */
int mutt_test_pg_value(const char *dbname, const char *sql, char *out, size_t outlen);

/* Creates an empty database named mutt_<tag>_<pid>_<random> and writes its name to out.
 * Returns 0 or -1. */
int mutt_test_pg_scratch_create(const char *tag, char *out, size_t outlen);
/* Drops it (WITH (FORCE): sessions left behind by a failed test do not block). */
int mutt_test_pg_scratch_drop(const char *dbname);

#endif

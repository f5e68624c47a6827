/* Schema migration runner behind `mutt migrate` (and MIGRATE_ON_START). Blocking libpq on its
 * own connection: it runs before the loop starts, never on it. Logs nothing; the caller gets a
 * one-line reason. Serialised across hosts by a session advisory lock. */
#include "mutt/migrate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/error.h"
#include "mutt/pg.h"

static const char SQL_CREATE_BOOKKEEPING[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";
static const char SQL_IS_APPLIED[] = "SELECT 1 FROM schema_migrations WHERE version = $1";
static const char SQL_RECORD[] = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";
static const char SQL_LOCK[] = "SELECT pg_advisory_lock($1::bigint)";
static const char SQL_UNLOCK[] = "SELECT pg_advisory_unlock($1::bigint)";
static const char SQL_PARTITIONS[] = "SELECT mutt_ensure_partitions($1::int)";
static const char SQL_CURRENT[] =
    "SELECT COALESCE(max(version), 0) FROM schema_migrations";
static const char SQL_HAS_BOOKKEEPING[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";

int mutt_migrate_latest(void)
{
    int latest = 0;
    for (int i = 0; i < mutt_migrations_count; i++)
        if (mutt_migrations[i].version > latest)
            latest = mutt_migrations[i].version;
    return latest;
}

/* Writes "<prefix>: <libpq text on one line>" into err. */
static void set_err(char *err, size_t errlen, const char *detail, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= errlen || !detail)
        return;
    size_t len = (size_t)n;
    if (len + 2 < errlen) {
        err[len++] = ':';
        err[len++] = ' ';
    }
    for (const char *p = detail; *p && len + 1 < errlen; p++)
        err[len++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (len > 0 && err[len - 1] == ' ')
        len--;
    err[len] = '\0';
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and friends: expected, not news */
}

/* CURRENT first; NEXT only when the server asked for a password (CONTRACT §9). */
static PGconn *connect_blocking(const struct mutt_pg_opts *opts, char *err, size_t errlen)
{
    const char *passwords[2] = {opts->pass_current, opts->pass_next};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && (!passwords[1] || !*passwords[1]))
            break;
        char *ci = mutt_pg_conninfo(opts, passwords[i]);
        if (!ci) {
            set_err(err, errlen, NULL, "out of memory");
            return NULL;
        }
        PGconn *conn = PQconnectdb(ci);
        explicit_bzero(ci, strlen(ci));
        free(ci);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            PQsetNoticeProcessor(conn, quiet_notice, NULL);
            return conn;
        }
        set_err(err, errlen, conn ? PQerrorMessage(conn) : "out of memory", "cannot connect to PostgreSQL");
        bool used_password = conn && PQconnectionUsedPassword(conn);
        PQfinish(conn);
        if (!used_password)
            break;
    }
    return NULL;
}

/* Runs one parameterised statement; returns the result when it succeeded, else NULL with err set. */
static PGresult *exec_params(PGconn *conn, const char *sql, int n, const char *const *values, char *err,
                             size_t errlen, const char *what)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    set_err(err, errlen, r ? PQresultErrorMessage(r) : PQerrorMessage(conn), "%s failed", what);
    PQclear(r);
    return NULL;
}

static bool exec_ok(PGconn *conn, const char *sql, int n, const char *const *values, char *err, size_t errlen,
                    const char *what)
{
    PGresult *r = exec_params(conn, sql, n, values, err, errlen, what);
    PQclear(r);
    return r != NULL;
}

/* Applies one migration in its own transaction. Returns 1 applied, 0 already there, <0 error. */
static int apply_one(PGconn *conn, const struct mutt_migration *m, char *err, size_t errlen)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *check[] = {version};
    PGresult *r = exec_params(conn, SQL_IS_APPLIED, 1, check, err, errlen, "reading schema_migrations");
    if (!r)
        return MUTT_EIO;
    bool applied = PQntuples(r) > 0;
    PQclear(r);
    if (applied)
        return 0;
    if (!exec_ok(conn, "BEGIN", 0, NULL, err, errlen, "BEGIN"))
        return MUTT_EIO;
    /* Simple-query protocol: the migration is several statements (DDL, plpgsql bodies). */
    r = PQexec(conn, m->sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(err, errlen, r ? PQresultErrorMessage(r) : PQerrorMessage(conn), "migration %d (%s) failed",
                m->version, m->name);
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return MUTT_EIO;
    }
    PQclear(r);
    const char *record[] = {version, m->name};
    if (!exec_ok(conn, SQL_RECORD, 2, record, err, errlen, "recording the migration") ||
        !exec_ok(conn, "COMMIT", 0, NULL, err, errlen, "COMMIT")) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return MUTT_EIO;
    }
    return 1;
}

/* Clears err and connects: 0 with *conn set, MUTT_EINVAL without opts, or MUTT_EDISCONNECTED
 * with the reason in err. */
static int open_conn(const struct mutt_pg_opts *opts, PGconn **conn, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!opts)
        return MUTT_EINVAL;
    *conn = connect_blocking(opts, err, errlen);
    return *conn ? 0 : MUTT_EDISCONNECTED;
}

int mutt_migrate_run(const struct mutt_pg_opts *opts, char *err, size_t errlen, int *applied)
{
    if (applied)
        *applied = 0;
    PGconn *conn = NULL;
    int orc = open_conn(opts, &conn, err, errlen);
    if (orc != 0)
        return orc;
    char key[32], months[16];
    snprintf(key, sizeof(key), "%lld", (long long)MUTT_MIGRATE_LOCK_KEY);
    snprintf(months, sizeof(months), "%d", MUTT_MIGRATE_PARTITION_MONTHS);
    const char *key_param[] = {key};
    const char *months_param[] = {months};
    int rc = MUTT_EIO;
    int count = 0;
    /* The lock also covers creating schema_migrations: concurrent CREATE TABLE IF NOT EXISTS can
     * still collide in the catalog. PQfinish releases it on every failure path. */
    if (!exec_ok(conn, SQL_LOCK, 1, key_param, err, errlen, "taking the migration lock"))
        goto done;
    if (!exec_ok(conn, SQL_CREATE_BOOKKEEPING, 0, NULL, err, errlen, "creating schema_migrations"))
        goto done;
    for (int i = 0; i < mutt_migrations_count; i++) {
        int one = apply_one(conn, &mutt_migrations[i], err, errlen);
        if (one < 0)
            goto done;
        count += one;
    }
    if (!exec_ok(conn, SQL_PARTITIONS, 1, months_param, err, errlen, "creating event_audit_log partitions"))
        goto done;
    exec_ok(conn, SQL_UNLOCK, 1, key_param, NULL, 0, "releasing the migration lock");
    rc = 0;
done:
    if (applied)
        *applied = count;
    PQfinish(conn);
    return rc;
}

int mutt_migrate_status(const struct mutt_pg_opts *opts, int *current, int *latest, char *err, size_t errlen)
{
    if (current)
        *current = 0;
    if (latest)
        *latest = mutt_migrate_latest();
    PGconn *conn = NULL;
    int orc = open_conn(opts, &conn, err, errlen);
    if (orc != 0)
        return orc;
    int rc = MUTT_EIO;
    PGresult *r = exec_params(conn, SQL_HAS_BOOKKEEPING, 0, NULL, err, errlen, "reading the catalog");
    if (!r)
        goto done;
    bool has_table = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (has_table) {
        r = exec_params(conn, SQL_CURRENT, 0, NULL, err, errlen, "reading schema_migrations");
        if (!r)
            goto done;
        if (current && PQntuples(r) == 1)
            *current = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    rc = 0;
done:
    PQfinish(conn);
    return rc;
}

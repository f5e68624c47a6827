/* See pgscratch.h. Test-only code: blocking libpq is fine here. */
#include "pgscratch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"

int mutt_test_pg_available(void)
{
    return mutt_test_env("PG_PORT") != NULL;
}

void mutt_test_pg_opts(struct mutt_pg_opts *o, const char *dbname)
{
    memset(o, 0, sizeof(*o));
    o->host = mutt_test_env("PG_HOST") ? mutt_test_env("PG_HOST") : "127.0.0.1";
    o->port = mutt_test_env_int("PG_PORT", 5432);
    o->dbname = dbname ? dbname : (mutt_test_env("PG_DB") ? mutt_test_env("PG_DB") : "mutt_test");
    o->user = mutt_test_env("PG_USER") ? mutt_test_env("PG_USER") : "postgres";
    o->pass_current = mutt_test_env("PG_PASS");
    o->pool_min = 1;
    o->pool_max = 4;
    o->queue_max = 256;
    o->connect_timeout_ms = 5000;
    o->application_name = "mutt-test";
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *mutt_test_pg_connect(const char *dbname)
{
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, dbname);
    char *ci = mutt_pg_conninfo(&o, o.pass_current);
    if (!ci)
        return NULL;
    PGconn *c = PQconnectdb(ci);
    free(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgscratch: cannot connect to %s: %s", o.dbname, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

static int exec_on(PGconn *c, const char *sql, char *out, size_t outlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscratch: %s failed: %s", sql, PQresultErrorMessage(r));
        rc = -1;
    } else if (out && outlen) {
        out[0] = '\0';
        if (PQntuples(r) > 0 && PQnfields(r) > 0)
            snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return rc;
}

int mutt_test_pg_exec(const char *dbname, const char *sql)
{
    PGconn *c = mutt_test_pg_connect(dbname);
    if (!c)
        return -1;
    int rc = exec_on(c, sql, NULL, 0);
    PQfinish(c);
    return rc;
}

int mutt_test_pg_value(const char *dbname, const char *sql, char *out, size_t outlen)
{
    PGconn *c = mutt_test_pg_connect(dbname);
    if (!c)
        return -1;
    int rc = exec_on(c, sql, out, outlen);
    PQfinish(c);
    return rc;
}

int mutt_test_pg_scratch_create(const char *tag, char *out, size_t outlen)
{
    static unsigned seq;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(out, outlen, "mutt_%s_%d_%u_%d", tag, (int)getpid(), seq++, rand() % 100000);
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", out);
    return mutt_test_pg_exec(NULL, sql);
}

int mutt_test_pg_scratch_drop(const char *dbname)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    return mutt_test_pg_exec(NULL, sql);
}

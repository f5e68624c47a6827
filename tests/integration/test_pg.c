/* Integration tests of the PostgreSQL adapter (src/io/pg.c) against the harness's real
 * PostgreSQL. Needs MUTT_TEST_PG_* (skips without); the restart test also needs MUTT_TEST_STATE
 * (services.sh stop-pg/start-pg). Works in its own scratch database, dropped at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mutt/error.h"
#include "mutt/pg.h"
#include "pgscratch.h"
#include "testenv.h"

static char g_db[96];
static bool g_have_db;
static uv_loop_t g_loop;
static struct mutt_pg *g_pg;
static int g_done; /* callbacks seen, all ops together */

/* What one op's callback saw. */
struct reply {
    int calls;
    int status;
    int ntuples;
    char value[128];   /* row 0, column 0 */
    char sqlstate[8];
};

static void on_reply(void *privdata, PGresult *res, int status)
{
    struct reply *r = privdata;
    r->calls++;
    r->status = status;
    if (res) {
        r->ntuples = PQntuples(res);
        if (r->ntuples > 0 && PQnfields(res) > 0)
            snprintf(r->value, sizeof(r->value), "%s", PQgetvalue(res, 0, 0));
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (st)
            snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", st);
    }
    g_done++;
}

/* ---------------------------------------------------------------- fixtures */

static int group_setup(void **state)
{
    (void)state;
    if (!mutt_test_pg_available())
        return 0;
    if (mutt_test_pg_scratch_create("pg", g_db, sizeof(g_db)) != 0)
        return -1;
    g_have_db = true;
    return mutt_test_pg_exec(g_db, "CREATE TABLE kv (id int PRIMARY KEY, v text);"
                                   "CREATE TABLE deferred_kv (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_have_db)
        mutt_test_pg_scratch_drop(g_db);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    g_done = 0;
    g_pg = NULL;
    return uv_loop_init(&g_loop);
}

static int teardown(void **state)
{
    (void)state;
    mutt_pg_destroy(g_pg);
    g_pg = NULL;
    assert_int_equal(mutt_test_loop_close(&g_loop), 0);
    return 0;
}

struct wait_connected {
    struct mutt_pg *pg;
    bool want;
    bool seen;
};

static void on_check_connected(uv_timer_t *t)
{
    struct wait_connected *w = t->data;
    if (mutt_pg_connected(w->pg) == w->want)
        w->seen = true;
}

/* Runs the loop until mutt_pg_connected(pg) == want (checked every 5 ms) or the deadline. */
static bool wait_connected(struct mutt_pg *pg, bool want, uint64_t deadline_ms)
{
    struct wait_connected w = {pg, want, mutt_pg_connected(pg) == want};
    uv_timer_t t;
    uv_timer_init(&g_loop, &t);
    t.data = &w;
    uv_timer_start(&t, on_check_connected, 5, 5);
    mutt_test_run_until(&g_loop, &w.seen, deadline_ms);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return w.seen;
}

static struct mutt_pg *start_adapter(const struct mutt_pg_opts *o)
{
    struct mutt_pg *pg = mutt_pg_create(&g_loop, o);
    assert_non_null(pg);
    assert_int_equal(mutt_pg_start(pg), 0);
    return pg;
}

static struct mutt_pg *start_connected(const struct mutt_pg_opts *o)
{
    struct mutt_pg *pg = start_adapter(o);
    assert_true(wait_connected(pg, true, 10000));
    return pg;
}

#define NEED_PG()            \
    do {                     \
        if (!g_have_db)      \
            MUTT_SKIP("no-harness", "no test database");          \
    } while (0)

/* ---------------------------------------------------------------- tests */

static void test_pg_select_with_parameters_returns_its_own_values(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    g_pg = start_connected(&o);
    struct reply r = {0};
    const char *vals[] = {"41", "it's; DROP TABLE kv"};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT ($1::int + 1)::text || '|' || $2::text", 2, vals, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.value, "42|it's; DROP TABLE kv");
}

static void test_pg_null_parameter_is_sql_null(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    g_pg = start_connected(&o);
    struct reply r = {0};
    const char *vals[] = {NULL};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT ($1::text IS NULL)::text", 1, vals, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.value, "true");
}

static void test_pg_server_error_is_eio_with_readable_sqlstate(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    g_pg = start_connected(&o);
    struct reply div0 = {0}, dup1 = {0}, dup2 = {0}, after = {0};
    const char *key[] = {"9001"};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1 / 0", 0, NULL, on_reply, &div0), 0);
    assert_int_equal(mutt_pg_query(g_pg, "INSERT INTO kv (id, v) VALUES ($1, 'a')", 1, key, on_reply, &dup1), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 2, 5000));
    assert_int_equal(mutt_pg_query(g_pg, "INSERT INTO kv (id, v) VALUES ($1, 'b')", 1, key, on_reply, &dup2), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 3, 5000));
    /* The error did not poison the connection. */
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 5", 0, NULL, on_reply, &after), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 4, 5000));
    assert_int_equal(div0.status, MUTT_EIO);
    assert_string_equal(div0.sqlstate, "22012");
    assert_int_equal(dup1.status, 0);
    assert_int_equal(dup2.status, MUTT_EIO);
    assert_string_equal(dup2.sqlstate, "23505");
    assert_int_equal(after.status, 0);
    assert_string_equal(after.value, "5");
}

#define NCONC 200

static void test_pg_concurrent_queries_are_each_answered_once_with_their_own_params(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 1;
    o.pool_max = 4;
    o.queue_max = NCONC;
    g_pg = start_connected(&o);
    static struct reply r[NCONC];
    memset(r, 0, sizeof(r));
    static char a[NCONC][16], b[NCONC][16];
    for (int i = 0; i < NCONC; i++) {
        /* Every 7th overflows int4 (22003) and must not disturb its neighbours. */
        snprintf(a[i], sizeof(a[i]), "%d", i % 7 == 0 ? 1000000000 : i);
        snprintf(b[i], sizeof(b[i]), "%d", i % 7 == 0 ? 3 : 2);
        const char *vals[] = {a[i], b[i]};
        assert_int_equal(mutt_pg_query(g_pg, "SELECT ($1::int * $2::int)::text", 2, vals, on_reply, &r[i]), 0);
    }
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, NCONC, 20000));
    mutt_test_run_for(&g_loop, 50); /* a duplicate callback would show up now */
    assert_int_equal(g_done, NCONC);
    for (int i = 0; i < NCONC; i++) {
        assert_int_equal(r[i].calls, 1);
        if (i % 7 == 0) {
            assert_int_equal(r[i].status, MUTT_EIO);
            assert_string_equal(r[i].sqlstate, "22003");
        } else {
            char want[16];
            snprintf(want, sizeof(want), "%d", i * 2);
            assert_int_equal(r[i].status, 0);
            assert_string_equal(r[i].value, want);
        }
    }
    /* The pool grew past pool_min while work was queued, and never past pool_max. */
    char sql[256], n[16];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'mutt-test'", g_db);
    assert_int_equal(mutt_test_pg_value(NULL, sql, n, sizeof(n)), 0);
    assert_in_range(atoi(n), 2, 4);
}

static void test_pg_queue_cap_fails_synchronously_with_efull(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 1;
    o.pool_max = 1;
    o.queue_max = 3;
    g_pg = start_connected(&o);
    struct reply r[5] = {{0}};
    /* One in flight (the connection is idle, so it is sent at once), three queued: the cap. */
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_sleep(0.2)", 0, NULL, on_reply, &r[0]), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r[i]), 0);
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r[4]), MUTT_EFULL);
    struct mutt_pg_stmt st = {"SELECT 1", 0, NULL};
    assert_int_equal(mutt_pg_transaction(g_pg, &st, 1, on_reply, &r[4]), MUTT_EFULL);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 4, 5000));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
    }
    assert_int_equal(r[4].calls, 0); /* a synchronous failure never calls back */
}

static void test_pg_transaction_commits_and_returns_last_result(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    g_pg = start_connected(&o);
    const char *k1[] = {"101", "one"}, *k2[] = {"102", "two"};
    struct mutt_pg_stmt stmts[] = {
        {"INSERT INTO kv (id, v) VALUES ($1, $2)", 2, k1},
        {"INSERT INTO kv (id, v) VALUES ($1, $2)", 2, k2},
        {"SELECT string_agg(v, ',' ORDER BY id) FROM kv WHERE id IN (101, 102)", 0, NULL},
    };
    struct reply r = {0}, check = {0};
    assert_int_equal(mutt_pg_transaction(g_pg, stmts, 3, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.value, "one,two");
    assert_int_equal(mutt_pg_query(g_pg, "SELECT count(*) FROM kv WHERE id IN (101, 102)", 0, NULL, on_reply, &check), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 2, 5000));
    assert_string_equal(check.value, "2");
}

static void test_pg_transaction_rolls_back_on_first_error(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_max = 1; /* the follow-up query runs on the same connection: it must not be left in a txn */
    g_pg = start_connected(&o);
    const char *k[] = {"201"};
    struct mutt_pg_stmt stmts[] = {
        {"INSERT INTO kv (id, v) VALUES ($1, 'x')", 1, k},
        {"INSERT INTO kv (id, v) VALUES ($1, 'y')", 1, k}, /* 23505 */
        {"SELECT 1", 0, NULL},
    };
    struct reply r = {0}, check = {0}, status = {0};
    assert_int_equal(mutt_pg_transaction(g_pg, stmts, 3, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, MUTT_EIO);
    assert_string_equal(r.sqlstate, "23505");
    assert_int_equal(mutt_pg_query(g_pg, "SELECT count(*) FROM kv WHERE id = 201", 0, NULL, on_reply, &check), 0);
    /* SAVEPOINT outside a transaction block fails with 25P01 (25P02 if left in an aborted one). */
    assert_int_equal(mutt_pg_query(g_pg, "SAVEPOINT probe", 0, NULL, on_reply, &status), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 3, 5000));
    assert_int_equal(check.status, 0);
    assert_string_equal(check.value, "0");
    assert_int_equal(status.status, MUTT_EIO);
    assert_string_equal(status.sqlstate, "25P01");
}

static void test_pg_transaction_failing_at_commit_reports_the_commit_error(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    g_pg = start_connected(&o);
    /* Both inserts succeed; the deferred unique check fires at COMMIT. */
    struct mutt_pg_stmt stmts[] = {
        {"INSERT INTO deferred_kv VALUES (1)", 0, NULL},
        {"INSERT INTO deferred_kv VALUES (1)", 0, NULL},
    };
    struct reply r = {0}, check = {0};
    assert_int_equal(mutt_pg_transaction(g_pg, stmts, 2, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, MUTT_EIO);
    assert_string_equal(r.sqlstate, "23505");
    assert_int_equal(mutt_pg_query(g_pg, "SELECT count(*) FROM deferred_kv", 0, NULL, on_reply, &check), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 2, 5000));
    assert_string_equal(check.value, "0");
}

static void test_pg_query_timeout_gives_etimedout_and_pool_recovers(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 1;
    o.pool_max = 1;
    o.query_timeout_ms = 300;
    g_pg = start_connected(&o);
    struct reply slow = {0}, next = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_sleep(5)", 0, NULL, on_reply, &slow), 0);
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 7", 0, NULL, on_reply, &next), 0); /* waits behind it */
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    uint64_t elapsed_ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.status, MUTT_ETIMEDOUT);
    assert_in_range(elapsed_ms, 250, 2000);
    /* The only connection was reset; the queued query runs on its replacement. */
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 2, 5000));
    assert_int_equal(next.calls, 1);
    assert_int_equal(next.status, 0);
    assert_string_equal(next.value, "7");
    assert_true(mutt_pg_connected(g_pg));
}

static void test_pg_unreachable_server_fails_fast_with_edisconnected(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.port = 1; /* nothing listens there: connection refused */
    g_pg = start_adapter(&o);
    struct reply queued = {0}, later = {0};
    /* Accepted while the first attempt is still running, then failed once when it fails. */
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &queued), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 3000));
    assert_int_equal(queued.calls, 1);
    assert_int_equal(queued.status, MUTT_EDISCONNECTED);
    assert_false(mutt_pg_connected(g_pg));
    /* Now known down: refused synchronously instead of queued. */
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &later), MUTT_EDISCONNECTED);
    mutt_test_run_for(&g_loop, 50);
    assert_int_equal(later.calls, 0);
    assert_int_equal(queued.calls, 1);
}

/* D38/D55: a refused first host is skipped for the next one, and health names the one in use. */
static void test_pg_host_list_skips_a_refusing_host_and_reports_the_one_in_use(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    char hosts[300], ports[32], want[300], got[300];
    snprintf(hosts, sizeof hosts, "%s,%s", o.host, o.host);
    snprintf(ports, sizeof ports, "1,%d", o.port); /* nothing listens on port 1 */
    snprintf(want, sizeof want, "%s:%d", o.host, o.port);
    o.host = hosts;
    o.ports = ports;
    o.target_session_attrs = "read-write";
    g_pg = start_adapter(&o);
    assert_string_equal(mutt_pg_host_in_use(g_pg, got, sizeof got), "");
    struct reply r = {0};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 'second'", 0, NULL, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.status, 0); /* the refused first host did not fail the query */
    assert_string_equal(r.value, "second");
    assert_string_equal(mutt_pg_host_in_use(g_pg, got, sizeof got), want);
}

/* D55: 25006 (read-only transaction) is a lost connection, not a data error: the caller gets
 * MUTT_EDISCONNECTED (a writer keeps its rows, the web answers 503) and the connection is
 * replaced, so the next query runs on a fresh session. The session is made read-only on its
 * own (SET), which leaves the shared harness server untouched. */
static void test_pg_read_only_error_reconnects_and_reports_disconnected(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 1;
    o.pool_max = 1;
    g_pg = start_connected(&o);
    struct reply set = {0}, write = {0}, after = {0}, pid1 = {0}, pid2 = {0};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_backend_pid()::text", 0, NULL, on_reply, &pid1), 0);
    assert_int_equal(mutt_pg_query(g_pg, "SET default_transaction_read_only = on", 0, NULL, on_reply, &set), 0);
    const char *key[] = {"25006"};
    assert_int_equal(mutt_pg_query(g_pg, "INSERT INTO kv (id, v) VALUES ($1, 'ro')", 1, key, on_reply, &write), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 3, 5000));
    assert_int_equal(set.status, 0);
    assert_int_equal(write.calls, 1);
    assert_int_equal(write.status, MUTT_EDISCONNECTED);
    /* the replacement connection is a new session: writable again, another backend */
    assert_true(wait_connected(g_pg, true, 5000));
    assert_int_equal(mutt_pg_query(g_pg, "INSERT INTO kv (id, v) VALUES ($1, 'rw')", 1, key, on_reply, &after), 0);
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_backend_pid()::text", 0, NULL, on_reply, &pid2), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 5, 5000));
    assert_int_equal(after.status, 0);
    assert_string_not_equal(pid1.value, pid2.value);
}

static void test_pg_reconnects_after_server_restart(void **state)
{
    (void)state;
    NEED_PG();
    if (!mutt_test_env("STATE"))
        MUTT_SKIP("no-harness", "stop-pg/start-pg need the harness state dir");
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 2;
    g_pg = start_connected(&o);
    struct reply inflight = {0}, down = {0}, up = {0};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_sleep(30)", 0, NULL, on_reply, &inflight), 0);
    mutt_test_run_for(&g_loop, 50); /* let it reach the server */
    assert_int_equal(mutt_test_service("stop-pg"), 0);

    /* The in-flight query fails once; the adapter notices the server is gone. */
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(inflight.calls, 1);
    assert_int_equal(inflight.status, MUTT_EDISCONNECTED);
    assert_true(wait_connected(g_pg, false, 5000));

    /* While down, a query fails quickly (synchronously or by callback), it does not hang. */
    uint64_t t0 = uv_hrtime();
    int rc = mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &down);
    if (rc == 0) {
        assert_true(mutt_test_run_until_count(&g_loop, &g_done, 2, 3000));
        assert_int_equal(down.calls, 1);
        assert_int_equal(down.status, MUTT_EDISCONNECTED);
    } else {
        assert_int_equal(rc, MUTT_EDISCONNECTED);
        assert_int_equal(down.calls, 0);
    }
    assert_true((uv_hrtime() - t0) / 1000000 < 3000);
    int done_before = g_done;

    assert_int_equal(mutt_test_service("start-pg"), 0);
    /* Backoff is capped at 5 s: the same adapter comes back on its own. */
    assert_true(wait_connected(g_pg, true, 15000));
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 'back'", 0, NULL, on_reply, &up), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, done_before + 1, 5000));
    assert_int_equal(up.calls, 1);
    assert_int_equal(up.status, 0);
    assert_string_equal(up.value, "back");
    assert_int_equal(inflight.calls, 1);
}

/* Creates a LOGIN role with `password`; returns false (and the test skips) when the server does
 * not check passwords for it (trust auth), since then CURRENT/NEXT cannot be told apart. */
static bool make_password_role(const char *role, const char *password)
{
    char lit[128], sql[512];
    size_t n = 0;
    for (const char *p = password; *p && n + 2 < sizeof(lit); p++) { /* SQL literal: double the quotes */
        if (*p == '\'')
            lit[n++] = '\'';
        lit[n++] = *p;
    }
    lit[n] = '\0';
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT ALL ON TABLE kv TO %s",
             role, role, lit, role);
    assert_int_equal(mutt_test_pg_exec(g_db, sql), 0);
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.user = role;
    char *ci = mutt_pg_conninfo(&o, "certainly-not-the-password");
    assert_non_null(ci);
    PGconn *c = PQconnectdb(ci);
    free(ci);
    bool enforced = PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    if (!enforced)
        fprintf(stderr, "test_pg: the server trusts %s without a password (pg_hba trust); skipping\n", role);
    return enforced;
}

static void drop_role(const char *role)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "REVOKE ALL ON TABLE kv FROM %s; DROP ROLE IF EXISTS %s", role, role);
    mutt_test_pg_exec(g_db, sql);
}

static void test_pg_falls_back_to_next_password(void **state)
{
    (void)state;
    NEED_PG();
    char role[64];
    snprintf(role, sizeof(role), "mutt_pwtest_%d", (int)getpid());
    if (!make_password_role(role, "next-pw-'q\\x")) {
        drop_role(role);
        fail_msg("cannot create the password test role %s", role);
    }
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.user = role;
    o.pass_current = "stale-current-pw";
    o.pass_next = "next-pw-'q\\x"; /* quote and backslash: conninfo escaping is exercised too */
    g_pg = start_adapter(&o);
    bool up = wait_connected(g_pg, true, 10000);
    struct reply r = {0};
    if (up) {
        assert_int_equal(mutt_pg_query(g_pg, "SELECT current_user::text", 0, NULL, on_reply, &r), 0);
        mutt_test_run_until_count(&g_loop, &g_done, 1, 5000);
    }
    mutt_pg_destroy(g_pg);
    g_pg = NULL;
    mutt_test_run_for(&g_loop, 20);
    drop_role(role);
    assert_true(up);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.value, role);
}

static void test_pg_wrong_passwords_fail_queued_queries_once(void **state)
{
    (void)state;
    NEED_PG();
    char role[64];
    snprintf(role, sizeof(role), "mutt_pwbad_%d", (int)getpid());
    if (!make_password_role(role, "the-real-one")) {
        drop_role(role);
        fail_msg("cannot create the password test role %s", role);
    }
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.user = role;
    o.pass_current = "wrong-1";
    o.pass_next = "wrong-2";
    g_pg = start_adapter(&o);
    struct reply r = {0};
    int rc = mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r);
    bool answered = rc == 0 && mutt_test_run_until_count(&g_loop, &g_done, 1, 5000);
    mutt_test_run_for(&g_loop, 50);
    bool connected = mutt_pg_connected(g_pg);
    int later = mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r);
    mutt_pg_destroy(g_pg);
    g_pg = NULL;
    mutt_test_run_for(&g_loop, 20);
    drop_role(role);
    assert_int_equal(rc, 0);
    assert_true(answered);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, MUTT_EDISCONNECTED);
    assert_false(connected);
    assert_int_equal(later, MUTT_EDISCONNECTED);
}

static void test_pg_stop_cancels_queued_and_in_flight_queries(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.pool_min = 1;
    o.pool_max = 1;
    g_pg = start_connected(&o);
    struct reply r[3] = {{0}}, after = {0};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT pg_sleep(5)", 0, NULL, on_reply, &r[0]), 0);
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r[1]), 0);
    struct mutt_pg_stmt st = {"SELECT 2", 0, NULL};
    assert_int_equal(mutt_pg_transaction(g_pg, &st, 1, on_reply, &r[2]), 0);
    mutt_test_run_for(&g_loop, 30);
    assert_int_equal(g_done, 0);
    mutt_pg_stop(g_pg);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, MUTT_ECANCELED);
    }
    assert_false(mutt_pg_connected(g_pg));
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &after), MUTT_ECANCELED);
    mutt_pg_stop(g_pg); /* repeating stop is harmless */
    mutt_test_run_for(&g_loop, 30);
    assert_int_equal(g_done, 3);
    /* teardown: destroy + uv_loop_close must return 0 (no handle left open). */
}

static void test_pg_resolves_host_name_without_blocking(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    o.host = "localhost"; /* a name: goes through uv_getaddrinfo, libpq gets hostaddr */
    g_pg = start_connected(&o);
    struct reply r = {0};
    assert_int_equal(mutt_pg_query(g_pg, "SELECT host(inet_server_addr())", 0, NULL, on_reply, &r), 0);
    assert_true(mutt_test_run_until_count(&g_loop, &g_done, 1, 5000));
    assert_int_equal(r.status, 0);
    assert_true(strcmp(r.value, "127.0.0.1") == 0 || strcmp(r.value, "::1") == 0);
}

static void test_pg_conninfo_escapes_values_and_picks_sslmode(void **state)
{
    (void)state;
    struct mutt_pg_opts o = {.host = "db.example", .port = 5433, .dbname = "mutt", .user = "u",
                             .connect_timeout_ms = 1500};
    char *ci = mutt_pg_conninfo(&o, "p'w\\d");
    assert_non_null(ci);
    assert_non_null(strstr(ci, "password='p\\'w\\\\d'"));
    assert_non_null(strstr(ci, "sslmode='disable'"));
    assert_non_null(strstr(ci, "connect_timeout='2'"));
    assert_non_null(strstr(ci, "port='5433'"));
    /* libpq itself accepts what we built. */
    char *errmsg = NULL;
    PQconninfoOption *parsed = PQconninfoParse(ci, &errmsg);
    assert_non_null(parsed);
    for (PQconninfoOption *p = parsed; p->keyword; p++)
        if (strcmp(p->keyword, "password") == 0)
            assert_string_equal(p->val, "p'w\\d");
    PQconninfoFree(parsed);
    free(ci);
    o.tls = true;
    ci = mutt_pg_conninfo(&o, NULL);
    assert_non_null(strstr(ci, "sslmode='require'"));
    assert_null(strstr(ci, "password"));
    free(ci);
    o.ca_file = "/etc/ca.pem";
    o.tls_verify = MUTT_PG_TLS_VERIFY_FULL; /* the DB_TLS_VERIFY mapping: tests/unit/test_pg_conninfo.c */
    ci = mutt_pg_conninfo(&o, NULL);
    assert_non_null(strstr(ci, "sslmode='verify-full'"));
    assert_non_null(strstr(ci, "sslrootcert='/etc/ca.pem'"));
    free(ci);
}

static void test_pg_rejects_bad_arguments_without_callback(void **state)
{
    (void)state;
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, "unused");
    g_pg = mutt_pg_create(&g_loop, &o);
    assert_non_null(g_pg);
    struct reply r = {0};
    /* Not started yet. */
    assert_int_equal(mutt_pg_query(g_pg, "SELECT 1", 0, NULL, on_reply, &r), MUTT_ESTATE);
    assert_int_equal(mutt_pg_query(g_pg, NULL, 0, NULL, on_reply, &r), MUTT_EINVAL);
    assert_int_equal(mutt_pg_query(g_pg, "SELECT $1", 1, NULL, on_reply, &r), MUTT_EINVAL);
    assert_int_equal(mutt_pg_transaction(g_pg, NULL, 0, on_reply, &r), MUTT_EINVAL);
    assert_int_equal(r.calls, 0);
    mutt_pg_destroy(g_pg); /* never started: frees at once */
    g_pg = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pg_select_with_parameters_returns_its_own_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_null_parameter_is_sql_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_server_error_is_eio_with_readable_sqlstate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_concurrent_queries_are_each_answered_once_with_their_own_params,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_queue_cap_fails_synchronously_with_efull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_transaction_commits_and_returns_last_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_transaction_rolls_back_on_first_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_transaction_failing_at_commit_reports_the_commit_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_query_timeout_gives_etimedout_and_pool_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_unreachable_server_fails_fast_with_edisconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_falls_back_to_next_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_wrong_passwords_fail_queued_queries_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_stop_cancels_queued_and_in_flight_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_resolves_host_name_without_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_conninfo_escapes_values_and_picks_sslmode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_rejects_bad_arguments_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_host_list_skips_a_refusing_host_and_reports_the_one_in_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_read_only_error_reconnects_and_reports_disconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnects_after_server_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("pg", tests, group_setup, group_teardown);
}

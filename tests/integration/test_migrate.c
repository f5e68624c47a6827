/* Integration tests of the migration runner (src/core/migrate.c) and of conf/schema.sql against
 * the harness's real PostgreSQL (needs MUTT_TEST_PG_*; those tests skip without). Every test
 * migrates its own scratch database. The drift test (schema.sql == embedded SQL) needs no server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/migrate.h"
#include "mutt/pg.h"
#include "pgscratch.h"
#include "testenv.h"

static char g_db[96];
static bool g_have_db;

static int setup(void **state)
{
    (void)state;
    g_have_db = false;
    if (!mutt_test_pg_available())
        return 0;
    if (mutt_test_pg_scratch_create("mig", g_db, sizeof(g_db)) != 0)
        return -1;
    g_have_db = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_have_db)
        mutt_test_pg_scratch_drop(g_db);
    g_have_db = false;
    return 0;
}

#define NEED_PG()            \
    do {                     \
        if (!g_have_db)      \
            MUTT_SKIP("no-harness", "no test database");          \
    } while (0)

static void migrate_ok(int *applied)
{
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    char err[512];
    int rc = mutt_migrate_run(&o, err, sizeof(err), applied);
    if (rc != 0)
        fprintf(stderr, "migrate: %s\n", err);
    assert_int_equal(rc, 0);
}

static void expect_sql_value(const char *sql, const char *want)
{
    char got[256];
    assert_int_equal(mutt_test_pg_value(g_db, sql, got, sizeof(got)), 0);
    assert_string_equal(got, want);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---------------------------------------------------------------- no server needed */

static void test_migrate_conf_schema_sql_equals_embedded_migrations(void **state)
{
    (void)state;
    char path[1024];
    const char *root = mutt_test_env("ROOT");
    snprintf(path, sizeof(path), "%s/conf/schema.sql", root ? root : ".");
    char *file = read_file(path);
    assert_non_null(file);
    size_t total = 0;
    for (int i = 0; i < mutt_migrations_count; i++)
        total += strlen(mutt_migrations[i].sql);
    char *embedded = calloc(1, total + 1);
    assert_non_null(embedded);
    for (int i = 0; i < mutt_migrations_count; i++)
        strcat(embedded, mutt_migrations[i].sql);
    /* conf/schema.sql is the concatenation of every migration, in order, byte for byte. */
    assert_string_equal(file, embedded);
    free(embedded);
    free(file);
}

static void test_migrate_versions_start_at_one_and_increase(void **state)
{
    (void)state;
    assert_true(mutt_migrations_count >= 1);
    assert_int_equal(mutt_migrations[0].version, 1);
    for (int i = 1; i < mutt_migrations_count; i++)
        assert_true(mutt_migrations[i].version > mutt_migrations[i - 1].version);
    assert_int_equal(mutt_migrate_latest(), mutt_migrations[mutt_migrations_count - 1].version);
}

static void test_migrate_unreachable_server_is_edisconnected_with_reason(void **state)
{
    (void)state;
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, "nowhere");
    o.host = "127.0.0.1";
    o.port = 1;
    char err[256] = "unset";
    int applied = -1;
    assert_int_equal(mutt_migrate_run(&o, err, sizeof(err), &applied), MUTT_EDISCONNECTED);
    assert_int_equal(applied, 0);
    assert_non_null(strstr(err, "cannot connect"));
    assert_null(strchr(err, '\n'));
}

/* ---------------------------------------------------------------- against PostgreSQL */

static void test_migrate_status_of_empty_database_is_zero(void **state)
{
    (void)state;
    NEED_PG();
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    int current = -1, latest = -1;
    assert_int_equal(mutt_migrate_status(&o, &current, &latest, NULL, 0), 0);
    assert_int_equal(current, 0);
    assert_int_equal(latest, mutt_migrate_latest());
}

static void test_migrate_creates_every_table_and_partition_on_empty_database(void **state)
{
    (void)state;
    NEED_PG();
    int applied = -1;
    migrate_ok(&applied);
    assert_int_equal(applied, mutt_migrations_count);
    expect_sql_value("SELECT bool_and(to_regclass(t) IS NOT NULL)::text FROM unnest(ARRAY['alert_rules',"
                 " 'development_hosts', 'device_teams', 'event_audit_log', 'event_audit_log_default',"
                 " 'config_audit_log', 'schema_migrations']) AS t",
                 "true");
    /* Current UTC month and the 3 after it; not a 4th. */
    expect_sql_value("SELECT string_agg((to_regclass('event_audit_log_' || to_char(date_trunc('month', now() AT TIME ZONE"
                 " 'UTC') + make_interval(months => i), 'YYYY_MM')) IS NOT NULL)::text, ',' ORDER BY i)"
                 " FROM generate_series(0, 4) AS i",
                 "true,true,true,true,false");
    expect_sql_value("SELECT count(*) FROM pg_inherits WHERE inhparent = 'event_audit_log'::regclass", "5");
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    int current = -1;
    assert_int_equal(mutt_migrate_status(&o, &current, NULL, NULL, 0), 0);
    assert_int_equal(current, mutt_migrate_latest());
}

static void test_migrate_second_run_is_a_no_op(void **state)
{
    (void)state;
    NEED_PG();
    int first = -1, second = -1;
    migrate_ok(&first);
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO device_teams VALUES ('h1', 'NetOps')"), 0);
    migrate_ok(&second);
    assert_int_equal(first, mutt_migrations_count);
    assert_int_equal(second, 0);
    char want[16];
    snprintf(want, sizeof(want), "%d", mutt_migrations_count);
    expect_sql_value("SELECT count(*) FROM schema_migrations", want);
    expect_sql_value("SELECT team_assignment FROM device_teams WHERE hostname = 'h1'", "NetOps"); /* data kept */
    expect_sql_value("SELECT count(*) FROM pg_inherits WHERE inhparent = 'event_audit_log'::regclass", "5");
}

struct runner {
    int rc;
    int applied;
    char err[512];
};

static void *run_migrate_thread(void *arg)
{
    struct runner *r = arg;
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    r->rc = mutt_migrate_run(&o, r->err, sizeof(r->err), &r->applied);
    return NULL;
}

static void test_migrate_concurrent_runs_both_succeed_and_apply_once(void **state)
{
    (void)state;
    NEED_PG();
    struct runner a = {.rc = -99}, b = {.rc = -99};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_migrate_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_migrate_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.rc || b.rc)
        fprintf(stderr, "migrate a: %s / b: %s\n", a.err, b.err);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.applied + b.applied, mutt_migrations_count);
    char want[16];
    snprintf(want, sizeof(want), "%d", mutt_migrations_count);
    expect_sql_value("SELECT count(*) FROM schema_migrations", want);
    expect_sql_value("SELECT count(*) FROM pg_inherits WHERE inhparent = 'event_audit_log'::regclass", "5");
}

static void test_migrate_duplicate_audit_row_is_ignored_on_conflict(void **state)
{
    (void)state;
    NEED_PG();
    migrate_ok(NULL);
    PGconn *c = mutt_test_pg_connect(g_db);
    assert_non_null(c);
    const char *sql = "INSERT INTO event_audit_log (event_timestamp, event_id, correlation_id, hostname,"
                      " matched_rule_id, handling_decision, forwarded_to_moog, raw_message)"
                      " VALUES ($1, $2, 'corr-1', 'router1', 42, 'Page_and_ticket', true, '{}')"
                      " ON CONFLICT DO NOTHING";
    const char *vals[] = {"2020-01-01T00:00:00Z", "2f1d7a1e-0000-4000-8000-000000000001"};
    const char *tuples[2];
    char first[8], second[8];
    for (int i = 0; i < 2; i++) {
        PGresult *r = PQexecParams(c, sql, 2, NULL, vals, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        snprintf(i == 0 ? first : second, 8, "%s", PQcmdTuples(r));
        PQclear(r);
    }
    tuples[0] = first;
    tuples[1] = second;
    PQfinish(c);
    assert_string_equal(tuples[0], "1");
    assert_string_equal(tuples[1], "0");
    expect_sql_value("SELECT count(*) FROM event_audit_log WHERE event_id = '2f1d7a1e-0000-4000-8000-000000000001'", "1");
    /* matched_rule_id has no foreign key (W31): rule 42 does not exist and the insert worked. */
    expect_sql_value("SELECT count(*) FROM pg_constraint WHERE conrelid = 'event_audit_log'::regclass AND contype = 'f'",
                 "0");
}

static void test_migrate_rows_in_default_move_when_their_month_is_created(void **state)
{
    (void)state;
    NEED_PG();
    migrate_ok(NULL);
    /* Five months ahead: past the pre-created months, so it lands in DEFAULT. */
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO event_audit_log (event_timestamp, event_id, hostname)"
                                             " VALUES (date_trunc('month', now()) + interval '5 months 3 days',"
                                             " 'future-1', 'h')"),
                     0);
    expect_sql_value("SELECT tableoid::regclass::text FROM event_audit_log WHERE event_id = 'future-1'",
                 "event_audit_log_default");
    expect_sql_value("SELECT mutt_ensure_partitions(6)", "3");
    char want[64];
    assert_int_equal(mutt_test_pg_value(g_db,
                                        "SELECT 'event_audit_log_' || to_char(date_trunc('month', now() AT TIME ZONE "
                                        "'UTC') + interval '5 months', 'YYYY_MM')",
                                        want, sizeof(want)),
                     0);
    expect_sql_value("SELECT tableoid::regclass::text FROM event_audit_log WHERE event_id = 'future-1'", want);
    expect_sql_value("SELECT count(*) FROM event_audit_log_default", "0");
    expect_sql_value("SELECT count(*) FROM event_audit_log", "1");
    /* Running it again creates nothing. */
    expect_sql_value("SELECT mutt_ensure_partitions(6)", "0");
}

static void test_migrate_config_audit_log_checks_operation_and_table(void **state)
{
    (void)state;
    NEED_PG();
    migrate_ok(NULL);
    /* D20: REPLAY on dlq with no numeric id, a text key instead. */
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO config_audit_log (changed_by, operation, table_name,"
                                             " record_key, new_values) VALUES ('cli:root', 'REPLAY', 'dlq',"
                                             " 'alerter', '{\"count\": 3}')"),
                     0);
    expect_sql_value("SELECT record_id IS NULL FROM config_audit_log WHERE record_key = 'alerter'", "t");
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO config_audit_log (changed_by, operation, table_name)"
                                             " VALUES ('x', 'TRUNCATE', 'dlq')"),
                     -1);
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO config_audit_log (changed_by, operation, table_name)"
                                             " VALUES ('x', 'CREATE', 'users')"),
                     -1);
}

static void test_migrate_alert_rules_keep_reference_checks_and_touch_updated_at(void **state)
{
    (void)state;
    NEED_PG();
    migrate_ok(NULL);
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO alert_rules (match_string, prod_handling, dev_handling,"
                                             " team_assignment, created_at, updated_at) VALUES ('LINK-DOWN',"
                                             " 'Page_and_ticket', 'Ticket_only', 'NetOps', '2020-01-01', '2020-01-01')"),
                     0);
    expect_sql_value("SELECT match_type || ',' || priority || ',' || is_active FROM alert_rules", "contains,100,true");
    assert_int_equal(mutt_test_pg_exec(g_db, "UPDATE alert_rules SET priority = 5"), 0);
    expect_sql_value("SELECT (updated_at > '2020-01-02' AND created_at < '2020-01-02')::text FROM alert_rules", "true");
    /* Neither match_string nor trap_oid; bad severity; bad match type. */
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO alert_rules (prod_handling, dev_handling, team_assignment)"
                                             " VALUES ('a', 'b', 'c')"),
                     -1);
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO alert_rules (match_string, syslog_severity, prod_handling,"
                                             " dev_handling, team_assignment) VALUES ('x', 8, 'a', 'b', 'c')"),
                     -1);
    assert_int_equal(mutt_test_pg_exec(g_db, "INSERT INTO alert_rules (match_string, match_type, prod_handling,"
                                             " dev_handling, team_assignment) VALUES ('x', 'glob', 'a', 'b', 'c')"),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_conf_schema_sql_equals_embedded_migrations),
        cmocka_unit_test(test_migrate_versions_start_at_one_and_increase),
        cmocka_unit_test(test_migrate_unreachable_server_is_edisconnected_with_reason),
        cmocka_unit_test_setup_teardown(test_migrate_status_of_empty_database_is_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_creates_every_table_and_partition_on_empty_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migrate_second_run_is_a_no_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_concurrent_runs_both_succeed_and_apply_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_duplicate_audit_row_is_ignored_on_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_rows_in_default_move_when_their_month_is_created, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migrate_config_audit_log_checks_operation_and_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_alert_rules_keep_reference_checks_and_touch_updated_at, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}

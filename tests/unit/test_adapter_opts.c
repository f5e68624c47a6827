/* Unit tests of the config -> adapter options helper (src/core/adapter_opts.c), the one place
 * the process, `mutt retention`, --check-config and the CLI commands take their Redis and
 * PostgreSQL settings from. No I/O: the config comes from an explicit environment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/pg.h"
#include "mutt/redis.h"

static struct mutt_config *load(const char *const *env)
{
    struct mutt_config_report rep = {0};
    struct mutt_config *cfg = mutt_config_load("/dev/null", (char *const *)env, MUTT_ROLE_NONE, &rep);
    assert_non_null(cfg);
    for (size_t i = 0; i < rep.n_errors; i++)
        print_message("  %s\n", rep.errors[i]);
    assert_int_equal(rep.n_errors, 0);
    mutt_config_report_free(&rep);
    return cfg;
}

static void test_adapter_opts_redis_takes_every_setting_from_config(void **state)
{
    const char *env[] = {"REDIS_HOST=redis.example", "REDIS_PORT=6380", "REDIS_DB=3",
                         "REDIS_PASS_CURRENT=cur", "REDIS_PASS_NEXT=next", "REDIS_CONNECT_TIMEOUT_MS=1500",
                         "REDIS_RECONNECT_MAX_MS=7000", "REDIS_MAX_INFLIGHT=321",
                         "REDIS_COMMAND_TIMEOUT_MS=2500", NULL};
    struct mutt_config *cfg = load(env);
    struct mutt_redis_opts o;
    memset(&o, 0xA5, sizeof o); /* every field is written, none left from before */
    mutt_redis_opts_from_config(cfg, &o);
    assert_string_equal(o.host, "redis.example");
    assert_int_equal(o.port, 6380);
    assert_int_equal(o.db, 3);
    assert_string_equal(o.pass_current, "cur");
    assert_string_equal(o.pass_next, "next");
    assert_int_equal(o.connect_timeout_ms, 1500);
    assert_int_equal(o.reconnect_min_ms, 100);
    assert_int_equal(o.reconnect_max_ms, 7000);
    assert_int_equal(o.max_inflight, 321);
    assert_int_equal(o.command_timeout_ms, 2500);
    mutt_config_destroy(cfg);
}

static void test_adapter_opts_redis_defaults_match_the_documented_ones(void **state)
{
    const char *env[] = {NULL};
    struct mutt_config *cfg = load(env);
    struct mutt_redis_opts o;
    mutt_redis_opts_from_config(cfg, &o);
    assert_int_equal(o.reconnect_min_ms, 100);
    assert_int_equal(o.reconnect_max_ms, 5000);   /* mutt.conf.example REDIS_RECONNECT_MAX_MS */
    assert_int_equal(o.max_inflight, 10000);      /* REDIS_MAX_INFLIGHT */
    assert_int_equal(o.connect_timeout_ms, 2000); /* REDIS_CONNECT_TIMEOUT_MS */
    assert_int_equal(o.command_timeout_ms, 5000); /* REDIS_COMMAND_TIMEOUT_MS (D48) */
    assert_string_equal(o.pass_current, "");
    mutt_config_destroy(cfg);
}

static void test_adapter_opts_pg_takes_every_setting_from_config(void **state)
{
    const char *env[] = {"DB_HOST=db.example", "DB_PORT=5433", "DB_NAME=alerts", "DB_USER=mutt_user",
                         "DB_PASS_CURRENT=cur", "DB_PASS_NEXT=next", "DB_POOL_MIN_CONN=2",
                         "DB_POOL_MAX_CONN=7", "DB_QUEUE_MAX=55", "DB_CONNECT_TIMEOUT_MS=1234",
                         "DB_QUERY_TIMEOUT_MS=4321",
                         NULL};
    struct mutt_config *cfg = load(env);
    struct mutt_pg_opts o;
    memset(&o, 0xA5, sizeof o);
    mutt_pg_opts_from_config(cfg, &o);
    assert_string_equal(o.host, "db.example");
    assert_int_equal(o.port, 5433);
    assert_string_equal(o.dbname, "alerts");
    assert_string_equal(o.user, "mutt_user");
    assert_string_equal(o.pass_current, "cur");
    assert_string_equal(o.pass_next, "next");
    assert_false(o.tls);
    assert_int_equal(o.tls_verify, MUTT_PG_TLS_VERIFY_NONE);
    assert_int_equal(o.pool_min, 2);
    assert_int_equal(o.pool_max, 7);
    assert_int_equal(o.queue_max, 55);
    assert_int_equal(o.connect_timeout_ms, 1234);
    assert_int_equal(o.query_timeout_ms, 4321);
    assert_string_equal(o.application_name, "mutt");
    mutt_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_opts_redis_takes_every_setting_from_config),
        cmocka_unit_test(test_adapter_opts_redis_defaults_match_the_documented_ones),
        cmocka_unit_test(test_adapter_opts_pg_takes_every_setting_from_config),
    };
    return cmocka_run_group_tests_name("adapter_opts", tests, NULL, NULL);
}
